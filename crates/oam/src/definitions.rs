//! ComponentDefinitions: one generated for every XRD that offers a claim,
//! so an OAM component's `type` can be a claim kind's singular name, and
//! what a definition (generated or written by a platform team) resolves to.
//! Pure data in, data out; `controller` does the I/O.

use serde_json::{json, Value};

use crate::names::{self, label};
use crate::plan::Definition;

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The XRD version claims are served at: the referenceable one, else the first.
fn served_version(xrd: &Value) -> Option<&Value> {
    let versions = xrd.pointer("/spec/versions")?.as_array()?;
    versions
        .iter()
        .find(|v| v.get("referenceable").and_then(Value::as_bool) == Some(true))
        .or_else(|| versions.first())
}

/// The schema of a claim's `spec`, as the XRD declares it.
fn spec_schema(xrd: &Value) -> Option<&Value> {
    served_version(xrd)?.pointer("/schema/openAPIV3Schema/properties/spec")
}

/// The schema a component's properties are checked against: the claim's
/// `spec.parameters` where it has one (properties become those), else the
/// claim's whole `spec`.
pub fn parameter_schema(xrd: &Value) -> Value {
    let Some(spec) = spec_schema(xrd) else {
        return json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    };
    spec.pointer("/properties/parameters")
        .cloned()
        .unwrap_or_else(|| spec.clone())
}

/// Whether properties go to `spec.parameters` for claims of this XRD.
pub fn into_parameters(xrd: &Value) -> bool {
    spec_schema(xrd).is_some_and(|s| s.pointer("/properties/parameters").is_some())
}

/// The claim kind an XRD offers: `(apiVersion, kind, plural, singular)`.
pub fn claim_kind(xrd: &Value) -> Option<(String, String, String, String)> {
    let group = text(xrd, "/spec/group")?;
    let kind = text(xrd, "/spec/claimNames/kind")?;
    let plural = text(xrd, "/spec/claimNames/plural")?;
    let version = text(served_version(xrd)?, "/name")?;
    let singular = text(xrd, "/spec/claimNames/singular")
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    Some((
        format!("{group}/{version}"),
        kind.to_string(),
        plural.to_string(),
        singular,
    ))
}

/// The generated ComponentDefinition and its parameter-schema ConfigMap
/// for an XRD, under `name` (the claim's singular name, unless another
/// XRD's definition took it), or `None` for an XRD that offers no claim.
pub fn generated(xrd: &Value, name: &str) -> Option<(Value, Value)> {
    let (api_version, kind, plural, _) = claim_kind(xrd)?;
    let xrd_name = text(xrd, "/metadata/name").unwrap_or_default();
    let group = text(xrd, "/spec/group").unwrap_or_default();
    let owner = json!([{
        "apiVersion": text(xrd, "/apiVersion").unwrap_or("apiextensions.crossplane.io/v1"),
        "kind": "CompositeResourceDefinition",
        "name": xrd_name,
        "uid": text(xrd, "/metadata/uid").unwrap_or_default(),
    }]);
    let configmap = format!("{}{name}", names::SCHEMA_CONFIGMAP_PREFIX);
    let description = format!(
        "A {kind} claim ({group}), defined by the XRD {xrd_name}; its properties are the claim's {}.",
        if into_parameters(xrd) {
            "spec.parameters"
        } else {
            "spec"
        }
    );
    let definition = json!({
        "apiVersion": names::API_VERSION,
        "kind": names::COMPONENT_DEFINITION,
        "metadata": {
            "name": name,
            "namespace": names::DEFINITIONS_NAMESPACE,
            "labels": {label::XRD: xrd_name},
            "annotations": {"definition.oam.dev/description": description},
            "ownerReferences": owner
        },
        "spec": {
            "workload": {
                "definition": {"apiVersion": api_version, "kind": kind},
                "type": format!("{plural}.{group}")
            }
        }
    });
    let schema = serde_json::to_string(&parameter_schema(xrd)).unwrap_or_else(|_| "{}".into());
    let configmap = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": configmap,
            "namespace": names::DEFINITIONS_NAMESPACE,
            "labels": {label::XRD: xrd_name, "definition.oam.dev": "schema", "definition.oam.dev/name": name},
            "ownerReferences": owner
        },
        "data": {names::SCHEMA_KEY: schema}
    });
    Some((definition, configmap))
}

/// What a ComponentDefinition names, or why it cannot be used. `xrds` are
/// the XRDs there are, to learn whether the claim kind takes its
/// properties as `spec.parameters`.
pub fn resolve(definition: &Value, xrds: &[Value]) -> Result<Definition, String> {
    let name = text(definition, "/metadata/name").unwrap_or_default();
    if definition.pointer("/spec/schematic/cue").is_some() {
        return Err(format!(
            "ComponentDefinition \"{name}\": spec.schematic.cue: Forbidden: Plinth does not evaluate CUE schematics; name a claim kind in spec.workload.definition {{apiVersion, kind}} and drop spec.schematic"
        ));
    }
    if let Some(other) = definition
        .pointer("/spec/schematic")
        .and_then(Value::as_object)
        .and_then(|s| s.keys().next())
    {
        return Err(format!(
            "ComponentDefinition \"{name}\": spec.schematic.{other}: Forbidden: Plinth makes claims only; name a claim kind in spec.workload.definition {{apiVersion, kind}} and drop spec.schematic"
        ));
    }
    let api_version = text(definition, "/spec/workload/definition/apiVersion");
    let kind = text(definition, "/spec/workload/definition/kind");
    let (Some(api_version), Some(kind)) = (api_version, kind) else {
        return Err(format!(
            "ComponentDefinition \"{name}\": spec.workload.definition: Required value: the apiVersion and kind of the claim a component becomes"
        ));
    };
    let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
    let into_parameters = xrds
        .iter()
        .find(|x| {
            text(x, "/spec/group") == Some(group) && text(x, "/spec/claimNames/kind") == Some(kind)
        })
        .is_some_and(into_parameters);
    Ok(Definition {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        into_parameters,
    })
}

#[cfg(test)]
mod tests {
    use pretty_assertions::assert_eq;

    use super::*;

    fn xrd() -> Value {
        json!({
            "apiVersion": "apiextensions.crossplane.io/v1", "kind": "CompositeResourceDefinition",
            "metadata": {"name": "xpostgresqlinstances.platform.plinth.dev", "uid": "x-1"},
            "spec": {
                "group": "platform.plinth.dev",
                "names": {"kind": "XPostgreSQLInstance", "plural": "xpostgresqlinstances"},
                "claimNames": {"kind": "PostgreSQLInstance", "plural": "postgresqlinstances"},
                "versions": [{"name": "v1alpha1", "served": true, "referenceable": true,
                              "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                                  "type": "object",
                                  "properties": {"parameters": {"type": "object", "properties": {"size": {"type": "string"}}}}
                              }}}}}]
            }
        })
    }

    #[test]
    fn an_xrd_with_a_claim_gets_a_definition_named_by_the_claims_singular() {
        let (definition, configmap) = generated(&xrd(), "postgresqlinstance").unwrap();
        assert_eq!(
            definition["spec"]["workload"],
            json!({"definition": {"apiVersion": "platform.plinth.dev/v1alpha1", "kind": "PostgreSQLInstance"},
                   "type": "postgresqlinstances.platform.plinth.dev"})
        );
        assert_eq!(definition["metadata"]["namespace"], "vela-system");
        assert_eq!(definition["metadata"]["ownerReferences"][0]["uid"], "x-1");
        assert_eq!(
            configmap["metadata"]["name"],
            "component-schema-postgresqlinstance"
        );
        let schema: Value = serde_json::from_str(
            configmap["data"]["openapi-v3-json-schema"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            schema,
            json!({"type": "object", "properties": {"size": {"type": "string"}}})
        );
        assert_eq!(claim_kind(&xrd()).unwrap().3, "postgresqlinstance");
    }

    #[test]
    fn an_xrd_without_a_claim_gets_none() {
        let mut x = xrd();
        x["spec"].as_object_mut().unwrap().remove("claimNames");
        assert!(generated(&x, "x").is_none());
    }

    #[test]
    fn definitions_resolve_to_a_claim_kind_or_say_why_not() {
        let (generated, _) = generated(&xrd(), "postgresqlinstance").unwrap();
        assert_eq!(
            resolve(&generated, &[xrd()]),
            Ok(Definition {
                api_version: "platform.plinth.dev/v1alpha1".into(),
                kind: "PostgreSQLInstance".into(),
                into_parameters: true
            }),
            "the generated definition names the claim kind, whose properties are its parameters"
        );
        let cue = json!({"metadata": {"name": "webservice"}, "spec": {
            "workload": {"definition": {"apiVersion": "apps/v1", "kind": "Deployment"}},
            "schematic": {"cue": {"template": "output: {}"}}
        }});
        let why = resolve(&cue, &[]).unwrap_err();
        assert!(
            why.contains("does not evaluate CUE"),
            "a CUE schematic is refused: {why}"
        );
        let bare = json!({"metadata": {"name": "x"}, "spec": {}});
        assert!(resolve(&bare, &[])
            .unwrap_err()
            .contains("spec.workload.definition: Required value"));
        let plain = json!({"metadata": {"name": "crontab"}, "spec": {"workload": {"definition": {"apiVersion": "stable.example.com/v1", "kind": "CronTab"}}}});
        assert!(
            !resolve(&plain, &[]).unwrap().into_parameters,
            "a kind no XRD defines takes the properties as its spec"
        );
    }
}
