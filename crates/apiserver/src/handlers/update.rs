//! `update`: PUT a whole object (or its status), guarded by `resourceVersion`.

use std::sync::Arc;

use hyper::{Response, StatusCode};

use super::{encode_written, namespace, raw_json, Body, Ctx};
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
