//! `/metrics` of `plinth up`, read by the Python `prometheus_client`
//! parser (PyPI): it parses, it is behind the token, and the controllers'
//! counters move when resources reconcile.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::{eventually, Plinth};

/// Parses an exposition with prometheus_client's OpenMetrics parser (what
/// `/metrics` serves) and prints each sample as `name{labels} value`.
const PARSE: &str = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(f"{s.name}{{{labels}}} {s.value}")
"#;

fn python() -> String {
    std::env::var("PLINTH_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("PLINTH_TEST_PYTHON is not set: run the tests with ./scripts/test.sh, which installs prometheus-client into .venv")
    })
}

/// Every sample of `/metrics`, as the Python parser reads them.
async fn samples(plinth: &Plinth) -> BTreeMap<String, f64> {
    let text = plinth
        .http()
        .get(format!("{}/metrics", plinth.url))
        .bearer_auth(plinth.token())
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    let mut child = tokio::process::Command::new(python())
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).await.expect("write");
    drop(stdin);
    let out = child.wait_with_output().await.expect("python");
    assert!(
        out.status.success(),
        "prometheus_client cannot parse /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn sum(samples: &BTreeMap<String, f64>, prefix: &str, having: &str) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.starts_with(prefix) && k.contains(having))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_when_resources_reconcile() {
    let plinth = Plinth::start_with(&["--no-builtin-apis"]).await;
    let anonymous = plinth
        .http()
        .get(format!("{}/metrics", plinth.url))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(anonymous.status(), 401, "/metrics is behind the token");
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            "apiVersion: nop.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: default\nspec: {}\n",
        )
        .await;
    let before = samples(&plinth).await;
    let nop = |name: &str| {
        format!("apiVersion: nop.plinth.dev/v1alpha1\nkind: NopResource\nmetadata:\n  name: {name}\nspec:\n  forProvider: {{}}\n")
    };
    plinth.apply_ok(&["apply", "-f", "-"], &nop("m1")).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "nopresource/m1",
            "--timeout=60s",
        ])
        .await;
    let reconciles =
        |s: &BTreeMap<String, f64>| sum(s, "plinth_controller_reconciles_total", "NopResource");
    eventually(
        Duration::from_secs(10),
        "the NopResource reconciles counted",
        || async { reconciles(&samples(&plinth).await) > reconciles(&before) },
    )
    .await;
    let after = samples(&plinth).await;
    let rpc = |s: &BTreeMap<String, f64>, method: &str| {
        sum(
            s,
            "plinth_provider_rpc_duration_seconds_count",
            &format!("method={method}"),
        )
    };
    assert!(
        rpc(&after, "Create") > rpc(&before, "Create"),
        "a Create was timed"
    );
    assert!(rpc(&after, "Observe") > 0.0, "Observes are timed");
    assert!(
        sum(
            &after,
            "plinth_controller_reconcile_duration_seconds_count",
            ""
        ) > 0.0
    );
    assert!(
        after
            .keys()
            .any(|k| k.starts_with("plinth_controller_queue_depth")),
        "queue depth is exported"
    );
    assert!(
        sum(&after, "apiserver_request_total", "verb=")
            > sum(&before, "apiserver_request_total", "verb="),
        "API requests are counted by verb"
    );
    assert!(
        sum(
            &after,
            "apiserver_request_duration_seconds_count",
            "verb=get"
        ) > 0.0,
        "API request latency is measured"
    );
}
