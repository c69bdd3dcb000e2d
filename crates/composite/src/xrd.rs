//! The XRD controller: for each CompositeResourceDefinition, serve its XR
//! and claim CRDs, report `Established` and `Offered`, and start their
//! reconcilers.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use reconciler::conditions::Condition;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::{crds, names, util};

/// The kinds one XRD defines.
#[derive(Debug, Clone)]
pub struct Served {
    pub xrd: String,
    pub composite: ApiResource,
    pub claim: Option<ApiResource>,
}

struct Ctx {
    client: Client,
    announce: mpsc::UnboundedSender<Served>,
}

pub async fn run(client: Client, announce: mpsc::UnboundedSender<Served>) {
    let ar = util::xrd_resource();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let ctx = Arc::new(Ctx { client, announce });
    Controller::new_with(api, watcher::Config::default(), ar)
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_secs(5)),
            ctx,
        )
        .for_each(|_| async {})
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
struct Error(String);

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &util::xrd_resource());
    let xrd = serde_json::to_value(obj.as_ref()).map_err(|e| Error(e.to_string()))?;
    let result = async {
        let composite = crds::composite(&xrd)?;
        let claim = crds::claim(&xrd)?;
        reconciler::crds::apply(&ctx.client, composite.clone())
            .await
            .map_err(|e| format!("serving the composite CRD: {e}"))?;
        if let Some(c) = &claim {
            reconciler::crds::apply(&ctx.client, c.clone())
                .await
                .map_err(|e| format!("serving the claim CRD: {e}"))?;
        }
        Ok::<_, String>((composite, claim))
    }
    .await;
    let (composite, claim) = match result {
        Ok(v) => v,
        Err(message) => {
            util::set_status(
                &api,
                &obj,
                &[Condition::new(
                    names::ESTABLISHED,
                    false,
                    "InvalidDefinition",
                    message.clone(),
                )],
                json!({}),
            )
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
    util::set_status(&api, &obj, &conditions, json!({})).await;
    let _ = ctx.announce.send(served);
    Ok(Action::requeue(Duration::from_secs(300)))
}
