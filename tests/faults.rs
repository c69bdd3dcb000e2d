//! Provider faults through a real `plinth up` and the nop provider: a call
//! that hangs is cut off at `--provider-timeout` and its resource says so,
//! while the provider's other resources keep converging; a provider that
//! stops answering altogether (SIGSTOP) is restarted; providers served from
//! this test process that answer garbage are refused, or their resources
//! say what was wrong, while everything else converges.

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

use provider_sdk::pb;
use tonic::{Request, Response, Status};

/// What one in-process test provider answers to GetSchema.
fn garbage_schema(config_group: &str, kinds: Vec<pb::KindSchema>) -> pb::GetSchemaResponse {
    pb::GetSchemaResponse {
        provider: "garbage".into(),
        provider_config_group: config_group.into(),
        provider_config_schema_json: br#"{"type":"object"}"#.to_vec(),
        kinds,
    }
}

fn garbage_kind(group: &str, kind: &str, plural: &str) -> pb::KindSchema {
    pb::KindSchema {
        group: group.into(),
        version: "v1alpha1".into(),
        kind: kind.into(),
        plural: plural.into(),
        for_provider_schema_json:
            br#"{"type":"object","x-kubernetes-preserve-unknown-fields":true}"#.to_vec(),
        at_provider_schema_json:
            br#"{"type":"object","x-kubernetes-preserve-unknown-fields":true}"#.to_vec(),
        deterministic_external_name: true,
        ..Default::default()
    }
}

/// A provider that speaks the protocol's framing but answers with garbage
/// chosen by the resource's name; any other name gets a healthy answer.
#[derive(Clone)]
struct Garbage {
    schema: pb::GetSchemaResponse,
}

fn observation_for(name: &str) -> pb::ObserveResponse {
    let healthy = pb::ObserveResponse {
        exists: true,
        up_to_date: true,
        at_provider_json: br#"{"state":"up"}"#.to_vec(),
        readiness: pb::Readiness::Available as i32,
        external_name: name.to_string(),
        ..Default::default()
    };
    match name {
        "not-json" => pb::ObserveResponse {
            at_provider_json: br#"{"state": tru"#.to_vec(),
            ..healthy
        },
        "at-provider-list" => pb::ObserveResponse {
            at_provider_json: b"[1, 2]".to_vec(),
            ..healthy
        },
        "late-init-string" => pb::ObserveResponse {
            late_init_json: br#""size""#.to_vec(),
            ..healthy
        },
        "readiness-42" => pb::ObserveResponse {
            readiness: 42,
            ..healthy
        },
        _ => healthy,
    }
}

#[tonic::async_trait]
impl pb::provider_server::Provider for Garbage {
    async fn get_schema(
        &self,
        _: Request<pb::GetSchemaRequest>,
    ) -> Result<Response<pb::GetSchemaResponse>, Status> {
        Ok(Response::new(self.schema.clone()))
    }
    async fn configure(
        &self,
        _: Request<pb::ConfigureRequest>,
    ) -> Result<Response<pb::ConfigureResponse>, Status> {
        Ok(Response::new(pb::ConfigureResponse {}))
    }
    async fn validate(
        &self,
        _: Request<pb::ValidateRequest>,
    ) -> Result<Response<pb::ValidateResponse>, Status> {
        Ok(Response::new(pb::ValidateResponse::default()))
    }
    async fn observe(
        &self,
        request: Request<pb::ObserveRequest>,
    ) -> Result<Response<pb::ObserveResponse>, Status> {
        let name = request
            .into_inner()
            .resource
            .map(|r| r.name)
            .unwrap_or_default();
        Ok(Response::new(observation_for(&name)))
    }
    async fn create(
        &self,
        request: Request<pb::CreateRequest>,
    ) -> Result<Response<pb::CreateResponse>, Status> {
        let name = request
            .into_inner()
            .resource
            .map(|r| r.name)
            .unwrap_or_default();
        Ok(Response::new(pb::CreateResponse {
            external_name: name,
            ..Default::default()
        }))
    }
    async fn update(
        &self,
        _: Request<pb::UpdateRequest>,
    ) -> Result<Response<pb::UpdateResponse>, Status> {
        Ok(Response::new(pb::UpdateResponse::default()))
    }
    async fn delete(
        &self,
        _: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        Ok(Response::new(pb::DeleteResponse {}))
    }
}

/// Serves `provider` with gRPC health on 127.0.0.1 for the life of the
/// test process; the port it listens on.
async fn serve_in_process(provider: Garbage) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let (_reporter, health) = tonic_health::server::health_reporter();
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(pb::provider_server::ProviderServer::new(provider));
    tokio::spawn(
        router.serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    port
}

/// A Provider whose command only prints the handshake pointing at `port`
/// and then waits: the plugin process the host supervises, serving from
/// this test process.
fn provider_at(name: &str, port: u16) -> String {
    format!(
        "---\napiVersion: pkg.plinth.dev/v1\nkind: Provider\nmetadata:\n  name: {name}\nspec:\n  command: /bin/sh\n  args: [\"-c\", \"echo '1|1|tcp|127.0.0.1:{port}|grpc'; exec sleep 3600\"]\n"
    )
}

async fn condition_message(plinth: &Plinth, resource: &str, condition: &str) -> String {
    plinth
        .kubectl(&[
            "get",
            resource,
            "-o",
            &format!("jsonpath={{.status.conditions[?(@.type==\"{condition}\")].message}}"),
        ])
        .await
        .stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_that_answer_garbage_are_refused_by_name_and_stall_nothing() {
    let mut plinth = Plinth::start().await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Healthy", "provider/nop", WAIT])
        .await;

    // A well-framed provider whose answers are garbage for some resources.
    let garbage = serve_in_process(Garbage {
        schema: garbage_schema(
            "garbage.plinth.dev",
            vec![garbage_kind(
                "garbage.plinth.dev",
                "GarbageResource",
                "garbageresources",
            )],
        ),
    })
    .await;
    // One whose GetSchema has a forProvider schema that is not JSON.
    let mut broken_kind = garbage_kind("broken.plinth.dev", "BrokenResource", "brokenresources");
    broken_kind.for_provider_schema_json = br#"{"type": obj"#.to_vec();
    let broken = serve_in_process(Garbage {
        schema: garbage_schema("broken.plinth.dev", vec![broken_kind]),
    })
    .await;
    // One that claims the nop provider's kind for itself.
    let usurper = serve_in_process(Garbage {
        schema: garbage_schema(
            "usurper.plinth.dev",
            vec![garbage_kind(
                "nop.plinth.dev",
                "NopResource",
                "nopresources",
            )],
        ),
    })
    .await;
    // And an address that answers every connection with bytes that are
    // not HTTP/2 at all.
    let junk = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let junk_port = junk.local_addr().expect("address").port();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut socket, _)) = junk.accept().await {
            tokio::spawn(async move {
                let _ = socket
                    .write_all(b"\x00\xffthis is not a gRPC server\r\n\r\n")
                    .await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            });
        }
    });

    let mut manifest = provider_at("garbage", garbage);
    manifest.push_str(&provider_at("broken", broken));
    manifest.push_str(&provider_at("usurper", usurper));
    manifest.push_str(&provider_at("junk", junk_port));
    plinth.apply_ok(&["apply", "-f", "-"], &manifest).await;

    plinth
        .kubectl_ok(&["wait", "--for=condition=Healthy", "provider/garbage", WAIT])
        .await;
    for (provider, want) in [
        (
            "broken",
            "the forProvider schema of BrokenResource.broken.plinth.dev that the provider sent is not JSON",
        ),
        (
            "usurper",
            "the provider serves NopResource.nop.plinth.dev, which the provider nop already serves",
        ),
    ] {
        plinth
            .kubectl_ok(&[
                "wait",
                "--for=condition=Installed=False",
                &format!("provider/{provider}"),
                WAIT,
            ])
            .await;
        let message = condition_message(&plinth, &format!("provider/{provider}"), "Installed").await;
        assert!(message.contains(want), "{provider}: {message:?}");
    }
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Installed=False",
            "provider/junk",
            WAIT,
        ])
        .await;
    let junk_error = plinth
        .kubectl(&[
            "get",
            "provider",
            "junk",
            "-o",
            "jsonpath={.status.lastError}",
        ])
        .await
        .stdout;
    assert!(
        junk_error.contains(&format!("127.0.0.1:{junk_port}")) || junk_error.contains("GetSchema"),
        "the junk provider's lastError names neither its address nor the call: {junk_error:?}"
    );
    // The usurper took nothing: the nop CRD still belongs to nop.
    let owner = plinth
        .kubectl(&[
            "get",
            "crd",
            "nopresources.nop.plinth.dev",
            "-o",
            "jsonpath={.metadata.labels}",
        ])
        .await
        .stdout;
    assert!(!owner.contains("usurper"), "{owner}");

    let mut resources = String::from(
        "apiVersion: garbage.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: default\nspec: {}\n---\napiVersion: nop.plinth.dev/v1alpha1\nkind: ProviderConfig\nmetadata:\n  name: default\nspec: {}\n",
    );
    for name in [
        "healthy",
        "not-json",
        "at-provider-list",
        "late-init-string",
        "readiness-42",
    ] {
        resources.push_str(&format!(
            "---\napiVersion: garbage.plinth.dev/v1alpha1\nkind: GarbageResource\nmetadata:\n  name: {name}\nspec:\n  forProvider: {{}}\n"
        ));
    }
    for i in 0..5 {
        resources.push_str(&nop(&format!("beside-garbage-{i}"), "{}"));
    }
    plinth.apply_ok(&["apply", "-f", "-"], &resources).await;

    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Ready",
            "garbageresource/healthy",
            WAIT,
        ])
        .await;
    for i in 0..5 {
        plinth
            .kubectl_ok(&[
                "wait",
                "--for=condition=Ready",
                &format!("nopresource/beside-garbage-{i}"),
                WAIT,
            ])
            .await;
    }
    for (name, want) in [
        (
            "not-json",
            "the provider answered Observe with atProvider that is not JSON",
        ),
        (
            "at-provider-list",
            "the provider answered Observe with atProvider that is an array, not a JSON object",
        ),
        (
            "late-init-string",
            "the provider answered Observe with lateInit that is a string, not a JSON object",
        ),
        (
            "readiness-42",
            "the provider answered Observe with readiness 42, which is not a value of the protocol's Readiness enum",
        ),
    ] {
        let resource = format!("garbageresource/{name}");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let message = condition_message(&plinth, &resource, "Synced").await;
            if message.contains(want) {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} never said what its provider answered; its Synced message: {message:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let ready = plinth
            .kubectl(&[
                "get",
                &resource,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])
            .await
            .stdout;
        assert_ne!(ready, "True", "{name} is Ready although its provider answered garbage");
    }
    // A provider that answers garbage for some resources is still healthy
    // and is not restarted for it: the fault is the answer, not the process.
    assert_eq!(
        plinth
            .kubectl(&[
                "get",
                "provider",
                "garbage",
                "-o",
                "jsonpath={.status.restarts}"
            ])
            .await
            .stdout,
        "0"
    );
    plinth.stop().await;
}
