//! `plinth bench aws`: built-in `PostgreSQLInstance` claims on the AWS
//! Composition, against moto standing in for AWS: one claim at a time
//! (apply to Ready, p50/p99), a burst of claims, and the AWS provider's
//! memory. It measures; it does not assert. It never calls real AWS: without
//! `--endpoint` it runs `moto_server` itself, on 127.0.0.1.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::bench::{client, print_table, spawn_server_with, stop, write_json, Figure};
use crate::bench_composition::{ar, latency, wait_all_ready};
use crate::bench_usage::Usage;

#[derive(Args, Debug, Clone)]
pub struct AwsBenchArgs {
    /// An AWS-compatible endpoint such as a moto server you run. Without it
    /// the bench starts `moto_server` (from PATH, or ./.venv/bin) on 127.0.0.1.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// The region the ProviderConfig names.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Sequential single claims for the latency measurement.
    #[arg(long, default_value_t = 20)]
    pub runs: usize,
    /// Claims applied at once for the burst measurement.
    #[arg(long, default_value_t = 100)]
    pub burst: usize,
    /// Give up on a phase after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// A moto server the bench runs for itself.
struct Moto {
    child: Child,
    url: String,
}

impl Moto {
    async fn start() -> Result<Moto> {
        let program = which("moto_server")
            .or_else(|| {
                let venv = PathBuf::from(".venv/bin/moto_server");
                venv.is_file().then_some(venv)
            })
            .context("moto_server is not on PATH: install moto[server] (pip install 'moto[server]'), run ./scripts/test.sh once (it makes .venv), or pass --endpoint")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("moto_server did not listen on {url} within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Moto { child, url })
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(program))
        .find(|path| path.is_file())
}

/// The credentials Secret and the `default` ProviderConfig for `endpoint`.
async fn configure(client: &kube::Client, endpoint: &str, region: &str) -> Result<()> {
    let apply = PatchParams::apply("plinth-bench").force();
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "plinth-system");
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "bench-aws", "namespace": "plinth-system"},
        "stringData": {"access_key_id": "AKIAPLINTHBENCH00000", "secret_access_key": "plinth-bench"}
    });
    secrets
        .patch("bench-aws", &apply, &Patch::Apply(secret))
        .await?;
    let configs = Api::<DynamicObject>::all_with(
        client.clone(),
        &ar(
            "aws.plinth.dev",
            "v1alpha1",
            "ProviderConfig",
            "providerconfigs",
        ),
    );
    let config = json!({
        "apiVersion": "aws.plinth.dev/v1alpha1", "kind": "ProviderConfig",
        "metadata": {"name": "default"},
        "spec": {"region": region, "endpoint": endpoint,
                 "credentials": {"source": "Secret", "secretRef": {"namespace": "plinth-system", "name": "bench-aws"}}}
    });
    let started = Instant::now();
    while configs
        .patch("default", &apply, &Patch::Apply(config.clone()))
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the AWS provider did not register its ProviderConfig within 60 s; is plinth-provider-aws beside plinth?");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

fn claim(name: &str) -> Value {
    json!({"apiVersion": "platform.plinth.dev/v1alpha1", "kind": "PostgreSQLInstance",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"compositionSelector": {"matchLabels": {"provider": "aws"}},
                    "parameters": {"size": "small", "storageGB": 20},
                    "writeConnectionSecretToRef": {"name": name}}})
}

pub async fn run(args: AwsBenchArgs) -> Result<()> {
    let limit = Duration::from_secs(args.timeout);
    let mut moto = match &args.endpoint {
        Some(_) => None,
        None => Some(Moto::start().await?),
    };
    let endpoint = match (&args.endpoint, &moto) {
        (Some(url), _) => url.clone(),
        (None, Some(m)) => m.url.clone(),
        (None, None) => unreachable!("moto runs when no endpoint is given"),
    };
    eprintln!("AWS API at {endpoint}");
    let dir = tempfile::tempdir()?;
    let (mut server, kubeconfig, _) =
        spawn_server_with(dir.path(), &["--no-local-postgres"]).await?;
    let server_pid = server.id().context("no pid for plinth up")?;
    let client = client(&kubeconfig).await?;
    let mut usage = Usage::new(server_pid, dir.path().to_path_buf());
    configure(&client, &endpoint, &args.region).await?;
    let claim_ar = ar(
        "platform.plinth.dev",
        "v1alpha1",
        "PostgreSQLInstance",
        "postgresqlinstances",
    );
    let claims: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &claim_ar);
    let started = Instant::now();
    while claims.list(&Default::default()).await.is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the built-in PostgreSQLInstance claim kind was not served within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut figures = Vec::new();

    eprintln!("1. one RDS claim to Ready, {} runs", args.runs);
    let hist = latency(
        &client,
        &claim_ar,
        |i| claim(&format!("single-{i}")),
        args.runs,
        limit,
    )
    .await?;
    usage.sample();
    figures.extend(crate::bench::percentiles(
        "one RDS claim to Ready",
        &hist,
        None,
    ));

    if args.burst > 0 {
        eprintln!("2. {} RDS claims at once to all Ready", args.burst);
        let started = Instant::now();
        crate::bench::create_all(&claims, args.burst, |i| claim(&format!("burst-{i:04}"))).await?;
        wait_all_ready(&claims, "burst-", args.burst, started, limit, &mut usage).await?;
        figures.push(Figure {
            name: format!("{} RDS claims to all Ready", args.burst),
            value: started.elapsed().as_secs_f64(),
            unit: "s",
            target: None,
        });
    }

    usage.sample();
    for label in &usage.order {
        let (rss, cpu) = usage.groups[label];
        figures.push(Figure {
            name: format!("peak RSS, {label}"),
            value: rss,
            unit: "MiB",
            target: None,
        });
        figures.push(Figure {
            name: format!("CPU, {label}"),
            value: cpu,
            unit: "CPU s",
            target: None,
        });
    }
    stop(&mut server).await;
    if let Some(moto) = moto.as_mut() {
        let _ = moto.child.kill().await;
    }
    print_table(&figures);
    if let Some(path) = &args.json {
        write_json(path, &figures)?;
    }
    Ok(())
}
