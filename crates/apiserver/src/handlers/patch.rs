//! `patch`: JSON patch, JSON merge patch, strategic merge patch (built-in
//! kinds only, as upstream) and server-side apply.

use std::sync::Arc;

use apimachinery::smp;
use hyper::{Response, StatusCode};
use serde_json::Value;

use super::{body, decode, encode_written, namespace, raw_json, Body, Ctx};
use crate::lifecycle::{self, Part};
use crate::request::ResourcePath;
use crate::resource::Resource;
use crate::status::{reason, ApiError};
use crate::Api;

/// The patch media types.
const JSON_PATCH: &str = "application/json-patch+json";
const MERGE_PATCH: &str = "application/merge-patch+json";
const STRATEGIC_MERGE_PATCH: &str = "application/strategic-merge-patch+json";
const APPLY_PATCH: &str = "application/apply-patch+yaml";
const APPLY_PATCH_CBOR: &str = "application/apply-patch+cbor";

pub async fn handle(
    api: &Arc<Api>,
    ctx: &Ctx,
    res: &Arc<Resource>,
    path: &ResourcePath,
    name: &str,
    part: Part,
) -> Result<Response<Body>, ApiError> {
    let media = ctx.content_type.split(';').next().unwrap_or("").trim();
    let opts = ctx.write_options()?;
    let ns = namespace(res, path);
    let written = match media {
        APPLY_PATCH => {
            if ctx.query.get("fieldManager").is_none() {
                return Err(ApiError::unsupported(
                    "fieldManager",
                    "PATCH, application/apply-patch+yaml requires the fieldManager query parameter",
                ));
            }
            let applied = lifecycle::Applied {
                config: decode(&ctx.body, "application/yaml")?,
                force: ctx.query.flag("force")?,
                may_create: &|| may_create(api, ctx, path, name),
            };
            lifecycle::apply(api, res, ns, name, applied, part, &opts).await?
        }
        JSON_PATCH => {
            let value = body::decode_json(&ctx.body, "the JSON patch")?;
            let patch: json_patch::Patch = serde_json::from_value(value).map_err(|e| {
                let message = format!("the JSON patch is not a valid list of operations: {e}");
                ApiError::bad_request(message.clone()).with_cause(
                    apimachinery::FieldError::new(
                        apimachinery::CauseType::Invalid,
                        body::BODY_FIELD,
                        message,
                    ),
                )
            })?;
            lifecycle::update_with(api, res, ns, name, part, &opts, |current| {
                apply_json_patch(current, &patch)
            })
            .await?
        }
        MERGE_PATCH => {
            let patch = parse_object(&ctx.body)?;
            lifecycle::update_with(api, res, ns, name, part, &opts, |current| {
                let mut doc = current.clone();
                json_patch::merge(&mut doc, &patch);
                Ok(doc)
            })
            .await?
        }
        STRATEGIC_MERGE_PATCH => {
            let Some(builtin) = res.builtin.filter(|_| res.supports_strategic_merge()) else {
                return Err(ApiError::new(
                    415,
                    reason::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "strategic merge patch is not supported for custom resources ({}); use {MERGE_PATCH}, {JSON_PATCH} or {APPLY_PATCH}",
                        res.kind
                    ),
                ));
            };
            let patch = parse_object(&ctx.body)?;
            let meta = smp::builtin_patch_meta(builtin.kind());
            lifecycle::update_with(api, res, ns, name, part, &opts, |current| {
                smp::strategic_merge(current, &patch, meta.as_ref()).map_err(|e| {
                    ApiError::new(
                        422,
                        reason::INVALID,
                        format!("the strategic merge patch could not be applied: {e}"),
                    )
                })
            })
            .await?
        }
        APPLY_PATCH_CBOR => {
            return Err(ApiError::new(
                415,
                reason::UNSUPPORTED_MEDIA_TYPE,
                format!("{APPLY_PATCH_CBOR} is not supported; send {APPLY_PATCH}"),
            ))
        }
        other => {
            return Err(ApiError::new(
                415,
                reason::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "the body of the request was in an unknown format ({other:?}) - accepted media types include: {JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}{}",
                    if res.supports_strategic_merge() {
                        format!(", {STRATEGIC_MERGE_PATCH}")
                    } else {
                        String::new()
                    }
                ),
            ))
        }
    };
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(raw_json(
        status,
        encode_written(res, &written.object)?,
        &written.warnings,
    ))
}

/// The check an apply makes before it creates: the same request, as the
/// verb `create` on the object's name, as kube-apiserver's patch handler
/// authorizes it.
fn may_create(api: &Api, ctx: &Ctx, path: &ResourcePath, name: &str) -> Result<(), ApiError> {
    let attrs = rbac::Attributes {
        user: &ctx.user,
        verb: "create",
        resource_request: true,
        namespace: path.namespace.as_deref().unwrap_or_default(),
        api_group: &path.group,
        api_version: &path.version,
        resource: &path.plural,
        subresource: path.subresource.as_deref().unwrap_or_default(),
        name,
        path: "",
    };
    let decision = api.authz.authorize(api, &attrs);
    if decision.allowed {
        Ok(())
    } else {
        Err(crate::authz::forbidden(&attrs, &decision.reason))
    }
}

/// `current` with a JSON patch applied, or a 422 naming the operation that
/// failed.
///
/// Applied to a copy with `patch_unsafe`, which does not undo what went
/// before a failed operation: the copy is dropped on error anyway, and
/// json-patch's undo panics on some patches (a failed `move` of the whole
/// document into itself, which the fuzz targets found).
pub(crate) fn apply_json_patch(
    current: &Value,
    patch: &json_patch::Patch,
) -> Result<Value, ApiError> {
    let mut doc = current.clone();
    json_patch::patch_unsafe(&mut doc, &patch.0).map_err(|e| {
        let mut err = ApiError::new(
            422,
            reason::INVALID,
            format!("the JSON patch could not be applied: {e}"),
        );
        let field = e.path.to_string().trim_start_matches('/').replace('/', ".");
        err.causes.push(apimachinery::FieldError::new(
            apimachinery::CauseType::Invalid,
            field,
            format!("operation {} failed: {}", e.operation, e.kind),
        ));
        err
    })?;
    Ok(doc)
}

fn parse_object(bytes: &[u8]) -> Result<Value, ApiError> {
    let value = body::decode_json(bytes, "the patch")?;
    if !value.is_object() {
        return Err(body::not_an_object("the patch", &value));
    }
    Ok(value)
}
