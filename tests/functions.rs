//! Composition functions end to end: `mode: Pipeline` Compositions whose
//! steps run tests/functions/function.py, a function written with
//! Crossplane's own Python SDK (crossplane-function-sdk-python from PyPI),
//! supervised by `plinth up` and driven through the real kubectl.

mod support;

use std::time::Duration;

use support::{eventually, postgres_url, psql, Plinth};

const WAIT: &str = "--timeout=120s";
const XRD: &str = include_str!("../examples/functions/xrd.yaml");

/// The interpreter with the SDK that scripts/test.sh prepares.
fn python() -> String {
    std::env::var("PLINTH_TEST_FUNCTION_PYTHON").unwrap_or_else(|_| {
        panic!("PLINTH_TEST_FUNCTION_PYTHON is not set: run the tests with ./scripts/test.sh, which installs crossplane-function-sdk-python into .venv")
    })
}

fn function_py() -> String {
    format!(
        "{}/../../tests/functions/function.py",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// examples/functions/function.yaml, run with the tests' Python.
fn function_yaml() -> String {
    include_str!("../examples/functions/function.yaml").replace(
        r#"'[".venv/bin/python", "tests/functions/function.py"]'"#,
        &format!("'[\"{}\", \"{}\"]'", python(), function_py()),
    )
}

/// A Composition of one or more steps, each `(step, input)`.
fn composition(name: &str, steps: &[(&str, &str)]) -> String {
    let mut out = format!(
        "apiVersion: apiextensions.crossplane.io/v1\nkind: Composition\nmetadata:\n  name: {name}\nspec:\n  compositeTypeRef:\n    apiVersion: fn.example.org/v1alpha1\n    kind: XAppDatabase\n  mode: Pipeline\n  pipeline:\n"
    );
    for (step, input) in steps {
        out.push_str(&format!(
            "  - step: {step}\n    functionRef:\n      name: function-plinth-test\n    input: {{\"apiVersion\": \"test.plinth.dev/v1\", \"kind\": \"Input\", {input}}}\n"
        ));
    }
    out
}

fn xr(name: &str, composition: &str, parameters: &str) -> String {
    format!("apiVersion: fn.example.org/v1alpha1\nkind: XAppDatabase\nmetadata:\n  name: {name}\nspec:\n  compositionRef:\n    name: {composition}\n  parameters: {parameters}\n")
}

async fn install(plinth: &Plinth) {
    plinth.apply_ok(&["apply", "-f", "-"], XRD).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Offered",
            "xrd/xappdatabases.fn.example.org",
            WAIT,
        ])
        .await;
    plinth
        .apply_ok(&["apply", "-f", "-"], &function_yaml())
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Healthy",
            "function/function-plinth-test",
            WAIT,
        ])
        .await;
}

async fn jsonpath(plinth: &Plinth, args: &[&str], path: &str) -> String {
    let mut all: Vec<&str> = args.to_vec();
    let output = format!("jsonpath={path}");
    all.extend(["-o", &output]);
    plinth.kubectl(&all).await.stdout.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_function_composes_a_database_end_to_end() {
    let url = postgres_url();
    let plinth = Plinth::start_with(&["--local-postgres-url", &url, "--no-builtin-apis"]).await;
    install(&plinth).await;
    let functions = plinth.kubectl_ok(&["get", "functions"]).await;
    assert!(
        functions.contains("INSTALLED") && functions.contains("HEALTHY"),
        "{functions}"
    );
    let row = functions
        .lines()
        .find(|l| l.starts_with("function-plinth-test"))
        .unwrap_or_default();
    assert_eq!(
        row.split_whitespace().take(3).collect::<Vec<_>>(),
        ["function-plinth-test", "True", "True"],
        "{functions}"
    );

    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            include_str!("../examples/functions/composition.yaml"),
        )
        .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            include_str!("../examples/functions/claim.yaml"),
        )
        .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "appdatabase/orders", WAIT])
        .await;

    // psql logs in with what the function passed to the claim's Secret.
    let uri = plinth.secret_value("default", "orders-appdb", "uri").await;
    let user = plinth
        .secret_value("default", "orders-appdb", "username")
        .await;
    assert_eq!(
        psql(&uri, "SELECT current_user")
            .await
            .expect("psql with the claim's Secret"),
        user
    );
    assert_eq!(
        plinth
            .secret_value("default", "orders-appdb", "function")
            .await,
        "python",
        "a connection detail the function set itself"
    );

    // The desired composite status, the function's condition on XR and
    // claim, and its results as Events.
    let xr = jsonpath(
        &plinth,
        &["get", "appdatabase", "orders"],
        "{.spec.resourceRef.name}",
    )
    .await;
    assert_eq!(
        jsonpath(
            &plinth,
            &["get", "xappdatabase", &xr],
            "{.status.databaseName}"
        )
        .await,
        format!("{xr}-database")
    );
    let database = jsonpath(
        &plinth,
        &["get", "xappdatabase", &xr],
        "{.spec.resourceRefs[0].name}",
    )
    .await;
    assert_eq!(database, format!("{xr}-database"));
    assert_eq!(
        jsonpath(
            &plinth,
            &["get", "database", &database],
            "{.metadata.annotations.crossplane\\.io/composition-resource-name}"
        )
        .await,
        "database"
    );
    for target in [
        vec!["get", "xappdatabase", xr.as_str()],
        vec!["get", "appdatabase", "orders"],
    ] {
        assert_eq!(
            jsonpath(
                &plinth,
                &target,
                "{.status.conditions[?(@.type=='DatabaseReady')].status}"
            )
            .await,
            "True",
            "{target:?}"
        );
    }
    eventually(
        Duration::from_secs(30),
        "the function's results as Events on the claim",
        || async {
            plinth
                // describe finds Events by the claim's kind, name and UID.
                .kubectl(&["describe", "appdatabase", "orders"])
                .await
                .stdout
                .contains("warning from the function")
        },
    )
    .await;

    // plinth render with the same function prints what the controller applied.
    let dir = plinth.dir.path();
    let xr_file = dir.join("xr.yaml");
    let live_xr = plinth
        .kubectl_ok(&["get", "xappdatabase", &xr, "-o", "yaml"])
        .await;
    std::fs::write(&xr_file, live_xr).expect("write xr");
    let composition_file = dir.join("composition.yaml");
    std::fs::write(
        &composition_file,
        include_str!("../examples/functions/composition.yaml"),
    )
    .expect("write composition");
    let functions_file = dir.join("functions.yaml");
    std::fs::write(&functions_file, function_yaml()).expect("write functions");
    let rendered = tokio::process::Command::new(support::plinth_bin())
        .arg("render")
        .args([&xr_file, &composition_file, &functions_file])
        .output()
        .await
        .expect("run plinth render");
    let stdout = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        rendered.status.success(),
        "plinth render failed: {}\n{stdout}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let docs: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&stdout).expect("plinth render prints YAML");
    let rendered_db = docs
        .iter()
        .find(|d| d["kind"] == "Database")
        .unwrap_or_else(|| panic!("no Database in the render: {stdout}"));
    let live: serde_json::Value = serde_json::from_str(
        &plinth
            .kubectl_ok(&["get", "database", &database, "-o", "json"])
            .await,
    )
    .expect("the Database as JSON");
    assert_eq!(rendered_db["metadata"]["name"], live["metadata"]["name"]);
    for path in [
        "/metadata/annotations/crossplane.io~1composition-resource-name",
        "/metadata/labels/crossplane.io~1composite",
        "/metadata/labels/crossplane.io~1claim-name",
    ] {
        assert_eq!(rendered_db.pointer(path), live.pointer(path), "{path}");
    }
    assert!(
        contained(&rendered_db["spec"], &live["spec"]),
        "what render prints is what the controller applied:\nrendered: {}\nlive: {}",
        rendered_db["spec"],
        live["spec"]
    );
    let rendered_xr = docs
        .iter()
        .find(|d| d["kind"] == "XAppDatabase")
        .expect("the XR in the render");
    assert_eq!(
        rendered_xr["status"]["databaseName"],
        format!("{xr}-database")
    );
}

/// Whether every field of `part` is in `whole` with the same value
/// (`whole` also has what the API server and provider defaulted).
fn contained(part: &serde_json::Value, whole: &serde_json::Value) -> bool {
    match (part, whole) {
        (serde_json::Value::Object(p), serde_json::Value::Object(w)) => p
            .iter()
            .all(|(k, v)| w.get(k).is_some_and(|wv| contained(v, wv))),
        _ => part == whole,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_results_context_requirements_and_pruning() {
    let plinth = Plinth::start_with(&["--no-builtin-apis"]).await;
    install(&plinth).await;
    for c in [
        composition("nops", &[("compose", "\"behaviour\": \"desire-nops\"")]),
        composition("fatal", &[("refuse", "\"behaviour\": \"fatal\", \"message\": \"region eu-mars-1 does not exist\"")]),
        composition(
            "context",
            &[
                ("write", "\"behaviour\": \"set-context\", \"greeting\": \"hello from step one\""),
                ("read", "\"behaviour\": \"read-context\""),
            ],
        ),
        composition(
            "requires",
            &[("read-config", "\"behaviour\": \"require-configmap\", \"name\": \"settings\", \"namespace\": \"default\"")],
        ),
    ] {
        plinth.apply_ok(&["apply", "-f", "-"], &c).await;
    }

    // Two resources desired, then one: the other is deleted.
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            &xr("p1", "nops", "{\"names\": [\"a\", \"b\"]}"),
        )
        .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "xappdatabase/p1", WAIT])
        .await;
    plinth
        .kubectl_ok(&["get", "nopresource", "p1-a", "p1-b"])
        .await;
    plinth
        .kubectl_ok(&[
            "patch",
            "xappdatabase",
            "p1",
            "--type=merge",
            "-p",
            r#"{"spec":{"parameters":{"names":["a"]}}}"#,
        ])
        .await;
    eventually(Duration::from_secs(30), "p1-b to be deleted", || async {
        !plinth.kubectl(&["get", "nopresource", "p1-b"]).await.ok
    })
    .await;
    plinth.kubectl_ok(&["get", "nopresource", "p1-a"]).await;

    // A Fatal result: Synced=False with its message, and nothing deleted.
    plinth
        .kubectl_ok(&[
            "patch",
            "xappdatabase",
            "p1",
            "--type=merge",
            "-p",
            r#"{"spec":{"compositionRef":{"name":"fatal"}}}"#,
        ])
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Synced=False",
            "xappdatabase/p1",
            WAIT,
        ])
        .await;
    let message = jsonpath(
        &plinth,
        &["get", "xappdatabase", "p1"],
        "{.status.conditions[?(@.type=='Synced')].message}",
    )
    .await;
    assert!(
        message.contains(
            "pipeline step \"refuse\" returned a fatal result: region eu-mars-1 does not exist"
        ),
        "{message}"
    );
    plinth.kubectl_ok(&["get", "nopresource", "p1-a"]).await;

    // Context from step one reaches step two.
    plinth
        .apply_ok(&["apply", "-f", "-"], &xr("p2", "context", "{}"))
        .await;
    eventually(
        Duration::from_secs(60),
        "the greeting read by step two",
        || async {
            jsonpath(
                &plinth,
                &["get", "xappdatabase", "p2"],
                "{.status.greeting}",
            )
            .await
                == "hello from step one"
        },
    )
    .await;

    // A required ConfigMap arrives on the function's next round, and one
    // made or changed later reaches the XR through the watch on it.
    plinth
        .kubectl_ok(&[
            "-n",
            "default",
            "create",
            "configmap",
            "settings",
            "--from-literal=value=42",
        ])
        .await;
    plinth
        .apply_ok(&["apply", "-f", "-"], &xr("p3", "requires", "{}"))
        .await;
    eventually(
        Duration::from_secs(60),
        "the ConfigMap's value on the XR",
        || async {
            jsonpath(
                &plinth,
                &["get", "xappdatabase", "p3"],
                "{.status.configValue}",
            )
            .await
                == "42"
        },
    )
    .await;
    plinth
        .kubectl_ok(&[
            "-n",
            "default",
            "patch",
            "configmap",
            "settings",
            "--type=merge",
            "-p",
            r#"{"data":{"value":"43"}}"#,
        ])
        .await;
    eventually(
        Duration::from_secs(20),
        "the changed value on the XR",
        || async {
            jsonpath(
                &plinth,
                &["get", "xappdatabase", "p3"],
                "{.status.configValue}",
            )
            .await
                == "43"
        },
    )
    .await;
    plinth
        .apply_ok(&["apply", "-f", "-"], &composition("requires-later", &[("read-config", "\"behaviour\": \"require-configmap\", \"name\": \"later\", \"namespace\": \"default\"")]))
        .await;
    plinth
        .apply_ok(&["apply", "-f", "-"], &xr("p4", "requires-later", "{}"))
        .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "xappdatabase/p4", WAIT])
        .await;
    plinth
        .kubectl_ok(&[
            "-n",
            "default",
            "create",
            "configmap",
            "later",
            "--from-literal=value=7",
        ])
        .await;
    eventually(
        Duration::from_secs(20),
        "a ConfigMap made after the XR",
        || async {
            jsonpath(
                &plinth,
                &["get", "xappdatabase", "p4"],
                "{.status.configValue}",
            )
            .await
                == "7"
        },
    )
    .await;
}

/// The PID of the process whose command line holds `needle`.
fn pid_with_argument(needle: &str) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            args.contains(&needle.as_bytes()).then_some(pid)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_function_times_out_and_a_killed_one_is_restarted() {
    let plinth = Plinth::start_with(&["--no-builtin-apis", "--function-timeout", "3s"]).await;
    install(&plinth).await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            &composition("hang", &[("wait-forever", "\"behaviour\": \"hang\"")]),
        )
        .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            &composition("nops", &[("compose", "\"behaviour\": \"desire-nops\"")]),
        )
        .await;
    plinth
        .apply_ok(&["apply", "-f", "-"], &xr("h1", "hang", "{}"))
        .await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Synced=False",
            "xappdatabase/h1",
            WAIT,
        ])
        .await;
    let message = jsonpath(
        &plinth,
        &["get", "xappdatabase", "h1"],
        "{.status.conditions[?(@.type=='Synced')].message}",
    )
    .await;
    assert!(
        message.contains("pipeline step \"wait-forever\"")
            && message.contains("function \"function-plinth-test\" did not answer within 3s"),
        "{message}"
    );

    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            &xr("k1", "nops", "{\"names\": [\"a\"]}"),
        )
        .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "xappdatabase/k1", WAIT])
        .await;
    let address = jsonpath(
        &plinth,
        &["get", "function", "function-plinth-test"],
        "{.status.address}",
    )
    .await;
    let pid = pid_with_argument(&address)
        .unwrap_or_else(|| panic!("no process serves the function at {address}"));
    kill_9(pid);
    eventually(
        Duration::from_secs(60),
        "the function to be restarted",
        || async {
            let restarts = jsonpath(
                &plinth,
                &["get", "function", "function-plinth-test"],
                "{.status.restarts}",
            )
            .await;
            let healthy = jsonpath(
                &plinth,
                &["get", "function", "function-plinth-test"],
                "{.status.conditions[?(@.type=='Healthy')].status}",
            )
            .await;
            restarts.parse::<u64>().unwrap_or(0) >= 1 && healthy == "True"
        },
    )
    .await;
    plinth
        .kubectl_ok(&[
            "patch",
            "xappdatabase",
            "k1",
            "--type=merge",
            "-p",
            r#"{"spec":{"parameters":{"names":["a","c"]}}}"#,
        ])
        .await;
    eventually(
        Duration::from_secs(60),
        "k1-c from the restarted function",
        || async { plinth.kubectl(&["get", "nopresource", "k1-c"]).await.ok },
    )
    .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "xappdatabase/k1", WAIT])
        .await;
}

/// SIGKILL, as a crash looks.
fn kill_9(pid: i32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 {pid} failed");
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate, PEM.
fn pki() -> (String, (String, String), (String, String)) {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        SanType,
    };
    // Distinct names: gRPC's BoringSSL takes a leaf whose issuer is its
    // own subject (rcgen's default name for all three) as self-signed.
    let named = |cn: &str| {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = named("plinth test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.clone().self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |server: bool| {
        let key = KeyPair::generate().expect("key");
        let mut params = named(if server { "function" } else { "plinth" });
        if server {
            params.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().expect("ip"))];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        } else {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }
        let cert = params.signed_by(&key, &issuer).expect("leaf");
        (cert.pem(), key.serialize_pem())
    };
    (ca.pem(), leaf(true), leaf(false))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_served_elsewhere_is_reached_over_mtls() {
    let (ca, (server_crt, server_key), (client_crt, client_key)) = pki();
    let certs = tempfile::tempdir().expect("temp dir");
    for (file, pem) in [
        ("ca.crt", &ca),
        ("tls.crt", &server_crt),
        ("tls.key", &server_key),
    ] {
        std::fs::write(certs.path().join(file), pem).expect("write cert");
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let address = format!("127.0.0.1:{port}");
    // Served as Crossplane serves a packaged function: the SDK's own mTLS,
    // which demands a client certificate signed by ca.crt.
    let mut function = tokio::process::Command::new(python())
        .args([
            function_py().as_str(),
            "--address",
            &address,
            "--tls-server-certs-dir",
        ])
        .arg(certs.path())
        .kill_on_drop(true)
        .spawn()
        .expect("start the function");

    let plinth = Plinth::start_with(&["--no-builtin-apis"]).await;
    plinth.apply_ok(&["apply", "-f", "-"], XRD).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Offered",
            "xrd/xappdatabases.fn.example.org",
            WAIT,
        ])
        .await;
    let secret_dir = plinth.dir.path().join("client");
    std::fs::create_dir_all(&secret_dir).expect("client dir");
    for (file, pem) in [
        ("ca.crt", &ca),
        ("tls.crt", &client_crt),
        ("tls.key", &client_key),
    ] {
        std::fs::write(secret_dir.join(file), pem).expect("write client cert");
    }
    let from = |f: &str| format!("--from-file={f}={}", secret_dir.join(f).display());
    plinth
        .kubectl_ok(&[
            "-n",
            "plinth-system",
            "create",
            "secret",
            "generic",
            "plinth-function-tls-client",
            &from("ca.crt"),
            &from("tls.crt"),
            &from("tls.key"),
        ])
        .await;
    let remote = format!(
        "apiVersion: pkg.crossplane.io/v1\nkind: Function\nmetadata:\n  name: function-plinth-test\n  annotations:\n    plinth.dev/function-endpoint: \"{address}\"\nspec:\n  package: xpkg.example.org/plinth/function-plinth-test:v0.1.0\n"
    );
    plinth.apply_ok(&["apply", "-f", "-"], &remote).await;
    plinth
        .kubectl_ok(&[
            "wait",
            "--for=condition=Healthy",
            "function/function-plinth-test",
            WAIT,
        ])
        .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            &composition("nops", &[("compose", "\"behaviour\": \"desire-nops\"")]),
        )
        .await;
    plinth
        .apply_ok(
            &["apply", "-f", "-"],
            &xr("m1", "nops", "{\"names\": [\"a\"]}"),
        )
        .await;
    plinth
        .kubectl_ok(&["wait", "--for=condition=Ready", "xappdatabase/m1", WAIT])
        .await;
    plinth.kubectl_ok(&["get", "nopresource", "m1-a"]).await;
    let _ = function.kill().await;
}
