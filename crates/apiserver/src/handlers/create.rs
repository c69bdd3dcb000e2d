//! `create`: POST a new object into a collection.

use std::sync::Arc;

use hyper::{Response, StatusCode};

use super::{encode_written, namespace, raw_json, Body, Ctx};
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
    Ok(raw_json(
        StatusCode::CREATED,
        encode_written(res, &written.object)?,
        &written.warnings,
    ))
}
