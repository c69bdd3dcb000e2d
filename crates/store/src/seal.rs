//! Values encrypted at rest, in kube-apiserver's `aesgcm` envelope.
//!
//! A sealed value is stored as a BLOB:
//! `k8s:enc:aesgcm:v1:<key name>:` ‖ 12-byte random nonce ‖ ciphertext ‖ 16-byte tag,
//! with the storage key as the associated data, so a sealed value copied
//! under another key does not open. That is the layout kube-apiserver's
//! `aesgcm` provider writes to etcd. Plain values stay TEXT, so a store
//! written without a key opens under one, and `reseal` brings them under
//! the newest key.
//!
//! Only keys under the sealer's prefixes (the apiserver passes Secrets') are
//! sealed; the rest stay plain, since their content is what the operator
//! already reads with `plinth get`.

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::ToSql;

use crate::StoreError;

const ENVELOPE: &[u8] = b"k8s:enc:aesgcm:v1:";
const NONCE_LEN: usize = 12;

type Aes192Gcm = AesGcm<aes_gcm::aes::Aes192, U12>;

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes192(Box<Aes192Gcm>),
    Aes256(Box<Aes256Gcm>),
}

impl Cipher {
    fn new(secret: &[u8]) -> Option<Cipher> {
        Some(match secret.len() {
            16 => Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(secret).ok()?)),
            24 => Cipher::Aes192(Box::new(Aes192Gcm::new_from_slice(secret).ok()?)),
            32 => Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(secret).ok()?)),
            _ => return None,
        })
    }

    fn seal(&self, nonce: &[u8], payload: Payload<'_, '_>) -> Option<Vec<u8>> {
        let nonce = aes_gcm::Nonce::<U12>::from_slice(nonce);
        match self {
            Cipher::Aes128(c) => c.encrypt(nonce, payload).ok(),
            Cipher::Aes192(c) => c.encrypt(nonce, payload).ok(),
            Cipher::Aes256(c) => c.encrypt(nonce, payload).ok(),
        }
    }

    fn open(&self, nonce: &[u8], payload: Payload<'_, '_>) -> Option<Vec<u8>> {
        let nonce = aes_gcm::Nonce::<U12>::from_slice(nonce);
        match self {
            Cipher::Aes128(c) => c.decrypt(nonce, payload).ok(),
            Cipher::Aes192(c) => c.decrypt(nonce, payload).ok(),
            Cipher::Aes256(c) => c.decrypt(nonce, payload).ok(),
        }
    }
}

/// One named AES key, as an `aesgcm` provider lists it.
pub struct SealKey {
    name: String,
    cipher: Cipher,
}

impl SealKey {
    /// A key named `name` from its raw secret: 16, 24 or 32 bytes (AES-128, -192, -256).
    pub fn new(name: &str, secret: &[u8]) -> Result<SealKey, StoreError> {
        let invalid = |message: String| StoreError::InvalidKey {
            name: name.to_string(),
            message,
        };
        if name.is_empty() || name.contains(':') {
            return Err(invalid(
                "a key name must be non-empty and hold no ':'".into(),
            ));
        }
        let cipher = Cipher::new(secret).ok_or_else(|| {
            invalid(format!(
                "the secret is {} bytes; AES-GCM takes 16, 24 or 32",
                secret.len()
            ))
        })?;
        Ok(SealKey {
            name: name.to_string(),
            cipher,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Which keys the store seals and with what.
pub struct Sealer {
    prefixes: Vec<String>,
    keys: Vec<SealKey>,
    /// Writes stay plain (an `identity` provider listed first), while the
    /// keys still open what they sealed: the way to decrypt a store.
    write_plain: bool,
}

impl Sealer {
    /// Seals values under `prefixes` with the first of `keys`, or writes
    /// them plain when `write_plain`; every key opens what it sealed.
    pub fn new(
        prefixes: Vec<String>,
        keys: Vec<SealKey>,
        write_plain: bool,
    ) -> Result<Sealer, StoreError> {
        if keys.is_empty() && !write_plain {
            return Err(StoreError::InvalidKey {
                name: String::new(),
                message: "at least one key is needed to encrypt".into(),
            });
        }
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.name == key.name) {
                return Err(StoreError::InvalidKey {
                    name: key.name.clone(),
                    message: "the name is listed twice".into(),
                });
            }
        }
        Ok(Sealer {
            prefixes,
            keys,
            write_plain,
        })
    }

    /// The name of the key new writes are sealed with, if any.
    pub fn write_key(&self) -> Option<&str> {
        (!self.write_plain)
            .then(|| self.keys.first().map(SealKey::name))
            .flatten()
    }

    pub(crate) fn prefixes(&self) -> &[String] {
        &self.prefixes
    }

    fn applies(&self, key: &str) -> bool {
        self.prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }

    /// The stored form of `json` under `key`.
    pub(crate) fn seal<'a>(&self, key: &str, json: &'a str) -> Result<Stored<'a>, StoreError> {
        let write = match self.write_key_index() {
            Some(i) if self.applies(key) => &self.keys[i],
            _ => return Ok(Stored::Text(json)),
        };
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = write
            .cipher
            .seal(
                &nonce,
                Payload {
                    msg: json.as_bytes(),
                    aad: key.as_bytes(),
                },
            )
            .ok_or_else(|| StoreError::Encrypt {
                key: key.to_string(),
                message: format!("AES-GCM refused the value for key {}", write.name),
            })?;
        let mut out =
            Vec::with_capacity(ENVELOPE.len() + write.name.len() + 1 + NONCE_LEN + sealed.len());
        out.extend_from_slice(ENVELOPE);
        out.extend_from_slice(write.name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(Stored::Blob(out))
    }

    fn write_key_index(&self) -> Option<usize> {
        (!self.write_plain && !self.keys.is_empty()).then_some(0)
    }

    /// Whether `stored` under `key` is already in the form a write would give it now.
    pub(crate) fn is_current(&self, key: &str, stored: ValueRef<'_>) -> bool {
        match (self.write_key_index(), stored) {
            (Some(_), _) if !self.applies(key) => matches!(stored, ValueRef::Text(_)),
            (None, ValueRef::Text(_)) => true,
            (None, _) => false,
            (Some(i), ValueRef::Blob(bytes)) => {
                envelope_key(bytes).is_some_and(|(name, _)| name == self.keys[i].name.as_bytes())
            }
            (Some(_), _) => false,
        }
    }

    fn open_sealed(&self, key: &str, bytes: &[u8]) -> Result<String, StoreError> {
        let failed = |message: String| StoreError::Decrypt {
            key: key.to_string(),
            message,
        };
        let (name, rest) = envelope_key(bytes)
            .ok_or_else(|| failed("the value is binary but not an aesgcm envelope".into()))?;
        let name = String::from_utf8_lossy(name);
        let sealer = self.keys.iter().find(|k| k.name == name).ok_or_else(|| {
            failed(format!(
                "it is sealed with key {name:?}, which the encryption key file does not hold"
            ))
        })?;
        if rest.len() < NONCE_LEN {
            return Err(failed("the sealed value is truncated".into()));
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let plain = sealer
            .cipher
            .open(
                nonce,
                Payload {
                    msg: sealed,
                    aad: key.as_bytes(),
                },
            )
            .ok_or_else(|| {
                failed(format!(
                    "key {name:?} does not open it: the key's secret differs from the one that sealed it, or the value was altered"
                ))
            })?;
        String::from_utf8(plain).map_err(|_| failed("the opened value is not UTF-8".into()))
    }
}

/// The key name and the rest of a sealed value, if `bytes` is one.
fn envelope_key(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = bytes.strip_prefix(ENVELOPE)?;
    let colon = rest.iter().position(|&b| b == b':')?;
    Some((&rest[..colon], &rest[colon + 1..]))
}

/// The stored JSON of a value read from the database, opening it if sealed.
pub(crate) fn open(
    sealer: Option<&Sealer>,
    key: &str,
    stored: ValueRef<'_>,
) -> Result<String, StoreError> {
    match stored {
        ValueRef::Text(text) => String::from_utf8(text.to_vec()).map_err(|_| StoreError::Decrypt {
            key: key.to_string(),
            message: "the stored text is not UTF-8".into(),
        }),
        ValueRef::Blob(bytes) => match sealer {
            Some(sealer) => sealer.open_sealed(key, bytes),
            None => Err(StoreError::Decrypt {
                key: key.to_string(),
                message: match envelope_key(bytes) {
                    Some((name, _)) => format!(
                        "it is sealed with key {:?} and no encryption key file was given (--encryption-key-file)",
                        String::from_utf8_lossy(name)
                    ),
                    None => "the value is binary but not an aesgcm envelope".into(),
                },
            }),
        },
        other => Err(StoreError::Decrypt {
            key: key.to_string(),
            message: format!("the stored value is of SQLite type {}", other.data_type()),
        }),
    }
}

/// A value as it goes into the database: plain JSON text or a sealed blob.
pub(crate) enum Stored<'a> {
    Text(&'a str),
    Blob(Vec<u8>),
}

impl ToSql for Stored<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Stored::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Stored::Blob(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(keys: &[(&str, &[u8])], write_plain: bool) -> Sealer {
        let keys = keys
            .iter()
            .map(|(name, secret)| SealKey::new(name, secret).expect("valid key"))
            .collect();
        Sealer::new(vec!["/core/secrets/".into()], keys, write_plain).expect("valid sealer")
    }

    fn blob(stored: &Stored<'_>) -> Vec<u8> {
        match stored {
            Stored::Blob(b) => b.clone(),
            Stored::Text(t) => panic!("expected a sealed value, got text {t}"),
        }
    }

    const KEY: &str = "/core/secrets/default/db";

    #[test]
    fn sealed_values_open_with_their_key_only_under_their_storage_key() {
        let s = sealer(&[("k1", &[7; 32])], false);
        let sealed = blob(&s.seal(KEY, r#"{"data":{"p":"c2VjcmV0"}}"#).expect("seal"));
        assert!(
            sealed.starts_with(b"k8s:enc:aesgcm:v1:k1:"),
            "kube-apiserver's envelope"
        );
        assert!(
            !sealed.windows(8).any(|w| w == b"c2VjcmV0"),
            "no plaintext in the blob"
        );
        assert_eq!(
            open(Some(&s), KEY, ValueRef::Blob(&sealed)).expect("open"),
            r#"{"data":{"p":"c2VjcmV0"}}"#
        );
        let moved = open(
            Some(&s),
            "/core/secrets/default/other",
            ValueRef::Blob(&sealed),
        );
        assert!(moved.is_err(), "the storage key is the associated data");
        let without = open(None, KEY, ValueRef::Blob(&sealed))
            .unwrap_err()
            .to_string();
        assert!(
            without.contains("\"k1\"") && without.contains("--encryption-key-file"),
            "{without}"
        );
    }

    #[test]
    fn each_seal_draws_a_fresh_nonce() {
        let s = sealer(&[("k1", &[1; 16])], false);
        let a = blob(&s.seal(KEY, "{}").expect("seal"));
        let b = blob(&s.seal(KEY, "{}").expect("seal"));
        assert_ne!(a, b);
    }

    #[test]
    fn only_keys_under_the_prefixes_are_sealed() {
        let s = sealer(&[("k1", &[1; 24])], false);
        assert!(matches!(
            s.seal("/core/configmaps/default/x", "{}").expect("seal"),
            Stored::Text("{}")
        ));
    }

    #[test]
    fn rotation_opens_old_values_and_reports_them_stale() {
        let old = sealer(&[("k1", &[1; 32])], false);
        let sealed = blob(&old.seal(KEY, "{}").expect("seal"));
        let rotated = sealer(&[("k2", &[2; 32]), ("k1", &[1; 32])], false);
        assert_eq!(
            open(Some(&rotated), KEY, ValueRef::Blob(&sealed)).expect("open"),
            "{}"
        );
        assert!(!rotated.is_current(KEY, ValueRef::Blob(&sealed)));
        let resealed = blob(&rotated.seal(KEY, "{}").expect("seal"));
        assert!(rotated.is_current(KEY, ValueRef::Blob(&resealed)));
        assert!(
            !rotated.is_current(KEY, ValueRef::Text(b"{}")),
            "plain Secrets are stale"
        );
    }

    #[test]
    fn identity_first_writes_plain_and_still_opens() {
        let s = sealer(&[("k1", &[1; 32])], false);
        let sealed = blob(&s.seal(KEY, "{}").expect("seal"));
        let decrypting = sealer(&[("k1", &[1; 32])], true);
        assert!(matches!(
            decrypting.seal(KEY, "{}").expect("seal"),
            Stored::Text(_)
        ));
        assert_eq!(
            open(Some(&decrypting), KEY, ValueRef::Blob(&sealed)).expect("open"),
            "{}"
        );
        assert!(!decrypting.is_current(KEY, ValueRef::Blob(&sealed)));
    }

    #[test]
    fn a_wrong_or_altered_key_is_named() {
        let s = sealer(&[("k1", &[1; 32])], false);
        let mut sealed = blob(&s.seal(KEY, "{}").expect("seal"));
        let other = sealer(&[("k1", &[9; 32])], false);
        let err = open(Some(&other), KEY, ValueRef::Blob(&sealed))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not open it"), "{err}");
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(open(Some(&s), KEY, ValueRef::Blob(&sealed)).is_err());
    }

    #[test]
    fn keys_of_the_wrong_size_are_refused() {
        let err = SealKey::new("k1", &[0; 20])
            .err()
            .expect("refused")
            .to_string();
        assert!(
            err.contains("20 bytes") && err.contains("16, 24 or 32"),
            "{err}"
        );
    }
}
