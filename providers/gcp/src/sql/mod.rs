//! Cloud SQL: `DatabaseInstance`, `Database` and `User` of
//! `sql.gcp.plinth.dev`, through `google-cloud-sql-v1`.
//!
//! What the three share lives here: the engine a `databaseVersion` names,
//! and where an instance can be reached.

pub mod database;
pub mod instance;
pub mod user;

use google_cloud_sql_v1::model::DatabaseInstance as Observed;
use provider_sdk::ProviderError;
use serde_json::Value;

use crate::config::Clients;
use crate::errors::{self, classify};
use crate::rest;

pub const GROUP: &str = "sql.gcp.plinth.dev";

/// The connection keys of every Cloud SQL kind that gives connection
/// details; PostgreSQL adds `connectionString`, which is not declared since
/// MySQL and SQL Server have none.
pub const CONNECTION_KEYS: [&str; 6] = ["host", "port", "username", "password", "database", "uri"];

/// The user label that records which resource made an instance: Cloud SQL
/// label keys and values take lowercase letters, digits, `-` and `_`, which
/// a Kubernetes UID is made of.
pub const UID_LABEL: &str = "plinth-uid";

/// What a `databaseVersion` says about reaching the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Engine {
    pub scheme: &'static str,
    pub port: u16,
    /// The user Cloud SQL gives the root password to.
    pub root_user: &'static str,
    /// The database every instance of the engine has.
    pub default_database: &'static str,
}

impl Engine {
    pub fn of(database_version: &str) -> Engine {
        if database_version.starts_with("MYSQL") {
            Engine {
                scheme: "mysql",
                port: 3306,
                root_user: "root",
                default_database: "mysql",
            }
        } else if database_version.starts_with("SQLSERVER") {
            Engine {
                scheme: "sqlserver",
                port: 1433,
                root_user: "sqlserver",
                default_database: "master",
            }
        } else {
            Engine {
                scheme: "postgresql",
                port: 5432,
                root_user: "postgres",
                default_database: "postgres",
            }
        }
    }
}

/// An instance as REST JSON, with its enums by name as the REST reference
/// writes them (the model serializes them as numbers, the wire form the
/// client asks for), so states, versions and tiers read and compare as
/// users write them.
pub fn named(model: &Observed) -> Value {
    let mut json = rest::json(model);
    let mut set = |pointer: &str, name: Option<&str>| {
        if let (Some(slot), Some(name)) = (json.pointer_mut(pointer), name) {
            *slot = Value::from(name);
        }
    };
    set("/state", model.state.name());
    set("/databaseVersion", model.database_version.name());
    if let Some(settings) = &model.settings {
        set(
            "/settings/availabilityType",
            settings.availability_type.name(),
        );
        set("/settings/dataDiskType", settings.data_disk_type.name());
        set("/settings/edition", settings.edition.name());
        set("/settings/pricingPlan", settings.pricing_plan.name());
        set(
            "/settings/activationPolicy",
            settings.activation_policy.name(),
        );
        if let Some(ip) = &settings.ip_configuration {
            set("/settings/ipConfiguration/sslMode", ip.ssl_mode.name());
        }
    }
    for (i, mapping) in model.ip_addresses.iter().enumerate() {
        set(&format!("/ipAddresses/{i}/type"), mapping.r#type.name());
    }
    for (i, _) in model.suspension_reason.iter().enumerate() {
        set(
            &format!("/suspensionReason/{i}"),
            model.suspension_reason[i].name(),
        );
    }
    json
}

/// An instance's state as REST names it, e.g. `RUNNABLE`.
pub fn state(instance: &Value) -> &str {
    instance
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("SQL_INSTANCE_STATE_UNSPECIFIED")
}

/// The address clients reach an instance at: its primary (public) address,
/// else its private one.
pub fn address(instance: &Value) -> Option<String> {
    let addresses = instance.get("ipAddresses").and_then(Value::as_array)?;
    let of_type = |t: &str| {
        addresses
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(t))
            .and_then(|a| a.get("ipAddress"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    of_type("PRIMARY").or_else(|| of_type("PRIVATE"))
}

/// An instance by name, as REST JSON, or None when Google knows none.
pub async fn get_instance(clients: &Clients, name: &str) -> Result<Option<Value>, ProviderError> {
    get_instance_model(clients, name)
        .await
        .map(|found| found.as_ref().map(named))
}

async fn get_instance_model(
    clients: &Clients,
    name: &str,
) -> Result<Option<Observed>, ProviderError> {
    match clients
        .sql_instances
        .get()
        .set_project(&clients.project)
        .set_instance(name)
        .send()
        .await
    {
        Ok(found) => Ok(Some(found)),
        Err(e) if errors::is_not_found(&e) => Ok(None),
        Err(e) => Err(classify(&format!("get Cloud SQL instance {name}"), &e)),
    }
}

/// The instance a database or user belongs to, which must be RUNNABLE for
/// either to be made or changed.
pub async fn runnable_instance(
    clients: &Clients,
    name: &str,
    of: &str,
) -> Result<Value, ProviderError> {
    let Some(instance) = get_instance(clients, name).await? else {
        return Err(ProviderError::retryable(format!(
            "the Cloud SQL instance {name} of {of} does not exist (yet)"
        )));
    };
    match state(&instance) {
        "RUNNABLE" => Ok(instance),
        other => Err(ProviderError::retryable(format!(
            "the Cloud SQL instance {name} of {of} is {other}; it is used once it is RUNNABLE"
        ))),
    }
}

/// The `instance` field every database and user names.
pub fn instance_field(req: &provider_sdk::Request) -> Result<String, ProviderError> {
    req.field("instance")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| {
            ProviderError::terminal(
                "spec.forProvider.instance is required: the Cloud SQL instance's name",
            )
        })
}

/// Whether a name is one Cloud SQL takes for an instance: lowercase letters,
/// digits and hyphens, starting with a letter, at most 98 characters
/// together with the project id (so 63 here, the label limit, to be safe).
pub fn instance_name_problem(name: &str) -> Option<String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    (!valid).then(|| {
        format!("{name:?} is not a Cloud SQL instance name: 1 to 63 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_address_is_the_primary_one_else_the_private_one() {
        let both = json!({"ipAddresses": [{"type": "PRIVATE", "ipAddress": "10.1.0.3"}, {"type": "PRIMARY", "ipAddress": "34.1.2.3"}]});
        assert_eq!(address(&both).as_deref(), Some("34.1.2.3"));
        let private = json!({"ipAddresses": [{"type": "PRIVATE", "ipAddress": "10.1.0.3"}]});
        assert_eq!(address(&private).as_deref(), Some("10.1.0.3"));
        assert_eq!(
            address(&json!({})),
            None,
            "before Cloud SQL assigns one there is none"
        );
    }

    #[test]
    fn engines_follow_the_version_prefix() {
        assert_eq!(Engine::of("POSTGRES_15").port, 5432);
        assert_eq!(Engine::of("MYSQL_8_0").root_user, "root");
        assert_eq!(Engine::of("SQLSERVER_2019_STANDARD").scheme, "sqlserver");
    }

    #[test]
    fn instance_names_follow_cloud_sql_rules() {
        assert_eq!(instance_name_problem("orders-db-1"), None);
        for bad in ["", "1db", "Orders", "db_1", "db-", &"a".repeat(64)] {
            assert!(instance_name_problem(bad).is_some(), "{bad:?}");
        }
    }
}
