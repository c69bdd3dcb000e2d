//! The local provider: real resources on this machine.
//!
//! - `Database.postgres.local.plinth.dev`: a database and its owner role on a
//!   real PostgreSQL server, reached with the admin connection its
//!   ProviderConfig's Secret gives.
//! - `Instance.compute.local.plinth.dev`: a supervised local process.
#![forbid(unsafe_code)]

pub mod admin;
pub mod database;
pub mod instance;

use provider_sdk::serde_json::json;
use provider_sdk::Provider;

/// The API group of the local provider's ProviderConfig.
pub const CONFIG_GROUP: &str = "local.plinth.dev";

/// The local provider with its kinds.
pub fn provider() -> Provider {
    Provider::new(
        "local",
        CONFIG_GROUP,
        json!({
            "type": "object",
            "description": "How the local provider reaches PostgreSQL.",
            "properties": {
                "credentials": {
                    "type": "object",
                    "description": "The admin connection: a Secret whose `url` key holds postgresql://user:password@host:port/database.",
                    "properties": {
                        "source": {"type": "string", "enum": ["Secret", "None"], "default": "Secret"},
                        "secretRef": {
                            "type": "object",
                            "required": ["namespace", "name"],
                            "properties": {"namespace": {"type": "string"}, "name": {"type": "string"}, "key": {"type": "string"}}
                        }
                    }
                }
            }
        }),
    )
    .kind(database::Database::default())
    .kind(instance::Instance::default())
}
