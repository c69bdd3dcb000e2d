//! Turning a request line into what it asks for: which API path, which
//! resource, which verb, and the query parameters.

use std::collections::HashMap;

use crate::status::ApiError;

/// A request for a resource (as opposed to discovery, OpenAPI or health).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// Reached through the legacy `/watch/` prefix.
    pub legacy_watch: bool,
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    /// `/metrics`, Prometheus's text exposition.
    Metrics,
    Health(&'static str),
    /// `/api`
    CoreVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`
    ResourceList {
        group: String,
        version: String,
    },
    OpenApiV3Index,
    OpenApiV3 {
        group: String,
        version: String,
    },
    OpenApiV2,
    Resource(ResourcePath),
    Unknown,
}

/// Subresources of namespaces that follow the namespace's name directly.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

pub fn route(path: &str) -> Route {
    let trimmed = path.trim_end_matches('/');
    match trimmed {
        "/version" => return Route::Version,
        "/metrics" => return Route::Metrics,
        "/healthz" => return Route::Health("healthz"),
        "/livez" => return Route::Health("livez"),
        "/readyz" => return Route::Health("readyz"),
        "/api" => return Route::CoreVersions,
        "/apis" => return Route::Groups,
        "/openapi/v3" => return Route::OpenApiV3Index,
        "/openapi/v2" => return Route::OpenApiV2,
        _ => {}
    }
    let parts: Vec<&str> = trimmed.split('/').skip(1).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Route::Unknown;
    }
    match parts.as_slice() {
        ["openapi", "v3", "api", version] => Route::OpenApiV3 {
            group: String::new(),
            version: version.to_string(),
        },
        ["openapi", "v3", "apis", group, version] => Route::OpenApiV3 {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["healthz" | "livez" | "readyz", ..] => Route::Health("healthz"),
        ["api", version] => Route::ResourceList {
            group: String::new(),
            version: version.to_string(),
        },
        ["apis", group] => Route::Group(group.to_string()),
        ["apis", group, version] => Route::ResourceList {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["api", version, rest @ ..] => resource_route("", version, rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        _ => Route::Unknown,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let mut rest = rest;
    let mut legacy_watch = false;
    if rest.first() == Some(&"watch") {
        legacy_watch = true;
        rest = &rest[1..];
    }
    let mut namespace = None;
    if rest.first() == Some(&"namespaces")
        && rest.len() > 2
        && !NAMESPACE_SUBRESOURCES.contains(&rest[2])
    {
        namespace = Some(rest[1].to_string());
        rest = &rest[2..];
    }
    let (plural, name, subresource) = match rest {
        [plural] => (plural, None, None),
        [plural, name] => (plural, Some(name.to_string()), None),
        [plural, name, sub] => (plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return Route::Unknown,
    };
    Route::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        namespace,
        plural: plural.to_string(),
        name,
        subresource,
        legacy_watch,
    })
}

/// Decoded query parameters.
#[derive(Debug, Default)]
pub struct Query {
    values: HashMap<String, String>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut values = HashMap::new();
        if let Some(raw) = raw {
            for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
                values.insert(k.into_owned(), v.into_owned());
            }
        }
        Query { values }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(other) => Err(ApiError::bad_field(
                key,
                format!("query parameter {key}: expected true or false, got {other:?}"),
            )),
        }
    }

    pub fn number(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_field(
                    key,
                    format!("query parameter {key}: expected an integer, got {v:?}"),
                )
            }),
        }
    }

    /// `dryRun`: only `All` is defined.
    pub fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::unsupported(
                "dryRun",
                format!("Unsupported value: {other:?}: supported values: \"All\""),
            )),
        }
    }
}

/// The field manager for a write: the `fieldManager` parameter, else the
/// client's User-Agent up to its first '/', as kube-apiserver derives it.
pub fn field_manager(query: &Query, user_agent: Option<&str>) -> Result<String, ApiError> {
    if let Some(manager) = query.get("fieldManager") {
        if manager.len() > 128 || manager.chars().any(|c| c.is_control()) {
            return Err(ApiError::unsupported(
                "fieldManager",
                "Invalid value: fieldManager must be at most 128 printable characters",
            ));
        }
        return Ok(manager.to_string());
    }
    let agent = user_agent.unwrap_or("unknown");
    let prefix = agent.split('/').next().unwrap_or(agent);
    Ok(prefix.chars().take(128).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match route(path) {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn namespaced_and_cluster_paths() {
        let r = res("/api/v1/namespaces/default/configmaps/x");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref()),
            ("configmaps", Some("x"))
        );
        let r = res("/api/v1/namespaces/default");
        assert_eq!(
            (r.plural.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("default"), None)
        );
        let r = res("/api/v1/namespaces/foo/status");
        assert_eq!(r.subresource.as_deref(), Some("status"));
        assert_eq!(r.name.as_deref(), Some("foo"));
        let r = res("/apis/stable.example.com/v1/namespaces/ns/crontabs/a/status");
        assert_eq!(
            (r.group.as_str(), r.subresource.as_deref()),
            ("stable.example.com", Some("status"))
        );
        let r = res("/apis/stable.example.com/v1/crontabs");
        assert_eq!((r.namespace, r.name), (None, None));
        let r = res("/api/v1/watch/namespaces/default/events");
        assert!(r.legacy_watch);
        assert_eq!(r.plural, "events");
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(route("/apis/"), Route::Groups);
        assert_eq!(route("/apis/g.io"), Route::Group("g.io".into()));
        assert!(matches!(route("/api/v1"), Route::ResourceList { .. }));
        assert_eq!(route("/nope"), Route::Unknown);
        assert_eq!(route("/api/v1//x"), Route::Unknown);
    }

    #[test]
    fn manager_from_user_agent() {
        let q = Query::parse(None);
        assert_eq!(
            field_manager(&q, Some("kubectl/v1.32.4 (linux/amd64)")).unwrap(),
            "kubectl"
        );
        let q = Query::parse(Some("fieldManager=me"));
        assert_eq!(field_manager(&q, None).unwrap(), "me");
    }
}
