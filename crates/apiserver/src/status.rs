//! API errors, rendered as Kubernetes `Status` objects.
//!
//! Every failure a client can see goes through [`ApiError`], so every error
//! response carries `reason`, `code`, and, where a field is at fault,
//! `details.causes` naming it, as kube-apiserver does.

use apimachinery::FieldError;
use serde_json::{json, Value};

/// The `reason` values of `metav1.StatusReason` that Plinth returns.
pub mod reason {
    pub const BAD_REQUEST: &str = "BadRequest";
    pub const UNAUTHORIZED: &str = "Unauthorized";
    pub const FORBIDDEN: &str = "Forbidden";
    pub const NOT_FOUND: &str = "NotFound";
    pub const ALREADY_EXISTS: &str = "AlreadyExists";
    pub const CONFLICT: &str = "Conflict";
    pub const GONE: &str = "Expired";
    pub const INVALID: &str = "Invalid";
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    pub const NOT_ACCEPTABLE: &str = "NotAcceptable";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UnsupportedMediaType";
    pub const REQUEST_ENTITY_TOO_LARGE: &str = "RequestEntityTooLarge";
    pub const INTERNAL_ERROR: &str = "InternalError";
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
    /// The store had no room for the write (HTTP 507); kube-apiserver has no
    /// reason of its own for a full disk, so the HTTP status names it.
    pub const INSUFFICIENT_STORAGE: &str = "InsufficientStorage";
}

/// What the resource in an error is, for `details`.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub group: String,
    pub kind: String,
    pub name: String,
}

/// An error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// Boxed so results carrying an error stay small.
    pub subject: Option<Box<Subject>>,
    pub causes: Vec<FieldError>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            subject: None,
            causes: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, reason::BAD_REQUEST, message)
    }

    /// A malformed request, with a cause naming the field (or query parameter) at fault.
    pub fn bad_field(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        let cause = FieldError::new(apimachinery::CauseType::Invalid, field, message.clone());
        ApiError::bad_request(message).with_cause(cause)
    }

    /// A request field the server does not implement: refused loudly, never ignored.
    pub fn unsupported(field: &str, message: impl Into<String>) -> ApiError {
        let message = message.into();
        let mut err = ApiError::bad_request(format!("{field}: {message}"));
        err.causes.push(FieldError::new(
            apimachinery::CauseType::NotSupported,
            field,
            message,
        ));
        err
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            401,
            reason::UNAUTHORIZED,
            "Unauthorized: a valid bearer token is required; use the kubeconfig written by `plinth up`",
        )
    }

    /// The resource type is not served.
    pub fn unknown_resource(path: &str) -> ApiError {
        ApiError::new(
            404,
            reason::NOT_FOUND,
            format!("the server could not find the requested resource (path {path})"),
        )
    }

    pub fn not_found(group: &str, plural: &str, name: &str) -> ApiError {
        let resource = qualified(plural, group);
        ApiError {
            subject: Some(Box::new(Subject {
                group: group.to_string(),
                kind: plural.to_string(),
                name: name.to_string(),
            })),
            ..ApiError::new(
                404,
                reason::NOT_FOUND,
                format!("{resource} \"{name}\" not found"),
            )
        }
    }

    pub fn already_exists(group: &str, plural: &str, name: &str) -> ApiError {
        let resource = qualified(plural, group);
        ApiError {
            subject: Some(Box::new(Subject {
                group: group.to_string(),
                kind: plural.to_string(),
                name: name.to_string(),
            })),
            ..ApiError::new(
                409,
                reason::ALREADY_EXISTS,
                format!("{resource} \"{name}\" already exists"),
            )
        }
    }

    pub fn conflict(group: &str, plural: &str, name: &str) -> ApiError {
        let resource = qualified(plural, group);
        ApiError {
            subject: Some(Box::new(Subject {
                group: group.to_string(),
                kind: plural.to_string(),
                name: name.to_string(),
            })),
            ..ApiError::new(
                409,
                reason::CONFLICT,
                format!(
                    "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                ),
            )
        }
    }

    /// Validation failed: 422 with every offending field as a cause.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<FieldError>) -> ApiError {
        let summary: Vec<String> = causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        let listed = if summary.len() == 1 {
            summary[0].clone()
        } else {
            format!("[{}]", summary.join(", "))
        };
        let qualified_kind = qualified(kind, group);
        ApiError {
            subject: Some(Box::new(Subject {
                group: group.to_string(),
                kind: kind.to_string(),
                name: name.to_string(),
            })),
            causes,
            ..ApiError::new(
                422,
                reason::INVALID,
                format!("{qualified_kind} \"{name}\" is invalid: {listed}"),
            )
        }
    }

    pub fn gone(message: impl Into<String>) -> ApiError {
        ApiError::new(410, reason::GONE, message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, reason::INTERNAL_ERROR, message)
    }

    pub fn with_cause(mut self, cause: FieldError) -> ApiError {
        self.causes.push(cause);
        self
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = serde_json::Map::new();
        if let Some(subject) = &self.subject {
            details.insert("name".into(), json!(subject.name));
            if !subject.group.is_empty() {
                details.insert("group".into(), json!(subject.group));
            }
            details.insert("kind".into(), json!(subject.kind));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(
                    |c| json!({"reason": c.cause.as_str(), "message": c.message, "field": c.field}),
                )
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<store::StoreError> for ApiError {
    fn from(err: store::StoreError) -> ApiError {
        match err {
            store::StoreError::Compacted { compact_revision } => ApiError::gone(format!(
                "too old resource version: the oldest revision still available is {compact_revision}; list again"
            )),
            store::StoreError::DiskFull => ApiError::new(
                507,
                reason::INSUFFICIENT_STORAGE,
                store::StoreError::DiskFull.to_string(),
            ),
            store::StoreError::Closed => ApiError::new(
                503,
                reason::SERVICE_UNAVAILABLE,
                "the server is shutting down; retry",
            ),
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// `crontabs.stable.example.com`, or `configmaps` for the core group.
pub fn qualified(plural: &str, group: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

/// A `Status` for a successful deletion.
pub fn success(group: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": group, "kind": kind, "uid": uid},
    })
}
