//! The composite reconciler: for each composite resource (XR), select a
//! Composition (and revision), render it with the pure `composition` crate
//! (`mode: Resources`) or run its function pipeline (`mode: Pipeline`),
//! apply the composed resources, delete the ones no longer desired, and
//! report readiness, state and connection details on the XR.
//!
//! Layout:
//! - `plan`: the decisions, with no I/O.
//! - this module: the executor, which reads everything from the shared
//!   caches and performs what the plan says.

pub mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use composition::Observed;
use functions::pipeline::{self as fnpipeline, PipelineError, Target};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use runtime::conditions::Condition;
use runtime::events::{EventType, Recorder, Regarding};
use runtime::names::{condition, reason};
use runtime::queue::Queue;
use runtime::{Action, Cache, Caches, Change, Controller, Key, Writes};
use serde_json::{json, Value};

use crate::names;
use crate::util::{self, Applied, Parsed, Progress};
use crate::xrd::Served;
use plan::{Inputs, ObjectRef, Plan, Selected, XrKind};
use runtime::kinds::Kinds;

/// The annotation that names a composed resource in its Composition or pipeline.
const RESOURCE_NAME: &str = composition::render::ANNOTATION_RESOURCE_NAME;

/// Reconciles of one XR kind at once.
const CONCURRENCY: usize = 8;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error(util::error_message(&e))
    }
}

impl From<runtime::Error> for Error {
    fn from(e: runtime::Error) -> Self {
        Error(e.to_string())
    }
}

struct Ctx {
    client: Client,
    caches: Arc<Caches>,
    served: Served,
    kind: XrKind,
    xrs: Arc<Cache>,
    xrds: Arc<Cache>,
    compositions: Arc<Cache>,
    revisions: Arc<Cache>,
    secrets: Arc<Cache>,
    kinds: Kinds,
    /// What was last applied to composed resources and composites' Secrets.
    applied: Applied,
    /// The XRD, Compositions and revisions, parsed.
    parsed: Parsed,
    progress: Progress,
    writes: Arc<Writes>,
    /// Runs pipeline steps' functions.
    functions: Arc<functions::Runner>,
    /// Events for functions' Warning and Normal results.
    recorder: Arc<Recorder>,
    /// Composed kinds already feeding the queue, so a change to a composed
    /// resource reconciles its composite at once.
    watched: Mutex<BTreeSet<String>>,
    feeds: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    queue: OnceLock<Arc<Queue>>,
    /// What each XR's functions required, by kind: a change to a matching
    /// object runs that XR's pipeline again.
    required: Arc<Mutex<Required>>,
}

/// `apiVersion/kind` → XR name → the selectors its functions asked with.
type Required = std::collections::HashMap<
    String,
    std::collections::HashMap<String, Vec<functions::pb::ResourceSelector>>,
>;

/// Whether a required-resource selector matches a cached object.
fn selects(selector: &functions::pb::ResourceSelector, object: &runtime::Cached) -> bool {
    use functions::pb::resource_selector::Match;
    if let Some(ns) = &selector.namespace {
        if object.key.namespace() != Some(ns.as_str()) {
            return false;
        }
    }
    match &selector.r#match {
        Some(Match::MatchName(name)) => *object.key.name == **name,
        Some(Match::MatchLabels(l)) => l
            .labels
            .iter()
            .all(|(k, v)| object.label(k) == Some(v.as_str())),
        None => true,
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        for feed in self.feeds.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            feed.abort();
        }
    }
}

/// The XR a composed resource (or its connection Secret) belongs to, when
/// it is one of this reconciler's kind: its controller owner, else the
/// composite label Crossplane puts on composed resources (and Plinth on
/// their connection Secrets, whose owner is the composed resource).
fn owner_xr(change: &Change, kind: &XrKind) -> Vec<Key> {
    let Some(object) = change.latest() else {
        return Vec::new();
    };
    let group = |v: &str| {
        v.split_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default()
    };
    if let Some(owner) = &object.controller {
        if *owner.kind == *kind.kind && group(&owner.api_version) == group(&kind.api_version) {
            return vec![Key::cluster(&owner.name)];
        }
    }
    object
        .label(composition::render::LABEL_COMPOSITE)
        .map(|xr| vec![Key::cluster(xr)])
        .unwrap_or_default()
}

pub async fn run(
    client: Client,
    caches: Arc<Caches>,
    served: Served,
    functions: Arc<functions::Runner>,
) {
    let kind = XrKind {
        api_version: served.composite.api_version.clone(),
        kind: served.composite.kind.clone(),
    };
    let xrs = caches.of(&served.composite);
    let ctx = Arc::new(Ctx {
        xrds: caches.of(&util::xrd_resource()),
        compositions: caches.of(&util::composition_resource()),
        revisions: caches.of(&util::revision_resource()),
        secrets: caches.of(&ApiResource::erase::<Secret>(&())),
        xrs: xrs.clone(),
        recorder: Recorder::new(client.clone(), "plinth/composite"),
        functions,
        client,
        caches,
        served,
        kind: kind.clone(),
        kinds: Kinds::with_hint("is its provider installed and healthy?"),
        applied: Applied::default(),
        parsed: Parsed::default(),
        progress: Progress::default(),
        writes: Arc::default(),
        watched: Mutex::default(),
        feeds: Mutex::default(),
        queue: OnceLock::new(),
        required: Arc::default(),
    });
    tracing::info!(kind = %kind.kind, "reconciling composite resources");
    let secret_kind = kind.clone();
    let revision_kind = kind.clone();
    let every_xr = xrs.clone();
    let controller = Controller::new(
        format!("composite/{}", kind.kind),
        xrs,
        ctx.writes.clone(),
        names::DEBOUNCE,
        None,
    )
    .concurrency(CONCURRENCY)
    // Composed resources' connection Secrets: a changed password reaches
    // the composite's own Secret at once.
    .watches(ctx.secrets.clone(), move |change| {
        owner_xr(change, &secret_kind)
    })
    // A new CompositionRevision for this kind re-renders every composite
    // of it (those on the Manual policy render their pinned revision again).
    .watches(ctx.revisions.clone(), move |change| {
        let composes = change
            .object
            .as_ref()
            .and_then(|r| r.value().ok())
            .is_some_and(|r| plan::composes(&r, &revision_kind));
        if composes {
            every_xr.list().iter().map(|c| c.key.clone()).collect()
        } else {
            Vec::new()
        }
    });
    let _ = ctx.queue.set(controller.queue());
    let reconciling = ctx.clone();
    controller
        .run(
            move |key, _| reconcile(reconciling.clone(), key),
            // Doubling from 1 s to a minute, so a pipeline that keeps
            // failing (a Fatal result, say) is not run again every 2 s.
            |_: &Error, failures| {
                Duration::from_secs(1u64 << failures.saturating_sub(1).min(6))
                    .min(Duration::from_secs(60))
            },
        )
        .await;
}

async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Result<Action, Error> {
    let Some(cached) = ctx.xrs.get(&key) else {
        // Gone: nothing it required concerns it any more.
        for by_xr in ctx
            .required
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values_mut()
        {
            by_xr.remove(&*key.name);
        }
        return Ok(Action::AwaitChange);
    };
    let object = cached.object()?;
    if object.metadata.deletion_timestamp.is_some() {
        // Composed resources are owned by the XR; the garbage collector takes them.
        return Ok(Action::AwaitChange);
    }
    match ctx.cycle(&object).await {
        Ok(action) => Ok(action),
        Err(e) => {
            let api = ctx.xr_api();
            let failed = Condition::new(
                condition::SYNCED,
                false,
                reason::RECONCILE_ERROR,
                e.0.clone(),
            );
            util::set_status_on(
                &api,
                &ctx.writes,
                &ctx.served.composite,
                &object,
                &[failed],
                json!({}),
                None,
            )
            .await;
            Err(e)
        }
    }
}

impl Ctx {
    fn xr_api(&self) -> Api<DynamicObject> {
        Api::all_with(self.client.clone(), &self.served.composite)
    }

    /// The cache of a composed kind, feeding this reconciler's queue from
    /// then on.
    async fn composed(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, Arc<Cache>), Error> {
        let resource = self
            .kinds
            .resolve(&self.client, api_version, kind)
            .await
            .map_err(Error)?;
        let cache = self.caches.of(&resource);
        let xr = self.kind.clone();
        self.feed_once(
            format!("{}/{}", resource.api_version, resource.kind),
            &cache,
            move |change| owner_xr(change, &xr),
        );
        cache.synced().await;
        Ok((resource, cache))
    }

    /// Feeds this reconciler's queue from `cache` through `map`, the first
    /// time `name` is asked for; later calls do nothing.
    fn feed_once(
        &self,
        name: String,
        cache: &Arc<Cache>,
        map: impl Fn(&Change) -> Vec<Key> + Send + Sync + 'static,
    ) {
        let first = self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name);
        if let (true, Some(queue)) = (first, self.queue.get()) {
            let feed = runtime::controller::feed(queue.clone(), cache.clone(), map);
            self.feeds
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(feed);
        }
    }

    fn secret_data(&self, namespace: &str, name: &str) -> Result<BTreeMap<String, Vec<u8>>, Error> {
        Ok(self.secret_opt(namespace, name)?.unwrap_or_default())
    }

    fn secret_opt(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, Error> {
        let Some(cached) = self.secrets.get(&Key::new(Some(namespace), name)) else {
            return Ok(None);
        };
        let secret: Secret = cached.parse()?;
        Ok(Some(
            secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect(),
        ))
    }

    async fn cycle(&self, object: &DynamicObject) -> Result<Action, Error> {
        let xr = serde_json::to_value(object)
            .map_err(|e| Error(format!("cannot read the composite resource: {e}")))?;
        let xrd = self
            .parsed
            .get(&self.xrds, &Key::cluster(&self.served.xrd))
            .await?
            .ok_or_else(|| Error(format!("the XRD {} is gone", self.served.xrd)))?;
        let compositions = self.parsed.all(&self.compositions).await?;
        let revisions = self.parsed.all(&self.revisions).await?;
        let selected: Selected = plan::select(
            &xr,
            &xrd,
            &self.kind,
            &self.served.xrd,
            &compositions,
            &revisions,
        )
        .map_err(Error)?;
        if selected.spec.pointer("/spec/mode").and_then(Value::as_str) == Some("Pipeline") {
            return self.cycle_pipeline(object, &xr, &xrd, &selected).await;
        }

        // What exists now of each template, with its connection details.
        let xr_name = object.metadata.name.clone().unwrap_or_default();
        let refs: Vec<ObjectRef> = xr
            .pointer("/spec/resourceRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(ObjectRef::of)
            .collect();
        let mut resources = BTreeMap::new();
        let mut observed = BTreeMap::new();
        for t in plan::templates(&xr_name, &selected) {
            let (resource, cache) = self.composed(&t.api_version, &t.kind).await?;
            resources.insert((t.api_version.clone(), t.kind.clone()), resource);
            let Some((existing, value)) = find_composed(&cache, &t, &refs, object)? else {
                continue;
            };
            drop(existing);
            let connection = self.connection_of(&value)?;
            observed.insert(
                t.template,
                Observed {
                    object: value,
                    connection,
                },
            );
        }
        let live_secret = self.live_secret(&xr)?;
        let plan = plan::plan(
            &xr,
            &Inputs {
                kind: &self.kind,
                xrd: &xrd,
                selected: &selected,
                observed: &observed,
                applied: &self.applied,
                live_secret: live_secret.as_ref(),
                pipeline: None,
            },
        )
        .map_err(Error)?;
        self.execute(object, plan, &resources).await
    }

    /// The XR's own connection Secret as it is now.
    fn live_secret(&self, xr: &Value) -> Result<Option<Value>, Error> {
        Ok(
            match (
                xr.pointer("/spec/writeConnectionSecretToRef/namespace")
                    .and_then(Value::as_str),
                xr.pointer("/spec/writeConnectionSecretToRef/name")
                    .and_then(Value::as_str),
            ) {
                (Some(ns), Some(n)) => self
                    .secrets
                    .get(&Key::new(Some(ns), n))
                    .map(|c| c.value())
                    .transpose()?,
                _ => None,
            },
        )
    }

    /// A cycle of a `mode: Pipeline` Composition: what the XR composes now
    /// (its `resourceRefs`, by their resource-name annotation) goes to the
    /// functions, and what they desire is planned like rendered resources.
    async fn cycle_pipeline(
        &self,
        object: &DynamicObject,
        xr: &Value,
        xrd: &Value,
        selected: &Selected,
    ) -> Result<Action, Error> {
        let spec = selected.spec.get("spec").cloned().unwrap_or_default();
        let steps = fnpipeline::steps(&spec)
            .map_err(|e| Error(format!("Composition {:?}: {e}", selected.composition)))?;
        let mut resources = BTreeMap::new();
        let mut observed = BTreeMap::new();
        for r in xr
            .pointer("/spec/resourceRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(api_version), Some(kind), Some(name)) = (
                r.get("apiVersion").and_then(Value::as_str),
                r.get("kind").and_then(Value::as_str),
                r.get("name").and_then(Value::as_str),
            ) else {
                continue;
            };
            // A kind no longer served has nothing to observe; what refers to
            // it is dropped from resourceRefs, not a reason to stop here.
            let (resource, cache) = match self.composed(api_version, kind).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(kind = %kind, name = %name, error = %e.0, "cannot observe a composed resource");
                    continue;
                }
            };
            resources.insert((api_version.to_string(), kind.to_string()), resource);
            let namespace = r
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty());
            let Some(existing) = cache.get(&Key::new(namespace, name)) else {
                continue;
            };
            // Only what this XR controls is its to show functions (and so to
            // keep or delete): a resourceRef is no proof of ownership.
            if !controlled_by(&existing, object) {
                tracing::warn!(kind = %kind, name = %name, "a resourceRef names a resource this composite does not control; ignored");
                continue;
            }
            let value = existing.value()?;
            let Some(key) = value
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(RESOURCE_NAME))
                .and_then(Value::as_str)
                .map(str::to_string)
            else {
                continue;
            };
            let connection = self.connection_of(&value)?;
            observed.insert(
                key,
                Observed {
                    object: value,
                    connection,
                },
            );
        }
        let live_secret = self.live_secret(xr)?;
        let composite = fnpipeline::Observed {
            object: xr.clone(),
            connection: live_secret.as_ref().map(secret_details).unwrap_or_default(),
        };
        let for_functions: BTreeMap<String, fnpipeline::Observed> = observed
            .iter()
            .map(|(k, o)| {
                (
                    k.clone(),
                    fnpipeline::Observed {
                        object: o.object.clone(),
                        connection: o.connection.clone(),
                    },
                )
            })
            .collect();
        let outcome = fnpipeline::run(
            &*self.functions,
            &ClusterFetch {
                ctx: self,
                xr: object.metadata.name.clone().unwrap_or_default(),
            },
            &steps,
            &composite,
            &for_functions,
        )
        .await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                // What the steps before a fatal one said is shown still;
                // nothing is applied or deleted.
                if let PipelineError::Fatal { events, .. } = &e {
                    self.publish(object, xr, events);
                }
                return Err(Error(format!(
                    "Composition {:?}: {e}",
                    selected.composition
                )));
            }
        };
        self.publish(object, xr, &outcome.events);
        let pipelined = plan::pipelined(xr, &outcome, &observed)
            .map_err(|e| Error(format!("Composition {:?}: {e}", selected.composition)))?;
        // Every desired kind feeds this queue from now on, so a new
        // resource's first status change reconciles its XR at once.
        for c in &pipelined.rendered.composed {
            let (Some(api_version), Some(kind)) = (
                c.object.get("apiVersion").and_then(Value::as_str),
                c.object.get("kind").and_then(Value::as_str),
            ) else {
                continue;
            };
            let key = (api_version.to_string(), kind.to_string());
            if let std::collections::btree_map::Entry::Vacant(slot) = resources.entry(key) {
                slot.insert(self.composed(api_version, kind).await?.0);
            }
        }
        let plan = plan::plan(
            xr,
            &Inputs {
                kind: &self.kind,
                xrd,
                selected,
                observed: &observed,
                applied: &self.applied,
                live_secret: live_secret.as_ref(),
                pipeline: Some(&pipelined),
            },
        )
        .map_err(Error)?;
        self.execute(object, plan, &resources).await
    }

    /// A composed resource's connection details, from the Secret it writes.
    fn connection_of(&self, value: &Value) -> Result<BTreeMap<String, Vec<u8>>, Error> {
        match (
            value
                .pointer("/spec/writeConnectionSecretToRef/namespace")
                .and_then(Value::as_str),
            value
                .pointer("/spec/writeConnectionSecretToRef/name")
                .and_then(Value::as_str),
        ) {
            (Some(ns), Some(n)) => self.secret_data(ns, n),
            _ => Ok(BTreeMap::new()),
        }
    }

    /// Functions' Warning and Normal results as Events on the XR, and on
    /// its claim where they target it too.
    fn publish(&self, object: &DynamicObject, xr: &Value, events: &[fnpipeline::Event]) {
        for e in events {
            let type_ = if e.warning {
                EventType::Warning
            } else {
                EventType::Normal
            };
            self.recorder.publish(
                Regarding {
                    api_version: self.kind.api_version.clone(),
                    kind: self.kind.kind.clone(),
                    namespace: None,
                    name: object.metadata.name.clone().unwrap_or_default(),
                    uid: object.metadata.uid.clone().unwrap_or_default(),
                },
                type_,
                &e.reason,
                format!("Pipeline step {:?}: {}", e.step, e.message),
            );
            if e.target != Target::CompositeAndClaim {
                continue;
            }
            let claim = |f: &str| {
                xr.pointer(&format!("/spec/claimRef/{f}"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            if let (Some(api_version), Some(kind), Some(name)) =
                (claim("apiVersion"), claim("kind"), claim("name"))
            {
                let namespace = claim("namespace");
                // kubectl describe finds a claim's Events by its UID too.
                let uid = self
                    .served
                    .claim
                    .as_ref()
                    .and_then(|claims| {
                        self.caches
                            .of(claims)
                            .get(&Key::new(namespace.as_deref(), &name))
                    })
                    .map(|c| c.uid.to_string())
                    .unwrap_or_default();
                self.recorder.publish(
                    Regarding {
                        api_version,
                        kind,
                        namespace,
                        name,
                        uid,
                    },
                    type_,
                    &e.reason,
                    e.message.clone(),
                );
            }
        }
    }

    async fn execute(
        &self,
        object: &DynamicObject,
        plan: Plan,
        resources: &BTreeMap<(String, String), ApiResource>,
    ) -> Result<Action, Error> {
        for old in &plan.deletes {
            // A kind no longer served has nothing left to delete: said, not hidden.
            let resource = match self
                .kinds
                .resolve(&self.client, &old.api_version, &old.kind)
                .await
            {
                Ok(resource) => resource,
                Err(e) => {
                    tracing::warn!(kind = %old.kind, name = %old.name, error = %e, "cannot delete a resource the Composition no longer has");
                    continue;
                }
            };
            // Only what this XR controls is deleted, as Crossplane's garbage
            // collector does: a resourceRef may name anything.
            // The cache is waited for: a resource it has not heard of yet
            // would be dropped from resourceRefs and never deleted.
            let cache = self.caches.of(&resource);
            cache.synced().await;
            let controlled = cache
                .get(&old.key())
                .is_some_and(|c| controlled_by(&c, object));
            if !controlled {
                tracing::warn!(kind = %old.kind, name = %old.name, "not deleting a resource this composite does not control");
                continue;
            }
            let gone: Api<DynamicObject> = match &old.namespace {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
                None => Api::all_with(self.client.clone(), &resource),
            };
            match gone.delete(&old.name, &DeleteParams::background()).await {
                Ok(_) => {
                    tracing::info!(kind = %old.kind, name = %old.name, "deleted a resource the Composition no longer has")
                }
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        let api = self.xr_api();
        let mut now = object.clone();
        if let Some(owned) = &plan.xr {
            now = api
                .patch(
                    object.metadata.name.as_deref().unwrap_or_default(),
                    &PatchParams::apply(names::FIELD_MANAGER).force(),
                    &Patch::Apply(owned),
                )
                .await?;
            self.writes.record(&self.served.composite, &now);
        }
        // Composed resources go after the XR records them, so none is ever
        // created without a reference to find it by (Crossplane's order).
        for apply in &plan.applies {
            let key = (apply.target.api_version.clone(), apply.target.kind.clone());
            let resource = match resources.get(&key) {
                Some(r) => r.clone(),
                None => self
                    .kinds
                    .resolve(&self.client, &apply.target.api_version, &apply.target.kind)
                    .await
                    .map_err(Error)?,
            };
            let api: Api<DynamicObject> = match &apply.target.namespace {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
                None => Api::all_with(self.client.clone(), &resource),
            };
            let written = api
                .patch(
                    &apply.target.name,
                    &PatchParams::apply(names::FIELD_MANAGER).force(),
                    &Patch::Apply(&apply.object),
                )
                .await
                .map_err(|e| {
                    Error(format!(
                        "applying {} {} (resource {:?}): {}",
                        apply.target.kind,
                        apply.target.name,
                        apply.template,
                        util::error_message(&e)
                    ))
                })?;
            self.writes.record(&resource, &written);
            self.applied.record(&apply.memory_key(), &apply.object);
        }
        if let Some((namespace, name, secret)) = &plan.secret {
            let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
            let written = secrets
                .patch(
                    name,
                    &PatchParams::apply(names::FIELD_MANAGER).force(),
                    &Patch::Apply(secret),
                )
                .await?;
            self.writes.record_version(
                &ApiResource::erase::<Secret>(&()),
                Key::new(Some(namespace), name),
                written
                    .metadata
                    .resource_version
                    .as_deref()
                    .unwrap_or_default(),
            );
            self.applied
                .record(&format!("v1/Secret/{namespace}/{name}"), secret);
        }
        let held = if plan.report {
            util::set_status_on(
                &api,
                &self.writes,
                &self.served.composite,
                &now,
                &plan.conditions,
                plan.status,
                Some(&self.progress),
            )
            .await
        } else {
            None
        };
        Ok(Action::Requeue(
            held.map_or(plan.requeue, |h| h.min(plan.requeue)),
        ))
    }
}

/// Whether `object`'s controller owner is the XR `xr`.
/// What exists of a template: under the name derived for it, or, for a
/// name its base or patches set (or a namespaced resource), the one of the
/// composite's `resourceRefs` that carries the template's name in its
/// resource-name annotation and that this composite controls.
fn find_composed(
    cache: &Cache,
    template: &plan::Template,
    refs: &[ObjectRef],
    xr: &DynamicObject,
) -> Result<Option<(Arc<runtime::Cached>, Value)>, Error> {
    if let Some(existing) = cache.get(&Key::cluster(&template.name)) {
        let value = existing.value()?;
        return Ok(Some((existing, value)));
    }
    for r in refs
        .iter()
        .filter(|r| r.api_version == template.api_version && r.kind == template.kind)
    {
        let Some(existing) = cache.get(&r.key()) else {
            continue;
        };
        if !controlled_by(&existing, xr) {
            continue;
        }
        let value = existing.value()?;
        let named = value
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(RESOURCE_NAME))
            .and_then(Value::as_str)
            == Some(template.template.as_str());
        if named {
            return Ok(Some((existing, value)));
        }
    }
    Ok(None)
}

fn controlled_by(object: &runtime::Cached, xr: &DynamicObject) -> bool {
    match (&object.controller, xr.metadata.uid.as_deref()) {
        (Some(owner), Some(uid)) => *owner.uid == *uid,
        _ => false,
    }
}

/// A Secret's `data`, decoded.
fn secret_details(secret: &Value) -> BTreeMap<String, Vec<u8>> {
    use base64::Engine;
    secret
        .get("data")
        .and_then(Value::as_object)
        .map(|data| {
            data.iter()
                .filter_map(|(k, v)| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str()?)
                        .ok()?;
                    Some((k.clone(), bytes))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What functions require and steps' credentials name, from the shared
/// caches; what one XR required is remembered, so that a change to it
/// runs that XR's pipeline again (as Crossplane watches what functions
/// require).
struct ClusterFetch<'a> {
    ctx: &'a Ctx,
    xr: String,
}

impl Ctx {
    /// Remembers that `xr` required objects `selector` matches, and feeds
    /// this reconciler's queue from changes of their kind.
    fn require(
        &self,
        resource: &ApiResource,
        cache: &Arc<Cache>,
        xr: &str,
        selector: &functions::pb::ResourceSelector,
    ) {
        let kind = format!("{}/{}", resource.api_version, resource.kind);
        {
            let mut required = self.required.lock().unwrap_or_else(|e| e.into_inner());
            let selectors = required
                .entry(kind.clone())
                .or_default()
                .entry(xr.to_string())
                .or_default();
            if !selectors.contains(selector) {
                selectors.push(selector.clone());
            }
        }
        let required = self.required.clone();
        self.feed_once(format!("required:{kind}"), cache, move |change| {
            let Some(object) = change.latest() else {
                return Vec::new();
            };
            let required = required.lock().unwrap_or_else(|e| e.into_inner());
            required
                .get(&kind)
                .map(|by_xr| {
                    by_xr
                        .iter()
                        .filter(|(_, selectors)| selectors.iter().any(|s| selects(s, object)))
                        .map(|(xr, _)| Key::cluster(xr))
                        .collect()
                })
                .unwrap_or_default()
        });
    }
}

impl functions::Fetch for ClusterFetch<'_> {
    async fn resources(
        &self,
        selector: &functions::pb::ResourceSelector,
    ) -> Result<Vec<Value>, String> {
        let resource = self
            .ctx
            .kinds
            .resolve(&self.ctx.client, &selector.api_version, &selector.kind)
            .await?;
        let cache = self.ctx.caches.of(&resource);
        self.ctx.require(&resource, &cache, &self.xr, selector);
        cache.synced().await;
        let mut found = cache.filter(|c| selects(selector, c));
        found.sort_by(|a, b| a.key.cmp(&b.key));
        found
            .iter()
            .map(|c| {
                c.value()
                    .map_err(|e| format!("cannot read {} {}: {e}", selector.kind, c.key))
            })
            .collect()
    }

    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<BTreeMap<String, Vec<u8>>, String> {
        self.ctx
            .secret_opt(namespace, name)
            .map_err(|e| e.0)?
            .ok_or_else(|| format!("Secret {namespace}/{name} does not exist"))
    }
}
