//! `plinth up --encryption-key-file`: Secrets are sealed with AES-GCM in
//! the state file and its WAL, read back through kubectl, survive a key
//! rotation, and `--rewrite-secrets` moves them all under the newest key.
//! A store with sealed Secrets does not start without its keys, and says why.

mod support;

use std::time::Duration;

use base64::Engine;
use support::{plinth_bin, Plinth};

const PASSWORD: &str = "correct-horse-battery-staple-7f3a";

fn key_file(dir: &std::path::Path, name: &str, keys: &[(&str, u8)]) -> std::path::PathBuf {
    let keys: String = keys
        .iter()
        .map(|(name, fill)| {
            let secret = base64::engine::general_purpose::STANDARD.encode([*fill; 32]);
            format!("            - name: {name}\n              secret: {secret}\n")
        })
        .collect();
    let text = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources:\n      - secrets\n    providers:\n      - aesgcm:\n          keys:\n{keys}      - identity: {{}}\n"
    );
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the key file");
    path
}

/// The state file and its WAL, as one byte string.
fn on_disk(dir: &std::path::Path) -> Vec<u8> {
    ["state.db", "state.db-wal"]
        .iter()
        .filter_map(|f| std::fs::read(dir.join(f)).ok())
        .flatten()
        .collect()
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn password_of(plinth: &Plinth, name: &str) -> String {
    let encoded = plinth
        .kubectl_ok(&["get", "secret", name, "-o", "jsonpath={.data.password}"])
        .await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .expect("base64 data");
    String::from_utf8(bytes).expect("utf-8 password")
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_encrypted_at_rest_and_rotate() {
    let keys = tempfile::tempdir().expect("a directory for the key files");
    let first = key_file(keys.path(), "k1.yaml", &[("k1", 1)]);
    let first_arg = first.to_str().expect("utf-8 path").to_string();
    let mut plinth = Plinth::start_with(&[
        "--no-bundled-providers",
        "--encryption-key-file",
        &first_arg,
    ])
    .await;
    plinth
        .kubectl_ok(&[
            "create",
            "secret",
            "generic",
            "db",
            &format!("--from-literal=password={PASSWORD}"),
        ])
        .await;
    assert_eq!(password_of(&plinth, "db").await, PASSWORD);
    plinth.stop().await;

    let encoded = base64::engine::general_purpose::STANDARD.encode(PASSWORD);
    let bytes = on_disk(plinth.dir.path());
    assert!(
        !holds(&bytes, PASSWORD) && !holds(&bytes, &encoded),
        "the password is not on disk"
    );
    assert!(
        holds(&bytes, "k8s:enc:aesgcm:v1:k1:"),
        "sealed under k1 in kube-apiserver's envelope"
    );

    // Without the key file the store does not open, and the error says so.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(plinth_bin())
            .args([
                "up",
                "--no-bundled-providers",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(plinth.dir.path())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("plinth up gave up in time")
    .expect("plinth up ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "started without the keys: {stderr}");
    assert!(
        stderr.contains("cannot decrypt")
            && stderr.contains("\"k1\"")
            && stderr.contains("--encryption-key-file"),
        "{stderr}"
    );

    // Rotated: k2 writes, k1 still reads; the rewrite leaves nothing under k1.
    let rotated = key_file(keys.path(), "k2.yaml", &[("k2", 2), ("k1", 1)]);
    let rotated_arg = rotated.to_str().expect("utf-8 path").to_string();
    plinth.set_extra(&[
        "--no-bundled-providers",
        "--encryption-key-file",
        &rotated_arg,
        "--rewrite-secrets",
    ]);
    plinth.start_again().await;
    assert_eq!(password_of(&plinth, "db").await, PASSWORD);
    plinth.stop().await;
    let bytes = on_disk(plinth.dir.path());
    assert!(
        !holds(&bytes, "k8s:enc:aesgcm:v1:k1:"),
        "every Secret moved to k2"
    );
    assert!(holds(&bytes, "k8s:enc:aesgcm:v1:k2:"));

    // k1 can go now.
    let only_new = key_file(keys.path(), "k2-only.yaml", &[("k2", 2)]);
    let only_new_arg = only_new.to_str().expect("utf-8 path").to_string();
    plinth.set_extra(&[
        "--no-bundled-providers",
        "--encryption-key-file",
        &only_new_arg,
    ]);
    plinth.start_again().await;
    assert_eq!(password_of(&plinth, "db").await, PASSWORD);
    plinth.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rewrite_secrets_needs_a_key_file() {
    let dir = tempfile::tempdir().expect("a data directory");
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(plinth_bin())
            .args(["up", "--rewrite-secrets", "--data-dir"])
            .arg(dir.path())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("plinth up gave up in time")
    .expect("plinth up ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--encryption-key-file"), "{stderr}");
}
