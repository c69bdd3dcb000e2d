//! `delete` and `deletecollection`: finalizers, propagation policies and preconditions.

use std::sync::Arc;

use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::filter::Filter;
use super::{for_version, json, namespace, Body, Ctx};
use crate::lifecycle::{self, DeleteOptions, Deleted, Propagation};
use crate::request::ResourcePath;
use crate::resource::Resource;
use crate::status::{self, ApiError};
use crate::{object, Api};

pub async fn handle(
    api: &Arc<Api>,
    ctx: &Ctx,
    res: &Arc<Resource>,
    path: &ResourcePath,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let options = delete_options(ctx)?;
    match lifecycle::delete(api, res, namespace(res, path), name, &options).await? {
        Deleted::Pending(obj) => Ok(json(StatusCode::OK, &for_version(res, &obj))),
        Deleted::Gone(obj) => {
            if res.builtin.is_some() {
                Ok(json(
                    StatusCode::OK,
                    &status::success(&res.group, &res.plural, name, object::uid(&obj)),
                ))
            } else {
                Ok(json(StatusCode::OK, &for_version(res, &obj)))
            }
        }
    }
}

pub async fn collection(
    api: &Arc<Api>,
    ctx: &Ctx,
    res: &Arc<Resource>,
    path: &ResourcePath,
) -> Result<Response<Body>, ApiError> {
    let options = delete_options(ctx)?;
    let filter = Filter::from_query(res, &ctx.query)?;
    let prefix = res.key_prefix(namespace(res, path));
    let page = api
        .store
        .list(&prefix, None, 0, &|r| filter.matches(&r.meta));
    let mut items = Vec::new();
    for record in page.items {
        let ns = record.meta.namespace.as_deref();
        let name = &record.meta.name;
        match lifecycle::delete(api, res, ns, name, &options).await {
            Ok(Deleted::Gone(obj)) | Ok(Deleted::Pending(obj)) => {
                items.push(for_version(res, &obj).into_owned())
            }
            // Deleted by someone else meanwhile: that is the outcome asked for.
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json(
        StatusCode::OK,
        &json!({
            "kind": res.list_kind,
            "apiVersion": res.api_version(),
            "metadata": {"resourceVersion": api.store.revision().to_string()},
            "items": items,
        }),
    ))
}

/// DeleteOptions from the body (if any) and the query, the query winning.
fn delete_options(ctx: &Ctx) -> Result<DeleteOptions, ApiError> {
    let body: Value = if ctx.body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        super::decode(&ctx.body, &ctx.content_type)?
    };
    let policy = ctx
        .query
        .get("propagationPolicy")
        .map(String::from)
        .or_else(|| {
            body.get("propagationPolicy")
                .and_then(Value::as_str)
                .map(String::from)
        });
    let propagation = match policy.as_deref() {
        None => None,
        Some("Background") => Some(Propagation::Background),
        Some("Foreground") => Some(Propagation::Foreground),
        Some("Orphan") => Some(Propagation::Orphan),
        Some(other) => {
            return Err(ApiError::unsupported(
                "propagationPolicy",
                format!("Unsupported value: {other:?}: supported values: \"Foreground\", \"Background\", \"Orphan\""),
            ))
        }
    };
    let orphan_dependents = body.get("orphanDependents").and_then(Value::as_bool);
    let propagation = propagation.or(match orphan_dependents {
        Some(true) => Some(Propagation::Orphan),
        Some(false) => Some(Propagation::Background),
        None => None,
    });
    let dry_run = ctx.query.dry_run()?
        || body
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let pre = body.get("preconditions");
    Ok(DeleteOptions {
        propagation,
        precondition_uid: pre
            .and_then(|p| p.get("uid"))
            .and_then(Value::as_str)
            .map(String::from),
        precondition_resource_version: pre
            .and_then(|p| p.get("resourceVersion"))
            .and_then(Value::as_str)
            .map(String::from),
        dry_run,
    })
}
