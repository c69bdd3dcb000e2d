//! `get`: read one object, as JSON or as a one-row Table.

use std::sync::Arc;

use hyper::{Response, StatusCode};

use super::{encode_record, for_version, json, namespace, raw_json, Body, Ctx};
use crate::request::ResourcePath;
use crate::resource::Resource;
use crate::status::ApiError;
use crate::{table, Api};

pub fn handle(
    api: &Arc<Api>,
    ctx: &Ctx,
    res: &Arc<Resource>,
    path: &ResourcePath,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    if res.namespaced && path.namespace.is_none() {
        return Err(ApiError::unknown_resource(&ctx.path));
    }
    let record = api
        .store
        .get(&res.key(namespace(res, path), name))
        .ok_or_else(|| ApiError::not_found(&res.group, &res.plural, name))?;
    if ctx.wants_table() {
        let value = record.value()?;
        let obj = for_version(res, &value);
        let include = table::Include::parse(ctx.query.get("includeObject"))?;
        let rows = vec![table::row(res, &obj, include, jiff::Timestamp::now())];
        let t = table::table(res, rows, &record.mod_revision.to_string(), None, None);
        return Ok(json(StatusCode::OK, &t));
    }
    let body = encode_record(res, &record)?;
    Ok(raw_json(StatusCode::OK, body, &[]))
}
