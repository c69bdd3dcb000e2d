//! A stand-in for Azure, started by the tests on 127.0.0.1 over HTTPS with
//! a CA of its own: no emulator of Azure Resource Manager or Entra ID can
//! run here. It answers, in their documented shapes:
//! - Entra ID's client-credentials token endpoint
//!   (`POST /{tenant}/oauth2/v2.0/token`), refusing a wrong secret with
//!   `invalid_client`;
//! - ARM resource URLs (`/subscriptions/…/resourceGroups/…/providers/…`)
//!   for Microsoft.Sql servers, databases and firewall rules,
//!   Microsoft.DBforPostgreSQL flexible servers, Microsoft.Compute virtual
//!   machines and Microsoft.Network interfaces, each only at the GA
//!   api-version the provider is written against;
//! - long-running PUTs with `Azure-AsyncOperation` and DELETEs with
//!   `Location`, both with `Retry-After`, that take several polls and pass
//!   through Creating, Updating and Deleting;
//! - ARM's error bodies (`{"error": {"code", "message"}}`):
//!   ResourceGroupNotFound, ParentResourceNotFound,
//!   AnotherOperationInProgress, InvalidAuthenticationToken, and whatever a
//!   test injects.
//!
//! What it does not do: RBAC, quotas of its own, real networking, or any
//! field it is not asked to keep.
//!
//! Each test binary includes this file; not all use every part.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const SUBSCRIPTION: &str = "6f1c0f5e-0000-4000-8000-00000000aa01";
pub const TENANT: &str = "6f1c0f5e-0000-4000-8000-00000000bb02";
pub const CLIENT_ID: &str = "6f1c0f5e-0000-4000-8000-00000000cc03";
/// The test service principal's secret; it opens nothing but this stand-in.
pub const CLIENT_SECRET: &str = "fake-arm-client-secret";
pub const RESOURCE_GROUP: &str = "plinth-test";
pub const LOCATION: &str = "westeurope";

pub fn subnet_id() -> String {
    format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default")
}

/// The service principal's JSON, as `az ad sp create-for-rbac --sdk-auth`
/// prints it.
pub fn sdk_auth() -> String {
    json!({
        "clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET, "subscriptionId": SUBSCRIPTION, "tenantId": TENANT,
        "activeDirectoryEndpointUrl": "https://login.microsoftonline.com",
        "resourceManagerEndpointUrl": "https://management.azure.com/"
    })
    .to_string()
}

/// An answer to force on matching requests, `times` times.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: &'static str,
    pub path_contains: String,
    pub times: u32,
    pub status: u16,
    pub body: Value,
}

pub fn arm_error(code: &str, message: &str) -> Value {
    json!({"error": {"code": code, "message": message}})
}

#[derive(Debug, Clone)]
enum Effect {
    Created(String),
    Updated(String, Value),
    Deleted(String),
}

#[derive(Debug, Clone)]
struct Operation {
    started: std::time::Instant,
    remaining: u32,
    effect: Effect,
    status: &'static str,
    error: Option<Value>,
    target: String,
}

#[derive(Default)]
struct State {
    tokens: BTreeSet<String>,
    revoked: bool,
    /// While set, operations stay where they are, however often polled.
    held: bool,
    resources: BTreeMap<String, Value>,
    passwords: BTreeMap<String, String>,
    operations: BTreeMap<String, Operation>,
    groups: BTreeSet<String>,
    polls: u32,
    counter: u64,
    faults: Vec<Fault>,
    failing: BTreeMap<String, Value>,
    log: Vec<String>,
    base: String,
}

/// The running stand-in.
pub struct FakeArm {
    pub url: String,
    /// The CA its certificate is signed by, to trust in `endpoints.caBundle`.
    pub ca_pem: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeArm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A CA and a serving certificate for 127.0.0.1, made for this run.
fn tls() -> (String, tokio_rustls::TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer).expect("certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server config");
    (
        ca_cert.pem(),
        tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    )
}

impl FakeArm {
    pub async fn start() -> FakeArm {
        let (ca_pem, acceptor) = tls();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().expect("addr").port()
        );
        let state = Arc::new(Mutex::new(State {
            polls: 2,
            groups: [RESOURCE_GROUP.to_ascii_lowercase()].into(),
            base: url.clone(),
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (state, acceptor) = (shared.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(serve(state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeArm {
            url,
            ca_pem,
            state,
            task,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Refuses the service principal from now on, as Entra ID does for a
    /// deleted secret.
    pub fn revoke(&self) {
        self.with(|s| s.revoked = true);
    }

    pub fn unrevoke(&self) {
        self.with(|s| s.revoked = false);
    }

    /// Holds every operation where it is (`true`), or lets them move on.
    pub fn hold(&self, held: bool) {
        self.with(|s| s.held = held);
    }

    /// How many resources of a type exist, e.g. `Microsoft.Compute/virtualMachines`.
    pub fn total(&self, type_name: &str) -> usize {
        self.with(|s| {
            s.resources
                .values()
                .filter(|r| {
                    r["type"]
                        .as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case(type_name))
                })
                .count()
        })
    }

    pub fn fail(&self, fault: Fault) {
        self.with(|s| s.faults.push(fault));
    }

    pub fn clear_faults(&self) {
        self.with(|s| s.faults.clear());
    }

    /// The next operation on the resource named `name` fails with this ARM
    /// error.
    pub fn fail_next_operation(&self, name: &str, code: &str, message: &str) {
        self.with(|s| {
            s.failing.insert(
                name.to_ascii_lowercase(),
                json!({"code": code, "message": message}),
            )
        });
    }

    /// A resource by its id's last segments, e.g. `Microsoft.Sql/servers/x`.
    pub fn resource(&self, suffix: &str) -> Option<Value> {
        let suffix = suffix.to_ascii_lowercase();
        self.with(|s| {
            s.resources
                .iter()
                .find(|(id, _)| id.ends_with(&suffix))
                .map(|(_, v)| v.clone())
        })
    }

    pub fn count(&self, suffix: &str) -> usize {
        let suffix = suffix.to_ascii_lowercase();
        self.with(|s| {
            s.resources
                .keys()
                .filter(|id| id.ends_with(&suffix))
                .count()
        })
    }

    /// The password a resource was given.
    pub fn password(&self, suffix: &str) -> Option<String> {
        let suffix = suffix.to_ascii_lowercase();
        self.with(|s| {
            s.passwords
                .iter()
                .find(|(id, _)| id.ends_with(&suffix))
                .map(|(_, v)| v.clone())
        })
    }

    pub fn set_property(&self, suffix: &str, pointer: &str, value: Value) {
        let suffix = suffix.to_ascii_lowercase();
        self.with(|s| {
            if let Some((_, r)) = s.resources.iter_mut().find(|(id, _)| id.ends_with(&suffix)) {
                if let Some(slot) = r.pointer_mut(pointer) {
                    *slot = value;
                }
            }
        });
    }

    /// A ready Azure SQL server made outside the provider.
    pub fn seed_sql_server(&self, name: &str) {
        self.with(|s| {
            let id = format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Sql/servers/{name}");
            let mut server = json!({"id": id, "name": name, "type": "Microsoft.Sql/servers", "location": LOCATION,
                                    "properties": {"administratorLogin": "seeded", "version": "12.0"}});
            s.counter += 1;
            finish(&mut server, s.counter);
            s.resources.insert(id.to_ascii_lowercase(), server);
        });
    }

    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }
}

fn answer(status: u16, headers: &[(&str, String)], body: &Value) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8");
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    builder
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn form(body: &[u8]) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn serve(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let raw = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
    s.log.push(format!("{method} {path}"));
    if method == "POST" && path == format!("/{TENANT}/oauth2/v2.0/token") {
        let form = form(&raw);
        if s.revoked
            || form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
            || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
        {
            return answer(
                401,
                &[],
                &json!({
                    "error": "invalid_client",
                    "error_description": format!("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{CLIENT_ID}'."),
                    "error_codes": [7000215]
                }),
            );
        }
        if form.get("grant_type").map(String::as_str) != Some("client_credentials")
            || !form
                .get("scope")
                .is_some_and(|sc| sc.ends_with("/.default"))
        {
            return answer(
                400,
                &[],
                &json!({"error": "invalid_request", "error_description": "AADSTS90014: The request body must contain grant_type and scope."}),
            );
        }
        let token = format!("fake-arm-token-{}", s.counter);
        s.counter += 1;
        s.tokens.insert(token.clone());
        return answer(
            200,
            &[],
            &json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
        );
    }
    let bearer = auth
        .as_deref()
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if s.revoked || !s.tokens.contains(bearer) {
        return answer(
            401,
            &[],
            &arm_error("InvalidAuthenticationToken", "The access token is invalid."),
        );
    }
    if let Some(fault) = s
        .faults
        .iter_mut()
        .find(|f| f.times > 0 && f.method == method && path.contains(&f.path_contains))
    {
        fault.times -= 1;
        let body = fault.body.clone();
        let status = fault.status;
        return answer(status, &[("retry-after", "1".into())], &body);
    }
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let (status, headers, body) = route(&mut s, &method, &path, &query, body);
    answer(status, &headers, &body)
}

type Answer = (u16, Vec<(&'static str, String)>, Value);

/// The GA api-version each resource type is served at.
fn api_version(namespace: &str, kind: &str) -> Option<&'static str> {
    match (
        namespace.to_ascii_lowercase().as_str(),
        kind.to_ascii_lowercase().as_str(),
    ) {
        ("microsoft.sql", _) => Some("2021-11-01"),
        ("microsoft.dbforpostgresql", _) => Some("2022-12-01"),
        ("microsoft.compute", _) => Some("2024-03-01"),
        ("microsoft.network", _) => Some("2023-09-01"),
        _ => None,
    }
}

fn route(
    s: &mut State,
    method: &str,
    path: &str,
    query: &BTreeMap<String, String>,
    body: Value,
) -> Answer {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    match parts.as_slice() {
        ["subscriptions", sub, "providers", _ns, "locations", _loc, kind @ ("operationStatuses" | "operationResults"), id] =>
        {
            if !sub.eq_ignore_ascii_case(SUBSCRIPTION) {
                return (
                    404,
                    vec![],
                    arm_error(
                        "SubscriptionNotFound",
                        &format!("The subscription '{sub}' could not be found."),
                    ),
                );
            }
            poll(s, id, *kind == "operationResults")
        }
        ["subscriptions", sub, "resourceGroups", group, "providers", namespace, rest @ ..]
            if !rest.is_empty() && rest.len() % 2 == 0 =>
        {
            if !sub.eq_ignore_ascii_case(SUBSCRIPTION) {
                return (
                    404,
                    vec![],
                    arm_error(
                        "SubscriptionNotFound",
                        &format!("The subscription '{sub}' could not be found."),
                    ),
                );
            }
            if !s.groups.contains(&group.to_ascii_lowercase()) {
                return (
                    404,
                    vec![],
                    arm_error(
                        "ResourceGroupNotFound",
                        &format!("Resource group '{group}' could not be found."),
                    ),
                );
            }
            let want = api_version(namespace, rest[0]);
            if want.is_none() || query.get("api-version").map(String::as_str) != want {
                return (400, vec![], arm_error("InvalidResourceType", &format!(
                    "The resource type '{}' could not be found in the namespace '{namespace}' for api version '{}'.",
                    rest[0], query.get("api-version").map(String::as_str).unwrap_or("")
                )));
            }
            let id = path.to_string();
            if rest.len() > 2 {
                let parent = format!(
                    "/subscriptions/{sub}/resourceGroups/{group}/providers/{namespace}/{}/{}",
                    rest[0], rest[1]
                );
                if !s.resources.contains_key(&parent.to_ascii_lowercase()) {
                    return (404, vec![], arm_error("ParentResourceNotFound", &format!(
                        "Can not perform requested operation on nested resource. Parent resource '{}' not found.", rest[1]
                    )));
                }
            }
            let kind = rest
                .iter()
                .step_by(2)
                .copied()
                .collect::<Vec<_>>()
                .join("/");
            resource(s, method, &id, namespace, &kind, rest[rest.len() - 1], body)
        }
        _ => (
            404,
            vec![],
            arm_error("NotFound", "The requested path was not found."),
        ),
    }
}

fn hidden(mut body: Value) -> Value {
    if let Some(p) = body.get_mut("properties").and_then(Value::as_object_mut) {
        p.remove("administratorLoginPassword");
        if let Some(os) = p.get_mut("osProfile").and_then(Value::as_object_mut) {
            os.remove("adminPassword");
            os.remove("customData");
        }
    }
    body
}

impl State {
    fn busy(&self, id: &str) -> bool {
        self.operations
            .values()
            .any(|op| op.target == id && op.status == "InProgress")
    }

    fn start(
        &mut self,
        id: &str,
        namespace: &str,
        effect: Effect,
        name: &str,
        location_style: bool,
    ) -> Vec<(&'static str, String)> {
        self.counter += 1;
        let op = format!("{:08x}-0000-4000-8000-{:012x}", self.counter, self.counter);
        let error = self.failing.remove(&name.to_ascii_lowercase());
        self.operations.insert(
            op.clone(),
            Operation {
                started: std::time::Instant::now(),
                remaining: self.polls,
                effect,
                status: "InProgress",
                error,
                target: id.to_string(),
            },
        );
        let kind = if location_style {
            "operationResults"
        } else {
            "operationStatuses"
        };
        let url = format!("{}/subscriptions/{SUBSCRIPTION}/providers/{namespace}/locations/{LOCATION}/{kind}/{op}?api-version=2021-01-01", self.base);
        let header = if location_style {
            "location"
        } else {
            "azure-asyncoperation"
        };
        vec![(header, url), ("retry-after", "1".into())]
    }

    fn complete(&mut self, op: &mut Operation) {
        if op.error.is_some() {
            op.status = "Failed";
            if let Effect::Created(id) = &op.effect {
                if let Some(r) = self.resources.get_mut(id) {
                    r["properties"]["provisioningState"] = json!("Failed");
                }
            }
            return;
        }
        op.status = "Succeeded";
        self.counter += 1;
        let n = self.counter;
        match op.effect.clone() {
            Effect::Created(id) | Effect::Updated(id, Value::Null) => {
                if let Some(r) = self.resources.get_mut(&id) {
                    finish(r, n);
                }
            }
            Effect::Updated(id, new) => {
                if let Some(r) = self.resources.get_mut(&id) {
                    let keep = r.clone();
                    *r = new;
                    for key in ["id", "name", "type"] {
                        r[key] = keep[key].clone();
                    }
                    if let Some(old) = keep.get("properties").and_then(Value::as_object) {
                        for (k, v) in old {
                            if r["properties"].get(k).is_none() {
                                r["properties"][k] = v.clone();
                            }
                        }
                    }
                    finish(r, n);
                }
            }
            Effect::Deleted(id) => {
                let nics: Vec<String> = self
                    .resources
                    .get(&id)
                    .and_then(|r| {
                        r.pointer("/properties/networkProfile/networkInterfaces")
                            .and_then(Value::as_array)
                            .cloned()
                    })
                    .unwrap_or_default()
                    .iter()
                    .filter(|n| n.pointer("/properties/deleteOption") == Some(&json!("Delete")))
                    .filter_map(|n| n["id"].as_str().map(str::to_ascii_lowercase))
                    .collect();
                for nic in nics {
                    self.resources.remove(&nic);
                }
                let prefix = format!("{id}/");
                self.resources
                    .retain(|k, _| *k != id && !k.starts_with(&prefix));
            }
        }
    }
}

/// What Azure fills in once a resource is made.
fn finish(r: &mut Value, n: u64) {
    let kind = r["type"].as_str().unwrap_or("").to_ascii_lowercase();
    let name = r["name"].as_str().unwrap_or("").to_string();
    r["properties"]["provisioningState"] = json!("Succeeded");
    match kind.as_str() {
        "microsoft.sql/servers" => {
            r["properties"]["state"] = json!("Ready");
            r["properties"]["fullyQualifiedDomainName"] =
                json!(format!("{name}.database.windows.net"));
        }
        "microsoft.sql/servers/databases" => {
            r["properties"]["status"] = json!("Online");
            let objective = r
                .pointer("/sku/name")
                .cloned()
                .unwrap_or(json!("GP_Gen5_2"));
            r["properties"]["currentServiceObjectiveName"] = objective;
        }
        "microsoft.dbforpostgresql/flexibleservers" => {
            r["properties"]["state"] = json!("Ready");
            r["properties"]["fullyQualifiedDomainName"] =
                json!(format!("{name}.postgres.database.azure.com"));
        }
        "microsoft.network/networkinterfaces" => {
            if let Some(config) = r.pointer_mut("/properties/ipConfigurations/0/properties") {
                config["privateIPAddress"] = json!(format!("10.0.0.{}", n % 250 + 4));
            }
        }
        "microsoft.compute/virtualmachines" => {
            r["properties"]["vmId"] = json!(format!("{n:08x}-1111-4222-8333-444455556666"));
        }
        _ => {}
    }
}

fn poll(s: &mut State, id: &str, location_style: bool) -> Answer {
    let Some(mut op) = s.operations.get(id).cloned() else {
        return (
            404,
            vec![],
            arm_error("NotFound", "The operation was not found."),
        );
    };
    if op.status == "InProgress" && !s.held {
        if op.remaining > 1 {
            op.remaining -= 1;
        } else {
            s.complete(&mut op);
        }
    }
    s.operations.insert(id.to_string(), op.clone());
    let retry = vec![("retry-after", "1".to_string())];
    if location_style {
        return match (op.status, &op.error) {
            ("InProgress", _) => {
                let url = format!("{}/subscriptions/{SUBSCRIPTION}/providers/x/locations/{LOCATION}/operationResults/{id}?api-version=2021-01-01", s.base);
                (
                    202,
                    vec![("location", url), ("retry-after", "1".into())],
                    Value::Null,
                )
            }
            (_, Some(error)) => (400, vec![], json!({"error": error})),
            _ => (200, vec![], Value::Null),
        };
    }
    let mut status =
        json!({"id": id, "name": id, "status": op.status, "startTime": "2026-12-04T00:00:00Z"});
    if let Some(error) = &op.error {
        status["error"] = error.clone();
    }
    (200, retry, status)
}

/// How long an operation runs at most, polled or not.
const OPERATION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(4);

/// Finishes the operations on a resource that have run their time, as
/// Azure does even when nobody polls them (a provider restarted and forgot
/// them).
fn advance(s: &mut State, key: &str) {
    if s.held {
        return;
    }
    let ids: Vec<String> = s
        .operations
        .iter()
        .filter(|(_, op)| {
            op.target == key
                && op.status == "InProgress"
                && op.started.elapsed() > OPERATION_LIFETIME
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in ids {
        if let Some(mut op) = s.operations.get(&id).cloned() {
            s.complete(&mut op);
            s.operations.insert(id, op);
        }
    }
}

fn resource(
    s: &mut State,
    method: &str,
    id: &str,
    namespace: &str,
    kind: &str,
    name: &str,
    body: Value,
) -> Answer {
    let key = id.to_ascii_lowercase();
    let type_name = format!("{namespace}/{kind}");
    match method {
        "GET" => {
            advance(s, &key);
            match s.resources.get(&key) {
            Some(r) => (200, vec![], r.clone()),
            None => (404, vec![], arm_error("ResourceNotFound", &format!(
                "The Resource '{type_name}/{name}' under resource group '{RESOURCE_GROUP}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
            ))),
            }
        }
        "PUT" => {
            if s.busy(&key) {
                return (409, vec![], arm_error("AnotherOperationInProgress", &format!("Another operation on this or dependent resource is in progress. To retrieve status of the operation use uri: {id}")));
            }
            if kind.eq_ignore_ascii_case("virtualMachines") {
                let nic = body
                    .pointer("/properties/networkProfile/networkInterfaces/0/id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let ready = s
                    .resources
                    .get(&nic)
                    .and_then(|n| n.pointer("/properties/provisioningState"))
                    .and_then(Value::as_str)
                    == Some("Succeeded");
                if !ready {
                    return (400, vec![], arm_error("NetworkInterfaceNotFound", "The network interface the virtual machine references does not exist or is not ready."));
                }
            }
            for pointer in [
                "/properties/administratorLoginPassword",
                "/properties/osProfile/adminPassword",
            ] {
                if let Some(p) = body.pointer(pointer).and_then(Value::as_str) {
                    s.passwords.insert(key.clone(), p.to_string());
                }
            }
            let mut stored = hidden(body);
            stored["id"] = json!(id);
            stored["name"] = json!(name);
            stored["type"] = json!(type_name);
            // Firewall rules and network interfaces are made at once, as
            // their resource providers answer: 201 with Succeeded.
            let synchronous = kind.eq_ignore_ascii_case("servers/firewallRules")
                || kind.eq_ignore_ascii_case("networkInterfaces");
            match s.resources.get(&key).cloned() {
                None => {
                    stored["properties"]["provisioningState"] = json!("Creating");
                    if synchronous {
                        s.counter += 1;
                        finish(&mut stored, s.counter);
                        s.resources.insert(key.clone(), stored.clone());
                        return (201, vec![], stored);
                    }
                    s.resources.insert(key.clone(), stored.clone());
                    let headers =
                        s.start(&key, namespace, Effect::Created(key.clone()), name, false);
                    (201, headers, stored)
                }
                Some(mut existing) => {
                    if synchronous {
                        s.counter += 1;
                        finish(&mut stored, s.counter);
                        s.resources.insert(key.clone(), stored.clone());
                        return (200, vec![], stored);
                    }
                    existing["properties"]["provisioningState"] = json!("Updating");
                    s.resources.insert(key.clone(), existing.clone());
                    let headers = s.start(
                        &key,
                        namespace,
                        Effect::Updated(key.clone(), stored),
                        name,
                        false,
                    );
                    (200, headers, existing)
                }
            }
        }
        "DELETE" => {
            if !s.resources.contains_key(&key) {
                return (204, vec![], Value::Null);
            }
            // A DELETE supersedes a PUT still running, as ARM lets it.
            for op in s
                .operations
                .values_mut()
                .filter(|op| op.target == key && op.status == "InProgress")
            {
                op.status = "Canceled";
                op.error = Some(
                    json!({"code": "Canceled", "message": "The operation was canceled by a delete."}),
                );
            }
            if let Some(r) = s.resources.get_mut(&key) {
                r["properties"]["provisioningState"] = json!("Deleting");
                if r.pointer("/properties/state").is_some() {
                    r["properties"]["state"] = json!("Dropping");
                }
            }
            let headers = s.start(&key, namespace, Effect::Deleted(key.clone()), name, true);
            (202, headers, Value::Null)
        }
        _ => (
            405,
            vec![],
            arm_error("MethodNotAllowed", "The method is not allowed."),
        ),
    }
}
