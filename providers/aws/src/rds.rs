//! `DBInstance.rds.aws.plinth.dev`: an RDS database instance.
//!
//! Its external name is the `DBInstanceIdentifier`, the object's name unless
//! the `crossplane.io/external-name` annotation says otherwise, so a Create
//! whose result was lost is found again by Observe.
//!
//! The master password comes from `masterPasswordSecretRef` or is generated.
//! A generated password is derived from the object's UID and the secret
//! access key of the ProviderConfig rather than stored: Observe can always
//! report it and a retried Create sets the same one.

use std::sync::Arc;

use aws_sdk_rds::types::{DbInstance as Observed, Tag};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use provider_sdk::serde_json::{json, Map, Value};
use provider_sdk::{
    async_trait, ConnectionDetails, Created, ExternalResource, KindSchema, Observation,
    ProviderError, Readiness, Request,
};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::config::{Clients, Pool};
use crate::errors::{self, classify};
use crate::tags::{self, Tags};

/// The forProvider field holding a reference to the master password.
pub const PASSWORD_REF: &str = "masterPasswordSecretRef";

/// The connection keys every DBInstance's Secret carries.
pub const CONNECTION_KEYS: [&str; 6] = ["host", "port", "username", "password", "database", "uri"];

/// What a URI's user and password may hold as they are: RFC 3986's
/// unreserved characters; everything else is percent-encoded.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// RDS statuses that say the instance is being made.
const CREATING: &[&str] = &["creating"];
/// RDS statuses in which the instance serves connections as usual.
const USABLE: &[&str] = &["available", "storage-optimization"];

/// What the user asked for: spec.forProvider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Desired {
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub instance_class: Option<String>,
    pub allocated_storage: Option<i32>,
    pub master_username: Option<String>,
    pub db_name: Option<String>,
    #[serde(rename = "multiAZ")]
    pub multi_az: Option<bool>,
    pub publicly_accessible: Option<bool>,
    pub storage_type: Option<String>,
    pub backup_retention_period: Option<i32>,
    pub db_subnet_group_name: Option<String>,
    pub vpc_security_group_ids: Option<Vec<String>>,
    #[serde(skip)]
    pub tags: Tags,
    pub skip_final_snapshot: Option<bool>,
    #[serde(rename = "finalDBSnapshotIdentifier")]
    pub final_db_snapshot_identifier: Option<String>,
    pub deletion_protection: Option<bool>,
}

impl Desired {
    pub fn parse(for_provider: &Value) -> Result<Desired, ProviderError> {
        let mut desired: Desired = provider_sdk::serde_json::from_value(for_provider.clone())
            .map_err(|e| {
                ProviderError::terminal(format!("spec.forProvider does not fit DBInstance: {e}"))
            })?;
        desired.tags = tags::desired(for_provider);
        Ok(desired)
    }

    fn engine(&self) -> &str {
        self.engine.as_deref().unwrap_or("postgres")
    }

    /// The master user: the spec's, else what the engine's console suggests.
    fn username(&self) -> String {
        self.master_username.clone().unwrap_or_else(|| {
            if self.engine().contains("postgres") {
                "postgres".to_string()
            } else {
                "admin".to_string()
            }
        })
    }

    /// The database clients connect to: dbName, else the engine's own.
    fn database(&self) -> String {
        self.db_name.clone().unwrap_or_else(|| {
            match self.engine() {
                e if e.contains("postgres") => "postgres",
                e if e.contains("mysql") || e.contains("mariadb") => "mysql",
                _ => "",
            }
            .to_string()
        })
    }

    fn scheme(&self) -> &'static str {
        match self.engine() {
            e if e.contains("postgres") => "postgresql",
            e if e.contains("mysql") || e.contains("mariadb") => "mysql",
            e if e.starts_with("sqlserver") => "sqlserver",
            e if e.starts_with("oracle") => "oracle",
            _ => "db",
        }
    }
}

/// Ready's reason and message for an RDS status.
pub fn readiness(status: &str) -> (Readiness, String) {
    let message = format!("RDS reports the instance as {status}");
    if USABLE.contains(&status) {
        (Readiness::Available, String::new())
    } else if CREATING.contains(&status) {
        (Readiness::Creating, message)
    } else if status == "deleting" {
        (Readiness::Deleting, message)
    } else {
        // backing-up, modifying, upgrading, rebooting, stopped, failed, ...
        (Readiness::Unavailable, message)
    }
}

/// Whether the version RDS runs satisfies the one asked for: "15" is met by
/// "15.4", "15.4" only by "15.4".
pub fn version_matches(desired: &str, actual: &str) -> bool {
    actual == desired
        || actual
            .strip_prefix(desired)
            .is_some_and(|rest| rest.starts_with('.'))
}

fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

/// Everything that differs between the spec and the instance, ignoring
/// changes RDS has already accepted and will apply (pending modifications).
pub fn differences(desired: &Desired, db: &Observed) -> Vec<String> {
    let pending = db.pending_modified_values();
    let mut diff = Vec::new();
    if let Some(want) = &desired.instance_class {
        let have = db.db_instance_class().unwrap_or_default();
        let queued = pending.and_then(|p| p.db_instance_class()) == Some(want.as_str());
        if want != have && !queued {
            diff.push(format!("instanceClass: {have} -> {want}"));
        }
    }
    if let Some(want) = desired.allocated_storage {
        let have = db.allocated_storage().unwrap_or_default();
        let queued = pending.and_then(|p| p.allocated_storage()) == Some(want);
        if want != have && !queued {
            diff.push(format!("allocatedStorage: {have} -> {want}"));
        }
    }
    if let Some(want) = &desired.engine_version {
        let have = db.engine_version().unwrap_or_default();
        let queued = pending
            .and_then(|p| p.engine_version())
            .is_some_and(|v| version_matches(want, v));
        if !version_matches(want, have) && !queued {
            diff.push(format!("engineVersion: {have} -> {want}"));
        }
    }
    if let Some(want) = desired.multi_az {
        let have = db.multi_az().unwrap_or(false);
        let queued = pending.and_then(|p| p.multi_az()) == Some(want);
        if want != have && !queued {
            diff.push(format!("multiAZ: {have} -> {want}"));
        }
    }
    let changed = |name: &str, want: Option<String>, have: Option<String>| match (want, have) {
        (Some(want), Some(have)) if want != have => Some(format!("{name}: {have} -> {want}")),
        _ => None,
    };
    diff.extend(changed(
        "backupRetentionPeriod",
        desired.backup_retention_period.map(|v| v.to_string()),
        db.backup_retention_period()
            .or(pending.and_then(|p| p.backup_retention_period()))
            .map(|v| v.to_string()),
    ));
    diff.extend(changed(
        "publiclyAccessible",
        desired.publicly_accessible.map(|v| v.to_string()),
        db.publicly_accessible().map(|v| v.to_string()),
    ));
    diff.extend(changed(
        "deletionProtection",
        desired.deletion_protection.map(|v| v.to_string()),
        db.deletion_protection().map(|v| v.to_string()),
    ));
    diff.extend(tags::diff(&desired.tags, &observed_tags(db)));
    diff
}

fn observed_tags(db: &Observed) -> Tags {
    tags::users(db.tag_list().iter().filter_map(|t| {
        Some((
            t.key()?.to_string(),
            t.value().unwrap_or_default().to_string(),
        ))
    }))
}

/// Fields the user left unset, as RDS chose them.
fn late_init(desired: &Desired, db: &Observed) -> Map<String, Value> {
    let mut fields = Map::new();
    let mut fill = |name: &str, unset: bool, value: Option<Value>| {
        if let (true, Some(value)) = (unset, value) {
            fields.insert(name.to_string(), value);
        }
    };
    fill(
        "engine",
        desired.engine.is_none(),
        db.engine().map(|v| json!(v)),
    );
    fill(
        "engineVersion",
        desired.engine_version.is_none(),
        db.engine_version().map(|v| json!(v)),
    );
    fill(
        "instanceClass",
        desired.instance_class.is_none(),
        db.db_instance_class().map(|v| json!(v)),
    );
    fill(
        "allocatedStorage",
        desired.allocated_storage.is_none(),
        db.allocated_storage().map(|v| json!(v)),
    );
    fill(
        "masterUsername",
        desired.master_username.is_none(),
        db.master_username().map(|v| json!(v)),
    );
    fill(
        "multiAZ",
        desired.multi_az.is_none(),
        db.multi_az().map(|v| json!(v)),
    );
    fill(
        "storageType",
        desired.storage_type.is_none(),
        db.storage_type().map(|v| json!(v)),
    );
    fill(
        "backupRetentionPeriod",
        desired.backup_retention_period.is_none(),
        db.backup_retention_period().map(|v| json!(v)),
    );
    fill(
        "publiclyAccessible",
        desired.publicly_accessible.is_none(),
        db.publicly_accessible().map(|v| json!(v)),
    );
    fields
}

fn at_provider(db: &Observed) -> Value {
    let endpoint = db.endpoint();
    json!({
        "address": endpoint.and_then(|e| e.address()),
        "port": endpoint.and_then(|e| e.port()),
        "status": db.db_instance_status(),
        "arn": db.db_instance_arn(),
        "resourceId": db.dbi_resource_id(),
        "engineVersion": db.engine_version(),
        "instanceClass": db.db_instance_class(),
        "allocatedStorage": db.allocated_storage(),
        "multiAZ": db.multi_az(),
    })
}

/// A generated master password: derived, so it is never lost. Hex, which
/// every engine accepts (no `/`, `"`, `@` or spaces).
pub fn derived_password(seed: &str, uid: &str) -> String {
    let digest = Sha256::digest(format!("plinth rds master password\n{seed}\n{uid}").as_bytes());
    hex::encode(&digest[..16])
}

/// The master password this resource has, or should have.
fn password(req: &Request, clients: &Clients) -> Result<String, ProviderError> {
    if let Some(password) = req.secret(PASSWORD_REF) {
        return Ok(password.to_string());
    }
    if req.field(PASSWORD_REF).is_some() {
        return Err(ProviderError::retryable(format!(
            "spec.forProvider.{PASSWORD_REF} was not resolved by the control plane; retrying"
        )));
    }
    match &clients.password_seed {
        Some(seed) => Ok(derived_password(seed, &req.uid)),
        None => Err(ProviderError::terminal(format!(
            "spec.forProvider.{PASSWORD_REF} is required when the ProviderConfig's credentials.source is Default: short-lived credentials cannot seed a generated password"
        ))),
    }
}

fn connection(
    desired: &Desired,
    db: Option<&Observed>,
    password: Option<&str>,
) -> ConnectionDetails {
    let username = db
        .and_then(|d| d.master_username())
        .map(str::to_string)
        .unwrap_or_else(|| desired.username());
    let database = db
        .and_then(|d| d.db_name())
        .map(str::to_string)
        .unwrap_or_else(|| desired.database());
    let mut details = ConnectionDetails::new();
    details.insert("username".into(), username.clone().into_bytes());
    details.insert("database".into(), database.clone().into_bytes());
    if let Some(password) = password {
        details.insert("password".into(), password.as_bytes().to_vec());
    }
    let endpoint = db.and_then(|d| d.endpoint());
    if let (Some(host), Some(port)) = (
        endpoint.and_then(|e| e.address()),
        endpoint.and_then(|e| e.port()),
    ) {
        details.insert("host".into(), host.as_bytes().to_vec());
        details.insert("port".into(), port.to_string().into_bytes());
        let userinfo = match password {
            Some(p) => format!(
                "{}:{}",
                utf8_percent_encode(&username, USERINFO),
                utf8_percent_encode(p, USERINFO)
            ),
            None => utf8_percent_encode(&username, USERINFO).to_string(),
        };
        let uri = format!("{}://{userinfo}@{host}:{port}/{database}", desired.scheme());
        details.insert("uri".into(), uri.into_bytes());
    }
    details
}

/// Whether a DBInstanceIdentifier is one RDS accepts: 1 to 63 letters,
/// digits and hyphens, starting with a letter, without a trailing hyphen or
/// two hyphens in a row.
pub fn identifier_problem(id: &str) -> Option<String> {
    let valid = !id.is_empty()
        && id.len() <= 63
        && id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !id.ends_with('-')
        && !id.contains("--");
    (!valid).then(|| {
        format!("{id:?} is not a valid DBInstanceIdentifier: use 1 to 63 letters, digits and hyphens, starting with a letter, with no trailing hyphen and no two hyphens in a row")
    })
}

/// The RDS `DBInstance` kind.
pub struct DbInstance {
    clients: Arc<Pool>,
}

impl DbInstance {
    pub fn new(clients: Arc<Pool>) -> DbInstance {
        DbInstance { clients }
    }

    async fn describe(
        &self,
        clients: &Clients,
        id: &str,
    ) -> Result<Option<Observed>, ProviderError> {
        match clients
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(out) => Ok(out.db_instances().first().cloned()),
            Err(e) if errors::code(&e) == Some("DBInstanceNotFound") => Ok(None),
            Err(e) => Err(classify("DescribeDBInstances", &e)),
        }
    }
}

fn rds_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

#[async_trait]
impl ExternalResource for DbInstance {
    fn schema(&self) -> KindSchema {
        let text = |d: &str| json!({"type": "string", "description": d});
        KindSchema {
            group: "rds.aws.plinth.dev".into(),
            version: "v1alpha1".into(),
            kind: "DBInstance".into(),
            plural: "dbinstances".into(),
            description: "An Amazon RDS database instance.".into(),
            for_provider: json!({
                "type": "object",
                "properties": {
                    "engine": text("The database engine, e.g. postgres or mysql."),
                    "engineVersion": text("The engine version, e.g. 15 or 15.4; a major version is met by any of its minor versions."),
                    "instanceClass": text("The compute and memory class, e.g. db.t3.micro."),
                    "allocatedStorage": {"type": "integer", "minimum": 1, "description": "Storage in GiB."},
                    "masterUsername": text("The master user; postgres for PostgreSQL and admin otherwise when unset."),
                    "masterPasswordSecretRef": {
                        "type": "object",
                        "description": "A key of a Secret holding the master password. Without it a password is generated.",
                        "required": ["namespace", "name", "key"],
                        "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "key": {"type": "string"}}
                    },
                    "dbName": text("A database to create in the instance."),
                    "multiAZ": {"type": "boolean", "description": "Run a standby in another availability zone."},
                    "publiclyAccessible": {"type": "boolean", "description": "Give the instance a public address."},
                    "storageType": {"type": "string", "enum": ["standard", "gp2", "gp3", "io1", "io2"], "description": "The storage type."},
                    "backupRetentionPeriod": {"type": "integer", "minimum": 0, "maximum": 35, "description": "Days to keep automated backups; 0 turns them off."},
                    "dbSubnetGroupName": text("The DB subnet group to place the instance in."),
                    "vpcSecurityGroupIds": {"type": "array", "items": {"type": "string"}, "description": "VPC security groups for the instance."},
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}, "description": "Tags for the instance."},
                    "skipFinalSnapshot": {"type": "boolean", "default": true, "description": "Delete without a final snapshot."},
                    "finalDBSnapshotIdentifier": text("The final snapshot's name when skipFinalSnapshot is false; <identifier>-final when unset."),
                    "deletionProtection": {"type": "boolean", "description": "Refuse deletion while true."}
                }
            }),
            at_provider: json!({
                "type": "object",
                "properties": {
                    "address": {"type": "string"},
                    "port": {"type": "integer"},
                    "status": {"type": "string"},
                    "arn": {"type": "string"},
                    "resourceId": {"type": "string"},
                    "engineVersion": {"type": "string"},
                    "instanceClass": {"type": "string"},
                    "allocatedStorage": {"type": "integer"},
                    "multiAZ": {"type": "boolean"}
                }
            }),
            connection_secret_keys: CONNECTION_KEYS.map(String::from).to_vec(),
            deterministic_external_name: true,
        }
    }

    async fn validate(&self, req: &Request) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let desired = match Desired::parse(&req.for_provider) {
            Ok(d) => d,
            Err(e) => return vec![(String::new(), e.to_string())],
        };
        if let Some(problem) = identifier_problem(req.external_name_or_name()) {
            let field = if req.external_name.is_empty() {
                "metadata.name"
            } else {
                "metadata.annotations[crossplane.io/external-name]"
            };
            problems.push((field.into(), problem));
        }
        if desired.engine.as_deref().is_none_or(str::is_empty) {
            problems.push(("engine".into(), "is required, e.g. postgres".into()));
        }
        match desired.instance_class.as_deref() {
            None | Some("") => problems.push((
                "instanceClass".into(),
                "is required, e.g. db.t3.micro".into(),
            )),
            Some(class) if !class.starts_with("db.") => problems.push((
                "instanceClass".into(),
                format!(
                    "{class:?} is not an RDS instance class; they start with db., e.g. db.t3.micro"
                ),
            )),
            _ => {}
        }
        if let Some(user) = &desired.master_username {
            let valid = user.len() <= 63
                && user.starts_with(|c: char| c.is_ascii_alphabetic())
                && user.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                problems.push((
                    "masterUsername".into(),
                    format!("{user:?} must be 1 to 63 letters, digits or underscores, starting with a letter"),
                ));
            }
        }
        problems
    }

    async fn observe(&self, req: &Request) -> Result<Observation, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let desired = Desired::parse(&req.for_provider)?;
        let Some(db) = self.describe(&clients, req.external_name_or_name()).await? else {
            return Ok(Observation::absent());
        };
        let status = db.db_instance_status().unwrap_or("unknown");
        let (ready, message) = readiness(status);
        let password = password(req, &clients).ok();
        let mut observation = Observation::available(at_provider(&db))
            .with_diff(differences(&desired, &db).join("; "))
            .with_connection(connection(&desired, Some(&db), password.as_deref()))
            .with_readiness(ready, message);
        let fields = late_init(&desired, &db);
        if !fields.is_empty() {
            observation = observation.with_late_init(Value::Object(fields));
        }
        Ok(observation)
    }

    async fn create(&self, req: &Request) -> Result<Created, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let desired = Desired::parse(&req.for_provider)?;
        let id = req.external_name_or_name().to_string();
        let password = password(req, &clients)?;
        let result = clients
            .rds
            .create_db_instance()
            .db_instance_identifier(&id)
            .engine(desired.engine())
            .set_engine_version(desired.engine_version.clone())
            .set_db_instance_class(desired.instance_class.clone())
            .set_allocated_storage(desired.allocated_storage)
            .master_username(desired.username())
            .master_user_password(&password)
            .set_db_name(desired.db_name.clone())
            .set_multi_az(desired.multi_az)
            .set_publicly_accessible(desired.publicly_accessible)
            .set_storage_type(desired.storage_type.clone())
            .set_backup_retention_period(desired.backup_retention_period)
            .set_db_subnet_group_name(desired.db_subnet_group_name.clone())
            .set_vpc_security_group_ids(desired.vpc_security_group_ids.clone())
            .set_deletion_protection(desired.deletion_protection)
            .set_tags(Some(rds_tags(&desired.tags)).filter(|t| !t.is_empty()))
            .send()
            .await;
        match result {
            Ok(_) => {}
            // A retried Create: the first one's instance is this one.
            Err(e) if errors::code(&e) == Some("DBInstanceAlreadyExists") => {}
            Err(e) => return Err(classify("CreateDBInstance", &e)),
        }
        Ok(Created {
            external_name: id,
            connection: connection(&desired, None, Some(&password)),
        })
    }

    async fn update(&self, req: &Request) -> Result<ConnectionDetails, ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let desired = Desired::parse(&req.for_provider)?;
        let id = req.external_name_or_name();
        let Some(db) = self.describe(&clients, id).await? else {
            return Err(ProviderError::retryable(format!(
                "DB instance {id} vanished before the update"
            )));
        };
        let status = db.db_instance_status().unwrap_or("unknown");
        if !USABLE.contains(&status) {
            // RDS refuses modifications while it is busy (creating,
            // modifying, backing up); the control plane looks again soon.
            tracing::info!(instance = %id, status, "RDS is busy; the change waits until it is available");
            let password = password(req, &clients).ok();
            return Ok(connection(&desired, Some(&db), password.as_deref()));
        }
        let differs =
            |want: Option<String>, have: Option<String>| want.filter(|w| have.as_ref() != Some(w));
        let class = differs(
            desired.instance_class.clone(),
            db.db_instance_class().map(str::to_string),
        );
        let storage = desired
            .allocated_storage
            .filter(|want| db.allocated_storage() != Some(*want));
        let version = desired
            .engine_version
            .clone()
            .filter(|want| !version_matches(want, db.engine_version().unwrap_or_default()));
        let major_upgrade = version
            .as_deref()
            .is_some_and(|want| major(want) != major(db.engine_version().unwrap_or_default()));
        let multi_az = desired.multi_az.filter(|want| db.multi_az() != Some(*want));
        let retention = desired
            .backup_retention_period
            .filter(|want| db.backup_retention_period() != Some(*want));
        let public = desired
            .publicly_accessible
            .filter(|want| db.publicly_accessible() != Some(*want));
        let protection = desired
            .deletion_protection
            .filter(|want| db.deletion_protection() != Some(*want));
        let anything = class.is_some()
            || storage.is_some()
            || version.is_some()
            || multi_az.is_some()
            || retention.is_some()
            || public.is_some()
            || protection.is_some();
        if anything {
            clients
                .rds
                .modify_db_instance()
                .db_instance_identifier(id)
                .apply_immediately(true)
                .set_db_instance_class(class)
                .set_allocated_storage(storage)
                .set_engine_version(version)
                .set_allow_major_version_upgrade(major_upgrade.then_some(true))
                .set_multi_az(multi_az)
                .set_backup_retention_period(retention)
                .set_publicly_accessible(public)
                .set_deletion_protection(protection)
                .send()
                .await
                .map_err(|e| classify("ModifyDBInstance", &e))?;
        }
        let (set, remove) = tags::changes(&desired.tags, &observed_tags(&db));
        if let Some(arn) = db.db_instance_arn() {
            if !set.is_empty() {
                clients
                    .rds
                    .add_tags_to_resource()
                    .resource_name(arn)
                    .set_tags(Some(rds_tags(&set)))
                    .send()
                    .await
                    .map_err(|e| classify("AddTagsToResource", &e))?;
            }
            if !remove.is_empty() {
                clients
                    .rds
                    .remove_tags_from_resource()
                    .resource_name(arn)
                    .set_tag_keys(Some(remove))
                    .send()
                    .await
                    .map_err(|e| classify("RemoveTagsFromResource", &e))?;
            }
        }
        let password = password(req, &clients).ok();
        Ok(connection(&desired, Some(&db), password.as_deref()))
    }

    async fn delete(&self, req: &Request) -> Result<(), ProviderError> {
        let clients = self.clients.clients(&req.config).await?;
        let desired = Desired::parse(&req.for_provider)?;
        let id = req.external_name_or_name();
        let Some(db) = self.describe(&clients, id).await? else {
            return Ok(());
        };
        if db.db_instance_status() == Some("deleting") {
            return Ok(());
        }
        if desired.deletion_protection == Some(true) {
            return Err(ProviderError::terminal(format!(
                "DB instance {id} has deletionProtection: set spec.forProvider.deletionProtection to false to let Plinth delete it"
            )));
        }
        if db.deletion_protection() == Some(true) {
            // The spec no longer asks for protection; lift it, then delete.
            clients
                .rds
                .modify_db_instance()
                .db_instance_identifier(id)
                .deletion_protection(false)
                .apply_immediately(true)
                .send()
                .await
                .map_err(|e| classify("ModifyDBInstance", &e))?;
        }
        let skip = desired.skip_final_snapshot.unwrap_or(true);
        let snapshot = (!skip).then(|| {
            desired
                .final_db_snapshot_identifier
                .clone()
                .unwrap_or_else(|| format!("{id}-final"))
        });
        match clients
            .rds
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(skip)
            .set_final_db_snapshot_identifier(snapshot)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if errors::code(&e) == Some("DBInstanceNotFound") => Ok(()),
            Err(e)
                if errors::code(&e) == Some("InvalidDBInstanceState")
                    && e.to_string().contains("already being deleted") =>
            {
                Ok(())
            }
            Err(e) => Err(classify("DeleteDBInstance", &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::types::{Endpoint, PendingModifiedValues};

    #[test]
    fn statuses_map_to_readiness() {
        let cases = [
            ("available", Readiness::Available),
            ("storage-optimization", Readiness::Available),
            ("creating", Readiness::Creating),
            ("backing-up", Readiness::Unavailable),
            ("modifying", Readiness::Unavailable),
            ("upgrading", Readiness::Unavailable),
            ("rebooting", Readiness::Unavailable),
            ("stopped", Readiness::Unavailable),
            ("failed", Readiness::Unavailable),
            ("storage-full", Readiness::Unavailable),
            ("deleting", Readiness::Deleting),
        ];
        for (status, want) in cases {
            let (got, message) = readiness(status);
            assert_eq!(got, want, "{status}");
            if want != Readiness::Available {
                assert!(message.contains(status), "{message} names {status}");
            }
        }
    }

    #[test]
    fn versions_match_by_prefix() {
        assert!(version_matches("15", "15.4"));
        assert!(version_matches("15.4", "15.4"));
        assert!(!version_matches("15.4", "15.5"));
        assert!(!version_matches("1", "15.4"));
        assert!(!version_matches("16", "15.4"));
    }

    fn observed(class: &str, storage: i32, pending: Option<PendingModifiedValues>) -> Observed {
        Observed::builder()
            .db_instance_identifier("orders")
            .db_instance_status("available")
            .engine("postgres")
            .engine_version("15.4")
            .db_instance_class(class)
            .allocated_storage(storage)
            .multi_az(false)
            .master_username("postgres")
            .endpoint(
                Endpoint::builder()
                    .address("orders.abc.rds.amazonaws.com")
                    .port(5432)
                    .build(),
            )
            .tag_list(Tag::builder().key("team").value("orders").build())
            .set_pending_modified_values(pending)
            .build()
    }

    fn desired(spec: Value) -> Desired {
        Desired::parse(&spec).expect("valid spec")
    }

    #[test]
    fn differences_compare_class_storage_version_multi_az_and_tags() {
        let db = observed("db.t3.micro", 20, None);
        let same = desired(
            json!({"engine": "postgres", "engineVersion": "15", "instanceClass": "db.t3.micro", "allocatedStorage": 20, "multiAZ": false, "tags": {"team": "orders"}}),
        );
        assert_eq!(differences(&same, &db), Vec::<String>::new());
        let changed = desired(
            json!({"engineVersion": "16", "instanceClass": "db.m5.large", "allocatedStorage": 50, "multiAZ": true, "tags": {"team": "payments"}}),
        );
        let diff = differences(&changed, &db).join("; ");
        for field in [
            "instanceClass",
            "allocatedStorage",
            "engineVersion",
            "multiAZ",
            "tags",
        ] {
            assert!(diff.contains(field), "{diff} names {field}");
        }
        // A change RDS has accepted and not applied yet is not drift.
        let pending = PendingModifiedValues::builder()
            .db_instance_class("db.m5.large")
            .allocated_storage(50)
            .build();
        let queued = desired(
            json!({"instanceClass": "db.m5.large", "allocatedStorage": 50, "tags": {"team": "orders"}}),
        );
        assert_eq!(
            differences(&queued, &observed("db.t3.micro", 20, Some(pending))),
            Vec::<String>::new()
        );
    }

    #[test]
    fn connection_details_name_the_endpoint() {
        let db = observed("db.t3.micro", 20, None);
        let spec = desired(json!({"engine": "postgres"}));
        let details = connection(&spec, Some(&db), Some("p@ss"));
        for key in CONNECTION_KEYS {
            assert!(details.contains_key(key), "{key}");
        }
        assert_eq!(
            String::from_utf8_lossy(&details["uri"]),
            "postgresql://postgres:p%40ss@orders.abc.rds.amazonaws.com:5432/postgres"
        );
        // Before RDS assigns an endpoint there is no host to give.
        let early = connection(&spec, None, Some("x"));
        assert!(!early.contains_key("host"));
        assert_eq!(String::from_utf8_lossy(&early["username"]), "postgres");
    }

    #[test]
    fn late_init_fills_only_unset_fields() {
        let db = observed("db.t3.micro", 20, None);
        let fields = late_init(
            &desired(json!({"engine": "postgres", "engineVersion": "15"})),
            &db,
        );
        assert!(!fields.contains_key("engineVersion"));
        assert_eq!(fields.get("instanceClass"), Some(&json!("db.t3.micro")));
        assert_eq!(fields.get("masterUsername"), Some(&json!("postgres")));
    }

    #[test]
    fn identifiers_follow_rds_rules() {
        assert_eq!(identifier_problem("orders-db-1"), None);
        for bad in [
            "",
            "1orders",
            "orders-",
            "or--ders",
            "orders.db",
            &"a".repeat(64),
        ] {
            assert!(identifier_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_are_derived_and_stable() {
        let a = derived_password("seed", "uid-1");
        assert_eq!(a, derived_password("seed", "uid-1"));
        assert_ne!(a, derived_password("seed", "uid-2"));
        assert_ne!(a, derived_password("other", "uid-1"));
        assert_eq!(a.len(), 32);
    }
}
