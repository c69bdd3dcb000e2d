//! The pipeline loop against fake functions made of closures.

use std::sync::Mutex;

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

/// Functions as one closure over (function, request).
struct Functions<F>(F);

impl<F> Call for Functions<F>
where
    F: Fn(&str, pb::RunFunctionRequest) -> Result<pb::RunFunctionResponse, CallError> + Sync,
{
    fn call(
        &self,
        function: &str,
        request: pb::RunFunctionRequest,
    ) -> impl Future<Output = Result<pb::RunFunctionResponse, CallError>> + Send {
        std::future::ready((self.0)(function, request))
    }
}

/// A cluster holding a ConfigMap `settings` in `default`, and a Secret.
struct Cluster;

impl Fetch for Cluster {
    fn resources(
        &self,
        selector: &pb::ResourceSelector,
    ) -> impl Future<Output = Result<Vec<Value>, String>> + Send {
        let found = match &selector.r#match {
            Some(pb::resource_selector::Match::MatchName(n)) if n == "settings" => {
                vec![
                    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "default"}, "data": {"value": "42"}}),
                ]
            }
            _ => Vec::new(),
        };
        std::future::ready(Ok(found))
    }

    fn secret(&self, _: &str, name: &str) -> impl Future<Output = Result<Details, String>> + Send {
        std::future::ready(match name {
            "creds" => Ok([("token".to_string(), b"s3cret".to_vec())].into()),
            _ => Err(format!("Secret {name} does not exist")),
        })
    }
}

fn step(name: &str, function: &str, input: Value) -> Step {
    Step {
        name: name.into(),
        function: function.into(),
        input: Some(input),
        credentials: Vec::new(),
        required: BTreeMap::new(),
    }
}

fn composite() -> Observed {
    Observed {
        object: json!({"apiVersion": "example.org/v1", "kind": "XThing", "metadata": {"name": "x"}, "spec": {}}),
        connection: Details::new(),
    }
}

/// Passes desired through and adds the resource named by the step's input.
fn add_resource(request: &pb::RunFunctionRequest) -> pb::RunFunctionResponse {
    let mut desired = request.desired.clone().unwrap_or_default();
    let input = request.input.as_ref().map(from_struct).unwrap_or_default();
    if let Some(name) = input.get("add").and_then(Value::as_str) {
        desired.resources.insert(
            name.to_string(),
            pb::Resource {
                resource: Some(to_struct(
                    &json!({"apiVersion": "nop.plinth.dev/v1alpha1", "kind": "NopResource"}),
                )),
                ready: pb::Ready::True as i32,
                ..Default::default()
            },
        );
    }
    pb::RunFunctionResponse {
        desired: Some(desired),
        context: request.context.clone(),
        ..Default::default()
    }
}

#[tokio::test]
async fn desired_state_accumulates_across_steps() {
    let calls = Functions(|_: &str, r: pb::RunFunctionRequest| Ok(add_resource(&r)));
    let steps = [
        step("one", "f", json!({"add": "a"})),
        step("two", "f", json!({"add": "b"})),
    ];
    let got = run(&calls, &Cluster, &steps, &composite(), &BTreeMap::new())
        .await
        .expect("runs");
    assert_eq!(got.resources.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert!(got.resources["a"].ready, "a READY_TRUE resource is ready");
}

#[tokio::test]
async fn context_set_by_one_step_reaches_the_next() {
    let seen = Mutex::new(Vec::new());
    let calls = Functions(|_: &str, r: pb::RunFunctionRequest| {
        let context = r.context.as_ref().map(from_struct).unwrap_or_default();
        seen.lock().unwrap().push(context.clone());
        let mut out = add_resource(&r);
        out.context = Some(to_struct(&json!({"greeting": "hello"})));
        Ok(out)
    });
    let steps = [step("one", "f", json!({})), step("two", "f", json!({}))];
    run(&calls, &Cluster, &steps, &composite(), &BTreeMap::new())
        .await
        .expect("runs");
    assert_eq!(
        *seen.lock().unwrap(),
        [json!({}), json!({"greeting": "hello"})],
        "the first step gets an empty context, the second the first's"
    );
}

#[tokio::test]
async fn a_fatal_result_stops_the_pipeline_with_its_message() {
    let called = Mutex::new(Vec::new());
    let calls = Functions(|f: &str, r: pb::RunFunctionRequest| {
        called.lock().unwrap().push(f.to_string());
        let mut out = add_resource(&r);
        if f == "fails" {
            out.results.push(pb::Result {
                severity: pb::Severity::Fatal as i32,
                message: "no such region".into(),
                ..Default::default()
            });
        }
        Ok(out)
    });
    let steps = [
        step("one", "fails", json!({})),
        step("two", "never", json!({})),
    ];
    let got = run(&calls, &Cluster, &steps, &composite(), &BTreeMap::new()).await;
    match got {
        Err(e @ PipelineError::Fatal { .. }) => assert_eq!(
            e.to_string(),
            "pipeline step \"one\" returned a fatal result: no such region"
        ),
        other => panic!("want a fatal error, got {other:?}"),
    }
    assert_eq!(*called.lock().unwrap(), ["fails"], "step two never runs");
}

#[tokio::test]
async fn a_required_resource_arrives_on_the_next_round() {
    let rounds = Mutex::new(Vec::new());
    let calls = Functions(|_: &str, r: pb::RunFunctionRequest| {
        let got = r.required_resources.get("config").map(|rs| rs.items.len());
        rounds.lock().unwrap().push(got);
        let mut out = add_resource(&r);
        out.requirements = Some(pb::Requirements {
            resources: [(
                "config".to_string(),
                pb::ResourceSelector {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    r#match: Some(pb::resource_selector::Match::MatchName("settings".into())),
                    namespace: Some("default".into()),
                },
            )]
            .into(),
            ..Default::default()
        });
        Ok(out)
    });
    run(
        &calls,
        &Cluster,
        &[step("one", "f", json!({}))],
        &composite(),
        &BTreeMap::new(),
    )
    .await
    .expect("runs");
    assert_eq!(
        *rounds.lock().unwrap(),
        [None, Some(1)],
        "called once without the ConfigMap, then once with it, then stable"
    );
}

#[tokio::test]
async fn a_missing_required_resource_is_an_empty_entry() {
    let last = Mutex::new(None);
    let calls = Functions(|_: &str, r: pb::RunFunctionRequest| {
        *last.lock().unwrap() = r.required_resources.get("gone").cloned();
        let mut out = add_resource(&r);
        out.requirements = Some(pb::Requirements {
            resources: [(
                "gone".to_string(),
                pb::ResourceSelector {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    r#match: Some(pb::resource_selector::Match::MatchName("absent".into())),
                    namespace: Some("default".into()),
                },
            )]
            .into(),
            ..Default::default()
        });
        Ok(out)
    });
    run(
        &calls,
        &Cluster,
        &[step("one", "f", json!({}))],
        &composite(),
        &BTreeMap::new(),
    )
    .await
    .expect("runs");
    assert_eq!(*last.lock().unwrap(), Some(pb::Resources::default()));
}

#[tokio::test]
async fn requirements_that_never_settle_fail_after_five_rounds() {
    let count = Mutex::new(0u32);
    let calls = Functions(|_: &str, r: pb::RunFunctionRequest| {
        let mut n = count.lock().unwrap();
        *n += 1;
        let mut out = add_resource(&r);
        // A new requirement name every call.
        out.requirements = Some(pb::Requirements {
            resources: [(
                format!("r{n}"),
                pb::ResourceSelector {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    r#match: Some(pb::resource_selector::Match::MatchName("settings".into())),
                    namespace: None,
                },
            )]
            .into(),
            ..Default::default()
        });
        Ok(out)
    });
    let got = run(
        &calls,
        &Cluster,
        &[step("one", "f", json!({}))],
        &composite(),
        &BTreeMap::new(),
    )
    .await;
    assert!(
        matches!(got, Err(PipelineError::Unstable { .. })),
        "{got:?}"
    );
    assert_eq!(*count.lock().unwrap(), MAX_REQUIREMENT_ROUNDS + 1);
}

#[tokio::test]
async fn results_and_conditions_are_kept_with_their_targets() {
    let calls = Functions(|_: &str, r: pb::RunFunctionRequest| {
        let mut out = add_resource(&r);
        out.results = vec![
            pb::Result {
                severity: pb::Severity::Warning as i32,
                message: "careful".into(),
                target: Some(pb::Target::CompositeAndClaim as i32),
                ..Default::default()
            },
            pb::Result {
                severity: pb::Severity::Normal as i32,
                message: "fine".into(),
                reason: Some("Composed".into()),
                ..Default::default()
            },
        ];
        out.conditions = vec![pb::Condition {
            r#type: "DatabaseReady".into(),
            status: pb::Status::ConditionTrue as i32,
            reason: "Available".into(),
            message: None,
            target: Some(pb::Target::CompositeAndClaim as i32),
        }];
        out.meta = Some(pb::ResponseMeta {
            tag: String::new(),
            ttl: Some(prost_types::Duration {
                seconds: 30,
                nanos: 0,
            }),
        });
        Ok(out)
    });
    let got = run(
        &calls,
        &Cluster,
        &[step("one", "f", json!({}))],
        &composite(),
        &BTreeMap::new(),
    )
    .await
    .expect("runs");
    let want_events = vec![
        Event {
            warning: true,
            reason: DEFAULT_REASON.into(),
            message: "careful".into(),
            step: "one".into(),
            target: Target::CompositeAndClaim,
        },
        Event {
            warning: false,
            reason: "Composed".into(),
            message: "fine".into(),
            step: "one".into(),
            target: Target::Composite,
        },
    ];
    assert_eq!(
        got.events, want_events,
        "a result without a reason is ComposeResources"
    );
    assert_eq!(got.conditions[0].status, "True");
    assert_eq!(got.conditions[0].target, Target::CompositeAndClaim);
    assert_eq!(got.ttl, Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn credentials_come_from_the_steps_secret() {
    let seen = Mutex::new(None);
    let calls = Functions(|_: &str, r: pb::RunFunctionRequest| {
        *seen.lock().unwrap() = r.credentials.get("api").cloned();
        Ok(add_resource(&r))
    });
    let mut s = step("one", "f", json!({}));
    s.credentials.push(Credential {
        name: "api".into(),
        namespace: "ns".into(),
        secret: "creds".into(),
    });
    run(
        &calls,
        &Cluster,
        &[s.clone()],
        &composite(),
        &BTreeMap::new(),
    )
    .await
    .expect("runs");
    let want = pb::Credentials {
        source: Some(pb::credentials::Source::CredentialData(
            pb::CredentialData {
                data: [("token".to_string(), b"s3cret".to_vec())].into(),
            },
        )),
    };
    assert_eq!(*seen.lock().unwrap(), Some(want));
    s.credentials[0].secret = "missing".into();
    let got = run(&calls, &Cluster, &[s], &composite(), &BTreeMap::new()).await;
    assert!(
        matches!(got, Err(PipelineError::Credentials { .. })),
        "a missing Secret fails the step: {got:?}"
    );
}

#[test]
fn steps_are_parsed_with_errors_that_name_the_field() {
    let cases = [
        (
            "no pipeline at all",
            json!({}),
            Some("spec.pipeline: Required value"),
        ),
        (
            "a step without a name",
            json!({"pipeline": [{"functionRef": {"name": "f"}}]}),
            Some("spec.pipeline[0].step: Required value"),
        ),
        (
            "a step without a function",
            json!({"pipeline": [{"step": "a"}]}),
            Some("spec.pipeline[0].functionRef.name: Required value"),
        ),
        (
            "two steps of one name",
            json!({"pipeline": [{"step": "a", "functionRef": {"name": "f"}}, {"step": "a", "functionRef": {"name": "f"}}]}),
            Some("spec.pipeline[1].step: Duplicate value"),
        ),
        (
            "a good step",
            json!({"pipeline": [{"step": "a", "functionRef": {"name": "f"}, "input": {"k": 1}}]}),
            None,
        ),
        (
            "an input that is not an object",
            json!({"pipeline": [{"step": "a", "functionRef": {"name": "f"}, "input": "text"}]}),
            Some("spec.pipeline[0].input: Invalid value"),
        ),
        (
            "a required resource by both name and labels",
            json!({"pipeline": [{"step": "a", "functionRef": {"name": "f"}, "requirements": {"requiredResources": [{"requirementName": "r", "apiVersion": "v1", "kind": "ConfigMap", "name": "x", "matchLabels": {"a": "b"}}]}}]}),
            Some("requiredResources[0].name: Invalid value"),
        ),
    ];
    for (reason, spec, want) in cases {
        let got = steps(&spec);
        match want {
            Some(w) => {
                let e = got.expect_err(reason).to_string();
                assert!(e.contains(w), "{reason}: {e}");
            }
            None => assert_eq!(
                got.expect(reason)[0].input,
                Some(json!({"k": 1})),
                "{reason}"
            ),
        }
    }
}

#[test]
fn a_required_resource_without_name_or_labels_selects_every_one_of_its_kind() {
    let spec = json!({"pipeline": [{"step": "a", "functionRef": {"name": "f"},
        "requirements": {"requiredResources": [{"requirementName": "all", "apiVersion": "v1", "kind": "ConfigMap", "namespace": "default"}]}}]});
    let parsed = steps(&spec).expect("parses");
    assert_eq!(
        parsed[0].required["all"].r#match,
        Some(pb::resource_selector::Match::MatchLabels(
            pb::MatchLabels::default()
        )),
        "an empty label selector, as Crossplane reads one"
    );
}
