//! `update`: PUT a whole object (or its status), guarded by `resourceVersion`.

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Response, StatusCode};

use super::{for_version, namespace, raw_json, Body, Ctx};
use crate::lifecycle::{self, Part};
use crate::request::ResourcePath;
use crate::resource::Resource;
use crate::status::ApiError;
use crate::Api;

pub async fn handle(
    api: &Arc<Api>,
    ctx: &Ctx,
    res: &Arc<Resource>,
    path: &ResourcePath,
    name: &str,
    part: Part,
) -> Result<Response<Body>, ApiError> {
    let body = ctx.decode_body()?;
    let opts = ctx.write_options()?;
    let written =
        lifecycle::update(api, res, namespace(res, path), name, body, part, &opts).await?;
    let obj = for_version(res, &written.object);
    let status = if written.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(raw_json(
        status,
        Bytes::from(obj.to_string()),
        &written.warnings,
    ))
}
