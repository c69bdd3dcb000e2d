//! The cluster manifests in deploy/, offline: every overlay renders with the
//! real `kubectl kustomize` and validates against the Kubernetes 1.33
//! schemas with `kubernetes-validate` (PyPI); the controller's security
//! settings and RBAC are what deploy/README.md says; and the certificates
//! `plinth certs` writes carry a real mTLS connection to a provider.

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;

const OVERLAYS: &[&str] = &["plinth-certs", "cert-manager"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn kustomize(overlay: &str) -> String {
    let out = std::process::Command::new(support::kubectl_bin())
        .arg("kustomize")
        .arg(repo().join("deploy/overlays").join(overlay))
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/overlays/{overlay} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn validator() -> String {
    std::env::var("PLINTH_TEST_KUBERNETES_VALIDATE").unwrap_or_else(|_| {
        panic!("PLINTH_TEST_KUBERNETES_VALIDATE is not set: run the tests with ./scripts/test.sh, which installs kubernetes-validate into .venv")
    })
}

#[test]
fn every_overlay_renders_and_validates_against_kubernetes_1_33() {
    for overlay in OVERLAYS {
        let rendered = kustomize(overlay);
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), &rendered).expect("write the rendered overlay");
        let out = std::process::Command::new(validator())
            .args(["-k", "1.33.0", "--strict"])
            .arg(file.path())
            .output()
            .expect("run kubernetes-validate");
        let report = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{overlay}: {report}");
        for line in report.lines() {
            // Custom resources have no schema among Kubernetes' own.
            let unknown_custom = line.starts_with("WARN")
                && ["Provider", "Certificate", "Issuer"]
                    .iter()
                    .any(|k| line.contains(&format!("schema for kind {k} ")));
            assert!(
                line.starts_with("INFO") && line.contains("passed") || unknown_custom,
                "{overlay}: {line}"
            );
        }
        assert!(
            report.contains("passed for resource deployment/plinth-controller"),
            "{report}"
        );
    }
}

fn documents(overlay: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(&kustomize(overlay)).expect("YAML")
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_controller_runs_locked_down_with_least_privilege() {
    let docs = documents("plinth-certs");
    let deployment = find(&docs, "Deployment", "plinth-controller");
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(container["resources"]["requests"]["cpu"].is_string());
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "controller");
    assert!(args.contains(&"--shards=4"), "{args:?}");
    find(&docs, "PodDisruptionBudget", "plinth-controller");
    let policy = find(&docs, "NetworkPolicy", "plinth-providers-and-functions");
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
            ["app.kubernetes.io/name"],
        "plinth-controller"
    );
    for p in ["local", "nop", "aws", "gcp", "azure"] {
        let provider = find(&docs, "Deployment", &format!("plinth-provider-{p}"));
        let c = &provider["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true, "{p}");
        let endpoint = find(&docs, "Provider", p)["spec"]["endpoint"].clone();
        assert_eq!(
            endpoint,
            format!("plinth-provider-{p}.plinth-system.svc:9443")
        );
    }
    // No wildcard verbs anywhere, and no wildcard resources in the core group.
    for role in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
    {
        for rule in role["rules"].as_array().into_iter().flatten() {
            let verbs = rule["verbs"].as_array().expect("verbs");
            assert!(!verbs.contains(&Value::from("*")), "wildcard verbs: {rule}");
            let groups = rule["apiGroups"].as_array().expect("apiGroups");
            if groups.contains(&Value::from("")) {
                let resources = rule["resources"].as_array().expect("resources");
                assert!(
                    !resources.contains(&Value::from("*")),
                    "core wildcard: {rule}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plinth_certs_carry_mtls_from_controller_to_provider() {
    use base64::Engine;
    let out = tempfile::tempdir().expect("temp dir");
    let run = std::process::Command::new(support::plinth_bin())
        .args(["certs", "--output"])
        .arg(out.path())
        .output()
        .expect("run plinth certs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(out.path().join("secrets.yaml")).expect("secrets.yaml");
    let secrets: Vec<Value> = serde_saphyr::from_multiple(&text).expect("YAML");
    let data = |name: &str, key: &str| -> Vec<u8> {
        let secret = find(&secrets, "Secret", name);
        base64::engine::general_purpose::STANDARD
            .decode(secret["data"][key].as_str().expect("data"))
            .expect("base64")
    };
    // The nop provider serves with its certificate, as its Deployment does.
    let tls = tempfile::tempdir().expect("tls dir");
    for key in ["ca.crt", "tls.crt", "tls.key"] {
        std::fs::write(tls.path().join(key), data("plinth-provider-nop-tls", key)).expect("write");
    }
    let mut nop =
        tokio::process::Command::new(support::plinth_bin().with_file_name("plinth-provider-nop"))
            .env("PLINTH_PROVIDER_LISTEN", "127.0.0.1:0")
            .env("PLINTH_PROVIDER_TLS_DIR", tls.path())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the nop provider");
    use tokio::io::AsyncBufReadExt;
    let line = tokio::io::BufReader::new(nop.stdout.take().expect("stdout"))
        .lines()
        .next_line()
        .await
        .expect("read")
        .expect("handshake line");
    let endpoint = line.split('|').nth(3).expect("address").to_string();
    // The controller connects with its client certificate, checking the
    // provider's against the Service name the Provider object gives.
    let config = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(data(
            "plinth-controller-client",
            "ca.crt",
        )))
        .identity(tonic::transport::Identity::from_pem(
            data("plinth-controller-client", "tls.crt"),
            data("plinth-controller-client", "tls.key"),
        ))
        .domain_name("plinth-provider-nop.plinth-system.svc");
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{endpoint}"))
        .expect("endpoint")
        .tls_config(config)
        .expect("tls")
        .connect()
        .await
        .expect("an mTLS connection with plinth certs' certificates");
    let schema = provider_sdk::pb::provider_client::ProviderClient::new(channel)
        .get_schema(provider_sdk::pb::GetSchemaRequest {})
        .await
        .expect("GetSchema over mTLS")
        .into_inner();
    assert_eq!(schema.provider_config_group, "nop.plinth.dev");
    let _ = nop.kill().await;
}
