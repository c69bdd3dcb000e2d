//! The Google Cloud provider: managed resources on Google Cloud, through
//! Google's official Rust clients `google-cloud-sql-v1` and
//! `google-cloud-compute-v1`, authenticated by `google-cloud-auth`.
//!
//! - `DatabaseInstance.sql.gcp.plinth.dev`: a Cloud SQL instance.
//! - `Database.sql.gcp.plinth.dev` and `User.sql.gcp.plinth.dev`: a database
//!   and a built-in user in one.
//! - `Instance.compute.gcp.plinth.dev`: a Compute Engine VM.
//!
//! Every external name is deterministic (the resource's name, or its
//! `crossplane.io/external-name`).
//!
//! Layout:
//! - `config`: the clients a ProviderConfig describes, cached per config.
//! - `errors`: Google's errors in provider terms (throttled, refused, invalid).
//! - `operations`: long-running operations followed across reconciles.
//! - `rest`: resources as their REST JSON, and what differs between two.
//! - `sql`: the Cloud SQL kinds; `compute`: the Compute Engine kind.
#![forbid(unsafe_code)]

pub mod compute;
pub mod config;
pub mod errors;
pub mod operations;
pub mod rest;
pub mod sql;

use std::sync::Arc;

use provider_sdk::Provider;
use serde_json::json;

/// The API group of the Google Cloud provider's ProviderConfig.
pub const CONFIG_GROUP: &str = "gcp.plinth.dev";

/// The schema of `ProviderConfig.gcp.plinth.dev`'s spec.
fn config_schema() -> serde_json::Value {
    json!({
        "type": "object",
        "description": "Where and as whom the Google Cloud provider calls Google Cloud.",
        "required": ["projectID", "region"],
        "properties": {
            "projectID": {"type": "string", "minLength": 1, "description": "The project resources are made in, e.g. my-project."},
            "region": {"type": "string", "minLength": 1, "description": "The region Cloud SQL instances go to when they name none, e.g. europe-west1."},
            "endpoint": {
                "type": "string",
                "pattern": "^https?://",
                "description": "An endpoint URL to use for both Cloud SQL and Compute Engine instead of Google's own, e.g. a private endpoint or a test server."
            },
            "credentials": {
                "type": "object",
                "description": "Where the credentials come from.",
                "properties": {
                    "source": {
                        "type": "string",
                        "enum": ["Secret", "Default"],
                        "default": "Secret",
                        "description": "Secret: a service-account JSON key in the Secret secretRef names. Default: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's, or the metadata server)."
                    },
                    "secretRef": {
                        "type": "object",
                        "description": "The Secret holding the service-account JSON key, and its key (credentials.json when unset).",
                        "required": ["namespace", "name"],
                        "properties": {
                            "namespace": {"type": "string"},
                            "name": {"type": "string"},
                            "key": {"type": "string"}
                        }
                    }
                }
            }
        }
    })
}

/// Installs ring as rustls' process-wide provider, which Google's clients
/// and `google-cloud-auth` (built without their aws-lc default) sign and
/// connect with. Installing twice is harmless.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The Google Cloud provider with its kinds.
pub fn provider() -> Provider {
    install_crypto();
    let clients = Arc::new(config::Pool::default());
    let operations = Arc::new(operations::Operations::default());
    Provider::new("gcp", CONFIG_GROUP, config_schema())
        .kind(sql::instance::DatabaseInstance::new(
            clients.clone(),
            operations.clone(),
        ))
        .kind(sql::database::Database::new(
            clients.clone(),
            operations.clone(),
        ))
        .kind(sql::user::User::new(clients.clone(), operations.clone()))
        .kind(compute::Instance::new(clients, operations))
}
