//! Finding the plural of a kind by discovery, once per kind: controllers
//! that act on kinds they learn from data (composed resources, the claim
//! kinds an OAM component names) know only `apiVersion` and `kind`.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::api::{ApiResource, GroupVersionKind};
use kube::Client;

use crate::lock;

/// Kinds resolved so far, by `apiVersion/kind`.
#[derive(Default)]
pub struct Kinds {
    cache: Mutex<HashMap<String, ApiResource>>,
    /// Said after "is not served", to tell the reader what to check.
    hint: &'static str,
}

impl Kinds {
    /// Kinds whose "not served" error carries `hint`, e.g. "is its
    /// provider installed and healthy?".
    pub fn with_hint(hint: &'static str) -> Kinds {
        Kinds {
            cache: Mutex::default(),
            hint,
        }
    }

    pub async fn resolve(
        &self,
        client: &Client,
        api_version: &str,
        kind: &str,
    ) -> Result<ApiResource, String> {
        let key = format!("{api_version}/{kind}");
        if let Some(ar) = lock(&self.cache).get(&key) {
            return Ok(ar.clone());
        }
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (ar, _) = kube::discovery::pinned_kind(client, &gvk)
            .await
            .map_err(|e| {
                let cause = match &e {
                    kube::Error::Api(status) if !status.message.is_empty() => {
                        status.message.clone()
                    }
                    other => other.to_string(),
                };
                let hint = if self.hint.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", self.hint)
                };
                format!("{kind}.{group} is not served{hint}: {cause}")
            })?;
        lock(&self.cache).insert(key, ar.clone());
        Ok(ar)
    }
}
