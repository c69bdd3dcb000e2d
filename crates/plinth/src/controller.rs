//! `plinth controller`: the controllers, the plugin host and the function
//! runner against a Kubernetes API that someone else serves (a cluster, or
//! `plinth up --no-controllers`), with leader election on a Lease so only
//! one replica reconciles at a time, and `/healthz`, `/readyz` and
//! `/metrics` for the kubelet and Prometheus.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use clap::Args;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::Api;
use prometheus_client::registry::Registry;

use crate::cli::parse_duration;
use crate::up::{Controllers, Settings};

#[derive(Args, Debug, Clone)]
pub struct ControllerArgs {
    /// The kubeconfig to use [default: $KUBECONFIG, else the in-cluster
    /// service account, else ~/.kube/config].
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The namespace of the leader Lease.
    #[arg(long, default_value = "plinth-system", env = "POD_NAMESPACE")]
    pub namespace: String,
    /// The name of the leader Lease.
    #[arg(long, default_value = "plinth-controller")]
    pub lease_name: String,
    /// Who this replica is in the Lease [default: $POD_NAME, else the host
    /// name and a random suffix].
    #[arg(long)]
    pub identity: Option<String>,
    /// Where `/healthz` and `/readyz` are served.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub health_addr: SocketAddr,
    /// Where `/metrics` is served.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub metrics_addr: SocketAddr,
    /// Where provider plugins put their sockets [default: a new temporary directory].
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// How long the Lease lasts without renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: std::time::Duration,
    /// How long the leader keeps trying to renew before it stops leading.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: std::time::Duration,
    /// How often the Lease is renewed or tried for.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub retry_period: std::time::Duration,
    /// How often available managed resources are checked for drift.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub poll_interval: std::time::Duration,
    /// Reconciles per second across all managed kinds.
    #[arg(long, default_value_t = 1000)]
    pub max_reconcile_rate: u32,
    /// How long a composition function may take to answer one call.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub function_timeout: std::time::Duration,
    /// How long a provider may take to answer one call.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub provider_timeout: std::time::Duration,
    /// Do not install the built-in DBaaS and Compute interfaces.
    #[arg(long)]
    pub no_builtin_apis: bool,
    /// Do not run the providers shipped next to the plinth binary.
    #[arg(long)]
    pub no_bundled_providers: bool,
    /// Divide the objects among this many shards, by a stable hash of
    /// their UID, each with a Lease of its own; every replica holds at most
    /// its fair share. Without it, one replica leads and does everything.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub shards: Option<u32>,
}

/// `$POD_NAME`, else the host name with a random suffix, so two replicas
/// on one host are still two.
fn identity(args: &ControllerArgs) -> String {
    if let Some(id) = &args.identity {
        return id.clone();
    }
    if let Ok(pod) = std::env::var("POD_NAME") {
        if !pod.is_empty() {
            return pod;
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "plinth".into());
    let suffix: String = (0..5)
        .map(|_| char::from(b'a' + rand::random_range(0..26u8)))
        .collect();
    format!("{host}-{suffix}")
}

async fn client(args: &ControllerArgs) -> Result<kube::Client> {
    let config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .with_context(|| format!("cannot use the kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("cannot find a kubeconfig or an in-cluster service account")?,
    };
    kube::Client::try_from(config).context("cannot build the API client")
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct ShardLabels {
    shard: String,
}

/// The replica's own metrics: whether it leads, plus what the controllers add.
struct Metrics {
    registry: Mutex<Registry>,
    leader: prometheus_client::metrics::gauge::Gauge,
    shards: prometheus_client::metrics::gauge::Gauge,
    /// Which shards: 1 for each held, 0 for the others.
    shard: prometheus_client::metrics::family::Family<
        ShardLabels,
        prometheus_client::metrics::gauge::Gauge,
    >,
}

impl Metrics {
    fn new() -> Arc<Metrics> {
        let mut registry = Registry::default();
        let leader = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "plinth_controller_leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        // Without --shards there is one shard: the whole installation.
        let shards = prometheus_client::metrics::gauge::Gauge::default();
        registry.register(
            "plinth_controller_shards_held",
            "Shards whose Lease this replica holds",
            shards.clone(),
        );
        let shard = prometheus_client::metrics::family::Family::default();
        registry.register(
            "plinth_controller_shard_held",
            "1 for each shard whose Lease this replica holds, by shard",
            shard.clone(),
        );
        Arc::new(Metrics {
            registry: Mutex::new(registry),
            leader,
            shards,
            shard,
        })
    }

    fn text(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::warn!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

/// A path's answer, computed per request: its content type and body, or
/// `None` for 404.
type Answer = Arc<dyn Fn(&str) -> Option<(&'static str, String)> + Send + Sync>;

/// Serves what `answer` says on `addr`, over HTTP/1.
async fn serve(addr: SocketAddr, answer: Answer) -> Result<tokio::task::JoinHandle<()>> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    Ok(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let found = answer(req.uri().path());
                        async move {
                            match found {
                                Some((content_type, body)) => hyper::Response::builder()
                                    .header("content-type", content_type)
                                    .body(Full::new(Bytes::from(body))),
                                None => hyper::Response::builder()
                                    .status(404)
                                    .body(Full::new(Bytes::from("not found\n"))),
                            }
                        }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    }))
}

pub async fn run(args: ControllerArgs) -> Result<()> {
    let client = client(&args).await?;
    let me = identity(&args);
    let metrics = Metrics::new();
    let healthy = Arc::new(AtomicBool::new(true));
    let health = {
        let healthy = healthy.clone();
        serve(
            args.health_addr,
            Arc::new(move |path| match path {
                // A standby is healthy and ready too: it is doing its job,
                // which is to wait for the Lease.
                "/healthz" | "/readyz" if healthy.load(Ordering::Relaxed) => {
                    Some(("text/plain", "ok\n".into()))
                }
                _ => None,
            }),
        )
        .await?
    };
    let metrics_server = {
        let metrics = metrics.clone();
        serve(
            args.metrics_addr,
            Arc::new(move |path| {
                (path == "/metrics").then(|| {
                    (
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        metrics.text(),
                    )
                })
            }),
        )
        .await?
    };
    // The Lease's namespace exists before anyone can hold a Lease in it.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": args.namespace}});
    if let Err(e) = namespaces
        .patch(
            &args.namespace,
            &PatchParams::apply("plinth-controller"),
            &Patch::Apply(ns),
        )
        .await
    {
        tracing::warn!(namespace = %args.namespace, error = %e, "cannot ensure the Lease's namespace");
    }
    let timing = runtime::lease::Timing {
        lease_duration: args.lease_duration,
        renew_deadline: args.renew_deadline,
        retry_period: args.retry_period,
    };
    if let Some(shards) = args.shards {
        return run_sharded(
            &args,
            client,
            &me,
            timing,
            shards,
            metrics,
            health,
            metrics_server,
        )
        .await;
    }
    let elector = runtime::lease::Elector::new(
        client.clone(),
        &args.namespace,
        &args.lease_name,
        &me,
        timing,
    );
    tracing::info!(identity = %me, lease = %format!("{}/{}", args.namespace, args.lease_name), "waiting for the leader Lease");
    tokio::select! {
        _ = elector.acquire() => {}
        _ = crate::up::shutdown_signal() => {
            health.abort();
            metrics_server.abort();
            return Ok(());
        }
    }
    metrics.leader.set(1);
    metrics.shards.set(1);
    tracing::info!(identity = %me, "leading: starting the controllers");
    // Printed for scripts and tests, as plinth up prints its ready line.
    println!("plinth controller {me} is leading");
    let (controllers, caches) = start_controllers(&args, client.clone(), &metrics).await?;
    let lost = tokio::select! {
        _ = elector.keep() => true,
        _ = crate::up::shutdown_signal() => false,
    };
    metrics.leader.set(0);
    metrics.shards.set(0);
    if lost {
        // Stop reconciling before anyone else may take over: the renew
        // deadline is shorter than the Lease, so this comes first.
        healthy.store(false, Ordering::Relaxed);
        tracing::error!(identity = %me, "lost the leader Lease; stopping");
        controllers.stop().await;
        caches.stop();
        anyhow::bail!("lost the leader Lease");
    }
    tracing::info!("shutting down");
    controllers.stop().await;
    caches.stop();
    elector.release().await;
    health.abort();
    metrics_server.abort();
    Ok(())
}

/// `--shards N`: the controllers run from the start, each reconciling only
/// the objects of the shards this replica holds as the shard manager hands
/// them out.
#[allow(clippy::too_many_arguments)]
async fn run_sharded(
    args: &ControllerArgs,
    client: kube::Client,
    me: &str,
    timing: runtime::lease::Timing,
    shards: u32,
    metrics: Arc<Metrics>,
    health: tokio::task::JoinHandle<()>,
    metrics_server: tokio::task::JoinHandle<()>,
) -> Result<()> {
    let ownership = runtime::shard::Ownership::new(shards);
    runtime::shard::set_ownership(ownership.clone());
    let manager = tokio::spawn(
        runtime::shard::Manager::new(
            client.clone(),
            &args.namespace,
            &args.lease_name,
            me,
            timing,
            ownership.clone(),
        )
        .run(),
    );
    let reporter = {
        let (ownership, metrics, me) = (ownership.clone(), metrics.clone(), me.to_string());
        let mut changes = ownership.subscribe();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let held = ownership.held();
                metrics.shards.set(i64::try_from(held.len()).unwrap_or(0));
                for shard in 0..ownership.shards() {
                    metrics
                        .shard
                        .get_or_create(&ShardLabels {
                            shard: shard.to_string(),
                        })
                        .set(i64::from(held.contains(&shard)));
                }
                metrics.leader.set(i64::from(!held.is_empty()));
                // For scripts and tests, as the unsharded replica prints its lead.
                println!("plinth controller {me} holds shards {held:?}");
            }
        })
    };
    let (controllers, caches) = start_controllers(args, client, &metrics).await?;
    crate::up::shutdown_signal().await;
    tracing::info!("shutting down");
    manager.abort();
    reporter.abort();
    controllers.stop().await;
    caches.stop();
    health.abort();
    metrics_server.abort();
    Ok(())
}

/// The controllers, with their providers' sockets in `--state-dir` (or a
/// new temporary directory) and their metrics in this replica's registry.
async fn start_controllers(
    args: &ControllerArgs,
    client: kube::Client,
    metrics: &Metrics,
) -> Result<(Controllers, Arc<runtime::Caches>)> {
    let state_dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => tempfile::Builder::new()
            .prefix("plinth-controller-")
            .tempdir()
            .context("cannot make a state directory")?
            .keep(),
    };
    let bundled = if args.no_bundled_providers {
        Vec::new()
    } else {
        crate::up::bundled_providers()
    };
    let caches = runtime::Caches::new(client.clone());
    let settings = Settings {
        poll_interval: args.poll_interval,
        max_reconcile_rate: args.max_reconcile_rate,
        function_timeout: args.function_timeout,
        provider_timeout: args.provider_timeout,
        builtin_apis: !args.no_builtin_apis,
    };
    let controllers = Controllers::start(
        &settings,
        client,
        caches.clone(),
        state_dir.join("plugins"),
        bundled,
        |register| {
            register(&mut metrics.registry.lock().unwrap_or_else(|e| e.into_inner()));
        },
    )
    .await?;
    Ok((controllers, caches))
}
