//! The managed reconciler's decisions as reason-labelled tables: each case
//! is a cycle's state, the step it must lead to, and why.

use super::*;
use pretty_assertions::assert_eq;
use serde_json::json;

const NOW: &str = "2026-01-01T00:00:10.000000Z";

fn managed(metadata: Value, spec: Value) -> Managed {
    let mut object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "nop.plinth.dev/v1alpha1",
        "kind": "NopResource",
        "metadata": metadata,
        "spec": spec,
    }))
    .expect("a managed resource");
    object.metadata.name.get_or_insert_with(|| "mr".into());
    Managed::new(object)
}

/// A resource as the composite makes it: no finalizer, no annotations.
fn fresh() -> Managed {
    managed(json!({"name": "mr"}), json!({"forProvider": {"size": 1}}))
}

/// A resource the reconciler has already taken on.
fn adopted() -> Managed {
    managed(
        json!({"name": "mr", "finalizers": [finalizer::MANAGED_RESOURCE],
               "annotations": {annotation::EXTERNAL_NAME: "mr"}}),
        json!({"forProvider": {"size": 1}}),
    )
}

fn deleting(m: Managed) -> Managed {
    let mut m = m;
    m.object.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-01-01T00:00:00Z".parse().expect("time"),
        ));
    m
}

fn with_spec(m: Managed, key: &str, value: Value) -> Managed {
    let mut m = m;
    m.object.data["spec"][key] = value;
    m
}

fn with_annotations(m: Managed, annotations: &[(&str, &str)]) -> Managed {
    let mut m = m;
    let map = m
        .object
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    for (k, v) in annotations {
        map.insert(k.to_string(), v.to_string());
    }
    m
}

fn cycle(object: Managed, deterministic: bool) -> Cycle {
    Cycle::new(object, deterministic, NOW.to_string())
}

fn observed(o: Observation) -> impl Fn(Cycle) -> Cycle {
    move |mut c| {
        c.observed = Some(o.clone());
        c
    }
}

fn available() -> Observation {
    Observation {
        at_provider: Some(json!({"size": 1})),
        connection: [("endpoint".to_string(), b"nop://mr".to_vec())].into(),
        ..Observation::available()
    }
}

fn ready_finish(requeue: Requeue, connection: ConnectionDetails) -> Step {
    Step::Finish(Finish {
        status: Some(Status {
            ready: Condition::new(condition::READY, true, reason::AVAILABLE, ""),
            synced: synced(),
            at_provider: Some(json!({"size": 1})),
        }),
        connection: Some(connection),
        requeue,
    })
}

fn endpoint() -> ConnectionDetails {
    [("endpoint".to_string(), b"nop://mr".to_vec())].into()
}

struct Case {
    reason: &'static str,
    cycle: Cycle,
    want: Step,
}

fn check(cases: Vec<Case>) {
    for case in cases {
        let got = next(&case.cycle);
        assert_eq!(case.want, got, "{}", case.reason);
    }
}

#[test]
fn observing_comes_first() {
    check(vec![
        Case {
            reason: "A cycle that knows nothing of the external resource observes it first.",
            cycle: cycle(fresh(), true),
            want: Step::Observe,
        },
        Case {
            reason: "An object being deleted without our finalizer needs nothing from us.",
            cycle: cycle(deleting(fresh()), true),
            want: Step::Finish(Finish {
                status: None,
                connection: None,
                requeue: Requeue::Never,
            }),
        },
    ]);
}

#[test]
fn creating() {
    let after_validate = |c: Cycle| Cycle {
        validated: true,
        ..observed(Observation::absent())(c)
    };
    let created = |c: Cycle| Cycle {
        written: true,
        created: Some(Creation {
            external_name: "mr".into(),
            connection: endpoint(),
        }),
        ..after_validate(c)
    };
    check(vec![
        Case {
            reason: "Nothing exists: the spec is validated before anything is made.",
            cycle: observed(Observation::absent())(cycle(fresh(), true)),
            want: Step::Validate,
        },
        Case {
            reason: "A deterministic kind writes its finalizer and external name in one write before Create, and no create-pending annotation.",
            cycle: after_validate(cycle(fresh(), true)),
            want: Step::Write(Edit {
                add_finalizer: true,
                annotations: [(annotation::EXTERNAL_NAME.to_string(), "mr".to_string())].into(),
                ..Default::default()
            }),
        },
        Case {
            reason: "Any other kind writes the finalizer with the create-pending annotation, the leak guard.",
            cycle: after_validate(cycle(fresh(), false)),
            want: Step::Write(Edit {
                add_finalizer: true,
                annotations: [(annotation::EXTERNAL_CREATE_PENDING.to_string(), NOW.to_string())].into(),
                ..Default::default()
            }),
        },
        Case {
            reason: "A deterministic kind already carrying its finalizer and name creates without writing first.",
            cycle: after_validate(cycle(adopted(), true)),
            want: Step::Create,
        },
        Case {
            reason: "Once the guard is written, Create is called.",
            cycle: Cycle { written: true, ..after_validate(cycle(fresh(), false)) },
            want: Step::Create,
        },
        Case {
            reason: "Right after Create the resource is observed, to see it Ready at once.",
            cycle: created(cycle(
                with_annotations(fresh(), &[(annotation::EXTERNAL_CREATE_PENDING, NOW)]),
                false,
            )),
            want: Step::Observe,
        },
        Case {
            reason: "A non-deterministic Create's result is recorded (external name and create-succeeded) in the one write after it.",
            cycle: Cycle {
                observed_after_create: Some(available()),
                ..created(cycle(
                    with_annotations(fresh(), &[(annotation::EXTERNAL_CREATE_PENDING, NOW)]),
                    false,
                ))
            },
            want: Step::Write(Edit {
                annotations: [
                    (annotation::EXTERNAL_NAME.to_string(), "mr".to_string()),
                    (annotation::EXTERNAL_CREATE_SUCCEEDED.to_string(), NOW.to_string()),
                ]
                .into(),
                ..Default::default()
            }),
        },
        Case {
            reason: "A deterministic Create under the name already written needs no further write: it observes at once.",
            cycle: created(cycle(adopted(), true)),
            want: Step::Observe,
        },
        Case {
            reason: "Fields the external system defaulted at Create are filled in by the same write after it.",
            cycle: Cycle {
                observed_after_create: Some(Observation {
                    late_init: json!({"size": 9, "zone": "a"}).as_object().cloned().unwrap_or_default(),
                    ..available()
                }),
                ..created(cycle(adopted(), true))
            },
            want: Step::Write(Edit {
                late_init: json!({"zone": "a"}).as_object().cloned().unwrap_or_default(),
                ..Default::default()
            }),
        },
        Case {
            reason: "Found at once after Create and available: Ready straight away, polled for drift from then on.",
            cycle: Cycle {
                observed_after_create: Some(available()),
                ..created(cycle(adopted(), true))
            },
            want: ready_finish(Requeue::Poll, endpoint()),
        },
        Case {
            reason: "Not found yet after Create: Creating, and looked at again soon.",
            cycle: Cycle {
                observed_after_create: Some(Observation::absent()),
                ..created(cycle(adopted(), true))
            },
            want: Step::Finish(Finish {
                status: Some(Status {
                    ready: Condition::new(condition::READY, false, reason::CREATING, ""),
                    synced: synced(),
                    at_provider: None,
                }),
                connection: Some(endpoint()),
                requeue: Requeue::After(CREATED_RETRY),
            }),
        },
        Case {
            reason: "Management policies without Create leave a missing resource missing, and say so.",
            cycle: observed(Observation::absent())(cycle(
                with_spec(fresh(), "managementPolicies", json!(["Observe"])),
                true,
            )),
            want: Step::Finish(Finish {
                status: Some(Status {
                    ready: Condition::new(condition::READY, false, reason::UNAVAILABLE, "the external resource does not exist"),
                    synced: Some(Condition::new(
                        condition::SYNCED,
                        false,
                        reason::RECONCILE_ERROR,
                        "the external resource does not exist, and spec.managementPolicies do not allow creating it",
                    )),
                    at_provider: None,
                }),
                connection: None,
                requeue: Requeue::Poll,
            }),
        },
    ]);
}

#[test]
fn recovering_an_interrupted_create() {
    let interrupted = with_annotations(
        adopted(),
        &[(
            annotation::EXTERNAL_CREATE_PENDING,
            "2026-01-01T00:00:01.000000Z",
        )],
    );
    check(vec![
        Case {
            reason: "An interrupted Create whose resource Observe finds is adopted: name and create-succeeded recorded, and said.",
            cycle: observed(Observation {
                external_name: "mr-1234".into(),
                ..available()
            })(cycle(interrupted.clone(), false)),
            want: Step::Write(Edit {
                annotations: [
                    (annotation::EXTERNAL_NAME.to_string(), "mr-1234".to_string()),
                    (annotation::EXTERNAL_CREATE_SUCCEEDED.to_string(), NOW.to_string()),
                ]
                .into(),
                event: Some(Announcement::normal(
                    names::event::RECOVERED,
                    "found the external resource mr-1234 of an interrupted Create; adopted it",
                )),
                ..Default::default()
            }),
        },
        Case {
            reason: "An interrupted Create whose resource is not there is created again, and said.",
            cycle: Cycle {
                validated: true,
                ..observed(Observation::absent())(cycle(interrupted, false))
            },
            want: Step::Write(Edit {
                annotations: [(annotation::EXTERNAL_CREATE_PENDING.to_string(), NOW.to_string())].into(),
                event: Some(Announcement::normal(
                    names::event::RECOVERED,
                    "a Create was interrupted before its outcome was recorded and the resource was not found; creating again",
                )),
                ..Default::default()
            }),
        },
    ]);
}

#[test]
fn existing_resources() {
    check(vec![
        Case {
            reason: "An existing resource found without our finalizer or name gets both in one write.",
            cycle: observed(available())(cycle(fresh(), true)),
            want: Step::Write(Edit {
                add_finalizer: true,
                annotations: [(annotation::EXTERNAL_NAME.to_string(), "mr".to_string())].into(),
                ..Default::default()
            }),
        },
        Case {
            reason: "Up to date and available: Ready, nothing written but status, polled for drift.",
            cycle: observed(available())(cycle(adopted(), true)),
            want: ready_finish(Requeue::Poll, endpoint()),
        },
        Case {
            reason: "Fields the external system defaulted are filled into forProvider, in the same write as anything else.",
            cycle: observed(Observation {
                late_init: json!({"size": 9, "zone": "a"}).as_object().cloned().unwrap_or_default(),
                ..available()
            })(cycle(fresh(), true)),
            want: Step::Write(Edit {
                add_finalizer: true,
                annotations: [(annotation::EXTERNAL_NAME.to_string(), "mr".to_string())].into(),
                late_init: json!({"zone": "a"}).as_object().cloned().unwrap_or_default(),
                ..Default::default()
            }),
        },
        Case {
            reason: "Late initialization is a management policy too.",
            cycle: observed(Observation {
                late_init: json!({"zone": "a"}).as_object().cloned().unwrap_or_default(),
                ..available()
            })(cycle(with_spec(adopted(), "managementPolicies", json!(["Observe", "Create", "Update", "Delete"])), true)),
            want: ready_finish(Requeue::Poll, endpoint()),
        },
        Case {
            reason: "Drifted from its spec: validated, then updated.",
            cycle: observed(Observation { up_to_date: false, ..available() })(cycle(adopted(), true)),
            want: Step::Validate,
        },
        Case {
            reason: "Validated and drifted: Update.",
            cycle: Cycle {
                validated: true,
                ..observed(Observation { up_to_date: false, ..available() })(cycle(adopted(), true))
            },
            want: Step::Update,
        },
        Case {
            reason: "After an Update the resource is looked at again after the backoff for updates in a row.",
            cycle: Cycle {
                validated: true,
                updated: Some([("password".to_string(), b"p".to_vec())].into()),
                updates_in_a_row: 2,
                ..observed(Observation { up_to_date: false, ..available() })(cycle(adopted(), true))
            },
            want: Step::Finish(Finish {
                status: Some(Status {
                    ready: Condition::new(condition::READY, true, reason::AVAILABLE, ""),
                    synced: synced(),
                    at_provider: Some(json!({"size": 1})),
                }),
                connection: Some({
                    let mut c = endpoint();
                    c.insert("password".into(), b"p".to_vec());
                    c
                }),
                requeue: Requeue::After(Duration::from_secs(4)),
            }),
        },
        Case {
            reason: "Drift with a policy that does not allow Update is reported, never acted on.",
            cycle: observed(Observation { up_to_date: false, ..available() })(cycle(
                with_spec(adopted(), "managementPolicies", json!(["Observe"])),
                true,
            )),
            want: ready_finish(Requeue::Poll, endpoint()),
        },
        Case {
            reason: "Existing but not usable yet: not Ready, looked at again soon.",
            cycle: observed(Observation {
                readiness: Readiness::Creating,
                readiness_message: "booting".into(),
                ..available()
            })(cycle(adopted(), true)),
            want: Step::Finish(Finish {
                status: Some(Status {
                    ready: Condition::new(condition::READY, false, reason::CREATING, "booting"),
                    synced: synced(),
                    at_provider: Some(json!({"size": 1})),
                }),
                connection: Some(endpoint()),
                requeue: Requeue::After(NOT_READY_RETRY),
            }),
        },
    ]);
}

#[test]
fn deleting_resources() {
    let gone = |m: Managed| {
        observed(Observation::absent())(Cycle {
            reported: true,
            ..cycle(m, true)
        })
    };
    check(vec![
        Case {
            reason: "Deletion begins by saying so on the status.",
            cycle: cycle(deleting(adopted()), true),
            want: Step::Report(Status {
                ready: Condition::new(condition::READY, false, reason::DELETING, ""),
                synced: None,
                at_provider: None,
            }),
        },
        Case {
            reason: "Then the external resource is observed.",
            cycle: Cycle {
                reported: true,
                ..cycle(deleting(adopted()), true)
            },
            want: Step::Observe,
        },
        Case {
            reason: "A resource already reporting Deleting is not reported again.",
            cycle: cycle(
                deleting({
                    let mut m = adopted();
                    m.object.data["status"] = json!({"conditions": [{"type": "Ready", "status": "False", "reason": "Deleting"}]});
                    m
                }),
                true,
            ),
            want: Step::Observe,
        },
        Case {
            reason: "Still there: Delete is called.",
            cycle: observed(available())(Cycle {
                reported: true,
                ..cycle(deleting(adopted()), true)
            }),
            want: Step::Delete,
        },
        Case {
            reason: "Already on its way out: waited for, not deleted again.",
            cycle: observed(Observation {
                readiness: Readiness::Deleting,
                ..available()
            })(Cycle {
                reported: true,
                ..cycle(deleting(adopted()), true)
            }),
            want: Step::Finish(Finish {
                status: None,
                connection: None,
                requeue: Requeue::After(DELETING_RETRY),
            }),
        },
        Case {
            reason: "Gone: the finalizer is released, and the deletion said.",
            cycle: gone(deleting(adopted())),
            want: Step::Write(Edit {
                remove_finalizer: true,
                event: Some(Announcement::normal(
                    names::event::DELETED,
                    "deleted the external resource",
                )),
                ..Default::default()
            }),
        },
        Case {
            reason: "An orphaned resource is released without touching the external resource.",
            cycle: cycle(
                deleting(with_spec(adopted(), "deletionPolicy", json!("Orphan"))),
                true,
            ),
            want: Step::Write(Edit {
                remove_finalizer: true,
                ..Default::default()
            }),
        },
        Case {
            reason: "So is one whose management policies do not allow Delete.",
            cycle: cycle(
                deleting(with_spec(
                    adopted(),
                    "managementPolicies",
                    json!(["Observe"]),
                )),
                true,
            ),
            want: Step::Write(Edit {
                remove_finalizer: true,
                ..Default::default()
            }),
        },
        Case {
            reason: "Once the finalizer is released the cycle is over.",
            cycle: Cycle {
                written: true,
                ..gone(deleting(adopted()))
            },
            want: Step::Finish(Finish {
                status: None,
                connection: None,
                requeue: Requeue::Never,
            }),
        },
    ]);
}

#[test]
fn interrupted_create_is_detected() {
    let at = |a: &[(&str, &str)]| with_annotations(adopted(), a).create_interrupted();
    assert!(!at(&[]));
    assert!(at(&[(
        annotation::EXTERNAL_CREATE_PENDING,
        "2026-01-01T00:00:01Z"
    )]));
    assert!(!at(&[
        (annotation::EXTERNAL_CREATE_PENDING, "2026-01-01T00:00:01Z"),
        (
            annotation::EXTERNAL_CREATE_SUCCEEDED,
            "2026-01-01T00:00:02Z"
        ),
    ]));
    assert!(at(&[
        (annotation::EXTERNAL_CREATE_PENDING, "2026-01-01T00:00:03Z"),
        (annotation::EXTERNAL_CREATE_FAILED, "2026-01-01T00:00:02Z"),
    ]));
}

#[test]
fn an_edit_is_made_to_the_object_as_it_says() {
    let mut object = fresh().object;
    Edit {
        add_finalizer: true,
        annotations: [(annotation::EXTERNAL_NAME.to_string(), "x".to_string())].into(),
        late_init: json!({"zone": "a"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        ..Default::default()
    }
    .apply_to(&mut object);
    let m = Managed::new(object);
    assert!(m.has_finalizer());
    assert_eq!(m.annotation(annotation::EXTERNAL_NAME), Some("x"));
    assert_eq!(m.for_provider(), json!({"size": 1, "zone": "a"}));
    let mut object = m.object;
    Edit {
        remove_finalizer: true,
        ..Default::default()
    }
    .apply_to(&mut object);
    assert!(!Managed::new(object).has_finalizer());
}
