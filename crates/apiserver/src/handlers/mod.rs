//! Request handlers, one file per verb, all of the same shape: parse and
//! check the request, call the store (through `lifecycle` for writes), encode
//! the response. This module holds the dispatcher and what they share.

mod body;
mod create;
mod delete;
mod discovery;
mod filter;
#[cfg(test)]
mod fuzz;
mod get;
mod list;
mod openapi;
mod patch;
mod review;
mod update;
mod watch;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Response, StatusCode};
use serde_json::Value;

use crate::lifecycle::{FieldValidation, Part, WriteOptions, WrittenObject};
use crate::request::{field_manager, Query, ResourcePath, Route};
use crate::resource::Resource;
use crate::status::{reason, ApiError};
use crate::Api;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// One request, read whole (bodies are small: the limit is 3 MiB).
pub struct Ctx {
    pub method: Method,
    pub path: String,
    pub query: Query,
    pub accept: String,
    pub content_type: String,
    pub user_agent: Option<String>,
    pub body: Bytes,
    /// Flips to true when the server shuts down, ending open watches.
    pub stopped: tokio::sync::watch::Receiver<bool>,
    /// Who sent the request, as authentication found.
    pub user: Arc<rbac::UserInfo>,
}

impl Ctx {
    /// True when the client asked for `meta.k8s.io` Table output.
    pub fn wants_table(&self) -> bool {
        self.accept
            .split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table"))
    }

    /// Refuses clients that accept nothing we can produce.
    pub fn check_accept(&self) -> Result<(), ApiError> {
        if self.accept.is_empty() {
            return Ok(());
        }
        let ok = self.accept.split(',').any(|t| {
            let t = t.trim();
            t.starts_with("application/json")
                || t.starts_with("*/*")
                || t.starts_with("application/*")
        });
        if ok {
            Ok(())
        } else {
            Err(ApiError::new(
                406,
                reason::NOT_ACCEPTABLE,
                format!(
                    "only the following media types are accepted: application/json (asked for {})",
                    self.accept
                ),
            ))
        }
    }

    /// Options common to every write.
    pub fn write_options(&self) -> Result<WriteOptions, ApiError> {
        let field_validation = match self.query.get("fieldValidation") {
            None | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                return Err(ApiError::unsupported(
                    "fieldValidation",
                    format!("Unsupported value: {other:?}: supported values: \"Ignore\", \"Warn\", \"Strict\""),
                ))
            }
        };
        Ok(WriteOptions {
            dry_run: self.query.dry_run()?,
            field_manager: field_manager(&self.query, self.user_agent.as_deref())?,
            field_validation,
            verb: match self.method {
                Method::POST => "create",
                Method::PUT => "update",
                Method::PATCH => "patch",
                Method::DELETE => "delete",
                _ => "other",
            },
            user: Some(self.user.clone()),
        })
    }

    /// Decodes a JSON or YAML body into one object.
    pub fn decode_body(&self) -> Result<Value, ApiError> {
        decode(&self.body, &self.content_type)
    }
}

pub use body::decode;
pub use filter::selectable_fields;

pub async fn dispatch(api: &Arc<Api>, ctx: Ctx, route: Route) -> Response<Body> {
    let result = match route {
        Route::Health(name) => Ok(health(api, name)),
        Route::Version => Ok(json(StatusCode::OK, &discovery::version())),
        Route::Metrics => metrics(api),
        Route::CoreVersions => Ok(json(StatusCode::OK, &discovery::core_versions())),
        Route::Groups => Ok(json(StatusCode::OK, &discovery::groups(api))),
        Route::Group(group) => discovery::group(api, &group).map(|v| json(StatusCode::OK, &v)),
        Route::ResourceList { group, version } => {
            discovery::resources(api, &group, &version).map(|v| json(StatusCode::OK, &v))
        }
        Route::OpenApiV3Index => Ok(json(StatusCode::OK, &openapi::index(api))),
        Route::OpenApiV3 { group, version } => {
            openapi::group_version(api, &group, &version).map(|v| json(StatusCode::OK, &v))
        }
        Route::OpenApiV2 => Ok(openapi::v2_response(api, &ctx.accept)),
        Route::Resource(path) => resource(api, ctx, path).await,
        Route::Unknown => Err(ApiError::unknown_resource(&ctx.path)),
    };
    result.unwrap_or_else(|e| error(&e))
}

async fn resource(
    api: &Arc<Api>,
    ctx: Ctx,
    path: ResourcePath,
) -> Result<Response<Body>, ApiError> {
    ctx.check_accept()?;
    let res = api
        .registry
        .get(&path.group, &path.version, &path.plural)
        .ok_or_else(|| ApiError::unknown_resource(&ctx.path))?;
    if path.namespace.is_some() && !res.namespaced {
        return Err(ApiError::unknown_resource(&ctx.path));
    }
    if let Some(kind) = res.builtin.filter(|b| b.is_review()) {
        if ctx.method != Method::POST || path.name.is_some() {
            return Err(ApiError::new(
                405,
                reason::METHOD_NOT_ALLOWED,
                format!("{} only answers create (POST {})", res.plural, ctx.path),
            ));
        }
        return review::handle(api, &ctx, &res, &path, kind);
    }
    if res.builtin == Some(crate::builtin::Builtin::ServiceAccount)
        && path.subresource.as_deref() == Some("token")
    {
        return match (&ctx.method, path.name.as_deref()) {
            (&Method::POST, Some(name)) => review::token_request(api, &ctx, &res, &path, name),
            _ => Err(ApiError::new(
                405,
                reason::METHOD_NOT_ALLOWED,
                format!(
                    "serviceaccounts/token only answers create (POST {})",
                    ctx.path
                ),
            )),
        };
    }
    let part = match path.subresource.as_deref() {
        None => Part::Main,
        Some("status") if res.status_subresource => Part::Status,
        Some(other) => {
            return Err(ApiError::new(
                404,
                reason::NOT_FOUND,
                format!("{} has no subresource {other:?}", res.plural),
            ))
        }
    };
    let watching = path.legacy_watch || ctx.query.flag("watch")?;
    match (&ctx.method, path.name.as_deref()) {
        (&Method::GET, Some(name)) if watching => {
            watch::handle(api, &ctx, &res, &path, Some(name)).await
        }
        (&Method::GET, None) if watching => watch::handle(api, &ctx, &res, &path, None).await,
        (&Method::GET, Some(name)) => get::handle(api, &ctx, &res, &path, name),
        (&Method::GET, None) => list::handle(api, &ctx, &res, &path),
        (&Method::POST, None) => create::handle(api, &ctx, &res, &path).await,
        (&Method::PUT, Some(name)) => update::handle(api, &ctx, &res, &path, name, part).await,
        (&Method::PATCH, Some(name)) => patch::handle(api, &ctx, &res, &path, name, part).await,
        (&Method::DELETE, Some(name)) if part == Part::Main => {
            delete::handle(api, &ctx, &res, &path, name).await
        }
        (&Method::DELETE, None) => delete::collection(api, &ctx, &res, &path).await,
        (method, _) => Err(ApiError::new(
            405,
            reason::METHOD_NOT_ALLOWED,
            format!("{method} is not supported on {}", ctx.path),
        )),
    }
}

fn metrics(api: &Api) -> Result<Response<Body>, ApiError> {
    let text = api
        .metrics
        .encode(api.store.footprint())
        .map_err(|e| ApiError::internal(format!("cannot encode the metrics: {e}")))?;
    Response::builder()
        .status(StatusCode::OK)
        .header(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .body(full(Bytes::from(text)))
        .map_err(|e| ApiError::internal(format!("cannot send the metrics: {e}")))
}

/// The verb of a request as kube-apiserver names them, and what it is on.
pub fn request_labels<'a>(
    route: &'a Route,
    method: &Method,
    watching: bool,
) -> Option<(String, &'a str, &'a str, &'a str)> {
    let Route::Resource(path) = route else {
        return None;
    };
    let named = path.name.is_some();
    let verb = match *method {
        Method::GET if watching || path.legacy_watch => "watch",
        Method::GET if named => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    Some((
        verb.to_string(),
        path.group.as_str(),
        path.plural.as_str(),
        path.subresource.as_deref().unwrap_or(""),
    ))
}

fn health(api: &Api, name: &str) -> Response<Body> {
    let ready = name != "readyz" || api.is_ready();
    let (status, text) = if ready {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, api.not_ready_reason())
    };
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(full(Bytes::from_static(text.as_bytes())))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes).boxed_unsync()
}

/// A JSON response.
pub fn json(status: StatusCode, value: &Value) -> Response<Body> {
    raw_json(status, Bytes::from(value.to_string()), &[])
}

/// A JSON response from bytes already encoded, with `Warning` headers.
pub fn raw_json(status: StatusCode, body: Bytes, warnings: &[String]) -> Response<Body> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("cache-control", "no-cache, private");
    for w in warnings {
        builder = builder.header("warning", warning_header(w));
    }
    builder
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full(Bytes::new())))
}

/// RFC 7234 warn-code 299 with the text as a quoted string, as kube-apiserver
/// writes it (Go's `strconv.Quote`), so clients print the text as it was.
/// Written by hand: it is a few lines, and no crate here quotes the Go way.
fn warning_header(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            // Header values must be visible ASCII; Go would write \u escapes too.
            c if c.is_ascii_graphic() || c == ' ' => quoted.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    quoted.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    quoted.push('"');
    format!("299 - {quoted}")
}

pub fn error(err: &ApiError) -> Response<Body> {
    let status = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json(status, &err.to_status())
}

/// A stored object as a client reading through `res`'s version sees it:
/// the stored JSON itself when it is stored at that version, else a fresh
/// encoding of it at that version.
pub fn encode_record(res: &Resource, record: &store::Record) -> Result<Bytes, ApiError> {
    if served_as_stored(res, &record.meta.api_version) {
        return Ok(record.json()?);
    }
    let obj = record.value()?;
    Ok(Bytes::from(for_version(res, &obj).to_string()))
}

/// What a write left, as [`encode_record`] sends it.
pub fn encode_written(res: &Resource, written: &WrittenObject) -> Result<Bytes, ApiError> {
    match written {
        WrittenObject::Stored(record) => encode_record(res, record),
        WrittenObject::DryRun(obj) => Ok(Bytes::from(for_version(res, obj).to_string())),
    }
}

/// True when an object stored with `api_version` is what `res` serves.
pub fn served_as_stored(res: &Resource, api_version: &str) -> bool {
    match api_version.split_once('/') {
        Some((group, version)) => group == res.group && version == res.version,
        None => res.group.is_empty() && api_version == res.version,
    }
}

/// The object as a client reading through `res`'s version sees it.
pub fn for_version<'a>(res: &Resource, obj: &'a Value) -> std::borrow::Cow<'a, Value> {
    let api_version = res.api_version();
    if obj.get("apiVersion").and_then(Value::as_str) == Some(api_version.as_str()) {
        std::borrow::Cow::Borrowed(obj)
    } else {
        let mut copy = obj.clone();
        copy["apiVersion"] = Value::String(api_version);
        std::borrow::Cow::Owned(copy)
    }
}

/// The namespace a request is scoped to, checked against the resource's scope.
pub fn namespace<'a>(res: &Resource, path: &'a ResourcePath) -> Option<&'a str> {
    if res.namespaced {
        path.namespace.as_deref()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::warning_header;

    #[test]
    fn warnings_are_quoted_as_go_quotes_them() {
        assert_eq!(
            warning_header(r#"unknown field "spec.a\b""#),
            r#"299 - "unknown field \"spec.a\\b\"""#
        );
        assert_eq!(warning_header("tab\tü"), r#"299 - "tab\u0009\u00fc""#);
        for text in ["plain", "é\n\"x\"", "🦀"] {
            assert!(hyper::header::HeaderValue::from_str(&warning_header(text)).is_ok());
        }
    }
}
