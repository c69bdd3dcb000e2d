//! The XRD controller: for each CompositeResourceDefinition, serve its XR
//! and claim CRDs, report `Established` and `Offered`, and start their
//! reconcilers. A deleted XRD takes its CRDs (and so every claim and
//! composite resource of them) with it before its finalizer is released.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client, ResourceExt};
use runtime::conditions::Condition;
use runtime::{Action, Cache, Caches, Controller, Writes};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::{crds, names, util};

/// The kinds one XRD defines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub xrd: String,
    pub composite: ApiResource,
    pub claim: Option<ApiResource>,
}

/// What the XRD controller tells the supervisor in `lib.rs`.
#[derive(Debug, Clone)]
pub enum Announce {
    /// These kinds are served: (re)start their reconcilers if they changed.
    Served(Box<Served>),
    /// The XRD of this name is gone: stop its reconcilers.
    Withdrawn(String),
}

struct Ctx {
    client: Client,
    xrds: Arc<Cache>,
    writes: Arc<Writes>,
    announce: mpsc::UnboundedSender<Announce>,
}

pub async fn run(client: Client, caches: Arc<Caches>, announce: mpsc::UnboundedSender<Announce>) {
    let xrds = caches.of(&util::xrd_resource());
    let ctx = Arc::new(Ctx {
        client,
        xrds: xrds.clone(),
        writes: Arc::default(),
        announce,
    });
    let reconciling = ctx.clone();
    // Every replica serves every XRD's kinds, whatever shards it holds.
    Controller::new("xrd", xrds, ctx.writes.clone(), Duration::ZERO, None)
        .unsharded()
        .concurrency(2)
        .run(
            move |key, _| {
                let ctx = reconciling.clone();
                async move {
                    let Some(cached) = ctx.xrds.get(&key) else {
                        return Ok(Action::AwaitChange);
                    };
                    let obj = cached.object().map_err(|e| Error(e.to_string()))?;
                    reconcile(obj, ctx).await
                }
            },
            |_: &Error, _| Duration::from_secs(5),
        )
        .await;
}

/// The version composite resources and claims are served at.
pub fn referenceable_version(xrd: &Value) -> Option<String> {
    let versions = xrd.pointer("/spec/versions")?.as_array()?;
    versions
        .iter()
        .find(|v| v.get("referenceable").and_then(Value::as_bool) == Some(true))
        .or_else(|| versions.first())
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error(util::error_message(&e))
    }
}

async fn set_finalizers(
    api: &Api<DynamicObject>,
    obj: &DynamicObject,
    list: Vec<String>,
) -> Result<(), Error> {
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": list}})),
    )
    .await?;
    Ok(())
}

/// Deletes the claim CRD, then (once it is gone, so claims can still be
/// reconciled while they are deleted) the XR CRD. Returns whether both are gone.
async fn delete_crds(client: &Client, xrd: &Value) -> Result<bool, Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut names = Vec::new();
    if let Ok(Some(claim)) = crds::claim(xrd) {
        names.push(
            claim["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    if let Ok(composite) = crds::composite(xrd) {
        names.push(
            composite["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    for name in names.iter().filter(|n| !n.is_empty()) {
        if crds.get_opt(name).await?.is_none() {
            continue;
        }
        match crds.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            Err(e) => return Err(e.into()),
        }
        // One at a time: the next waits until this one is gone.
        return Ok(false);
    }
    Ok(true)
}

/// Applies the XRD's ClusterRoles (see [`crate::roles`]) before its kinds'
/// reconcilers start, so the controllers may already reach them.
async fn apply_roles(
    client: &Client,
    xrd: &DynamicObject,
    composite: &Value,
    claim: Option<&Value>,
) -> Result<(), kube::Error> {
    let plural = |crd: &Value| {
        crd["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let composite_plural = plural(composite);
    let claim_plural = claim.map(plural);
    let kinds = crate::roles::Kinds {
        xrd_name: &xrd.name_any(),
        xrd_uid: xrd.metadata.uid.as_deref().unwrap_or_default(),
        group: composite["spec"]["group"].as_str().unwrap_or_default(),
        composite_plural: &composite_plural,
        claim_plural: claim_plural.as_deref(),
    };
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client.clone());
    for role in crate::roles::for_xrd(&kinds) {
        let name = role["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        roles
            .patch(
                &name,
                &PatchParams::apply(names::FIELD_MANAGER).force(),
                &Patch::Apply(role),
            )
            .await?;
    }
    Ok(())
}

async fn reconcile(obj: DynamicObject, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &util::xrd_resource());
    let resource = util::xrd_resource();
    let set_status = |conditions: Vec<Condition<'static>>| {
        let (api, obj, writes, resource) = (
            api.clone(),
            obj.clone(),
            ctx.writes.clone(),
            resource.clone(),
        );
        async move {
            util::set_status_on(&api, &writes, &resource, &obj, &conditions, json!({}), None).await;
        }
    };
    let xrd = serde_json::to_value(&obj).map_err(|e| Error(e.to_string()))?;
    let has_finalizer = obj.finalizers().iter().any(|f| f == names::XRD_FINALIZER);

    if obj.metadata.deletion_timestamp.is_some() {
        if !has_finalizer {
            return Ok(Action::AwaitChange);
        }
        set_status(vec![Condition::new(
            names::ESTABLISHED,
            false,
            names::TERMINATING,
            "deleting the CRDs this XRD defines, and with them its claims and composite resources",
        )])
        .await;
        // Claims and composite resources still being deleted need their
        // reconcilers, so those stop only once the CRDs are gone.
        if !delete_crds(&ctx.client, &xrd).await? {
            return Ok(Action::Requeue(Duration::from_secs(1)));
        }
        let _ = ctx.announce.send(Announce::Withdrawn(obj.name_any()));
        let list: Vec<String> = obj
            .finalizers()
            .iter()
            .filter(|f| *f != names::XRD_FINALIZER)
            .cloned()
            .collect();
        set_finalizers(&api, &obj, list).await?;
        return Ok(Action::AwaitChange);
    }
    if !has_finalizer {
        let mut list = obj.finalizers().to_vec();
        list.push(names::XRD_FINALIZER.to_string());
        set_finalizers(&api, &obj, list).await?;
    }

    let result = async {
        let composite = crds::composite(&xrd)?;
        let claim = crds::claim(&xrd)?;
        runtime::crds::apply(&ctx.client, composite.clone())
            .await
            .map_err(|e| format!("serving the composite CRD: {}", util::error_message(&e)))?;
        if let Some(c) = &claim {
            runtime::crds::apply(&ctx.client, c.clone())
                .await
                .map_err(|e| format!("serving the claim CRD: {}", util::error_message(&e)))?;
        }
        apply_roles(&ctx.client, &obj, &composite, claim.as_ref())
            .await
            .map_err(|e| format!("granting access to its kinds: {}", util::error_message(&e)))?;
        Ok::<_, String>((composite, claim))
    }
    .await;
    let (composite, claim) = match result {
        Ok(v) => v,
        Err(message) => {
            set_status(vec![Condition::new(
                names::ESTABLISHED,
                false,
                names::INVALID_DEFINITION,
                message.clone(),
            )])
            .await;
            return Err(Error(message));
        }
    };
    let version = referenceable_version(&xrd).unwrap_or_else(|| "v1alpha1".into());
    let group = composite["spec"]["group"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let resource = |crd: &Value| {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(
                &group,
                &version,
                crd["spec"]["names"]["kind"].as_str().unwrap_or_default(),
            ),
            crd["spec"]["names"]["plural"].as_str().unwrap_or_default(),
        )
    };
    let served = Served {
        xrd: obj.name_any(),
        composite: resource(&composite),
        claim: claim.as_ref().map(resource),
    };
    let mut conditions = vec![Condition::new(
        names::ESTABLISHED,
        true,
        names::WATCHING_COMPOSITE,
        "",
    )];
    if served.claim.is_some() {
        conditions.push(Condition::new(
            names::OFFERED,
            true,
            names::WATCHING_CLAIM,
            "",
        ));
    }
    set_status(conditions).await;
    let _ = ctx.announce.send(Announce::Served(Box::new(served)));
    Ok(Action::Requeue(Duration::from_secs(300)))
}
