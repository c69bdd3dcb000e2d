//! The claim reconciler's decisions as reason-labelled tables.

use super::*;
use pretty_assertions::assert_eq;
use serde_json::json;

fn kinds() -> Kinds {
    Kinds {
        claim: XrKind {
            api_version: "example.org/v1".into(),
            kind: "Queue".into(),
        },
        composite: XrKind {
            api_version: "example.org/v1".into(),
            kind: "XQueue".into(),
        },
        xrd: "xqueues.example.org".into(),
    }
}

fn claim(spec: Value) -> Value {
    json!({"apiVersion": "example.org/v1", "kind": "Queue",
           "metadata": {"name": "orders", "namespace": "team", "uid": "c-1"}, "spec": spec})
}

fn bound(spec: Value) -> Value {
    let mut c = claim(spec);
    c["metadata"]["finalizers"] = json!([names::CLAIM_FINALIZER]);
    c
}

fn deleting(mut c: Value) -> Value {
    c["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    c
}

fn compositions() -> Vec<Arc<Value>> {
    vec![Arc::new(
        json!({"metadata": {"name": "queue-nop", "labels": {"provider": "nop"}},
                "spec": {"compositeTypeRef": {"apiVersion": "example.org/v1", "kind": "XQueue"}, "resources": []}}),
    )]
}

fn revisions() -> Vec<Arc<Value>> {
    vec![Arc::new(
        json!({"metadata": {"name": "queue-nop-r1", "labels": {names::LABEL_COMPOSITION_NAME: "queue-nop"}},
                "spec": {"revision": 1}}),
    )]
}

fn run(claim: &Value, xrd: &Value, xr: Option<&Value>) -> Plan {
    let (compositions, revisions) = (compositions(), revisions());
    plan(
        claim,
        &Inputs {
            kinds: &kinds(),
            xrd,
            xr,
            compositions: &compositions,
            revisions: &revisions,
            xr_secret: None,
            claim_secret: None,
            applied: &Applied::default(),
        },
    )
    .expect("a plan")
}

fn sync(plan: Plan) -> Sync {
    match plan {
        Plan::Sync(sync) => *sync,
        other => panic!("expected a sync, got {other:?}"),
    }
}

#[test]
fn a_new_claim_is_bound_in_one_write() {
    let xrd = json!({"spec": {"defaultCompositionRef": {"name": "queue-nop"}}});
    let new = claim(json!({"size": 3}));
    let name = composite_name(&new);
    let first = sync(run(&new, &xrd, None));
    assert_eq!(
        first.claim,
        Some(json!({
            "metadata": {"finalizers": [names::CLAIM_FINALIZER]},
            "spec": {
                "resourceRef": {"apiVersion": "example.org/v1", "kind": "XQueue", "name": name},
                "compositionRef": {"name": "queue-nop"},
                "compositionRevisionRef": {"name": "queue-nop-r1"}
            }
        })),
        "the finalizer, the composite resource and the Composition it will use, in one patch"
    );
    let xr = first.composite.expect("the composite resource is made");
    assert_eq!(
        xr["spec"]["claimRef"],
        json!({"apiVersion": "example.org/v1", "kind": "Queue", "name": "orders", "namespace": "team"})
    );
    assert_eq!(
        xr["spec"]["compositionRef"],
        json!({"name": "queue-nop"}),
        "the claim's choice goes down"
    );
    assert!(
        xr["spec"].get("compositionRevisionRef").is_none(),
        "an Automatic claim pins no revision"
    );
    assert_eq!(xr["spec"]["size"], 3);
    assert_eq!(
        xr["metadata"]["labels"][names::LABEL_CLAIM_NAMESPACE],
        "team"
    );
    assert!(
        !first.report,
        "the composite resource has said nothing yet, and neither does the claim"
    );
    assert_eq!(
        first.conditions,
        vec![
            Condition::new(
                condition::READY,
                false,
                reason::CREATING,
                "waiting for the composite resource"
            ),
            Condition::new(condition::SYNCED, true, reason::RECONCILE_SUCCESS, ""),
        ]
    );
}

#[test]
fn a_bound_claim_copies_its_composite_back() {
    let xrd = json!({});
    let c = bound(
        json!({"resourceRef": {"name": "orders-abcde"}, "compositionRef": {"name": "queue-nop"}}),
    );
    let xr = json!({"metadata": {"name": "orders-abcde"},
                    "spec": {"claimRef": {"name": "orders", "namespace": "team"}, "compositionRef": {"name": "queue-nop"},
                             "compositionRevisionRef": {"name": "queue-nop-r2"}},
                    "status": {"size": 3, "conditions": [{"type": "Ready", "status": "True", "reason": "Available"}]}});
    let s = sync(run(&c, &xrd, Some(&xr)));
    assert_eq!(
        s.claim,
        Some(json!({"spec": {"compositionRevisionRef": {"name": "queue-nop-r2"}}})),
        "what the composite resource decided since comes back"
    );
    assert_eq!(
        s.status,
        json!({"size": 3}),
        "its state is copied, its conditions reported"
    );
    assert!(s.report);
    assert!(s.conditions.contains(&Condition::new(
        condition::READY,
        true,
        reason::AVAILABLE,
        ""
    )));
    assert_eq!(s.requeue, util::spread(names::RESYNC_READY, Some("c-1")));
}

#[test]
fn a_composite_bound_to_another_claim_is_refused() {
    let c = bound(json!({"resourceRef": {"name": "orders-abcde"}}));
    let xr = json!({"metadata": {"name": "orders-abcde"}, "spec": {"claimRef": {"name": "other", "namespace": "team"}}});
    let (compositions, revisions) = (compositions(), revisions());
    let got = plan(
        &c,
        &Inputs {
            kinds: &kinds(),
            xrd: &json!({}),
            xr: Some(&xr),
            compositions: &compositions,
            revisions: &revisions,
            xr_secret: None,
            claim_secret: None,
            applied: &Applied::default(),
        },
    );
    assert_eq!(
        got,
        Err("composite resource orders-abcde is bound to another claim".to_string())
    );
}

#[test]
fn deleting_a_claim() {
    let xr = json!({"metadata": {"name": "orders-abcde"}, "spec": {}});
    let going = json!({"metadata": {"name": "orders-abcde", "deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {}});
    let foreground = json!({"spec": {"defaultCompositeDeletePolicy": "Foreground"}});
    let c = deleting(bound(json!({"resourceRef": {"name": "orders-abcde"}})));
    struct Case {
        reason: &'static str,
        claim: Value,
        xrd: Value,
        xr: Option<Value>,
        want: Plan,
    }
    let cases = vec![
        Case {
            reason: "A deleted claim deletes its composite resource first.",
            claim: c.clone(),
            xrd: json!({}),
            xr: Some(xr.clone()),
            want: Plan::Delete {
                composite: "orders-abcde".into(),
                foreground: false,
            },
        },
        Case {
            reason: "In the background, a composite resource on its way out lets the claim go.",
            claim: c.clone(),
            xrd: json!({}),
            xr: Some(going.clone()),
            want: Plan::Release,
        },
        Case {
            reason:
                "In the foreground, the claim waits while the composite resource is still there.",
            claim: c.clone(),
            xrd: foreground.clone(),
            xr: Some(going),
            want: Plan::Delete {
                composite: "orders-abcde".into(),
                foreground: true,
            },
        },
        Case {
            reason: "Once the composite resource is gone the claim goes.",
            claim: c.clone(),
            xrd: foreground,
            xr: None,
            want: Plan::Release,
        },
        Case {
            reason: "A deleted claim without the finalizer needs nothing.",
            claim: deleting(claim(json!({}))),
            xrd: json!({}),
            xr: Some(xr),
            want: Plan::AwaitChange,
        },
    ];
    for case in cases {
        assert_eq!(
            case.want,
            run(&case.claim, &case.xrd, case.xr.as_ref()),
            "{}",
            case.reason
        );
    }
}

#[test]
fn the_claim_does_not_override_what_the_xr_decides() {
    let claim = json!({"spec": {
        "color": "red",
        "compositionRef": {"name": "b"},
        "compositionRevisionRef": {"name": "b-old"},
        "compositeDeletePolicy": "Foreground",
        "writeConnectionSecretToRef": {"name": "conn"},
        "resourceRef": {"name": "x"}
    }});
    // Enforced Composition, Automatic policy: neither ref goes down.
    let spec = composite_spec(&claim, true, names::POLICY_AUTOMATIC);
    assert!(!spec.contains_key("compositionRef"));
    assert!(!spec.contains_key("compositionRevisionRef"));
    assert_eq!(spec["compositionUpdatePolicy"], names::POLICY_AUTOMATIC);
    assert_eq!(spec["color"], "red");
    for claim_only in CLAIM_ONLY {
        assert!(!spec.contains_key(*claim_only), "{claim_only}");
    }
    // Not enforced, Manual: the claim chooses both.
    let spec = composite_spec(&claim, false, names::POLICY_MANUAL);
    assert_eq!(spec["compositionRef"]["name"], "b");
    assert_eq!(spec["compositionRevisionRef"]["name"], "b-old");
}

#[test]
fn the_claim_shows_only_the_conditions_meant_for_it() {
    let xrd = json!({});
    let c = bound(
        json!({"resourceRef": {"name": "orders-abcde"}, "compositionRef": {"name": "queue-nop"}}),
    );
    let xr = json!({"metadata": {"name": "orders-abcde"},
                    "spec": {"claimRef": {"name": "orders", "namespace": "team"}, "compositionRef": {"name": "queue-nop"}},
                    "status": {"claimConditionTypes": ["DatabaseReady"], "conditions": [
                        {"type": "Ready", "status": "True", "reason": "Available"},
                        {"type": "DatabaseReady", "status": "True", "reason": "Available"},
                        {"type": "Internal", "status": "False", "reason": "Detail"}]}});
    let s = sync(run(&c, &xrd, Some(&xr)));
    let types: Vec<&str> = s.conditions.iter().map(|c| c.type_.as_ref()).collect();
    assert_eq!(
        types,
        ["Ready", "DatabaseReady", "Synced"],
        "Ready and Synced always, and what claimConditionTypes lists; not what targets the XR alone"
    );
    assert_eq!(s.status, json!({}), "claimConditionTypes stays on the XR");
}
