//! `plinth bench composition`: claims from apply to Ready through a real
//! `plinth up`: one claim at a time (p50/p99, nop and local), a burst of
//! claims, and many nop claims each composing three managed resources at
//! several sizes (each on a fresh server), with the store writes per claim
//! by kind and verb, the memory and CPU of every Plinth process, what each
//! costs per claim at each size, and the idle CPU afterwards. It measures;
//! it does not assert.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use futures::StreamExt;
use hdrhistogram::Histogram;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::Client;
use serde_json::{json, Value};

use crate::bench::{client, print_table, spawn_server_with, stop, write_json, Figure};
use crate::bench_usage::Usage;

#[derive(Args, Debug, Clone)]
pub struct CompositionBenchArgs {
    /// Sequential single claims for the latency measurement, per backend.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Claims applied at once for the burst measurement.
    #[arg(long, default_value_t = 100)]
    pub burst: usize,
    /// Nop claims (three managed resources each) for each scale step, each
    /// applied at once on a fresh `plinth up`.
    #[arg(long, value_delimiter = ',', default_values_t = [1_000, 3_000, 10_000])]
    pub scale: Vec<usize>,
    /// One scale step of this many claims instead of `--scale`.
    #[arg(long)]
    pub claims: Option<usize>,
    /// Seconds of idle CPU measurement after the largest scale step.
    #[arg(long, default_value_t = 60)]
    pub idle_seconds: u64,
    /// Skip the local (PostgreSQL) latency measurement.
    #[arg(long)]
    pub skip_local: bool,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Claims through a two-step function pipeline (0 skips it).
    #[arg(long, default_value_t = 1_000)]
    pub pipeline_claims: usize,
    /// The composition function the pipeline runs: a command line that
    /// takes `--address` and `--insecure`, such as a Python interpreter
    /// with crossplane-function-sdk-python and tests/functions/function.py.
    #[arg(
        long,
        env = "PLINTH_BENCH_FUNCTION",
        default_value = ".venv/bin/python tests/functions/function.py"
    )]
    pub function: String,
    /// Calls of the function for its per-call latency.
    #[arg(long, default_value_t = 500)]
    pub function_calls: usize,
    /// Passed to `plinth up --max-reconcile-rate`.
    #[arg(long, default_value_t = 1000)]
    pub max_reconcile_rate: u32,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub(crate) fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

const BENCH_XRD: &str = r#"{
  "apiVersion": "apiextensions.crossplane.io/v1", "kind": "CompositeResourceDefinition",
  "metadata": {"name": "xbenches.bench.plinth.dev"},
  "spec": {"group": "bench.plinth.dev", "names": {"kind": "XBench", "plural": "xbenches"},
           "claimNames": {"kind": "Bench", "plural": "benches"},
           "defaultCompositionRef": {"name": "bench-nop"},
           "versions": [{"name": "v1alpha1", "served": true, "referenceable": true,
             "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
               "parameters": {"type": "object", "properties": {"size": {"type": "integer"}, "names": {"type": "array", "items": {"type": "string"}}}}}}}}}}]}
}"#;

fn bench_composition() -> Value {
    let resource = |name: &str| {
        json!({"name": name, "base": {"apiVersion": "nop.plinth.dev/v1alpha1", "kind": "NopResource", "spec": {"forProvider": {}}},
               "patches": [{"fromFieldPath": "spec.parameters.size", "toFieldPath": "spec.forProvider.fields.size"}]})
    };
    json!({"apiVersion": "apiextensions.crossplane.io/v1", "kind": "Composition",
           "metadata": {"name": "bench-nop", "labels": {"provider": "nop"}},
           "spec": {"compositeTypeRef": {"apiVersion": "bench.plinth.dev/v1alpha1", "kind": "XBench"},
                    "resources": [resource("a"), resource("b"), resource("c")]}})
}

pub(crate) fn is_ready(o: &DynamicObject) -> bool {
    crate::startup::condition_true(o, "Ready")
}

pub(crate) async fn wait_ready(
    api: &Api<DynamicObject>,
    name: &str,
    limit: Duration,
) -> Result<Duration> {
    let started = Instant::now();
    loop {
        if let Some(o) = api.get_opt(name).await? {
            if is_ready(&o) {
                return Ok(started.elapsed());
            }
        }
        if started.elapsed() > limit {
            bail!("{name} was not Ready within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until `count` claims named `prefix...` are Ready (or `limit` has
/// passed since `started`), sampling `usage` every second.
/// The store's current revision: the resourceVersion of a list.
async fn store_revision(api: &Api<DynamicObject>) -> Result<u64> {
    let list = api
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .context("listing claims for the store revision")?;
    Ok(list
        .metadata
        .resource_version
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

pub(crate) async fn wait_all_ready(
    claims: &Api<DynamicObject>,
    prefix: &str,
    count: usize,
    started: Instant,
    limit: Duration,
    usage: &mut Usage,
) -> Result<()> {
    // Counted from a watch: listing thousands of claims over and over
    // would load the server more than the claims themselves.
    let mut ready_names = std::collections::HashSet::new();
    let mut events =
        kube::runtime::watcher(claims.clone(), kube::runtime::watcher::Config::default()).boxed();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            event = events.next() => {
                let object = match event {
                    Some(Ok(kube::runtime::watcher::Event::Apply(o) | kube::runtime::watcher::Event::InitApply(o))) => o,
                    Some(_) => continue,
                    None => bail!("the watch on claims ended"),
                };
                let name = object.metadata.name.clone().unwrap_or_default();
                if name.starts_with(prefix) && is_ready(&object) {
                    ready_names.insert(name);
                }
            }
            _ = tick.tick() => usage.sample(),
        }
        if ready_names.len() >= count {
            return Ok(());
        }
        if started.elapsed() > limit {
            eprintln!(
                "   only {} of {count} Ready after {limit:?}",
                ready_names.len()
            );
            return Ok(());
        }
    }
}

/// Claims made one at a time, each from create to Ready, then deleted.
pub(crate) async fn latency(
    client: &Client,
    claim_ar: &ApiResource,
    make: impl Fn(usize) -> Value,
    runs: usize,
    limit: Duration,
) -> Result<Histogram<u64>> {
    let claims: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", claim_ar);
    let mut hist = Histogram::<u64>::new(3)?;
    for i in 0..runs {
        let body: DynamicObject = serde_json::from_value(make(i))?;
        let name = body.metadata.name.clone().unwrap_or_default();
        let started = Instant::now();
        claims.create(&PostParams::default(), &body).await?;
        wait_ready(&claims, &name, limit).await?;
        hist.record(started.elapsed().as_millis() as u64)?;
        claims.delete(&name, &DeleteParams::default()).await?;
    }
    Ok(hist)
}

/// Counts of store writes by resource, subresource and verb, from the API
/// server's `/metrics`.
pub(crate) type Writes = std::collections::BTreeMap<(String, String, String), f64>;

/// The API server's `/metrics` text now.
async fn metrics(client: &Client) -> Result<String> {
    let request = http::Request::get("/metrics")
        .body(Vec::new())
        .context("building the /metrics request")?;
    client
        .request_text(request)
        .await
        .context("reading the API server's /metrics")
}

/// The API server's store-write counters now.
pub(crate) async fn store_writes(client: &Client) -> Result<Writes> {
    let text = metrics(client).await?;
    let mut writes = Writes::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("plinth_store_writes_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|pair| pair.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let resource = match label("group").as_str() {
            "" => label("resource"),
            group => format!("{}.{group}", label("resource")),
        };
        let value: f64 = value.trim().parse().context("a /metrics value")?;
        *writes
            .entry((resource, label("subresource"), label("verb")))
            .or_default() += value;
    }
    Ok(writes)
}

/// The sum of every sample of a gauge `name` at `/metrics` (over its labels).
pub(crate) async fn gauge(client: &Client, name: &str) -> Result<f64> {
    let text = metrics(client).await?;
    let mut sum = 0.0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        if let Some(value) = rest.rsplit(' ').next() {
            sum += value.trim().parse::<f64>().context("a /metrics value")?;
        }
    }
    Ok(sum)
}

/// One scale step: `count` claims applied at once on a fresh `plinth up`.
struct Scale {
    count: usize,
    seconds: f64,
    writes: f64,
    by_kind: Writes,
    /// Every Plinth process together, MiB.
    peak_rss: f64,
    peak_pss: f64,
    /// `plinth up` and its providers before any claim, MiB.
    empty_rss: f64,
    settled_rss: f64,
    groups: Vec<(String, f64, f64)>,
    /// Objects and MiB of their JSON as held: in the store, in the caches.
    store: (f64, f64),
    caches: (f64, f64),
    cpu: f64,
    idle_percent: Option<f64>,
}

/// A fresh `plinth up` with the bench's XRD and Composition in place.
async fn bench_server(
    dir: &std::path::Path,
    args: &CompositionBenchArgs,
    local: bool,
) -> Result<(tokio::process::Child, Client, Usage)> {
    let rate = args.max_reconcile_rate.to_string();
    let mut extra: Vec<&str> = vec!["--max-reconcile-rate", &rate];
    if !local {
        extra.push("--no-local-postgres");
    }
    let (server, kubeconfig, _) = spawn_server_with(dir, &extra).await?;
    let server_pid = server.id().context("no pid for plinth up")?;
    let client = client(&kubeconfig).await?;
    let usage = Usage::new(server_pid, dir.to_path_buf());
    let xrd: Value = serde_json::from_str(BENCH_XRD)?;
    let benches: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &bench_ar());
    install_nop_api(&client, xrd, bench_composition(), &benches).await?;
    Ok((server, client, usage))
}

/// The nop provider's `default` ProviderConfig (once the provider has
/// registered its kinds), then an XRD and its Composition, applied, until
/// `claims` are served.
pub(crate) async fn install_nop_api(
    client: &Client,
    xrd: Value,
    composition: Value,
    claims: &Api<DynamicObject>,
) -> Result<()> {
    let apply = PatchParams::apply("plinth-bench").force();
    let nop_configs = Api::<DynamicObject>::all_with(
        client.clone(),
        &ar(
            "nop.plinth.dev",
            "v1alpha1",
            "ProviderConfig",
            "providerconfigs",
        ),
    );
    let xrds = Api::<DynamicObject>::all_with(
        client.clone(),
        &ar(
            "apiextensions.crossplane.io",
            "v1",
            "CompositeResourceDefinition",
            "compositeresourcedefinitions",
        ),
    );
    let compositions = Api::<DynamicObject>::all_with(
        client.clone(),
        &ar(
            "apiextensions.crossplane.io",
            "v1",
            "Composition",
            "compositions",
        ),
    );
    let config = json!({"apiVersion": "nop.plinth.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": "default"}, "spec": {}});
    let started = Instant::now();
    while nop_configs
        .patch("default", &apply, &Patch::Apply(config.clone()))
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the nop provider did not register within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let name_of = |o: &Value| {
        o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    xrds.patch(&name_of(&xrd), &apply, &Patch::Apply(&xrd))
        .await?;
    compositions
        .patch(&name_of(&composition), &apply, &Patch::Apply(&composition))
        .await?;
    let started = Instant::now();
    while claims.list(&Default::default()).await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the claim kind was not served within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn bench_ar() -> ApiResource {
    ar("bench.plinth.dev", "v1alpha1", "Bench", "benches")
}

fn bench_claim(name: String) -> Value {
    json!({"apiVersion": "bench.plinth.dev/v1alpha1", "kind": "Bench", "metadata": {"name": name, "namespace": "default"}, "spec": {"parameters": {"size": 1}}})
}

/// Applies `count` claims named `prefix-NNNNN` at once and waits until all
/// are Ready; the time it took, the store writes and the writes by kind.
async fn apply_claims(
    client: &Client,
    prefix: &str,
    count: usize,
    limit: Duration,
    usage: &mut Usage,
) -> Result<(f64, f64, Writes)> {
    apply_claims_of(client, prefix, count, limit, usage, bench_claim).await
}

async fn apply_claims_of(
    client: &Client,
    prefix: &str,
    count: usize,
    limit: Duration,
    usage: &mut Usage,
    make: impl Fn(String) -> Value,
) -> Result<(f64, f64, Writes)> {
    let benches: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &bench_ar());
    let revision_before = store_revision(&benches).await?;
    let writes_before = store_writes(client).await?;
    let started = Instant::now();
    crate::bench::create_all(&benches, count, |i| make(format!("{prefix}-{i:05}"))).await?;
    wait_all_ready(&benches, prefix, count, started, limit, usage).await?;
    let seconds = started.elapsed().as_secs_f64();
    // Every write is one store revision, whatever it wrote.
    let writes = store_revision(&benches)
        .await?
        .saturating_sub(revision_before) as f64;
    let mut by_kind = store_writes(client).await?;
    for (key, before) in writes_before {
        if let Some(after) = by_kind.get_mut(&key) {
            *after -= before;
        }
    }
    by_kind.retain(|_, n| *n > 0.0);
    Ok((seconds, writes, by_kind))
}

pub async fn run(args: CompositionBenchArgs) -> Result<()> {
    let limit = Duration::from_secs(args.timeout);
    let mut figures = Vec::new();
    let scales = match args.claims {
        Some(claims) => vec![claims],
        None => args.scale.clone(),
    };

    // 1 and 2: one claim at a time, and a burst, on one server.
    if args.runs > 0 || args.burst > 0 {
        let dir = tempfile::tempdir()?;
        let (mut server, client, mut usage) =
            bench_server(dir.path(), &args, !args.skip_local).await?;
        if args.runs > 0 {
            eprintln!("1. one claim to Ready, {} runs per backend", args.runs);
            let hist = latency(
                &client,
                &bench_ar(),
                |i| bench_claim(format!("single-{i}")),
                args.runs,
                limit,
            )
            .await?;
            usage.sample();
            figures.extend(crate::bench::percentiles(
                "one nop claim to Ready",
                &hist,
                Some("≤ 100 ms"),
            ));
            if !args.skip_local {
                let pg_ar = ar(
                    "platform.plinth.dev",
                    "v1alpha1",
                    "PostgreSQLInstance",
                    "postgresqlinstances",
                );
                let make = |i: usize| {
                    json!({"apiVersion": "platform.plinth.dev/v1alpha1", "kind": "PostgreSQLInstance",
                           "metadata": {"name": format!("pg-{i}"), "namespace": "default"},
                           "spec": {"parameters": {"size": "small"}, "writeConnectionSecretToRef": {"name": format!("pg-{i}")}}})
                };
                match latency(&client, &pg_ar, make, args.runs, Duration::from_secs(120)).await {
                    Ok(hist) => {
                        figures.extend(crate::bench::percentiles(
                            "one local PostgreSQL claim to Ready",
                            &hist,
                            Some("≤ 250 ms"),
                        ));
                    }
                    Err(e) => eprintln!("   local PostgreSQL claims not measured: {e:#}"),
                }
            }
        }
        if args.burst > 0 {
            eprintln!(
                "2. burst: {} nop claims (3 managed resources each) to all Ready",
                args.burst
            );
            let (seconds, writes, _) =
                apply_claims(&client, "burst", args.burst, limit, &mut usage).await?;
            figures.push(Figure {
                name: format!("{} nop claims to all Ready", args.burst),
                value: seconds,
                unit: "s",
                target: Some("≤ 1 s".into()),
            });
            figures.push(Figure {
                name: format!("  store writes per claim ({} claims)", args.burst),
                value: writes / args.burst as f64,
                unit: "writes",
                target: None,
            });
        }
        stop(&mut server).await;
    }

    // 3. Scale: each size on a fresh server, so each is measured alone.
    let mut steps = Vec::new();
    for (i, &count) in scales.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let last = i + 1 == scales.len();
        eprintln!("3. scale: {count} nop claims (3 managed resources each) to all Ready, on a fresh plinth up");
        let dir = tempfile::tempdir()?;
        let (mut server, client, mut usage) =
            bench_server(dir.path(), &args, !args.skip_local).await?;
        // Started and settled: what the processes take before any claim.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let empty_rss = usage.current_rss();
        let (seconds, writes, by_kind) =
            apply_claims(&client, "scale", count, limit, &mut usage).await?;
        // Settled: the writes of the last claims are done, the store has
        // packed what no longer changes.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            usage.sample();
        }
        let settled_rss = usage.current_rss();
        let mib = |bytes: f64| bytes / (1024.0 * 1024.0);
        let store = (
            gauge(&client, "plinth_store_objects").await?,
            mib(gauge(&client, "plinth_store_body_bytes").await?),
        );
        let caches = (
            gauge(&client, "plinth_cache_objects").await?,
            mib(gauge(&client, "plinth_cache_body_bytes").await?),
        );
        let cpu = usage.total_cpu();
        let idle_percent = if last && args.idle_seconds > 0 {
            eprintln!("4. idle CPU over {} s", args.idle_seconds);
            let before = usage.total_cpu();
            tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
            Some(100.0 * (usage.total_cpu() - before) / args.idle_seconds as f64)
        } else {
            None
        };
        usage.sample();
        let groups = usage
            .order
            .iter()
            .map(|label| {
                let (rss, cpu) = usage.groups[label];
                (label.clone(), rss, cpu)
            })
            .collect();
        steps.push(Scale {
            count,
            seconds,
            writes,
            by_kind,
            peak_rss: usage.peak_rss,
            peak_pss: usage.peak_pss,
            empty_rss,
            settled_rss,
            groups,
            store,
            caches,
            cpu,
            idle_percent,
        });
        stop(&mut server).await;
    }

    for step in &steps {
        let n = step.count as f64;
        let target = |t: &str| (step.count == 10_000).then(|| t.to_string());
        figures.push(Figure {
            name: format!("{} nop claims to all Ready", step.count),
            value: step.seconds,
            unit: "s",
            target: target("≤ 60 s"),
        });
        figures.push(Figure {
            name: "  time per claim".into(),
            value: 1000.0 * step.seconds / n,
            unit: "ms",
            target: None,
        });
        figures.push(Figure {
            name: "  store writes per claim".into(),
            value: step.writes / n,
            unit: "writes",
            target: target("≤ 12"),
        });
        figures.push(Figure {
            name: "  peak RSS, every Plinth process".into(),
            value: step.peak_rss,
            unit: "MiB",
            target: target("≤ 250 MiB"),
        });
        figures.push(Figure {
            name: "  peak PSS, every Plinth process".into(),
            value: step.peak_pss,
            unit: "MiB",
            target: None,
        });
        figures.push(Figure {
            name: "  RSS once settled, every Plinth process".into(),
            value: step.settled_rss,
            unit: "MiB",
            target: target("≤ 200 MiB"),
        });
        figures.push(Figure {
            name: "  memory per claim (settled − empty)".into(),
            value: 1024.0 * (step.settled_rss - step.empty_rss) / n,
            unit: "KiB",
            target: None,
        });
        figures.push(Figure {
            name: "  store: objects".into(),
            value: step.store.0,
            unit: "objects",
            target: None,
        });
        figures.push(Figure {
            name: "  store: MiB of object JSON as held".into(),
            value: step.store.1,
            unit: "MiB",
            target: None,
        });
        figures.push(Figure {
            name: "  caches: objects".into(),
            value: step.caches.0,
            unit: "objects",
            target: None,
        });
        figures.push(Figure {
            name: "  caches: MiB of object JSON as held".into(),
            value: step.caches.1,
            unit: "MiB",
            target: None,
        });
        for (label, rss, cpu) in &step.groups {
            figures.push(Figure {
                name: format!("  peak RSS, {label}"),
                value: *rss,
                unit: "MiB",
                target: None,
            });
            figures.push(Figure {
                name: format!("  CPU, {label}"),
                value: *cpu,
                unit: "CPU s",
                target: None,
            });
        }
        figures.push(Figure {
            name: "  CPU, every Plinth process".into(),
            value: step.cpu,
            unit: "CPU s",
            target: None,
        });
        if let Some(idle) = step.idle_percent {
            figures.push(Figure {
                name: format!("idle CPU at {} claims", step.count),
                value: idle,
                unit: "% of a core",
                target: Some("≤ 1 %".into()),
            });
        }
    }
    if let (Some(first), Some(last)) = (steps.first(), steps.last()) {
        if first.count != last.count {
            let per = |s: &Scale, v: f64| v / s.count as f64;
            figures.push(Figure {
                name: format!("time per claim at {} ÷ at {}", last.count, first.count),
                value: per(last, last.seconds) / per(first, first.seconds),
                unit: "×",
                target: Some("≤ 1.5".into()),
            });
            figures.push(Figure {
                name: format!("memory per claim at {} ÷ at {}", last.count, first.count),
                value: per(last, last.settled_rss - last.empty_rss)
                    / per(first, first.settled_rss - first.empty_rss),
                unit: "×",
                target: Some("≤ 1.5".into()),
            });
        }
        let n = last.count as f64;
        for ((resource, subresource, verb), writes) in &last.by_kind {
            let what = if subresource.is_empty() {
                resource.clone()
            } else {
                format!("{resource}/{subresource}")
            };
            figures.push(Figure {
                name: format!("  writes per claim: {verb} {what}"),
                value: writes / n,
                unit: "writes",
                target: None,
            });
        }
    }
    if args.pipeline_claims > 0 {
        figures.extend(pipeline(&args, limit).await?);
    }
    print_table(&figures);
    if let Some(path) = &args.json {
        write_json(path, &figures)?;
    }
    Ok(())
}

/// Two steps of the bench's function: three NopResources, then a status
/// field from the context.
fn pipeline_composition() -> Value {
    let step = |name: &str, input: Value| json!({"step": name, "functionRef": {"name": "bench-function"}, "input": input});
    json!({"apiVersion": "apiextensions.crossplane.io/v1", "kind": "Composition",
    "metadata": {"name": "bench-pipeline"},
    "spec": {"compositeTypeRef": {"apiVersion": "bench.plinth.dev/v1alpha1", "kind": "XBench"},
             "mode": "Pipeline",
             "pipeline": [
                 step("compose", json!({"apiVersion": "test.plinth.dev/v1", "kind": "Input", "behaviour": "desire-nops"})),
                 step("report", json!({"apiVersion": "test.plinth.dev/v1", "kind": "Input", "behaviour": "set-context"}))
             ]}})
}

fn function_command(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// One RunFunction call after another to the function, started the way
/// `plinth up` starts it, each request different so no cache answers.
async fn function_call_latency(command: &[String], calls: usize) -> Result<Histogram<u64>> {
    use functions::pb;
    let (child, address) = functions::host::start("bench-function", command, None)
        .await
        .map_err(anyhow::Error::msg)?;
    let runner = functions::Runner::new(functions::runner::DEFAULT_TIMEOUT);
    runner.register_insecure("bench-function", &address)?;
    let mut hist = Histogram::<u64>::new(3)?;
    for i in 0..calls {
        let xr = json!({"apiVersion": "bench.plinth.dev/v1alpha1", "kind": "XBench",
                        "metadata": {"name": format!("call-{i}")},
                        "spec": {"parameters": {"names": ["a", "b", "c"]}}});
        let mut request = pb::RunFunctionRequest {
            observed: Some(pb::State {
                composite: Some(pb::Resource {
                    resource: Some(functions::structs::to_struct(&xr)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            input: Some(functions::structs::to_struct(
                &json!({"apiVersion": "test.plinth.dev/v1", "kind": "Input", "behaviour": "desire-nops"}),
            )),
            ..Default::default()
        };
        request.meta = Some(pb::RequestMeta {
            tag: functions::runner::tag(&request),
            capabilities: Vec::new(),
        });
        let started = Instant::now();
        runner.run("bench-function", request).await?;
        hist.record(started.elapsed().as_micros() as u64)?;
    }
    drop(child);
    Ok(hist)
}

/// The function calls `plinth up` made, from its `/metrics`.
async fn function_calls(client: &Client) -> Result<f64> {
    let text = metrics(client).await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("plinth_function_run_seconds_count"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// 4. Claims through a two-step pipeline of a Python function.
async fn pipeline(args: &CompositionBenchArgs, limit: Duration) -> Result<Vec<Figure>> {
    let command = function_command(&args.function);
    if command.is_empty() {
        bail!("--function is empty");
    }
    let mut figures = Vec::new();
    eprintln!(
        "4a. one function call at a time ({} calls): {}",
        args.function_calls, args.function
    );
    let hist = function_call_latency(&command, args.function_calls).await?;
    for (q, label) in [(0.5, "p50"), (0.99, "p99")] {
        figures.push(Figure {
            name: format!("one function call, {label}"),
            value: hist.value_at_quantile(q) as f64 / 1000.0,
            unit: "ms",
            target: None,
        });
    }
    let count = args.pipeline_claims;
    eprintln!("4b. {count} claims (3 NopResources each) through a two-step function pipeline, on a fresh plinth up");
    let dir = tempfile::tempdir()?;
    let (mut server, client, mut usage) = bench_server(dir.path(), args, false).await?;
    let apply = PatchParams::apply("plinth-bench").force();
    let functions_api =
        Api::<DynamicObject>::all_with(client.clone(), &functions::host::api_resource());
    let started = Instant::now();
    let function = json!({"apiVersion": "pkg.crossplane.io/v1", "kind": "Function",
        "metadata": {"name": "bench-function", "annotations": {functions::ANNOTATION_COMMAND: serde_json::to_string(&command)?}},
        "spec": {"package": "xpkg.example.org/plinth/bench-function:v0"}});
    loop {
        if functions_api
            .patch("bench-function", &apply, &Patch::Apply(&function))
            .await
            .is_ok()
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the Function kind was not served within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    loop {
        if let Some(f) = functions_api.get_opt("bench-function").await? {
            if crate::startup::condition_true(&f, "Healthy") {
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the bench function was not Healthy within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Api::<DynamicObject>::all_with(
        client.clone(),
        &ar(
            "apiextensions.crossplane.io",
            "v1",
            "Composition",
            "compositions",
        ),
    )
    .patch(
        "bench-pipeline",
        &apply,
        &Patch::Apply(pipeline_composition()),
    )
    .await?;
    let calls_before = function_calls(&client).await?;
    let (seconds, writes, _) = apply_claims_of(&client, "pipe", count, limit, &mut usage, |name| {
        json!({"apiVersion": "bench.plinth.dev/v1alpha1", "kind": "Bench",
               "metadata": {"name": name, "namespace": "default"},
               "spec": {"compositionRef": {"name": "bench-pipeline"}, "parameters": {"size": 1, "names": ["a", "b", "c"]}}})
    })
    .await?;
    let calls = function_calls(&client).await? - calls_before;
    usage.sample();
    figures.push(Figure {
        name: format!("{count} claims through a two-step pipeline to all Ready"),
        value: seconds,
        unit: "s",
        target: None,
    });
    figures.push(Figure {
        name: "  time per claim".into(),
        value: 1000.0 * seconds / count as f64,
        unit: "ms",
        target: None,
    });
    figures.push(Figure {
        name: "  function calls per claim".into(),
        value: calls / count as f64,
        unit: "calls",
        target: None,
    });
    figures.push(Figure {
        name: "  store writes per claim".into(),
        value: writes / count as f64,
        unit: "writes",
        target: None,
    });
    figures.push(Figure {
        name: "  peak RSS, composition function processes".into(),
        value: usage
            .groups
            .get(crate::bench_usage::FUNCTIONS)
            .map_or(0.0, |(rss, _)| *rss),
        unit: "MiB",
        target: None,
    });
    figures.push(Figure {
        name: "  peak RSS, plinth up".into(),
        value: usage.groups.get("plinth up").map_or(0.0, |(rss, _)| *rss),
        unit: "MiB",
        target: None,
    });
    stop(&mut server).await;
    Ok(figures)
}
