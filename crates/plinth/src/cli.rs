//! Argument parsing and dispatch for the `plinth` binary.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

/// Plinth: a multicloud control plane in the style of Crossplane.
#[derive(Parser, Debug)]
#[command(name = "plinth", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the embedded control plane: a Kubernetes-compatible API server on loopback.
    Up(UpArgs),
    /// Run the controllers against an API someone else serves (a cluster, or
    /// `plinth up --no-controllers`), leading by a Lease.
    Controller(crate::controller::ControllerArgs),
    /// Write the mTLS Secrets cluster mode needs: a CA, the controller's
    /// client certificate, each provider's serving certificate.
    Certs(crate::certs::CertsArgs),
    /// Write the CRDs of Plinth's own kinds, one file each, for a cluster.
    Crds(crate::crds::CrdsArgs),
    /// Print the admin kubeconfig of a data directory.
    Kubeconfig(DataDirArgs),
    /// Run a benchmark and print its figures.
    Bench(BenchArgs),
    /// Render a composite resource with a Composition, offline, and print the composed resources.
    Render(crate::render::RenderArgs),
    /// Show a claim or composite resource and everything composed from it, with their state.
    Trace(crate::trace::TraceArgs),
    /// Check manifests offline against the built-in APIs and the XRDs among them.
    Validate(crate::validate::ValidateArgs),
    /// Export every XRD, claim, managed resource and OAM Application as
    /// Backstage catalog entities (YAML).
    Catalog(crate::catalog::CatalogArgs),
    /// Dapr: write a namespace's Components for Dapr's standalone mode.
    Dapr(crate::dapr::DaprArgs),
    /// Users of the embedded API server: add (a token, a client
    /// certificate and a kubeconfig), remove, list.
    User(crate::user::UserArgs),
    /// Write a consistent snapshot of the store, while `plinth up` serves.
    Backup(crate::backup::BackupArgs),
    /// Install a snapshot from `plinth backup` as a data directory's store.
    Restore(crate::backup::RestoreArgs),
}

#[derive(Args, Debug, Clone)]
pub struct DataDirArgs {
    /// Where state, credentials and the kubeconfig live
    /// [default: $XDG_DATA_HOME/plinth, else ~/.local/share/plinth].
    #[arg(long, env = "PLINTH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    #[command(flatten)]
    pub data: DataDirArgs,
    /// Address to serve the API on: IP:PORT or HOST:PORT (e.g. localhost:6443).
    #[arg(long, default_value = "127.0.0.1:6443", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// How often old watch history is compacted.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub compaction_interval: Duration,
    /// How many of the newest revisions compaction keeps for resuming watches.
    #[arg(long, default_value_t = 100_000)]
    pub compaction_keep: u64,
    /// How often watches that allow bookmarks receive one.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub bookmark_interval: Duration,
    /// How long an Event is kept after its last write, as kube-apiserver's --event-ttl.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub event_ttl: Duration,
    /// Do not install the providers shipped next to the plinth binary.
    #[arg(long)]
    pub no_bundled_providers: bool,
    /// How often available managed resources are checked for drift (±10 % jitter).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub poll_interval: Duration,
    /// Managed-resource reconciles per second, across all kinds.
    #[arg(long, default_value_t = 1000)]
    pub max_reconcile_rate: u32,
    /// Do not install the built-in DBaaS and Compute interfaces.
    #[arg(long)]
    pub no_builtin_apis: bool,
    /// How long a composition function may take to answer one call
    /// before its pipeline step fails (Crossplane's default is 30s).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub function_timeout: Duration,
    /// How long a provider may take to answer one call before it fails
    /// (DeadlineExceeded, retried with backoff); a provider whose calls
    /// time out three times in a row is restarted.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub provider_timeout: Duration,
    /// Admin URL of an existing PostgreSQL server for the local provider's
    /// default ProviderConfig, e.g. postgresql://postgres:PASSWORD@127.0.0.1:5432/postgres.
    #[arg(long, env = "PLINTH_LOCAL_POSTGRES_URL")]
    pub local_postgres_url: Option<String>,
    /// Leave the local provider's default ProviderConfig alone: run no
    /// PostgreSQL server and point it at none.
    #[arg(long, conflicts_with = "local_postgres_url")]
    pub no_local_postgres: bool,
    /// Where the Backstage catalog is served over HTTPS [default: the API's
    /// address with the next port; with --listen on port 0, any free port].
    /// The URL is written to the data directory's catalog-url file.
    #[arg(long, value_parser = parse_listen)]
    pub catalog_listen: Option<SocketAddr>,
    /// Serve no Backstage catalog endpoint.
    #[arg(long)]
    pub no_catalog: bool,
    /// Do not serve Dapr's Component CRD (dapr.io/v1alpha1), for instance
    /// where Dapr's own chart installs it.
    #[arg(long)]
    pub no_dapr: bool,
    /// Write one JSON line per request here, as kube-apiserver's audit log
    /// (audit.k8s.io/v1 Events at the Metadata level: never a body).
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// How requests are authorized: RBAC (Roles and bindings, as
    /// Kubernetes), or AlwaysAllow (any authenticated user may do anything).
    #[arg(long, value_enum, default_value = "RBAC")]
    pub authorization_mode: AuthorizationMode,
    /// Encrypt Secrets in the store with AES-GCM, under the keys of this
    /// kube-apiserver EncryptionConfiguration (apiserver.config.k8s.io/v1):
    /// the first provider writes, every listed key reads.
    #[arg(long, value_name = "FILE", alias = "encryption-provider-config")]
    pub encryption_key_file: Option<PathBuf>,
    /// At start, rewrite every stored Secret under the key file's first
    /// provider (after a key rotation, or to encrypt a store written plain).
    #[arg(long, requires = "encryption_key_file")]
    pub rewrite_secrets: bool,
    /// Serve the API alone, with no controllers, providers or functions,
    /// so `plinth controller` processes can run against it as against a
    /// cluster.
    #[arg(long)]
    pub no_controllers: bool,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub target: BenchTarget,
}

#[derive(Subcommand, Debug, Clone)]
pub enum BenchTarget {
    /// The API server: writes, reads, lists, watch fan-out and restart time.
    Api(crate::bench::ApiBenchArgs),
    /// Providers: the plugin RPC round trip, and many nop resources to Ready.
    Providers(crate::bench_providers::ProviderBenchArgs),
    /// Composition: claims to Ready one at a time, in a burst, and at scale.
    Composition(crate::bench_composition::CompositionBenchArgs),
    /// AWS: RDS claims to Ready one at a time and in a burst, against moto.
    Aws(crate::bench_aws::AwsBenchArgs),
    /// Claims on the nop (with failing calls) and local providers while
    /// plinth up is killed with SIGKILL and restarted; checks that every
    /// claim ends Ready, with each external resource made once and none
    /// leaked or lost.
    Chaos(crate::bench_chaos::ChaosBenchArgs),
}

/// kube-apiserver's `--authorization-mode` values Plinth has.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationMode {
    #[value(name = "RBAC")]
    Rbac,
    #[value(name = "AlwaysAllow")]
    AlwaysAllow,
}

/// `IP:PORT`, or `HOST:PORT` resolved now (IPv4 first, so `localhost` binds
/// 127.0.0.1 where the kubeconfig and certificate expect it).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| {
            format!("{s:?} is not an address such as 127.0.0.1:6443 or localhost:6443: {e}")
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// Parses `500ms`, `30s`, `5m`, `1h`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 500ms, 30s, 5m or 1h"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{s:?} has an unknown unit; use ms, s, m or h")),
    };
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(format!("{s:?} must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

impl DataDirArgs {
    /// The data directory, from the flag or the XDG default.
    pub fn resolve(&self) -> Result<PathBuf> {
        if let Some(dir) = &self.data_dir {
            return Ok(dir.clone());
        }
        if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            return Ok(PathBuf::from(xdg).join("plinth"));
        }
        let home = std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .context("neither --data-dir, XDG_DATA_HOME nor HOME is set; pass --data-dir")?;
        Ok(PathBuf::from(home).join(".local/share/plinth"))
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("plinth: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => crate::up::run(args).await,
            Command::Controller(args) => crate::controller::run(args).await,
            Command::Crds(args) => crate::crds::run(args).await,
            Command::Certs(args) => crate::certs::run(args),
            Command::Kubeconfig(args) => print_kubeconfig(&args),
            Command::Bench(args) => match args.target {
                BenchTarget::Api(args) => crate::bench::run_api(args).await,
                BenchTarget::Providers(args) => crate::bench_providers::run(args).await,
                BenchTarget::Composition(args) => crate::bench_composition::run(args).await,
                BenchTarget::Aws(args) => crate::bench_aws::run(args).await,
                BenchTarget::Chaos(args) => crate::bench_chaos::run(args).await,
            },
            Command::Render(args) => crate::render::run(args).await,
            Command::Trace(args) => crate::trace::run(args).await,
            Command::Catalog(args) => crate::catalog::run(args).await,
            Command::Dapr(args) => crate::dapr::run(args).await,
            Command::User(args) => crate::user::run(args),
            Command::Backup(args) => crate::backup::backup(args),
            Command::Restore(args) => crate::backup::restore(args),
            Command::Validate(args) => match crate::validate::run(args) {
                Ok(true) => Ok(()),
                Ok(false) => Err(anyhow::anyhow!("some manifests are invalid")),
                Err(e) => Err(e),
            },
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("plinth: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_kubeconfig(args: &DataDirArgs) -> Result<()> {
    let dir = args.resolve()?;
    let path = dir.join(apiserver::pki::KUBECONFIG);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read {}; run `plinth up --data-dir {}` first",
            path.display(),
            dir.display()
        )
    })?;
    print!("{text}");
    Ok(())
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PLINTH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            parse_listen("127.0.0.1:6443").unwrap(),
            "127.0.0.1:6443".parse().unwrap()
        );
        let local = parse_listen("localhost:7443").unwrap();
        assert!(local.ip().is_loopback(), "{local}");
        assert_eq!(local.port(), 7443);
        assert!(parse_listen("localhost").is_err());
        assert!(parse_listen("no such host:1").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn every_subcommand_has_help() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
