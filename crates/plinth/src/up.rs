//! `plinth up`: the embedded control plane in one process.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cli::UpArgs;

/// The providers shipped with Plinth, found next to the `plinth` binary.
const BUNDLED_PROVIDERS: &[&str] = &["local", "nop", "aws", "gcp", "azure"];

/// What the controllers' requests say they are: writes without a
/// fieldManager are recorded under it, as kube-apiserver records them under
/// the User-Agent.
const USER_AGENT: &str = concat!("plinth/", env!("CARGO_PKG_VERSION"));

/// Set to `1` to make the managed reconciler exit right after a Create
/// returns, before recording it: for crash-recovery tests only.
const CRASH_AFTER_CREATE_ENV: &str = "PLINTH_FAULT_CRASH_AFTER_CREATE";

/// The controllers' RBAC as the deploy manifests grant it on a cluster;
/// `plinth up`'s controllers act as that same service account.
const CONTROLLER_RBAC: &str = include_str!("../../../deploy/base/rbac.yaml");

fn controller_rbac() -> Result<Vec<serde_json::Value>> {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(CONTROLLER_RBAC)
        .context("cannot parse the controllers' RBAC (deploy/base/rbac.yaml)")?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

pub async fn run(args: UpArgs) -> Result<()> {
    let started = std::time::Instant::now();
    let data_dir = args.data.resolve()?;
    let config = apiserver::Config {
        data_dir: data_dir.clone(),
        listen: args.listen,
        compaction_interval: args.compaction_interval,
        compaction_keep: args.compaction_keep,
        bookmark_interval: args.bookmark_interval,
        event_ttl: args.event_ttl,
        hold_readiness: true,
        authorization: match args.authorization_mode {
            crate::cli::AuthorizationMode::Rbac => apiserver::authz::Mode::Rbac,
            crate::cli::AuthorizationMode::AlwaysAllow => apiserver::authz::Mode::AlwaysAllow,
        },
        rbac_bootstrap: controller_rbac()?,
        audit_log: args.audit_log.clone(),
        encryption_key_file: args.encryption_key_file.clone(),
        rewrite_secrets: args.rewrite_secrets,
    };
    let running = apiserver::run(config).await?;
    // The controllers reach the API server in process: the same HTTP
    // semantics and handlers, without TCP and TLS. kubectl, providers and
    // users still come over HTTPS with the token.
    let client = kube::Client::new(running.local_service(USER_AGENT), "default");
    let caches = runtime::Caches::new(client.clone());
    let cache_metrics = tokio::spawn(cache_metrics(&running, caches.clone()));
    let bundled = if args.no_bundled_providers {
        Vec::new()
    } else {
        bundled_providers()
    };
    let bundled_names: Vec<String> = bundled.iter().map(|(name, _)| name.clone()).collect();
    if !args.no_dapr {
        crate::dapr::install_crd(&client).await?;
    }
    if args.no_controllers {
        return serve_api_only(running, caches, cache_metrics, started).await;
    }
    let controllers = Controllers::start(
        &Settings::of(&args),
        client.clone(),
        caches.clone(),
        data_dir.join("plugins"),
        bundled,
        |register| running.register_metrics(register),
    )
    .await?;
    let local_postgres = if args.no_bundled_providers {
        None
    } else if args.no_local_postgres && args.local_postgres_url.is_none() {
        // The local provider still runs Instances; its Databases say why
        // there is no server and which flag gives one.
        let config_client = client.clone();
        let why = "the local provider has no PostgreSQL server: plinth up runs with --no-local-postgres; restart it without that flag, or with --local-postgres-url postgresql://USER:PASSWORD@HOST:PORT/postgres".to_string();
        Some(tokio::spawn(async move {
            local_default_config(config_client, Credential::Unavailable(why)).await;
            None
        }))
    } else {
        Some(tokio::spawn(local_postgres(
            client.clone(),
            args.local_postgres_url.clone(),
            data_dir.clone(),
        )))
    };
    // Ready means usable: a claim or managed resource applied the moment
    // the line below appears finds its kinds served.
    for what in crate::startup::wait_until_usable(&client, &bundled_names).await {
        tracing::warn!("serving before {what}; it may still come up");
    }
    let catalog = if args.no_catalog {
        None
    } else {
        serve_catalog(&args, &running, client.clone(), &data_dir).await
    };
    running.mark_ready();
    // The one line a user (or a script) waits for.
    println!(
        "Plinth is serving {} (ready in {} ms); kubeconfig: {}",
        running.url,
        started.elapsed().as_millis(),
        running.kubeconfig.display()
    );
    tracing::info!(
        "try: kubectl --kubeconfig {} get namespaces",
        running.kubeconfig.display()
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    if let Some(task) = catalog {
        task.abort();
    }
    controllers.stop().await;
    caches.stop();
    cache_metrics.abort();
    if let Some(task) = local_postgres {
        if let Ok(Some(cluster)) = task.await {
            cluster.stop().await;
        }
    }
    running.shutdown().await;
    Ok(())
}

/// Serves the Backstage catalog beside the API: at `--catalog-listen`, else
/// the API's port plus one (any free port when the API's is chosen by the
/// system), with a token of its own. A catalog that cannot be served is a
/// warning, not a reason to stop serving the API.
async fn serve_catalog(
    args: &UpArgs,
    running: &apiserver::Running,
    client: kube::Client,
    data_dir: &std::path::Path,
) -> Option<tokio::task::JoinHandle<()>> {
    let listen = args.catalog_listen.unwrap_or_else(|| {
        let port = match args.listen.port() {
            0 => 0,
            p => p.checked_add(1).unwrap_or(0),
        };
        std::net::SocketAddr::new(running.addr.ip(), port)
    });
    let started = async {
        let token = crate::catalog::token(data_dir)?;
        let (addr, task) =
            crate::catalog::serve(listen, running.tls_acceptor(), client, token).await?;
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        let url = format!("https://{host}:{}{}", addr.port(), crate::catalog::PATH);
        std::fs::write(data_dir.join(crate::catalog::URL_FILE), format!("{url}\n"))
            .context("cannot write the catalog URL")?;
        tracing::info!(%url, token_file = %data_dir.join(crate::catalog::TOKEN_FILE).display(), "serving the Backstage catalog");
        Ok::<_, anyhow::Error>(task)
    };
    match started.await {
        Ok(task) => Some(task),
        Err(e) => {
            tracing::warn!("the Backstage catalog is not served: {e:#}");
            None
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct FunctionLabels {
    function: String,
}

/// Each call that reached a composition function, at `/metrics` as
/// `plinth_function_run_seconds{function}`; answers from the TTL cache
/// are not calls.
fn observe_function_calls(
    runner: &functions::Runner,
    register_metrics: impl FnOnce(&dyn Fn(&mut prometheus_client::registry::Registry)),
) {
    use prometheus_client::metrics::{family::Family, histogram::Histogram};
    let seconds = Family::<FunctionLabels, Histogram>::new_with_constructor(|| {
        Histogram::new([
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0,
        ])
    });
    register_metrics(&|registry| {
        registry.register(
            "plinth_function_run_seconds",
            "Time of each RunFunction call to a composition function",
            seconds.clone(),
        )
    });
    runner.observe(std::sync::Arc::new(move |function, took| {
        seconds
            .get_or_create(&FunctionLabels {
                function: function.to_string(),
            })
            .observe(took.as_secs_f64());
    }));
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct CacheLabels {
    group: String,
    resource: String,
}

/// The controllers' shared caches at `/metrics`: objects and the bytes of
/// their JSON as held, per kind, brought up to date every few seconds.
fn cache_metrics(
    running: &apiserver::Running,
    caches: std::sync::Arc<runtime::Caches>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    use prometheus_client::metrics::{family::Family, gauge::Gauge};
    let objects = Family::<CacheLabels, Gauge>::default();
    let bytes = Family::<CacheLabels, Gauge>::default();
    running.register_metrics(|registry| {
        registry.register(
            "plinth_cache_objects",
            "Objects in the controllers' shared cache of each kind",
            objects.clone(),
        );
        registry.register(
            "plinth_cache_body_bytes",
            "Bytes of object JSON held by the controllers' shared cache of each kind",
            bytes.clone(),
        );
    });
    async move {
        loop {
            for cache in caches.all() {
                let labels = CacheLabels {
                    group: cache.resource.group.clone(),
                    resource: cache.resource.plural.clone(),
                };
                objects.get_or_create(&labels).set(cache.len() as i64);
                bytes.get_or_create(&labels).set(cache.footprint() as i64);
            }
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    }
}

/// The PostgreSQL server behind the local provider's `default`
/// ProviderConfig: the one `--local-postgres-url` names, else one this
/// process runs. When neither is possible the ProviderConfig says so, and
/// the resources that use it carry that message.
async fn local_postgres(
    client: kube::Client,
    url: Option<String>,
    data_dir: std::path::PathBuf,
) -> Option<crate::local_postgres::LocalPostgres> {
    if let Some(url) = url {
        local_default_config(client, Credential::Url(url)).await;
        return None;
    }
    match crate::local_postgres::LocalPostgres::start(&data_dir).await {
        Ok(cluster) => {
            local_default_config(client, Credential::Url(cluster.url.clone())).await;
            Some(cluster)
        }
        Err(e) => {
            let why = format!(
                "the local provider has no PostgreSQL server: plinth up could not run one ({e:#}); install PostgreSQL's server package, or restart plinth up with --local-postgres-url postgresql://USER:PASSWORD@HOST:PORT/postgres"
            );
            tracing::warn!("{why}");
            local_default_config(client, Credential::Unavailable(why)).await;
            None
        }
    }
}

pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// What the default ProviderConfig's Secret holds.
enum Credential {
    Url(String),
    /// Why there is no server; the local provider reports it as is.
    Unavailable(String),
}

/// Points the local provider's `default` ProviderConfig at a PostgreSQL
/// server, once the local provider has registered its ProviderConfig kind.
async fn local_default_config(client: kube::Client, credential: Credential) {
    use kube::api::{Patch, PatchParams};
    use serde_json::json;
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), "plinth-system");
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "local-postgres-admin", "namespace": "plinth-system"},
        "stringData": match credential {
            Credential::Url(url) => json!({"url": url}),
            Credential::Unavailable(why) => json!({"unavailable": why}),
        }
    });
    let params = PatchParams::apply("plinth-up").force();
    if let Err(e) = secrets
        .patch("local-postgres-admin", &params, &Patch::Apply(secret))
        .await
    {
        tracing::warn!(error = %e, "cannot store the local PostgreSQL admin URL");
        return;
    }
    // The ProviderConfig only names that Secret, so it is created once and
    // never overwritten: a `default` someone wrote (pointing at a server of
    // their own) stays as they wrote it.
    let config = json!({
        "apiVersion": "local.plinth.dev/v1alpha1", "kind": "ProviderConfig",
        "metadata": {"name": "default"},
        "spec": {"credentials": {"source": "Secret", "secretRef": {"namespace": "plinth-system", "name": "local-postgres-admin"}}}
    });
    match crate::startup::create_if_absent(&client, "local.plinth.dev", config).await {
        Ok(true) => tracing::info!(
            "the local provider's default ProviderConfig names the Secret plinth-system/local-postgres-admin"
        ),
        Ok(false) => tracing::info!(
            "the local provider's default ProviderConfig already exists; left as it is"
        ),
        Err(e) => tracing::warn!("the local provider's default ProviderConfig was not written: {e:#}"),
    }
}

/// What the controllers are given, in both modes.
pub(crate) struct Settings {
    pub poll_interval: std::time::Duration,
    pub max_reconcile_rate: u32,
    pub function_timeout: std::time::Duration,
    pub provider_timeout: std::time::Duration,
    pub builtin_apis: bool,
}

impl Settings {
    fn of(args: &UpArgs) -> Settings {
        Settings {
            poll_interval: args.poll_interval,
            max_reconcile_rate: args.max_reconcile_rate,
            function_timeout: args.function_timeout,
            provider_timeout: args.provider_timeout,
            builtin_apis: !args.no_builtin_apis,
        }
    }
}

/// Every controller, the plugin host and the function host, as `plinth
/// up` and `plinth controller` run them alike.
pub(crate) struct Controllers {
    managed: reconciler::Controllers,
    composition: composite::Controllers,
    oam: oam::Controllers,
    function_host: std::sync::Arc<functions::host::Host>,
    function_host_task: tokio::task::JoinHandle<()>,
}

impl Controllers {
    pub(crate) async fn start(
        settings: &Settings,
        client: kube::Client,
        caches: std::sync::Arc<runtime::Caches>,
        socket_dir: PathBuf,
        bundled: Vec<(String, PathBuf)>,
        register_metrics: impl Fn(&dyn Fn(&mut prometheus_client::registry::Registry)),
    ) -> Result<Controllers> {
        register_metrics(&runtime::metrics::register);
        let options = reconciler::Options {
            socket_dir,
            poll_interval: settings.poll_interval,
            max_reconcile_rate: settings.max_reconcile_rate,
            bundled,
            crash_after_create: std::env::var(CRASH_AFTER_CREATE_ENV).is_ok_and(|v| v == "1"),
            provider_timeout: settings.provider_timeout,
        };
        let managed = reconciler::start(client.clone(), caches.clone(), options)
            .await
            .context("starting the controllers")?;
        let function_runner = functions::Runner::new(settings.function_timeout);
        observe_function_calls(&function_runner, |register| register_metrics(register));
        let function_host = functions::host::Host::new(client.clone(), function_runner.clone());
        let function_host_task = tokio::spawn(function_host.clone().run());
        let cloud_compositions = if settings.builtin_apis {
            Some(crate::compositions::cloud()?)
        } else {
            None
        };
        let composition = composite::start(
            client.clone(),
            caches.clone(),
            cloud_compositions,
            function_runner,
        )
        .await
        .context("starting the composition controllers")?;
        let oam = oam::start(client, caches)
            .await
            .context("starting the OAM controllers")?;
        Ok(Controllers {
            managed,
            composition,
            oam,
            function_host,
            function_host_task,
        })
    }

    /// Stops the reconcilers first, then the functions and providers they
    /// run, each with SIGTERM so it can clean up.
    pub(crate) async fn stop(self) {
        self.oam.stop().await;
        self.composition.stop().await;
        self.function_host_task.abort();
        self.function_host.shutdown().await;
        self.managed.stop().await;
    }
}

/// `plinth up --no-controllers`: the API server alone, for `plinth
/// controller` processes to run against as against a cluster.
async fn serve_api_only(
    running: apiserver::Running,
    caches: std::sync::Arc<runtime::Caches>,
    cache_metrics: tokio::task::JoinHandle<()>,
    started: std::time::Instant,
) -> Result<()> {
    running.mark_ready();
    println!(
        "Plinth is serving {} (ready in {} ms); kubeconfig: {}",
        running.url,
        started.elapsed().as_millis(),
        running.kubeconfig.display()
    );
    tracing::info!("serving the API only (--no-controllers): run plinth controller against it");
    shutdown_signal().await;
    tracing::info!("shutting down");
    caches.stop();
    cache_metrics.abort();
    running.shutdown().await;
    Ok(())
}

/// Where each bundled provider's binary belongs: beside this one.
pub(crate) fn bundled_provider_paths() -> Vec<(String, PathBuf)> {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_default();
    BUNDLED_PROVIDERS
        .iter()
        .map(|name| {
            (
                name.to_string(),
                dir.join(format!("plinth-provider-{name}")),
            )
        })
        .collect()
}

/// `plinth-provider-<name>` binaries beside this one.
pub(crate) fn bundled_providers() -> Vec<(String, PathBuf)> {
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
    else {
        return Vec::new();
    };
    BUNDLED_PROVIDERS
        .iter()
        .filter_map(|name| {
            let binary = dir.join(format!("plinth-provider-{name}"));
            if binary.is_file() {
                Some((name.to_string(), binary))
            } else {
                tracing::warn!(provider = name, path = %binary.display(), "bundled provider not found beside plinth (build it with `cargo build --release --workspace --bins`); its kinds are not served");
                None
            }
        })
        .collect()
}
