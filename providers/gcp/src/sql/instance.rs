//! `DatabaseInstance.sql.gcp.plinth.dev`: a Cloud SQL instance.
//!
//! Its external name is the instance name, the object's name unless the
//! `crossplane.io/external-name` annotation says otherwise, so it is
//! deterministic and a Create whose answer was lost is found again. The
//! instances it makes carry a `plinth-uid` user label: an instance of that
//! name without it is someone else's and is not taken over.
//!
//! Writes answer with an Operation, which is followed across reconciles
//! (see `operations`); the instance's state says the rest:
//! PENDING_CREATE is Creating, RUNNABLE Ready, and MAINTENANCE, SUSPENDED
//! and FAILED are Unavailable with the state in the message.

use std::sync::Arc;

use google_cloud_sql_v1::model::DatabaseInstance as Model;
use provider_sdk::connection::{database_details, Endpoint};
use provider_sdk::{
    async_trait, ConnectionDetails, Created, ExternalResource, KindSchema, Observation,
    ProviderError, Readiness, Request,
};
use serde_json::{json, Map, Value};

use super::{address, instance_name_problem, state, Engine, CONNECTION_KEYS, GROUP, UID_LABEL};
use crate::config::{Clients, Pool};
use crate::errors::{classify, Answer};
use crate::operations::{Operations, Progress, Scope};
use crate::rest;

/// forProvider fields and where they go in the REST `DatabaseInstance`.
const SETTINGS: [(&str, &str); 8] = [
    ("tier", "tier"),
    ("edition", "edition"),
    ("diskSizeGb", "dataDiskSizeGb"),
    ("diskType", "dataDiskType"),
    ("availabilityType", "availabilityType"),
    ("backupConfiguration", "backupConfiguration"),
    ("ipConfiguration", "ipConfiguration"),
    ("deletionProtectionEnabled", "deletionProtectionEnabled"),
];

/// Settings Cloud SQL picks when the spec does not, written back to it.
const LATE_INIT: [(&str, &str); 4] = [
    ("edition", "edition"),
    ("diskSizeGb", "dataDiskSizeGb"),
    ("diskType", "dataDiskType"),
    ("availabilityType", "availabilityType"),
];

/// The Cloud SQL `DatabaseInstance` kind.
pub struct DatabaseInstance {
    clients: Arc<Pool>,
    operations: Arc<Operations>,
}

impl DatabaseInstance {
    pub fn new(clients: Arc<Pool>, operations: Arc<Operations>) -> DatabaseInstance {
        DatabaseInstance {
            clients,
            operations,
        }
    }
}

/// The instance a resource asks for, as REST JSON normalized through the
/// model, without its name and password.
pub fn desired(req: &Request, default_region: &str) -> Result<Value, ProviderError> {
    let mut settings = Map::new();
    for (field, rest_name) in SETTINGS {
        if let Some(value) = req.field(field) {
            settings.insert(rest_name.into(), value.clone());
        }
    }
    let mut labels = match req.field("userLabels") {
        Some(Value::Object(labels)) => labels.clone(),
        _ => Map::new(),
    };
    labels.insert(UID_LABEL.into(), json!(req.uid));
    settings.insert("userLabels".into(), Value::Object(labels));
    let region = req
        .field("region")
        .and_then(Value::as_str)
        .unwrap_or(default_region);
    let instance = json!({
        "databaseVersion": req.field("databaseVersion").cloned().unwrap_or(Value::Null),
        "region": region,
        "settings": settings,
    });
    let model: Model = rest::model("Cloud SQL instance", instance)?;
    Ok(super::named(&model))
}

/// Whether an instance carries this resource's UID label.
fn made_by(instance: &Value, uid: &str) -> bool {
    instance
        .pointer(&format!("/settings/userLabels/{UID_LABEL}"))
        .and_then(Value::as_str)
        == Some(uid)
}

/// The password of the instance's root user: the Secret's when the spec
/// names one, else one derived from the resource's secret seed.
fn root_password(req: &Request) -> Result<String, ProviderError> {
    if req.field("rootPasswordSecretRef").is_some() {
        return req
            .secret("rootPasswordSecretRef")
            .map(str::to_string)
            .ok_or_else(|| {
                ProviderError::retryable(
                    "the Secret key rootPasswordSecretRef names has no value yet",
                )
            });
    }
    req.derived_secret("root-password").ok_or_else(|| {
        ProviderError::terminal(
            "cannot derive the root password: the control plane sent no secret seed",
        )
    })
}

/// How a Cloud SQL state reads as readiness.
pub fn readiness(state: &str) -> (Readiness, String) {
    match state {
        "RUNNABLE" | "ONLINE_MAINTENANCE" => (Readiness::Available, String::new()),
        "PENDING_CREATE" => (
            Readiness::Creating,
            "Cloud SQL is creating the instance (PENDING_CREATE)".into(),
        ),
        "PENDING_DELETE" => (
            Readiness::Deleting,
            "Cloud SQL is deleting the instance (PENDING_DELETE)".into(),
        ),
        other => (
            Readiness::Unavailable,
            format!("Cloud SQL reports the instance as {other}"),
        ),
    }
}

/// The connection details of an instance's root user; without an address
/// yet, what is known already.
fn connection(engine: Engine, host: Option<&str>, password: Option<&str>) -> ConnectionDetails {
    database_details(&Endpoint {
        scheme: engine.scheme,
        host,
        port: engine.port,
        username: engine.root_user,
        password,
        database: engine.default_database,
        sslmode: Some("require"),
    })
}

fn at_provider(instance: &Value) -> Value {
    let pick = |pointer: &str| instance.pointer(pointer).cloned().unwrap_or(Value::Null);
    let engine = Engine::of(
        instance
            .get("databaseVersion")
            .and_then(Value::as_str)
            .unwrap_or(""),
    );
    let private = instance
        .get("ipAddresses")
        .and_then(Value::as_array)
        .and_then(|all| {
            all.iter()
                .find(|a| a.get("type").and_then(Value::as_str) == Some("PRIVATE"))
        })
        .and_then(|a| a.get("ipAddress"))
        .cloned();
    json!({
        "state": state(instance),
        "address": address(instance),
        "privateIpAddress": private,
        "port": engine.port,
        "connectionName": pick("/connectionName"),
        "databaseVersion": pick("/databaseVersion"),
        "tier": pick("/settings/tier"),
        "diskSizeGb": pick("/settings/dataDiskSizeGb").as_str().and_then(|s| s.parse::<i64>().ok()),
        "availabilityType": pick("/settings/availabilityType"),
        "gceZone": pick("/gceZone"),
        "selfLink": pick("/selfLink"),
    })
}

/// The error for a name some other instance has.
fn taken(name: &str) -> ProviderError {
    ProviderError::terminal(format!(
        "a Cloud SQL instance named {name} already exists and was not made by this resource: give the resource another name, or set its crossplane.io/external-name annotation to {name} to manage that instance"
    ))
}

/// The error for a name Cloud SQL still holds for a deleted instance.
fn reserved(name: &str, answer: &Answer) -> ProviderError {
    ProviderError::terminal(format!(
        "Cloud SQL refuses the instance name {name}: an instance of that name was deleted recently, and Cloud SQL keeps a deleted instance's name for about a week. Give the resource another name (or set crossplane.io/external-name). Google said: {}",
        answer.message
    ))
}

/// What the spec asks that Cloud SQL cannot do to an existing instance.
fn immutable_changes(want: &Value, have: &Value) -> Vec<String> {
    let mut fixed = Vec::new();
    if want.get("region") != have.get("region") {
        fixed.push(format!(
            "region: the instance is in {} and Cloud SQL cannot move it to {}",
            have.get("region").unwrap_or(&Value::Null),
            want.get("region").unwrap_or(&Value::Null)
        ));
    }
    let size = |v: &Value| {
        v.pointer("/settings/dataDiskSizeGb")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<i64>().ok())
    };
    if let (Some(want), Some(have)) = (size(want), size(have)) {
        if want < have {
            fixed.push(format!(
                "diskSizeGb: Cloud SQL disks only grow; the instance has {have} GB and the spec asks for {want}"
            ));
        }
    }
    fixed
}

impl DatabaseInstance {
    async fn observed(
        &self,
        clients: &Clients,
        name: &str,
    ) -> Result<Option<Value>, ProviderError> {
        super::get_instance(clients, name).await
    }
}

#[async_trait]
impl ExternalResource for DatabaseInstance {
    fn schema(&self) -> KindSchema {
        let text = |d: &str| json!({"type": "string", "description": d});
        KindSchema {
            group: GROUP.into(),
            version: "v1alpha1".into(),
            kind: "DatabaseInstance".into(),
            plural: "databaseinstances".into(),
            description: "A Cloud SQL instance.".into(),
            for_provider: json!({
                "type": "object",
                "properties": {
                    "databaseVersion": text("The engine and version, e.g. POSTGRES_15, MYSQL_8_0 or SQLSERVER_2019_STANDARD."),
                    "tier": text("The machine type, e.g. db-custom-1-3840 or db-perf-optimized-N-2."),
                    "edition": {"type": "string", "enum": ["ENTERPRISE", "ENTERPRISE_PLUS"], "description": "The Cloud SQL edition; it decides which tiers there are."},
                    "region": text("The region; the ProviderConfig's when unset."),
                    "diskSizeGb": {"type": "integer", "minimum": 10, "description": "Storage in GB; it can grow, never shrink."},
                    "diskType": {"type": "string", "enum": ["PD_SSD", "PD_HDD"], "description": "The storage type."},
                    "availabilityType": {"type": "string", "enum": ["ZONAL", "REGIONAL"], "description": "REGIONAL keeps a standby in another zone."},
                    "backupConfiguration": {
                        "type": "object",
                        "description": "Automated backups.",
                        "properties": {
                            "enabled": {"type": "boolean"},
                            "startTime": {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "description": "HH:MM, UTC."},
                            "pointInTimeRecoveryEnabled": {"type": "boolean"},
                            "binaryLogEnabled": {"type": "boolean", "description": "MySQL only."},
                            "transactionLogRetentionDays": {"type": "integer", "minimum": 1, "maximum": 35}
                        }
                    },
                    "ipConfiguration": {
                        "type": "object",
                        "description": "How the instance is reached.",
                        "properties": {
                            "ipv4Enabled": {"type": "boolean", "description": "Give the instance a public IP address."},
                            "privateNetwork": text("The VPC network for a private IP, e.g. projects/p/global/networks/default."),
                            "sslMode": {"type": "string", "enum": ["ALLOW_UNENCRYPTED_AND_ENCRYPTED", "ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED"]},
                            "authorizedNetworks": {
                                "type": "array",
                                "description": "Networks allowed to reach the public IP.",
                                "items": {"type": "object", "required": ["value"], "properties": {
                                    "name": {"type": "string"},
                                    "value": {"type": "string", "description": "A CIDR range, e.g. 203.0.113.0/24."}
                                }}
                            }
                        }
                    },
                    "deletionProtectionEnabled": {"type": "boolean", "description": "Refuse deletion while true. Protection switched on in Google Cloud is lifted only when this is false."},
                    "userLabels": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Labels for the instance."},
                    "rootPasswordSecretRef": {
                        "type": "object",
                        "description": "A key of a Secret holding the root user's password. Without it a password is generated.",
                        "required": ["namespace", "name", "key"],
                        "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "key": {"type": "string"}}
                    }
                }
            }),
            at_provider: json!({
                "type": "object",
                "properties": {
                    "state": {"type": "string"},
                    "address": {"type": "string"},
                    "privateIpAddress": {"type": "string"},
                    "port": {"type": "integer"},
                    "connectionName": {"type": "string"},
                    "databaseVersion": {"type": "string"},
                    "tier": {"type": "string"},
                    "diskSizeGb": {"type": "integer"},
                    "availabilityType": {"type": "string"},
                    "gceZone": {"type": "string"},
                    "selfLink": {"type": "string"}
                }
            }),
            connection_secret_keys: CONNECTION_KEYS.map(String::from).to_vec(),
            deterministic_external_name: true,
        }
    }

    async fn validate(&self, req: &Request) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        if let Some(problem) = instance_name_problem(req.external_name_or_name()) {
            let field = if req.external_name.is_empty() {
                "metadata.name"
            } else {
                "metadata.annotations[crossplane.io/external-name]"
            };
            problems.push((field.into(), problem));
        }
        let version = req
            .field("databaseVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if version.is_empty() {
            problems.push((
                "databaseVersion".into(),
                "is required, e.g. POSTGRES_15".into(),
            ));
        } else if !["POSTGRES_", "MYSQL_", "SQLSERVER_"]
            .iter()
            .any(|p| version.starts_with(p))
        {
            problems.push((
                "databaseVersion".into(),
                format!("{version:?} is not a Cloud SQL version; they start with POSTGRES_, MYSQL_ or SQLSERVER_, e.g. POSTGRES_15"),
            ));
        }
        match req.field("tier").and_then(Value::as_str) {
            None | Some("") => {
                problems.push(("tier".into(), "is required, e.g. db-custom-1-3840".into()))
            }
            Some(tier) if !tier.starts_with("db-") => problems.push((
                "tier".into(),
                format!(
                    "{tier:?} is not a Cloud SQL tier; they start with db-, e.g. db-custom-1-3840"
                ),
            )),
            _ => {}
        }
        if let Some(Value::Object(labels)) = req.field("userLabels") {
            if labels.contains_key(UID_LABEL) {
                problems.push((
                    format!("userLabels.{UID_LABEL}"),
                    "is Plinth's own label, set on every instance it makes".into(),
                ));
            }
        }
        if let Err(e) = desired(req, "region") {
            problems.push((String::new(), e.to_string()));
        }
        problems
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let name = req.external_name_or_name();
        let progress = self
            .operations
            .progress(&clients, &req.uid, &format!("Cloud SQL instance {name}"))
            .await?;
        let Some(instance) = self.observed(&clients, name).await? else {
            if let Progress::Running(message) = progress {
                // Created, not yet visible: say so rather than create again.
                return Ok(
                    Observation::available(json!({})).with_readiness(Readiness::Creating, message)
                );
            }
            return Ok(Observation::absent());
        };
        let ours = made_by(&instance, &req.uid);
        if req.external_name.is_empty() && !ours {
            return Err(taken(name));
        }
        let want = desired(req, &clients.region)?;
        let (mut ready, mut message) = readiness(state(&instance));
        let mut diff = Vec::new();
        match progress {
            // A change is on its way: not another one on top of it.
            Progress::Running(running) => {
                if ready == Readiness::Available {
                    message = running;
                } else {
                    message = format!("{message}; {running}");
                }
            }
            Progress::Idle => rest::differences("", &want, &instance, &mut diff),
        }
        if state(&instance) == "PENDING_DELETE" {
            ready = Readiness::Deleting;
            diff.clear();
        }
        let engine = Engine::of(
            instance
                .get("databaseVersion")
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        let password = if ours { root_password(req).ok() } else { None };
        let mut observation = Observation::available(at_provider(&instance))
            .with_diff(diff.join("; "))
            .with_connection(connection(
                engine,
                address(&instance).as_deref(),
                password.as_deref(),
            ))
            .with_readiness(ready, message);
        let mut late = Map::new();
        for (field, rest_name) in LATE_INIT {
            if req.field(field).is_none() {
                if let Some(value) = instance.pointer(&format!("/settings/{rest_name}")) {
                    let value = match (field, value) {
                        ("diskSizeGb", Value::String(s)) => {
                            s.parse::<i64>().map(Value::from).unwrap_or(Value::Null)
                        }
                        (_, v) => v.clone(),
                    };
                    if !value.is_null() {
                        late.insert(field.into(), value);
                    }
                }
            }
        }
        if !late.is_empty() {
            observation = observation.with_late_init(Value::Object(late));
        }
        Ok(observation)
    }

    async fn create(&self, req: &Request) -> Result<Created, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let name = req.external_name_or_name().to_string();
        let password = root_password(req)?;
        let mut body = desired(req, &clients.region)?;
        body["name"] = json!(name);
        body["rootPassword"] = json!(password);
        let model: Model = rest::model("Cloud SQL instance", body)?;
        let what = format!("insert Cloud SQL instance {name}");
        match clients
            .sql_instances
            .insert()
            .set_project(&clients.project)
            .set_body(model)
            .send()
            .await
        {
            Ok(operation) => self
                .operations
                .track(&req.uid, Scope::Sql, "create", &operation),
            Err(e) if Answer::of(&e).is_conflict() => {
                // A retried Create finds its own instance; a name in use by
                // someone else's, or held since a deletion, is refused.
                match self.observed(&clients, &name).await? {
                    Some(instance) if made_by(&instance, &req.uid) => {}
                    Some(_) => return Err(taken(&name)),
                    None => return Err(reserved(&name, &Answer::of(&e))),
                }
            }
            Err(e) => return Err(classify(&what, &e)),
        }
        let engine = Engine::of(
            req.field("databaseVersion")
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        Ok(Created {
            external_name: name,
            connection: connection(engine, None, Some(&password)),
        })
    }

    async fn update(&self, req: &Request) -> Result<ConnectionDetails, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let name = req.external_name_or_name();
        let Some(instance) = self.observed(&clients, name).await? else {
            return Err(ProviderError::retryable(format!(
                "Cloud SQL instance {name} vanished before the update"
            )));
        };
        let want = desired(req, &clients.region)?;
        let fixed = immutable_changes(&want, &instance);
        if !fixed.is_empty() {
            return Err(ProviderError::terminal(format!(
                "{}: delete and re-create the resource for that, or put the spec back",
                fixed.join("; ")
            )));
        }
        let current = state(&instance);
        if current != "RUNNABLE" {
            return Err(ProviderError::retryable(format!(
                "Cloud SQL reports the instance as {current}; the changes are made once it is RUNNABLE"
            )));
        }
        let mut body = want.clone();
        if let Some(fields) = body.as_object_mut() {
            fields.remove("region");
        }
        let model: Model = rest::model("Cloud SQL instance", body)?;
        let operation = clients
            .sql_instances
            .patch()
            .set_project(&clients.project)
            .set_instance(name)
            .set_body(model)
            .send()
            .await
            .map_err(|e| classify(&format!("patch Cloud SQL instance {name}"), &e))?;
        self.operations
            .track(&req.uid, Scope::Sql, "update", &operation);
        let engine = Engine::of(
            instance
                .get("databaseVersion")
                .and_then(Value::as_str)
                .unwrap_or(""),
        );
        let password = made_by(&instance, &req.uid)
            .then(|| root_password(req).ok())
            .flatten();
        Ok(connection(
            engine,
            address(&instance).as_deref(),
            password.as_deref(),
        ))
    }

    async fn delete(&self, req: &Request) -> Result<(), ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let name = req.external_name_or_name();
        let Some(instance) = self.observed(&clients, name).await? else {
            self.operations.forget(&req.uid);
            return Ok(());
        };
        if state(&instance) == "PENDING_DELETE" {
            return Ok(());
        }
        let asked = req
            .field("deletionProtectionEnabled")
            .and_then(Value::as_bool);
        if asked == Some(true) {
            return Err(ProviderError::terminal(format!(
                "Cloud SQL instance {name} has deletionProtectionEnabled: set spec.forProvider.deletionProtectionEnabled to false to let Plinth delete it"
            )));
        }
        let protected = instance
            .pointer("/settings/deletionProtectionEnabled")
            .and_then(Value::as_bool)
            == Some(true);
        if protected {
            if asked != Some(false) {
                return Err(ProviderError::terminal(format!(
                    "Cloud SQL instance {name} has deletion protection switched on in Google Cloud: set spec.forProvider.deletionProtectionEnabled to false to let Plinth lift it and delete the instance"
                )));
            }
            // The spec asks for no protection: lift it, then delete once
            // that operation is done.
            let lift: Model = rest::model(
                "Cloud SQL instance",
                json!({"settings": {"deletionProtectionEnabled": false}}),
            )?;
            let operation = clients
                .sql_instances
                .patch()
                .set_project(&clients.project)
                .set_instance(name)
                .set_body(lift)
                .send()
                .await
                .map_err(|e| {
                    classify(
                        &format!("lift the deletion protection of Cloud SQL instance {name}"),
                        &e,
                    )
                })?;
            self.operations
                .track(&req.uid, Scope::Sql, "lift deletion protection", &operation);
            return Err(ProviderError::retryable(format!(
                "lifting the deletion protection of Cloud SQL instance {name}; it is deleted next"
            )));
        }
        match clients
            .sql_instances
            .delete()
            .set_project(&clients.project)
            .set_instance(name)
            .send()
            .await
        {
            Ok(operation) => {
                self.operations
                    .track(&req.uid, Scope::Sql, "delete", &operation);
                Ok(())
            }
            Err(e) if Answer::of(&e).is_not_found() => Ok(()),
            Err(e) => Err(classify(&format!("delete Cloud SQL instance {name}"), &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use provider_sdk::ProviderConfig;

    fn request(for_provider: Value) -> Request {
        Request {
            name: "orders".into(),
            uid: "0b6c-uid".into(),
            external_name: String::new(),
            for_provider,
            secrets: Default::default(),
            secret_seed: b"seed".to_vec(),
            config: Arc::new(ProviderConfig::default()),
        }
    }

    #[test]
    fn the_spec_maps_onto_the_rest_instance() {
        let req = request(json!({
            "databaseVersion": "POSTGRES_15", "tier": "db-custom-1-3840", "diskSizeGb": 20,
            "diskType": "PD_SSD", "availabilityType": "REGIONAL", "deletionProtectionEnabled": false,
            "backupConfiguration": {"enabled": true, "startTime": "03:00"},
            "ipConfiguration": {"ipv4Enabled": true, "authorizedNetworks": [{"name": "office", "value": "203.0.113.0/24"}]},
            "userLabels": {"team": "data"}
        }));
        let got = desired(&req, "europe-west1").expect("desired");
        assert_eq!(
            got["region"], "europe-west1",
            "the ProviderConfig's region when the spec names none"
        );
        assert_eq!(got["databaseVersion"], "POSTGRES_15");
        let settings = &got["settings"];
        assert_eq!(settings["tier"], "db-custom-1-3840");
        assert_eq!(
            settings["dataDiskSizeGb"], "20",
            "int64 is a string on the wire"
        );
        assert_eq!(settings["dataDiskType"], "PD_SSD");
        assert_eq!(settings["availabilityType"], "REGIONAL");
        assert_eq!(settings["backupConfiguration"]["startTime"], "03:00");
        assert_eq!(
            settings["ipConfiguration"]["authorizedNetworks"][0]["value"],
            "203.0.113.0/24"
        );
        assert_eq!(
            settings["userLabels"],
            json!({"team": "data", "plinth-uid": "0b6c-uid"})
        );
    }

    #[test]
    fn states_map_onto_readiness() {
        let cases = [
            ("PENDING_CREATE", Readiness::Creating, "PENDING_CREATE"),
            ("RUNNABLE", Readiness::Available, ""),
            ("MAINTENANCE", Readiness::Unavailable, "MAINTENANCE"),
            ("SUSPENDED", Readiness::Unavailable, "SUSPENDED"),
            ("FAILED", Readiness::Unavailable, "FAILED"),
            ("PENDING_DELETE", Readiness::Deleting, "PENDING_DELETE"),
        ];
        for (state, want, mentions) in cases {
            let (got, message) = readiness(state);
            assert_eq!(got, want, "{state}");
            assert!(message.contains(mentions), "{state}: {message}");
        }
    }

    #[test]
    fn what_cloud_sql_cannot_change_is_named() {
        let have = json!({"region": "europe-west1", "settings": {"dataDiskSizeGb": "50"}});
        let grow = json!({"region": "europe-west1", "settings": {"dataDiskSizeGb": "60"}});
        assert!(immutable_changes(&grow, &have).is_empty(), "disks grow");
        let shrink = json!({"region": "us-central1", "settings": {"dataDiskSizeGb": "20"}});
        let fixed = immutable_changes(&shrink, &have);
        assert_eq!(fixed.len(), 2, "{fixed:?}");
        assert!(
            fixed[0].starts_with("region:") && fixed[1].starts_with("diskSizeGb:"),
            "{fixed:?}"
        );
    }

    #[test]
    fn the_root_password_follows_the_seed_or_the_secret() {
        let generated = root_password(&request(json!({}))).expect("derived");
        assert_eq!(
            generated,
            root_password(&request(json!({}))).expect("again"),
            "stable across calls"
        );
        let mut own =
            request(json!({"rootPasswordSecretRef": {"namespace": "d", "name": "s", "key": "k"}}));
        own.secrets
            .insert("rootPasswordSecretRef".into(), b"mine".to_vec());
        assert_eq!(root_password(&own).expect("secret"), "mine");
    }
}
