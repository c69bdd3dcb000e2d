//! `plinth bench chaos`: claims on the nop provider (whose calls fail at a
//! given rate) and on the local PostgreSQL provider, while `plinth up` is
//! killed with SIGKILL at random moments and started again. Afterwards
//! every claim must be Ready, the external resources must equal what the
//! claims composed, each created once and none left over, and every claim
//! the API acknowledged must still be there. It prints what it found; any
//! broken promise makes it exit non-zero.
//!
//! The nop provider keeps a journal (`PLINTH_NOP_JOURNAL`) of what it
//! created and deleted, which is how a restarted provider remembers its
//! resources and how this harness counts them. PostgreSQL databases are
//! counted with `psql`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::Client;
use rand::Rng;
use serde_json::{json, Value};
use tokio::process::Child;

use crate::bench::{client, print_table, spawn_server_env, stop, write_json, Figure};
use crate::bench_composition::{ar, install_nop_api, is_ready};

#[derive(Args, Debug, Clone)]
pub struct ChaosBenchArgs {
    /// Claims on the nop provider, each composing three NopResources.
    #[arg(long, default_value_t = 500)]
    pub nop_claims: usize,
    /// The chance that any nop provider call fails.
    #[arg(long, default_value_t = 0.02)]
    pub failure_rate: f64,
    /// PostgreSQLInstance claims on the local provider (0 skips PostgreSQL).
    #[arg(long, default_value_t = 50)]
    pub local_claims: usize,
    /// An existing PostgreSQL server for the local provider, passed to
    /// `plinth up --local-postgres-url` [default: the one plinth up runs].
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// How many times `plinth up` is killed with SIGKILL.
    #[arg(long, default_value_t = 20)]
    pub kills: usize,
    /// The longest wait between two kills, in milliseconds (each wait is
    /// drawn uniformly from a tenth of it up to it).
    #[arg(long, default_value_t = 6000)]
    pub max_kill_interval_ms: u64,
    /// How long everything may take to converge after the last kill, in seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

const CHAOS_XRD: &str = r#"{
  "apiVersion": "apiextensions.crossplane.io/v1", "kind": "CompositeResourceDefinition",
  "metadata": {"name": "xchaoses.chaos.plinth.dev"},
  "spec": {"group": "chaos.plinth.dev", "names": {"kind": "XChaos", "plural": "xchaoses"},
           "claimNames": {"kind": "Chaos", "plural": "chaoses"},
           "defaultCompositionRef": {"name": "chaos-nop"},
           "versions": [{"name": "v1alpha1", "served": true, "referenceable": true,
             "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
               "parameters": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}}}]}
}"#;

fn chaos_composition(failure_rate: f64) -> Value {
    let resource = |name: &str| {
        json!({"name": name,
               "base": {"apiVersion": "nop.plinth.dev/v1alpha1", "kind": "NopResource", "spec": {"forProvider": {"failureRate": failure_rate}}},
               "patches": [{"fromFieldPath": "spec.parameters.size", "toFieldPath": "spec.forProvider.fields.size"}]})
    };
    json!({"apiVersion": "apiextensions.crossplane.io/v1", "kind": "Composition",
           "metadata": {"name": "chaos-nop"},
           "spec": {"compositeTypeRef": {"apiVersion": "chaos.plinth.dev/v1alpha1", "kind": "XChaos"},
                    "resources": [resource("a"), resource("b"), resource("c")]}})
}

fn nop_claim(name: &str) -> Value {
    json!({"apiVersion": "chaos.plinth.dev/v1alpha1", "kind": "Chaos",
           "metadata": {"name": name, "namespace": "default"}, "spec": {"parameters": {"size": 1}}})
}

fn local_claim(name: &str) -> Value {
    json!({"apiVersion": "platform.plinth.dev/v1alpha1", "kind": "PostgreSQLInstance",
           "metadata": {"name": name, "namespace": "default"},
           "spec": {"parameters": {"size": "small", "storageGB": 1, "version": "15"},
                    "writeConnectionSecretToRef": {"name": format!("{name}-db")}}})
}

fn chaos_claims(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "default",
        &ar("chaos.plinth.dev", "v1alpha1", "Chaos", "chaoses"),
    )
}

fn local_claims(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "default",
        &ar(
            "platform.plinth.dev",
            "v1alpha1",
            "PostgreSQLInstance",
            "postgresqlinstances",
        ),
    )
}

/// One `plinth up` at a time on the harness's data directory.
struct Server {
    dir: PathBuf,
    extra: Vec<String>,
    journal: PathBuf,
    child: Option<Child>,
    client: Option<Client>,
}

impl Server {
    async fn start(&mut self) -> Result<Client> {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        // The nop provider inherits the journal's path from plinth up.
        let env = [(JOURNAL_ENV, self.journal.as_os_str())];
        let (child, kubeconfig, _) = spawn_server_env(&self.dir, &extra, &env).await?;
        let client = client(&kubeconfig).await?;
        self.child = Some(child);
        self.client = Some(client.clone());
        Ok(client)
    }

    /// SIGKILL: nothing is flushed, nothing is told.
    async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
        self.client = None;
    }
}

/// The variable the nop provider reads its journal's path from.
const JOURNAL_ENV: &str = "PLINTH_NOP_JOURNAL";

/// Creates claims named `NAME` from `names` through whichever server is up,
/// recording those the API acknowledged. A create the kill cut off is
/// neither acknowledged nor retried; it may or may not have been stored.
async fn create_claims(
    api: &Api<DynamicObject>,
    names: &[String],
    make: fn(&str) -> Value,
) -> Vec<String> {
    futures::stream::iter(names.iter().cloned())
        .map(|name| {
            let api = api.clone();
            async move {
                let object: DynamicObject = serde_json::from_value(make(&name)).ok()?;
                match api.create(&PostParams::default(), &object).await {
                    Ok(_) => Some(name),
                    // Stored before a kill that lost the answer, and tried again.
                    Err(kube::Error::Api(s)) if s.code == 409 => None,
                    Err(_) => None,
                }
            }
        })
        .buffer_unordered(16)
        .filter_map(|name| async move { name })
        .collect()
        .await
}

async fn names_of(api: &Api<DynamicObject>) -> Result<BTreeSet<String>> {
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect())
}

async fn not_ready(api: &Api<DynamicObject>) -> Result<Vec<String>> {
    Ok(api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|o| !is_ready(o))
        .filter_map(|o| o.metadata.name)
        .collect())
}

/// What the nop provider's journal says: creates per name, and what is live.
fn read_journal(path: &Path) -> Result<(BTreeMap<String, usize>, BTreeSet<String>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut creates = BTreeMap::new();
    let mut live = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let entry: Value = serde_json::from_str(line)
            .with_context(|| format!("line {} of the nop journal is not JSON", n + 1))?;
        let name = entry["name"].as_str().unwrap_or("").to_string();
        match entry["op"].as_str() {
            Some("create") => {
                *creates.entry(name.clone()).or_insert(0) += 1;
                live.insert(name);
            }
            Some("delete") => {
                live.remove(&name);
            }
            _ => {}
        }
    }
    Ok((creates, live))
}

/// Databases in the PostgreSQL server at `url` whose names start with `prefix`.
async fn databases(url: &str, prefix: &str) -> Result<BTreeSet<String>> {
    let out = tokio::process::Command::new("psql")
        .args([
            url,
            "-At",
            "-c",
            &format!("SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%'"),
        ])
        .output()
        .await
        .context("cannot run psql (install the PostgreSQL client)")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// The URL of the PostgreSQL server `plinth up` runs for `dir`.
fn embedded_postgres_url(dir: &Path) -> Result<String> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .map(|s| s.trim().to_string())
            .with_context(|| format!("cannot read {} in the data directory", name))
    };
    Ok(format!(
        "postgresql://postgres:{}@127.0.0.1:{}/postgres",
        read("postgres-password")?,
        read("postgres-port")?
    ))
}

async fn install(client: &Client, failure_rate: f64) -> Result<()> {
    let xrd: Value = serde_json::from_str(CHAOS_XRD)?;
    install_nop_api(
        client,
        xrd,
        chaos_composition(failure_rate),
        &chaos_claims(client),
    )
    .await
}

pub async fn run(args: ChaosBenchArgs) -> Result<()> {
    if !(0.0..=1.0).contains(&args.failure_rate) {
        bail!(
            "--failure-rate: expected a chance between 0 and 1, got {}",
            args.failure_rate
        );
    }
    let dir = tempfile::tempdir().context("cannot make a data directory")?;
    let journal = dir.path().join("nop-journal.jsonl");
    let mut extra = vec!["--max-reconcile-rate".to_string(), "1000".to_string()];
    match (&args.postgres_url, args.local_claims) {
        (_, 0) => extra.push("--no-local-postgres".into()),
        (Some(url), _) => extra.extend(["--local-postgres-url".to_string(), url.clone()]),
        (None, _) => {}
    }
    let mut server = Server {
        dir: dir.path().to_path_buf(),
        extra,
        journal: journal.clone(),
        child: None,
        client: None,
    };
    let started = Instant::now();
    let client = server.start().await?;
    install(&client, args.failure_rate).await?;

    // Names of this run's own, so runs against one PostgreSQL server do
    // not meet each other's databases.
    let run_id = format!("{:04x}", rand::rng().random::<u16>());
    let local_prefix = format!("chaos-pg-{run_id}-");
    let nop_names: Vec<String> = (0..args.nop_claims)
        .map(|i| format!("chaos-nop-{i:04}"))
        .collect();
    let local_names: Vec<String> = (0..args.local_claims)
        .map(|i| format!("{local_prefix}{i:03}"))
        .collect();
    // Claims go in over the whole kill phase, in as many waves as kills,
    // so creates meet kills.
    let waves = args.kills.max(1);
    let chunk = |names: &[String], wave: usize| -> Vec<String> {
        let per = names.len().div_ceil(waves);
        names.iter().skip(wave * per).take(per).cloned().collect()
    };
    let mut acknowledged_nop = Vec::new();
    let mut acknowledged_local = Vec::new();
    let mut kill_moments = Vec::new();
    let mut rng = rand::rng();
    for wave in 0..waves {
        let Some(client) = server.client.clone() else {
            bail!("no server is up");
        };
        let wave_nop = chunk(&nop_names, wave);
        let wave_local = chunk(&local_names, wave);
        let nop_api = chaos_claims(&client);
        let local_api = local_claims(&client);
        let creating = async {
            let nop = create_claims(&nop_api, &wave_nop, nop_claim).await;
            let local = create_claims(&local_api, &wave_local, local_claim).await;
            (nop, local)
        };
        let wait = Duration::from_millis(
            rng.random_range(args.max_kill_interval_ms / 10..=args.max_kill_interval_ms.max(1)),
        );
        // The kill lands wherever the creates and the controllers are.
        let (nop, local) = tokio::select! {
            created = creating => {
                tokio::time::sleep(wait).await;
                created
            }
            _ = tokio::time::sleep(wait) => (Vec::new(), Vec::new()),
        };
        acknowledged_nop.extend(nop);
        acknowledged_local.extend(local);
        if wave < args.kills {
            kill_moments.push(started.elapsed().as_secs_f64());
            server.kill9().await;
            server.start().await?;
        }
    }
    // Whatever a cut-off wave did not create is created now, on a server
    // left running.
    let client = server.client.clone().context("no server is up")?;
    let nop_api = chaos_claims(&client);
    let local_api = local_claims(&client);
    let present_nop = names_of(&nop_api).await?;
    let missing: Vec<String> = nop_names
        .iter()
        .filter(|n| !present_nop.contains(*n))
        .cloned()
        .collect();
    acknowledged_nop.extend(create_claims(&nop_api, &missing, nop_claim).await);
    if args.local_claims > 0 {
        let present_local = names_of(&local_api).await?;
        let missing: Vec<String> = local_names
            .iter()
            .filter(|n| !present_local.contains(*n))
            .cloned()
            .collect();
        acknowledged_local.extend(create_claims(&local_api, &missing, local_claim).await);
    }
    let after_kills = Instant::now();
    eprintln!(
        "killed plinth up {} times in {:.0} s; waiting for everything to converge",
        kill_moments.len(),
        started.elapsed().as_secs_f64()
    );

    let limit = Duration::from_secs(args.timeout);
    let waiting = loop {
        let mut waiting = not_ready(&nop_api).await?;
        if args.local_claims > 0 {
            waiting.extend(not_ready(&local_api).await?);
        }
        let present = names_of(&nop_api).await?.len()
            + names_of(&local_api).await.map(|n| n.len()).unwrap_or(0);
        if (waiting.is_empty() && present >= args.nop_claims + args.local_claims)
            || after_kills.elapsed() > limit
        {
            break waiting;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let converged = after_kills.elapsed().as_secs_f64();

    // What exists, checked against what was asked for.
    let present_nop = names_of(&nop_api).await?;
    let present_local = if args.local_claims > 0 {
        names_of(&local_api).await?
    } else {
        BTreeSet::new()
    };
    let lost: Vec<&String> = acknowledged_nop
        .iter()
        .filter(|n| !present_nop.contains(*n))
        .chain(
            acknowledged_local
                .iter()
                .filter(|n| !present_local.contains(*n)),
        )
        .collect();
    let nop_resources = Api::<DynamicObject>::all_with(
        client.clone(),
        &ar("nop.plinth.dev", "v1alpha1", "NopResource", "nopresources"),
    );
    let managed: BTreeSet<String> = names_of(&nop_resources).await?;
    let (creates, live) = read_journal(&journal)?;
    let duplicated: Vec<(&String, &usize)> = creates.iter().filter(|(_, n)| **n > 1).collect();
    let leaked: Vec<&String> = live.difference(&managed).collect();
    let absent: Vec<&String> = managed.difference(&live).collect();
    let mut problems = Vec::new();
    if !waiting.is_empty() {
        problems.push(format!(
            "{} claims not Ready after {:.0} s, e.g. {:?}",
            waiting.len(),
            converged,
            &waiting[..waiting.len().min(5)]
        ));
    }
    if !lost.is_empty() {
        problems.push(format!(
            "{} acknowledged claims lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        ));
    }
    if managed.len() != 3 * present_nop.len() {
        problems.push(format!(
            "{} NopResources for {} nop claims; want three each",
            managed.len(),
            present_nop.len()
        ));
    }
    if !duplicated.is_empty() {
        problems.push(format!(
            "{} nop resources created more than once, e.g. {:?}",
            duplicated.len(),
            &duplicated[..duplicated.len().min(5)]
        ));
    }
    if !leaked.is_empty() {
        problems.push(format!(
            "{} nop resources with no managed resource (leaked), e.g. {:?}",
            leaked.len(),
            &leaked[..leaked.len().min(5)]
        ));
    }
    if !absent.is_empty() {
        problems.push(format!(
            "{} managed resources with no nop resource, e.g. {:?}",
            absent.len(),
            &absent[..absent.len().min(5)]
        ));
    }
    let mut database_count = 0;
    let mut postgres = None;
    if args.local_claims > 0 {
        let url = match &args.postgres_url {
            Some(url) => url.clone(),
            None => embedded_postgres_url(dir.path())?,
        };
        let found = databases(&url, &local_prefix).await?;
        database_count = found.len();
        if found.len() != present_local.len() {
            problems.push(format!(
                "{} databases for {} PostgreSQLInstance claims; want one each",
                found.len(),
                present_local.len()
            ));
        }
        postgres = Some(url);
    }

    // Deleting every claim must take every external resource with it.
    let deleting = Instant::now();
    let everything = kube::api::DeleteParams::default();
    nop_api
        .delete_collection(&everything, &ListParams::default())
        .await?;
    if args.local_claims > 0 {
        local_api
            .delete_collection(&everything, &ListParams::default())
            .await?;
    }
    let (left_nop, left_databases) = loop {
        let (_, live) = read_journal(&journal)?;
        let left_databases = match &postgres {
            Some(url) => databases(url, &local_prefix).await?.len(),
            None => 0,
        };
        if (live.is_empty() && left_databases == 0) || deleting.elapsed() > Duration::from_secs(300)
        {
            break (live.len(), left_databases);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    if left_nop > 0 || left_databases > 0 {
        problems.push(format!("after deleting every claim, {left_nop} nop resources and {left_databases} databases are left"));
    }
    let figures = vec![
        Figure {
            name: "kill -9 of plinth up".into(),
            value: kill_moments.len() as f64,
            unit: "kills",
            target: Some(format!("{}", args.kills)),
        },
        Figure {
            name: "nop claims acknowledged".into(),
            value: acknowledged_nop.len() as f64,
            unit: "claims",
            target: None,
        },
        Figure {
            name: "nop claims present".into(),
            value: present_nop.len() as f64,
            unit: "claims",
            target: Some(format!("{}", args.nop_claims)),
        },
        Figure {
            name: "local claims acknowledged".into(),
            value: acknowledged_local.len() as f64,
            unit: "claims",
            target: None,
        },
        Figure {
            name: "local claims present".into(),
            value: present_local.len() as f64,
            unit: "claims",
            target: Some(format!("{}", args.local_claims)),
        },
        Figure {
            name: "claims not Ready".into(),
            value: waiting.len() as f64,
            unit: "claims",
            target: Some("0".into()),
        },
        Figure {
            name: "acknowledged claims lost".into(),
            value: lost.len() as f64,
            unit: "claims",
            target: Some("0".into()),
        },
        Figure {
            name: "nop resources in the provider".into(),
            value: live.len() as f64,
            unit: "resources",
            target: Some(format!("{} (3 per claim)", 3 * present_nop.len())),
        },
        Figure {
            name: "NopResources in the API".into(),
            value: managed.len() as f64,
            unit: "resources",
            target: Some(format!("{}", 3 * present_nop.len())),
        },
        Figure {
            name: "nop resources created twice".into(),
            value: duplicated.len() as f64,
            unit: "resources",
            target: Some("0".into()),
        },
        Figure {
            name: "nop resources leaked".into(),
            value: leaked.len() as f64,
            unit: "resources",
            target: Some("0".into()),
        },
        Figure {
            name: "PostgreSQL databases".into(),
            value: database_count as f64,
            unit: "databases",
            target: Some("1 per claim".into()),
        },
        Figure {
            name: "converged after the last kill".into(),
            value: converged,
            unit: "s",
            target: None,
        },
        Figure {
            name: "external resources left after deleting".into(),
            value: (left_nop + left_databases) as f64,
            unit: "resources",
            target: Some("0".into()),
        },
        Figure {
            name: "deleted in".into(),
            value: deleting.elapsed().as_secs_f64(),
            unit: "s",
            target: None,
        },
        Figure {
            name: "whole run".into(),
            value: started.elapsed().as_secs_f64(),
            unit: "s",
            target: None,
        },
    ];
    if let Some(mut child) = server.child.take() {
        stop(&mut child).await;
    }
    print_table(&figures);
    if let Some(path) = &args.json {
        write_json(path, &figures)?;
    }
    if !problems.is_empty() {
        bail!(
            "the control plane broke a promise under chaos:\n- {}",
            problems.join("\n- ")
        );
    }
    println!("every claim Ready, every acknowledged claim kept, each external resource created once and none leaked");
    Ok(())
}
