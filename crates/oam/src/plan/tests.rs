use std::collections::BTreeMap;

use pretty_assertions::assert_eq;
use serde_json::{json, Value};

use super::*;

fn app(components: Value) -> Value {
    json!({
        "apiVersion": "core.oam.dev/v1beta1", "kind": "Application",
        "metadata": {"name": "shop", "namespace": "team-a", "uid": "u-1", "generation": 1},
        "spec": {"components": components}
    })
}

fn postgres() -> Definition {
    Definition {
        api_version: "platform.plinth.dev/v1alpha1".into(),
        kind: "PostgreSQLInstance".into(),
        into_parameters: true,
    }
}

fn compute() -> Definition {
    Definition {
        api_version: "platform.plinth.dev/v1alpha1".into(),
        kind: "ComputeInstance".into(),
        into_parameters: true,
    }
}

fn definitions() -> BTreeMap<String, Result<Definition, String>> {
    BTreeMap::from([
        ("postgresqlinstance".to_string(), Ok(postgres())),
        ("computeinstance".to_string(), Ok(compute())),
        (
            "cue-thing".to_string(),
            Err("ComponentDefinition \"cue-thing\" needs CUE".to_string()),
        ),
    ])
}

fn claim(kind: &str, name: &str, ready: bool) -> Value {
    let d = if kind == "ComputeInstance" {
        compute()
    } else {
        postgres()
    };
    let component = name.trim_start_matches("shop-");
    let mut c = desired_claim(
        &app(json!([])),
        &Component {
            name: component.into(),
            type_: if kind == "ComputeInstance" {
                "computeinstance"
            } else {
                "postgresqlinstance"
            }
            .into(),
            properties: json!({}),
            depends_on: Default::default(),
            labels: Default::default(),
            annotations: Default::default(),
            connection_secret: None,
        },
        &d,
    );
    c["status"] = json!({"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }, "reason": if ready { "Available" } else { "Creating" }}]});
    c
}

fn applied(kind: &str, name: &str) -> Applied {
    Applied {
        api_version: "platform.plinth.dev/v1alpha1".into(),
        kind: kind.into(),
        name: name.into(),
        namespace: "team-a".into(),
    }
}

/// What a plan did, in a form a table can spell.
#[derive(Debug, PartialEq)]
struct Got {
    apply: Vec<String>,
    delete: Vec<String>,
    services: Vec<(String, bool, String)>,
    refused: Option<String>,
}

fn got(plan: Plan) -> Got {
    Got {
        apply: plan
            .apply
            .iter()
            .map(|(_, c)| c["metadata"]["name"].as_str().unwrap().to_string())
            .collect(),
        delete: plan.delete.iter().map(|d| d.name.clone()).collect(),
        services: plan
            .services
            .into_iter()
            .map(|s| (s.name, s.healthy, s.message))
            .collect(),
        refused: plan.refused,
    }
}

fn svc(name: &str, healthy: bool, message: &str) -> (String, bool, String) {
    (name.into(), healthy, message.into())
}

#[test]
fn plans() {
    let two = json!([
        {"name": "db", "type": "postgresqlinstance"},
        {"name": "web", "type": "computeinstance", "dependsOn": ["db"]}
    ]);
    struct Case {
        reason: &'static str,
        app: Value,
        claims: Vec<(&'static str, Value)>,
        want: Got,
    }
    let cases = vec![
        Case {
            reason: "a new Application makes the claim of a component with no dependencies, and the dependent one waits",
            app: app(two.clone()),
            claims: vec![],
            want: Got {
                apply: vec!["shop-db".into()],
                delete: vec![],
                services: vec![
                    svc("db", false, "claim created; waiting for it to report Ready"),
                    svc("web", false, "waiting for db to be healthy"),
                ],
                refused: None,
            },
        },
        Case {
            reason: "once the dependency is Ready, the dependent component's claim is made",
            app: app(two.clone()),
            claims: vec![("db", claim("PostgreSQLInstance", "shop-db", true))],
            want: Got {
                apply: vec!["shop-web".into()],
                delete: vec![],
                services: vec![
                    svc("db", true, "Ready"),
                    svc("web", false, "claim created; waiting for it to report Ready"),
                ],
                refused: None,
            },
        },
        Case {
            reason: "claims that already are what the components ask for are not written again",
            app: app(json!([{"name": "web", "type": "computeinstance"}])),
            claims: vec![("web", claim("ComputeInstance", "shop-web", false))],
            want: Got {
                apply: vec![],
                delete: vec![],
                services: vec![svc("web", false, "Creating")],
                refused: None,
            },
        },
        Case {
            reason: "a component removed from the spec leaves its claim to delete",
            app: {
                let mut a = app(json!([{"name": "web", "type": "computeinstance"}]));
                a["status"] = json!({"appliedResources": [
                    applied("PostgreSQLInstance", "shop-db").to_value(),
                    applied("ComputeInstance", "shop-web").to_value()
                ]});
                a
            },
            claims: vec![("web", claim("ComputeInstance", "shop-web", true))],
            want: Got {
                apply: vec![],
                delete: vec!["shop-db".into()],
                services: vec![svc("web", true, "Ready")],
                refused: None,
            },
        },
        Case {
            reason: "a type whose definition cannot be used is reported on its service and nothing is made",
            app: app(json!([{"name": "x", "type": "cue-thing"}, {"name": "y", "type": "nope"}])),
            claims: vec![],
            want: Got {
                apply: vec![],
                delete: vec![],
                services: vec![
                    svc("x", false, "ComponentDefinition \"cue-thing\" needs CUE"),
                    svc("y", false, "no ComponentDefinition named \"nope\""),
                ],
                refused: None,
            },
        },
        Case {
            reason: "an unknown trait refuses the whole Application, naming the supported traits",
            app: app(json!([{"name": "db", "type": "postgresqlinstance", "traits": [{"type": "scaler"}]}])),
            claims: vec![],
            want: Got {
                apply: vec![],
                delete: vec![],
                services: vec![],
                refused: Some("spec.components[0].traits[0].type: Unsupported value: \"scaler\": supported values: \"labels\", \"annotations\", \"connection-secret\"".into()),
            },
        },
        Case {
            reason: "a dependency on a component that does not exist is refused",
            app: app(json!([{"name": "web", "type": "computeinstance", "dependsOn": ["db"]}])),
            claims: vec![],
            want: Got {
                apply: vec![],
                delete: vec![],
                services: vec![],
                refused: Some("spec.components[0].dependsOn: Not found: \"db\": no component has that name".into()),
            },
        },
        Case {
            reason: "components that depend on each other in a cycle are refused",
            app: app(json!([
                {"name": "a", "type": "computeinstance", "dependsOn": ["b"]},
                {"name": "b", "type": "computeinstance", "dependsOn": ["a"]}
            ])),
            claims: vec![],
            want: Got {
                apply: vec![],
                delete: vec![],
                services: vec![],
                refused: Some("spec.components: Invalid value: the components depend on each other in a cycle: a -> b -> a".into()),
            },
        },
        Case {
            reason: "policies are refused, since Plinth runs every component here",
            app: {
                let mut a = app(two.clone());
                a["spec"]["policies"] = json!([{"name": "t", "type": "topology"}]);
                a
            },
            claims: vec![],
            want: Got {
                apply: vec![],
                delete: vec![],
                services: vec![],
                refused: Some("spec.policies[0].type: Unsupported value: \"topology\": Plinth applies no Application policies (it runs every component on this control plane); remove spec.policies".into()),
            },
        },
        Case {
            reason: "workflow steps order the components: a later step waits for an earlier one",
            app: {
                let mut a = app(json!([
                    {"name": "db", "type": "postgresqlinstance"},
                    {"name": "web", "type": "computeinstance"}
                ]));
                a["spec"]["workflow"] = json!({"steps": [
                    {"name": "s1", "type": "apply-component", "properties": {"component": "db"}},
                    {"name": "s2", "type": "apply-component", "properties": {"component": "web"}}
                ]});
                a
            },
            claims: vec![],
            want: Got {
                apply: vec!["shop-db".into()],
                delete: vec![],
                services: vec![
                    svc("db", false, "claim created; waiting for it to report Ready"),
                    svc("web", false, "waiting for db to be healthy"),
                ],
                refused: None,
            },
        },
        Case {
            reason: "an unknown workflow step type is refused, naming the supported ones",
            app: {
                let mut a = app(two.clone());
                a["spec"]["workflow"] = json!({"steps": [{"name": "s", "type": "deploy"}]});
                a
            },
            claims: vec![],
            want: Got {
                apply: vec![],
                delete: vec![],
                services: vec![],
                refused: Some("spec.workflow.steps[0].type: Unsupported value: \"deploy\": supported values: \"apply-component\"".into()),
            },
        },
    ];
    let definitions = definitions();
    for case in cases {
        let claims: BTreeMap<String, Value> = case
            .claims
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let plan = plan(&Observed {
            app: &case.app,
            definitions: &definitions,
            claims: &claims,
        });
        assert_eq!(case.want, got(plan), "{}", case.reason);
    }
}

#[test]
fn a_component_becomes_a_claim_with_kubevela_labels_traits_and_an_owner() {
    let a = app(json!([]));
    let component = parse(&app(json!([{
        "name": "db", "type": "postgresqlinstance", "properties": {"size": "small"},
        "traits": [
            {"type": "labels", "properties": {"team": "a"}},
            {"type": "annotations", "properties": {"note": "x"}},
            {"type": "connection-secret", "properties": {"name": "db-conn"}}
        ]
    }])))
    .unwrap()
    .remove(0);
    let want = json!({
        "apiVersion": "platform.plinth.dev/v1alpha1",
        "kind": "PostgreSQLInstance",
        "metadata": {
            "name": "shop-db", "namespace": "team-a",
            "labels": {"team": "a", "app.oam.dev/name": "shop", "app.oam.dev/namespace": "team-a", "app.oam.dev/component": "db",
                       "workload.oam.dev/type": "postgresqlinstance", "app.oam.dev/resourceType": "WORKLOAD"},
            "annotations": {"note": "x"},
            "ownerReferences": [{"apiVersion": "core.oam.dev/v1beta1", "kind": "Application", "name": "shop",
                                 "uid": "u-1", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {"parameters": {"size": "small"}, "writeConnectionSecretToRef": {"name": "db-conn"}}
    });
    assert_eq!(want, desired_claim(&a, &component, &postgres()));
    let into_spec = Definition {
        into_parameters: false,
        ..postgres()
    };
    assert_eq!(
        json!({"size": "small", "writeConnectionSecretToRef": {"name": "db-conn"}}),
        desired_claim(&a, &component, &into_spec)["spec"],
        "a claim kind without spec.parameters takes the properties as its spec"
    );
}

#[test]
fn status_is_in_kubevela_shape() {
    let a = app(json!([{"name": "db", "type": "postgresqlinstance"}]));
    let claims = BTreeMap::from([(
        "db".to_string(),
        claim("PostgreSQLInstance", "shop-db", true),
    )]);
    let definitions = definitions();
    let p = plan(&Observed {
        app: &a,
        definitions: &definitions,
        claims: &claims,
    });
    let s = status(&a, &p, &BTreeMap::new());
    assert_eq!(s["status"], "running");
    assert_eq!(
        s["services"],
        json!([{"name": "db", "namespace": "team-a", "cluster": "local", "healthy": true, "message": "Ready",
                "workloadDefinition": {"apiVersion": "platform.plinth.dev/v1alpha1", "kind": "PostgreSQLInstance"}}])
    );
    assert_eq!(s["appliedResources"][0]["name"], "shop-db");
    let failed = BTreeMap::from([(
        "db".to_string(),
        "spec.parameters.size: Unsupported value".to_string(),
    )]);
    let s = status(&a, &p, &failed);
    assert_eq!(
        s["status"], "runningWorkflow",
        "a write that failed keeps the workflow running"
    );
    assert_eq!(s["services"][0]["healthy"], false);
    assert_eq!(
        s["services"][0]["message"],
        "spec.parameters.size: Unsupported value"
    );
}
