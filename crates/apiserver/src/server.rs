//! The HTTPS listener: TLS (HTTP/2 and HTTP/1.1, optional client
//! certificates), authentication and authorization of every request, the
//! audit log, the request body limit, routing to handlers, and the
//! background tasks that live as long as the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::authn::CertificateIdentity;
use crate::authz::RequestAttributes;
use crate::handlers::{self, Body, Ctx};
use crate::request::{route, Query, Route};
use crate::status::{reason, ApiError};
use crate::{audit, authn, authz, expiry, gc, impersonation, pki, tokens, users, Api};

/// Largest request body accepted, as kube-apiserver's default.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the server is run.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// How often old watch history is compacted.
    pub compaction_interval: Duration,
    /// How many recent revisions compaction keeps.
    pub compaction_keep: u64,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: Duration,
    /// How long an Event is kept after its last write (`--event-ttl`).
    pub event_ttl: Duration,
    /// `/readyz` answers 503 until [`Running::mark_ready`], for a caller
    /// with start-up work of its own that clients should not race (what
    /// kube-apiserver's post-start hooks are for).
    pub hold_readiness: bool,
    /// RBAC (the default), or everyone may do anything.
    pub authorization: authz::Mode,
    /// Roles and bindings of the embedding process to create on start
    /// (beside the default ClusterRoles), e.g. its controllers' own.
    pub rbac_bootstrap: Vec<serde_json::Value>,
    /// Where to write the audit log, if anywhere.
    pub audit_log: Option<PathBuf>,
    /// An `EncryptionConfiguration` whose keys seal Secrets in the store.
    pub encryption_key_file: Option<PathBuf>,
    /// At start, rewrites every stored Secret under the file's first provider.
    pub rewrite_secrets: bool,
}

/// A server that is accepting requests.
pub struct Running {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    pub url: String,
    api: Arc<Api>,
    tls: TlsAcceptor,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Adds metrics of the embedding process to `/metrics`.
    pub fn register_metrics(
        &self,
        register: impl FnOnce(&mut prometheus_client::registry::Registry),
    ) {
        self.api.metrics.register(register);
    }

    /// TLS with the API server's own serving certificate, for other
    /// endpoints the embedding process serves on loopback (the Backstage
    /// catalog), so clients trust them through the same CA.
    pub fn tls_acceptor(&self) -> TlsAcceptor {
        self.tls.clone()
    }

    /// The server as an in-process HTTP service, for the controllers of the
    /// process that embeds it: the same routes and handlers as over HTTPS,
    /// without TCP, TLS or a connection per request. Requests through it
    /// are the embedding control plane's own, so they carry no token;
    /// `user_agent` is sent for requests that set none (writes without a
    /// fieldManager are recorded under it).
    pub fn local_service(&self, user_agent: &str) -> LocalService {
        LocalService {
            api: self.api.clone(),
            stopped: self.stop.subscribe(),
            user_agent: hyper::header::HeaderValue::from_str(user_agent).ok(),
        }
    }

    /// Lets `/readyz` answer 200 once the store is bootstrapped; see
    /// [`Config::hold_readiness`].
    pub fn mark_ready(&self) {
        self.api.release_readiness();
    }

    /// Stops accepting, ends open watches, and closes the store after its
    /// last commit.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.accept).await;
        let store = self.api.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }
}

/// Opens the store, prepares credentials, binds the listener and starts serving.
pub async fn run(config: Config) -> Result<Running> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    restrict_dir(&config.data_dir)?;
    let creds = pki::load_or_create(&config.data_dir, config.listen)?;
    let db = config.data_dir.join("state.db");
    if config.rewrite_secrets && config.encryption_key_file.is_none() {
        anyhow::bail!("rewriting Secrets needs the encryption key file (--encryption-key-file)");
    }
    let sealer = match &config.encryption_key_file {
        Some(path) => Some(Arc::new(crate::encryption::load(path)?)),
        None => None,
    };
    let options = store::Options {
        fields: Arc::new(crate::handlers::selectable_fields),
        sealer,
        reseal: config.rewrite_secrets,
        ..Default::default()
    };
    let store = tokio::task::spawn_blocking(move || store::Store::open(&db, options))
        .await
        .context("store open task failed")?
        .context("cannot open the store")?;
    let signer = tokens::Signer::new(
        &creds.service_account_key_pem,
        &creds.service_account_public_pem,
    )
    .context("cannot load the service-account signing key")?;
    let authenticator = authn::Authenticator::new(
        creds.token.clone(),
        users::Directory::new(&config.data_dir),
        signer,
    );
    let audit_log = match &config.audit_log {
        Some(path) => Some(audit::AuditLog::open(path)?),
        None => None,
    };
    let api = Arc::new(Api::new(
        store,
        authenticator,
        authz::Authorizer::new(config.authorization),
        audit_log,
        config.bookmark_interval,
    ));
    if config.hold_readiness {
        api.hold_readiness();
    }
    api.bootstrap(&config.rbac_bootstrap)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bootstrap the store: {e}"))?;

    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot listen on {}; is another server using it?",
            config.listen
        )
    })?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    let url = format!("https://{host}:{}", addr.port());
    let kubeconfig = pki::write_kubeconfig(&config.data_dir, &url, &creds)?;
    let acceptor = tls_acceptor(&creds)?;

    let (stop, stopped) = watch::channel(false);
    tokio::spawn(gc::run(api.clone(), stopped.clone()));
    tokio::spawn(expiry::run(api.clone(), config.event_ttl, stopped.clone()));
    tokio::spawn(compactor(api.clone(), config.clone(), stopped.clone()));
    tokio::spawn(authz::run_aggregation(api.clone(), stopped.clone()));
    let accept = tokio::spawn(accept_loop(
        listener,
        acceptor.clone(),
        api.clone(),
        stopped,
    ));
    Ok(Running {
        addr,
        kubeconfig,
        url,
        api,
        tls: acceptor,
        stop,
        accept,
    })
}

fn restrict_dir(dir: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict permissions of {}", dir.display()))
}

fn tls_acceptor(creds: &pki::Credentials) -> Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![
        CertificateDer::from_pem_slice(creds.server_cert_pem.as_bytes())
            .context("cannot parse the serving certificate")?,
        CertificateDer::from_pem_slice(creds.ca_pem.as_bytes()).context("cannot parse the CA")?,
    ];
    let key = PrivateKeyDer::from_pem_slice(creds.server_key_pem.as_bytes())
        .context("cannot parse the serving key")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // Client certificates signed by the CA identify users; clients without
    // one (bearer tokens) are still let through to authenticate otherwise.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(
            CertificateDer::from_pem_slice(creds.ca_pem.as_bytes())
                .context("cannot parse the CA")?,
        )
        .context("cannot trust the CA for client certificates")?;
    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .context("cannot build the client-certificate verifier")?;
    // TLS 1.2 and 1.3 only: rustls implements nothing older.
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("cannot select TLS versions")?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(certs, key)
        .context("cannot use the serving certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    api: Arc<Api>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let api = api.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            // A plain-HTTP client fails here: it gets a TLS alert, never a response.
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(err)) => {
                    tracing::debug!(%peer, error = %err, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let certificate = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| CertificateIdentity::from_der(leaf.as_ref()))
                .map(Arc::new);
            let caller = Caller::Remote {
                peer: peer.ip(),
                certificate,
            };
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let api = api.clone();
                let stopped = stopped.clone();
                let caller = caller.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(api, req, stopped, caller).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if let Err(err) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
}

/// Who sent a request.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// Over the network: must carry credentials.
    Remote {
        peer: std::net::IpAddr,
        /// The verified client certificate of the connection, if any.
        certificate: Option<Arc<CertificateIdentity>>,
    },
    /// In this process (see [`LocalService`]): the embedding control
    /// plane's controllers, under their own service account.
    Local,
}

pub(crate) async fn handle<B>(
    api: Arc<Api>,
    req: Request<B>,
    stopped: watch::Receiver<bool>,
    caller: Caller,
) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let received = jiff::Timestamp::now();
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let route = route(&path);
    let query = Query::parse(parts.uri.query());
    let public = matches!(route, Route::Health(_) | Route::Version);
    let header_text =
        |name: hyper::header::HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let watching = query.get("watch") == Some("true") || query.get("watch") == Some("1");
    let attrs = RequestAttributes::of(
        &route,
        &parts.method,
        &path,
        watching,
        query.get("fieldSelector"),
    );
    let (user, source_ip) = match &caller {
        Caller::Local => (api.authn.controller(), None),
        Caller::Remote { peer, certificate } => {
            match api.authn.authenticate(
                &api,
                certificate.as_deref(),
                header_text(hyper::header::AUTHORIZATION),
            ) {
                Ok(user) => (Arc::new(user), Some(*peer)),
                Err(_) if public => (Arc::new(anonymous()), Some(*peer)),
                Err(err) => {
                    let response = handlers::error(&err);
                    audit(
                        &api,
                        &parts.uri,
                        &attrs,
                        &anonymous(),
                        Some(*peer),
                        header_text(hyper::header::USER_AGENT),
                        None,
                        response.status().as_u16(),
                        received,
                        None,
                    );
                    return response;
                }
            }
        }
    };
    // One audit line, with what every line of this request shares.
    let record = |user: &rbac::UserInfo,
                  impersonator: Option<&rbac::UserInfo>,
                  decision: Option<(bool, &str)>,
                  code: u16| {
        audit(
            &api,
            &parts.uri,
            &attrs,
            user,
            source_ip,
            header_text(hyper::header::USER_AGENT),
            decision,
            code,
            received,
            impersonator,
        )
    };
    // `kubectl --as`: served as the user asked for, once the caller may
    // impersonate it; the controllers never ask.
    let mut impersonator = None;
    let user = match impersonation::Requested::from_headers(&parts.headers) {
        Ok(Some(requested)) if !public && matches!(caller, Caller::Remote { .. }) => {
            match impersonation::impersonate(&api, &user, requested) {
                Ok(impersonated) => {
                    impersonator = Some(user);
                    Arc::new(impersonated)
                }
                Err(err) => {
                    let response = handlers::error(&err);
                    record(
                        &user,
                        None,
                        Some((false, &err.message)),
                        response.status().as_u16(),
                    );
                    return response;
                }
            }
        }
        Ok(_) => user,
        Err(err) => return handlers::error(&err),
    };
    let decision = if public {
        rbac::Decision {
            allowed: true,
            reason: String::new(),
        }
    } else {
        api.authz.authorize(&api, &attrs.as_rbac(&user))
    };
    if !decision.allowed {
        let err = authz::forbidden(&attrs.as_rbac(&user), &decision.reason);
        if matches!(caller, Caller::Local) {
            // The controllers' own rules are missing a permission: loud,
            // since something will stop converging.
            tracing::warn!(message = %err.message, "a controller request was denied");
        }
        let response = handlers::error(&err);
        record(
            &user,
            impersonator.as_deref(),
            Some((false, &decision.reason)),
            response.status().as_u16(),
        );
        return response;
    }
    let body = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(err) => return handlers::error(&err),
    };
    let header = |name: hyper::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let ctx = Ctx {
        method: parts.method.clone(),
        path: path.clone(),
        query,
        accept: header(hyper::header::ACCEPT).unwrap_or_default(),
        content_type: header(hyper::header::CONTENT_TYPE).unwrap_or_default(),
        user_agent: header(hyper::header::USER_AGENT),
        body,
        stopped,
        user: user.clone(),
    };
    let started = std::time::Instant::now();
    let labels = handlers::request_labels(
        &route,
        &parts.method,
        ctx.query.get("watch") == Some("true"),
    )
    .map(|(verb, group, resource, subresource)| {
        (
            verb,
            group.to_string(),
            resource.to_string(),
            subresource.to_string(),
        )
    });
    let response = handlers::dispatch(&api, ctx, route).await;
    if let Some((verb, group, resource, subresource)) = labels {
        api.metrics.request(
            crate::metrics::RequestLabels {
                verb,
                group,
                resource,
                subresource,
                code: response.status().as_u16().to_string(),
            },
            started.elapsed(),
        );
    }
    tracing::debug!(method = %parts.method, path = %path, status = response.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "request");
    record(
        &user,
        impersonator.as_deref(),
        Some((true, &decision.reason)),
        response.status().as_u16(),
    );
    response
}

/// The user of requests that carry no (valid) credentials, for the public
/// health and version endpoints.
fn anonymous() -> rbac::UserInfo {
    rbac::UserInfo {
        name: "system:anonymous".to_string(),
        groups: vec![rbac::SYSTEM_UNAUTHENTICATED.to_string()],
        ..rbac::UserInfo::default()
    }
}

#[allow(clippy::too_many_arguments)]
fn audit(
    api: &Api,
    uri: &hyper::Uri,
    attrs: &RequestAttributes,
    user: &rbac::UserInfo,
    source_ip: Option<std::net::IpAddr>,
    user_agent: Option<&str>,
    decision: Option<(bool, &str)>,
    code: u16,
    received: jiff::Timestamp,
    impersonator: Option<&rbac::UserInfo>,
) {
    let Some(log) = &api.audit else { return };
    let request_uri = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    log.record(&audit::Entry {
        request_uri,
        attrs,
        user,
        source_ip,
        user_agent,
        decision,
        code,
        received,
        impersonator,
    });
}

/// Bodies past the limit are still read (up to this much) before the 413 is
/// sent, so an HTTP/1.1 client that is still writing sees the response
/// rather than a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

async fn read_body<B>(body: B) -> Result<Bytes, ApiError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::bad_field("body", format!("cannot read the request body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= MAX_BODY_BYTES {
                buf.extend_from_slice(&data);
            } else if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(buf.freeze())
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE.as_u16(),
        reason::REQUEST_ENTITY_TOO_LARGE,
        format!("the request body is larger than the {MAX_BODY_BYTES}-byte limit"),
    )
}

/// Compares without an early exit, so response timing does not reveal how
/// much of a guessed token was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn compactor(api: Arc<Api>, config: Config, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(config.compaction_interval) => {}
            _ = stopped.changed() => return,
        }
        match api.store.compact(config.compaction_keep).await {
            Ok(rev) => tracing::debug!(compact_revision = rev, "compacted watch history"),
            Err(err) => tracing::warn!(error = %err, "compaction failed"),
        }
    }
}

/// The server as a `tower::Service` in the embedding process; see
/// [`Running::local_service`].
#[derive(Clone)]
pub struct LocalService {
    api: Arc<Api>,
    stopped: watch::Receiver<bool>,
    user_agent: Option<hyper::header::HeaderValue>,
}

impl<B> tower::Service<Request<B>> for LocalService
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<Response<Body>, std::convert::Infallible>>
                + Send,
        >,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Some(agent) = &self.user_agent {
            req.headers_mut()
                .entry(hyper::header::USER_AGENT)
                .or_insert_with(|| agent.clone());
        }
        let (api, stopped) = (self.api.clone(), self.stopped.clone());
        Box::pin(async move { Ok(handle(api, req, stopped, Caller::Local).await) })
    }
}
