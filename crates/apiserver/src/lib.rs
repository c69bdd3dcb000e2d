//! A Kubernetes-compatible API server over the Plinth store.
//!
//! It serves the REST conventions real `kubectl` and `kube::Client` rely on:
//! discovery and OpenAPI, CRUD with `resourceVersion` concurrency, patches
//! (JSON, merge, strategic, server-side apply), watch with bookmarks and
//! `410 Gone`, selectors and pagination, the status subresource, finalizers,
//! garbage collection, CustomResourceDefinitions and Table output. It knows
//! nothing of what the types it serves mean.
//!
//! Layout:
//! - `server`: TLS listener, body limits, routing; authentication and
//!   authorization of every request.
//! - `authn`, `users`, `tokens`: who a request is from (client
//!   certificates, the admin token, users' tokens, service-account JWTs).
//! - `authz`: RBAC decisions (the `rbac` crate) and escalation checks.
//! - `audit`: the `audit.k8s.io/v1` log.
//! - `request`: paths and query parameters.
//! - `handlers`: one file per verb, plus discovery and OpenAPI.
//! - `lifecycle`: the rules every write obeys (metadata, validation, finalizers).
//! - `resource`, `builtin`, `crd`: the types served and where they come from.
//! - `table`: Table output for `kubectl get`.
//! - `gc`: owner-reference garbage collection and namespace / CRD cleanup.
//! - `expiry`: Events expire a TTL after their last write.
//! - `pki`: CA, serving certificate, token and kubeconfig.
//! - `status`, `object`: errors as `Status`, and metadata helpers.
//! - `metrics`: requests and store writes at `/metrics`.
#![forbid(unsafe_code)]

mod audit;
mod authn;
pub mod authz;
mod builtin;
mod crd;
mod encryption;
mod expiry;
mod gc;
mod handlers;
mod impersonation;
mod lifecycle;
mod metrics;
mod object;
pub mod pki;
mod request;
mod resource;
mod server;
mod status;
mod table;
mod tokens;
pub mod users;

pub use authn::{ADMIN_USER, CONTROLLER_ACCOUNT, CONTROLLER_NAMESPACE};
pub use server::{run, Config, LocalService, Running};
pub use status::ApiError;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use store::Store;

use builtin::Builtin;
use resource::{Registry, Resource};

/// Everything a request handler needs.
pub struct Api {
    pub(crate) store: Store,
    pub(crate) registry: Registry,
    pub(crate) authn: authn::Authenticator,
    pub(crate) authz: authz::Authorizer,
    pub(crate) audit: Option<audit::AuditLog>,
    pub(crate) bookmark_interval: Duration,
    pub(crate) metrics: metrics::Metrics,
    /// Set once bootstrap has finished; `/readyz` reports it.
    pub(crate) ready: AtomicBool,
    /// Set while the embedding process finishes its own start-up.
    held: AtomicBool,
    /// Always-present built-in resource for namespaces.
    namespaces: Arc<Resource>,
}

impl Api {
    pub(crate) fn new(
        store: Store,
        authn: authn::Authenticator,
        authz: authz::Authorizer,
        audit: Option<audit::AuditLog>,
        bookmark_interval: Duration,
    ) -> Api {
        let registry = Registry::new();
        for builtin in Builtin::ALL {
            registry.insert(builtin.resource());
        }
        let namespaces = registry
            .get("", "v1", "namespaces")
            .unwrap_or_else(|| Arc::new(Builtin::Namespace.resource()));
        Api {
            store,
            registry,
            authn,
            authz,
            audit,
            bookmark_interval,
            metrics: metrics::Metrics::default(),
            ready: AtomicBool::new(false),
            held: AtomicBool::new(false),
            namespaces,
        }
    }

    pub(crate) fn namespaces(&self) -> &Resource {
        &self.namespaces
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.held.load(Ordering::Acquire)
    }

    /// Why `/readyz` is not 200 yet.
    pub(crate) fn not_ready_reason(&self) -> &'static str {
        if self.ready.load(Ordering::Acquire) {
            "not ready: starting controllers and providers"
        } else {
            "not ready: bootstrapping"
        }
    }

    pub(crate) fn hold_readiness(&self) {
        self.held.store(true, Ordering::Release);
    }

    pub(crate) fn release_readiness(&self) {
        self.held.store(false, Ordering::Release);
    }

    /// Registers (or unregisters) the types a stored CRD defines.
    pub(crate) fn sync_crd(&self, crd: &Value, removed: bool) {
        let name = object::name(crd);
        if removed {
            self.registry.remove_crd(name);
            return;
        }
        match crd::resources(crd) {
            Ok(resources) => self.registry.replace_crd(name, resources),
            Err(errors) => {
                // Stored CRDs were validated on write; this only happens if
                // validation rules tightened since. Keep serving nothing for it.
                tracing::warn!(crd = name, errors = ?errors, "stored CRD is no longer valid; not serving it");
                self.registry.remove_crd(name);
            }
        }
    }

    /// Loads stored CRDs, creates the namespaces every cluster starts with,
    /// and the default RBAC roles with the embedding process's own.
    pub(crate) async fn bootstrap(&self, rbac_objects: &[Value]) -> Result<(), ApiError> {
        let crds = Builtin::CustomResourceDefinition.resource();
        let page = self.store.list(&crds.key_prefix(None), None, 0, &|_| true);
        for record in page.items {
            let crd = record.value()?;
            self.sync_crd(&crd, false);
        }
        for ns in object::meta::DEFAULT_NAMESPACES {
            if self.store.get(&self.namespaces.key(None, ns)).is_none() {
                let body =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
                let opts = lifecycle::WriteOptions::system("plinth");
                match lifecycle::create(self, &self.namespaces, None, body, &opts).await {
                    Ok(_) => {}
                    Err(e) if e.code == 409 => {}
                    Err(e) => return Err(e),
                }
            }
        }
        authz::bootstrap(self, rbac_objects).await?;
        self.ready.store(true, Ordering::Release);
        Ok(())
    }
}
