//! `plinth catalog`, and the same export served by `plinth up` over HTTPS
//! for a Backstage `url` location: every XRD, claim, managed resource and
//! OAM Application as Backstage catalog entities (the mapping itself is
//! the `catalog` crate's). The endpoint takes a token of its own, which
//! grants nothing but reading the catalog.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::{Api, Client};
use serde_json::Value;

use crate::cli::DataDirArgs;

/// The data directory's file holding the catalog endpoint's token.
pub const TOKEN_FILE: &str = "catalog-token";
/// The data directory's file holding the catalog endpoint's URL.
pub const URL_FILE: &str = "catalog-url";
/// Where the endpoint serves the catalog.
pub const PATH: &str = "/catalog/entities.yaml";

#[derive(Args, Debug, Clone)]
pub struct CatalogArgs {
    /// Write the entities to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// A kubeconfig to use instead of the data directory's.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataDirArgs,
}

pub async fn run(args: CatalogArgs) -> Result<()> {
    let kubeconfig = match &args.kubeconfig {
        Some(p) => p.clone(),
        None => args.data.resolve()?.join("kubeconfig"),
    };
    let client = crate::bench::client(&kubeconfig).await?;
    let yaml = export(&client).await?;
    match &args.output {
        Some(path) => std::fs::write(path, yaml)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{yaml}"),
    }
    Ok(())
}

fn text<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// Lists a kind as JSON values; a kind that is not served is empty.
async fn list(client: &Client, resource: &ApiResource) -> Result<Vec<Value>> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), resource);
    match api.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .into_iter()
            .map(|mut o| {
                o.metadata.managed_fields = None;
                if o.types.is_none() {
                    o.types = Some(kube::api::TypeMeta {
                        api_version: resource.api_version.clone(),
                        kind: resource.kind.clone(),
                    });
                }
                serde_json::to_value(o).context("cannot encode an object")
            })
            .collect(),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot list {}", resource.plural)),
    }
}

fn resource(api_version: &str, kind: &str, plural: &str) -> ApiResource {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// Reads everything the catalog is made of from the API.
pub async fn inventory(client: &Client) -> Result<catalog::Inventory> {
    let mut inventory = catalog::Inventory {
        xrds: list(client, &oam::names::xrd_resource()).await?,
        applications: list(client, &oam::names::application_resource()).await?,
        namespaces: list(client, &resource("v1", "Namespace", "namespaces")).await?,
        ..Default::default()
    };
    for xrd in &inventory.xrds {
        let Some(version) = xrd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .and_then(|v| {
                v.iter()
                    .find(|v| v.get("referenceable").and_then(Value::as_bool) == Some(true))
                    .or_else(|| v.first())
            })
            .and_then(|v| text(v, "/name"))
        else {
            continue;
        };
        let group = text(xrd, "/spec/group").unwrap_or_default();
        let api_version = format!("{group}/{version}");
        if let (Some(kind), Some(plural)) = (
            text(xrd, "/spec/names/kind"),
            text(xrd, "/spec/names/plural"),
        ) {
            inventory
                .composites
                .extend(list(client, &resource(&api_version, kind, plural)).await?);
        }
        if let (Some(kind), Some(plural)) = (
            text(xrd, "/spec/claimNames/kind"),
            text(xrd, "/spec/claimNames/plural"),
        ) {
            inventory
                .claims
                .extend(list(client, &resource(&api_version, kind, plural)).await?);
        }
    }
    // The managed resources, reached as the Crossplane plugins for
    // Backstage reach them: through each composite's spec.resourceRefs.
    let kinds = runtime::kinds::Kinds::default();
    for xr in &inventory.composites {
        for r in xr
            .pointer("/spec/resourceRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(api_version), Some(kind), Some(name)) =
                (text(r, "/apiVersion"), text(r, "/kind"), text(r, "/name"))
            else {
                continue;
            };
            let Ok(resource) = kinds.resolve(client, api_version, kind).await else {
                tracing::warn!(
                    kind,
                    name,
                    "a composed kind is not served; left out of the catalog"
                );
                continue;
            };
            let api: Api<DynamicObject> = match text(r, "/namespace") {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
                None => Api::all_with(client.clone(), &resource),
            };
            if let Some(mut object) = api
                .get_opt(name)
                .await
                .with_context(|| format!("cannot read {kind} {name}"))?
            {
                object.metadata.managed_fields = None;
                inventory
                    .managed
                    .push(serde_json::to_value(object).context("cannot encode an object")?);
            }
        }
    }
    Ok(inventory)
}

/// The catalog as Backstage reads it: a YAML stream of entities.
pub async fn export(client: &Client) -> Result<String> {
    let inventory = inventory(client).await?;
    Ok(catalog::to_yaml(&catalog::entities(&inventory))?)
}

/// The endpoint's token: made on first start, kept in the data directory.
pub fn token(data_dir: &Path) -> Result<String> {
    let path = data_dir.join(TOKEN_FILE);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if !existing.trim().is_empty() {
            return Ok(existing.trim().to_string());
        }
    }
    use rand::Rng;
    let token: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(43)
        .map(char::from)
        .collect();
    apiserver::pki::write_private(&path, token.as_bytes())?;
    Ok(token)
}

/// Whether a request carries the catalog token, as a bearer token or a
/// `token` query parameter (a Backstage `url` location cannot send
/// headers to an arbitrary host). Compared in constant time.
fn authorized(request: &hyper::Request<hyper::body::Incoming>, token: &str) -> bool {
    let bearer = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let query = request
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")));
    let given = bearer.or(query).unwrap_or_default();
    // By hand rather than a crate: a dozen lines, and the API server's own
    // comparison is not public.
    let (a, b) = (given.as_bytes(), token.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, byte) in b.iter().enumerate() {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ byte);
    }
    diff == 0
}

/// Serves the catalog over HTTPS at [`PATH`] until the task is aborted.
pub async fn serve(
    listen: SocketAddr,
    tls: tokio_rustls::TlsAcceptor,
    client: Client,
    token: String,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for the catalog"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the catalog's address")?;
    let token = Arc::new(token);
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let (tls, client, token) = (tls.clone(), client.clone(), token.clone());
            tokio::spawn(async move {
                let Ok(stream) = tls.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let (client, token) = (client.clone(), token.clone());
                        async move {
                            let reply = |status: u16, content_type: &str, body: String| {
                                hyper::Response::builder()
                                    .status(status)
                                    .header("content-type", content_type)
                                    .body(Full::new(Bytes::from(body)))
                            };
                            if !authorized(&request, &token) {
                                return reply(401, "text/plain", "the catalog token is missing or wrong: send it as a bearer token or ?token=\n".into());
                            }
                            if request.method() != hyper::Method::GET {
                                return reply(
                                    405,
                                    "text/plain",
                                    "the catalog is read-only: only GET\n".into(),
                                );
                            }
                            if request.uri().path() != PATH {
                                return reply(
                                    404,
                                    "text/plain",
                                    format!("not found: the catalog is at {PATH}\n"),
                                );
                            }
                            match export(&client).await {
                                Ok(yaml) => reply(200, "application/yaml", yaml),
                                Err(e) => reply(
                                    500,
                                    "text/plain",
                                    format!("cannot export the catalog: {e:#}\n"),
                                ),
                            }
                        }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(io, service)
                .await;
            });
        }
    });
    Ok((addr, task))
}
