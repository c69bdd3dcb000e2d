//! Field paths and field errors, shared by every validator in this crate.
//!
//! Kubernetes reports each invalid field in a `Status`'s `details.causes`, with a
//! machine-readable reason, a path such as `spec.ports[0].name`, and a message.

use std::fmt;

/// The `reason` of one `StatusCause`, spelled as kube-apiserver spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CauseType {
    /// A required field is absent.
    Required,
    /// A field has a value outside what its schema allows (pattern, range, length).
    Invalid,
    /// A field's value is not one of the enumerated values.
    NotSupported,
    /// A field has the wrong JSON type.
    TypeInvalid,
    /// A list holds the same item twice where its type forbids it.
    Duplicate,
    /// A field may not be set here.
    Forbidden,
    /// A field is not in the schema (reported only under strict field validation).
    Unknown,
    /// Another field manager owns the field (server-side apply).
    ManagerConflict,
}

impl CauseType {
    /// The wire string kube-apiserver uses for this reason.
    pub fn as_str(self) -> &'static str {
        match self {
            CauseType::Required => "FieldValueRequired",
            CauseType::Invalid => "FieldValueInvalid",
            CauseType::NotSupported => "FieldValueNotSupported",
            CauseType::TypeInvalid => "FieldValueTypeInvalid",
            CauseType::Duplicate => "FieldValueDuplicate",
            CauseType::Forbidden => "FieldValueForbidden",
            CauseType::Unknown => "FieldValueInvalid",
            CauseType::ManagerConflict => "FieldManagerConflict",
        }
    }
}

/// One problem with one field of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub cause: CauseType,
    /// Dotted path with list indices, e.g. `spec.versions[0].name`.
    pub field: String,
    /// Human-readable message that names the field and what was expected.
    pub message: String,
}

impl FieldError {
    pub fn new(cause: CauseType, field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            cause,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// One step into a JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElement {
    /// A key of an object.
    Field(String),
    /// An index into a list.
    Index(usize),
}

/// Renders a path as Kubernetes prints it: `spec.containers[0].name`.
pub fn render_path(path: &[PathElement]) -> String {
    let mut out = String::new();
    for element in path {
        match element {
            PathElement::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            PathElement::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// How a list is merged and how its items are owned (`x-kubernetes-list-type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// The list is replaced whole and owned as one field (the default).
    Atomic,
    /// Items are scalars, each owned on its own and kept unique.
    Set,
    /// Items are objects identified by the named key fields.
    Map(Vec<String>),
}

/// How an object-valued field is owned (`x-kubernetes-map-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    /// Each key is a field of its own (the default).
    Granular,
    /// The object is replaced whole and owned as one field.
    Atomic,
}

/// Tells merge and ownership code how lists and maps at a path behave.
///
/// The path holds field names only: list items are stepped over, so the
/// path of `spec.containers[3].ports` is `["spec", "containers", "ports"]`.
pub trait TypeInfo {
    fn list_type(&self, path: &[&str]) -> ListType;
    fn map_type(&self, _path: &[&str]) -> MapType {
        MapType::Granular
    }
}

/// Type information for documents with no schema: every list atomic, every map granular.
pub struct Untyped;

impl TypeInfo for Untyped {
    fn list_type(&self, _path: &[&str]) -> ListType {
        ListType::Atomic
    }
}
