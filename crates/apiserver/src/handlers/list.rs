//! `list`: every object of a type, optionally in one namespace, filtered by
//! selectors and paged with `limit` / `continue`.

use std::io::Write;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::filter::Filter;
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
) -> Result<Response<Body>, ApiError> {
    let filter = Filter::from_query(res, &ctx.query)?;
    check_resource_version_match(ctx)?;
    let limit = match ctx.query.number("limit")? {
        None => 0,
        Some(n) if n < 0 => {
            return Err(ApiError::bad_field(
                "limit",
                format!("query parameter limit: must be zero or positive, got {n}"),
            ))
        }
        Some(n) => n as usize,
    };
    let prefix = res.key_prefix(namespace(res, path));
    let start = match ctx.query.get("continue") {
        None => None,
        Some(token) => Some(decode_continue(api, token, &prefix)?),
    };
    let page = api.store.list(
        &prefix,
        start.as_ref().map(|(_, key)| key.as_str()),
        limit,
        &|record| filter.is_empty() || filter.matches(&record.meta),
    );
    // Every page of one list reports the revision of its first page, as
    // kube-apiserver's do. Later pages are read at the newest state, which
    // holds every change since; a watch from that revision replays those
    // changes, so a client that lists page by page and then watches (as
    // kube-rs's watcher and client-go's reflector do) misses none of them.
    let list_revision = start.as_ref().map_or(page.revision, |(rv, _)| *rv);
    let revision = list_revision.to_string();
    let continue_token = (page.remaining > 0)
        .then(|| {
            page.items
                .last()
                .map(|r| encode_continue(list_revision, &r.key))
        })
        .flatten();
    let remaining = (page.remaining > 0).then_some(page.remaining);

    if ctx.wants_table() {
        let include = table::Include::parse(ctx.query.get("includeObject"))?;
        let now = jiff::Timestamp::now();
        let rows = page
            .items
            .iter()
            .map(|r| {
                Ok(table::row(
                    res,
                    &for_version(res, &r.value()?),
                    include,
                    now,
                ))
            })
            .collect::<Result<_, ApiError>>()?;
        let t = table::table(res, rows, &revision, continue_token.as_deref(), remaining);
        return Ok(json(StatusCode::OK, &t));
    }

    // Written by hand rather than built as one Value, so a list of 40k
    // objects is serialized once and never copied.
    let mut metadata = json!({"resourceVersion": revision});
    if let Some(token) = &continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(n) = remaining {
        metadata["remainingItemCount"] = json!(n);
    }
    // Settled objects are held compressed, so the size is a guess.
    let size: usize = page.items.iter().map(|r| 4 * r.body_size() + 1).sum();
    let mut out = Vec::with_capacity(256 + size);
    let head =
        json!({"kind": res.list_kind, "apiVersion": res.api_version(), "metadata": metadata});
    let head = head.to_string();
    out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
    out.extend_from_slice(b",\"items\":[");
    for (i, record) in page.items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&encode_record(res, record)?);
    }
    let _ = out.write_all(b"]}");
    Ok(raw_json(StatusCode::OK, Bytes::from(out), &[]))
}

fn check_resource_version_match(ctx: &Ctx) -> Result<(), ApiError> {
    match ctx.query.get("resourceVersionMatch") {
        None | Some("NotOlderThan") => Ok(()),
        Some("Exact") => Err(ApiError::unsupported(
            "resourceVersionMatch",
            "resourceVersionMatch=Exact is not supported: lists are served at the newest revision; use NotOlderThan",
        )),
        Some(other) => Err(ApiError::unsupported(
            "resourceVersionMatch",
            format!("Unsupported value: {other:?}: supported values: \"NotOlderThan\", \"Exact\""),
        )),
    }
}

/// The `continue` token: upstream's shape, base64 JSON of the list revision and the last key.
fn encode_continue(revision: u64, key: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": key});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

/// The revision of the list's first page and the last key served.
fn decode_continue(api: &Api, token: &str, prefix: &str) -> Result<(u64, String), ApiError> {
    let invalid =
        |why: &str| ApiError::bad_field("continue", format!("continue key is not valid: {why}"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| invalid("not base64"))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("not JSON"))?;
    let start = value
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("no start key"))?;
    let rv = value
        .get("rv")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("no list revision"))?;
    if !start.starts_with(prefix) {
        return Err(invalid("it belongs to a different list"));
    }
    if rv < api.store.compact_revision() {
        return Err(ApiError::gone(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
        ));
    }
    Ok((rv, start.to_string()))
}
