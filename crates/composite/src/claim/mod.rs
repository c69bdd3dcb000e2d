//! The claim reconciler: a claim (namespaced) gets a composite resource of
//! its own, kept in step with the claim's spec; the XR's state, conditions
//! and connection Secret come back to the claim's namespace; deleting the
//! claim deletes the XR, and with it everything composed.
//!
//! Layout:
//! - `plan`: the decisions, with no I/O.
//! - this module: the executor, reading through the shared caches.

pub mod plan;

pub use plan::{composite_name, composite_spec};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use runtime::conditions::Condition;
use runtime::names::{condition, reason};
use runtime::{Action, Cache, Caches, Controller, Key, Writes};
use serde_json::{json, Value};

use crate::composite::plan::XrKind;
use crate::names;
use crate::util::{self, Applied, Parsed, Progress};
use crate::xrd::Served;
use plan::{Inputs, Kinds, Plan};

/// Reconciles of one claim kind at once.
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
    served: Served,
    claim: ApiResource,
    kinds: Kinds,
    claims: Arc<Cache>,
    xrs: Arc<Cache>,
    xrds: Arc<Cache>,
    compositions: Arc<Cache>,
    revisions: Arc<Cache>,
    secrets: Arc<Cache>,
    /// What was last applied to composites and claims' Secrets.
    applied: Applied,
    /// The XRD, Compositions and revisions, parsed.
    parsed: Parsed,
    progress: Progress,
    writes: Arc<Writes>,
}

pub async fn run(client: Client, caches: Arc<Caches>, served: Served) {
    let Some(claim) = served.claim.clone() else {
        return;
    };
    let kinds = Kinds {
        claim: XrKind {
            api_version: claim.api_version.clone(),
            kind: claim.kind.clone(),
        },
        composite: XrKind {
            api_version: served.composite.api_version.clone(),
            kind: served.composite.kind.clone(),
        },
        xrd: served.xrd.clone(),
    };
    let claims = caches.of(&claim);
    let ctx = Arc::new(Ctx {
        xrs: caches.of(&served.composite),
        xrds: caches.of(&util::xrd_resource()),
        compositions: caches.of(&util::composition_resource()),
        revisions: caches.of(&util::revision_resource()),
        secrets: caches.of(&ApiResource::erase::<Secret>(&())),
        claims: claims.clone(),
        client,
        served,
        claim,
        kinds,
        applied: Applied::default(),
        parsed: Parsed::default(),
        progress: Progress::default(),
        writes: Arc::default(),
    });
    tracing::info!(kind = %ctx.claim.kind, "reconciling claims");
    let composite_kind = ctx.served.composite.kind.clone();
    Controller::new(
        format!("claim/{}", ctx.claim.kind),
        claims,
        ctx.writes.clone(),
        names::DEBOUNCE,
        None,
    )
    .concurrency(CONCURRENCY)
    // A change to a composite resource reconciles the claim bound to it.
    .watches(ctx.xrs.clone(), |change| {
        let Some(xr) = change.latest() else {
            return Vec::new();
        };
        match (
            xr.label(names::LABEL_CLAIM_NAME),
            xr.label(names::LABEL_CLAIM_NAMESPACE),
        ) {
            (Some(name), Some(namespace)) => vec![Key::new(Some(namespace), name)],
            _ => Vec::new(),
        }
    })
    // A change to the composite's connection Secret reconciles the claim,
    // which copies it into the claim's namespace.
    .watches(ctx.secrets.clone(), move |change| {
        let Some(secret) = change.latest() else {
            return Vec::new();
        };
        let owned_by_composite = secret
            .controller
            .as_ref()
            .is_some_and(|o| *o.kind == *composite_kind);
        match (
            secret.label(names::LABEL_CLAIM_NAME),
            secret.label(names::LABEL_CLAIM_NAMESPACE),
        ) {
            (Some(name), Some(namespace)) if owned_by_composite => {
                vec![Key::new(Some(namespace), name)]
            }
            _ => Vec::new(),
        }
    })
    .run(
        {
            let ctx = ctx.clone();
            move |key, _| reconcile(ctx.clone(), key)
        },
        |_: &Error, _| Duration::from_secs(2),
    )
    .await;
}

async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Result<Action, Error> {
    let Some(cached) = ctx.claims.get(&key) else {
        return Ok(Action::AwaitChange);
    };
    let object = cached.object()?;
    match ctx.cycle(&key, &object).await {
        Ok(action) => Ok(action),
        Err(e) => {
            let api = ctx.claim_api(key.namespace().unwrap_or("default"));
            let failed = Condition::new(
                condition::SYNCED,
                false,
                reason::RECONCILE_ERROR,
                e.0.clone(),
            );
            util::set_status_on(
                &api,
                &ctx.writes,
                &ctx.claim,
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
    fn claim_api(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &self.claim)
    }

    fn secret_data(
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

    async fn cycle(&self, key: &Key, object: &DynamicObject) -> Result<Action, Error> {
        let namespace = key.namespace().unwrap_or("default").to_string();
        let claim = serde_json::to_value(object)
            .map_err(|e| Error(format!("cannot read the claim: {e}")))?;
        self.xrs.synced().await;
        // A claim whose XRD is gone can still be deleted: the defaults then apply.
        let xrd = self
            .parsed
            .get(&self.xrds, &Key::cluster(&self.served.xrd))
            .await?
            .unwrap_or_else(|| Arc::new(Value::Null));
        let xr_name = claim
            .pointer("/spec/resourceRef/name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| composite_name(&claim));
        let xr = self
            .xrs
            .get(&Key::cluster(&xr_name))
            .map(|c| c.value())
            .transpose()?;
        // Only a claim not bound yet chooses a Composition.
        let choosing = xr
            .as_ref()
            .is_none_or(|x| x.pointer("/spec/compositionRef/name").is_none());
        let (compositions, revisions) = if choosing {
            (
                self.parsed.all(&self.compositions).await?,
                self.parsed.all(&self.revisions).await?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let xr_secret = match xr.as_ref().and_then(|x| {
            Some((
                x.pointer("/spec/writeConnectionSecretToRef/namespace")?
                    .as_str()?,
                x.pointer("/spec/writeConnectionSecretToRef/name")?
                    .as_str()?,
            ))
        }) {
            Some((ns, name)) => self.secret_data(ns, name)?,
            None => None,
        };
        let claim_secret = match claim
            .pointer("/spec/writeConnectionSecretToRef/name")
            .and_then(Value::as_str)
        {
            Some(name) => self
                .secrets
                .get(&Key::new(Some(&namespace), name))
                .map(|c| c.value())
                .transpose()?,
            None => None,
        };
        let plan = plan::plan(
            &claim,
            &Inputs {
                kinds: &self.kinds,
                xrd: &xrd,
                xr: xr.as_ref(),
                compositions: &compositions,
                revisions: &revisions,
                xr_secret: xr_secret.as_ref(),
                claim_secret: claim_secret.as_ref(),
                applied: &self.applied,
            },
        )
        .map_err(Error)?;
        let claims = self.claim_api(&namespace);
        let xrs: Api<DynamicObject> = Api::all_with(self.client.clone(), &self.served.composite);
        let name = object.metadata.name.clone().unwrap_or_default();
        match plan {
            Plan::AwaitChange => Ok(Action::AwaitChange),
            Plan::Delete {
                composite,
                foreground,
            } => {
                let params = if foreground {
                    DeleteParams::foreground()
                } else {
                    DeleteParams::background()
                };
                match xrs.delete(&composite, &params).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
                if foreground {
                    // The composite's deletion wakes this claim; the requeue is a safety net.
                    return Ok(Action::Requeue(plan::DELETE_RETRY));
                }
                self.release(&claims, object).await?;
                Ok(Action::AwaitChange)
            }
            Plan::Release => {
                self.release(&claims, object).await?;
                Ok(Action::AwaitChange)
            }
            Plan::Sync(sync) => {
                // The status below reports on the spec this cycle leaves, its
                // own write included.
                let mut acted_on = object.clone();
                if let Some(patch) = &sync.claim {
                    acted_on = claims
                        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                        .await?;
                    self.writes.record(&self.claim, &acted_on);
                }
                if let Some(desired) = &sync.composite {
                    let written = xrs
                        .patch(
                            &xr_name,
                            &PatchParams::apply(names::CLAIM_FIELD_MANAGER).force(),
                            &Patch::Apply(desired),
                        )
                        .await?;
                    self.writes.record(&self.served.composite, &written);
                    let key = format!(
                        "{}/{}/{xr_name}",
                        self.served.composite.api_version, self.served.composite.kind
                    );
                    self.applied.record(&key, desired);
                }
                if let Some((target, secret)) = &sync.secret {
                    let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
                    let written = secrets
                        .patch(
                            target,
                            &PatchParams::apply(names::FIELD_MANAGER).force(),
                            &Patch::Apply(secret),
                        )
                        .await?;
                    self.writes.record_version(
                        &ApiResource::erase::<Secret>(&()),
                        Key::new(Some(&namespace), target),
                        written
                            .metadata
                            .resource_version
                            .as_deref()
                            .unwrap_or_default(),
                    );
                    self.applied
                        .record(&format!("v1/Secret/{namespace}/{target}"), secret);
                }
                let held = if sync.report {
                    util::set_status_on(
                        &claims,
                        &self.writes,
                        &self.claim,
                        &acted_on,
                        &sync.conditions,
                        sync.status.clone(),
                        Some(&self.progress),
                    )
                    .await
                } else {
                    None
                };
                Ok(Action::Requeue(
                    held.map_or(sync.requeue, |h| h.min(sync.requeue)),
                ))
            }
        }
    }

    /// Removes the claim's finalizer: its composite resource is gone.
    async fn release(
        &self,
        claims: &Api<DynamicObject>,
        object: &DynamicObject,
    ) -> Result<(), Error> {
        let list: Vec<String> = object
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != names::CLAIM_FINALIZER)
            .cloned()
            .collect();
        claims
            .patch(
                object.metadata.name.as_deref().unwrap_or_default(),
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": list}})),
            )
            .await?;
        Ok(())
    }
}
