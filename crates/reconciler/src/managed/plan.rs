//! The managed reconciler's decisions, with no I/O.
//!
//! A cycle is a sequence of steps. [`next`] looks at everything the cycle
//! knows so far (the object, what the provider observed, what this cycle
//! already did) and names the one step to take next; the executor takes it,
//! adds what it learnt, and asks again, until the step is [`Step::Finish`].
//! Every decision crossplane-runtime's managed reconciler makes is here:
//! the finalizer, the leak guard around Create, late initialization,
//! management policies, deletion policies, readiness and when to look again.

use std::collections::BTreeMap;
use std::time::Duration;

use kube::api::DynamicObject;
use runtime::conditions::Condition;
use runtime::events::EventType;
use runtime::names::{self, annotation, condition, finalizer, policy, reason};
use runtime::provider::{ConnectionDetails, Creation, Observation, Readiness};
use runtime::ratelimit::Backoff;
use serde_json::{Map, Value};

/// How soon a resource is looked at again when it is not usable yet, or
/// while its external resource is being deleted.
pub const NOT_READY_RETRY: Duration = Duration::from_secs(1);
pub const DELETING_RETRY: Duration = Duration::from_millis(500);
/// How soon a resource that Create returned but Observe did not find yet
/// is looked at again.
pub const CREATED_RETRY: Duration = Duration::from_millis(100);

/// A managed resource as the decisions read it.
#[derive(Debug, Clone)]
pub struct Managed {
    pub object: DynamicObject,
}

impl Managed {
    pub fn new(object: DynamicObject) -> Managed {
        Managed { object }
    }

    pub fn name(&self) -> &str {
        self.object.metadata.name.as_deref().unwrap_or_default()
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.object
            .metadata
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    pub fn has_finalizer(&self) -> bool {
        self.object
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == finalizer::MANAGED_RESOURCE)
    }

    pub fn deleting(&self) -> bool {
        self.object.metadata.deletion_timestamp.is_some()
    }

    pub fn spec(&self, pointer: &str) -> Option<&Value> {
        self.object.data.pointer(&format!("/spec{pointer}"))
    }

    pub fn for_provider(&self) -> Value {
        self.spec("/forProvider")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    /// `spec.managementPolicies`, `["*"]` when unset or empty.
    pub fn policies(&self) -> Vec<String> {
        let listed: Vec<String> = self
            .spec("/managementPolicies")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if listed.is_empty() {
            vec![policy::ALL.to_string()]
        } else {
            listed
        }
    }

    pub fn allows(&self, verb: &str) -> bool {
        self.policies()
            .iter()
            .any(|p| p == policy::ALL || p == verb)
    }

    pub fn orphans(&self) -> bool {
        self.spec("/deletionPolicy").and_then(Value::as_str) == Some("Orphan")
    }

    /// The ProviderConfig it uses: `spec.providerConfigRef.name`, else `default`.
    pub fn provider_config(&self) -> String {
        self.spec("/providerConfigRef/name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(names::DEFAULT_PROVIDER_CONFIG)
            .to_string()
    }

    /// `spec.writeConnectionSecretToRef` as namespace and name.
    pub fn connection_secret(&self) -> Option<(String, String)> {
        let target = self.spec("/writeConnectionSecretToRef")?;
        Some((
            target.get("namespace")?.as_str()?.to_string(),
            target.get("name")?.as_str()?.to_string(),
        ))
    }

    pub fn conditions(&self) -> Option<&Value> {
        self.object.data.pointer("/status/conditions")
    }

    /// The reason of a condition as last reported.
    pub fn condition_reason(&self, type_: &str) -> Option<&str> {
        self.conditions()?
            .as_array()?
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?
            .get("reason")?
            .as_str()
    }

    /// Whether a Create was started and its outcome never recorded.
    pub fn create_interrupted(&self) -> bool {
        let Some(pending) = self.annotation(annotation::EXTERNAL_CREATE_PENDING) else {
            return false;
        };
        let after = |key| self.annotation(key).is_some_and(|t| t >= pending);
        !after(annotation::EXTERNAL_CREATE_SUCCEEDED) && !after(annotation::EXTERNAL_CREATE_FAILED)
    }
}

/// One write of the object itself: metadata and spec, in one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edit {
    pub add_finalizer: bool,
    pub remove_finalizer: bool,
    /// Annotations to set.
    pub annotations: BTreeMap<String, String>,
    /// forProvider fields to fill in (late initialization).
    pub late_init: Map<String, Value>,
    /// Said once the write has been made.
    pub event: Option<Announcement>,
}

impl Edit {
    pub fn is_empty(&self) -> bool {
        !self.add_finalizer
            && !self.remove_finalizer
            && self.annotations.is_empty()
            && self.late_init.is_empty()
    }

    /// `object` with the edit made.
    pub fn apply_to(&self, object: &mut DynamicObject) {
        let finalizers = object.metadata.finalizers.get_or_insert_with(Vec::new);
        if self.add_finalizer && !finalizers.iter().any(|f| f == finalizer::MANAGED_RESOURCE) {
            finalizers.push(finalizer::MANAGED_RESOURCE.to_string());
        }
        if self.remove_finalizer {
            finalizers.retain(|f| f != finalizer::MANAGED_RESOURCE);
        }
        if !self.annotations.is_empty() {
            object
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .extend(self.annotations.clone());
        }
        if !self.late_init.is_empty() {
            if let Some(spec) = object.data.get_mut("spec").and_then(Value::as_object_mut) {
                let for_provider = spec
                    .entry("forProvider")
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(fields) = for_provider.as_object_mut() {
                    fields.extend(self.late_init.clone());
                }
            }
        }
    }
}

/// An Event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub type_: EventType,
    pub reason: &'static str,
    pub message: String,
}

impl Announcement {
    fn normal(reason: &'static str, message: impl Into<String>) -> Announcement {
        Announcement {
            type_: EventType::Normal,
            reason,
            message: message.into(),
        }
    }
}

/// What a cycle reports on the object's status.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub ready: Condition<'static>,
    /// `None` leaves Synced as it is.
    pub synced: Option<Condition<'static>>,
    pub at_provider: Option<Value>,
}

/// When to look again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// At the resource's drift poll interval.
    Poll,
    After(Duration),
    /// Only when something changes.
    Never,
}

/// How a cycle ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Finish {
    pub status: Option<Status>,
    /// Connection details to merge into the connection Secret.
    pub connection: Option<ConnectionDetails>,
    pub requeue: Requeue,
}

/// The next thing a cycle does.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Observe,
    Validate,
    Create,
    Update,
    Delete,
    /// Writes the object itself (finalizer, annotations, late-init fields).
    Write(Edit),
    /// Reports status before going on (deletion has begun).
    Report(Status),
    Finish(Finish),
}

/// Everything a cycle knows so far.
#[derive(Debug, Clone)]
pub struct Cycle {
    pub object: Managed,
    /// The kind declares that its external name follows from the object
    /// alone, so a lost Create result is always found again by Observe and
    /// the create-pending guard is not needed.
    pub deterministic: bool,
    /// When this cycle runs, for the create annotations.
    pub now: String,
    /// Cycles in a row before this one that called Update.
    pub updates_in_a_row: u32,
    pub backoff: Backoff,
    // What this cycle has done so far.
    pub observed: Option<Observation>,
    pub validated: bool,
    pub written: bool,
    pub reported: bool,
    pub created: Option<Creation>,
    /// Observe right after Create.
    pub observed_after_create: Option<Observation>,
    pub updated: Option<ConnectionDetails>,
    pub deleted: bool,
}

impl Cycle {
    pub fn new(object: Managed, deterministic: bool, now: String) -> Cycle {
        Cycle {
            object,
            deterministic,
            now,
            updates_in_a_row: 0,
            backoff: Backoff::default(),
            observed: None,
            validated: false,
            written: false,
            reported: false,
            created: None,
            observed_after_create: None,
            updated: None,
            deleted: false,
        }
    }

    /// Whether this cycle calls Update (for counting updates in a row).
    pub fn updating(&self) -> bool {
        self.updated.is_some()
    }
}

/// The Ready condition for what Observe found.
pub fn readiness_condition(o: &Observation) -> Condition<'static> {
    let message = o.readiness_message.clone();
    match o.readiness {
        Readiness::Available => Condition::new(condition::READY, true, reason::AVAILABLE, message),
        Readiness::Creating => Condition::new(condition::READY, false, reason::CREATING, message),
        Readiness::Deleting => Condition::new(condition::READY, false, reason::DELETING, message),
        _ => Condition::new(condition::READY, false, reason::UNAVAILABLE, message),
    }
}

fn synced() -> Option<Condition<'static>> {
    Some(Condition::new(
        condition::SYNCED,
        true,
        reason::RECONCILE_SUCCESS,
        "",
    ))
}

/// The next step of `cycle`.
pub fn next(cycle: &Cycle) -> Step {
    let object = &cycle.object;
    if object.deleting() {
        return next_deleting(cycle);
    }
    let Some(observed) = &cycle.observed else {
        return Step::Observe;
    };
    if observed.exists {
        next_existing(cycle, observed)
    } else {
        next_absent(cycle)
    }
}

fn next_deleting(cycle: &Cycle) -> Step {
    let object = &cycle.object;
    let finish = |requeue| {
        Step::Finish(Finish {
            status: None,
            connection: None,
            requeue,
        })
    };
    if !object.has_finalizer() {
        return finish(Requeue::Never);
    }
    let release = |event| {
        Step::Write(Edit {
            remove_finalizer: true,
            event,
            ..Default::default()
        })
    };
    // Orphaned, or deletion is not ours to do: the external resource stays.
    if object.orphans() || !object.allows(policy::DELETE) {
        return if cycle.written {
            finish(Requeue::Never)
        } else {
            release(None)
        };
    }
    if cycle.written {
        return finish(Requeue::Never);
    }
    if !cycle.reported && object.condition_reason(condition::READY) != Some(reason::DELETING) {
        return Step::Report(Status {
            ready: Condition::new(condition::READY, false, reason::DELETING, ""),
            synced: None,
            at_provider: None,
        });
    }
    let Some(observed) = &cycle.observed else {
        return Step::Observe;
    };
    if !observed.exists {
        return release(Some(Announcement::normal(
            names::event::DELETED,
            "deleted the external resource",
        )));
    }
    // Already on its way out: looked at again until it is gone.
    if observed.readiness != Readiness::Deleting && !cycle.deleted {
        return Step::Delete;
    }
    finish(Requeue::After(DELETING_RETRY))
}

fn next_absent(cycle: &Cycle) -> Step {
    let object = &cycle.object;
    if !object.allows(policy::CREATE) {
        return Step::Finish(Finish {
            status: Some(Status {
                ready: Condition::new(
                    condition::READY,
                    false,
                    reason::UNAVAILABLE,
                    "the external resource does not exist",
                ),
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
        });
    }
    let Some(created) = &cycle.created else {
        if !cycle.validated {
            return Step::Validate;
        }
        if !cycle.written {
            let edit = before_create(cycle);
            if !edit.is_empty() {
                return Step::Write(edit);
            }
        }
        return Step::Create;
    };
    // Many resources are usable as soon as Create returns: a look at once
    // takes those straight to Ready, rather than through a Creating status
    // and another cycle (a write and a wake-up of the composite each).
    let Some(after) = &cycle.observed_after_create else {
        return Step::Observe;
    };
    let edit = after_create(cycle, created, after);
    if !edit.is_empty() {
        return Step::Write(edit);
    }
    let mut connection = created.connection.clone();
    if !after.exists {
        return Step::Finish(Finish {
            status: Some(Status {
                ready: Condition::new(condition::READY, false, reason::CREATING, ""),
                synced: synced(),
                at_provider: None,
            }),
            connection: Some(connection),
            requeue: Requeue::After(CREATED_RETRY),
        });
    }
    connection.extend(after.connection.clone());
    let ready = readiness_condition(after);
    let requeue = if ready.status {
        Requeue::Poll
    } else {
        Requeue::After(NOT_READY_RETRY)
    };
    Step::Finish(Finish {
        status: Some(Status {
            ready,
            synced: synced(),
            at_provider: after.at_provider.clone(),
        }),
        connection: Some(connection),
        requeue,
    })
}

/// The one write after Create: what Create made (the external name, and
/// for a kind whose name is not deterministic the create-succeeded
/// annotation that closes the leak guard), with the forProvider fields the
/// external system defaulted. Empty once it is written.
fn after_create(cycle: &Cycle, created: &Creation, after: &Observation) -> Edit {
    let object = &cycle.object;
    let external = if created.external_name.is_empty() {
        object.name().to_string()
    } else {
        created.external_name.clone()
    };
    let mut edit = Edit::default();
    let record = object.annotation(annotation::EXTERNAL_NAME) != Some(external.as_str())
        || (!cycle.deterministic && object.create_interrupted());
    if record {
        edit.annotations
            .insert(annotation::EXTERNAL_NAME.to_string(), external);
        if !cycle.deterministic {
            edit.annotations.insert(
                annotation::EXTERNAL_CREATE_SUCCEEDED.to_string(),
                cycle.now.clone(),
            );
        }
    }
    if after.exists {
        edit.late_init = late_init(object, after);
    }
    edit
}

/// forProvider fields the external system defaulted that the object leaves
/// unset, when management policies allow filling them in.
fn late_init(object: &Managed, observed: &Observation) -> Map<String, Value> {
    if !object.allows(policy::LATE_INITIALIZE) {
        return Map::new();
    }
    let current = object.for_provider();
    observed
        .late_init
        .iter()
        .filter(|(k, _)| current.get(*k).is_none_or(Value::is_null))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The write that goes before Create: the finalizer, so deletion always
/// waits for the external resource; and either the external name (a
/// deterministic kind) or the create-pending annotation, checked against
/// the object's resourceVersion so two cycles never both create.
fn before_create(cycle: &Cycle) -> Edit {
    let object = &cycle.object;
    let mut edit = Edit {
        add_finalizer: !object.has_finalizer(),
        ..Default::default()
    };
    if cycle.deterministic {
        if object.annotation(annotation::EXTERNAL_NAME).is_none() {
            edit.annotations.insert(
                annotation::EXTERNAL_NAME.to_string(),
                object.name().to_string(),
            );
        }
    } else {
        edit.annotations.insert(
            annotation::EXTERNAL_CREATE_PENDING.to_string(),
            cycle.now.clone(),
        );
        if object.create_interrupted() {
            // The provider contract makes Create idempotent (a retried
            // Create finds the first one), so creating again is what avoids
            // both a leak and a duplicate here.
            edit.event = Some(Announcement::normal(
                names::event::RECOVERED,
                "a Create was interrupted before its outcome was recorded and the resource was not found; creating again",
            ));
        }
    }
    edit
}

fn next_existing(cycle: &Cycle, observed: &Observation) -> Step {
    let object = &cycle.object;
    if !cycle.written {
        let edit = adopt(cycle, observed);
        if !edit.is_empty() {
            return Step::Write(edit);
        }
    }
    let updating = !observed.up_to_date && object.allows(policy::UPDATE);
    if updating {
        if !cycle.validated {
            return Step::Validate;
        }
        if cycle.updated.is_none() {
            return Step::Update;
        }
    }
    let mut connection = observed.connection.clone();
    if let Some(updated) = &cycle.updated {
        connection.extend(updated.clone());
    }
    let ready = readiness_condition(observed);
    // What was reported came from before the Update; look again soon so
    // atProvider and Ready show its effect rather than waiting a poll. An
    // external system that never converges gets Updates ever further apart.
    let requeue = if updating {
        Requeue::After(cycle.backoff.delay(cycle.updates_in_a_row + 1))
    } else if ready.status {
        Requeue::Poll
    } else {
        Requeue::After(NOT_READY_RETRY)
    };
    Step::Finish(Finish {
        status: Some(Status {
            ready,
            synced: synced(),
            at_provider: observed.at_provider.clone(),
        }),
        connection: Some(connection),
        requeue,
    })
}

/// The write an existing external resource needs: the finalizer if it is
/// missing, the external name if it was never recorded (a Create whose
/// outcome was lost, found by Observe, is adopted), and the forProvider
/// fields the external system defaulted.
fn adopt(cycle: &Cycle, observed: &Observation) -> Edit {
    let object = &cycle.object;
    let mut edit = Edit {
        add_finalizer: !object.has_finalizer(),
        ..Default::default()
    };
    let recovered = object.create_interrupted();
    if recovered || object.annotation(annotation::EXTERNAL_NAME).is_none() {
        let external = if !observed.external_name.is_empty() {
            observed.external_name.clone()
        } else {
            object
                .annotation(annotation::EXTERNAL_NAME)
                .unwrap_or(object.name())
                .to_string()
        };
        edit.annotations
            .insert(annotation::EXTERNAL_NAME.to_string(), external.clone());
        if recovered {
            edit.annotations.insert(
                annotation::EXTERNAL_CREATE_SUCCEEDED.to_string(),
                cycle.now.clone(),
            );
            edit.event = Some(Announcement::normal(
                names::event::RECOVERED,
                format!(
                    "found the external resource {external} of an interrupted Create; adopted it"
                ),
            ));
        }
    }
    edit.late_init = late_init(object, observed);
    edit
}

#[cfg(test)]
mod tests;
