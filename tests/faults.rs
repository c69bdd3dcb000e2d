//! Provider faults through a real `plinth up` and the nop provider: a call
//! that hangs is cut off at `--provider-timeout` and its resource says so,
//! while the provider's other resources keep converging; a provider that
//! stops answering altogether (SIGSTOP) is restarted.

mod support;

use std::time::Duration;

use support::{eventually, Plinth};

const WAIT: &str = "--timeout=120s";

fn nop(name: &str, for_provider: &str) -> String {
    format!(
        "---\napiVersion: nop.plinth.dev/v1alpha1\nkind: NopResource\nmetadata:\n  name: {name}\nspec:\n  forProvider: {for_provider}\n"
    )
}

async fn provider_field(plinth: &Plinth, path: &str) -> String {
    plinth
        .kubectl(&["get", "provider", "nop", "-o", &format!("jsonpath={path}")])
        .await
        .stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_call_times_out_and_a_stopped_provider_is_restarted() {
    let mut plinth = Plinth::start_with(&["--provider-timeout", "2s"]).await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Healthy", "provider/nop", WAIT])
        .await;
    let mut manifest = String::from(
        "apiVersion: nop.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: default\nspec: {}\n",
    );
    manifest.push_str(&nop("slow", "{answerAfterSeconds: 600}"));
    for i in 0..10 {
        manifest.push_str(&nop(&format!("quick-{i}"), "{}"));
    }
    plinth.apply_ok(&["apply", "-f", "-"], &manifest).await;

    // The quick ones converge although one resource's calls all hang.
    for i in 0..10 {
        plinth
            .kubectl_ok(&[
                "wait",
                "--for=condition=Ready",
                &format!("nopresource/quick-{i}"),
                WAIT,
            ])
            .await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let message = plinth
            .kubectl(&[
                "get",
                "nopresource",
                "slow",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Synced\")].message}",
            ])
            .await
            .stdout;
        if message.contains("did not answer Observe within 2s") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slow resource never said it timed out; its Synced message: {message:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The provider itself answers, so it is not restarted for that.
    assert_eq!(provider_field(&plinth, "{.status.restarts}").await, "0");

    // A provider that answers nothing at all, health checks included.
    let address = provider_field(&plinth, "{.status.address}").await;
    let pid = address
        .rsplit('-')
        .next()
        .unwrap_or_default()
        .trim_end_matches(".sock")
        .to_string();
    let stopped = std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .expect("kill");
    assert!(stopped.success(), "kill -STOP {pid} (from {address})");
    eventually(
        Duration::from_secs(60),
        "the stopped provider to be restarted",
        || async {
            provider_field(&plinth, "{.status.restarts}")
                .await
                .parse::<u32>()
                .is_ok_and(|n| n >= 1)
        },
    )
    .await;
    let last_error = provider_field(&plinth, "{.status.lastError}").await;
    // Caught by the health checks, or first by the GetSchema probe that
    // follows the slow resource's timeouts: either way it says why.
    assert!(
        last_error.contains("health checks") || last_error.contains("neither did GetSchema"),
        "{last_error}"
    );
    plinth
        .kubectl_ok(&["wait", "--for=condition=Healthy", "provider/nop", WAIT])
        .await;
    // The restarted provider serves new resources and still knows the old ones.
    plinth
        .apply_ok(&["apply", "-f", "-"], &nop("after-restart", "{}"))
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "nopresource/after-restart",
            WAIT,
        ])
        .await;
    plinth
        .kubectl_ok(&["delete", "nopresource", "slow", "--wait=false"])
        .await;
    plinth.stop().await;
}

/// A tmpfs mounted for the length of a test, unmounted even when it fails.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).expect("the mount point");
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("mount runs");
        assert!(
            out.status.success(),
            "this test mounts a small tmpfs to fill, which needs root (as scripts/test.sh runs): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// The names of the ConfigMaps `maps` lists.
async fn names_of(maps: &kube::api::Api<k8s_openapi::api::core::v1::ConfigMap>) -> Vec<String> {
    maps.list(&kube::api::ListParams::default())
        .await
        .expect("a list")
        .items
        .into_iter()
        .filter_map(|m| m.metadata.name)
        .collect()
}

/// Writes zeros to `path` until the file system refuses more.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("the filler file");
    let chunk = vec![0u8; 256 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let _ = file.sync_all();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers() {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PostParams};

    let outer = tempfile::tempdir().expect("a temp dir");
    let mount = outer.path().join("small-disk");
    let _disk = Tmpfs::mount(&mount, "24m");
    let data = tempfile::tempdir_in(&mount).expect("a data dir on the small disk");
    let filler = mount.join("filler");
    let mut plinth = Plinth::start_in(data, &["--no-bundled-providers"]).await;
    let maps: Api<ConfigMap> = Api::namespaced(plinth.client().await, "default");
    let map = |name: &str, size: usize| -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "data": {"blob": "x".repeat(size)}
        }))
        .expect("a ConfigMap")
    };
    maps.create(&PostParams::default(), &map("before", 10))
        .await
        .expect("a write while there is room");

    fill(&filler);
    // The WAL may still have room of its own: write until the disk says no.
    let mut acknowledged = vec!["before".to_string()];
    let mut refused = None;
    for i in 0..200 {
        let name = format!("big-{i}");
        match maps
            .create(&PostParams::default(), &map(&name, 200_000))
            .await
        {
            Ok(_) => acknowledged.push(name),
            Err(kube::Error::Api(status)) => {
                refused = Some((name, status));
                break;
            }
            Err(other) => panic!("a write on a full disk: {other}"),
        }
    }
    let (refused_name, status) = refused.expect("a write refused once the disk is full");
    assert_eq!(status.code, 507, "{status:?}");
    assert!(
        status.message.contains("disk holding the store is full"),
        "{}",
        status.message
    );

    // Reads go on, and the refused write left nothing behind.
    let names = names_of(&maps).await;
    for name in &acknowledged {
        assert!(names.contains(name), "{name} was acknowledged: {names:?}");
    }
    assert!(
        !names.contains(&refused_name),
        "{refused_name} was refused: {names:?}"
    );
    assert!(maps.get("before").await.is_ok());

    // Room again: writes succeed without a restart.
    std::fs::remove_file(&filler).expect("free the space");
    maps.create(&PostParams::default(), &map("after", 10))
        .await
        .expect("a write once there is room again");
    acknowledged.push("after".into());

    // And everything acknowledged is on disk.
    plinth.restart().await;
    let maps: Api<ConfigMap> = Api::namespaced(plinth.client().await, "default");
    let names = names_of(&maps).await;
    for name in &acknowledged {
        assert!(
            names.contains(name),
            "{name} survived the restart: {names:?}"
        );
    }
    assert!(!names.contains(&refused_name));
    plinth.stop().await;
}
