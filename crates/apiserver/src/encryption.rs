//! The encryption key file: kube-apiserver's `EncryptionConfiguration`
//! (`apiserver.config.k8s.io/v1`), read into the store's [`store::Sealer`].
//!
//! The same file works with `kube-apiserver --encryption-provider-config`.
//! Of its providers, `aesgcm` and `identity` are served; `aescbc`,
//! `secretbox` and `kms` are refused by name rather than ignored, so nothing
//! the operator believes encrypted is written plain. As in kube-apiserver
//! the first provider writes and every listed key reads. Unlike it, values
//! stored plain always read back, whether or not `identity` is listed, so
//! a store written before the key file existed still opens.

use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EncryptionConfiguration {
    api_version: String,
    kind: String,
    resources: Vec<ResourceConfiguration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceConfiguration {
    resources: Vec<String>,
    providers: Vec<Provider>,
}

/// One entry of a provider list: exactly one of these fields is set.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Provider {
    aesgcm: Option<KeyList>,
    identity: Option<serde_json::Value>,
    aescbc: Option<serde_json::Value>,
    secretbox: Option<serde_json::Value>,
    kms: Option<serde_json::Value>,
}

#[derive(Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct KeyList {
    keys: Vec<Key>,
}

#[derive(Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Key {
    name: String,
    secret: String,
}

/// What one provider list says, as the store takes it.
#[derive(PartialEq)]
struct Policy {
    keys: Vec<(String, Vec<u8>)>,
    write_plain: bool,
}

/// Reads the key file at `path` into a sealer.
pub fn load(path: &Path) -> Result<store::Sealer> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the encryption key file {}", path.display()))?;
    warn_if_readable_by_others(path);
    parse(&text).with_context(|| format!("cannot use the encryption key file {}", path.display()))
}

/// The sealer an `EncryptionConfiguration` describes.
fn parse(text: &str) -> Result<store::Sealer> {
    let config: EncryptionConfiguration =
        serde_saphyr::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
    if config.api_version != "apiserver.config.k8s.io/v1" {
        bail!(
            "apiVersion: expected \"apiserver.config.k8s.io/v1\", got {:?}",
            config.api_version
        );
    }
    if config.kind != "EncryptionConfiguration" {
        bail!(
            "kind: expected \"EncryptionConfiguration\", got {:?}",
            config.kind
        );
    }
    if config.resources.is_empty() {
        bail!("resources: expected at least one entry");
    }
    let mut prefixes = Vec::new();
    let mut policy: Option<Policy> = None;
    for (i, entry) in config.resources.iter().enumerate() {
        if entry.resources.is_empty() {
            bail!("resources[{i}].resources: expected at least one resource, such as \"secrets\"");
        }
        for (j, resource) in entry.resources.iter().enumerate() {
            prefixes.push(
                storage_prefix(resource)
                    .with_context(|| format!("resources[{i}].resources[{j}]"))?,
            );
        }
        let this = provider_policy(&entry.providers)
            .with_context(|| format!("resources[{i}].providers"))?;
        match &policy {
            Some(first) if *first != this => bail!(
                "resources[{i}].providers: Plinth takes one provider list for all resources; \
                 this one differs from resources[0].providers"
            ),
            Some(_) => {}
            None => policy = Some(this),
        }
    }
    let Some(policy) = policy else {
        bail!("resources: expected at least one entry");
    };
    let mut keys = Vec::with_capacity(policy.keys.len());
    for (name, secret) in &policy.keys {
        keys.push(store::SealKey::new(name, secret)?);
    }
    Ok(store::Sealer::new(prefixes, keys, policy.write_plain)?)
}

/// The keys of a provider list, in order, and whether writes stay plain.
fn provider_policy(providers: &[Provider]) -> Result<Policy> {
    if providers.is_empty() {
        bail!("expected at least one provider, such as aesgcm");
    }
    let mut keys = Vec::new();
    let mut write_plain = None;
    for (i, provider) in providers.iter().enumerate() {
        let set = [
            provider.aesgcm.is_some(),
            provider.identity.is_some(),
            provider.aescbc.is_some(),
            provider.secretbox.is_some(),
            provider.kms.is_some(),
        ];
        if set.iter().filter(|s| **s).count() != 1 {
            bail!("[{i}]: expected exactly one of aesgcm or identity");
        }
        for (unsupported, given) in [
            ("aescbc", provider.aescbc.is_some()),
            ("secretbox", provider.secretbox.is_some()),
            ("kms", provider.kms.is_some()),
        ] {
            if given {
                bail!(
                    "[{i}].{unsupported}: not supported; use aesgcm (or identity to write plain)"
                );
            }
        }
        if provider.identity.is_some() {
            write_plain.get_or_insert(true);
        }
        if let Some(list) = &provider.aesgcm {
            write_plain.get_or_insert(false);
            if list.keys.is_empty() {
                bail!("[{i}].aesgcm.keys: expected at least one key");
            }
            for (k, key) in list.keys.iter().enumerate() {
                let secret = base64::engine::general_purpose::STANDARD
                    .decode(key.secret.trim())
                    .map_err(|e| {
                        anyhow::anyhow!("[{i}].aesgcm.keys[{k}].secret: expected base64: {e}")
                    })?;
                if keys.iter().any(|(name, _)| *name == key.name) {
                    bail!(
                        "[{i}].aesgcm.keys[{k}].name: {:?} is listed twice",
                        key.name
                    );
                }
                keys.push((key.name.clone(), secret));
            }
        }
    }
    Ok(Policy {
        keys,
        write_plain: write_plain.unwrap_or(true),
    })
}

/// The store key prefix of a resource as `EncryptionConfiguration` names
/// it: `secrets`, `widgets.example.org`, `*.example.org`, `*.` (the core
/// group) or `*.*` (everything).
fn storage_prefix(resource: &str) -> Result<String> {
    let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
    if plural.is_empty() || resource.chars().any(|c| c.is_whitespace() || c == '/') {
        bail!(
            "expected a resource such as \"secrets\" or \"widgets.example.org\", got {resource:?}"
        );
    }
    let group = if group.is_empty() { "core" } else { group };
    Ok(match (plural, group) {
        ("*", "*") => "/".to_string(),
        ("*", group) => format!("/{group}/"),
        (_, "*") => bail!("expected a resource such as \"secrets\", got {resource:?}: a wildcard group needs a wildcard resource"),
        (plural, group) => format!("/{group}/{plural}/"),
    })
}

/// The key file holds the keys to every Secret: say so when others can read it.
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                file = %path.display(),
                "the encryption key file can be read by users other than its owner; chmod 600 it"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K16: &str = "AAECAwQFBgcICQoLDA0ODw==";

    fn config(providers: &str) -> String {
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n{providers}"
        )
    }

    #[test]
    fn the_first_aesgcm_key_writes() {
        let sealer = parse(&config(&format!(
            "      - aesgcm:\n          keys:\n            - name: new\n              secret: {K32}\n            - name: old\n              secret: {K16}\n      - identity: {{}}\n"
        )))
        .expect("a valid file");
        assert_eq!(sealer.write_key(), Some("new"));
    }

    #[test]
    fn identity_first_writes_plain() {
        let sealer = parse(&config(&format!(
            "      - identity: {{}}\n      - aesgcm:\n          keys:\n            - name: old\n              secret: {K32}\n"
        )))
        .expect("a valid file");
        assert_eq!(sealer.write_key(), None);
    }

    #[test]
    fn resources_map_to_store_prefixes() {
        let cases = [
            ("secrets", "/core/secrets/"),
            ("widgets.example.org", "/example.org/widgets/"),
            ("*.example.org", "/example.org/"),
            ("*.", "/core/"),
            ("*.*", "/"),
        ];
        for (resource, want) in cases {
            assert_eq!(
                storage_prefix(resource).expect(resource),
                want,
                "{resource}"
            );
        }
        assert!(storage_prefix("secrets.*").is_err());
    }

    #[test]
    fn bad_files_name_the_field_and_what_was_expected() {
        let cases = [
            (
                "a provider Plinth does not serve is refused, not ignored",
                config(&format!("      - aescbc:\n          keys:\n            - name: a\n              secret: {K32}\n")),
                "[0].aescbc: not supported",
            ),
            (
                "a secret must be base64",
                config("      - aesgcm:\n          keys:\n            - name: a\n              secret: '!!'\n"),
                "aesgcm.keys[0].secret: expected base64",
            ),
            (
                "AES takes 16, 24 or 32 bytes",
                config("      - aesgcm:\n          keys:\n            - name: a\n              secret: AAEC\n"),
                "16, 24 or 32",
            ),
            (
                "a key name may be listed once",
                config(&format!("      - aesgcm:\n          keys:\n            - name: a\n              secret: {K32}\n            - name: a\n              secret: {K16}\n")),
                "keys[1].name: \"a\" is listed twice",
            ),
            (
                "the kind is checked",
                config("      - identity: {}\n").replace("kind: EncryptionConfiguration", "kind: Other"),
                "kind: expected \"EncryptionConfiguration\"",
            ),
            (
                "an empty provider list writes nothing",
                config("      []\n").replace("providers:\n      []", "providers: []"),
                "providers: expected at least one provider",
            ),
        ];
        for (reason, text, want) in cases {
            let err = match parse(&text) {
                Ok(_) => panic!("{reason}: accepted"),
                Err(e) => format!("{e:#}"),
            };
            assert!(err.contains(want), "{reason}: want {want:?} in {err:?}");
        }
    }
}
