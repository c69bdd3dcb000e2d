//! ProviderConfig usage: a ProviderConfig stays while any managed resource
//! uses it. The managed reconciler adds the `in-use` finalizer when it first
//! uses a config; this controller counts the users in the shared caches of
//! the provider's kinds (each cached object knows the config it names, so
//! counting reads no object) and lets the config go once nothing uses it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use runtime::conditions::{self, Condition};
use runtime::names::{self, finalizer};
use runtime::ratelimit::Backoff;
use runtime::{Action, Cache, Caches, Controller, Key, Writes};
use serde_json::json;

use crate::host::config_api_resource;

/// How often a live config's users are counted again when nothing about
/// the config itself changed.
const RECOUNT: Duration = Duration::from_secs(60);
/// How often a config held for its users is looked at while it is deleted.
const HELD_RETRY: Duration = Duration::from_secs(2);

/// The caches of the kinds one provider serves, as they are announced.
pub type Kinds = Arc<Mutex<Vec<Arc<Cache>>>>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read a ProviderConfig from the cache: {0}")]
    Cache(#[from] runtime::Error),
    #[error("cannot write a ProviderConfig: {0}")]
    Kube(#[from] kube::Error),
}

struct Ctx {
    client: Client,
    configs: Arc<Cache>,
    kinds: Kinds,
    writes: Arc<Writes>,
}

/// Runs the usage controller for the ProviderConfigs of one provider group.
pub async fn run(client: Client, caches: Arc<Caches>, group: String, kinds: Kinds) {
    let configs = caches.of(&config_api_resource(&group));
    let ctx = Arc::new(Ctx {
        client,
        configs: configs.clone(),
        kinds,
        writes: Arc::default(),
    });
    let backoff = Backoff::default();
    let reconciling = ctx.clone();
    Controller::new(
        format!("usage/{group}"),
        configs,
        ctx.writes.clone(),
        Duration::ZERO,
        None,
    )
    .concurrency(2)
    .run(
        move |key, _| reconcile(reconciling.clone(), key),
        move |_: &Error, failures| backoff.delay(failures),
    )
    .await;
}

/// How many managed resources name the config `name`.
fn users(kinds: &Kinds, name: &str) -> usize {
    let kinds = kinds.lock().unwrap_or_else(|e| e.into_inner()).clone();
    kinds
        .iter()
        .map(|cache| {
            cache.count(|o| {
                o.provider_config
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(names::DEFAULT_PROVIDER_CONFIG)
                    == name
            })
        })
        .sum()
}

async fn reconcile(ctx: Arc<Ctx>, key: Key) -> Result<Action, Error> {
    let Some(cached) = ctx.configs.get(&key) else {
        return Ok(Action::AwaitChange);
    };
    let config = cached.object()?;
    let name = key.name.to_string();
    let in_use = users(&ctx.kinds, &name);
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ctx.configs.resource);
    let existing = config.data.pointer("/status/conditions");
    let merged = conditions::merged(
        existing,
        &[Condition::new(
            names::condition::IN_USE,
            in_use > 0,
            if in_use > 0 {
                names::reason::IN_USE
            } else {
                names::reason::UNUSED
            },
            format!("{in_use} managed resources use this ProviderConfig"),
        )],
        None,
    );
    let counted = config
        .data
        .pointer("/status/users")
        .and_then(|u| u.as_u64())
        == Some(in_use as u64);
    if !counted || existing != Some(&merged) {
        let written = api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"users": in_use, "conditions": merged}})),
            )
            .await?;
        ctx.writes.record(&ctx.configs.resource, &written);
    }
    if config.metadata.deletion_timestamp.is_none() {
        return Ok(Action::Requeue(RECOUNT));
    }
    if in_use > 0 {
        tracing::info!(provider_config = %name, users = in_use, "ProviderConfig is still in use; keeping it");
        return Ok(Action::Requeue(HELD_RETRY));
    }
    let finalizers = config.metadata.finalizers.clone().unwrap_or_default();
    if finalizers.iter().any(|f| f == finalizer::IN_USE) {
        let list: Vec<String> = finalizers
            .into_iter()
            .filter(|f| f != finalizer::IN_USE)
            .collect();
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": list}})),
        )
        .await?;
    }
    Ok(Action::AwaitChange)
}
