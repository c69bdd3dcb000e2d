//! The ARM client a ProviderConfig describes: subscription, tenant and
//! location, where the credentials come from, optional endpoint overrides
//! (sovereign clouds, Azure Stack Hub, a test server) with the CA
//! certificates to trust for them, and the resource group and subnet a
//! resource uses when it names none. Clients are built once per
//! ProviderConfig and rebuilt when its spec or credentials change.

use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions,
};
use provider_sdk::clients::PerConfig;
use provider_sdk::{ProviderConfig, ProviderError};
use serde_json::Value;

use crate::arm::Arm;

/// The key of the credentials Secret holding the service principal's JSON,
/// when `credentials.secretRef.key` names none.
pub const DEFAULT_KEY: &str = "credentials.json";

pub const PUBLIC_RESOURCE_MANAGER: &str = "https://management.azure.com";
pub const PUBLIC_ACTIVE_DIRECTORY: &str = "https://login.microsoftonline.com";

/// Where a ProviderConfig's credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A service principal's JSON, as `az ad sp create-for-rbac --sdk-auth`
    /// prints it, under this key of the Secret `credentials.secretRef` names.
    Secret { key: String },
    /// `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` and `AZURE_TENANT_ID` of the
    /// provider's process when set, else the managed identity.
    Default,
}

/// What a ProviderConfig's spec says, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub subscription: String,
    pub tenant: String,
    pub location: String,
    pub resource_manager: String,
    pub active_directory: String,
    pub ca_bundle: Option<String>,
    pub resource_group: Option<String>,
    pub subnet: Option<String>,
    pub source: Source,
}

fn text<'a>(spec: &'a Value, pointer: &str) -> Option<&'a str> {
    spec.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl Settings {
    pub fn from_config(config: &ProviderConfig) -> Result<Settings, ProviderError> {
        let spec = &config.spec;
        let refuse = |what: String| {
            ProviderError::terminal(format!("ProviderConfig {:?}: {what}", config.name))
        };
        let required = |pointer: &str, field: &str, example: &str| {
            text(spec, pointer)
                .map(str::to_string)
                .ok_or_else(|| refuse(format!("spec.{field} is required, e.g. {example}")))
        };
        let endpoint =
            |pointer: &str, field: &str, default: &str| -> Result<String, ProviderError> {
                let url = text(spec, pointer)
                    .unwrap_or(default)
                    .trim_end_matches('/')
                    .to_string();
                if !url.starts_with("https://") {
                    return Err(refuse(format!(
                        "spec.{field} must be an https:// URL, not {url:?}"
                    )));
                }
                Ok(url)
            };
        let source = match text(spec, "/credentials/source").unwrap_or("Secret") {
            "Secret" => Source::Secret {
                key: text(spec, "/credentials/secretRef/key")
                    .unwrap_or(DEFAULT_KEY)
                    .to_string(),
            },
            "Default" => Source::Default,
            other => {
                return Err(refuse(format!(
                    "spec.credentials.source must be Secret or Default, not {other:?}"
                )))
            }
        };
        Ok(Settings {
            subscription: required(
                "/subscriptionID",
                "subscriptionID",
                "00000000-0000-0000-0000-000000000000",
            )?,
            tenant: required(
                "/tenantID",
                "tenantID",
                "00000000-0000-0000-0000-000000000000",
            )?,
            location: required("/location", "location", "westeurope")?,
            resource_manager: endpoint(
                "/endpoints/resourceManager",
                "endpoints.resourceManager",
                PUBLIC_RESOURCE_MANAGER,
            )?,
            active_directory: endpoint(
                "/endpoints/activeDirectory",
                "endpoints.activeDirectory",
                PUBLIC_ACTIVE_DIRECTORY,
            )?,
            ca_bundle: text(spec, "/endpoints/caBundle").map(str::to_string),
            resource_group: text(spec, "/resourceGroupName").map(str::to_string),
            subnet: text(spec, "/subnetID").map(str::to_string),
            source,
        })
    }
}

/// The service principal a Secret holds, in `--sdk-auth` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePrincipal {
    pub client_id: String,
    pub client_secret: String,
    pub tenant_id: Option<String>,
    pub subscription_id: Option<String>,
}

impl ServicePrincipal {
    pub fn parse(config: &ProviderConfig, key: &str) -> Result<ServicePrincipal, ProviderError> {
        let refuse = |what: String| {
            ProviderError::terminal(format!("ProviderConfig {:?}: {what}", config.name))
        };
        let text = config.credential(key).ok_or_else(|| {
            refuse(format!(
                "the credentials Secret has no key {key:?} holding the service principal's JSON (set spec.credentials.secretRef.key to the key that does)"
            ))
        })?;
        let json: Value = serde_json::from_str(text).map_err(|e| {
            refuse(format!(
                "the credentials Secret's key {key:?} is not JSON: {e}"
            ))
        })?;
        let field = |name: &str| {
            json.get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let need = |name: &str| {
            field(name).ok_or_else(|| {
                refuse(format!(
                    "the credentials Secret's key {key:?} has no {name}: it takes the JSON `az ad sp create-for-rbac --sdk-auth` prints (clientId, clientSecret, subscriptionId, tenantId)"
                ))
            })
        };
        Ok(ServicePrincipal {
            client_id: need("clientId")?,
            client_secret: need("clientSecret")?,
            tenant_id: field("tenantId"),
            subscription_id: field("subscriptionId"),
        })
    }
}

/// The client of one ProviderConfig, and the defaults it carries.
#[derive(Debug, Clone)]
pub struct Clients {
    pub arm: Arm,
    pub subscription: String,
    pub location: String,
    pub resource_group: Option<String>,
    pub subnet: Option<String>,
}

/// Clients by ProviderConfig, rebuilt when its spec or credentials change.
#[derive(Default)]
pub struct Pool(PerConfig<Clients>);

impl Pool {
    /// The client for a ProviderConfig, built on first use.
    pub async fn clients(&self, config: &ProviderConfig) -> Result<Arc<Clients>, ProviderError> {
        self.0
            .get_or_build(config, || async { build(config) })
            .await
    }
}

/// One HTTPS client: rustls with ring, the system's roots and the
/// ProviderConfig's `caBundle`.
fn http_client(settings: &Settings) -> Result<reqwest::Client, ProviderError> {
    let mut builder = reqwest::Client::builder();
    if let Some(bundle) = &settings.ca_bundle {
        let certs = reqwest::Certificate::from_pem_bundle(bundle.as_bytes()).map_err(|e| {
            ProviderError::terminal(format!(
                "spec.endpoints.caBundle is not PEM certificates: {e}"
            ))
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| ProviderError::terminal(format!("cannot build the HTTPS client: {e}")))
}

fn build(config: &ProviderConfig) -> Result<Clients, ProviderError> {
    let settings = Settings::from_config(config)?;
    let http = http_client(&settings)?;
    let client_options = || {
        let mut cloud = CustomConfiguration::default();
        cloud.authority_host = settings.active_directory.clone();
        ClientOptions {
            transport: Some(Transport::new(Arc::new(http.clone()))),
            cloud: Some(Arc::new(CloudConfiguration::Custom(cloud))),
            ..ClientOptions::default()
        }
    };
    let credential: Arc<dyn TokenCredential> = match &settings.source {
        Source::Secret { key } => {
            let principal = ServicePrincipal::parse(config, key)?;
            let tenant = principal
                .tenant_id
                .clone()
                .unwrap_or_else(|| settings.tenant.clone());
            ClientSecretCredential::new(
                &tenant,
                principal.client_id,
                Secret::new(principal.client_secret),
                Some(ClientSecretCredentialOptions {
                    client_options: client_options(),
                }),
            )
            .map_err(|e| {
                ProviderError::terminal(format!("cannot use the service principal: {e}"))
            })?
        }
        Source::Default => match (
            std::env::var("AZURE_CLIENT_ID"),
            std::env::var("AZURE_CLIENT_SECRET"),
            std::env::var("AZURE_TENANT_ID"),
        ) {
            (Ok(id), Ok(secret), Ok(tenant)) => ClientSecretCredential::new(
                &tenant,
                id,
                Secret::new(secret),
                Some(ClientSecretCredentialOptions {
                    client_options: client_options(),
                }),
            )
            .map_err(|e| {
                ProviderError::terminal(format!(
                    "cannot use AZURE_CLIENT_ID and AZURE_CLIENT_SECRET: {e}"
                ))
            })?,
            _ => ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                client_options: client_options(),
                ..ManagedIdentityCredentialOptions::default()
            }))
            .map_err(|e| {
                ProviderError::Unauthorized(format!("cannot use the managed identity: {e}"))
            })?,
        },
    };
    Ok(Clients {
        arm: Arm {
            http,
            scope: format!("{}/.default", settings.resource_manager),
            base: settings.resource_manager.clone(),
            credential,
        },
        subscription: settings.subscription,
        location: settings.location,
        resource_group: settings.resource_group,
        subnet: settings.subnet,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(spec: Value, credentials: &[(&str, &str)]) -> ProviderConfig {
        ProviderConfig {
            name: "default".into(),
            spec,
            credentials: credentials
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn settings_are_read_and_checked() {
        let full = json!({"subscriptionID": "sub", "tenantID": "ten", "location": "westeurope",
            "endpoints": {"resourceManager": "https://arm.example/", "activeDirectory": "https://login.example"},
            "resourceGroupName": "rg", "credentials": {"source": "Secret", "secretRef": {"namespace": "n", "name": "s", "key": "sp.json"}}});
        let got = Settings::from_config(&config(full, &[])).expect("settings");
        assert_eq!(got.resource_manager, "https://arm.example");
        assert_eq!(got.active_directory, "https://login.example");
        assert_eq!(got.resource_group.as_deref(), Some("rg"));
        assert_eq!(
            got.source,
            Source::Secret {
                key: "sp.json".into()
            }
        );
        let defaults = Settings::from_config(&config(
            json!({"subscriptionID": "s", "tenantID": "t", "location": "l"}),
            &[],
        ))
        .expect("settings");
        assert_eq!(defaults.resource_manager, PUBLIC_RESOURCE_MANAGER);
        assert_eq!(
            defaults.source,
            Source::Secret {
                key: DEFAULT_KEY.into()
            }
        );
        let cases = [
            (
                "the subscription is required",
                json!({"tenantID": "t", "location": "l"}),
                "spec.subscriptionID is required",
            ),
            (
                "the location is required",
                json!({"subscriptionID": "s", "tenantID": "t"}),
                "spec.location is required",
            ),
            (
                "endpoints are https",
                json!({"subscriptionID": "s", "tenantID": "t", "location": "l", "endpoints": {"resourceManager": "http://x"}}),
                "must be an https:// URL",
            ),
            (
                "sources are Secret or Default",
                json!({"subscriptionID": "s", "tenantID": "t", "location": "l", "credentials": {"source": "Environment"}}),
                "must be Secret or Default",
            ),
        ];
        for (reason, spec, want) in cases {
            let err = Settings::from_config(&config(spec, &[])).expect_err(reason);
            assert!(err.to_string().contains(want), "{reason}: {err}");
        }
    }

    #[test]
    fn the_service_principal_is_read_in_sdk_auth_form() {
        let sdk_auth = r#"{"clientId": "c", "clientSecret": "s", "subscriptionId": "sub", "tenantId": "t",
            "activeDirectoryEndpointUrl": "https://login.microsoftonline.com"}"#;
        let principal =
            ServicePrincipal::parse(&config(json!({}), &[(DEFAULT_KEY, sdk_auth)]), DEFAULT_KEY)
                .expect("parsed");
        assert_eq!(principal.client_id, "c");
        assert_eq!(principal.tenant_id.as_deref(), Some("t"));
        let missing = ServicePrincipal::parse(
            &config(json!({}), &[(DEFAULT_KEY, r#"{"clientId": "c"}"#)]),
            DEFAULT_KEY,
        )
        .expect_err("no secret");
        assert!(
            missing.to_string().contains("has no clientSecret"),
            "{missing}"
        );
        let absent =
            ServicePrincipal::parse(&config(json!({}), &[]), DEFAULT_KEY).expect_err("no key");
        assert!(
            absent.to_string().contains("no key \"credentials.json\""),
            "{absent}"
        );
    }
}
