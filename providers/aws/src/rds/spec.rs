//! What a `DBInstance`'s spec asks for, how RDS reports an instance, and
//! what differs between the two.

use aws_sdk_rds::types::DbInstance as Observed;
use provider_sdk::serde_json::{json, Map, Value};
use provider_sdk::{ProviderError, Readiness};
use serde::Deserialize;

use crate::tags::{self, Tags};

/// RDS statuses that say the instance is being made.
const CREATING: &[&str] = &["creating"];
/// RDS statuses in which the instance serves connections and takes
/// modifications as usual.
pub const USABLE: &[&str] = &["available", "storage-optimization"];

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

    pub fn engine(&self) -> &str {
        self.engine.as_deref().unwrap_or("postgres")
    }

    /// The master user: the spec's, else what the engine's console suggests.
    pub fn username(&self) -> String {
        self.master_username.clone().unwrap_or_else(|| {
            if self.engine().contains("postgres") {
                "postgres".to_string()
            } else {
                "admin".to_string()
            }
        })
    }

    /// The database clients connect to: dbName, else the engine's own.
    pub fn database(&self) -> String {
        self.db_name.clone().unwrap_or_else(|| {
            match self.engine() {
                e if e.contains("postgres") => "postgres",
                e if e.contains("mysql") || e.contains("mariadb") => "mysql",
                _ => "",
            }
            .to_string()
        })
    }

    pub fn scheme(&self) -> &'static str {
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

pub fn major(version: &str) -> &str {
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
    diff.extend(changed(
        "storageType",
        desired.storage_type.clone(),
        pending
            .and_then(|p| p.storage_type())
            .or(db.storage_type())
            .map(str::to_string),
    ));
    diff.extend(changed(
        "dbSubnetGroupName",
        desired.db_subnet_group_name.clone(),
        pending
            .and_then(|p| p.db_subnet_group_name())
            .or(db.db_subnet_group().and_then(|g| g.db_subnet_group_name()))
            .map(str::to_string),
    ));
    if let Some(want) = &desired.vpc_security_group_ids {
        let mut want = want.clone();
        want.sort();
        let have = security_groups(db);
        if want != have {
            diff.push(format!("vpcSecurityGroupIds: {have:?} -> {want:?}"));
        }
    }
    diff.extend(tags::diff(&desired.tags, &observed_tags(db)));
    diff.extend(immutable_changes(desired, db));
    diff
}

/// The instance's VPC security groups, sorted.
pub fn security_groups(db: &Observed) -> Vec<String> {
    let mut groups: Vec<String> = db
        .vpc_security_groups()
        .iter()
        .filter_map(|g| g.vpc_security_group_id().map(str::to_string))
        .collect();
    groups.sort();
    groups
}

/// Differences RDS cannot apply to an existing instance: a new resource is
/// the only way, and Update says so instead of pretending.
pub fn immutable_changes(desired: &Desired, db: &Observed) -> Vec<String> {
    let mut changes = Vec::new();
    let mut check = |name: &str, want: Option<&str>, have: Option<&str>| {
        if let (Some(want), Some(have)) = (want, have) {
            if want != have {
                changes.push(format!(
                    "{name}: {have} -> {want} (cannot change on an existing DB instance)"
                ));
            }
        }
    };
    check("engine", desired.engine.as_deref(), db.engine());
    check(
        "masterUsername",
        desired.master_username.as_deref(),
        db.master_username(),
    );
    check("dbName", desired.db_name.as_deref(), db.db_name());
    changes
}

pub fn observed_tags(db: &Observed) -> Tags {
    tags::users(db.tag_list().iter().filter_map(|t| {
        Some((
            t.key()?.to_string(),
            t.value().unwrap_or_default().to_string(),
        ))
    }))
}

/// Fields the user left unset, as RDS chose them.
pub fn late_init(desired: &Desired, db: &Observed) -> Map<String, Value> {
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

pub fn at_provider(db: &Observed) -> Value {
    let endpoint = db.endpoint();
    json!({
        "address": endpoint.and_then(|e| e.address()),
        "port": endpoint.and_then(|e| e.port()),
        // `address:port`, as Crossplane's AWS providers report it.
        "endpoint": endpoint.and_then(|e| Some(format!("{}:{}", e.address()?, e.port()?))),
        "status": db.db_instance_status(),
        "arn": db.db_instance_arn(),
        "resourceId": db.dbi_resource_id(),
        "engineVersion": db.engine_version(),
        "instanceClass": db.db_instance_class(),
        "allocatedStorage": db.allocated_storage(),
        "multiAZ": db.multi_az(),
    })
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_sdk_rds::types::{Endpoint, PendingModifiedValues, Tag};

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

    /// A PostgreSQL instance as RDS reports one.
    pub(crate) fn observed(
        class: &str,
        storage: i32,
        pending: Option<PendingModifiedValues>,
    ) -> Observed {
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

    pub(crate) fn desired(spec: Value) -> Desired {
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
    fn immutable_fields_are_reported_as_such() {
        let db = observed("db.t3.micro", 20, None);
        let changed = desired(json!({"engine": "mysql", "masterUsername": "admin"}));
        let fixed = immutable_changes(&changed, &db);
        assert_eq!(fixed.len(), 2, "{fixed:?}");
        assert!(
            fixed.iter().all(|c| c.contains("cannot change")),
            "{fixed:?}"
        );
        assert!(differences(&changed, &db)
            .iter()
            .any(|d| d.starts_with("engine:")));
        let groups = desired(json!({"vpcSecurityGroupIds": ["sg-2"], "storageType": "io1"}));
        let diff = differences(&groups, &db).join("; ");
        assert!(diff.contains("vpcSecurityGroupIds"), "{diff}");
    }
}
