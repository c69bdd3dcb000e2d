//! `DBInstance.rds.aws.plinth.dev`: an RDS database instance.
//!
//! Its external name is the `DBInstanceIdentifier`, the object's name unless
//! the `crossplane.io/external-name` annotation says otherwise, so a Create
//! whose result was lost is found again by Observe. Instances it makes are
//! tagged with the resource's UID: a name that some other instance already
//! has is refused rather than taken over.
//!
//! Layout:
//! - `spec`: what forProvider asks for, RDS statuses, what differs.
//! - `secret`: the master password and the connection details.

mod secret;
mod spec;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_rds::types::{DbInstance as Observed, Tag};
use provider_sdk::serde_json::{json, Value};
use provider_sdk::{
    async_trait, ConnectionDetails, Created, ExternalResource, KindSchema, Observation,
    ProviderError, Request,
};

pub use secret::{fingerprint, made_by, MasterPassword, PASSWORD_REF};
pub use spec::{differences, identifier_problem, readiness, version_matches, Desired};

use crate::config::{Clients, Pool};
use crate::errors::{self, classify};
use crate::tags::{self, Tags};
use secret::{connection, recorded};
use spec::{
    at_provider, immutable_changes, late_init, major, observed_tags, security_groups, USABLE,
};

/// The connection keys every DBInstance's Secret carries, whatever its
/// engine. PostgreSQL engines add `connectionString` (libpq's
/// keyword form, for Dapr), which is not declared since MySQL has none.
pub const CONNECTION_KEYS: [&str; 6] = ["host", "port", "username", "password", "database", "uri"];

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

    async fn set_tags(
        &self,
        clients: &Clients,
        arn: &str,
        set: &Tags,
        remove: Vec<String>,
    ) -> Result<(), ProviderError> {
        if !set.is_empty() {
            clients
                .rds
                .add_tags_to_resource()
                .resource_name(arn)
                .set_tags(Some(rds_tags(set)))
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
        Ok(())
    }
}

/// The error for an identifier some other instance already has.
fn taken(id: &str) -> ProviderError {
    ProviderError::terminal(format!(
        "an RDS instance named {id} already exists and was not made by this resource: give the resource another name, or set its crossplane.io/external-name annotation to {id} to manage that instance (with managementPolicies [Observe] to only watch it)"
    ))
}

fn rds_tags(tags: &Tags) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The password the instance should be given, when it does not have it:
/// one Plinth can vouch for whose fingerprint differs from the recorded one
/// (or none is recorded).
fn password_to_set(req: &Request, db: &Observed, password: &MasterPassword) -> Option<String> {
    let known = password.known_for(made_by(db, &req.uid))?;
    let wanted = fingerprint(req, known)?;
    (recorded(db, tags::PASSWORD_FINGERPRINT) != Some(wanted.as_str())).then(|| known.to_string())
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
                    "finalDBSnapshotIdentifier": text("The final snapshot's name when skipFinalSnapshot is false; <identifier>-final-<unix time> when unset."),
                    "deletionProtection": {"type": "boolean", "description": "Refuse deletion while true. Protection switched on in AWS is lifted only when this is false."}
                }
            }),
            at_provider: json!({
                "type": "object",
                "properties": {
                    "address": {"type": "string"},
                    "port": {"type": "integer"},
                    "endpoint": {"type": "string", "description": "address:port"},
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
        if req.external_name.is_empty() && !made_by(&db, &req.uid) {
            // Found by the object's name alone, yet not made for it: someone
            // else's instance. Managing it takes an explicit external name.
            return Err(taken(req.external_name_or_name()));
        }
        let status = db.db_instance_status().unwrap_or("unknown");
        let (ready, message) = readiness(status);
        let password = MasterPassword::of(req).ok();
        let known = password
            .as_ref()
            .and_then(|p| p.known_for(made_by(&db, &req.uid)));
        let mut diff = differences(&desired, &db);
        if password
            .as_ref()
            .is_some_and(|p| password_to_set(req, &db, p).is_some())
        {
            diff.push("masterPassword: changed".into());
        }
        let mut observation = Observation::available(at_provider(&db))
            .with_diff(diff.join("; "))
            .with_connection(connection(&desired, Some(&db), known))
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
        let password = MasterPassword::of(req)?;
        let mut all_tags = desired.tags.clone();
        all_tags.insert(tags::UID.to_string(), req.uid.clone());
        all_tags.insert(tags::NAME.to_string(), req.name.clone());
        if let Some(print) = fingerprint(req, password.text()) {
            all_tags.insert(tags::PASSWORD_FINGERPRINT.to_string(), print);
        }
        let result = clients
            .rds
            .create_db_instance()
            .db_instance_identifier(&id)
            .engine(desired.engine())
            .set_engine_version(desired.engine_version.clone())
            .set_db_instance_class(desired.instance_class.clone())
            .set_allocated_storage(desired.allocated_storage)
            .master_username(desired.username())
            .master_user_password(password.text())
            .set_db_name(desired.db_name.clone())
            .set_multi_az(desired.multi_az)
            .set_publicly_accessible(desired.publicly_accessible)
            .set_storage_type(desired.storage_type.clone())
            .set_backup_retention_period(desired.backup_retention_period)
            .set_db_subnet_group_name(desired.db_subnet_group_name.clone())
            .set_vpc_security_group_ids(desired.vpc_security_group_ids.clone())
            .set_deletion_protection(desired.deletion_protection)
            .set_tags(Some(rds_tags(&all_tags)))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e) if errors::code(&e) == Some("DBInstanceAlreadyExists") => {
                // A retried Create finds its own instance; someone else's is
                // never taken over.
                let existing = self.describe(&clients, &id).await?;
                if !existing.as_ref().is_some_and(|db| made_by(db, &req.uid)) {
                    return Err(taken(&id));
                }
            }
            Err(e) => return Err(classify("CreateDBInstance", &e)),
        }
        Ok(Created {
            external_name: id,
            connection: connection(&desired, None, Some(password.text())),
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
        let password = MasterPassword::of(req)?;
        let ours = made_by(&db, &req.uid);
        // Tags change in any state.
        let (set, remove) = tags::changes(&desired.tags, &observed_tags(&db));
        let arn = db.db_instance_arn().unwrap_or_default().to_string();
        self.set_tags(&clients, &arn, &set, remove).await?;

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
        let storage_type = differs(
            desired.storage_type.clone(),
            db.storage_type().map(str::to_string),
        );
        let subnet_group = differs(
            desired.db_subnet_group_name.clone(),
            db.db_subnet_group()
                .and_then(|g| g.db_subnet_group_name())
                .map(str::to_string),
        );
        let groups = desired.vpc_security_group_ids.clone().filter(|want| {
            let mut want = want.clone();
            want.sort();
            want != security_groups(&db)
        });
        let new_password = password_to_set(req, &db, &password);
        let modifications: Vec<&str> = [
            ("instanceClass", class.is_some()),
            ("allocatedStorage", storage.is_some()),
            ("engineVersion", version.is_some()),
            ("multiAZ", multi_az.is_some()),
            ("backupRetentionPeriod", retention.is_some()),
            ("publiclyAccessible", public.is_some()),
            ("deletionProtection", protection.is_some()),
            ("storageType", storage_type.is_some()),
            ("dbSubnetGroupName", subnet_group.is_some()),
            ("vpcSecurityGroupIds", groups.is_some()),
            ("masterPassword", new_password.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect();
        if !modifications.is_empty() {
            let status = db.db_instance_status().unwrap_or("unknown");
            if !USABLE.contains(&status) {
                // RDS refuses modifications while busy or stopped.
                return Err(ProviderError::retryable(format!(
                    "RDS reports the instance as {status}; {} will change once it is available",
                    modifications.join(", ")
                )));
            }
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
                .set_storage_type(storage_type)
                .set_db_subnet_group_name(subnet_group)
                .set_vpc_security_group_ids(groups)
                .set_master_user_password(new_password.clone())
                .send()
                .await
                .map_err(|e| classify("ModifyDBInstance", &e))?;
            if let Some(print) = new_password.as_deref().and_then(|p| fingerprint(req, p)) {
                let recorded = [(tags::PASSWORD_FINGERPRINT.to_string(), print)].into();
                self.set_tags(&clients, &arn, &recorded, Vec::new()).await?;
            }
        }
        let fixed = immutable_changes(&desired, &db);
        if !fixed.is_empty() {
            return Err(ProviderError::terminal(format!(
                "{}: delete and re-create the resource for that, or put the spec back",
                fixed.join("; ")
            )));
        }
        let known = password.known_for(ours || new_password.is_some());
        Ok(connection(&desired, Some(&db), known))
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
            if desired.deletion_protection != Some(false) {
                return Err(ProviderError::terminal(format!(
                    "DB instance {id} has deletion protection switched on in AWS: set spec.forProvider.deletionProtection to false to let Plinth lift it and delete the instance"
                )));
            }
            // The spec asks for no protection: lift it, then delete.
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
                .unwrap_or_else(|| {
                    // Unique per attempt, so a re-created resource of the same
                    // name is not stopped by its predecessor's snapshot.
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    format!("{id}-final-{now}")
                })
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
