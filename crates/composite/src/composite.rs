//! The composite reconciler: for each composite resource (XR), select a
//! Composition (and revision), render it with the pure `composition` crate,
//! apply the composed resources, delete the ones no longer rendered, and
//! report readiness, state and connection details on the XR.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use composition::{render, Observed};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use reconciler::conditions::Condition;
use reconciler::names::{condition, reason};
use serde_json::{json, Map, Value};

use crate::names;
use crate::util::{self, Kinds};
use crate::xrd::Served;

struct Ctx {
    client: Client,
    served: Served,
    kinds: Kinds,
    /// Composed kinds already watched, so a change to a composed resource
    /// reconciles its composite at once instead of at the next poll.
    watched: std::sync::Mutex<BTreeSet<String>>,
    triggers: tokio::sync::mpsc::UnboundedSender<ObjectRef<DynamicObject>>,
    /// The watch tasks: owned here so they end with this reconciler (on
    /// shutdown, or when its XRD is deleted) instead of outliving it.
    watchers: std::sync::Mutex<tokio::task::JoinSet<()>>,
    /// What was last applied to composed resources and composites' Secrets.
    applied: util::Applied,
    /// The XRD, Compositions and revisions, shared by bursts of cycles.
    definitions: Arc<util::Definitions>,
}

impl Ctx {
    /// Starts watching a composed kind, once.
    fn watch(&self, ar: &kube::api::ApiResource) {
        let key = format!("{}/{}", ar.api_version, ar.kind);
        if !self
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key)
        {
            return;
        }
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), ar);
        let triggers = self.triggers.clone();
        let xr_ar = self.served.composite.clone();
        let config = watcher::Config::default().labels(composition::render::LABEL_COMPOSITE);
        let task = async move {
            // Backoff: a watch that keeps failing waits between attempts
            // instead of spinning a worker thread.
            let mut events = watcher(api, config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                let objects = match event {
                    Ok(
                        watcher::Event::Apply(o)
                        | watcher::Event::Delete(o)
                        | watcher::Event::InitApply(o),
                    ) => vec![o],
                    _ => continue,
                };
                for o in objects {
                    if let Some(xr) = o.labels().get(composition::render::LABEL_COMPOSITE) {
                        if triggers
                            .send(ObjectRef::new_with(xr, xr_ar.clone()))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        };
        self.watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spawn(task);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error(util::error_message(&e))
    }
}

pub async fn run(client: Client, served: Served) {
    let ar = served.composite.clone();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let (triggers, triggered) = tokio::sync::mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx {
        client,
        served,
        kinds: Kinds::default(),
        watched: Default::default(),
        triggers,
        watchers: Default::default(),
        applied: Default::default(),
        definitions: Default::default(),
    });
    tracing::info!(kind = %ar.kind, "reconciling composite resources");
    // Composed resources' connection Secrets carry the composite's label
    // too: a changed password reaches the composite's own Secret at once.
    ctx.watch(&kube::api::ApiResource::erase::<Secret>(&()));
    // A new CompositionRevision for this kind re-renders every composite of
    // it (those on the Manual policy render their pinned revision again).
    let (revised, revisions_seen) = tokio::sync::mpsc::unbounded_channel::<()>();
    let revisions: Api<DynamicObject> =
        Api::all_with(ctx.client.clone(), &util::revision_resource());
    let (kind, api_version) = (ar.kind.clone(), ar.api_version.clone());
    let definitions = ctx.definitions.clone();
    let revisions_task = async move {
        let mut events = watcher(revisions, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            if let Ok(watcher::Event::Apply(r)) = event {
                definitions.clear();
                if composes(&r.data, &api_version, &kind) && revised.send(()).is_err() {
                    return;
                }
            }
        }
    };
    ctx.watchers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .spawn(revisions_task);
    reconciler::cache::controller(api, watcher::Config::default(), ar)
        // Every write to what an object composes wakes it, and writes come
        // in bursts (a managed resource is written four or five times while
        // it is created); a short debounce folds a burst into one cycle.
        .with_config(kube::runtime::controller::Config::default().debounce(crate::names::DEBOUNCE))
        .reconcile_on(tokio_stream::wrappers::UnboundedReceiverStream::new(
            triggered,
        ))
        .reconcile_all_on(tokio_stream::wrappers::UnboundedReceiverStream::new(
            revisions_seen,
        ))
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_secs(2)),
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    if obj.metadata.deletion_timestamp.is_some() {
        // Composed resources are owned by the XR; the garbage collector takes them.
        return Ok(Action::await_change());
    }
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ctx.served.composite);
    match cycle(&obj, &ctx, &api).await {
        Ok(action) => Ok(action),
        Err(e) => {
            util::set_status(
                &api,
                &obj,
                &[Condition::new(
                    condition::SYNCED,
                    false,
                    reason::RECONCILE_ERROR,
                    e.0.clone(),
                )],
                json!({}),
            )
            .await;
            Err(e)
        }
    }
}

/// Whether a Composition (or revision) spec is for this composite kind:
/// group and kind, since two groups may share a kind (any served version of
/// the group will do, as the XR is the same object at each).
fn composes(composition: &Value, api_version: &str, kind: &str) -> bool {
    let group = |v: &str| {
        v.split_once('/')
            .map(|(g, _)| g.to_string())
            .unwrap_or_default()
    };
    composition
        .pointer("/spec/compositeTypeRef/kind")
        .and_then(Value::as_str)
        == Some(kind)
        && composition
            .pointer("/spec/compositeTypeRef/apiVersion")
            .and_then(Value::as_str)
            .map(group)
            == Some(group(api_version))
}

/// The Composition to use: enforced, named, selected by labels, or the default.
async fn select(obj: &DynamicObject, xrd: &Value, ctx: &Ctx) -> Result<DynamicObject, Error> {
    let compositions: Api<DynamicObject> =
        Api::all_with(ctx.client.clone(), &util::composition_resource());
    let name_at = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
    let spec = obj.data.get("spec").cloned().unwrap_or_default();
    let chosen = if let Some(n) = name_at(xrd, "/spec/enforcedCompositionRef/name") {
        n
    } else if let Some(n) = name_at(&spec, "/compositionRef/name") {
        n
    } else if let Some(selector) = spec.get("compositionSelector").filter(|s| s.is_object()) {
        let api_version = ctx.served.composite.api_version.clone();
        let mut matching: Vec<String> = ctx
            .definitions
            .list(&compositions, None)
            .await?
            .into_iter()
            .filter(|c| {
                composes(&c.data, &api_version, &ctx.served.composite.kind)
                    && util::labels_match(selector, c.labels())
            })
            .map(|c| c.name_any())
            .collect();
        matching.sort();
        matching.into_iter().next().ok_or_else(|| {
            Error(format!(
                "no Composition for {} matches spec.compositionSelector {}",
                ctx.served.composite.kind,
                selector.get("matchLabels").cloned().unwrap_or_default()
            ))
        })?
    } else if let Some(n) = name_at(xrd, "/spec/defaultCompositionRef/name") {
        n
    } else {
        return Err(Error(format!(
            "no Composition selected: set spec.compositionRef or spec.compositionSelector, or give XRD {} a defaultCompositionRef",
            ctx.served.xrd
        )));
    };
    let composition = ctx
        .definitions
        .get(&compositions, &chosen)
        .await?
        .ok_or_else(|| Error(format!("Composition {chosen:?} does not exist")))?;
    if !composes(
        &composition.data,
        &ctx.served.composite.api_version,
        &ctx.served.composite.kind,
    ) {
        let type_ref = |field: &str| {
            composition
                .data
                .pointer(&format!("/spec/compositeTypeRef/{field}"))
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        };
        return Err(Error(format!(
            "Composition {chosen:?} composes {} {}, not {} {}",
            type_ref("apiVersion"),
            type_ref("kind"),
            ctx.served.composite.api_version,
            ctx.served.composite.kind
        )));
    }
    Ok(composition)
}

/// The revision to render: pinned by `compositionRevisionRef` under the
/// Manual policy, else the newest.
async fn revision(
    obj: &DynamicObject,
    xrd: &Value,
    composition: &DynamicObject,
    ctx: &Ctx,
) -> Result<(Value, Option<String>), Error> {
    let revisions: Api<DynamicObject> =
        Api::all_with(ctx.client.clone(), &util::revision_resource());
    let policy = obj
        .data
        .pointer("/spec/compositionUpdatePolicy")
        .or_else(|| xrd.pointer("/spec/defaultCompositionUpdatePolicy"))
        .and_then(Value::as_str)
        .unwrap_or(names::POLICY_AUTOMATIC);
    if policy == names::POLICY_MANUAL {
        if let Some(pinned) = obj
            .data
            .pointer("/spec/compositionRevisionRef/name")
            .and_then(Value::as_str)
        {
            let r = ctx
                .definitions
                .get(&revisions, pinned)
                .await?
                .ok_or_else(|| Error(format!("CompositionRevision {pinned:?} does not exist")))?;
            return Ok((
                json!({"spec": r.data.get("spec").cloned().unwrap_or_default()}),
                Some(pinned.to_string()),
            ));
        }
    }
    let selector = format!(
        "{}={}",
        names::LABEL_COMPOSITION_NAME,
        composition.name_any()
    );
    let list = ctx.definitions.list(&revisions, Some(&selector)).await?;
    let newest = list.into_iter().max_by_key(|r| {
        r.data
            .pointer("/spec/revision")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    });
    Ok(match newest {
        Some(r) => (
            json!({"spec": r.data.get("spec").cloned().unwrap_or_default()}),
            Some(r.name_any()),
        ),
        // The revision controller has not caught up yet; the Composition is the same spec.
        None => (
            json!({"spec": composition.data.get("spec").cloned().unwrap_or_default()}),
            None,
        ),
    })
}

async fn secret_data(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    Ok(secrets
        .get_opt(name)
        .await?
        .and_then(|s| s.data)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
}

async fn cycle(obj: &DynamicObject, ctx: &Ctx, api: &Api<DynamicObject>) -> Result<Action, Error> {
    let xrds: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &util::xrd_resource());
    let xrd = ctx
        .definitions
        .get(&xrds, &ctx.served.xrd)
        .await?
        .map(|x| serde_json::to_value(x).unwrap_or_default())
        .ok_or_else(|| Error(format!("the XRD {} is gone", ctx.served.xrd)))?;
    let composition = select(obj, &xrd, ctx).await?;
    let (spec, revision_name) = revision(obj, &xrd, &composition, ctx).await?;
    let xr = serde_json::to_value(obj).map_err(|e| Error(e.to_string()))?;

    // What exists now of each template.
    let templates = spec
        .pointer("/spec/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut observed = BTreeMap::new();
    for (i, t) in templates.iter().enumerate() {
        let template = t
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format!("resource-{i}"));
        let (Some(api_version), Some(kind)) = (
            t.pointer("/base/apiVersion").and_then(Value::as_str),
            t.pointer("/base/kind").and_then(Value::as_str),
        ) else {
            continue;
        };
        let ar = ctx
            .kinds
            .resolve(&ctx.client, api_version, kind)
            .await
            .map_err(Error)?;
        ctx.watch(&ar);
        let name = composition::render::composed_name(&obj.name_any(), &template);
        let composed: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ar);
        if let Some(existing) = composed.get_opt(&name).await? {
            let value = serde_json::to_value(&existing).unwrap_or_default();
            let connection = match (
                value
                    .pointer("/spec/writeConnectionSecretToRef/namespace")
                    .and_then(Value::as_str),
                value
                    .pointer("/spec/writeConnectionSecretToRef/name")
                    .and_then(Value::as_str),
            ) {
                (Some(ns), Some(n)) => secret_data(&ctx.client, ns, n).await?,
                _ => BTreeMap::new(),
            };
            observed.insert(
                template,
                Observed {
                    object: value,
                    connection,
                },
            );
        }
    }

    let rendered = render(&xr, &spec, &observed)
        .map_err(|e| Error(format!("Composition {:?}: {e}", composition.name_any())))?;

    // Apply what was rendered.
    let mut refs = Vec::new();
    let mut unready = Vec::new();
    for (c, template) in rendered.composed.iter().zip(templates.iter()) {
        let mut object = c.object.clone();
        let wants_secret = template
            .get("connectionDetails")
            .and_then(Value::as_array)
            .is_some_and(|d| !d.is_empty());
        if wants_secret && object.pointer("/spec/writeConnectionSecretToRef").is_none() {
            object["spec"]["writeConnectionSecretToRef"] = json!({"namespace": names::SYSTEM_NAMESPACE, "name": object["metadata"]["name"].clone()});
        }
        let api_version = object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ar = ctx
            .kinds
            .resolve(&ctx.client, &api_version, &kind)
            .await
            .map_err(Error)?;
        let composed: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ar);
        let key = format!("{api_version}/{kind}/{name}");
        // Not there (deleted by someone, say): applied again whatever the memory says.
        let live = observed
            .get(&c.template)
            .map_or(&Value::Null, |o| &o.object);
        if ctx.applied.needed(&key, &object, Some(live)) {
            composed
                .patch(
                    &name,
                    &PatchParams::apply(names::FIELD_MANAGER).force(),
                    &Patch::Apply(&object),
                )
                .await
                .map_err(|e| {
                    Error(format!(
                        "applying {kind} {name} (resource {:?}): {}",
                        c.template,
                        util::error_message(&e)
                    ))
                })?;
            ctx.applied.record(&key, &object);
        }
        refs.push(json!({"apiVersion": api_version, "kind": kind, "name": name}));
        if !c.ready {
            let why = observed
                .get(&c.template)
                .and_then(|o| {
                    let synced = util::condition(&o.object, condition::SYNCED);
                    let ready = util::condition(&o.object, condition::READY);
                    synced
                        .filter(|s| s["status"] == "False")
                        .or(ready)
                        .and_then(|c| {
                            match c.get("message").and_then(Value::as_str) {
                                Some(message) if !message.is_empty() => Some(message),
                                // A resource on its way up says no more than
                                // that, so this message (and each status write
                                // it causes, here and on the claim) changes
                                // only when something does.
                                _ => c
                                    .get("reason")
                                    .and_then(Value::as_str)
                                    .filter(|r| *r != reason::CREATING),
                            }
                        })
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "being created".into());
            unready.push(format!("{kind} {name}: {why}"));
        }
    }

    // Delete what is no longer rendered.
    let wanted: BTreeSet<String> = refs.iter().map(|r| r.to_string()).collect();
    for old in obj
        .data
        .pointer("/spec/resourceRefs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        if wanted.contains(&old.to_string()) {
            continue;
        }
        let (Some(v), Some(k), Some(n)) = (
            old["apiVersion"].as_str(),
            old["kind"].as_str(),
            old["name"].as_str(),
        ) else {
            continue;
        };
        if let Ok(ar) = ctx.kinds.resolve(&ctx.client, v, k).await {
            let gone: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ar);
            match gone.delete(n, &DeleteParams::background()).await {
                Ok(_) => tracing::info!(
                    kind = k,
                    name = n,
                    "deleted a resource the Composition no longer has"
                ),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    // What this reconciler decides on the XR: the Composition and revision,
    // the composed resources, and whatever ToComposite patches wrote into
    // its spec and metadata (Crossplane applies those to the whole XR, not
    // only its status). Server-side apply as this manager, so a field a
    // ToComposite patch stops writing is removed again.
    let mut owned_spec = rendered
        .to_composite
        .get("spec")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    owned_spec.insert("resourceRefs".into(), json!(refs));
    owned_spec.insert(
        "compositionRef".into(),
        json!({"name": composition.name_any()}),
    );
    if let Some(r) = &revision_name {
        owned_spec.insert("compositionRevisionRef".into(), json!({"name": r}));
    }
    let own_secret = obj
        .data
        .pointer("/spec/writeConnectionSecretToRef")
        .is_none()
        && obj.data.pointer("/spec/claimRef").is_none();
    if let Some(ns) = spec
        .pointer("/spec/writeConnectionSecretsToNamespace")
        .and_then(Value::as_str)
        .filter(|_| own_secret)
    {
        // Crossplane: an XR of its own (no claim) gets a Secret named after
        // its UID in the Composition's namespace.
        owned_spec.insert(
            "writeConnectionSecretToRef".into(),
            json!({"namespace": ns, "name": obj.metadata.uid.clone().unwrap_or_else(|| obj.name_any())}),
        );
    }
    let mut owned_meta = json!({"name": obj.name_any()});
    for field in ["labels", "annotations"] {
        if let Some(m) = rendered
            .to_composite
            .pointer(&format!("/metadata/{field}"))
            .filter(|m| m.is_object())
        {
            owned_meta[field] = m.clone();
        }
    }
    let owned = json!({
        "apiVersion": ctx.served.composite.api_version,
        "kind": ctx.served.composite.kind,
        "metadata": owned_meta,
        "spec": owned_spec,
    });
    let live = serde_json::to_value(obj).unwrap_or_default();
    let mut obj_now = obj.clone();
    if !util::contains(&live, &owned) {
        obj_now = api
            .patch(
                &obj.name_any(),
                &PatchParams::apply(names::FIELD_MANAGER).force(),
                &Patch::Apply(owned),
            )
            .await?;
    }
    let obj = &obj_now;

    // The XR's own connection Secret.
    if let (Some(ns), Some(n)) = (
        obj.data
            .pointer("/spec/writeConnectionSecretToRef/namespace")
            .and_then(Value::as_str),
        obj.data
            .pointer("/spec/writeConnectionSecretToRef/name")
            .and_then(Value::as_str),
    ) {
        let keys: Vec<String> = xrd
            .pointer("/spec/connectionSecretKeys")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let data: Map<String, Value> = rendered
            .connection
            .iter()
            .filter(|(k, _)| keys.is_empty() || keys.contains(k))
            .map(|(k, v)| {
                (
                    k.clone(),
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        // The claim's labels let the claim reconciler hear of a changed Secret.
        let labels: Map<String, Value> = [names::LABEL_CLAIM_NAME, names::LABEL_CLAIM_NAMESPACE]
            .into_iter()
            .filter_map(|key| Some((key.to_string(), json!(obj.labels().get(key)?))))
            .collect();
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": n, "namespace": ns, "labels": labels, "ownerReferences": [{
                "apiVersion": ctx.served.composite.api_version, "kind": ctx.served.composite.kind,
                "name": obj.name_any(), "uid": obj.metadata.uid.clone().unwrap_or_default(), "controller": true}]},
            "type": "connection.crossplane.io/v1alpha1",
            "data": data
        });
        ctx.applied
            .apply_secret(&ctx.client, ns, n, &secret)
            .await?;
    }

    // State read back from composed resources, and readiness.
    let mut status = rendered
        .composite
        .get("status")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(map) = status.as_object_mut() {
        map.remove("conditions");
    }
    let ready = if rendered.ready {
        Condition::new(condition::READY, true, reason::AVAILABLE, "")
    } else {
        Condition::new(
            condition::READY,
            false,
            reason::CREATING,
            format!("Unready resources: {}", unready.join("; ")),
        )
    };
    util::set_status_on(
        api,
        &obj_now,
        &[
            ready,
            Condition::new(condition::SYNCED, true, reason::RECONCILE_SUCCESS, ""),
        ],
        status,
    )
    .await;
    Ok(Action::requeue(util::spread(
        if rendered.ready {
            names::RESYNC_READY
        } else {
            names::RESYNC_NOT_READY
        },
        obj.metadata.uid.as_deref(),
    )))
}
