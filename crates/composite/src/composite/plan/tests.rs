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
