//! `PostgreSQLFlexibleServer.dbforpostgresql.azure.plinth.dev`: an Azure
//! Database for PostgreSQL flexible server (`Microsoft.DBforPostgreSQL/
//! flexibleServers`, api-version 2022-12-01, GA). The built-in
//! PostgreSQLInstance claim asks for PostgreSQL; Azure SQL is SQL Server.

use provider_sdk::{ConnectionDetails, KindSchema, ProviderError, Readiness, Request};
use serde_json::{json, Map, Value};

use crate::resource::{
    admin_connection, admin_login, password, state_readiness, tags, ArmKind, Place,
};

pub const GROUP: &str = "dbforpostgresql.azure.plinth.dev";
pub const API_VERSION: &str = "2022-12-01";

pub const CONNECTION_KEYS: [&str; 6] = ["host", "port", "username", "password", "database", "uri"];

/// The storage sizes a flexible server takes, in GiB.
pub const STORAGE_SIZES: [i64; 11] = [32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768];

pub struct FlexibleServer;

#[provider_sdk::async_trait]
impl ArmKind for FlexibleServer {
    fn schema(&self) -> KindSchema {
        KindSchema {
            group: GROUP.into(),
            version: "v1alpha1".into(),
            kind: "PostgreSQLFlexibleServer".into(),
            plural: "postgresqlflexibleservers".into(),
            description: "An Azure Database for PostgreSQL flexible server.".into(),
            for_provider: json!({
                "type": "object",
                "properties": {
                    "resourceGroupName": {"type": "string", "description": "The resource group; the ProviderConfig's resourceGroupName when unset."},
                    "location": {"type": "string", "description": "The Azure region; the ProviderConfig's location when unset."},
                    "version": {"type": "string", "description": "The PostgreSQL major version, e.g. 15."},
                    "sku": {"type": "object", "description": "The compute: {name: Standard_B1ms, tier: Burstable}, {name: Standard_D2ds_v5, tier: GeneralPurpose}, ...",
                            "properties": {"name": {"type": "string"}, "tier": {"type": "string", "enum": ["Burstable", "GeneralPurpose", "MemoryOptimized"]}}},
                    "storageSizeGb": {"type": "integer", "enum": STORAGE_SIZES, "description": "Storage in GiB; it can grow, never shrink."},
                    "highAvailability": {"type": "string", "enum": ["Disabled", "ZoneRedundant", "SameZone"], "description": "A standby; not on the Burstable tier."},
                    "backupRetentionDays": {"type": "integer", "minimum": 7, "maximum": 35},
                    "geoRedundantBackup": {"type": "string", "enum": ["Enabled", "Disabled"]},
                    "publicNetworkAccess": {"type": "string", "enum": ["Enabled", "Disabled"]},
                    "administratorLogin": {"type": "string", "description": "The administrator's login; plinthadmin when unset."},
                    "administratorLoginPasswordSecretRef": {
                        "type": "object",
                        "description": "A key of a Secret holding the administrator's password. Without it a password is generated.",
                        "required": ["namespace", "name", "key"],
                        "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "key": {"type": "string"}}
                    },
                    "tags": {"type": "object", "additionalProperties": {"type": "string"}}
                }
            }),
            at_provider: json!({"type": "object", "properties": {
                "fullyQualifiedDomainName": {"type": "string"}, "state": {"type": "string"},
                "version": {"type": "string"}, "storageSizeGb": {"type": "integer"}, "id": {"type": "string"}
            }}),
            connection_secret_keys: CONNECTION_KEYS.map(String::from).to_vec(),
            deterministic_external_name: true,
        }
    }

    fn api_version(&self) -> &'static str {
        API_VERSION
    }

    fn id(&self, req: &Request, place: &Place) -> Result<String, ProviderError> {
        Ok(place.id(&format!(
            "Microsoft.DBforPostgreSQL/flexibleServers/{}",
            req.external_name_or_name()
        )))
    }

    fn body(&self, req: &Request, place: &Place) -> Result<Value, ProviderError> {
        let mut properties = Map::new();
        properties.insert("administratorLogin".into(), json!(admin_login(req)));
        properties.insert(
            "administratorLoginPassword".into(),
            json!(password(
                req,
                "administratorLoginPasswordSecretRef",
                "administrator-password"
            )?),
        );
        if let Some(version) = req.field("version") {
            properties.insert("version".into(), version.clone());
        }
        if let Some(size) = req.field("storageSizeGb") {
            properties.insert("storage".into(), json!({"storageSizeGB": size}));
        }
        if let Some(mode) = req.field("highAvailability") {
            properties.insert("highAvailability".into(), json!({"mode": mode}));
        }
        let mut backup = Map::new();
        for (field, rest) in [
            ("backupRetentionDays", "backupRetentionDays"),
            ("geoRedundantBackup", "geoRedundantBackup"),
        ] {
            if let Some(v) = req.field(field) {
                backup.insert(rest.into(), v.clone());
            }
        }
        if !backup.is_empty() {
            properties.insert("backup".into(), Value::Object(backup));
        }
        if let Some(access) = req.field("publicNetworkAccess") {
            properties.insert("network".into(), json!({"publicNetworkAccess": access}));
        }
        let mut body =
            json!({"location": place.location, "tags": tags(req), "properties": properties});
        if let Some(sku) = req.field("sku") {
            body["sku"] = sku.clone();
        }
        Ok(body)
    }

    fn validate(&self, req: &Request) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let name = req.external_name_or_name();
        let valid = (3..=63).contains(&name.len())
            && !name.starts_with('-')
            && !name.ends_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            problems.push(("metadata.name".into(), format!("{name:?} is not a flexible server name: 3 to 63 lowercase letters, digits and hyphens, not starting or ending with a hyphen")));
        }
        if req.field("sku").is_none() {
            problems.push((
                "sku".into(),
                "is required, e.g. {name: Standard_B1ms, tier: Burstable}".into(),
            ));
        }
        let burstable = req
            .field("sku")
            .and_then(|s| s.get("tier"))
            .and_then(Value::as_str)
            == Some("Burstable");
        let ha = req
            .field("highAvailability")
            .and_then(Value::as_str)
            .is_some_and(|m| m != "Disabled");
        if burstable && ha {
            problems.push((
                "highAvailability".into(),
                "is not offered on the Burstable tier; choose GeneralPurpose or MemoryOptimized"
                    .into(),
            ));
        }
        problems
    }

    fn readiness(&self, observed: &Value) -> (Readiness, String) {
        match observed
            .pointer("/properties/state")
            .and_then(Value::as_str)
        {
            Some("Ready") => (Readiness::Available, String::new()),
            Some(state @ ("Stopped" | "Stopping" | "Disabled")) => (
                Readiness::Unavailable,
                format!("Azure reports the server as {state}"),
            ),
            Some(state) => state_readiness(state),
            None => crate::resource::provisioning_readiness(observed),
        }
    }

    fn at_provider(&self, observed: &Value) -> Value {
        json!({
            "fullyQualifiedDomainName": observed.pointer("/properties/fullyQualifiedDomainName"),
            "state": observed.pointer("/properties/state"),
            "version": observed.pointer("/properties/version"),
            "storageSizeGb": observed.pointer("/properties/storage/storageSizeGB"),
            "id": observed.get("id"),
        })
    }

    fn connection(
        &self,
        req: &Request,
        observed: Option<&Value>,
    ) -> Result<ConnectionDetails, ProviderError> {
        admin_connection(
            req,
            observed,
            "postgresql",
            5432,
            "postgres",
            Some("require"),
        )
    }

    fn immutable(&self, want: &Value, have: &Value) -> Vec<String> {
        let size = |v: &Value| {
            v.pointer("/properties/storage/storageSizeGB")
                .and_then(Value::as_i64)
        };
        match (size(want), size(have)) {
            (Some(w), Some(h)) if w < h => vec![format!("storageSizeGb: flexible server storage only grows; the server has {h} GiB and the spec asks for {w}")],
            _ => Vec::new(),
        }
    }
}
