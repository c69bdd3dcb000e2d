//! Composition as a pure function, compatible with Crossplane's v1
//! `mode: Resources` (patch & transform) Compositions.
//!
//! Nothing here does I/O: the composite reconciler and `plinth render` give
//! it objects and get objects back.
//!
//! Data flow, for one composite:
//!
//! ```text
//!  composite ──┬─ From* patches ──> base ──> composed objects ──> apply
//!              │   (fieldpath read → transforms → fieldpath write)
//!  observed ───┴─ To* patches ────> composite status/spec
//!              ├─ readiness checks ──> ready
//!              └─ connection details ─> connection Secret
//! ```
//!
//! Layout:
//! - `fieldpath`: Crossplane field paths.
//! - `gofmt`: the Go format verbs string transforms use.
//! - `transform`: map, match, math, string, convert.
//! - `quantity`: Kubernetes quantities, for convert's `quantity` format.
//! - `patch`: patches between composite and composed resources.
//! - `readiness`: readiness checks.
//! - `connection`: connection details.
//! - `render`: all of it, for one composite.
//! - `validate`: static checks of a Composition, for `plinth validate`.
#![forbid(unsafe_code)]

pub mod connection;
pub mod fieldpath;
pub mod gofmt;
pub mod patch;
pub mod quantity;
pub mod readiness;
pub mod render;
pub mod transform;
pub mod validate;

pub use render::{render, Composed, Observed, RenderError, Rendered};
