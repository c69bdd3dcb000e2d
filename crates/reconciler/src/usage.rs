//! ProviderConfig usage: a ProviderConfig stays while any managed resource
//! uses it. The managed reconciler adds the `in-use` finalizer when it first
//! uses a config; this controller lets the config go once nothing does.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

use crate::conditions::{self, Condition};
use crate::host::{config_api_resource, Host};
use crate::names::{self, finalizer};

struct Ctx {
    client: Client,
    host: Arc<Host>,
    provider: String,
    group: String,
    /// When each config's users were last counted.
    counted: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

/// Runs the usage controller for one provider's ProviderConfigs.
pub async fn run(client: Client, host: Arc<Host>, provider: String, group: String) {
    let ar = config_api_resource(&group);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let ctx = Arc::new(Ctx {
        client,
        host,
        provider,
        group,
        counted: Default::default(),
    });
    Controller::new_with(api, watcher::Config::default(), ar)
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_secs(5)),
            ctx,
        )
        .for_each(|_| async {})
        .await;
}

async fn users(ctx: &Ctx, config: &str) -> Result<usize, kube::Error> {
    let mut n = 0;
    for entry in ctx.host.kinds_of(&ctx.provider) {
        let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &entry.api_resource());
        let list = api.list(&Default::default()).await?;
        n += list
            .items
            .iter()
            .filter(|o| {
                o.data
                    .pointer("/spec/providerConfigRef/name")
                    .and_then(Value::as_str)
                    .unwrap_or(names::DEFAULT_PROVIDER_CONFIG)
                    == config
            })
            .count();
    }
    Ok(n)
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, kube::Error> {
    let name = obj.name_any();
    let api: Api<DynamicObject> =
        Api::all_with(ctx.client.clone(), &config_api_resource(&ctx.group));
    // Counting users lists every managed resource of the provider, and the
    // status write below is itself a change that triggers this reconcile;
    // so a live config is counted at most once a minute, a deleting one
    // every time it is looked at.
    if obj.metadata.deletion_timestamp.is_none() {
        let mut counted = ctx.counted.lock().unwrap_or_else(|e| e.into_inner());
        if counted
            .get(&name)
            .is_some_and(|t| t.elapsed() < Duration::from_secs(60))
        {
            return Ok(Action::requeue(Duration::from_secs(60)));
        }
        counted.insert(name.clone(), std::time::Instant::now());
    }
    let in_use = users(&ctx, &name).await?;
    let status = json!({
        "users": in_use,
        "conditions": conditions::merged(
            obj.data.pointer("/status/conditions"),
            &[Condition::new(
                names::condition::IN_USE,
                in_use > 0,
                if in_use > 0 { names::reason::IN_USE } else { names::reason::UNUSED },
                format!("{in_use} managed resources use this ProviderConfig"),
            )],
            None,
        ),
    });
    let _ = api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await;
    if obj.metadata.deletion_timestamp.is_none() {
        return Ok(Action::requeue(Duration::from_secs(60)));
    }
    if in_use > 0 {
        tracing::info!(provider_config = %name, users = in_use, "ProviderConfig is still in use; keeping it");
        return Ok(Action::requeue(Duration::from_secs(2)));
    }
    if obj.finalizers().iter().any(|f| f == finalizer::IN_USE) {
        let list: Vec<String> = obj
            .finalizers()
            .iter()
            .filter(|f| *f != finalizer::IN_USE)
            .cloned()
            .collect();
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": list}})),
        )
        .await?;
    }
    Ok(Action::await_change())
}
