//! Pure Kubernetes API machinery: data in, data out, no I/O.
//!
//! The API server calls these to validate, default and prune objects against a
//! structural schema, to track field ownership for server-side apply, to apply
//! strategic merge patches, to match selectors and to render Table rows.
//!
//! Layout:
//! - `field`: field paths, field errors and list/map type information.
#![forbid(unsafe_code)]

pub mod field;

pub use field::{render_path, CauseType, FieldError, ListType, MapType, PathElement, TypeInfo, Untyped};
