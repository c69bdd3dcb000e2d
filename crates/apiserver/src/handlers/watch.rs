//! `watch`: a stream of change events, one JSON object per line, from a
//! `resourceVersion` (or from the current state, as synthetic ADDED events),
//! with bookmarks, selectors, `timeoutSeconds`, and a 410 `ERROR` event when
//! the requested revision has been compacted away.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};
use store::{Event, EventType, Meta, Record, StoreError, WatchItem};
use tokio::sync::mpsc;

use super::filter::Filter;
use super::{for_version, namespace, served_as_stored, Body, Ctx};
use crate::request::ResourcePath;
use crate::resource::Resource;
use crate::status::ApiError;
use crate::{table, Api};

/// Longest a watch stays open when the client sets no `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Annotation on the bookmark that ends the initial events of `sendInitialEvents`.
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// Encoded events buffered per watch before the producer waits for the client.
const STREAM_BUFFER: usize = 256;

pub async fn handle(
    api: &Arc<Api>,
    ctx: &Ctx,
    res: &Arc<Resource>,
    path: &ResourcePath,
    name: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let mut filter = Filter::from_query(res, &ctx.query)?;
    if let Some(name) = name {
        filter = filter.with_name(name)?;
    }
    let bookmarks = ctx.query.flag("allowWatchBookmarks")?;
    let send_initial = ctx.query.flag("sendInitialEvents")?;
    let timeout = match ctx.query.number("timeoutSeconds")? {
        Some(n) if n > 0 => Duration::from_secs(n as u64),
        Some(n) if n < 0 => {
            return Err(ApiError::bad_field(
                "timeoutSeconds",
                format!("query parameter timeoutSeconds: must not be negative, got {n}"),
            ))
        }
        _ => DEFAULT_TIMEOUT,
    };
    let table = if ctx.wants_table() {
        Some(table::Include::parse(ctx.query.get("includeObject"))?)
    } else {
        None
    };
    let prefix = res.key_prefix(namespace(res, path));
    let requested = ctx.query.get("resourceVersion").map(String::from);
    let from_now = matches!(requested.as_deref(), None | Some("0")) || send_initial;

    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_BUFFER);
    let encoder = Encoder {
        res: res.clone(),
        table,
    };
    let (initial, start) = if from_now {
        let (items, revision, watch) = api.store.list_and_watch(&prefix);
        let items: Vec<Arc<store::Record>> = items
            .into_iter()
            .filter(|r| filter.matches(&r.meta))
            .collect();
        (items, Ok((watch, revision)))
    } else {
        let revision = requested
            .as_deref()
            .unwrap_or("0")
            .parse::<u64>()
            .map_err(|_| {
                ApiError::bad_field(
                    "resourceVersion",
                    format!(
                        "query parameter resourceVersion: {:?} is not a resourceVersion this server returned",
                        requested.as_deref().unwrap_or("")
                    ),
                )
            })?;
        (
            Vec::new(),
            api.store.watch(&prefix, revision).map(|w| (w, revision)),
        )
    };
    let mut stopped = ctx.stopped.clone();
    let bookmark_interval = api.bookmark_interval;

    tokio::spawn(async move {
        let (mut watch, start_revision) = match start {
            Ok(started) => started,
            Err(StoreError::Compacted { compact_revision }) => {
                let _ = tx.send(encoder.gone(compact_revision)).await;
                return;
            }
            Err(err) => {
                let _ = tx.send(encoder.error(&ApiError::from(err))).await;
                return;
            }
        };
        for record in initial {
            let line = match encoder.record(EventType::Added, &record) {
                Ok(line) => line,
                Err(err) => encoder.error(&err),
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
        if send_initial {
            let _ = tx.send(encoder.bookmark(start_revision, true)).await;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ticker = tokio::time::interval(bookmark_interval);
        ticker.tick().await;
        loop {
            let line = tokio::select! {
                item = watch.next() => match item {
                    Some(WatchItem::Event(event)) => {
                        let Some(kind) = visible_change(&filter, event.kind, &event.record.meta, event.prev.as_deref()) else {
                            continue;
                        };
                        match encoder.event(kind, &event) {
                            Ok(line) => line,
                            Err(err) => encoder.error(&err),
                        }
                    }
                    Some(WatchItem::Compacted { compact_revision }) => {
                        let _ = tx.send(encoder.gone(compact_revision)).await;
                        return;
                    }
                    None => return,
                },
                _ = ticker.tick(), if bookmarks => encoder.bookmark(watch.progress(), false),
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
                _ = stopped.changed() => return,
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });

    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    let body = StreamBody::new(stream).boxed_unsync();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("cache-control", "no-cache, private")
        .header("transfer-encoding", "chunked")
        .body(body)
        .map_err(|e| ApiError::internal(format!("cannot start the watch response: {e}")))
}

/// How a change looks through the client's selectors: an object that moves
/// into the selection is ADDED, one that moves out is DELETED.
fn visible_change(
    filter: &Filter,
    kind: EventType,
    object: &Meta,
    prev: Option<&Meta>,
) -> Option<EventType> {
    let now = filter.matches(object);
    match kind {
        EventType::Added => now.then_some(EventType::Added),
        EventType::Deleted => now.then_some(EventType::Deleted),
        EventType::Modified => {
            let before = prev.map(|p| filter.matches(p)).unwrap_or(now);
            match (before, now) {
                (true, true) => Some(EventType::Modified),
                (false, true) => Some(EventType::Added),
                (true, false) => Some(EventType::Deleted),
                (false, false) => None,
            }
        }
    }
}

fn type_name(kind: EventType) -> &'static str {
    match kind {
        EventType::Added => "ADDED",
        EventType::Modified => "MODIFIED",
        EventType::Deleted => "DELETED",
    }
}

/// Encodes watch events for one client (plain objects or Table rows).
struct Encoder {
    res: Arc<Resource>,
    table: Option<table::Include>,
}

impl Encoder {
    /// One event line. Plain events of objects stored at the watched
    /// version are the same bytes for every watcher: they are encoded once,
    /// around the stored JSON, and shared.
    fn event(&self, kind: EventType, event: &Event) -> Result<Bytes, ApiError> {
        if self.table.is_none() && served_as_stored(&self.res, &event.record.meta.api_version) {
            return Ok(event.encoded(kind, || plain_line(kind, &event.record))?);
        }
        self.record(kind, &event.record)
    }

    /// One event line for `record`, encoded for this watcher alone.
    fn record(&self, kind: EventType, record: &Record) -> Result<Bytes, ApiError> {
        if self.table.is_none() && served_as_stored(&self.res, &record.meta.api_version) {
            return Ok(plain_line(kind, record)?);
        }
        let value = record.value()?;
        let obj = for_version(&self.res, &value);
        let kind = type_name(kind);
        let object = match self.table {
            Some(include) => {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let row = table::row(&self.res, &obj, include, jiff::Timestamp::now());
                table::table(&self.res, vec![row], &rv, None, None)
            }
            None => obj.into_owned(),
        };
        Ok(line(&json!({"type": kind, "object": object})))
    }

    fn bookmark(&self, revision: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            metadata["annotations"] = json!({INITIAL_EVENTS_END: "true"});
        }
        line(&json!({
            "type": "BOOKMARK",
            "object": {"kind": self.res.kind, "apiVersion": self.res.api_version(), "metadata": metadata},
        }))
    }

    fn gone(&self, compact_revision: u64) -> Bytes {
        self.error(&ApiError::gone(format!(
            "too old resource version: the oldest available is {compact_revision}"
        )))
    }

    fn error(&self, err: &ApiError) -> Bytes {
        line(&json!({"type": "ERROR", "object": err.to_status()}))
    }
}

/// `{"type":…,"object":<stored JSON>}` and a newline.
fn plain_line(kind: EventType, record: &Record) -> Result<Bytes, store::StoreError> {
    let json = record.json()?;
    let kind = type_name(kind);
    let mut out = Vec::with_capacity(json.len() + 40);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"}\n");
    Ok(Bytes::from(out))
}

fn line(value: &Value) -> Bytes {
    let mut out = value.to_string().into_bytes();
    out.push(b'\n');
    Bytes::from(out)
}
