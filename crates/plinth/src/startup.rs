//! What `plinth up` waits for before it reports ready: the bundled
//! providers installed (their kinds served) and every XRD established and
//! offered, so a manifest applied the moment the ready line appears never
//! meets "no matches for kind". The wait is bounded; what is still missing
//! then is returned for the caller to report.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use serde_json::Value;

/// How long start-up waits for providers and APIs before serving anyway.
const WAIT_AT_MOST: Duration = Duration::from_secs(30);
/// How often what is waited for is looked at again.
const LOOK_EVERY: Duration = Duration::from_millis(20);

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Whether `object` has the condition `kind` with status True.
pub(crate) fn condition_true(object: &DynamicObject, kind: &str) -> bool {
    object
        .data
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some(kind)
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
}

fn name_of(object: &DynamicObject) -> String {
    object.metadata.name.clone().unwrap_or_default()
}

/// Waits until the named (bundled) providers are installed and every XRD
/// is established, and offered where it has claims. Returns what was still
/// not so when the wait ran out; empty when all was.
pub async fn wait_until_usable(client: &kube::Client, bundled: &[String]) -> Vec<String> {
    let providers: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource("pkg.plinth.dev", "v1", "Provider", "providers"),
    );
    let xrds: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource(
            "apiextensions.crossplane.io",
            "v1",
            "CompositeResourceDefinition",
            "compositeresourcedefinitions",
        ),
    );
    let started = Instant::now();
    let mut nop_config_written = false;
    loop {
        let mut missing = Vec::new();
        for name in bundled {
            match providers.get_opt(name).await {
                Ok(Some(provider)) if condition_true(&provider, "Installed") => {
                    if name == "nop" && !nop_config_written {
                        nop_default_config(client).await;
                        nop_config_written = true;
                    }
                }
                Ok(_) => missing.push(format!("provider {name} is installed")),
                Err(e) => missing.push(format!("provider {name} can be read ({e})")),
            }
        }
        match xrds.list(&ListParams::default()).await {
            Ok(list) => {
                for xrd in &list.items {
                    let offers_claims = xrd.data.pointer("/spec/claimNames/kind").is_some();
                    if !condition_true(xrd, "Established")
                        || (offers_claims && !condition_true(xrd, "Offered"))
                    {
                        missing.push(format!("the XRD {} is established", name_of(xrd)));
                    }
                }
            }
            // Served only once the composition controllers have installed
            // the type; until then there is nothing to wait for here.
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => missing.push(format!("the XRDs can be listed ({e})")),
        }
        if missing.is_empty() || started.elapsed() >= WAIT_AT_MOST {
            return missing;
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
}

/// The nop provider's `default` ProviderConfig (it needs no credentials),
/// so a NopResource works with nothing else applied.
async fn nop_default_config(client: &kube::Client) {
    let config = serde_json::json!({
        "apiVersion": "nop.plinth.dev/v1alpha1", "kind": "ProviderConfig",
        "metadata": {"name": "default"}, "spec": {}
    });
    if let Err(e) = create_if_absent(client, "nop.plinth.dev", config).await {
        tracing::warn!("the nop provider's default ProviderConfig was not written: {e:#}");
    }
}

/// Creates a provider's cluster-scoped ProviderConfig unless one of that
/// name exists, waiting (up to a minute) for its kind to be registered.
/// True when this call created it.
pub async fn create_if_absent(client: &kube::Client, group: &str, config: Value) -> Result<bool> {
    let configs: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &resource(group, "v1alpha1", "ProviderConfig", "providerconfigs"),
    );
    let object: DynamicObject =
        serde_json::from_value(config).context("the ProviderConfig does not parse")?;
    let started = Instant::now();
    loop {
        match configs.create(&PostParams::default(), &object).await {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => return Ok(false),
            Err(e) if started.elapsed() >= Duration::from_secs(60) => {
                return Err(e).context(format!(
                    "the {group} ProviderConfig kind was not registered within 60 s"
                ))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
