//! Test support: a real `plinth up` process in a temporary directory, and
//! the real `kubectl` and `kube::Client` pointed at it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Longest any single kubectl call may take before the test fails.
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `plinth up`.
pub struct Plinth {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub url: String,
    pub port: u16,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    /// Where the server's stderr (its log) goes, when not to the test's.
    log: Option<PathBuf>,
}

/// Output of one kubectl run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Plinth {
    pub async fn start() -> Plinth {
        Plinth::start_with(&[]).await
    }

    /// Starts with extra `plinth up` flags.
    pub async fn start_with(extra: &[&str]) -> Plinth {
        Plinth::start_with_env(extra, &[]).await
    }

    /// Starts with extra `plinth up` flags and environment variables.
    pub async fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Plinth {
        Plinth::start_in_with_env(tempfile::tempdir().expect("temp dir"), extra, env).await
    }

    /// Starts on a data directory prepared beforehand (e.g. by `plinth restore`).
    pub async fn start_in(dir: tempfile::TempDir, extra: &[&str]) -> Plinth {
        Plinth::start_in_with_env(dir, extra, &[]).await
    }

    /// Starts with its log (stderr, at `PLINTH_LOG` from `env`) appended
    /// to `log`, for tests that read what the server logged.
    pub async fn start_logged(extra: &[&str], env: &[(&str, &str)], log: &Path) -> Plinth {
        let dir = tempfile::tempdir().expect("temp dir");
        Plinth::start_full(dir, extra, env, Some(log.to_path_buf())).await
    }

    async fn start_in_with_env(
        dir: tempfile::TempDir,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Plinth {
        Plinth::start_full(dir, extra, env, None).await
    }

    async fn start_full(
        dir: tempfile::TempDir,
        extra: &[&str],
        env: &[(&str, &str)],
        log: Option<PathBuf>,
    ) -> Plinth {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (child, url, kubeconfig) =
            spawn(dir.path(), "127.0.0.1:0", &extra, &env, log.as_deref()).await;
        let port = port_of(&url);
        Plinth {
            child: Some(child),
            dir,
            kubeconfig,
            url,
            port,
            extra,
            env,
            log,
        }
    }

    /// Replaces the extra `plinth up` flags, for the next start.
    pub fn set_extra(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
    }

    /// Drops the environment variables given at start, for the next start.
    pub fn clear_env(&mut self) {
        self.env.clear();
    }

    /// Waits for the server to exit on its own; returns its exit code.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let mut child = self.child.take().expect("a running server");
        let status = tokio::time::timeout(limit, child.wait())
            .await
            .expect("plinth up exited in time")
            .expect("wait for plinth up");
        status.code()
    }

    /// Stops the server with SIGTERM and waits for it.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status();
            }
            let _ = tokio::time::timeout(Duration::from_secs(15), child.wait()).await;
            let _ = child.kill().await;
        }
    }

    /// Kills the server with SIGKILL: no chance to flush anything.
    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }

    /// Starts the server again on the same data directory and port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let listen = format!("127.0.0.1:{}", self.port);
        let (child, url, kubeconfig) = spawn(
            self.dir.path(),
            &listen,
            &self.extra,
            &self.env,
            self.log.as_deref(),
        )
        .await;
        self.child = Some(child);
        self.url = url;
        self.kubeconfig = kubeconfig;
    }

    /// Starts again after `kill9`.
    pub async fn start_again(&mut self) {
        let listen = format!("127.0.0.1:{}", self.port);
        let (child, url, kubeconfig) = spawn(
            self.dir.path(),
            &listen,
            &self.extra,
            &self.env,
            self.log.as_deref(),
        )
        .await;
        self.child = Some(child);
        self.url = url;
        self.kubeconfig = kubeconfig;
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// The status and message of a condition of the first object a `kubectl
    /// get RESOURCE` lists, empty while it has none.
    pub async fn condition(&self, resource: &str, type_: &str) -> (String, String) {
        let jsonpath = format!(
            "jsonpath={{.items[0].status.conditions[?(@.type==\"{type_}\")].status}}|{{.items[0].status.conditions[?(@.type==\"{type_}\")].message}}"
        );
        let out = self
            .kubectl(&["get", resource, "-o", &jsonpath])
            .await
            .stdout;
        let (status, message) = out.split_once('|').unwrap_or(("", ""));
        (status.to_string(), message.to_string())
    }

    /// The pid of a provider this server runs as a child, from the socket
    /// name in its Provider's status (`.../plinth-NAME-PID.sock`).
    pub async fn provider_pid(&self, provider: &str) -> String {
        let address = self
            .kubectl_ok(&[
                "get",
                "provider",
                provider,
                "-o",
                "jsonpath={.status.address}",
            ])
            .await;
        address
            .rsplit('-')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".sock")
            .trim()
            .to_string()
    }

    /// Runs the real kubectl against this server.
    pub async fn kubectl(&self, args: &[&str]) -> Run {
        self.kubectl_stdin(args, None).await
    }

    /// Runs kubectl with `input` on its standard input (for `-f -`).
    pub async fn kubectl_stdin(&self, args: &[&str], input: Option<&str>) -> Run {
        let cache = self.dir.path().join("kubectl-cache");
        let mut cmd = Command::new(kubectl_bin());
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&cache)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("kubectl must be installed (see README)");
        if let Some(text) = input {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(text.as_bytes()).await.expect("write stdin");
            drop(stdin);
        }
        let output = tokio::time::timeout(KUBECTL_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish in {KUBECTL_TIMEOUT:?}"))
            .expect("kubectl output");
        Run {
            ok: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// kubectl that must succeed; returns stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let run = self.kubectl(args).await;
        assert!(
            run.ok,
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            run.stdout, run.stderr
        );
        run.stdout
    }

    /// kubectl with stdin that must succeed; returns stdout.
    pub async fn apply_ok(&self, args: &[&str], manifest: &str) -> String {
        let run = self.kubectl_stdin(args, Some(manifest)).await;
        assert!(
            run.ok,
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}\nmanifest:\n{manifest}",
            run.stdout, run.stderr
        );
        run.stdout
    }

    /// One key of a Secret's data, decoded, as a test compares it.
    pub async fn secret_value(&self, namespace: &str, name: &str, key: &str) -> String {
        use base64::Engine;
        let encoded = self
            .kubectl_ok(&[
                "-n",
                namespace,
                "get",
                "secret",
                name,
                "-o",
                &format!("jsonpath={{.data.{key}}}"),
            ])
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .expect("base64 Secret data");
        String::from_utf8(bytes).expect("UTF-8 Secret value")
    }

    pub async fn client(&self) -> kube::Client {
        let kc = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("client config");
        kube::Client::try_from(config).expect("client")
    }

    /// A raw HTTPS client trusting the server's CA, with no token.
    pub fn http(&self) -> reqwest::Client {
        let ca = std::fs::read(self.dir.path().join("ca.crt")).expect("ca.crt");
        let cert = reqwest::Certificate::from_pem(&ca).expect("ca pem");
        reqwest::Client::builder()
            .add_root_certificate(cert)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client")
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("token"))
            .expect("token")
            .trim()
            .to_string()
    }
}

impl Drop for Plinth {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

/// The plinth binary Cargo built for these tests: Cargo names it for the
/// plinth package's own tests; other packages' tests (the AWS provider's)
/// find it beside their test binary, in the same target directory.
pub fn plinth_bin() -> PathBuf {
    if let Some(path) = option_env!("CARGO_BIN_EXE_plinth") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binaries live in <target>/<profile>/deps");
    profile_dir.join("plinth")
}

pub fn kubectl_bin() -> PathBuf {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

async fn spawn(
    dir: &Path,
    listen: &str,
    extra: &[String],
    env: &[(String, String)],
    log: Option<&Path>,
) -> (Child, String, PathBuf) {
    // Tests that do not ask for the local provider's PostgreSQL get none, so
    // no test leaves a server behind it.
    let wants_postgres = extra.iter().any(|a| a == "--local-postgres-url")
        || env
            .iter()
            .any(|(k, _)| k == "PLINTH_LOCAL_POSTGRES_DIR" || k == "PLINTH_POSTGRES_BIN");
    let mut cmd = Command::new(plinth_bin());
    cmd.args(["up", "--listen", listen, "--data-dir"])
        .arg(dir)
        .args(extra);
    if !wants_postgres {
        cmd.arg("--no-local-postgres");
    }
    let stderr = match log {
        Some(path) => Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("open the log file"),
        ),
        None => Stdio::inherit(),
    };
    let mut child = cmd
        .env(
            "PLINTH_LOG",
            std::env::var("PLINTH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("start plinth up");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("plinth up ready within 30 s")
        .expect("read stdout")
        .expect("plinth up printed its ready line");
    // Keep draining stdout so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .expect("URL in ready line")
        .to_string();
    let kubeconfig = PathBuf::from(
        line.split("kubeconfig: ")
            .nth(1)
            .expect("kubeconfig path")
            .trim(),
    );
    (child, url, kubeconfig)
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port in URL")
}

/// Polls `check` every 100 ms until it returns true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The CronTab CRD from the Kubernetes documentation, with printer columns,
/// a status subresource, validation and a default (the README's example).
pub const CRONTAB_CRD: &str = include_str!("../../examples/crontab-crd.yaml");

/// The admin URL of the throwaway PostgreSQL server that `scripts/test.sh`
/// starts for the tests.
pub fn postgres_url() -> String {
    std::env::var("PLINTH_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("PLINTH_TEST_POSTGRES_URL is not set: run the tests with ./scripts/test.sh, which starts a throwaway PostgreSQL on 127.0.0.1")
    })
}

/// Runs a query with the real `psql`; returns its unaligned output.
pub async fn psql(url: &str, query: &str) -> Result<String, String> {
    let output = Command::new("psql")
        .args([url, "-X", "-tAc", query])
        .output()
        .await
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}
