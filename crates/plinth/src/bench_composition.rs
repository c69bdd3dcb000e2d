//! `plinth bench composition`: claims from apply to Ready through a real
//! `plinth up`: one claim at a time (p50/p99, nop and local), a burst of
//! claims, and many nop claims each composing three managed resources, with
//! the memory and CPU of every Plinth process and the idle CPU afterwards.
//! It measures; it does not assert.

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
    /// Nop claims (three managed resources each) for the scale measurement.
    #[arg(long, default_value_t = 10_000)]
    pub claims: usize,
    /// Seconds of idle CPU measurement after the scale phase.
    #[arg(long, default_value_t = 60)]
    pub idle_seconds: u64,
    /// Skip the local (PostgreSQL) latency measurement.
    #[arg(long)]
    pub skip_local: bool,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
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
               "parameters": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}}}]}
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

pub async fn run(args: CompositionBenchArgs) -> Result<()> {
    let limit = Duration::from_secs(args.timeout);
    let dir = tempfile::tempdir()?;
    let rate = args.max_reconcile_rate.to_string();
    let mut extra: Vec<&str> = vec!["--max-reconcile-rate", &rate];
    if args.skip_local {
        extra.push("--no-local-postgres");
    }
    let (mut server, kubeconfig, _) = spawn_server_with(dir.path(), &extra).await?;
    let server_pid = server.id().context("no pid for plinth up")?;
    let client = client(&kubeconfig).await?;
    let mut usage = Usage::new(server_pid, dir.path().to_path_buf());
    let mut figures = Vec::new();

    // Set-up: the nop ProviderConfig and a nop-backed XRD composing three resources.
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
    let started = Instant::now();
    loop {
        let config = json!({"apiVersion": "nop.plinth.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": "default"}, "spec": {}});
        if nop_configs
            .patch("default", &apply, &Patch::Apply(config))
            .await
            .is_ok()
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the nop provider did not register within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let xrd: Value = serde_json::from_str(BENCH_XRD)?;
    xrds.patch("xbenches.bench.plinth.dev", &apply, &Patch::Apply(xrd))
        .await?;
    compositions
        .patch("bench-nop", &apply, &Patch::Apply(bench_composition()))
        .await?;
    let bench_ar = ar("bench.plinth.dev", "v1alpha1", "Bench", "benches");
    let benches: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &bench_ar);
    let started = Instant::now();
    while benches.list(&Default::default()).await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the Bench claim kind was not served within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bench_claim = |name: String| json!({"apiVersion": "bench.plinth.dev/v1alpha1", "kind": "Bench", "metadata": {"name": name, "namespace": "default"}, "spec": {"parameters": {"size": 1}}});

    // 1. One claim at a time.
    eprintln!("1. one claim to Ready, {} runs per backend", args.runs);
    let hist = latency(
        &client,
        &bench_ar,
        |i| bench_claim(format!("single-{i}")),
        args.runs,
        limit,
    )
    .await?;
    usage.sample();
    figures.push(Figure {
        name: "one nop claim to Ready, p50".into(),
        value: hist.value_at_quantile(0.5) as f64,
        unit: "ms",
        target: Some("≤ 300 ms".into()),
    });
    figures.push(Figure {
        name: "one nop claim to Ready, p99".into(),
        value: hist.value_at_quantile(0.99) as f64,
        unit: "ms",
        target: None,
    });
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
                figures.push(Figure {
                    name: "one local PostgreSQL claim to Ready, p50".into(),
                    value: hist.value_at_quantile(0.5) as f64,
                    unit: "ms",
                    target: Some("≤ 300 ms".into()),
                });
                figures.push(Figure {
                    name: "one local PostgreSQL claim to Ready, p99".into(),
                    value: hist.value_at_quantile(0.99) as f64,
                    unit: "ms",
                    target: None,
                });
            }
            Err(e) => eprintln!("   local PostgreSQL claims not measured: {e:#}"),
        }
        usage.sample();
    }

    // 2 and 3. Bursts of claims.
    for (label, count, target) in [
        ("2. burst", args.burst, "≤ 2 s"),
        ("3. scale", args.claims, "≤ 60 s"),
    ] {
        if count == 0 {
            continue;
        }
        eprintln!("{label}: {count} nop claims (3 managed resources each) to all Ready");
        let prefix = if label.starts_with('2') {
            "burst"
        } else {
            "scale"
        };
        let revision_before = store_revision(&benches).await?;
        let started = Instant::now();
        futures::stream::iter(0..count)
            .map(|i| {
                let benches = benches.clone();
                let body = bench_claim(format!("{prefix}-{i:05}"));
                async move {
                    let body: DynamicObject = serde_json::from_value(body)?;
                    benches.create(&PostParams::default(), &body).await?;
                    anyhow::Ok(())
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<Vec<_>>>()?;
        wait_all_ready(&benches, prefix, count, started, limit, &mut usage).await?;
        figures.push(Figure {
            name: format!("{count} nop claims to all Ready"),
            value: started.elapsed().as_secs_f64(),
            unit: "s",
            target: Some(target.into()),
        });
        // Every write is one store revision, whatever it wrote.
        let writes = store_revision(&benches)
            .await?
            .saturating_sub(revision_before);
        figures.push(Figure {
            name: format!("  store writes per claim ({count} claims)"),
            value: writes as f64 / count as f64,
            unit: "writes",
            target: None,
        });
    }

    figures.push(Figure {
        name: "peak RSS, every Plinth process".into(),
        value: usage.peak_rss,
        unit: "MiB",
        target: Some("≤ 250 MiB".into()),
    });
    usage.sample();
    for label in &usage.order {
        let (rss, _) = usage.groups[label];
        figures.push(Figure {
            name: format!("  peak RSS, {label}"),
            value: rss,
            unit: "MiB",
            target: None,
        });
    }
    figures.push(Figure {
        name: "CPU so far, every Plinth process".into(),
        value: usage.total_cpu(),
        unit: "CPU s",
        target: None,
    });
    for label in &usage.order {
        let (_, cpu) = usage.groups[label];
        figures.push(Figure {
            name: format!("  CPU, {label}"),
            value: cpu,
            unit: "CPU s",
            target: None,
        });
    }

    // 5. Idle.
    if args.idle_seconds > 0 {
        eprintln!("5. idle CPU over {} s", args.idle_seconds);
        let before = usage.total_cpu();
        tokio::time::sleep(Duration::from_secs(args.idle_seconds)).await;
        let used = usage.total_cpu() - before;
        figures.push(Figure {
            name: format!("idle CPU at {} claims", args.claims + args.burst),
            value: 100.0 * used / args.idle_seconds as f64,
            unit: "% of a core",
            target: Some("≤ 2 %".into()),
        });
    }
    stop(&mut server).await;
    print_table(&figures);
    if let Some(path) = &args.json {
        write_json(path, &figures)?;
    }
    Ok(())
}
