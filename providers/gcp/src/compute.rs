//! `Instance.compute.gcp.plinth.dev`: a Compute Engine VM, through
//! `google-cloud-compute-v1`.
//!
//! Its external name is the instance name, so it is deterministic; the
//! insert also carries a request id derived from the resource's UID, so
//! Compute Engine itself drops a retried insert. Instances it makes carry a
//! `plinth-uid` label.
//!
//! Writes answer with a zonal Operation, followed across reconciles. The
//! instance is kept RUNNING: a changed machine type stops it, sets the type
//! and starts it again, one step per reconcile.

use std::sync::Arc;

use google_cloud_compute_v1::model::{
    Instance as Model, InstancesSetLabelsRequest, InstancesSetMachineTypeRequest, Metadata, Tags,
};
use provider_sdk::{
    async_trait, ConnectionDetails, Created, ExternalResource, KindSchema, Observation,
    ProviderError, Readiness, Request,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::config::{Clients, Pool};
use crate::errors::{self, classify, Answer};
use crate::operations::{Operations, Progress, Scope};
use crate::rest;

pub const GROUP: &str = "compute.gcp.plinth.dev";

/// The connection keys of an instance.
pub const CONNECTION_KEYS: [&str; 2] = ["host", "port"];

/// The label that records which resource made an instance.
pub const UID_LABEL: &str = "plinth-uid";

/// The network an instance is on when the spec names none.
pub const DEFAULT_NETWORK: &str = "global/networks/default";

/// The Compute Engine `Instance` kind.
pub struct Instance {
    clients: Arc<Pool>,
    operations: Arc<Operations>,
}

impl Instance {
    pub fn new(clients: Arc<Pool>, operations: Arc<Operations>) -> Instance {
        Instance {
            clients,
            operations,
        }
    }

    async fn get(
        &self,
        clients: &Clients,
        zone: &str,
        name: &str,
    ) -> Result<Option<Value>, ProviderError> {
        match clients
            .compute
            .get()
            .set_project(&clients.project)
            .set_zone(zone)
            .set_instance(name)
            .send()
            .await
        {
            Ok(found) => Ok(Some(named(&found))),
            Err(e) if errors::is_not_found(&e) => Ok(None),
            Err(e) => Err(classify(&format!("get Compute Engine instance {name}"), &e)),
        }
    }
}

/// An instance as REST JSON with its status by name, as the REST reference
/// writes it (the model serializes enums as numbers).
fn named(model: &Model) -> Value {
    let mut json = rest::json(model);
    if let Some(status) = model.status.as_ref().and_then(|s| s.name()) {
        json["status"] = Value::from(status);
    }
    json
}

fn text<'a>(req: &'a Request, field: &str) -> Option<&'a str> {
    req.field(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The zone the spec names, else zone b of the ProviderConfig's region,
/// which every Google Cloud region has; Observe writes it back to the spec,
/// so a later change of the region does not move the instance.
fn zone(req: &Request, clients: &Clients) -> String {
    text(req, "zone").map_or_else(|| format!("{}-b", clients.region), str::to_string)
}

/// The last segment of a resource URL: `e2-small` of
/// `https://…/zones/z/machineTypes/e2-small`.
fn short(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// The labels the instance should carry: the spec's and Plinth's own.
fn labels(req: &Request) -> Map<String, Value> {
    let mut labels = match req.field("labels") {
        Some(Value::Object(labels)) => labels.clone(),
        _ => Map::new(),
    };
    labels.insert(UID_LABEL.into(), json!(req.uid));
    labels
}

/// The spec's metadata as Compute Engine's `items` list, sorted by key.
fn metadata_items(req: &Request) -> Vec<Value> {
    let mut items: Vec<(String, Value)> = match req.field("metadata") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        _ => Vec::new(),
    };
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items
        .into_iter()
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect()
}

fn observed_metadata(instance: &Value) -> Map<String, Value> {
    instance
        .pointer("/metadata/items")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    Some((
                        i.get("key")?.as_str()?.to_string(),
                        i.get("value").cloned().unwrap_or(Value::Null),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn tag_set(value: Option<&Value>) -> Vec<String> {
    let mut tags: Vec<String> = value
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    tags.sort();
    tags.dedup();
    tags
}

/// A request id Compute Engine takes (a UUID) derived from the resource's
/// UID, so a retried insert is dropped by Compute Engine itself.
fn request_id(uid: &str) -> String {
    let digest = hex::encode(Sha256::digest(format!("plinth-insert:{uid}").as_bytes()));
    format!(
        "{}-{}-{}-{}-{}",
        &digest[0..8],
        &digest[8..12],
        &digest[12..16],
        &digest[16..20],
        &digest[20..32]
    )
}

/// The instance a resource asks for, as the REST body of an insert.
fn insert_body(req: &Request, zone: &str) -> Result<Value, ProviderError> {
    let machine_type = text(req, "machineType").ok_or_else(|| {
        ProviderError::terminal("spec.forProvider.machineType is required, e.g. e2-small")
    })?;
    let image = text(req, "sourceImage")
        .or_else(|| text(req, "image"))
        .ok_or_else(|| ProviderError::terminal("spec.forProvider.image is required, e.g. projects/debian-cloud/global/images/family/debian-12"))?;
    let mut init = json!({"sourceImage": image});
    if let Some(size) = req.field("diskSizeGb").and_then(Value::as_i64) {
        init["diskSizeGb"] = json!(size.to_string());
    }
    let mut interface = json!({"network": text(req, "network").unwrap_or(DEFAULT_NETWORK)});
    if let Some(subnetwork) = text(req, "subnetwork") {
        interface["subnetwork"] = json!(subnetwork);
    }
    if req.field("externalIp").and_then(Value::as_bool) == Some(true) {
        interface["accessConfigs"] = json!([{"name": "External NAT", "type": "ONE_TO_ONE_NAT"}]);
    }
    let mut body = json!({
        "name": req.external_name_or_name(),
        "machineType": format!("zones/{zone}/machineTypes/{machine_type}"),
        "labels": labels(req),
        "disks": [{"boot": true, "autoDelete": true, "initializeParams": init}],
        "networkInterfaces": [interface],
    });
    let items = metadata_items(req);
    if !items.is_empty() {
        body["metadata"] = json!({"items": items});
    }
    let tags = tag_set(req.field("tags"));
    if !tags.is_empty() {
        body["tags"] = json!({"items": tags});
    }
    Ok(body)
}

/// How an instance status reads as readiness.
pub fn readiness(status: &str) -> (Readiness, String) {
    match status {
        "RUNNING" => (Readiness::Available, String::new()),
        "PROVISIONING" | "STAGING" => (
            Readiness::Creating,
            format!("Compute Engine is starting the instance ({status})"),
        ),
        other => (
            Readiness::Unavailable,
            format!("Compute Engine reports the instance as {other}"),
        ),
    }
}

/// One change Update makes to an instance, with its REST body.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Labels(Value),
    Metadata(Value),
    Tags(Value),
    /// Stop first: Compute Engine changes the type of a stopped instance only.
    Stop,
    /// Set the machine type (a `zones/Z/machineTypes/T` URL).
    MachineType(String),
    Start,
}

/// What Update does to bring an instance to the spec, each change with the
/// difference it mends: a decision without I/O. Labels, metadata and tags
/// change in place with their fingerprints; a changed machine type stops
/// the instance, then sets the type, then (seen stopped) starts it, one
/// step per reconcile.
pub fn plan(req: &Request, zone: &str, instance: &Value) -> Vec<(Change, String)> {
    let mut changes = Vec::new();
    let fingerprint = |pointer: &str| instance.pointer(pointer).cloned().unwrap_or(Value::Null);
    let want_labels = Value::Object(labels(req));
    let have_labels = instance.get("labels").cloned().unwrap_or_else(|| json!({}));
    if want_labels != have_labels {
        changes.push((
            Change::Labels(json!({"labels": want_labels, "labelFingerprint": fingerprint("/labelFingerprint")})),
            format!("labels: {have_labels} → {want_labels}"),
        ));
    }
    let want_metadata: Map<String, Value> = match req.field("metadata") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    if want_metadata != observed_metadata(instance) {
        changes.push((
            Change::Metadata(json!({"items": metadata_items(req), "fingerprint": fingerprint("/metadata/fingerprint")})),
            "metadata: changed".into(),
        ));
    }
    let want_tags = tag_set(req.field("tags"));
    let have_tags = tag_set(instance.pointer("/tags/items"));
    if want_tags != have_tags {
        changes.push((
            Change::Tags(
                json!({"items": want_tags, "fingerprint": fingerprint("/tags/fingerprint")}),
            ),
            format!("tags: {have_tags:?} → {want_tags:?}"),
        ));
    }
    let status = instance.get("status").and_then(Value::as_str).unwrap_or("");
    let have_type = instance
        .get("machineType")
        .and_then(Value::as_str)
        .map(short)
        .unwrap_or("");
    let want_type = text(req, "machineType").unwrap_or(have_type);
    if want_type != have_type {
        let why = format!("machineType: {have_type} → {want_type}");
        if status == "TERMINATED" {
            changes.push((
                Change::MachineType(format!("zones/{zone}/machineTypes/{want_type}")),
                why,
            ));
        } else {
            changes.push((Change::Stop, why));
        }
    } else if matches!(status, "TERMINATED" | "STOPPED" | "SUSPENDED") {
        changes.push((Change::Start, format!("status: {status} → RUNNING")));
    }
    changes
}

/// What differs between the spec and the instance, one line each.
fn differences(req: &Request, zone: &str, instance: &Value) -> Vec<String> {
    plan(req, zone, instance)
        .into_iter()
        .map(|(_, why)| why)
        .collect()
}

fn at_provider(instance: &Value) -> Value {
    let interface = instance.pointer("/networkInterfaces/0");
    json!({
        "status": instance.get("status"),
        "id": instance.get("id"),
        "machineType": instance.get("machineType").and_then(Value::as_str).map(short),
        "privateIp": interface.and_then(|i| i.get("networkIP")),
        "publicIp": interface.and_then(|i| i.pointer("/accessConfigs/0/natIP")),
        "selfLink": instance.get("selfLink"),
    })
}

fn connection(req: &Request, instance: Option<&Value>) -> ConnectionDetails {
    let mut details = ConnectionDetails::new();
    let interface = instance.and_then(|i| i.pointer("/networkInterfaces/0"));
    let host = interface
        .and_then(|i| i.pointer("/accessConfigs/0/natIP"))
        .or_else(|| interface.and_then(|i| i.get("networkIP")))
        .and_then(Value::as_str);
    if let Some(host) = host {
        details.insert("host".into(), host.as_bytes().to_vec());
    }
    if let Some(port) = req.field("port").and_then(Value::as_i64) {
        details.insert("port".into(), port.to_string().into_bytes());
    }
    details
}

fn made_by(instance: &Value, uid: &str) -> bool {
    instance
        .pointer(&format!("/labels/{UID_LABEL}"))
        .and_then(Value::as_str)
        == Some(uid)
}

fn taken(name: &str) -> ProviderError {
    ProviderError::terminal(format!(
        "a Compute Engine instance named {name} already exists and was not made by this resource: give the resource another name, or set its crossplane.io/external-name annotation to {name} to manage that instance"
    ))
}

#[async_trait]
impl ExternalResource for Instance {
    fn schema(&self) -> KindSchema {
        let text = |d: &str| json!({"type": "string", "description": d});
        KindSchema {
            group: GROUP.into(),
            version: "v1alpha1".into(),
            kind: "Instance".into(),
            plural: "instances".into(),
            description: "A Compute Engine virtual machine.".into(),
            for_provider: json!({
                "type": "object",
                "properties": {
                    "zone": text("The zone, e.g. europe-west1-b; zone b of the ProviderConfig's region when unset."),
                    "machineType": text("The machine type, e.g. e2-small."),
                    "image": text("The boot disk's image, e.g. projects/debian-cloud/global/images/family/debian-12."),
                    "sourceImage": text("The same as image, under the REST reference's name."),
                    "diskSizeGb": {"type": "integer", "minimum": 10, "description": "The boot disk's size in GB."},
                    "network": text("The VPC network; global/networks/default when unset."),
                    "subnetwork": text("The subnetwork, e.g. regions/europe-west1/subnetworks/apps."),
                    "externalIp": {"type": "boolean", "description": "Give the instance an ephemeral public address."},
                    "metadata": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Instance metadata, e.g. startup-script or user-data."},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Labels for the instance."},
                    "tags": {"type": "array", "items": {"type": "string"}, "description": "Network tags, for firewall rules."},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535, "description": "The port the connection Secret names."}
                }
            }),
            at_provider: json!({
                "type": "object",
                "properties": {
                    "status": {"type": "string"},
                    "id": {"type": "string"},
                    "machineType": {"type": "string"},
                    "privateIp": {"type": "string"},
                    "publicIp": {"type": "string"},
                    "selfLink": {"type": "string"}
                }
            }),
            connection_secret_keys: CONNECTION_KEYS.map(String::from).to_vec(),
            deterministic_external_name: true,
        }
    }

    async fn validate(&self, req: &Request) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(problem) = crate::sql::instance_name_problem(req.external_name_or_name()) {
            problems.push((
                "metadata.name".into(),
                problem.replace("Cloud SQL", "Compute Engine"),
            ));
        }
        if text(req, "machineType").is_none() {
            problems.push(("machineType".into(), "is required, e.g. e2-small".into()));
        }
        if text(req, "image").is_none() && text(req, "sourceImage").is_none() {
            problems.push((
                "image".into(),
                "is required, e.g. projects/debian-cloud/global/images/family/debian-12".into(),
            ));
        }
        if let Some(Value::Object(labels)) = req.field("labels") {
            if labels.contains_key(UID_LABEL) {
                problems.push((
                    format!("labels.{UID_LABEL}"),
                    "is Plinth's own label, set on every instance it makes".into(),
                ));
            }
        }
        problems
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let zone = zone(req, &clients);
        let zone = zone.as_str();
        let name = req.external_name_or_name();
        let progress = self
            .operations
            .progress(
                &clients,
                &req.uid,
                &format!("Compute Engine instance {name}"),
            )
            .await?;
        let Some(instance) = self.get(&clients, zone, name).await? else {
            return Ok(match progress {
                Progress::Running(message) => {
                    Observation::available(json!({})).with_readiness(Readiness::Creating, message)
                }
                Progress::Idle => Observation::absent(),
            });
        };
        if req.external_name.is_empty() && !made_by(&instance, &req.uid) {
            return Err(taken(name));
        }
        let status = instance.get("status").and_then(Value::as_str).unwrap_or("");
        let (ready, mut message) = readiness(status);
        let diff = match progress {
            Progress::Running(running) => {
                message = if message.is_empty() {
                    running
                } else {
                    format!("{message}; {running}")
                };
                Vec::new()
            }
            Progress::Idle => differences(req, zone, &instance),
        };
        let mut observation = Observation::available(at_provider(&instance))
            .with_diff(diff.join("; "))
            .with_connection(connection(req, Some(&instance)))
            .with_readiness(ready, message);
        if text(req, "zone").is_none() {
            observation = observation.with_late_init(json!({"zone": zone}));
        }
        Ok(observation)
    }

    async fn create(&self, req: &Request) -> Result<Created, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let zone = zone(req, &clients);
        let zone = zone.as_str();
        let name = req.external_name_or_name().to_string();
        let body: Model = rest::model("Compute Engine instance", insert_body(req, zone)?)?;
        match clients
            .compute
            .insert()
            .set_project(&clients.project)
            .set_zone(zone)
            .set_request_id(request_id(&req.uid))
            .set_body(body)
            .send()
            .await
        {
            Ok(operation) => {
                self.operations
                    .track(&req.uid, Scope::Zone(zone.into()), "create", &operation)
            }
            Err(e) if Answer::of(&e).is_conflict() => {
                match self.get(&clients, zone, &name).await? {
                    Some(instance) if made_by(&instance, &req.uid) => {}
                    _ => return Err(taken(&name)),
                }
            }
            Err(e) => {
                return Err(classify(
                    &format!("insert Compute Engine instance {name}"),
                    &e,
                ))
            }
        }
        Ok(Created {
            external_name: name,
            connection: connection(req, None),
        })
    }

    async fn update(&self, req: &Request) -> Result<ConnectionDetails, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let zone = zone(req, &clients);
        let zone = zone.as_str();
        let name = req.external_name_or_name();
        let Some(instance) = self.get(&clients, zone, name).await? else {
            return Err(ProviderError::retryable(format!(
                "Compute Engine instance {name} vanished before the update"
            )));
        };
        let scope = Scope::Zone(zone.to_string());
        // Each call is a builder of its own type; one macro spells them alike.
        macro_rules! call {
            ($method:ident $(, $body:expr)?) => {
                clients
                    .compute
                    .$method()
                    .set_project(&clients.project)
                    .set_zone(zone)
                    .set_instance(name)
                    $(.set_body($body))?
                    .send()
                    .await
            };
        }
        for (change, why) in plan(req, zone, &instance) {
            let (what, result) = match change {
                Change::Labels(body) => (
                    "set the labels",
                    call!(
                        set_labels,
                        rest::model::<InstancesSetLabelsRequest>("labels", body)?
                    ),
                ),
                Change::Metadata(body) => (
                    "set the metadata",
                    call!(set_metadata, rest::model::<Metadata>("metadata", body)?),
                ),
                Change::Tags(body) => (
                    "set the tags",
                    call!(set_tags, rest::model::<Tags>("tags", body)?),
                ),
                Change::Stop => ("stop (to change the machine type)", call!(stop)),
                Change::MachineType(url) => (
                    "set the machine type",
                    call!(
                        set_machine_type,
                        rest::model::<InstancesSetMachineTypeRequest>(
                            "machine type",
                            json!({"machineType": url})
                        )?
                    ),
                ),
                Change::Start => ("start", call!(start)),
            };
            let op = result.map_err(|e| {
                classify(
                    &format!("{what} of Compute Engine instance {name} ({why})"),
                    &e,
                )
            })?;
            self.operations.track(&req.uid, scope.clone(), what, &op);
        }
        Ok(connection(req, Some(&instance)))
    }

    async fn delete(&self, req: &Request) -> Result<(), ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let zone = zone(req, &clients);
        let zone = zone.as_str();
        let name = req.external_name_or_name();
        if let Progress::Running(_) = self
            .operations
            .progress(
                &clients,
                &req.uid,
                &format!("Compute Engine instance {name}"),
            )
            .await?
        {
            // Deleting (or another change) is under way; observed again later.
            return Ok(());
        }
        if self.get(&clients, zone, name).await?.is_none() {
            return Ok(());
        }
        match clients
            .compute
            .delete()
            .set_project(&clients.project)
            .set_zone(zone)
            .set_instance(name)
            .send()
            .await
        {
            Ok(op) => {
                self.operations
                    .track(&req.uid, Scope::Zone(zone.into()), "delete", &op);
                Ok(())
            }
            Err(e) if Answer::of(&e).is_not_found() => Ok(()),
            Err(e) => Err(classify(
                &format!("delete Compute Engine instance {name}"),
                &e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_sdk::ProviderConfig;

    fn request(for_provider: Value) -> Request {
        Request {
            name: "web".into(),
            uid: "uid-1".into(),
            external_name: String::new(),
            for_provider,
            secrets: Default::default(),
            secret_seed: Vec::new(),
            config: Arc::new(ProviderConfig::default()),
        }
    }

    #[test]
    fn the_spec_maps_onto_the_insert_body() {
        let req = request(json!({
            "zone": "europe-west1-b", "machineType": "e2-small", "image": "projects/debian-cloud/global/images/family/debian-12",
            "diskSizeGb": 20, "externalIp": true, "metadata": {"startup-script": "echo hi"},
            "labels": {"team": "web"}, "tags": ["http", "http"]
        }));
        let body = insert_body(&req, "europe-west1-b").expect("body");
        let model: Model = rest::model("instance", body).expect("the model takes it");
        let wire = rest::json(&model);
        assert_eq!(
            wire["machineType"],
            "zones/europe-west1-b/machineTypes/e2-small"
        );
        assert_eq!(wire["disks"][0]["initializeParams"]["diskSizeGb"], "20");
        assert_eq!(wire["networkInterfaces"][0]["network"], DEFAULT_NETWORK);
        assert_eq!(
            wire["networkInterfaces"][0]["accessConfigs"][0]["type"],
            "ONE_TO_ONE_NAT"
        );
        assert_eq!(
            wire["metadata"]["items"][0],
            json!({"key": "startup-script", "value": "echo hi"})
        );
        assert_eq!(
            wire["labels"],
            json!({"team": "web", "plinth-uid": "uid-1"})
        );
        assert_eq!(wire["tags"]["items"], json!(["http"]), "tags are a set");
    }

    #[test]
    fn update_plans_one_step_of_a_machine_type_change_at_a_time() {
        let req = request(
            json!({"zone": "z", "machineType": "e2-medium", "labels": {"team": "a"}, "tags": ["b", "a"]}),
        );
        let instance = |status: &str, machine: &str, team: &str| {
            json!({"status": status, "machineType": format!("https://x/zones/z/machineTypes/{machine}"),
                   "labels": {"team": team, "plinth-uid": "uid-1"}, "labelFingerprint": "Zmlu",
                   "tags": {"items": ["a", "b"]}})
        };
        let kinds = |changes: Vec<(Change, String)>| -> Vec<(String, String)> {
            changes
                .into_iter()
                .map(|(c, why)| {
                    (
                        format!("{c:?}").split('(').next().unwrap_or("").to_string(),
                        why,
                    )
                })
                .collect()
        };
        let cases = [
            ("an instance as the spec asks needs nothing", instance("RUNNING", "e2-medium", "a"), vec![]),
            (
                "a running instance of another type is stopped first",
                instance("RUNNING", "e2-small", "a"),
                vec![("Stop".to_string(), "machineType: e2-small → e2-medium".to_string())],
            ),
            (
                "a stopped instance of another type gets the type, not yet a start",
                instance("TERMINATED", "e2-small", "a"),
                vec![("MachineType".to_string(), "machineType: e2-small → e2-medium".to_string())],
            ),
            (
                "a stopped instance of the right type is started",
                instance("TERMINATED", "e2-medium", "a"),
                vec![("Start".to_string(), "status: TERMINATED → RUNNING".to_string())],
            ),
            (
                "changed labels are set in place with their fingerprint",
                instance("RUNNING", "e2-medium", "b"),
                vec![("Labels".to_string(), "labels: {\"team\":\"b\",\"plinth-uid\":\"uid-1\"} → {\"team\":\"a\",\"plinth-uid\":\"uid-1\"}".to_string())],
            ),
        ];
        for (reason, observed, want) in cases {
            assert_eq!(kinds(plan(&req, "z", &observed)), want, "{reason}");
        }
        let labels = plan(&req, "z", &instance("RUNNING", "e2-medium", "b"));
        assert_eq!(
            labels[0].0,
            Change::Labels(
                json!({"labels": {"team": "a", "plinth-uid": "uid-1"}, "labelFingerprint": "Zmlu"})
            )
        );
    }

    #[test]
    fn request_ids_are_uuids_stable_per_uid() {
        let id = request_id("uid-1");
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_eq!(id, request_id("uid-1"));
        assert_ne!(id, request_id("uid-2"));
    }
}
