//! The Azure provider: managed resources on Azure Resource Manager.
//!
//! - `Server`, `Database`, `FirewallRule` of `sql.azure.plinth.dev`: Azure
//!   SQL (SQL Server).
//! - `PostgreSQLFlexibleServer.dbforpostgresql.azure.plinth.dev`: Azure
//!   Database for PostgreSQL, which the built-in PostgreSQLInstance needs.
//! - `VirtualMachine.compute.azure.plinth.dev`: a VM with its network
//!   interface.
//!
//! Tokens come from `azure_identity` 1.x (a service principal's secret, or
//! the managed identity); requests are typed here from the ARM REST
//! reference at fixed GA api-versions (README.md says why).
//!
//! Layout:
//! - `config`: the ARM client a ProviderConfig describes, cached per config.
//! - `arm`: HTTPS requests to ARM, long-running operations, errors.
//! - `operations`: operations followed across reconciles, per resource.
//! - `resource`: the life cycle every ARM kind shares (`ArmKind`, `Managed`).
//! - `sql`, `postgresql`, `compute`: the kinds.
#![forbid(unsafe_code)]

pub mod arm;
pub mod compute;
pub mod config;
pub mod operations;
pub mod postgresql;
pub mod resource;
pub mod sql;

use std::sync::Arc;

use provider_sdk::Provider;
use resource::Managed;
use serde_json::json;

/// The API group of the Azure provider's ProviderConfig.
pub const CONFIG_GROUP: &str = "azure.plinth.dev";

fn config_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "description": "Where and as whom the Azure provider calls Azure Resource Manager.",
        "required": ["subscriptionID", "tenantID", "location"],
        "properties": {
            "subscriptionID": {"type": "string", "minLength": 1},
            "tenantID": {"type": "string", "minLength": 1},
            "location": {"type": "string", "minLength": 1, "description": "The region resources go to when they name none, e.g. westeurope."},
            "resourceGroupName": {"type": "string", "description": "The resource group resources go in when they name none."},
            "subnetID": {"type": "string", "description": "The subnet virtual machines' interfaces go in when they name none."},
            "credentials": {
                "type": "object",
                "properties": {
                    "source": {"type": "string", "enum": ["Secret", "Default"], "default": "Secret",
                               "description": "Secret: the service principal's JSON in secretRef. Default: AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID of the provider, else its managed identity."},
                    "secretRef": {
                        "type": "object",
                        "description": "The Secret holding the JSON `az ad sp create-for-rbac --sdk-auth` prints (clientId, clientSecret, subscriptionId, tenantId), and its key (credentials.json when unset).",
                        "required": ["namespace", "name"],
                        "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "key": {"type": "string"}}
                    }
                }
            },
            "endpoints": {
                "type": "object",
                "description": "Overrides for sovereign clouds, Azure Stack Hub or a test server.",
                "properties": {
                    "resourceManager": {"type": "string", "pattern": "^https://", "description": "https://management.azure.com when unset."},
                    "activeDirectory": {"type": "string", "pattern": "^https://", "description": "https://login.microsoftonline.com when unset."},
                    "caBundle": {"type": "string", "description": "PEM certificates to trust beside the system's, for endpoints with a private CA."}
                }
            }
        }
    })
}

/// Installs ring as rustls' process-wide provider, which the HTTPS client
/// (built without a provider of its own) uses. Installing twice is harmless.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The Azure provider with its kinds.
pub fn provider() -> Provider {
    install_crypto();
    let clients = Arc::new(config::Pool::default());
    let operations = Arc::new(operations::Operations::default());
    Provider::new("azure", CONFIG_GROUP, config_schema())
        .kind(Managed::new(
            sql::Server,
            clients.clone(),
            operations.clone(),
        ))
        .kind(Managed::new(
            sql::Database,
            clients.clone(),
            operations.clone(),
        ))
        .kind(Managed::new(
            sql::FirewallRule,
            clients.clone(),
            operations.clone(),
        ))
        .kind(Managed::new(
            postgresql::FlexibleServer,
            clients.clone(),
            operations.clone(),
        ))
        .kind(Managed::new(compute::VirtualMachine, clients, operations))
}
