//! The benchmark harness: `plinth bench api` starts a real `plinth up`
//! process in a temporary directory, drives it with `kube::Client`, prints a
//! table and optionally writes the figures as JSON. It measures; it does not
//! assert. Targets are printed beside the figures for comparison.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use futures::{StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DynamicObject, ListParams, PostParams, WatchEvent, WatchParams};
use kube::Client;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Args, Debug, Clone)]
pub struct ApiBenchArgs {
    /// Objects stored for the list and restart measurements.
    #[arg(long, default_value_t = 40_000)]
    pub objects: usize,
    /// Concurrent clients for the create / get / update phases.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Operations per create / get / update phase.
    #[arg(long, default_value_t = 20_000)]
    pub ops: usize,
    /// Concurrent watchers for the fan-out phase.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// Changes each watcher must see in the fan-out phase.
    #[arg(long, default_value_t = 500)]
    pub watch_events: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One measured figure.
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub target: Option<String>,
}

/// The p50 and p99 of a histogram of milliseconds, as two figures named
/// `what, p50` and `what, p99`; `p50_target` is the p50's target.
pub fn percentiles(what: &str, hist: &Histogram<u64>, p50_target: Option<&str>) -> [Figure; 2] {
    [(0.5, "p50", p50_target), (0.99, "p99", None)].map(|(quantile, label, target)| Figure {
        name: format!("{what}, {label}"),
        value: hist.value_at_quantile(quantile) as f64,
        unit: "ms",
        target: target.map(String::from),
    })
}

pub async fn run_api(args: ApiBenchArgs) -> Result<()> {
    let dir = tempfile::tempdir().context("cannot create a temporary data directory")?;
    let mut figures = Vec::new();

    let (mut server, kubeconfig, _) = spawn_server(dir.path()).await?;
    let client = client(&kubeconfig).await?;
    for ns in ["bench-rw", "bench-list", "bench-watch"] {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let body: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
        namespaces.create(&PostParams::default(), &body).await?;
    }

    eprintln!(
        "create / get / update: {} ops each, {} clients",
        args.ops, args.clients
    );
    let rw: Api<ConfigMap> = Api::namespaced(client.clone(), "bench-rw");
    for phase in ["create", "get", "update"] {
        let (rate, hist) = phase_run(&rw, phase, args.ops, args.clients).await?;
        figures.push(Figure {
            name: format!("{phase} throughput"),
            value: rate,
            unit: "ops/s",
            target: (phase != "get").then(|| "≥ 10000 writes/s".to_string()),
        });
        figures.push(Figure {
            name: format!("{phase} p50"),
            value: hist.value_at_quantile(0.50) as f64 / 1000.0,
            unit: "ms",
            target: None,
        });
        figures.push(Figure {
            name: format!("{phase} p99"),
            value: hist.value_at_quantile(0.99) as f64 / 1000.0,
            unit: "ms",
            target: (phase != "get").then(|| "≤ 10 ms".to_string()),
        });
    }

    let fill = args.objects.saturating_sub(args.ops);
    eprintln!("filling {fill} more objects for the list and restart phases");
    let list_api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench-list");
    phase_run(&list_api, "create", fill, args.clients).await?;
    // The list as the server serves it: every byte of the response in.
    let started = Instant::now();
    let request = http::Request::get("/api/v1/configmaps")
        .body(Vec::new())
        .context("building the list request")?;
    let body = client.request_text(request).await?;
    let served_ms = started.elapsed().as_secs_f64() * 1000.0;
    // And as a kube-rs client sees it, parsed into typed objects too.
    let all: Api<ConfigMap> = Api::all(client.clone());
    let started = Instant::now();
    let listed = all.list(&ListParams::default()).await?;
    let list_ms = started.elapsed().as_secs_f64() * 1000.0;
    figures.push(Figure {
        name: format!(
            "list {} objects, served ({} MiB)",
            listed.items.len(),
            body.len() >> 20
        ),
        value: served_ms,
        unit: "ms",
        target: Some("≤ 500 ms".into()),
    });
    figures.push(Figure {
        name: format!("list {} objects, parsed by kube-rs", listed.items.len()),
        value: list_ms,
        unit: "ms",
        target: None,
    });

    eprintln!(
        "watch fan-out: {} watchers × {} events",
        args.watchers, args.watch_events
    );
    let (delivered_rate, fanout_hist, fanout_total) =
        fanout(&client, args.watchers, args.watch_events).await?;
    figures.push(Figure {
        name: format!("watch fan-out to {} watchers", args.watchers),
        value: delivered_rate,
        unit: "events/s delivered",
        target: None,
    });
    figures.push(Figure {
        name: "watch fan-out total".into(),
        value: fanout_total * 1000.0,
        unit: "ms",
        target: None,
    });
    figures.push(Figure {
        name: "watch delivery p99".into(),
        value: fanout_hist.value_at_quantile(0.99) as f64 / 1000.0,
        unit: "ms",
        target: None,
    });

    let stored = listed.items.len();
    drop(listed);
    stop(&mut server).await;
    eprintln!("restarting with {stored} objects stored");
    let (mut server, kubeconfig, ready) = spawn_server(dir.path()).await?;
    figures.push(Figure {
        name: format!("restart to serving, {stored} objects"),
        value: ready.as_secs_f64() * 1000.0,
        unit: "ms",
        target: Some("≤ 2000 ms".into()),
    });
    let client = crate::bench::client(&kubeconfig).await?;
    let started = Instant::now();
    Api::<ConfigMap>::all(client)
        .list(&ListParams::default().limit(1))
        .await?;
    figures.push(Figure {
        name: "first request after restart".into(),
        value: started.elapsed().as_secs_f64() * 1000.0,
        unit: "ms",
        target: None,
    });
    stop(&mut server).await;

    print_table(&figures);
    if let Some(path) = &args.json {
        write_json(path, &figures)?;
    }
    Ok(())
}

async fn phase_run(
    api: &Api<ConfigMap>,
    phase: &str,
    ops: usize,
    clients: usize,
) -> Result<(f64, Histogram<u64>)> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1) {
        let api = api.clone();
        let next = next.clone();
        let phase = phase.to_string();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3)?;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= ops {
                    break;
                }
                let name = format!("obj-{i}");
                let t = Instant::now();
                match phase.as_str() {
                    "create" => {
                        let cm: ConfigMap = serde_json::from_value(json!({
                            "metadata": {"name": name, "labels": {"bench": "true"}},
                            "data": {"index": i.to_string(), "payload": "x".repeat(200)},
                        }))?;
                        api.create(&PostParams::default(), &cm).await?;
                    }
                    "get" => {
                        api.get(&format!("obj-{i}")).await?;
                    }
                    _ => {
                        // Unconditional replace (no resourceVersion), so the
                        // phase measures writes only.
                        let cm: ConfigMap = serde_json::from_value(json!({
                            "metadata": {"name": format!("obj-{i}"), "labels": {"bench": "true"}},
                            "data": {"index": i.to_string(), "payload": "y".repeat(200)},
                        }))?;
                        api.replace(&format!("obj-{i}"), &PostParams::default(), &cm)
                            .await?;
                    }
                }
                hist.record(t.elapsed().as_micros() as u64)?;
            }
            anyhow::Ok(hist)
        }));
    }
    let mut total = Histogram::<u64>::new(3)?;
    for task in tasks {
        total.add(task.await??)?;
    }
    let rate = ops as f64 / started.elapsed().as_secs_f64();
    Ok((rate, total))
}

async fn fanout(
    client: &Client,
    watchers: usize,
    events: usize,
) -> Result<(f64, Histogram<u64>, f64)> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench-watch");
    let version = api
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let origin = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let api = api.clone();
        let version = version.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new(3)?;
            let mut stream = api
                .watch(&WatchParams::default().timeout(290), &version)
                .await?
                .boxed();
            let mut seen = 0;
            while seen < events {
                match stream.try_next().await? {
                    Some(WatchEvent::Added(cm)) => {
                        let sent: u64 = cm
                            .data
                            .as_ref()
                            .and_then(|d| d.get("sent_us"))
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                        let now = origin.elapsed().as_micros() as u64;
                        hist.record(now.saturating_sub(sent))?;
                        seen += 1;
                    }
                    Some(WatchEvent::Error(e)) => bail!("watch failed: {}", e.message),
                    Some(_) => {}
                    None => bail!("watch ended after {seen} of {events} events"),
                }
            }
            anyhow::Ok(hist)
        }));
    }
    // Let every watcher connect before the first change.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    for i in 0..events {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": format!("w-{i}")},
            "data": {"sent_us": origin.elapsed().as_micros().to_string()},
        }))?;
        api.create(&PostParams::default(), &cm).await?;
    }
    let mut total = Histogram::<u64>::new(3)?;
    for task in tasks {
        total.add(task.await??)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(((watchers * events) as f64 / elapsed, total, elapsed))
}

/// Starts `plinth up` on a free loopback port; returns the child, its
/// kubeconfig and how long it took to print its ready line.
pub async fn spawn_server(dir: &Path) -> Result<(Child, PathBuf, Duration)> {
    spawn_server_with(dir, &["--no-bundled-providers"]).await
}

/// Starts `plinth up` with extra flags; returns it, its kubeconfig and how
/// long it took to become ready.
/// Runs the benchmarks' `plinth up` under a profiler (see `spawn_server_with`).
pub const SERVER_WRAPPER_ENV: &str = "PLINTH_BENCH_SERVER_WRAPPER";

pub async fn spawn_server_with(dir: &Path, extra: &[&str]) -> Result<(Child, PathBuf, Duration)> {
    spawn_server_env(dir, extra, &[]).await
}

/// As [`spawn_server_with`], with environment variables for `plinth up`
/// (and the providers it starts, which inherit them).
pub async fn spawn_server_env(
    dir: &Path,
    extra: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> Result<(Child, PathBuf, Duration)> {
    let exe = std::env::current_exe().context("cannot find the plinth executable")?;
    let started = Instant::now();
    // A profiler to run `plinth up` under, such as `heaptrack -o FILE` or
    // `perf record -g -o FILE --`: its words, then plinth's.
    let wrapper: Vec<String> = std::env::var(SERVER_WRAPPER_ENV)
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut c = Command::new(program);
            c.args(args).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = command
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        // Its own process group, so `stop` reaches a profiler's child too.
        .process_group(0)
        .spawn()
        .context("cannot start plinth up")?;
    let stdout = child.stdout.take().context("no stdout from plinth up")?;
    let mut lines = BufReader::new(stdout).lines();
    // The ready line; a profiler wrapped around it may print lines first.
    let ready_line = async {
        while let Some(line) = lines.next_line().await? {
            if let Some(path) = line.split("kubeconfig: ").nth(1) {
                return Ok(path.trim().to_string());
            }
        }
        anyhow::bail!("plinth up exited before it was ready")
    };
    let path = tokio::time::timeout(Duration::from_secs(60), ready_line)
        .await
        .context("plinth up did not become ready within 60 s")??;
    let ready = started.elapsed();
    Ok((child, PathBuf::from(path), ready))
}

/// Creates `count` objects, `body(i)` each, 16 requests at a time.
pub async fn create_all(
    api: &Api<DynamicObject>,
    count: usize,
    body: impl Fn(usize) -> serde_json::Value,
) -> Result<()> {
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let body = body(i);
            async move {
                let object: DynamicObject = serde_json::from_value(body)?;
                api.create(&PostParams::default(), &object).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>>>()?;
    Ok(())
}

pub async fn client(kubeconfig: &Path) -> Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .context("cannot load the kubeconfig")?;
    Client::try_from(config).context("cannot build a client")
}

pub async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        // The whole group: `plinth up` and, under a profiler, the profiler.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", "--", &format!("-{pid}")])
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// Writes the figures as a JSON array of {name, value, unit, target}.
pub fn write_json(path: &Path, figures: &[Figure]) -> Result<()> {
    let rows: Vec<serde_json::Value> = figures
        .iter()
        .map(|f| json!({"name": f.name, "value": f.value, "unit": f.unit, "target": f.target}))
        .collect();
    std::fs::write(path, serde_json::to_string_pretty(&rows)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("figures written to {}", path.display());
    Ok(())
}

pub fn print_table(figures: &[Figure]) {
    println!(
        "{:<42} {:>14}  {:<20} target",
        "measurement", "value", "unit"
    );
    for f in figures {
        println!(
            "{:<42} {:>14.2}  {:<20} {}",
            f.name,
            f.value,
            f.unit,
            f.target.as_deref().unwrap_or("")
        );
    }
}
