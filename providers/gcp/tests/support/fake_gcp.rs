//! A stand-in for Google Cloud, started by the tests on 127.0.0.1: no
//! emulator for Cloud SQL Admin or Compute Engine can run here. It answers
//! the real paths of `sqladmin.googleapis.com/v1` and
//! `compute.googleapis.com/compute/v1` in their documented JSON shapes:
//! long-running operations that take several polls (PENDING, RUNNING,
//! DONE), the slow states on the way (PENDING_CREATE, PROVISIONING,
//! STAGING, STOPPING, PENDING_DELETE), Google's error bodies
//! (`{"error": {"code", "message", "status", "errors": [{"reason"}]}}`),
//! and it checks every request's bearer token: a self-signed RS256 JWT of
//! the test service account, as `google-cloud-auth` makes one, verified
//! against the account's public key.
//!
//! What it does not do: IAM, billing, real networking, or any field it is
//! not asked to keep. Bodies are stored as they are sent (the client writes
//! enums as numbers, which the real API takes too) and answered back.
//!
//! Each test binary includes this file; not all of them use every part.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const PROJECT: &str = "plinth-test";
pub const REGION: &str = "europe-west1";
pub const ZONE: &str = "europe-west1-b";

/// The test service account's JSON key, as `gcloud iam service-accounts
/// keys create` writes one. Made for these tests; it opens nothing.
pub const SERVICE_ACCOUNT_KEY: &str = include_str!("test-service-account.json");

/// An answer to force on matching requests, `times` times.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: &'static str,
    pub path_contains: String,
    pub times: u32,
    pub status: u16,
    pub body: Value,
}

/// The error body Google answers with.
pub fn error_body(code: u16, status: &str, reason: &str, message: &str) -> Value {
    let mut error = json!({
        "code": code,
        "message": message,
        "errors": [{"message": message, "domain": "global", "reason": reason}],
    });
    if !status.is_empty() {
        error["status"] = json!(status);
    }
    json!({"error": error})
}

/// What an operation does to its target when it is done.
#[derive(Debug, Clone)]
enum Effect {
    None,
    SqlCreated(String),
    SqlPatched(String, Value),
    SqlDeleted(String),
    VmRunning(String, String),
    VmStopped(String, String),
    VmMachineType(String, String, String),
    VmDeleted(String, String),
}

#[derive(Debug, Clone)]
struct Operation {
    json: Value,
    /// Polls left before DONE.
    remaining: u32,
    effect: Effect,
    /// The error the operation ends with, if it fails.
    error: Option<Value>,
    target: String,
}

#[derive(Default)]
struct State {
    public_key: Vec<u8>,
    client_email: String,
    revoked: bool,
    /// While set, operations stay where they are, however often polled.
    held: bool,
    /// Polls each slow operation takes.
    polls: u32,
    counter: u64,
    sql_instances: BTreeMap<String, Value>,
    /// Names of deleted instances, which Cloud SQL keeps for a week.
    reserved: BTreeSet<String>,
    databases: BTreeMap<(String, String), Value>,
    users: BTreeMap<(String, String, String), Value>,
    passwords: BTreeMap<(String, String), String>,
    operations: BTreeMap<String, Operation>,
    vms: BTreeMap<(String, String), Value>,
    request_ids: BTreeMap<String, String>,
    faults: Vec<Fault>,
    /// Targets whose next operation fails, with the error it ends with.
    failing: BTreeMap<String, (Option<u16>, Value)>,
    log: Vec<String>,
}

/// The running stand-in.
pub struct FakeGcp {
    pub url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGcp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGcp {
    pub async fn start() -> FakeGcp {
        let key: Value = serde_json::from_str(SERVICE_ACCOUNT_KEY).expect("the key is JSON");
        let pem = key["private_key"].as_str().expect("private_key");
        let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(der).expect("PEM body is base64");
        let pair = ring::rsa::KeyPair::from_pkcs8(&der).expect("a PKCS#8 RSA key");
        use ring::signature::KeyPair as _;
        let state = Arc::new(Mutex::new(State {
            public_key: pair.public_key().as_ref().to_vec(),
            client_email: key["client_email"]
                .as_str()
                .expect("client_email")
                .to_string(),
            polls: 3,
            ..State::default()
        }));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
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
        FakeGcp {
            url: format!("http://{addr}"),
            state,
            task,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Polls each slow operation takes before it is DONE.
    pub fn set_polls(&self, polls: u32) {
        self.with(|s| s.polls = polls);
    }

    /// Refuses every token from now on, as Google does for a deleted key.
    pub fn revoke(&self) {
        self.with(|s| s.revoked = true);
    }

    /// Accepts the test account's tokens again.
    pub fn unrevoke(&self) {
        self.with(|s| s.revoked = false);
    }

    /// Holds every operation where it is (`true`), or lets them move on.
    pub fn hold(&self, held: bool) {
        self.with(|s| s.held = held);
    }

    /// How many Cloud SQL instances and Compute Engine instances exist.
    pub fn totals(&self) -> (usize, usize) {
        self.with(|s| (s.sql_instances.len(), s.vms.len()))
    }

    pub fn fail(&self, fault: Fault) {
        self.with(|s| s.faults.push(fault));
    }

    pub fn clear_faults(&self) {
        self.with(|s| s.faults.clear());
    }

    /// The next operation on `target` (an instance name) ends in this error.
    pub fn fail_next_operation(&self, target: &str, http: Option<u16>, code: &str, message: &str) {
        self.with(|s| {
            s.failing.insert(
                target.to_string(),
                (
                    http,
                    json!({"errors": [{"code": code, "message": message}]}),
                ),
            )
        });
    }

    /// A RUNNABLE Cloud SQL instance made outside the provider.
    pub fn seed_sql_instance(&self, name: &str, version: &str) {
        self.with(|s| {
            let mut instance = json!({
                "name": name, "databaseVersion": version, "region": REGION,
                "settings": {"tier": "db-custom-1-3840", "userLabels": {}},
            });
            s.counter += 1;
            finish_sql_instance(&mut instance, s.counter);
            s.sql_instances.insert(name.to_string(), instance);
        });
    }

    /// Puts an instance in a state, as Google's maintenance or billing would.
    pub fn set_sql_state(&self, name: &str, state: &str) {
        self.with(|s| {
            if let Some(instance) = s.sql_instances.get_mut(name) {
                instance["state"] = json!(state);
            }
        });
    }

    pub fn sql_instance(&self, name: &str) -> Option<Value> {
        self.with(|s| s.sql_instances.get(name).cloned())
    }

    pub fn sql_instance_count(&self, name: &str) -> usize {
        self.with(|s| usize::from(s.sql_instances.contains_key(name)))
    }

    pub fn database_count(&self, instance: &str, name: &str) -> usize {
        self.with(|s| usize::from(s.databases.contains_key(&(instance.into(), name.into()))))
    }

    pub fn user_count(&self, instance: &str, name: &str) -> usize {
        self.with(|s| {
            s.users
                .keys()
                .filter(|(i, n, _)| i == instance && n == name)
                .count()
        })
    }

    /// The password a user (or the root user) of an instance was given.
    pub fn password(&self, instance: &str, user: &str) -> Option<String> {
        self.with(|s| s.passwords.get(&(instance.into(), user.into())).cloned())
    }

    pub fn vm(&self, zone: &str, name: &str) -> Option<Value> {
        self.with(|s| s.vms.get(&(zone.into(), name.into())).cloned())
    }

    pub fn vm_count(&self, name: &str) -> usize {
        self.with(|s| s.vms.keys().filter(|(_, n)| n == name).count())
    }

    /// Every request so far, as "METHOD path".
    pub fn requests(&self) -> Vec<String> {
        self.with(|s| s.log.clone())
    }
}

fn answer(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=UTF-8")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether a bearer token is a live JWT of the test account, signed by it.
fn authorized(state: &State, header: Option<&str>) -> bool {
    let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let parts: Vec<&str> = token.split('.').collect();
    let [head, claims, signature] = parts[..] else {
        return false;
    };
    let (Ok(claims_json), Ok(signature)) = (
        URL_SAFE_NO_PAD.decode(claims),
        URL_SAFE_NO_PAD.decode(signature),
    ) else {
        return false;
    };
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &state.public_key,
    );
    if key
        .verify(format!("{head}.{claims}").as_bytes(), &signature)
        .is_err()
    {
        return false;
    }
    let Ok(claims) = serde_json::from_slice::<Value>(&claims_json) else {
        return false;
    };
    claims["iss"] == state.client_email.as_str()
        && claims["exp"].as_u64().is_some_and(|exp| exp > now())
        && (claims["scope"]
            .as_str()
            .is_some_and(|s| s.contains("cloud-platform"))
            || claims["aud"].is_string())
}

async fn serve(state: Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).unwrap_or(json!({}))
    };
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    state.log.push(format!("{method} {path}"));
    if state.revoked || !authorized(&state, auth.as_deref()) {
        return answer(401, &error_body(401, "UNAUTHENTICATED", "authError",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."));
    }
    if let Some(fault) = state
        .faults
        .iter_mut()
        .find(|f| f.times > 0 && f.method == method && path.contains(&f.path_contains))
    {
        fault.times -= 1;
        return answer(fault.status, &fault.body.clone());
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (status, body) = route(&mut state, &method, &segments, &query, body);
    answer(status, &body)
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

type Answer = (u16, Value);

fn not_found(what: &str) -> Answer {
    (404, error_body(404, "NOT_FOUND", "notFound", what))
}

fn route(
    s: &mut State,
    method: &str,
    path: &[&str],
    query: &BTreeMap<String, String>,
    body: Value,
) -> Answer {
    match path {
        ["v1", "projects", project, rest @ ..] => {
            if *project != PROJECT {
                return (
                    403,
                    error_body(
                        403,
                        "PERMISSION_DENIED",
                        "forbidden",
                        "The client is not authorized to make this request.",
                    ),
                );
            }
            sql(s, method, rest, query, body)
        }
        ["compute", "v1", "projects", project, "zones", zone, rest @ ..] => {
            if *project != PROJECT {
                return (
                    403,
                    error_body(
                        403,
                        "PERMISSION_DENIED",
                        "forbidden",
                        &format!(
                            "Required 'compute.instances.get' permission for 'projects/{project}'"
                        ),
                    ),
                );
            }
            compute(s, method, zone, rest, query, body)
        }
        _ => not_found("The requested URL was not found on this server."),
    }
}

// ---- operations

impl State {
    fn next(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    /// Starts an operation on `target`; `polls` 0 is DONE at once.
    fn operation(
        &mut self,
        kind: &str,
        op_type: &str,
        target: &str,
        zone: Option<&str>,
        polls: u32,
        effect: Effect,
    ) -> Value {
        let n = self.next();
        let name = format!("op-{n:08}-{}", op_type.to_ascii_lowercase());
        let mut json = match zone {
            None => json!({
                "kind": "sql#operation", "name": name, "operationType": op_type, "status": "PENDING",
                "targetId": target, "targetProject": PROJECT, "user": self.client_email,
                "targetLink": format!("https://sqladmin.googleapis.com/v1/projects/{PROJECT}/instances/{target}"),
                "selfLink": format!("https://sqladmin.googleapis.com/v1/projects/{PROJECT}/operations/{name}"),
            }),
            Some(zone) => json!({
                "kind": "compute#operation", "id": n.to_string(), "name": name, "operationType": op_type,
                "status": "PENDING", "progress": 0, "zone": format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{zone}"),
                "targetLink": format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{zone}/instances/{target}"),
                "selfLink": format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{zone}/operations/{name}"),
            }),
        };
        let _ = kind;
        let failing = self.failing.remove(target);
        let mut op = Operation {
            json: json.clone(),
            remaining: polls,
            effect,
            error: None,
            target: target.to_string(),
        };
        if let Some((http, error)) = failing {
            if let Some(code) = http {
                op.json["httpErrorStatusCode"] = json!(code);
            }
            op.error = Some(error);
        }
        if polls == 0 {
            self.complete(&mut op);
            json = op.json.clone();
        }
        self.operations.insert(name, op);
        json
    }

    /// One poll of an operation: it moves on, and may finish.
    fn poll(&mut self, name: &str) -> Option<Value> {
        let mut op = self.operations.get(name)?.clone();
        if op.json["status"] != "DONE" && !self.held {
            if op.remaining > 1 {
                op.remaining -= 1;
                op.json["status"] = json!("RUNNING");
                if op.json.get("progress").is_some() {
                    op.json["progress"] = json!(50);
                }
                self.step(&op);
            } else {
                self.complete(&mut op);
            }
        }
        let json = op.json.clone();
        self.operations.insert(name.to_string(), op);
        Some(json)
    }

    /// Moves every running operation on a target one poll on, as time does.
    fn advance(&mut self, target: &str) {
        let names: Vec<String> = self
            .operations
            .iter()
            .filter(|(_, op)| op.target == target && op.json["status"] != "DONE")
            .map(|(n, _)| n.clone())
            .collect();
        for name in names {
            self.poll(&name);
        }
    }

    fn busy(&self, target: &str) -> bool {
        self.operations
            .values()
            .any(|op| op.target == target && op.json["status"] != "DONE")
    }

    /// What a running operation shows on the way.
    fn step(&mut self, op: &Operation) {
        if let Effect::VmRunning(zone, name) = &op.effect {
            if let Some(vm) = self.vms.get_mut(&(zone.clone(), name.clone())) {
                vm["status"] = json!("STAGING");
            }
        }
    }

    fn complete(&mut self, op: &mut Operation) {
        op.json["status"] = json!("DONE");
        if op.json.get("progress").is_some() {
            op.json["progress"] = json!(100);
        }
        if let Some(error) = &op.error {
            op.json["error"] = error.clone();
            // A failed create leaves nothing; a failed change changes nothing.
            match &op.effect {
                Effect::SqlCreated(name) => {
                    self.sql_instances.remove(name);
                }
                Effect::VmRunning(zone, name) => {
                    self.vms.remove(&(zone.clone(), name.clone()));
                }
                _ => {}
            }
            return;
        }
        match op.effect.clone() {
            Effect::None => {}
            Effect::SqlCreated(name) => {
                let n = self.next();
                if let Some(instance) = self.sql_instances.get_mut(&name) {
                    finish_sql_instance(instance, n);
                }
            }
            Effect::SqlPatched(name, patch) => {
                if let Some(instance) = self.sql_instances.get_mut(&name) {
                    merge(instance, &patch);
                    let version = instance
                        .pointer("/settings/settingsVersion")
                        .and_then(Value::as_str)
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(1);
                    instance["settings"]["settingsVersion"] = json!((version + 1).to_string());
                }
            }
            Effect::SqlDeleted(name) => {
                self.sql_instances.remove(&name);
                self.databases.retain(|(i, _), _| *i != name);
                self.users.retain(|(i, _, _), _| *i != name);
                self.reserved.insert(name);
            }
            Effect::VmRunning(zone, name) => {
                let n = self.next();
                if let Some(vm) = self.vms.get_mut(&(zone, name)) {
                    vm["status"] = json!("RUNNING");
                    vm["networkInterfaces"][0]["networkIP"] =
                        json!(format!("10.132.0.{}", n % 250 + 2));
                    if let Some(access) = vm.pointer_mut("/networkInterfaces/0/accessConfigs/0") {
                        access["natIP"] = json!(format!("35.200.0.{}", n % 250 + 2));
                    }
                }
            }
            Effect::VmStopped(zone, name) => {
                if let Some(vm) = self.vms.get_mut(&(zone, name)) {
                    vm["status"] = json!("TERMINATED");
                }
            }
            Effect::VmMachineType(zone, name, machine_type) => {
                if let Some(vm) = self.vms.get_mut(&(zone, name)) {
                    vm["machineType"] = json!(machine_type);
                }
            }
            Effect::VmDeleted(zone, name) => {
                self.vms.remove(&(zone, name));
            }
        }
    }
}

/// What Cloud SQL fills in once an instance is made.
fn finish_sql_instance(instance: &mut Value, n: u64) {
    let name = instance["name"].as_str().unwrap_or("").to_string();
    let region = instance["region"].as_str().unwrap_or(REGION).to_string();
    instance["state"] = json!("RUNNABLE");
    instance["ipAddresses"] =
        json!([{"type": "PRIMARY", "ipAddress": format!("34.76.0.{}", n % 250 + 2)}]);
    instance["connectionName"] = json!(format!("{PROJECT}:{region}:{name}"));
    instance["gceZone"] = json!(format!("{region}-b"));
    instance["settings"]["settingsVersion"] = json!("1");
}

/// A PATCH's fields over a resource's: objects merge, anything else (maps
/// of labels included) is replaced.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                if key == "userLabels" || !value.is_object() {
                    target.insert(key.clone(), value.clone());
                } else {
                    merge(
                        target.entry(key.clone()).or_insert_with(|| json!({})),
                        value,
                    );
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

// ---- Cloud SQL Admin

fn sql(
    s: &mut State,
    method: &str,
    path: &[&str],
    query: &BTreeMap<String, String>,
    body: Value,
) -> Answer {
    match (method, path) {
        ("POST", ["instances"]) => {
            let name = body["name"].as_str().unwrap_or("").to_string();
            if name.is_empty() {
                return (
                    400,
                    error_body(
                        400,
                        "INVALID_ARGUMENT",
                        "required",
                        "Missing parameter: name.",
                    ),
                );
            }
            if s.sql_instances.contains_key(&name) || s.reserved.contains(&name) {
                return (409, error_body(409, "", "instanceAlreadyExists",
                    "The Cloud SQL instance already exists. When you delete an instance, you can't reuse the name of the deleted instance until one week from the deletion date."));
            }
            let mut instance = body.clone();
            if let Some(password) = instance
                .as_object_mut()
                .and_then(|o| o.remove("rootPassword"))
            {
                let version = body["databaseVersion"].to_string();
                let root = if version.contains("MYSQL") {
                    "root"
                } else {
                    "postgres"
                };
                s.passwords.insert(
                    (name.clone(), root.into()),
                    password.as_str().unwrap_or("").into(),
                );
            }
            instance["kind"] = json!("sql#instance");
            instance["state"] = json!("PENDING_CREATE");
            // What Cloud SQL picks when the request does not say.
            for (field, default) in [
                ("availabilityType", "ZONAL"),
                ("dataDiskType", "PD_SSD"),
                ("edition", "ENTERPRISE"),
                ("dataDiskSizeGb", "10"),
            ] {
                if instance["settings"].get(field).is_none() {
                    instance["settings"][field] = json!(default);
                }
            }
            instance["project"] = json!(PROJECT);
            instance["selfLink"] = json!(format!(
                "https://sqladmin.googleapis.com/v1/projects/{PROJECT}/instances/{name}"
            ));
            s.sql_instances.insert(name.clone(), instance);
            let polls = s.polls;
            (
                200,
                s.operation(
                    "sql",
                    "CREATE",
                    &name,
                    None,
                    polls,
                    Effect::SqlCreated(name.clone()),
                ),
            )
        }
        ("GET", ["instances", name]) => {
            s.advance(name);
            match s.sql_instances.get(*name) {
                Some(instance) => (200, instance.clone()),
                None => (
                    404,
                    error_body(
                        404,
                        "",
                        "instanceDoesNotExist",
                        "The Cloud SQL instance does not exist.",
                    ),
                ),
            }
        }
        ("PATCH", ["instances", name]) => {
            let Some(instance) = s.sql_instances.get(*name) else {
                return (
                    404,
                    error_body(
                        404,
                        "",
                        "instanceDoesNotExist",
                        "The Cloud SQL instance does not exist.",
                    ),
                );
            };
            if s.busy(name) {
                return in_progress();
            }
            if instance["state"] != "RUNNABLE" {
                return (
                    400,
                    error_body(
                        400,
                        "",
                        "invalidState",
                        "The instance is not in a state that allows this operation.",
                    ),
                );
            }
            let polls = s.polls;
            (
                200,
                s.operation(
                    "sql",
                    "UPDATE",
                    name,
                    None,
                    polls,
                    Effect::SqlPatched(name.to_string(), body),
                ),
            )
        }
        ("DELETE", ["instances", name]) => {
            let Some(instance) = s.sql_instances.get_mut(*name) else {
                return (
                    404,
                    error_body(
                        404,
                        "",
                        "instanceDoesNotExist",
                        "The Cloud SQL instance does not exist.",
                    ),
                );
            };
            if instance.pointer("/settings/deletionProtectionEnabled") == Some(&json!(true)) {
                return (400, error_body(400, "", "invalid",
                    "The instance is protected. Please disable the deletion protection and try again. To disable deletion protection, update the instance settings with deletionProtectionEnabled set to false."));
            }
            instance["state"] = json!("PENDING_DELETE");
            let polls = s.polls;
            (
                200,
                s.operation(
                    "sql",
                    "DELETE",
                    name,
                    None,
                    polls,
                    Effect::SqlDeleted(name.to_string()),
                ),
            )
        }
        ("GET", ["operations", name]) => match s.poll(name) {
            Some(op) => (200, op),
            None => not_found(&format!("The Cloud SQL operation {name} does not exist.")),
        },
        (_, ["instances", instance, "databases", rest @ ..]) => {
            databases(s, method, instance, rest, body)
        }
        (_, ["instances", instance, "users", rest @ ..]) => {
            users(s, method, instance, rest, query, body)
        }
        _ => not_found("The requested URL was not found on this server."),
    }
}

fn in_progress() -> Answer {
    (
        409,
        error_body(
            409,
            "",
            "operationInProgress",
            "Operation failed because another operation was already in progress.",
        ),
    )
}

/// Databases and users are made in a RUNNABLE instance only.
fn usable(s: &State, instance: &str) -> Result<(), Answer> {
    match s.sql_instances.get(instance) {
        None => Err((
            404,
            error_body(
                404,
                "",
                "instanceDoesNotExist",
                "The Cloud SQL instance does not exist.",
            ),
        )),
        Some(i) if i["state"] != "RUNNABLE" => Err((
            400,
            error_body(
                400,
                "",
                "invalidState",
                "Invalid request since instance is not running.",
            ),
        )),
        Some(_) => Ok(()),
    }
}

fn databases(s: &mut State, method: &str, instance: &str, path: &[&str], body: Value) -> Answer {
    match (method, path) {
        ("POST", []) => {
            if let Err(e) = usable(s, instance) {
                return e;
            }
            let name = body["name"].as_str().unwrap_or("").to_string();
            let key = (instance.to_string(), name.clone());
            if s.databases.contains_key(&key) {
                return (
                    409,
                    error_body(
                        409,
                        "",
                        "alreadyExists",
                        &format!("Database \"{name}\" already exists."),
                    ),
                );
            }
            let mut database = body.clone();
            database["kind"] = json!("sql#database");
            database["charset"] = body.get("charset").cloned().unwrap_or(json!("UTF8"));
            database["collation"] = body
                .get("collation")
                .cloned()
                .unwrap_or(json!("en_US.UTF8"));
            database["selfLink"] = json!(format!("https://sqladmin.googleapis.com/v1/projects/{PROJECT}/instances/{instance}/databases/{name}"));
            s.databases.insert(key, database);
            (
                200,
                s.operation("sql", "CREATE_DATABASE", instance, None, 1, Effect::None),
            )
        }
        ("GET", [name]) => match s.databases.get(&(instance.to_string(), name.to_string())) {
            Some(d) => (200, d.clone()),
            None => not_found(&format!("Not Found: database {name}")),
        },
        ("PATCH", [name]) => {
            let Some(database) = s
                .databases
                .get_mut(&(instance.to_string(), name.to_string()))
            else {
                return not_found(&format!("Not Found: database {name}"));
            };
            merge(database, &body);
            (
                200,
                s.operation("sql", "UPDATE_DATABASE", instance, None, 1, Effect::None),
            )
        }
        ("DELETE", [name]) => {
            if s.databases
                .remove(&(instance.to_string(), name.to_string()))
                .is_none()
            {
                return not_found(&format!("Not Found: database {name}"));
            }
            (
                200,
                s.operation("sql", "DELETE_DATABASE", instance, None, 1, Effect::None),
            )
        }
        _ => not_found("The requested URL was not found on this server."),
    }
}

fn users(
    s: &mut State,
    method: &str,
    instance: &str,
    path: &[&str],
    query: &BTreeMap<String, String>,
    body: Value,
) -> Answer {
    let host_of = |q: &BTreeMap<String, String>| q.get("host").cloned().unwrap_or_default();
    match (method, path) {
        ("POST", []) => {
            if let Err(e) = usable(s, instance) {
                return e;
            }
            let name = body["name"].as_str().unwrap_or("").to_string();
            let host = body["host"].as_str().unwrap_or("").to_string();
            let key = (instance.to_string(), name.clone(), host);
            if s.users.contains_key(&key) {
                return (
                    409,
                    error_body(
                        409,
                        "",
                        "alreadyExists",
                        &format!("User \"{name}\" already exists."),
                    ),
                );
            }
            let mut user = body.clone();
            if let Some(password) = user.as_object_mut().and_then(|o| o.remove("password")) {
                s.passwords.insert(
                    (instance.to_string(), name.clone()),
                    password.as_str().unwrap_or("").into(),
                );
            }
            user["kind"] = json!("sql#user");
            s.users.insert(key, user);
            (
                200,
                s.operation("sql", "CREATE_USER", instance, None, 1, Effect::None),
            )
        }
        ("GET", [name]) => {
            match s
                .users
                .get(&(instance.to_string(), name.to_string(), host_of(query)))
            {
                Some(u) => (200, u.clone()),
                None => not_found(&format!("User {name} does not exist.")),
            }
        }
        ("PUT", []) => {
            let name = query.get("name").cloned().unwrap_or_default();
            if !s
                .users
                .contains_key(&(instance.to_string(), name.clone(), host_of(query)))
            {
                return not_found(&format!("User {name} does not exist."));
            }
            if let Some(password) = body.get("password").and_then(Value::as_str) {
                s.passwords
                    .insert((instance.to_string(), name), password.to_string());
            }
            (
                200,
                s.operation("sql", "UPDATE_USER", instance, None, 1, Effect::None),
            )
        }
        ("DELETE", []) => {
            let name = query.get("name").cloned().unwrap_or_default();
            if s.users
                .remove(&(instance.to_string(), name.clone(), host_of(query)))
                .is_none()
            {
                return not_found(&format!("User {name} does not exist."));
            }
            s.passwords.remove(&(instance.to_string(), name));
            (
                200,
                s.operation("sql", "DELETE_USER", instance, None, 1, Effect::None),
            )
        }
        _ => not_found("The requested URL was not found on this server."),
    }
}

// ---- Compute Engine

fn fingerprint(n: u64) -> Value {
    json!(STANDARD.encode(n.to_be_bytes()))
}

fn compute(
    s: &mut State,
    method: &str,
    zone: &str,
    path: &[&str],
    query: &BTreeMap<String, String>,
    body: Value,
) -> Answer {
    let key = |name: &str| (zone.to_string(), name.to_string());
    let link = |name: &str| {
        format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{zone}/instances/{name}")
    };
    let missing = |name: &str| {
        (
            404,
            error_body(
                404,
                "",
                "notFound",
                &format!(
                    "The resource 'projects/{PROJECT}/zones/{zone}/instances/{name}' was not found"
                ),
            ),
        )
    };
    match (method, path) {
        ("POST", ["instances"]) => {
            if let Some(op) = query
                .get("requestId")
                .and_then(|id| s.request_ids.get(id))
                .cloned()
            {
                // The same request id: the same operation, nothing new.
                return (
                    200,
                    s.operations
                        .get(&op)
                        .map(|o| o.json.clone())
                        .unwrap_or(json!({})),
                );
            }
            let name = body["name"].as_str().unwrap_or("").to_string();
            if s.vms.contains_key(&key(&name)) {
                return (409, error_body(409, "", "alreadyExists",
                    &format!("The resource 'projects/{PROJECT}/zones/{zone}/instances/{name}' already exists")));
            }
            let n = s.next();
            let mut vm = body.clone();
            vm["kind"] = json!("compute#instance");
            vm["id"] = json!((1_000_000 + n).to_string());
            vm["status"] = json!("PROVISIONING");
            vm["zone"] = json!(format!(
                "https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{zone}"
            ));
            vm["selfLink"] = json!(link(&name));
            let machine = body["machineType"]
                .as_str()
                .unwrap_or("")
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_string();
            vm["machineType"] = json!(format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{zone}/machineTypes/{machine}"));
            vm["labelFingerprint"] = fingerprint(n);
            let mut metadata = vm.get("metadata").cloned().unwrap_or(json!({}));
            metadata["fingerprint"] = fingerprint(n + 1);
            metadata["kind"] = json!("compute#metadata");
            vm["metadata"] = metadata;
            let mut tags = vm.get("tags").cloned().unwrap_or(json!({}));
            tags["fingerprint"] = fingerprint(n + 2);
            vm["tags"] = tags;
            s.vms.insert(key(&name), vm);
            let polls = s.polls;
            let op = s.operation(
                "compute",
                "insert",
                &name,
                Some(zone),
                polls,
                Effect::VmRunning(zone.into(), name.clone()),
            );
            if let (Some(id), Some(op_name)) = (query.get("requestId"), op["name"].as_str()) {
                s.request_ids.insert(id.clone(), op_name.to_string());
            }
            (200, op)
        }
        ("GET", ["instances", name]) => {
            s.advance(name);
            match s.vms.get(&key(name)) {
                Some(vm) => (200, vm.clone()),
                None => missing(name),
            }
        }
        ("DELETE", ["instances", name]) => {
            let Some(vm) = s.vms.get_mut(&key(name)) else {
                return missing(name);
            };
            vm["status"] = json!("STOPPING");
            let polls = s.polls;
            (
                200,
                s.operation(
                    "compute",
                    "delete",
                    name,
                    Some(zone),
                    polls,
                    Effect::VmDeleted(zone.into(), name.to_string()),
                ),
            )
        }
        ("POST", ["instances", name, action]) => {
            let n = s.next();
            let Some(vm) = s.vms.get_mut(&key(name)) else {
                return missing(name);
            };
            let stale = |have: &Value, sent: &Value| {
                (412, error_body(412, "", "conditionNotMet",
                    &format!("Supplied fingerprint does not match current fingerprint (have {have}, sent {sent}).")))
            };
            let effect = match *action {
                "setLabels" => {
                    if body["labelFingerprint"] != vm["labelFingerprint"] {
                        return stale(&vm["labelFingerprint"], &body["labelFingerprint"]);
                    }
                    vm["labels"] = body.get("labels").cloned().unwrap_or(json!({}));
                    vm["labelFingerprint"] = fingerprint(n);
                    Effect::None
                }
                "setMetadata" => {
                    if body["fingerprint"] != vm["metadata"]["fingerprint"] {
                        return stale(&vm["metadata"]["fingerprint"], &body["fingerprint"]);
                    }
                    let mut metadata = body.clone();
                    metadata["fingerprint"] = fingerprint(n);
                    metadata["kind"] = json!("compute#metadata");
                    vm["metadata"] = metadata;
                    Effect::None
                }
                "setTags" => {
                    if body["fingerprint"] != vm["tags"]["fingerprint"] {
                        return stale(&vm["tags"]["fingerprint"], &body["fingerprint"]);
                    }
                    vm["tags"] = json!({"items": body.get("items").cloned().unwrap_or(json!([])), "fingerprint": fingerprint(n)});
                    Effect::None
                }
                "stop" => {
                    vm["status"] = json!("STOPPING");
                    Effect::VmStopped(zone.into(), name.to_string())
                }
                "start" => {
                    vm["status"] = json!("STAGING");
                    Effect::VmRunning(zone.into(), name.to_string())
                }
                "setMachineType" => {
                    if vm["status"] != "TERMINATED" {
                        return (
                            400,
                            error_body(
                                400,
                                "",
                                "resourceNotReady",
                                "Invalid resource usage: 'Instance is starting or running.'",
                            ),
                        );
                    }
                    let machine = body["machineType"]
                        .as_str()
                        .unwrap_or("")
                        .rsplit('/')
                        .next()
                        .unwrap_or("")
                        .to_string();
                    Effect::VmMachineType(zone.into(), name.to_string(),
                        format!("https://www.googleapis.com/compute/v1/projects/{PROJECT}/zones/{zone}/machineTypes/{machine}"))
                }
                _ => return not_found("The requested URL was not found on this server."),
            };
            let polls = if matches!(effect, Effect::None) {
                1
            } else {
                s.polls
            };
            (
                200,
                s.operation("compute", action, name, Some(zone), polls, effect),
            )
        }
        ("GET", ["operations", name]) => match s.poll(name) {
            Some(op) => (200, op),
            None => not_found(&format!(
                "The resource 'projects/{PROJECT}/zones/{zone}/operations/{name}' was not found"
            )),
        },
        _ => not_found("The requested URL was not found on this server."),
    }
}
