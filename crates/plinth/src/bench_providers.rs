//! `plinth bench providers`: the provider RPC round trip over a unix socket,
//! and many nop managed resources from apply to Ready through a real
//! `plinth up`, with the time, memory and CPU it took. It measures; it does
//! not assert.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use hdrhistogram::Histogram;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use provider_sdk::handshake::{self, Handshake};
use provider_sdk::pb::{self, provider_client::ProviderClient};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::bench::{client, print_table, spawn_server_with, stop, write_json, Figure};
use crate::bench_usage::rss_mib;

#[derive(Args, Debug, Clone)]
pub struct ProviderBenchArgs {
    /// Sequential Observe calls for the round-trip measurement.
    #[arg(long, default_value_t = 20_000)]
    pub calls: usize,
    /// Nop managed resources to take from apply to Ready.
    #[arg(long, default_value_t = 1_000)]
    pub resources: usize,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the plinth executable")?;
    let path = exe.with_file_name(name);
    if !path.is_file() {
        bail!(
            "{} not found; build it with `cargo build --release -p {name}`",
            path.display()
        );
    }
    Ok(path)
}

pub async fn run(args: ProviderBenchArgs) -> Result<()> {
    let mut figures = Vec::new();
    rpc_round_trip(&args, &mut figures).await?;
    nop_to_ready(&args, &mut figures).await?;
    print_table(&figures);
    if let Some(path) = &args.json {
        write_json(path, &figures)?;
    }
    Ok(())
}

async fn rpc_round_trip(args: &ProviderBenchArgs, figures: &mut Vec<Figure>) -> Result<()> {
    eprintln!(
        "provider RPC round trip: {} sequential Observe calls to the nop provider",
        args.calls
    );
    let dir = tempfile::tempdir()?;
    let mut child = Command::new(sibling("plinth-provider-nop")?)
        .env(handshake::MAGIC_COOKIE_KEY, handshake::MAGIC_COOKIE_VALUE)
        .env(handshake::SOCKET_DIR_ENV, dir.path())
        .env("PLINTH_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the nop provider")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let line = BufReader::new(stdout)
        .lines()
        .next_line()
        .await?
        .context("no handshake")?;
    let hs = Handshake::parse(&line)?;
    let mut provider = ProviderClient::new(provider_sdk::client::connect(&hs.address).await?);
    provider
        .configure(pb::ConfigureRequest {
            name: "bench".into(),
            spec_json: b"{}".to_vec(),
            credentials: Default::default(),
        })
        .await?;
    let resource = pb::Resource {
        kind: "NopResource".into(),
        name: "absent".into(),
        uid: "bench".into(),
        external_name: String::new(),
        for_provider_json: b"{}".to_vec(),
        provider_config: "bench".into(),
        secrets: Default::default(),
        secret_seed: Vec::new(),
    };
    let mut hist = Histogram::<u64>::new(3)?;
    for _ in 0..1000 {
        provider
            .observe(pb::ObserveRequest {
                resource: Some(resource.clone()),
            })
            .await?;
    }
    let started = Instant::now();
    for _ in 0..args.calls {
        let t = Instant::now();
        provider
            .observe(pb::ObserveRequest {
                resource: Some(resource.clone()),
            })
            .await?;
        hist.record(t.elapsed().as_nanos() as u64)?;
    }
    let total = started.elapsed();
    figures.push(Figure {
        name: "RPC round trip p50 (unix socket)".into(),
        value: hist.value_at_quantile(0.5) as f64 / 1000.0,
        unit: "µs",
        target: Some("≤ 100 µs".into()),
    });
    figures.push(Figure {
        name: "RPC round trip p99".into(),
        value: hist.value_at_quantile(0.99) as f64 / 1000.0,
        unit: "µs",
        target: None,
    });
    figures.push(Figure {
        name: "RPC calls per second (one client)".into(),
        value: args.calls as f64 / total.as_secs_f64(),
        unit: "calls/s",
        target: None,
    });
    let _ = child.kill().await;
    Ok(())
}

/// CPU seconds (user + system) a process has used.
fn cpu_seconds_of(pid: u32) -> f64 {
    crate::bench_usage::cpu_seconds(pid, false)
}

fn provider_pid(status_address: &str) -> Option<u32> {
    status_address
        .rsplit('-')
        .next()?
        .trim_end_matches(".sock")
        .parse()
        .ok()
}

async fn wait_healthy(api: &Api<DynamicObject>, name: &str) -> Result<DynamicObject> {
    for _ in 0..300 {
        if let Ok(p) = api.get(name).await {
            if crate::startup::condition_true(&p, "Healthy") {
                return Ok(p);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("provider {name} did not become healthy within 30 s")
}

async fn nop_to_ready(args: &ProviderBenchArgs, figures: &mut Vec<Figure>) -> Result<()> {
    eprintln!(
        "{} nop resources from apply to Ready through plinth up",
        args.resources
    );
    let dir = tempfile::tempdir()?;
    let (mut server, kubeconfig, _) =
        spawn_server_with(dir.path(), &["--no-local-postgres"]).await?;
    let server_pid = server.id().context("no pid for plinth up")?;
    let client = client(&kubeconfig).await?;
    let providers: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("pkg.plinth.dev", "v1", "Provider"),
            "providers",
        ),
    );
    let nop = wait_healthy(&providers, "nop").await?;
    let nop_pid = nop
        .data
        .pointer("/status/address")
        .and_then(Value::as_str)
        .and_then(provider_pid);
    let configs: Api<DynamicObject> = Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("nop.plinth.dev", "v1alpha1", "ProviderConfig"),
            "providerconfigs",
        ),
    );
    let config: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "nop.plinth.dev/v1alpha1", "kind": "ProviderConfig", "metadata": {"name": "default"}, "spec": {}
    }))?;
    // `plinth up` makes this one itself; a server without it gets it here.
    match configs.create(&PostParams::default(), &config).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("nop.plinth.dev", "v1alpha1", "NopResource"),
        "nopresources",
    );
    let resources: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let cpu_before = cpu_seconds_of(server_pid) + nop_pid.map_or(0.0, cpu_seconds_of);
    let started = Instant::now();
    crate::bench::create_all(&resources, args.resources, |i| {
        json!({
            "apiVersion": "nop.plinth.dev/v1alpha1", "kind": "NopResource",
            "metadata": {"name": format!("nop-{i:05}")},
            "spec": {"forProvider": {"fields": {"index": i}}}
        })
    })
    .await?;
    let applied = started.elapsed();
    let mut peak_rss = 0.0f64;
    loop {
        let list = resources.list(&Default::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|o| crate::startup::condition_true(o, "Ready"))
            .count();
        peak_rss = peak_rss.max(rss_mib(server_pid) + nop_pid.map_or(0.0, rss_mib));
        if ready >= args.resources {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!(
                "only {ready} of {} resources became Ready within 10 minutes",
                args.resources
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let all_ready = started.elapsed();
    let cpu = cpu_seconds_of(server_pid) + nop_pid.map_or(0.0, cpu_seconds_of) - cpu_before;
    let n = args.resources;
    figures.push(Figure {
        name: format!("{n} nop resources: all created"),
        value: applied.as_secs_f64(),
        unit: "s",
        target: None,
    });
    figures.push(Figure {
        name: format!("{n} nop resources: apply to all Ready"),
        value: all_ready.as_secs_f64(),
        unit: "s",
        target: None,
    });
    figures.push(Figure {
        name: "  peak RSS (plinth up + nop provider)".into(),
        value: peak_rss,
        unit: "MiB",
        target: None,
    });
    figures.push(Figure {
        name: "  CPU used (plinth up + nop provider)".into(),
        value: cpu,
        unit: "CPU s",
        target: None,
    });
    stop(&mut server).await;
    Ok(())
}
