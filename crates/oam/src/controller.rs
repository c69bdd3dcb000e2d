//! The executors: the Application reconciler performs what `plan`
//! decides, and the definitions reconciler writes one ComponentDefinition
//! per XRD that offers a claim and says on every ComponentDefinition
//! whether Plinth can use it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use runtime::conditions::{self, Condition};
use runtime::kinds::Kinds;
use runtime::queue::Queue;
use runtime::{Action, Cache, Caches, Controller, Key, Writes};
use serde_json::{json, Value};

use crate::names::{self, label};
use crate::plan::{self, Applied, Definition, Observed};
use crate::{definitions, Error};

/// How long a failed write waits before the next try.
const RETRY: Duration = Duration::from_secs(5);

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

struct Apps {
    client: Client,
    caches: Arc<Caches>,
    apps: Arc<Cache>,
    definitions: Arc<Cache>,
    xrds: Arc<Cache>,
    kinds: Kinds,
    queue: Arc<Queue>,
    writes: Arc<Writes>,
    /// Claim kinds whose changes already feed the queue.
    fed: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
}

impl Drop for Apps {
    fn drop(&mut self) {
        for (_, feed) in self.fed.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            feed.abort();
        }
    }
}

/// Runs the Application reconciler until aborted.
pub async fn applications(client: Client, caches: Arc<Caches>) {
    let apps = caches.of(&names::application_resource());
    let definitions = caches.of(&names::component_definition_resource());
    let writes: Arc<Writes> = Arc::default();
    let controller = Controller::new(
        "application",
        apps.clone(),
        writes.clone(),
        Duration::from_millis(50),
        None,
    )
    .concurrency(4)
    // A definition that changes may change what an Application's
    // components become: look again at the Applications that could use it.
    .watches(definitions.clone(), {
        let apps = apps.clone();
        move |change| {
            let namespace = change.key.namespace().unwrap_or_default().to_string();
            apps.list()
                .iter()
                .filter(|a| {
                    namespace == names::DEFINITIONS_NAMESPACE
                        || a.key.namespace() == Some(namespace.as_str())
                })
                .map(|a| a.key.clone())
                .collect()
        }
    });
    let ctx = Arc::new(Apps {
        xrds: caches.of(&names::xrd_resource()),
        client,
        caches,
        apps,
        definitions,
        kinds: Kinds::with_hint("is the XRD that defines it established?"),
        queue: controller.queue(),
        writes,
        fed: Mutex::default(),
    });
    tracing::info!("reconciling OAM Applications");
    controller
        .run(
            move |key, _| {
                let ctx = ctx.clone();
                async move { ctx.reconcile(key).await }
            },
            |_: &Error, failures| RETRY.min(Duration::from_millis(500) * failures),
        )
        .await;
}

impl Apps {
    /// Claims of this kind wake the Application that owns them.
    fn feed(&self, resource: &ApiResource) -> Arc<Cache> {
        let cache = self.caches.of(resource);
        let id = format!("{}/{}", resource.api_version, resource.plural);
        let mut fed = self.fed.lock().unwrap_or_else(|e| e.into_inner());
        fed.entry(id).or_insert_with(|| {
            runtime::controller::feed(self.queue.clone(), cache.clone(), |change| {
                let Some(claim) = change.latest() else {
                    // Neither now nor before: nothing to tell the owner by.
                    // (A deleted claim still has its last state here, so
                    // its Application makes it again.)
                    return Vec::new();
                };
                match claim.label(label::APP_NAME) {
                    Some(app) => vec![Key::new(claim.key.namespace(), app)],
                    None => Vec::new(),
                }
            })
        });
        cache
    }

    /// The definition of a component type: the Application's namespace
    /// first, then `vela-system`, as KubeVela looks them up.
    async fn definition(
        &self,
        namespace: &str,
        type_: &str,
    ) -> Result<(Definition, ApiResource), String> {
        self.definitions.synced().await;
        let cached = self
            .definitions
            .get(&Key::new(Some(namespace), type_))
            .or_else(|| {
                self.definitions
                    .get(&Key::new(Some(names::DEFINITIONS_NAMESPACE), type_))
            });
        let Some(cached) = cached else {
            let mut known: Vec<String> = self
                .definitions
                .list()
                .iter()
                .filter(|d| matches!(d.key.namespace(), Some(n) if n == namespace || n == names::DEFINITIONS_NAMESPACE))
                .map(|d| d.key.name.to_string())
                .collect();
            known.sort();
            known.dedup();
            return Err(format!(
                "no ComponentDefinition named \"{type_}\" in namespace {namespace} or {}; the types there are: {}",
                names::DEFINITIONS_NAMESPACE,
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            ));
        };
        let value = cached.value().map_err(|e| e.to_string())?;
        let xrds = every_xrd(&self.xrds).await.map_err(|e| e.to_string())?;
        let definition = definitions::resolve(&value, &xrds)?;
        let resource = self
            .kinds
            .resolve(&self.client, &definition.api_version, &definition.kind)
            .await?;
        Ok((definition, resource))
    }

    async fn reconcile(&self, key: Key) -> Result<Action, Error> {
        let Some(cached) = self.apps.get(&key) else {
            return Ok(Action::AwaitChange);
        };
        let app = cached.value()?;
        let namespace = key.namespace().unwrap_or("default").to_string();
        // Deleting an Application deletes its claims through their owner
        // references; there is nothing left for it to do.
        if cached.deleting {
            return Ok(Action::AwaitChange);
        }
        let components = plan::parse(&app).unwrap_or_default();
        let mut definitions = BTreeMap::new();
        let mut resources: BTreeMap<String, ApiResource> = BTreeMap::new();
        for c in &components {
            if definitions.contains_key(&c.type_) {
                continue;
            }
            let resolved = self.definition(&namespace, &c.type_).await;
            definitions.insert(
                c.type_.clone(),
                resolved.map(|(d, r)| {
                    resources.insert(c.type_.clone(), r);
                    d
                }),
            );
        }
        let mut claims = BTreeMap::new();
        for c in &components {
            let Some(resource) = resources.get(&c.type_) else {
                continue;
            };
            let cache = self.feed(resource);
            cache.synced().await;
            let name = plan::claim_name(&key.name, &c.name);
            if let Some(claim) = cache.get(&Key::new(Some(&namespace), &name)) {
                claims.insert(c.name.clone(), claim.value()?);
            }
        }
        let plan = plan::plan(&Observed {
            app: &app,
            definitions: &definitions,
            claims: &claims,
        });
        let mut failed = BTreeMap::new();
        let by_name: BTreeMap<&str, &plan::Component> =
            components.iter().map(|c| (c.name.as_str(), c)).collect();
        for (component, claim) in &plan.apply {
            let Some(resource) = by_name
                .get(component.as_str())
                .and_then(|c| resources.get(&c.type_))
            else {
                continue;
            };
            let api: Api<DynamicObject> =
                Api::namespaced_with(self.client.clone(), &namespace, resource);
            let name = text(claim, "/metadata/name").unwrap_or_default();
            if let Err(e) = api
                .patch(
                    name,
                    &PatchParams::apply(names::FIELD_MANAGER).force(),
                    &Patch::Apply(claim),
                )
                .await
            {
                failed.insert(
                    component.clone(),
                    format!("cannot apply claim {name}: {}", message(&e)),
                );
            }
        }
        let mut applied = plan.applied.clone();
        for gone in &plan.delete {
            if let Err(why) = self.delete_claim(gone).await {
                failed.insert(gone.name.clone(), why);
                applied.push(gone.clone());
            }
        }
        let plan = plan::Plan { applied, ..plan };
        let status = plan::status(&app, &plan, &failed);
        if !same_status(app.get("status"), &status) {
            let api: Api<DynamicObject> = Api::namespaced_with(
                self.client.clone(),
                &namespace,
                &names::application_resource(),
            );
            let written = api
                .patch_status(
                    &key.name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await?;
            self.writes.record(&names::application_resource(), &written);
        }
        if !failed.is_empty() {
            return Ok(Action::Requeue(RETRY));
        }
        Ok(Action::AwaitChange)
    }

    async fn delete_claim(&self, gone: &Applied) -> Result<(), String> {
        let resource = self
            .kinds
            .resolve(&self.client, &gone.api_version, &gone.kind)
            .await?;
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &gone.namespace, &resource);
        match api.delete(&gone.name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(format!(
                "cannot delete claim {}: {}",
                gone.name,
                message(&e)
            )),
        }
    }
}

/// Whether a status write would change anything: conditions compared
/// without their timestamps.
fn same_status(current: Option<&Value>, next: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(list) = v.get_mut("conditions").and_then(Value::as_array_mut) {
            for c in list {
                if let Some(c) = c.as_object_mut() {
                    c.remove("lastTransitionTime");
                }
            }
        }
        v
    };
    current.is_some_and(|c| strip(c) == strip(next))
}

/// Every XRD, once the cache has listed them: what a definition resolves
/// against.
async fn every_xrd(xrds: &Cache) -> Result<Vec<Value>, runtime::Error> {
    xrds.synced().await;
    xrds.list().iter().map(|x| x.value()).collect()
}

/// Runs a small controller of `primary`'s kind: two workers, no debounce,
/// and retries that back off from half a second to [`RETRY`].
async fn run_small<C, F, Fut>(
    name: &str,
    primary: Arc<Cache>,
    writes: Arc<Writes>,
    ctx: Arc<C>,
    reconcile: F,
) where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>, Key) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Action, Error>> + Send + 'static,
{
    Controller::new(name, primary, writes, Duration::ZERO, None)
        .concurrency(2)
        .run(
            move |key, _| reconcile(ctx.clone(), key),
            |_: &Error, failures| RETRY.min(Duration::from_millis(500) * failures),
        )
        .await;
}

struct Generator {
    client: Client,
    xrds: Arc<Cache>,
    definitions: Arc<Cache>,
    writes: Arc<Writes>,
}

/// Runs the definitions reconciler until aborted: a ComponentDefinition
/// for every XRD that offers a claim.
pub async fn generated_definitions(client: Client, caches: Arc<Caches>) {
    let xrds = caches.of(&names::xrd_resource());
    let ctx = Arc::new(Generator {
        client,
        definitions: caches.of(&names::component_definition_resource()),
        xrds: xrds.clone(),
        writes: Arc::default(),
    });
    let writes = ctx.writes.clone();
    run_small(
        "componentdefinition-generator",
        xrds,
        writes,
        ctx,
        |ctx, key| async move { ctx.reconcile(key).await },
    )
    .await;
}

impl Generator {
    async fn reconcile(&self, key: Key) -> Result<Action, Error> {
        let Some(cached) = self.xrds.get(&key) else {
            return Ok(Action::AwaitChange);
        };
        // A deleted XRD's definition goes with it, by its owner reference.
        if cached.deleting {
            return Ok(Action::AwaitChange);
        }
        let xrd = cached.value()?;
        let definitions: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            names::DEFINITIONS_NAMESPACE,
            &names::component_definition_resource(),
        );
        self.definitions.synced().await;
        let ours = |d: &runtime::Cached| d.label(label::XRD) == Some(&*key.name);
        let Some((_, _, _, singular)) = definitions::claim_kind(&xrd) else {
            // The XRD no longer offers a claim: its definition goes.
            for d in self.definitions.filter(ours) {
                match definitions
                    .delete(&d.key.name, &DeleteParams::background())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(Action::AwaitChange);
        };
        // Two XRDs may offer claims of one kind in two groups; the second
        // gets its group in its definition's name.
        let taken = self
            .definitions
            .get(&Key::new(Some(names::DEFINITIONS_NAMESPACE), &singular))
            .is_some_and(|d| !ours(&d));
        let name = if taken {
            format!(
                "{singular}.{}",
                text(&xrd, "/spec/group").unwrap_or_default()
            )
        } else {
            singular
        };
        let Some((definition, configmap)) = definitions::generated(&xrd, &name) else {
            return Ok(Action::AwaitChange);
        };
        let live = self
            .definitions
            .get(&Key::new(Some(names::DEFINITIONS_NAMESPACE), &name))
            .map(|d| d.value())
            .transpose()?;
        let apply = PatchParams::apply(names::FIELD_MANAGER).force();
        let configmaps: Api<ConfigMap> =
            Api::namespaced(self.client.clone(), names::DEFINITIONS_NAMESPACE);
        let configmap_name = text(&configmap, "/metadata/name")
            .unwrap_or_default()
            .to_string();
        let up_to_date = live.as_ref().is_some_and(|l| {
            runtime::contains(l, &definition)
                && text(l, "/status/configMapRef") == Some(configmap_name.as_str())
        });
        if up_to_date {
            return Ok(Action::AwaitChange);
        }
        configmaps
            .patch(&configmap_name, &apply, &Patch::Apply(&configmap))
            .await?;
        let written = definitions
            .patch(&name, &apply, &Patch::Apply(&definition))
            .await?;
        let status = json!({
            "configMapRef": configmap_name,
            "conditions": conditions::merged(
                written.data.pointer("/status/conditions"),
                &[Condition::new("Ready", true, "Available", "")],
                None,
            )
        });
        definitions
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await?;
        Ok(Action::AwaitChange)
    }
}

struct Checker {
    client: Client,
    definitions: Arc<Cache>,
    xrds: Arc<Cache>,
    writes: Arc<Writes>,
}

/// Runs the reconciler that says on every ComponentDefinition, in its
/// Ready condition, whether Plinth can use it (a CUE schematic it cannot).
pub async fn definition_status(client: Client, caches: Arc<Caches>) {
    let definitions = caches.of(&names::component_definition_resource());
    let ctx = Arc::new(Checker {
        client,
        definitions: definitions.clone(),
        xrds: caches.of(&names::xrd_resource()),
        writes: Arc::default(),
    });
    let writes = ctx.writes.clone();
    run_small(
        "componentdefinition",
        definitions,
        writes,
        ctx,
        |ctx, key| async move { ctx.reconcile(key).await },
    )
    .await;
}

impl Checker {
    async fn reconcile(&self, key: Key) -> Result<Action, Error> {
        let Some(cached) = self.definitions.get(&key) else {
            return Ok(Action::AwaitChange);
        };
        let definition = cached.value()?;
        let xrds = every_xrd(&self.xrds).await?;
        let condition = match definitions::resolve(&definition, &xrds) {
            Ok(d) => Condition::new(
                "Ready",
                true,
                "Available",
                format!("components of this type become {} claims", d.kind),
            ),
            Err(why) => Condition::new("Ready", false, "Refused", why),
        };
        let existing = definition.pointer("/status/conditions");
        let current = existing
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| text(c, "/type") == Some("Ready"));
        let unchanged = current.is_some_and(|c| {
            text(c, "/status") == Some(if condition.status { "True" } else { "False" })
                && text(c, "/message").unwrap_or_default() == condition.message
        });
        if unchanged {
            return Ok(Action::AwaitChange);
        }
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            key.namespace().unwrap_or("default"),
            &names::component_definition_resource(),
        );
        let status = json!({"conditions": conditions::merged(existing, &[condition], None)});
        let written = api
            .patch_status(
                &key.name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await?;
        self.writes
            .record(&names::component_definition_resource(), &written);
        Ok(Action::AwaitChange)
    }
}
