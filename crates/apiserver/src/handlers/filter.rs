//! Label and field selectors as list, watch and deletecollection apply them.

use apimachinery::selector::{field_value, FieldSelector, LabelSelector};
use serde_json::Value;
use store::Meta;

use crate::builtin::Builtin;
use crate::request::Query;
use crate::resource::Resource;
use crate::status::ApiError;

/// Fields every kind can be selected by.
const COMMON_FIELDS: [&str; 2] = ["metadata.name", "metadata.namespace"];

/// Extra fields Events can be selected by (`kubectl describe` uses these).
const EVENT_FIELDS: [&str; 11] = [
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

/// The selectors of one request.
pub struct Filter {
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    pub fn from_query(res: &Resource, query: &Query) -> Result<Filter, ApiError> {
        let labels = match query.get("labelSelector") {
            None => None,
            Some(s) => Some(LabelSelector::parse(s).map_err(|e| {
                ApiError::bad_field(
                    "labelSelector",
                    format!("unable to parse labelSelector {s:?}: {e}"),
                )
            })?),
        };
        let fields = match query.get("fieldSelector") {
            None => None,
            Some(s) => {
                let selector = FieldSelector::parse(s).map_err(|e| {
                    ApiError::bad_field(
                        "fieldSelector",
                        format!("unable to parse fieldSelector {s:?}: {e}"),
                    )
                })?;
                for field in selector.fields() {
                    if !supported_field(res, field) {
                        return Err(ApiError::unsupported(
                            "fieldSelector",
                            format!("field label not supported: {field}"),
                        ));
                    }
                }
                Some(selector)
            }
        };
        Ok(Filter { labels, fields })
    }

    /// Only objects named `name` (a watch on one object).
    pub fn with_name(mut self, name: &str) -> Result<Filter, ApiError> {
        let pinned = format!("metadata.name={name}");
        let combined = match &self.fields {
            None => pinned,
            Some(_) => {
                return Err(ApiError::bad_field(
                    "fieldSelector",
                    "a watch on a single object cannot also carry a fieldSelector",
                ))
            }
        };
        self.fields = Some(FieldSelector::parse(&combined).map_err(|e| {
            ApiError::bad_field(
                "metadata.name",
                format!("invalid object name {name:?}: {e}"),
            )
        })?);
        Ok(self)
    }

    pub fn is_empty(&self) -> bool {
        self.labels.as_ref().is_none_or(LabelSelector::is_empty) && self.fields.is_none()
    }

    /// Whether a stored object, by its extract, is selected.
    pub fn matches(&self, meta: &Meta) -> bool {
        if let Some(labels) = &self.labels {
            if !labels.matches_with(&|key| meta.label(key)) {
                return false;
            }
        }
        if let Some(fields) = &self.fields {
            if !fields.matches(&|field| meta.field(field).map(String::from)) {
                return false;
            }
        }
        true
    }
}

/// The selectable fields of an object stored under `key`, beyond name and
/// namespace, with their values: what the store keeps in its extract so
/// field selectors never parse the object.
pub fn selectable_fields(key: &str, obj: &Value) -> Vec<(Box<str>, Box<str>)> {
    // The storage prefixes of the kinds `supported_field` names (see
    // `Resource::key_prefix`); every other kind has name and namespace only.
    let fields: &[&str] = if key.starts_with("/core/events/") {
        &EVENT_FIELDS
    } else if key.starts_with("/core/secrets/") {
        &["type"]
    } else if key.starts_with("/core/namespaces/") {
        &["status.phase"]
    } else {
        &[]
    };
    fields
        .iter()
        .filter_map(|field| {
            // `source` selects on the component, as upstream's Event fields do.
            let path = if *field == "source" {
                "source.component"
            } else {
                field
            };
            Some((Box::from(*field), field_value(obj, path)?.into_boxed_str()))
        })
        .collect()
}

fn supported_field(res: &Resource, field: &str) -> bool {
    if COMMON_FIELDS.contains(&field) {
        return true;
    }
    match res.builtin {
        Some(Builtin::Event) => EVENT_FIELDS.contains(&field),
        Some(Builtin::Secret) => field == "type",
        Some(Builtin::Namespace) => field == "status.phase",
        _ => false,
    }
}
