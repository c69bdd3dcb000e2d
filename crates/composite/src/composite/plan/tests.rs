//! The composite reconciler's decisions as reason-labelled tables.

use super::*;
use pretty_assertions::assert_eq;
use serde_json::json;

fn kind() -> XrKind {
    XrKind {
        api_version: "example.org/v1".into(),
        kind: "XQueue".into(),
    }
}

fn composition(name: &str, labels: Value, templates: Value) -> Value {
    json!({
        "metadata": {"name": name, "labels": labels},
        "spec": {"compositeTypeRef": {"apiVersion": "example.org/v1", "kind": "XQueue"}, "resources": templates}
    })
}

fn template(name: &str) -> Value {
    json!({"name": name, "base": {"apiVersion": "nop.plinth.dev/v1alpha1", "kind": "NopResource", "spec": {"forProvider": {}}},
           "patches": [{"fromFieldPath": "spec.size", "toFieldPath": "spec.forProvider.fields.size"}]})
}

fn xr(spec: Value) -> Value {
    json!({"apiVersion": "example.org/v1", "kind": "XQueue", "metadata": {"name": "q", "uid": "u-1"}, "spec": spec})
}

fn revision(composition: &str, number: i64) -> Value {
    json!({"metadata": {"name": format!("{composition}-r{number}"), "labels": {names::LABEL_COMPOSITION_NAME: composition}},
           "spec": {"revision": number, "compositeTypeRef": {"apiVersion": "example.org/v1", "kind": "XQueue"}, "resources": [template("a")]}})
}

#[test]
fn selecting_a_composition() {
    let compositions: Vec<Arc<Value>> = [
        composition("b-small", json!({"size": "small"}), json!([template("a")])),
        composition("a-small", json!({"size": "small"}), json!([template("a")])),
        composition("large", json!({"size": "large"}), json!([template("a")])),
        json!({"metadata": {"name": "other"}, "spec": {"compositeTypeRef": {"apiVersion": "other.org/v1", "kind": "XQueue"}}}),
    ]
    .into_iter()
    .map(Arc::new)
    .collect();
    let revisions: Vec<Arc<Value>> = [
        revision("large", 1),
        revision("large", 3),
        revision("large", 2),
    ]
    .into_iter()
    .map(Arc::new)
    .collect();
    struct Case {
        reason: &'static str,
        xr: Value,
        xrd: Value,
        want: Result<(&'static str, Option<&'static str>), &'static str>,
    }
    let cases = vec![
        Case {
            reason: "An XRD's enforced Composition wins over anything the XR asks for.",
            xr: xr(json!({"compositionRef": {"name": "large"}})),
            xrd: json!({"spec": {"enforcedCompositionRef": {"name": "a-small"}}}),
            want: Ok(("a-small", None)),
        },
        Case {
            reason: "A named Composition is used, at its newest revision.",
            xr: xr(json!({"compositionRef": {"name": "large"}})),
            xrd: json!({}),
            want: Ok(("large", Some("large-r3"))),
        },
        Case {
            reason: "Of several Compositions matching the selector, the first by name is used.",
            xr: xr(json!({"compositionSelector": {"matchLabels": {"size": "small"}}})),
            xrd: json!({}),
            want: Ok(("a-small", None)),
        },
        Case {
            reason: "The XRD's default applies when the XR names nothing.",
            xr: xr(json!({})),
            xrd: json!({"spec": {"defaultCompositionRef": {"name": "large"}}}),
            want: Ok(("large", Some("large-r3"))),
        },
        Case {
            reason: "A Manual XR stays on the revision it is pinned to.",
            xr: xr(json!({"compositionRef": {"name": "large"}, "compositionUpdatePolicy": "Manual", "compositionRevisionRef": {"name": "large-r1"}})),
            xrd: json!({}),
            want: Ok(("large", Some("large-r1"))),
        },
        Case {
            reason: "A selector nothing matches is an error that names the selector.",
            xr: xr(json!({"compositionSelector": {"matchLabels": {"size": "huge"}}})),
            xrd: json!({}),
            want: Err("no Composition for XQueue matches spec.compositionSelector {\"size\":\"huge\"}"),
        },
        Case {
            reason: "A Composition of another kind is refused, saying what it composes.",
            xr: xr(json!({"compositionRef": {"name": "other"}})),
            xrd: json!({}),
            want: Err("Composition \"other\" composes other.org/v1 XQueue, not example.org/v1 XQueue"),
        },
        Case {
            reason: "Nothing named and no default: the error says how to name one.",
            xr: xr(json!({})),
            xrd: json!({}),
            want: Err("no Composition selected: set spec.compositionRef or spec.compositionSelector, or give XRD xqueues.example.org a defaultCompositionRef"),
        },
    ];
    for case in cases {
        let got = select(
            &case.xr,
            &case.xrd,
            &kind(),
            "xqueues.example.org",
            &compositions,
            &revisions,
        )
        .map(|s| (s.composition, s.revision));
        let want = case
            .want
            .map(|(c, r)| (c.to_string(), r.map(str::to_string)))
            .map_err(str::to_string);
        assert_eq!(want, got, "{}", case.reason);
    }
}

fn selected() -> Selected {
    Selected {
        composition: "queue".into(),
        revision: Some("queue-r1".into()),
        spec: json!({"spec": {"resources": [template("a"), template("b")]}}),
    }
}

/// A composed resource as applied, now Ready.
fn ready(applied: &Apply) -> Observed {
    let mut object = applied.object.clone();
    object["status"] =
        json!({"conditions": [{"type": "Ready", "status": "True", "reason": "Available"}]});
    Observed {
        object,
        connection: Default::default(),
    }
}

#[test]
fn planning_a_cycle() {
    let xrd = json!({});
    let applied = Applied::default();
    let plan_with = |xr: &Value, observed: &BTreeMap<String, Observed>, applied: &Applied| {
        plan(
            xr,
            &Inputs {
                kind: &kind(),
                xrd: &xrd,
                selected: &selected(),
                observed,
                applied,
                live_secret: None,
                pipeline: None,
            },
        )
        .expect("a plan")
    };

    // A new XR: everything is applied, the XR records what it composes, and
    // it is not Ready, naming what it waits for.
    let fresh = xr(json!({"size": 3}));
    let first = plan_with(&fresh, &BTreeMap::new(), &applied);
    assert_eq!(
        first
            .applies
            .iter()
            .map(|a| a.target.name.as_str())
            .collect::<Vec<_>>(),
        ["q-a", "q-b"],
        "a new XR applies every template's resource"
    );
    let owned = first.xr.clone().expect("the XR's own fields");
    assert_eq!(
        owned["spec"]["resourceRefs"][1],
        json!({"apiVersion": "nop.plinth.dev/v1alpha1", "kind": "NopResource", "name": "q-b"})
    );
    assert_eq!(owned["spec"]["compositionRef"], json!({"name": "queue"}));
    assert_eq!(
        owned["spec"]["compositionRevisionRef"],
        json!({"name": "queue-r1"})
    );
    assert_eq!(first.secret, None, "no connection details, no Secret");
    assert_eq!(
        first.conditions[0],
        Condition::new(
            condition::READY,
            false,
            reason::CREATING,
            "Unready resources: NopResource q-a: being created; NopResource q-b: being created"
        )
    );

    // Applied and recorded, then seen again unchanged and Ready: nothing to
    // apply, nothing of the XR to write, and Ready.
    for a in &first.applies {
        applied.record(&a.memory_key(), &a.object);
    }
    let mut settled = fresh.clone();
    settled["spec"] = owned["spec"].clone();
    settled["spec"]["size"] = json!(3);
    let observed: BTreeMap<String, Observed> = first
        .applies
        .iter()
        .map(|a| (a.template.clone(), ready(a)))
        .collect();
    let second = plan_with(&settled, &observed, &applied);
    assert!(
        second.applies.is_empty(),
        "unchanged resources are not applied again: {:?}",
        second.applies
    );
    assert_eq!(
        second.xr, None,
        "the XR already holds what this reconciler owns"
    );
    assert_eq!(
        second.conditions[0],
        Condition::new(condition::READY, true, reason::AVAILABLE, "")
    );
    assert_eq!(
        second.requeue,
        util::spread(names::RESYNC_READY, Some("u-1"))
    );

    // A resource the Composition no longer renders is deleted.
    let mut with_old = settled.clone();
    with_old["spec"]["resourceRefs"]
        .as_array_mut()
        .expect("refs")
        .push(json!({"apiVersion": "nop.plinth.dev/v1alpha1", "kind": "NopResource", "name": "q-gone"}));
    let third = plan_with(&with_old, &observed, &applied);
    assert_eq!(third.deletes.len(), 1);
    assert_eq!(third.deletes[0].name, "q-gone");

    // A spec change renders differently, and is applied.
    let mut resized = settled.clone();
    resized["spec"]["size"] = json!(5);
    let fourth = plan_with(&resized, &observed, &applied);
    assert_eq!(fourth.applies.len(), 2, "both templates patch the size");
    assert_eq!(
        fourth.applies[0].object["spec"]["forProvider"]["fields"]["size"],
        5
    );
}

fn desired(object: Value, ready: bool) -> functions::pipeline::Desired {
    functions::pipeline::Desired { object, ready }
}

fn nop() -> Value {
    json!({"apiVersion": "nop.plinth.dev/v1alpha1", "kind": "NopResource", "spec": {"forProvider": {}}})
}

#[test]
fn a_pipelines_desired_state_as_composed_resources() {
    use functions::pipeline::{Condition as FnCondition, Outcome, Target};
    struct Case {
        reason: &'static str,
        outcome: Outcome,
        observed: BTreeMap<String, Observed>,
        /// (resource name, object name, ready) of each composed resource.
        want_composed: Vec<(&'static str, &'static str, bool)>,
        want_ready: bool,
    }
    let observed_as = |key: &str, name: &str| {
        let mut o = nop();
        o["metadata"] = json!({"name": name});
        [(
            key.to_string(),
            Observed {
                object: o,
                connection: Default::default(),
            },
        )]
        .into()
    };
    let cases = vec![
        Case {
            reason: "a resource the function does not name is named after the XR and its key",
            outcome: Outcome { resources: [("db".to_string(), desired(nop(), true))].into(), ..Default::default() },
            observed: BTreeMap::new(),
            want_composed: vec![("db", "q-db", true)],
            want_ready: true,
        },
        Case {
            reason: "a resource that exists keeps the name it has",
            outcome: Outcome { resources: [("db".to_string(), desired(nop(), false))].into(), ..Default::default() },
            observed: observed_as("db", "q-db-x7k2p"),
            want_composed: vec![("db", "q-db-x7k2p", false)],
            want_ready: false,
        },
        Case {
            reason: "a function may name a new resource itself",
            outcome: Outcome {
                resources: [("db".to_string(), desired(json!({"apiVersion": "nop.plinth.dev/v1alpha1", "kind": "NopResource", "metadata": {"name": "orders"}}), true))].into(),
                ..Default::default()
            },
            observed: BTreeMap::new(),
            want_composed: vec![("db", "orders", true)],
            want_ready: true,
        },
        Case {
            reason: "the composite's readiness, when a function sets it, wins over its resources'",
            outcome: Outcome { resources: [("db".to_string(), desired(nop(), false))].into(), ready: Some(true), ..Default::default() },
            observed: BTreeMap::new(),
            want_composed: vec![("db", "q-db", false)],
            want_ready: true,
        },
        Case {
            reason: "a pipeline that composes nothing is ready",
            outcome: Outcome::default(),
            observed: BTreeMap::new(),
            want_composed: vec![],
            want_ready: true,
        },
    ];
    for case in cases {
        let got = pipelined(&xr(json!({})), &case.outcome, &case.observed).expect(case.reason);
        let composed: Vec<(&str, &str, bool)> = got
            .rendered
            .composed
            .iter()
            .map(|c| {
                (
                    c.template.as_str(),
                    c.object["metadata"]["name"].as_str().unwrap_or(""),
                    c.ready,
                )
            })
            .collect();
        assert_eq!(composed, case.want_composed, "{}", case.reason);
        assert_eq!(got.rendered.ready, case.want_ready, "{}", case.reason);
        for c in &got.rendered.composed {
            assert_eq!(
                c.object["metadata"]["annotations"][composition::render::ANNOTATION_RESOURCE_NAME],
                json!(c.template),
                "{}: every composed resource carries its name in the pipeline",
                case.reason
            );
            assert_eq!(
                c.object["metadata"]["ownerReferences"][0]["uid"], "u-1",
                "{}",
                case.reason
            );
        }
    }

    // Status: what the function desires for the composite's status is
    // kept; a composed resource's status and reserved condition types are not.
    let outcome = Outcome {
        composite: json!({"status": {"endpoint": "db.example.org"}}),
        resources: [(
            "db".to_string(),
            desired(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "status": {"x": 1}}),
                true,
            ),
        )]
        .into(),
        conditions: vec![
            FnCondition {
                type_: "DatabaseReady".into(),
                status: "True",
                reason: "Available".into(),
                message: String::new(),
                target: Target::CompositeAndClaim,
            },
            FnCondition {
                type_: "Internal".into(),
                status: "False",
                reason: "Waiting".into(),
                message: "m".into(),
                target: Target::Composite,
            },
            FnCondition {
                type_: "Ready".into(),
                status: "True",
                reason: "Forced".into(),
                message: String::new(),
                target: Target::Composite,
            },
        ],
        ttl: Some(Duration::from_secs(5)),
        ..Default::default()
    };
    let got = pipelined(&xr(json!({})), &outcome, &BTreeMap::new()).expect("pipelined");
    assert_eq!(
        got.rendered.composite["status"]["endpoint"],
        "db.example.org"
    );
    assert_eq!(got.rendered.composed[0].object.get("status"), None);
    assert_eq!(
        got.conditions
            .iter()
            .map(|c| c.type_.as_ref())
            .collect::<Vec<_>>(),
        ["DatabaseReady", "Internal"],
        "Ready is the reconciler's to set"
    );
    assert_eq!(got.claim_condition_types, ["DatabaseReady"]);

    // Planned: the TTL shortens the requeue, and the claim's condition
    // types are on the XR's status.
    let xrd = json!({});
    let selected = Selected {
        composition: "fn".into(),
        revision: None,
        spec: json!({"spec": {"mode": "Pipeline"}}),
    };
    let p = plan(
        &xr(json!({})),
        &Inputs {
            kind: &kind(),
            xrd: &xrd,
            selected: &selected,
            observed: &BTreeMap::new(),
            applied: &Applied::default(),
            live_secret: None,
            pipeline: Some(&got),
        },
    )
    .expect("a plan");
    assert_eq!(p.requeue, Duration::from_secs(5));
    assert_eq!(p.status["claimConditionTypes"], json!(["DatabaseReady"]));
    assert!(
        p.report,
        "a pipeline's XR reports even with nothing observed yet"
    );
    assert!(p
        .conditions
        .iter()
        .any(|c| c.type_ == "DatabaseReady" && c.status));

    // A desired resource without a kind is refused, naming it.
    let bad = Outcome {
        resources: [("db".to_string(), desired(json!({"apiVersion": "v1"}), true))].into(),
        ..Default::default()
    };
    assert_eq!(
        pipelined(&xr(json!({})), &bad, &BTreeMap::new()),
        Err("desired resource \"db\": apiVersion and kind are required".into())
    );
}
