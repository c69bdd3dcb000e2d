//! Secrets hygiene: a full claim life cycle on the local backend (a real
//! PostgreSQL) and on AWS (moto), with the server logging at debug level;
//! then every log line, Event, condition and status, and `plinth trace`,
//! are searched for each secret value the run used: the PostgreSQL admin
//! password, the AWS access key pair, both databases' passwords, the admin
//! token and a service-account token. None may appear, plain or base64.

#[path = "../../../tests/support/mod.rs"]
mod support;

#[path = "support/moto.rs"]
mod moto;

use std::time::Duration;

use base64::Engine;
use support::{eventually, plinth_bin, postgres_url, Plinth};

const WAIT: &str = "--timeout=180s";

fn claim(name: &str, provider: &str) -> String {
    format!(
        "apiVersion: platform.plinth.dev/v1alpha1\nkind: PostgreSQLInstance\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  compositionSelector:\n    matchLabels:\n      provider: {provider}\n  parameters:\n    size: small\n    storageGB: 20\n    version: \"15\"\n  writeConnectionSecretToRef:\n    name: {name}-db\n"
    )
}

/// Everything a user or operator can read but Secrets themselves: every
/// listable kind in every namespace, Events included, as JSON.
async fn everything_but_secrets(plinth: &Plinth) -> String {
    let kinds = plinth
        .kubectl_ok(&["api-resources", "--verbs=list", "-o", "name"])
        .await;
    let mut out = String::new();
    for kind in kinds.lines().map(str::trim).filter(|k| !k.is_empty()) {
        if kind == "secrets" {
            continue;
        }
        let run = plinth.kubectl(&["get", kind, "-A", "-o", "json"]).await;
        assert!(run.ok, "kubectl get {kind}: {}", run.stderr);
        out.push_str(&run.stdout);
    }
    out
}

async fn trace(plinth: &Plinth, claim: &str) -> String {
    let mut out = String::new();
    for format in ["wide", "json"] {
        let run = tokio::process::Command::new(plinth_bin())
            .args([
                "trace",
                &format!("postgresqlinstance/{claim}"),
                "-n",
                "default",
                "-o",
                format,
                "--kubeconfig",
            ])
            .arg(&plinth.kubeconfig)
            .output()
            .await
            .expect("plinth trace runs");
        assert!(
            run.status.success(),
            "plinth trace: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        out.push_str(&String::from_utf8_lossy(&run.stdout));
    }
    out
}

fn leaks<'a>(haystack: &str, secrets: &'a [(&'a str, String)]) -> Vec<&'a str> {
    let b64 = base64::engine::general_purpose::STANDARD;
    secrets
        .iter()
        .filter(|(_, value)| {
            haystack.contains(value.as_str()) || haystack.contains(&b64.encode(value))
        })
        .map(|(what, _)| *what)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_a_log_an_event_a_status_or_a_trace() {
    let _moto = moto::exclusive().await;
    let moto_url = moto::url();
    let pg_url = postgres_url();
    let logs = tempfile::NamedTempFile::new().expect("a log file");
    let plinth = Plinth::start_logged(
        &["--local-postgres-url", &pg_url],
        &[("PLINTH_LOG", "debug")],
        logs.path(),
    )
    .await;
    // moto checks no credentials, so these are made up for this run alone.
    let suffix: String = format!("{:016X}", rand_u64());
    let access_key = format!("AKIA{}", &suffix[..16]);
    let secret_key = format!("hygiene-secret-key-{suffix}");
    eventually(
        Duration::from_secs(60),
        "the AWS provider's kinds are served",
        || async {
            plinth
                .kubectl(&["get", "providerconfigs.aws.plinth.dev"])
                .await
                .ok
        },
    )
    .await;
    let config = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: aws-creds\n  namespace: plinth-system\nstringData:\n  access_key_id: {access_key}\n  secret_access_key: {secret_key}\n---\napiVersion: aws.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: default\nspec:\n  region: {region}\n  endpoint: {moto_url}\n  credentials:\n    source: Secret\n    secretRef:\n      namespace: plinth-system\n      name: aws-creds\n",
        region = moto::REGION
    );
    plinth.apply_ok(&["apply", "-f", "-"], &config).await;
    plinth.kubectl_ok(&["create", "serviceaccount", "ci"]).await;
    let sa_token = plinth
        .kubectl_ok(&["create", "token", "ci"])
        .await
        .trim()
        .to_string();
    // The token is used, so a request carrying it is logged (or not).
    let _ = plinth
        .kubectl(&["--token", &sa_token, "auth", "whoami"])
        .await;

    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            &format!(
                "{}---\n{}",
                claim("on-local", "local"),
                claim("on-aws", "aws")
            ),
        )
        .await;
    for name in ["on-local", "on-aws"] {
        plinth
            .kubectl_ok(&[
                "wait",
                "--for=condition=Ready",
                &format!("postgresqlinstance/{name}"),
                WAIT,
            ])
            .await;
    }
    // A change on each, so updates are logged too.
    for name in ["on-local", "on-aws"] {
        plinth
            .kubectl_ok(&[
                "patch",
                "postgresqlinstance",
                name,
                "--type=merge",
                "-p",
                r#"{"spec":{"parameters":{"size":"medium"}}}"#,
            ])
            .await;
    }
    let local_password = plinth
        .secret_value("default", "on-local-db", "password")
        .await;
    let aws_password = plinth
        .secret_value("default", "on-aws-db", "password")
        .await;
    let admin_password = pg_url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(user_info, _)| user_info.split_once(':'))
        .map(|(_, password)| password.to_string())
        .expect("a password in PLINTH_TEST_POSTGRES_URL");
    let secrets = [
        ("the PostgreSQL admin password", admin_password),
        ("the AWS access key id", access_key.clone()),
        ("the AWS secret access key", secret_key.clone()),
        ("the local database's password", local_password),
        ("the RDS instance's password", aws_password),
        ("the admin token", plinth.token()),
        ("a service-account token", sa_token.clone()),
    ];
    for (what, value) in &secrets {
        assert!(
            value.len() >= 8,
            "{what} is long enough to search for: {value:?}"
        );
    }
    let mut readable = everything_but_secrets(&plinth).await;
    readable.push_str(&trace(&plinth, "on-local").await);
    readable.push_str(&trace(&plinth, "on-aws").await);

    for name in ["on-local", "on-aws"] {
        plinth
            .kubectl_ok(&["delete", "postgresqlinstance", name, "--wait", WAIT])
            .await;
    }
    readable.push_str(
        &plinth
            .kubectl_ok(&["get", "events", "-A", "-o", "json"])
            .await,
    );
    let log = std::fs::read_to_string(logs.path()).expect("the server's log");
    assert!(
        log.lines().count() > 100,
        "the server logged at debug level: {} lines",
        log.lines().count()
    );

    let leaking: Vec<&str> = log
        .lines()
        .filter(|line| !leaks(line, &secrets).is_empty())
        .take(5)
        .collect();
    assert_eq!(
        leaks(&log, &secrets),
        Vec::<&str>::new(),
        "secrets in the server's log, e.g.:\n{}",
        leaking.join("\n")
    );
    assert_eq!(
        leaks(&readable, &secrets),
        Vec::<&str>::new(),
        "secrets in objects, Events or traces"
    );
}

/// A random number from the OS, without a dependency for it.
fn rand_u64() -> u64 {
    let bytes = std::fs::read("/proc/sys/kernel/random/uuid").expect("a random uuid");
    let text = String::from_utf8_lossy(&bytes).replace('-', "");
    u64::from_str_radix(&text.trim()[..16], 16).expect("hex")
}
