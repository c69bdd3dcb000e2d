//! Running a provider: listen on a unix socket (TCP on loopback when that is
//! not possible), print the handshake, serve the protocol and the gRPC health
//! service, and stop cleanly on SIGTERM, SIGINT or when the host goes away.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};

use crate::handshake::{self, Address, Handshake};
use crate::pb::provider_server::ProviderServer;
use crate::service::Provider;

/// Why a provider could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("this program is a Plinth provider plugin; `plinth up` starts it (it found no {} in its environment)", handshake::MAGIC_COOKIE_KEY)]
    NotAPlugin,
    #[error("could not listen on a unix socket or on 127.0.0.1: {0}")]
    Listen(io::Error),
    #[error("could not print the handshake line: {0}")]
    Handshake(io::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("{0}")]
    Remote(String),
}

/// A provider serving in this process.
pub struct Running {
    pub handshake: Handshake,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
    socket: Option<PathBuf>,
}

impl Running {
    /// Stops serving, letting calls in flight finish.
    pub async fn stop(self) -> Result<(), ServeError> {
        let _ = self.stop.send(());
        let result = self.task.await;
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
        match result {
            Ok(r) => Ok(r?),
            Err(e) => Err(ServeError::Listen(io::Error::other(e))),
        }
    }
}

/// Starts serving `provider`, with its socket in `socket_dir`.
pub async fn start(provider: Provider, socket_dir: &Path) -> Result<Running, ServeError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<ProviderServer<Provider>>().await;
    let router = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(ProviderServer::new(provider.clone()));
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let socket = socket_dir.join(format!(
        "plinth-{}-{}.sock",
        provider.name(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&socket);
    match UnixListener::bind(&socket) {
        Ok(listener) => {
            let incoming = UnixListenerStream::new(listener);
            let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown));
            Ok(Running {
                handshake: Handshake {
                    app_version: handshake::APP_PROTOCOL_VERSION,
                    address: Address::Unix(socket.clone()),
                },
                stop,
                task,
                socket: Some(socket),
            })
        }
        Err(unix_error) => {
            tracing::warn!(error = %unix_error, path = %socket.display(), "no unix socket; falling back to TCP on 127.0.0.1");
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(ServeError::Listen)?;
            let addr = listener.local_addr().map_err(ServeError::Listen)?;
            let incoming = TcpListenerStream::new(listener);
            let task = tokio::spawn(router.serve_with_incoming_shutdown(incoming, shutdown));
            Ok(Running {
                handshake: Handshake {
                    app_version: handshake::APP_PROTOCOL_VERSION,
                    address: Address::Tcp(addr),
                },
                stop,
                task,
                socket: None,
            })
        }
    }
}

/// Starts serving `provider` on a TCP address over mTLS: clients must present
/// a certificate signed by `ca.crt` in `tls_dir`.
pub async fn start_remote(
    provider: Provider,
    listen: &str,
    tls_dir: &Path,
) -> Result<Running, ServeError> {
    let read = |name: &str| {
        std::fs::read(tls_dir.join(name)).map_err(|e| {
            ServeError::Remote(format!("cannot read {}: {e}", tls_dir.join(name).display()))
        })
    };
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(
            read("tls.crt")?,
            read("tls.key")?,
        ))
        .client_ca_root(tonic::transport::Certificate::from_pem(read("ca.crt")?));
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_serving::<ProviderServer<Provider>>().await;
    let router = tonic::transport::Server::builder()
        .tls_config(tls)?
        .add_service(health)
        .add_service(ProviderServer::new(provider));
    let listener = TcpListener::bind(listen)
        .await
        .map_err(ServeError::Listen)?;
    let addr = listener.local_addr().map_err(ServeError::Listen)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async {
        let _ = stopped.await;
    };
    let task = tokio::spawn(
        router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown),
    );
    Ok(Running {
        handshake: Handshake {
            app_version: handshake::APP_PROTOCOL_VERSION,
            address: Address::Tcp(addr),
        },
        stop,
        task,
        socket: None,
    })
}

/// Runs `provider` as a plugin of a Plinth host until told to stop: as a
/// child process over a unix socket, or, with `PLINTH_PROVIDER_LISTEN` set,
/// as a remote provider over mTLS. Call it from `main` inside a tokio runtime.
pub async fn serve(provider: Provider) -> Result<(), ServeError> {
    init_logging();
    if let Ok(listen) = std::env::var(handshake::LISTEN_ENV) {
        let tls_dir = std::env::var_os(handshake::TLS_DIR_ENV).map(PathBuf::from).ok_or_else(|| {
            ServeError::Remote(format!(
                "a remote provider serves only over mTLS: set {} to a directory with ca.crt, tls.crt and tls.key",
                handshake::TLS_DIR_ENV
            ))
        })?;
        let running = start_remote(provider.clone(), &listen, &tls_dir).await?;
        print_handshake(&running.handshake)?;
        tracing::info!(provider = provider.name(), address = %running.handshake, "serving remotely over mTLS");
        wait_for_stop().await;
        tracing::info!(provider = provider.name(), "shutting down");
        return running.stop().await;
    }
    if std::env::var(handshake::MAGIC_COOKIE_KEY).ok().as_deref()
        != Some(handshake::MAGIC_COOKIE_VALUE)
    {
        return Err(ServeError::NotAPlugin);
    }
    let dir = std::env::var_os(handshake::SOCKET_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let running = start(provider.clone(), &dir).await?;
    print_handshake(&running.handshake)?;
    tracing::info!(provider = provider.name(), address = %running.handshake, "serving");
    wait_for_stop().await;
    tracing::info!(provider = provider.name(), "shutting down");
    running.stop().await
}

fn print_handshake(handshake: &Handshake) -> Result<(), ServeError> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{handshake}").map_err(ServeError::Handshake)?;
    stdout.flush().map_err(ServeError::Handshake)
}

/// SIGTERM, SIGINT, or the host dying (this process is re-parented).
async fn wait_for_stop() {
    use tokio::signal::unix::{signal, SignalKind};
    let parent = std::os::unix::process::parent_id();
    let orphaned = async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if std::os::unix::process::parent_id() != parent {
                tracing::warn!("the host went away");
                return;
            }
        }
    };
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            orphaned.await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = orphaned => {}
    }
}

/// Logs go to stderr, where the host reads them and forwards them into its
/// own log under the provider's name.
///
/// `PLINTH_LOG=debug` opens the provider's own logs. The client libraries
/// a provider uses stay at `info` unless `PLINTH_LOG` names them, because
/// their debug output carries what must never be logged: the AWS SDK's
/// prints the credentials' access key id, HTTP and gRPC stacks print
/// headers.
fn init_logging() {
    const QUIET_UNLESS_NAMED: &[&str] = &[
        "aws_config",
        "aws_credential_types",
        "aws_sigv4",
        "aws_smithy_http",
        "aws_smithy_runtime",
        "aws_smithy_runtime_api",
        "h2",
        "hyper",
        "hyper_util",
        "reqwest",
        "rustls",
        "tonic",
        "tower",
    ];
    let given = std::env::var("PLINTH_LOG").unwrap_or_else(|_| "info".to_string());
    let mut filter = tracing_subscriber::EnvFilter::try_new(&given)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    for target in QUIET_UNLESS_NAMED {
        if !given.contains(target) {
            if let Ok(directive) = format!("{target}=info").parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}
