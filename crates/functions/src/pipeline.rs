//! One run of a `mode: Pipeline` Composition, as Crossplane's function
//! composer runs it: each step's function gets the observed state, the
//! desired state so far, its input, the context from the step before, its
//! credentials and whatever it required; a function that asks for more
//! resources is called again with them until its requirements stop
//! changing (at most [`MAX_REQUIREMENT_ROUNDS`] rounds).
//!
//! Functions are reached through [`Call`] and the cluster through
//! [`Fetch`], so the composite reconciler and `plinth render` run the same
//! loop, and the tests run it with closures.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::pb;
use crate::runner::{self, CallError, Runner};
use crate::structs::{from_struct, to_struct};

/// Crossplane's `MaxRequirementsIterations`.
pub const MAX_REQUIREMENT_ROUNDS: u32 = 5;
/// An event's reason when a result gives none, as Crossplane's.
pub const DEFAULT_REASON: &str = "ComposeResources";

/// Connection details: key to bytes.
pub type Details = BTreeMap<String, Vec<u8>>;

/// A resource as it is now, with its connection details.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub object: Value,
    pub connection: Details,
}

/// A step's Secret credentials.
#[derive(Debug, Clone, PartialEq)]
pub struct Credential {
    pub name: String,
    pub namespace: String,
    pub secret: String,
}

/// One step of a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub name: String,
    pub function: String,
    pub input: Option<Value>,
    pub credentials: Vec<Credential>,
    /// Resources the step declares it needs up front, by requirement name.
    pub required: BTreeMap<String, pb::ResourceSelector>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PipelineError {
    #[error("invalid pipeline: {0}")]
    Invalid(String),
    #[error("pipeline step {step:?} returned a fatal result: {message}")]
    Fatal {
        step: String,
        message: String,
        /// What the steps before it said, still worth showing.
        events: Vec<Event>,
        conditions: Vec<Condition>,
    },
    #[error("cannot run pipeline step {step:?}: {error}")]
    Call { step: String, error: CallError },
    #[error("cannot fetch {requirement:?} for pipeline step {step:?}: {cause}")]
    Fetch {
        step: String,
        requirement: String,
        cause: String,
    },
    #[error("cannot read credentials {name:?} of pipeline step {step:?}: {cause}")]
    Credentials {
        step: String,
        name: String,
        cause: String,
    },
    #[error("pipeline step {step:?}: requirements didn't stabilize after the maximum number of iterations ({MAX_REQUIREMENT_ROUNDS})")]
    Unstable { step: String },
}

/// Where a result or condition is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Composite,
    CompositeAndClaim,
}

impl Target {
    fn from_pb(t: Option<i32>) -> Target {
        match t.and_then(|t| pb::Target::try_from(t).ok()) {
            Some(pb::Target::CompositeAndClaim) => Target::CompositeAndClaim,
            _ => Target::Composite,
        }
    }
}

/// A Warning or Normal result, to become an Event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub warning: bool,
    pub reason: String,
    pub message: String,
    pub step: String,
    pub target: Target,
}

/// A condition a function set.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: &'static str,
    pub reason: String,
    pub message: String,
    pub target: Target,
}

/// A composed resource the pipeline desires.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub object: Value,
    pub ready: bool,
}

/// What a pipeline run decided.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outcome {
    /// The desired composite: only its status counts.
    pub composite: Value,
    pub connection: Details,
    /// The composite's readiness, when a function decided it.
    pub ready: Option<bool>,
    /// Composed resources by their name in the pipeline.
    pub resources: BTreeMap<String, Desired>,
    pub events: Vec<Event>,
    pub conditions: Vec<Condition>,
    /// The shortest TTL any step gave: when to run the pipeline again.
    pub ttl: Option<Duration>,
}

/// Reaches functions.
pub trait Call: Sync {
    fn call(
        &self,
        function: &str,
        request: pb::RunFunctionRequest,
    ) -> impl Future<Output = Result<pb::RunFunctionResponse, CallError>> + Send;
}

impl Call for Runner {
    fn call(
        &self,
        function: &str,
        request: pb::RunFunctionRequest,
    ) -> impl Future<Output = Result<pb::RunFunctionResponse, CallError>> + Send {
        self.run(function, request)
    }
}

/// Reads what functions require and what steps' credentials name.
pub trait Fetch: Sync {
    /// The objects a selector matches, sorted by namespace and name; none
    /// is an empty list, not an error.
    fn resources(
        &self,
        selector: &pb::ResourceSelector,
    ) -> impl Future<Output = Result<Vec<Value>, String>> + Send;

    /// A Secret's data.
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Details, String>> + Send;
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The steps of a Composition (or revision) spec's `pipeline`.
pub fn steps(spec: &Value) -> Result<Vec<Step>, PipelineError> {
    let invalid = |m: String| PipelineError::Invalid(m);
    let Some(pipeline) = spec.get("pipeline").and_then(Value::as_array) else {
        return Err(invalid(
            "spec.pipeline: Required value: a Composition in mode Pipeline needs at least one step"
                .into(),
        ));
    };
    if pipeline.is_empty() {
        return Err(invalid(
            "spec.pipeline: Required value: a Composition in mode Pipeline needs at least one step"
                .into(),
        ));
    }
    let mut steps: Vec<Step> = Vec::new();
    for (i, s) in pipeline.iter().enumerate() {
        let at = format!("spec.pipeline[{i}]");
        let name = text(s, "step").filter(|n| !n.is_empty()).ok_or_else(|| {
            invalid(format!(
                "{at}.step: Required value: every step needs a name"
            ))
        })?;
        if steps.iter().any(|st| st.name == name) {
            return Err(invalid(format!(
                "{at}.step: Duplicate value: {name:?}; step names must be unique"
            )));
        }
        let function = s
            .pointer("/functionRef/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                invalid(format!(
                    "{at}.functionRef.name: Required value: the Function this step runs"
                ))
            })?;
        let mut credentials = Vec::new();
        for (j, c) in s
            .get("credentials")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let cat = format!("{at}.credentials[{j}]");
            let cname =
                text(c, "name").ok_or_else(|| invalid(format!("{cat}.name: Required value")))?;
            match text(c, "source") {
                Some("Secret") => {}
                // Crossplane skips credentials of any other source.
                _ => continue,
            }
            let (Some(namespace), Some(secret)) = (
                c.pointer("/secretRef/namespace").and_then(Value::as_str),
                c.pointer("/secretRef/name").and_then(Value::as_str),
            ) else {
                return Err(invalid(format!(
                    "{cat}.secretRef: Required value: a Secret source needs secretRef.namespace and secretRef.name"
                )));
            };
            credentials.push(Credential {
                name: cname.to_string(),
                namespace: namespace.to_string(),
                secret: secret.to_string(),
            });
        }
        let mut required = BTreeMap::new();
        for (j, r) in s
            .pointer("/requirements/requiredResources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let rat = format!("{at}.requirements.requiredResources[{j}]");
            let key = text(r, "requirementName")
                .ok_or_else(|| invalid(format!("{rat}.requirementName: Required value")))?;
            let selector = selector_from_json(r).map_err(|m| invalid(format!("{rat}.{m}")))?;
            required.insert(key.to_string(), selector);
        }
        steps.push(Step {
            name: name.to_string(),
            function: function.to_string(),
            input: match s.get("input") {
                None | Some(Value::Null) => None,
                Some(i) if i.is_object() => Some(i.clone()),
                Some(_) => {
                    return Err(invalid(format!(
                        "{at}.input: Invalid value: a step's input must be an object"
                    )))
                }
            },
            credentials,
            required,
        });
    }
    Ok(steps)
}

/// A selector as a step's `requirements` or `--extra-resources` write it.
fn selector_from_json(r: &Value) -> Result<pb::ResourceSelector, String> {
    let api_version = text(r, "apiVersion").ok_or("apiVersion: Required value")?;
    let kind = text(r, "kind").ok_or("kind: Required value")?;
    let matches = match (
        text(r, "name"),
        r.get("matchLabels").and_then(Value::as_object),
    ) {
        (Some(n), None) => pb::resource_selector::Match::MatchName(n.to_string()),
        (None, Some(labels)) => pb::resource_selector::Match::MatchLabels(pb::MatchLabels {
            labels: labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
        }),
        // Neither: every object of the kind, as Crossplane selects.
        (None, None) => pb::resource_selector::Match::MatchLabels(pb::MatchLabels::default()),
        (Some(_), Some(_)) => {
            return Err("name: Invalid value: give name or matchLabels, not both".into())
        }
    };
    Ok(pb::ResourceSelector {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
        r#match: Some(matches),
        namespace: text(r, "namespace").map(str::to_string),
    })
}

fn resource(o: &Observed) -> pb::Resource {
    pb::Resource {
        resource: Some(to_struct(&o.object)),
        connection_details: o.connection.clone(),
        ready: pb::Ready::Unspecified as i32,
    }
}

/// What the caller supports, told to every function. Schemas are not
/// among them: a function that asks for one gets an empty one.
fn capabilities() -> Vec<i32> {
    [
        pb::Capability::Capabilities,
        pb::Capability::RequiredResources,
        pb::Capability::Credentials,
        pb::Capability::Conditions,
    ]
    .into_iter()
    .map(|c| c as i32)
    .collect()
}

async fn fetch_all<F: Fetch>(
    fetch: &F,
    step: &str,
    selectors: &BTreeMap<String, pb::ResourceSelector>,
) -> Result<BTreeMap<String, pb::Resources>, PipelineError> {
    let mut out = BTreeMap::new();
    for (name, selector) in selectors {
        let items = fetch
            .resources(selector)
            .await
            .map_err(|cause| PipelineError::Fetch {
                step: step.to_string(),
                requirement: name.clone(),
                cause,
            })?;
        out.insert(
            name.clone(),
            pb::Resources {
                items: items
                    .iter()
                    .map(|o| pb::Resource {
                        resource: Some(to_struct(o)),
                        ..Default::default()
                    })
                    .collect(),
            },
        );
    }
    Ok(out)
}

fn with_tag(mut request: pb::RunFunctionRequest) -> pb::RunFunctionRequest {
    request.meta = None;
    let tag = runner::tag(&request);
    request.meta = Some(pb::RequestMeta {
        tag,
        capabilities: capabilities(),
    });
    request
}

/// Runs one step's function until its requirements are stable.
async fn run_step<C: Call, F: Fetch>(
    calls: &C,
    fetch: &F,
    step: &Step,
    mut request: pb::RunFunctionRequest,
) -> Result<pb::RunFunctionResponse, PipelineError> {
    let bootstrap = request.required_resources.clone();
    let mut previous: Option<pb::Requirements> = None;
    for round in 0..=MAX_REQUIREMENT_ROUNDS {
        let response = calls
            .call(&step.function, with_tag(request.clone()))
            .await
            .map_err(|error| PipelineError::Call {
                step: step.name.clone(),
                error,
            })?;
        if response
            .results
            .iter()
            .any(|r| r.severity == pb::Severity::Fatal as i32)
        {
            return Ok(response);
        }
        let requirements = response.requirements.clone().unwrap_or_default();
        if previous.as_ref() == Some(&requirements) {
            return Ok(response);
        }
        let mut resources = bootstrap.clone();
        resources.extend(fetch_all(fetch, &step.name, &requirements.resources).await?);
        #[allow(deprecated)]
        let extra = fetch_all(fetch, &step.name, &requirements.extra_resources).await?;
        let schemas: BTreeMap<String, pb::Schema> = requirements
            .schemas
            .keys()
            .map(|k| (k.clone(), pb::Schema::default()))
            .collect();
        #[allow(deprecated)]
        let unchanged = request.required_resources == resources
            && request.extra_resources == extra
            && request.required_schemas == schemas;
        if round == 0 && unchanged {
            return Ok(response);
        }
        previous = Some(requirements);
        request.required_resources = resources;
        #[allow(deprecated)]
        {
            request.extra_resources = extra;
        }
        request.required_schemas = schemas;
        request.context = response.context.clone();
    }
    Err(PipelineError::Unstable {
        step: step.name.clone(),
    })
}

fn status_text(s: i32) -> &'static str {
    match pb::Status::try_from(s) {
        Ok(pb::Status::ConditionTrue) => "True",
        Ok(pb::Status::ConditionFalse) => "False",
        _ => "Unknown",
    }
}

/// Runs every step in order, the first with an empty context.
pub async fn run<C: Call, F: Fetch>(
    calls: &C,
    fetch: &F,
    steps: &[Step],
    composite: &Observed,
    observed: &BTreeMap<String, Observed>,
) -> Result<Outcome, PipelineError> {
    run_with_context(
        calls,
        fetch,
        steps,
        composite,
        observed,
        &Value::Object(Default::default()),
    )
    .await
}

/// Runs every step in order, the first with `context` (what `plinth
/// render --context-files` gives).
pub async fn run_with_context<C: Call, F: Fetch>(
    calls: &C,
    fetch: &F,
    steps: &[Step],
    composite: &Observed,
    observed: &BTreeMap<String, Observed>,
    context: &Value,
) -> Result<Outcome, PipelineError> {
    let observed_state = pb::State {
        composite: Some(resource(composite)),
        resources: observed
            .iter()
            .map(|(k, o)| (k.clone(), resource(o)))
            .collect(),
    };
    let mut desired = pb::State::default();
    let mut context = Some(to_struct(context));
    let mut outcome = Outcome::default();
    for step in steps {
        let mut credentials = BTreeMap::new();
        for c in &step.credentials {
            let data = fetch
                .secret(&c.namespace, &c.secret)
                .await
                .map_err(|cause| PipelineError::Credentials {
                    step: step.name.clone(),
                    name: c.name.clone(),
                    cause,
                })?;
            credentials.insert(
                c.name.clone(),
                pb::Credentials {
                    source: Some(pb::credentials::Source::CredentialData(
                        pb::CredentialData { data },
                    )),
                },
            );
        }
        let request = pb::RunFunctionRequest {
            meta: None,
            observed: Some(observed_state.clone()),
            desired: Some(desired.clone()),
            input: step.input.as_ref().map(to_struct),
            context: context.clone(),
            credentials,
            required_resources: fetch_all(fetch, &step.name, &step.required).await?,
            ..Default::default()
        };
        let response = run_step(calls, fetch, step, request).await?;
        if let Some(ttl) = response
            .meta
            .as_ref()
            .and_then(|m| m.ttl)
            .and_then(|d| Duration::try_from(d).ok())
            .filter(|d| !d.is_zero())
        {
            outcome.ttl = Some(outcome.ttl.map_or(ttl, |t| t.min(ttl)));
        }
        desired = response.desired.clone().unwrap_or_default();
        context = response.context.clone();
        for c in &response.conditions {
            outcome.conditions.push(Condition {
                type_: c.r#type.clone(),
                status: status_text(c.status),
                reason: c.reason.clone(),
                message: c.message.clone().unwrap_or_default(),
                target: Target::from_pb(c.target),
            });
        }
        for r in &response.results {
            let reason = r
                .reason
                .clone()
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| DEFAULT_REASON.to_string());
            let target = Target::from_pb(r.target);
            match pb::Severity::try_from(r.severity) {
                Ok(pb::Severity::Fatal) => {
                    return Err(PipelineError::Fatal {
                        step: step.name.clone(),
                        message: r.message.clone(),
                        events: outcome.events,
                        conditions: outcome.conditions,
                    })
                }
                Ok(pb::Severity::Warning) | Ok(pb::Severity::Normal) => {
                    outcome.events.push(Event {
                        warning: r.severity == pb::Severity::Warning as i32,
                        reason,
                        message: r.message.clone(),
                        step: step.name.clone(),
                        target,
                    })
                }
                _ => outcome.events.push(Event {
                    warning: true,
                    reason,
                    message: format!(
                        "Pipeline step {:?} returned a result of unknown severity (assuming warning): {}",
                        step.name, r.message
                    ),
                    step: step.name.clone(),
                    target: Target::Composite,
                }),
            }
        }
    }
    if let Some(c) = desired.composite {
        outcome.composite = c.resource.as_ref().map(from_struct).unwrap_or_default();
        outcome.connection = c.connection_details;
        outcome.ready = match pb::Ready::try_from(c.ready) {
            Ok(pb::Ready::True) => Some(true),
            Ok(pb::Ready::False) => Some(false),
            _ => None,
        };
    }
    outcome.resources = desired
        .resources
        .into_iter()
        .map(|(name, r)| {
            (
                name,
                Desired {
                    object: r.resource.as_ref().map(from_struct).unwrap_or_default(),
                    ready: r.ready == pb::Ready::True as i32,
                },
            )
        })
        .collect();
    Ok(outcome)
}

#[cfg(test)]
mod tests;
