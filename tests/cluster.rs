//! Cluster mode against `plinth up --no-controllers`, which serves the API
//! alone as a cluster would: `plinth controller` replicas elect a leader
//! on a Lease, and when the leader is killed mid-work the other takes over
//! and finishes, creating nothing twice.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{eventually, plinth_bin, Plinth};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

const CLAIMS: usize = 200;

/// A `plinth controller` replica, and the lines it prints on stdout.
struct Replica {
    identity: String,
    child: Child,
    leading: mpsc::UnboundedReceiver<String>,
    health: String,
    metrics: String,
}

fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .to_string()
}

fn start_replica(plinth: &Plinth, identity: &str, journal: &std::path::Path) -> Replica {
    start_replica_with(plinth, identity, journal, &[])
}

fn start_replica_with(
    plinth: &Plinth,
    identity: &str,
    journal: &std::path::Path,
    extra: &[&str],
) -> Replica {
    let (health, metrics) = (free_addr(), free_addr());
    let mut child = Command::new(plinth_bin())
        .args(["controller", "--kubeconfig"])
        .arg(&plinth.kubeconfig)
        .args([
            "--identity",
            identity,
            "--health-addr",
            &health,
            "--metrics-addr",
            &metrics,
            "--no-builtin-apis",
        ])
        .args(extra)
        .env("PLINTH_NOP_JOURNAL", journal)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start plinth controller");
    let (tx, leading) = mpsc::unbounded_channel();
    let stdout = child.stdout.take().expect("stdout");
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("is leading") {
                let _ = tx.send(line);
            }
        }
    });
    Replica {
        identity: identity.to_string(),
        child,
        leading,
        health,
        metrics,
    }
}

async fn holder(plinth: &Plinth) -> String {
    plinth
        .kubectl(&[
            "-n",
            "plinth-system",
            "get",
            "lease",
            "plinth-controller",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ])
        .await
        .stdout
        .trim()
        .to_string()
}

const API: &str = r#"
apiVersion: apiextensions.crossplane.io/v1
kind: CompositeResourceDefinition
metadata:
  name: xqueues.failover.example.org
spec:
  group: failover.example.org
  names: {kind: XQueue, plural: xqueues}
  claimNames: {kind: Queue, plural: queues}
  defaultCompositionRef: {name: queue-nop}
  versions:
  - name: v1alpha1
    served: true
    referenceable: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              parameters: {type: object, x-kubernetes-preserve-unknown-fields: true}
---
apiVersion: apiextensions.crossplane.io/v1
kind: Composition
metadata:
  name: queue-nop
spec:
  compositeTypeRef: {apiVersion: failover.example.org/v1alpha1, kind: XQueue}
  resources:
  - name: a
    base: {apiVersion: nop.plinth.dev/v1alpha1, kind: NopResource, spec: {forProvider: {}}}
  - name: b
    base: {apiVersion: nop.plinth.dev/v1alpha1, kind: NopResource, spec: {forProvider: {}}}
  - name: c
    base: {apiVersion: nop.plinth.dev/v1alpha1, kind: NopResource, spec: {forProvider: {}}}
"#;

async fn install_api(plinth: &Plinth) {
    eventually(
        Duration::from_secs(60),
        "the nop provider's ProviderConfig kind",
        || async {
            plinth
                .kubectl_stdin(
                    &["apply", "-f", "-"],
                    Some("apiVersion: nop.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: default\nspec: {}\n"),
                )
                .await
                .ok
        },
    )
    .await;
    plinth.apply_ok(&["apply", "-f", "-"], API).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Offered",
            "xrd/xqueues.failover.example.org",
            "--timeout=60s",
        ])
        .await;
}

fn claims(from: usize, to: usize) -> String {
    (from..to)
        .map(|i| format!("---\napiVersion: failover.example.org/v1alpha1\nkind: Queue\nmetadata:\n  name: q-{i:03}\n  namespace: default\nspec:\n  parameters: {{}}\n"))
        .collect()
}

/// Creates per managed resource, from the nop provider's journal.
fn creates(journal: &std::path::Path) -> std::collections::BTreeMap<String, usize> {
    let text = std::fs::read_to_string(journal).expect("the nop journal");
    let mut creates = std::collections::BTreeMap::<String, usize>::new();
    for line in text.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("a journal line");
        if entry["op"] == "create" {
            *creates
                .entry(entry["name"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    creates
}

async fn metrics_of(replica: &Replica) -> String {
    match reqwest::get(format!("http://{}/metrics", replica.metrics)).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The sum of a metric's samples whose line mentions `having`.
fn total(metrics: &str, name: &str, having: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(having))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn ready_claims(plinth: &Plinth) -> usize {
    plinth
        .kubectl(&[
            "-n",
            "default",
            "get",
            "queues",
            "-o",
            "jsonpath={range .items[*]}{.status.conditions[?(@.type=='Ready')].status}{'\\n'}{end}",
        ])
        .await
        .stdout
        .lines()
        .filter(|l| l.trim() == "True")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leader_is_replaced_and_nothing_is_created_twice() {
    let plinth = Plinth::start_with(&["--no-controllers"]).await;
    let journal = plinth.dir.path().join("nop-journal");
    let mut a = start_replica(&plinth, "replica-a", &journal);
    let mut b = start_replica(&plinth, "replica-b", &journal);

    // Exactly one leads.
    let first = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::select! {
            Some(_) = a.leading.recv() => "replica-a",
            Some(_) = b.leading.recv() => "replica-b",
        }
    })
    .await
    .expect("a replica leads within 60 s");
    assert_eq!(holder(&plinth).await, first);
    let (leader, standby) = if first == "replica-a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };

    // The leader's controllers serve the nop kinds; then the API and claims.
    eventually(Duration::from_secs(60), "the nop provider's ProviderConfig kind", || async {
        plinth
            .kubectl_stdin(
                &["apply", "-f", "-"],
                Some("apiVersion: nop.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: default\nspec: {}\n"),
            )
            .await
            .ok
    })
    .await;
    plinth.apply_ok(&["apply", "-f", "-"], API).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Offered",
            "xrd/xqueues.failover.example.org",
            "--timeout=60s",
        ])
        .await;
    let claims: String = (0..CLAIMS)
        .map(|i| format!("---\napiVersion: failover.example.org/v1alpha1\nkind: Queue\nmetadata:\n  name: q-{i:03}\n  namespace: default\nspec:\n  parameters: {{}}\n"))
        .collect();
    plinth.apply_ok(&["apply", "-f", "-"], &claims).await;
    eventually(
        Duration::from_secs(120),
        "some claims Ready under the first leader",
        || async { ready_claims(&plinth).await >= 10 },
    )
    .await;
    assert!(
        standby.leading.try_recv().is_err(),
        "the standby does not reconcile while the leader leads"
    );
    let get = |url: String| async move {
        reqwest::get(&url)
            .await
            .expect("GET")
            .text()
            .await
            .expect("body")
    };
    for r in [&*leader, &*standby] {
        assert_eq!(get(format!("http://{}/healthz", r.health)).await, "ok\n");
        assert_eq!(get(format!("http://{}/readyz", r.health)).await, "ok\n");
    }
    let leader_metrics = get(format!("http://{}/metrics", leader.metrics)).await;
    assert!(
        leader_metrics.contains("plinth_controller_leader 1"),
        "{leader_metrics}"
    );
    for family in [
        "plinth_controller_shards_held 1",
        "plinth_controller_reconciles_total",
        "plinth_provider_rpc_duration_seconds",
    ] {
        assert!(
            leader_metrics.contains(family),
            "{family}: {leader_metrics}"
        );
    }
    let standby_metrics = get(format!("http://{}/metrics", standby.metrics)).await;
    assert!(
        standby_metrics.contains("plinth_controller_leader 0"),
        "{standby_metrics}"
    );

    // kill -9 the leader mid-work: the standby takes over about one Lease
    // duration (15 s) after the leader's last renewal, which came up to a
    // retry period (2 s) before the kill; the standby's own looks at the
    // Lease (every 0.5 s) add up to a second.
    leader.child.kill().await.expect("kill the leader");
    let killed = Instant::now();
    eprintln!(
        "killed the leader with {} of {CLAIMS} claims Ready",
        ready_claims(&plinth).await
    );
    let took_over = tokio::time::timeout(Duration::from_secs(40), standby.leading.recv())
        .await
        .expect("the standby leads within 40 s");
    assert!(took_over.is_some());
    let after = killed.elapsed();
    eprintln!("the standby took over {after:?} after the kill");
    assert!(
        after <= Duration::from_secs(15) + Duration::from_millis(1_500),
        "took over {after:?} after the kill; the Lease lasts 15 s"
    );
    assert_eq!(holder(&plinth).await, standby.identity);

    eventually(
        Duration::from_secs(180),
        "every claim Ready under the new leader",
        || async { ready_claims(&plinth).await == CLAIMS },
    )
    .await;

    // The nop provider journals every Create: one per managed resource.
    let text = std::fs::read_to_string(&journal).expect("the nop journal");
    let mut creates = std::collections::BTreeMap::<String, usize>::new();
    for line in text.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("a journal line");
        if entry["op"] == "create" {
            *creates
                .entry(entry["name"].as_str().unwrap_or_default().to_string())
                .or_default() += 1;
        }
    }
    let twice: Vec<_> = creates.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "created more than once: {twice:?}");
    assert_eq!(creates.len(), CLAIMS * 3, "one Create per managed resource");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_spread_across_replicas_and_move_when_one_dies() {
    let plinth = Plinth::start_with(&["--no-controllers"]).await;
    let journal = plinth.dir.path().join("nop-journal");
    let a = start_replica_with(&plinth, "replica-a", &journal, &["--shards", "4"]);
    let mut b = start_replica_with(&plinth, "replica-b", &journal, &["--shards", "4"]);
    // Four shards between two replicas: two each.
    eventually(
        Duration::from_secs(60),
        "two shards held by each replica",
        || async {
            metrics_of(&a)
                .await
                .contains("plinth_controller_shards_held 2")
                && metrics_of(&b)
                    .await
                    .contains("plinth_controller_shards_held 2")
        },
    )
    .await;
    // Which shards: the two replicas' sets do not overlap and cover all four.
    let held = |m: &str| -> Vec<String> {
        m.lines()
            .filter(|l| l.starts_with("plinth_controller_shard_held{") && l.ends_with(" 1"))
            .map(str::to_string)
            .collect()
    };
    let (held_a, held_b) = (held(&metrics_of(&a).await), held(&metrics_of(&b).await));
    assert_eq!(held_a.len() + held_b.len(), 4, "{held_a:?} {held_b:?}");
    assert!(
        held_a.iter().all(|s| !held_b.contains(s)),
        "{held_a:?} {held_b:?}"
    );
    install_api(&plinth).await;
    plinth
        .apply_ok(&["apply", "-f", "-"], &claims(0, CLAIMS))
        .await;
    eventually(
        Duration::from_secs(180),
        "every claim Ready across both replicas",
        || async { ready_claims(&plinth).await == CLAIMS },
    )
    .await;
    // Both did the work, about half each.
    let work = |m: String| total(&m, "plinth_controller_reconciles_total", "NopResource");
    let (by_a, by_b) = (work(metrics_of(&a).await), work(metrics_of(&b).await));
    eprintln!("NopResource reconciles: replica-a {by_a}, replica-b {by_b}");
    for (who, n) in [("replica-a", by_a), ("replica-b", by_b)] {
        assert!(
            n >= 0.25 * (by_a + by_b),
            "{who} did {n} of {} reconciles: the work should spread",
            by_a + by_b
        );
    }

    // One dies: the other takes all four shards and finishes new work.
    b.child.kill().await.expect("kill replica-b");
    let killed = Instant::now();
    eventually(
        Duration::from_secs(60),
        "replica-a holding all four shards",
        || async {
            metrics_of(&a)
                .await
                .contains("plinth_controller_shards_held 4")
        },
    )
    .await;
    let after = killed.elapsed();
    eprintln!("replica-a held all four shards {after:?} after the kill");
    assert!(
        after <= Duration::from_secs(15) + Duration::from_millis(1_500),
        "the shards moved {after:?} after the kill; the Lease lasts 15 s"
    );
    plinth
        .apply_ok(&["apply", "-f", "-"], &claims(CLAIMS, CLAIMS + 50))
        .await;
    eventually(
        Duration::from_secs(180),
        "every claim Ready on the survivor",
        || async { ready_claims(&plinth).await == CLAIMS + 50 },
    )
    .await;
    let creates = creates(&journal);
    let twice: Vec<_> = creates.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "created more than once: {twice:?}");
    assert_eq!(
        creates.len(),
        (CLAIMS + 50) * 3,
        "one Create per managed resource"
    );
}
