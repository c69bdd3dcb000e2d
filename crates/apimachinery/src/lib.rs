//! Pure Kubernetes API machinery: data in, data out, no I/O.
//!
//! The API server calls these to validate, default and prune objects against a
//! structural schema, to track field ownership for server-side apply, to apply
//! strategic merge patches, to match selectors and to render Table rows.
//!
//! Layout:
//! - `field`: field paths, field errors and list/map type information.
//! - `schema`: structural OpenAPI v3 schemas: defaulting, pruning, validation.
//! - `fieldmanager`: `managedFields` and server-side apply.
//! - `smp`: strategic merge patch for the built-in kinds.
//! - `selector`: label and field selectors.
//! - `printer`: Table columns, JSONPath and ages.
//! - `protobuf`: the Kubernetes protobuf envelope kubectl sends built-in kinds in.
//! - `openapi_v2`: the protobuf OpenAPI v2 document client-go reads.
#![forbid(unsafe_code)]

pub mod field;
pub mod fieldmanager;
pub mod openapi_v2;
pub mod printer;
pub mod protobuf;
pub mod schema;
pub mod selector;
pub mod smp;

pub use field::{
    render_path, CauseType, FieldError, ListType, MapType, PathElement, TypeInfo, Untyped,
};
