//! The AWS provider: managed resources on Amazon Web Services, through the
//! real `aws-sdk-rds` and `aws-sdk-ec2` clients.
//!
//! - `DBInstance.rds.aws.plinth.dev`: an RDS database instance. Its external
//!   name is the `DBInstanceIdentifier`, so it is deterministic.
//! - `Instance.ec2.aws.plinth.dev`: an EC2 instance. Its external name is the
//!   instance id AWS assigns, so a retried Create must find the first launch:
//!   `RunInstances` carries a `ClientToken` derived from the object's UID and
//!   the instance a `plinth.dev/uid` tag that Observe and Create look for.
//!
//! Layout:
//! - `config`: the AWS clients a ProviderConfig describes (region, endpoint,
//!   credentials), cached per ProviderConfig.
//! - `errors`: AWS errors in provider terms (throttled, refused, invalid).
//! - `tags`: tag maps, and what differs between two of them.
//! - `rds`: the `DBInstance` kind and its status mapping.
//! - `ec2`: the `Instance` kind and its state mapping.
#![forbid(unsafe_code)]

pub mod config;
pub mod ec2;
pub mod errors;
pub mod rds;
pub mod tags;

use provider_sdk::serde_json::json;
use provider_sdk::Provider;

/// The API group of the AWS provider's ProviderConfig.
pub const CONFIG_GROUP: &str = "aws.plinth.dev";

/// Fault injection for the leak-guard test: when this names a file that does
/// not exist yet, the provider creates it and exits right after
/// `RunInstances` returns, before it answers the control plane.
pub const FAULT_EXIT_AFTER_RUN_INSTANCES: &str = "PLINTH_AWS_FAULT_EXIT_AFTER_RUN_INSTANCES";

/// The schema of `ProviderConfig.aws.plinth.dev`'s spec: the one most users
/// write by hand, so it stays this plain.
fn config_schema() -> provider_sdk::serde_json::Value {
    json!({
        "type": "object",
        "description": "Where and as whom the AWS provider calls AWS.",
        "required": ["region"],
        "properties": {
            "region": {"type": "string", "minLength": 1, "description": "The AWS region, e.g. us-east-1."},
            "endpoint": {
                "type": "string",
                "pattern": "^https?://",
                "description": "An endpoint URL to use instead of AWS's own, for moto, LocalStack or a VPC endpoint."
            },
            "credentials": {
                "type": "object",
                "description": "Where the credentials come from.",
                "properties": {
                    "source": {
                        "type": "string",
                        "enum": ["Secret", "Environment", "Default"],
                        "default": "Secret",
                        "description": "Secret: the keys of secretRef. Environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of the provider's process. Default: the SDK's default chain (environment, profile, web identity, IMDS)."
                    },
                    "secretRef": {
                        "type": "object",
                        "description": "A Secret with the keys access_key_id, secret_access_key and optionally session_token.",
                        "required": ["namespace", "name"],
                        "properties": {
                            "namespace": {"type": "string"},
                            "name": {"type": "string"}
                        }
                    }
                }
            }
        }
    })
}

/// The AWS provider with its kinds.
pub fn provider() -> Provider {
    let clients = std::sync::Arc::new(config::Pool::default());
    Provider::new("aws", CONFIG_GROUP, config_schema())
        .kind(rds::DbInstance::new(clients.clone()))
        .kind(ec2::Instance::new(clients))
}
