//! Azure SQL (`Microsoft.Sql`, api-version 2021-11-01, GA): a logical
//! `Server`, its `Database`s and its `FirewallRule`s, group
//! `sql.azure.plinth.dev`. Azure SQL is SQL Server; the built-in
//! PostgreSQLInstance claim uses `postgresql::FlexibleServer` instead.

use provider_sdk::{ConnectionDetails, KindSchema, ProviderError, Readiness, Request};
use serde_json::{json, Value};

use crate::resource::{
    admin_connection, admin_login, password, state_readiness, tags, ArmKind, Place,
};

pub const GROUP: &str = "sql.azure.plinth.dev";
pub const API_VERSION: &str = "2021-11-01";

/// The connection keys of a server: its administrator's.
pub const CONNECTION_KEYS: [&str; 6] = ["host", "port", "username", "password", "database", "uri"];

fn text<'a>(req: &'a Request, field: &str) -> Option<&'a str> {
    req.field(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn required<'a>(req: &'a Request, field: &str, example: &str) -> Result<&'a str, ProviderError> {
    text(req, field).ok_or_else(|| {
        ProviderError::terminal(format!(
            "spec.forProvider.{field} is required, e.g. {example}"
        ))
    })
}

/// The properties the spec sets, copied as they are.
fn copy(req: &Request, fields: &[&str]) -> serde_json::Map<String, Value> {
    fields
        .iter()
        .filter_map(|f| req.field(f).map(|v| (f.to_string(), v.clone())))
        .collect()
}

fn server_id(place: &Place, server: &str) -> String {
    place.id(&format!("Microsoft.Sql/servers/{server}"))
}

/// Common forProvider fields of every kind that lives in a resource group.
fn placement() -> Value {
    json!({
        "resourceGroupName": {"type": "string", "description": "The resource group; the ProviderConfig's resourceGroupName when unset."},
        "location": {"type": "string", "description": "The Azure region; the ProviderConfig's location when unset."}
    })
}

fn schema(
    kind: &str,
    plural: &str,
    description: &str,
    mut properties: Value,
    at_provider: Value,
    keys: &[&str],
) -> KindSchema {
    if let (Some(all), Some(common)) = (properties.as_object_mut(), placement().as_object()) {
        for (k, v) in common {
            all.insert(k.clone(), v.clone());
        }
    }
    KindSchema {
        group: GROUP.into(),
        version: "v1alpha1".into(),
        kind: kind.into(),
        plural: plural.into(),
        description: description.into(),
        for_provider: json!({"type": "object", "properties": properties}),
        at_provider,
        connection_secret_keys: keys.iter().map(|k| k.to_string()).collect(),
        deterministic_external_name: true,
    }
}

fn secret_ref(description: &str) -> Value {
    json!({
        "type": "object",
        "description": description,
        "required": ["namespace", "name", "key"],
        "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "key": {"type": "string"}}
    })
}

/// `Server.sql.azure.plinth.dev`: an Azure SQL logical server.
pub struct Server;

#[provider_sdk::async_trait]
impl ArmKind for Server {
    fn schema(&self) -> KindSchema {
        schema(
            "Server",
            "servers",
            "An Azure SQL logical server.",
            json!({
                "version": {"type": "string", "description": "The server version; 12.0 when unset."},
                "administratorLogin": {"type": "string", "description": "The administrator's login; plinthadmin when unset."},
                "administratorLoginPasswordSecretRef": secret_ref("A key of a Secret holding the administrator's password. Without it a password is generated."),
                "minimalTlsVersion": {"type": "string", "enum": ["1.0", "1.1", "1.2"]},
                "publicNetworkAccess": {"type": "string", "enum": ["Enabled", "Disabled"]},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}}
            }),
            json!({"type": "object", "properties": {
                "fullyQualifiedDomainName": {"type": "string"}, "state": {"type": "string"}, "id": {"type": "string"}
            }}),
            &CONNECTION_KEYS,
        )
    }

    fn api_version(&self) -> &'static str {
        API_VERSION
    }

    fn id(&self, req: &Request, place: &Place) -> Result<String, ProviderError> {
        Ok(server_id(place, req.external_name_or_name()))
    }

    fn body(&self, req: &Request, place: &Place) -> Result<Value, ProviderError> {
        let mut properties = copy(req, &["minimalTlsVersion", "publicNetworkAccess"]);
        properties.insert(
            "version".into(),
            json!(text(req, "version").unwrap_or("12.0")),
        );
        properties.insert("administratorLogin".into(), json!(admin_login(req)));
        properties.insert(
            "administratorLoginPassword".into(),
            json!(password(
                req,
                "administratorLoginPasswordSecretRef",
                "administrator-password"
            )?),
        );
        Ok(json!({"location": place.location, "tags": tags(req), "properties": properties}))
    }

    fn validate(&self, req: &Request) -> Vec<(String, String)> {
        let name = req.external_name_or_name();
        let valid = !name.is_empty()
            && name.len() <= 63
            && !name.starts_with('-')
            && !name.ends_with('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let mut problems = Vec::new();
        if !valid {
            problems.push(("metadata.name".into(), format!("{name:?} is not an Azure SQL server name: 1 to 63 lowercase letters, digits and hyphens, not starting or ending with a hyphen")));
        }
        if matches!(
            admin_login(req),
            "admin"
                | "administrator"
                | "sa"
                | "root"
                | "dbmanager"
                | "loginmanager"
                | "guest"
                | "public"
        ) {
            problems.push((
                "administratorLogin".into(),
                format!(
                    "{:?} is reserved by Azure SQL; choose another login",
                    admin_login(req)
                ),
            ));
        }
        problems
    }

    fn readiness(&self, observed: &Value) -> (Readiness, String) {
        let state = observed
            .pointer("/properties/state")
            .and_then(Value::as_str);
        match state {
            Some(state) => state_readiness(state),
            None => crate::resource::provisioning_readiness(observed),
        }
    }

    fn at_provider(&self, observed: &Value) -> Value {
        json!({
            "fullyQualifiedDomainName": observed.pointer("/properties/fullyQualifiedDomainName"),
            "state": observed.pointer("/properties/state"),
            "id": observed.get("id"),
        })
    }

    fn connection(
        &self,
        req: &Request,
        observed: Option<&Value>,
    ) -> Result<ConnectionDetails, ProviderError> {
        admin_connection(req, observed, "sqlserver", 1433, "master", None)
    }

    fn immutable(&self, want: &Value, have: &Value) -> Vec<String> {
        let login = |v: &Value| v.pointer("/properties/administratorLogin").cloned();
        if login(have).is_some() && login(want) != login(have) {
            return vec![format!(
                "administratorLogin: Azure SQL cannot rename the administrator ({} → {})",
                login(have).unwrap_or_default(),
                login(want).unwrap_or_default()
            )];
        }
        Vec::new()
    }
}

/// `Database.sql.azure.plinth.dev`: a database on an Azure SQL server.
pub struct Database;

#[provider_sdk::async_trait]
impl ArmKind for Database {
    fn schema(&self) -> KindSchema {
        schema(
            "Database",
            "databases",
            "A database on an Azure SQL logical server.",
            json!({
                "serverName": {"type": "string", "description": "The Azure SQL server's name."},
                "sku": {"type": "object", "description": "The database's SKU, e.g. {name: GP_S_Gen5_1} or {name: Basic}.",
                        "properties": {"name": {"type": "string"}, "tier": {"type": "string"}, "capacity": {"type": "integer"}, "family": {"type": "string"}}},
                "maxSizeBytes": {"type": "integer", "minimum": 1, "description": "The largest the database may grow, in bytes."},
                "collation": {"type": "string", "description": "e.g. SQL_Latin1_General_CP1_CI_AS."},
                "zoneRedundant": {"type": "boolean"},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}}
            }),
            json!({"type": "object", "properties": {"status": {"type": "string"}, "currentServiceObjectiveName": {"type": "string"}, "id": {"type": "string"}}}),
            &[],
        )
    }

    fn api_version(&self) -> &'static str {
        API_VERSION
    }

    fn id(&self, req: &Request, place: &Place) -> Result<String, ProviderError> {
        let server = required(req, "serverName", "orders-sql")?;
        Ok(format!(
            "{}/databases/{}",
            server_id(place, server),
            req.external_name_or_name()
        ))
    }

    fn body(&self, req: &Request, place: &Place) -> Result<Value, ProviderError> {
        let mut body = json!({
            "location": place.location,
            "tags": tags(req),
            "properties": copy(req, &["maxSizeBytes", "collation", "zoneRedundant"]),
        });
        if let Some(sku) = req.field("sku") {
            body["sku"] = sku.clone();
        }
        Ok(body)
    }

    fn validate(&self, req: &Request) -> Vec<(String, String)> {
        match required(req, "serverName", "orders-sql") {
            Ok(_) => Vec::new(),
            Err(e) => vec![("serverName".into(), e.to_string())],
        }
    }

    fn readiness(&self, observed: &Value) -> (Readiness, String) {
        match observed
            .pointer("/properties/status")
            .and_then(Value::as_str)
        {
            Some(status) => state_readiness(status),
            None => crate::resource::provisioning_readiness(observed),
        }
    }

    fn at_provider(&self, observed: &Value) -> Value {
        json!({
            "status": observed.pointer("/properties/status"),
            "currentServiceObjectiveName": observed.pointer("/properties/currentServiceObjectiveName"),
            "id": observed.get("id"),
        })
    }
}

/// `FirewallRule.sql.azure.plinth.dev`: addresses an Azure SQL server
/// accepts connections from.
pub struct FirewallRule;

#[provider_sdk::async_trait]
impl ArmKind for FirewallRule {
    fn schema(&self) -> KindSchema {
        schema(
            "FirewallRule",
            "firewallrules",
            "A range of IPv4 addresses an Azure SQL server accepts connections from.",
            json!({
                "serverName": {"type": "string", "description": "The Azure SQL server's name."},
                "startIpAddress": {"type": "string", "description": "The first address, e.g. 203.0.113.0 (0.0.0.0 with endIpAddress 0.0.0.0 admits Azure services)."},
                "endIpAddress": {"type": "string", "description": "The last address, e.g. 203.0.113.255."}
            }),
            json!({"type": "object", "properties": {"id": {"type": "string"}}}),
            &[],
        )
    }

    fn api_version(&self) -> &'static str {
        API_VERSION
    }

    fn tagged(&self) -> bool {
        false
    }

    fn id(&self, req: &Request, place: &Place) -> Result<String, ProviderError> {
        let server = required(req, "serverName", "orders-sql")?;
        Ok(format!(
            "{}/firewallRules/{}",
            server_id(place, server),
            req.external_name_or_name()
        ))
    }

    fn body(&self, req: &Request, _place: &Place) -> Result<Value, ProviderError> {
        Ok(json!({"properties": {
            "startIpAddress": required(req, "startIpAddress", "203.0.113.0")?,
            "endIpAddress": required(req, "endIpAddress", "203.0.113.255")?,
        }}))
    }

    fn validate(&self, req: &Request) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for field in ["serverName", "startIpAddress", "endIpAddress"] {
            match text(req, field) {
                None => problems.push((field.to_string(), "is required".to_string())),
                Some(v) if field != "serverName" && v.parse::<std::net::Ipv4Addr>().is_err() => {
                    problems.push((field.to_string(), format!("{v:?} is not an IPv4 address")))
                }
                _ => {}
            }
        }
        problems
    }

    fn at_provider(&self, observed: &Value) -> Value {
        json!({"id": observed.get("id")})
    }
}
