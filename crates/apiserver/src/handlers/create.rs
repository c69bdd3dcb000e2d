//! `create`: POST a new object into a collection.

use std::sync::Arc;

use bytes::Bytes;
use hyper::{Response, StatusCode};

use super::{for_version, namespace, raw_json, Body, Ctx};
use crate::request::ResourcePath;
use crate::resource::Resource;
use crate::status::ApiError;
use crate::{lifecycle, Api};

pub async fn handle(
    api: &Arc<Api>,
    ctx: &Ctx,
    res: &Arc<Resource>,
    path: &ResourcePath,
) -> Result<Response<Body>, ApiError> {
    if res.namespaced && path.namespace.is_none() {
        return Err(ApiError::bad_field(
            "metadata.namespace",
            format!(
                "{} is namespaced: POST to /namespaces/<namespace>/{}",
                res.plural, res.plural
            ),
        ));
    }
    let body = ctx.decode_body()?;
    let opts = ctx.write_options()?;
    let written = lifecycle::create(api, res, namespace(res, path), body, &opts).await?;
    let obj = for_version(res, &written.object);
    Ok(raw_json(
        StatusCode::CREATED,
        Bytes::from(obj.to_string()),
        &written.warnings,
    ))
}
