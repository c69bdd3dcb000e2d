//! Table output (`meta.k8s.io/v1` Table), which `kubectl get` asks for: the
//! NAME column, then the resource's printer columns, with the row's object
//! as metadata only unless the client asks for more.

use serde_json::{json, Value};

use crate::resource::{ColumnSource, Resource};
use crate::status::ApiError;

/// The `includeObject` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(value: Option<&str>) -> Result<Include, ApiError> {
        match value {
            None | Some("Metadata") => Ok(Include::Metadata),
            Some("None") => Ok(Include::None),
            Some("Object") => Ok(Include::Object),
            Some(other) => Err(ApiError::unsupported(
                "includeObject",
                format!("Unsupported value: {other:?}: supported values: \"None\", \"Metadata\", \"Object\""),
            )),
        }
    }
}

/// One row for one object.
pub fn row(res: &Resource, obj: &Value, include: Include, now: jiff::Timestamp) -> Value {
    let mut cells = Vec::with_capacity(res.columns.len() + 1);
    cells.push(obj.pointer("/metadata/name").cloned().unwrap_or(json!("")));
    for column in &res.columns {
        let cell = match &column.source {
            ColumnSource::Path(col, path) => apimachinery::printer::cell(obj, col, path, now),
            ColumnSource::Computed(f) => f(obj, now),
        };
        cells.push(cell);
    }
    let object = match include {
        Include::None => Value::Null,
        Include::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
        }),
        Include::Object => obj.clone(),
    };
    let mut row = json!({"cells": cells});
    if !object.is_null() {
        row["object"] = object;
    }
    row
}

/// A whole Table.
pub fn table(
    res: &Resource,
    rows: Vec<Value>,
    resource_version: &str,
    continue_token: Option<&str>,
    remaining: Option<usize>,
) -> Value {
    let mut definitions = vec![json!({
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": "Name must be unique within a namespace.",
        "priority": 0,
    })];
    for c in &res.columns {
        definitions.push(json!({
            "name": c.name,
            "type": c.type_,
            "format": c.format,
            "description": c.description,
            "priority": c.priority,
        }));
    }
    let mut metadata = json!({"resourceVersion": resource_version});
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    if let Some(n) = remaining {
        metadata["remainingItemCount"] = json!(n);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    })
}
