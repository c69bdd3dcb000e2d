//! Composition functions, as Crossplane runs them.
//!
//! - `pb`: the `apiextensions.fn.proto.v1` RunFunction protocol.
//! - `structs`: JSON to `google.protobuf.Struct` and back.
//! - `runner`: calls a function by name: its address, a timeout, the
//!   v1beta1 fallback, and the cache that honours a response's TTL.
//! - `pipeline`: one run of a `mode: Pipeline` Composition's steps, with the
//!   requirements loop; it reaches functions and the cluster only through
//!   two traits, so the composite reconciler and `plinth render` share it.
//! - `host`: the embedded runtimes of `Function` objects: at an address
//!   (`crossplane render`'s Development runtime) or as a supervised
//!   local command, with `Installed` and `Healthy` conditions.
//! - `crd`: the `functions.pkg.crossplane.io` CRD.
#![forbid(unsafe_code)]

pub mod pb {
    //! Generated from proto/crossplane/fn/v1/run_function.proto.
    #![allow(clippy::all)]
    // The package has the keyword `fn` in it, which prost writes as r#fn.
    tonic::include_proto!("apiextensions.r#fn.proto.v1");
}

pub mod crd;
pub mod host;
pub mod pipeline;
pub mod runner;
pub mod structs;

pub use pipeline::{Fetch, Outcome, PipelineError, Step};
pub use runner::{CallError, Runner};

/// `pkg.crossplane.io`, the group of `Function`.
pub const GROUP: &str = "pkg.crossplane.io";
pub const VERSION: &str = "v1";
pub const KIND: &str = "Function";
pub const PLURAL: &str = "functions";

/// `crossplane render`'s annotations, honoured the same way here.
pub const ANNOTATION_RUNTIME: &str = "render.crossplane.io/runtime";
pub const ANNOTATION_DEVELOPMENT_TARGET: &str = "render.crossplane.io/runtime-development-target";
pub const RUNTIME_DEVELOPMENT: &str = "Development";
/// Plinth's own: the command line of a function Plinth starts and
/// supervises, a JSON array of strings or words separated by spaces. A
/// Plinth-only key, so `crossplane render` ignores it rather than refusing
/// a runtime it does not know.
pub const ANNOTATION_COMMAND: &str = "plinth.dev/function-command";
/// Plinth's own: a function served elsewhere (a Service in a cluster, say)
/// at HOST:PORT, reached over mTLS as Crossplane reaches its functions.
pub const ANNOTATION_ENDPOINT: &str = "plinth.dev/function-endpoint";
/// NAMESPACE/NAME of the Secret with the client's `tls.crt` and `tls.key`
/// and the `ca.crt` that signed the function's certificate.
pub const ANNOTATION_TLS_SECRET: &str = "plinth.dev/function-tls-secret";
/// The TLS server name to check, when it is not the endpoint's host.
pub const ANNOTATION_TLS_SERVER_NAME: &str = "plinth.dev/function-tls-server-name";
/// The Secret a remote function's client certificate is read from by default.
pub const DEFAULT_TLS_SECRET: &str = "plinth-system/plinth-function-tls-client";
/// The working directory of a supervised function.
pub const ANNOTATION_WORKING_DIR: &str = "plinth.dev/function-working-dir";
