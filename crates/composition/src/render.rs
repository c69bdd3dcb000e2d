//! Rendering: a composite resource and a `mode: Resources` Composition in,
//! the composed resources, the composite's new state, readiness and
//! connection details out. Pure: no I/O, same inputs give the same output.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::connection::{self, Details};
use crate::patch::{self, Direction};
use crate::readiness;

/// Labels and annotations composed resources carry, as Crossplane's.
pub const LABEL_COMPOSITE: &str = "crossplane.io/composite";
pub const LABEL_CLAIM_NAME: &str = "crossplane.io/claim-name";
pub const LABEL_CLAIM_NAMESPACE: &str = "crossplane.io/claim-namespace";
pub const ANNOTATION_RESOURCE_NAME: &str = "crossplane.io/composition-resource-name";

/// A composed resource as it is in the cluster, with its connection Secret.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub object: Value,
    pub connection: Details,
}

/// One composed resource to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Composed {
    /// The template's name in the Composition.
    pub template: String,
    pub object: Value,
    /// Ready by the template's readiness checks (false until observed).
    pub ready: bool,
}

/// Everything rendering decides.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub composed: Vec<Composed>,
    /// The composite after ToComposite patches from observed resources.
    pub composite: Value,
    /// Only what ToComposite patches wrote, on an empty object: the fields
    /// the composite reconciler owns on the composite resource.
    pub to_composite: Value,
    pub connection: Details,
    /// All composed resources ready.
    pub ready: bool,
}

/// A rendering failure, naming the resource template and the patch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RenderError {
    pub message: String,
}

fn fail(template: &str, message: impl std::fmt::Display) -> RenderError {
    RenderError {
        message: format!("resource {template:?}: {message}"),
    }
}

/// The deterministic name of a composed resource.
pub fn composed_name(composite: &str, template: &str) -> String {
    let name = format!("{composite}-{template}").to_lowercase();
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if cleaned.len() <= 63 {
        return cleaned;
    }
    // Long names keep their start and gain a hash of the whole, so they stay unique.
    use sha2::{Digest, Sha256};
    let digest = hex::encode(&Sha256::digest(cleaned.as_bytes())[..4]);
    format!("{}-{digest}", cleaned[..54].trim_end_matches('-'))
}

/// Renders `xr` with `composition`, given what is observed of each template.
pub fn render(
    xr: &Value,
    composition: &Value,
    observed: &BTreeMap<String, Observed>,
) -> Result<Rendered, RenderError> {
    let spec = composition.get("spec").ok_or_else(|| RenderError {
        message: "the Composition has no spec".into(),
    })?;
    if let Some(mode) = spec.get("mode").and_then(Value::as_str) {
        if mode != "Resources" {
            return Err(RenderError {
                message: format!("Composition mode {mode:?} is not supported yet; use mode: Resources (patch & transform)"),
            });
        }
    }
    let patch_sets = spec
        .get("patchSets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let templates = spec
        .get("resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let xr_name = xr
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut composite = xr.clone();
    let mut to_composite = json!({});
    let mut composed = Vec::new();
    let mut details = Details::new();
    let mut seen = std::collections::BTreeSet::new();

    for (i, template) in templates.iter().enumerate() {
        let name = template
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("resource-{i}"));
        if !seen.insert(name.clone()) {
            return Err(fail(
                &name,
                "two resources in the Composition have this name; names must be unique",
            ));
        }
        let mut object = template
            .get("base")
            .cloned()
            .ok_or_else(|| fail(&name, "base is required"))?;
        if object.get("apiVersion").is_none() || object.get("kind").is_none() {
            return Err(fail(&name, "base needs apiVersion and kind"));
        }
        let raw_patches = template
            .get("patches")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let patches = patch::expand(&raw_patches, &patch_sets).map_err(|e| fail(&name, e))?;
        for (j, p) in patches.iter().enumerate() {
            if patch::direction(p) == Some(Direction::ToComposed) {
                patch::apply(p, xr, &mut object)
                    .map_err(|e| fail(&name, format!("patch {j} ({}): {e}", patch::describe(p))))?;
            }
        }
        stamp(&mut object, xr, xr_name, &name);

        let seen_object = observed.get(&name);
        let checks = template
            .get("readinessChecks")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // `None` checks only: ready as soon as it is composed, as in Crossplane.
        let mut ready = !checks.is_empty()
            && checks
                .iter()
                .all(|c| c.get("type").and_then(Value::as_str) == Some("None"));
        if let Some(obs) = seen_object {
            for (j, p) in patches.iter().enumerate() {
                if patch::direction(p) == Some(Direction::ToComposite) {
                    patch::apply(p, &obs.object, &mut composite).map_err(|e| {
                        fail(&name, format!("patch {j} ({}): {e}", patch::describe(p)))
                    })?;
                    // Same patch, same input: it cannot fail where the first did not.
                    let _ = patch::apply(p, &obs.object, &mut to_composite);
                }
            }
            ready = readiness::is_ready(&checks, &obs.object).map_err(|e| fail(&name, e))?;
            let specs = template
                .get("connectionDetails")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            details.extend(
                connection::extract(&specs, &obs.object, &obs.connection)
                    .map_err(|e| fail(&name, e))?,
            );
        }
        composed.push(Composed {
            template: name,
            object,
            ready,
        });
    }
    let ready = composed.iter().all(|c| c.ready);
    Ok(Rendered {
        composed,
        composite,
        to_composite,
        connection: details,
        ready,
    })
}

/// Name, labels, annotation and owner reference of a composed resource:
/// the same for patch & transform and for function pipelines.
pub fn stamp(object: &mut Value, xr: &Value, xr_name: &str, template: &str) {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    let meta = &mut object["metadata"];
    // A name the base or a patch set is kept, as Crossplane keeps it (a
    // Dapr Component is found by the name an app gives it); otherwise the
    // name is derived from the composite's and the template's.
    if meta
        .get("name")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        meta["name"] = json!(composed_name(xr_name, template));
    }
    if !meta.get("labels").is_some_and(Value::is_object) {
        meta["labels"] = json!({});
    }
    meta["labels"][LABEL_COMPOSITE] = json!(xr_name);
    for label in [LABEL_CLAIM_NAME, LABEL_CLAIM_NAMESPACE] {
        if let Some(v) = xr.pointer("/metadata/labels").and_then(|l| l.get(label)) {
            meta["labels"][label] = v.clone();
        }
    }
    if !meta.get("annotations").is_some_and(Value::is_object) {
        meta["annotations"] = json!({});
    }
    meta["annotations"][ANNOTATION_RESOURCE_NAME] = json!(template);
    if let Some(uid) = xr.pointer("/metadata/uid").and_then(Value::as_str) {
        meta["ownerReferences"] = json!([{
            "apiVersion": xr.get("apiVersion").cloned().unwrap_or(Value::Null),
            "kind": xr.get("kind").cloned().unwrap_or(Value::Null),
            "name": xr_name,
            "uid": uid,
            "controller": true,
            "blockOwnerDeletion": true
        }]);
    }
}
