//! Clients built from a ProviderConfig, kept per config and rebuilt when its
//! spec or credentials change: what every cloud provider needs, since
//! building a client (credentials, TLS, connection pools) is too slow for
//! every call and a changed Secret must take effect.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::kind::ProviderConfig;

/// Clients and the digest of the spec and credentials that built them.
type Built<T> = ([u8; 32], Arc<T>);

/// Built clients by ProviderConfig name.
pub struct PerConfig<T> {
    built: Mutex<HashMap<String, Built<T>>>,
}

impl<T> Default for PerConfig<T> {
    fn default() -> Self {
        PerConfig {
            built: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> PerConfig<T> {
    /// The clients of a ProviderConfig: the ones built before if its spec
    /// and credentials are unchanged, else newly built by `build`.
    pub async fn get_or_build<F, Fut, E>(
        &self,
        config: &ProviderConfig,
        build: F,
    ) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let digest = fingerprint(config);
        if let Some((seen, clients)) = self
            .built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&config.name)
        {
            if *seen == digest {
                return Ok(clients.clone());
            }
        }
        let clients = Arc::new(build().await?);
        self.built
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(config.name.clone(), (digest, clients.clone()));
        Ok(clients)
    }
}

/// A digest of the spec and credentials; it never leaves the process.
fn fingerprint(config: &ProviderConfig) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(config.spec.to_string().as_bytes());
    for (key, value) in &config.credentials {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value);
        hasher.update([0]);
    }
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn clients_are_rebuilt_only_when_the_config_changes() {
        let cache: PerConfig<usize> = PerConfig::default();
        let mut config = ProviderConfig {
            name: "default".into(),
            spec: json!({"region": "a"}),
            credentials: Default::default(),
        };
        let builds = std::sync::atomic::AtomicUsize::new(0);
        let build =
            || async { Ok::<_, ()>(builds.fetch_add(1, std::sync::atomic::Ordering::SeqCst)) };
        assert_eq!(*cache.get_or_build(&config, build).await.expect("built"), 0);
        assert_eq!(
            *cache.get_or_build(&config, build).await.expect("kept"),
            0,
            "the same config keeps its clients"
        );
        config.credentials.insert("key".into(), b"rotated".to_vec());
        assert_eq!(
            *cache.get_or_build(&config, build).await.expect("rebuilt"),
            1,
            "a rotated Secret builds new ones"
        );
        config.spec = json!({"region": "b"});
        assert_eq!(
            *cache.get_or_build(&config, build).await.expect("rebuilt"),
            2,
            "a changed spec too"
        );
        let failed: Result<Arc<usize>, &str> = cache
            .get_or_build(
                &ProviderConfig {
                    name: "other".into(),
                    ..config.clone()
                },
                || async { Err("refused") },
            )
            .await;
        assert_eq!(failed, Err("refused"), "a failed build is not kept");
    }
}
