//! Users of the embedded API server besides the admin: a bearer token and a
//! client certificate each, issued by `plinth user add` and revoked by
//! `plinth user remove`.
//!
//! The registry is `users.json` in the data directory (mode 0600). It holds
//! no secret: only the SHA-256 of each token and the serial of each
//! certificate, so a copy of the file lets nobody in. The server re-reads it
//! when it changes, so users can be added and removed while it serves.
//!
//! kube-apiserver never revokes a client certificate; here a certificate is
//! accepted only while its user is listed with that certificate's serial,
//! so removing (or re-adding) a user ends its old credentials at once.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use base64::Engine;
use rcgen::{CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::pki;

/// File name of the registry inside the data directory.
pub const USERS_FILE: &str = "users.json";

/// How long a user's client certificate is valid.
const CERTIFICATE_DAYS: i64 = 365;

/// One user as the registry keeps it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    pub name: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// Hex SHA-256 of the bearer token.
    pub token_sha256: String,
    /// Hex serial of the client certificate.
    pub certificate_serial: String,
    /// The namespace the user's kubeconfig starts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Registry {
    #[serde(default)]
    users: Vec<UserRecord>,
}

/// Credentials just issued; shown once, never stored.
pub struct Issued {
    pub record: UserRecord,
    pub token: String,
    pub certificate_pem: String,
    pub key_pem: String,
}

/// Checks a user name: kube-apiserver takes any string, but names under
/// `system:` are the server's own, and a name must survive a kubeconfig.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 253 {
        bail!("user name {name:?}: expected 1 to 253 characters");
    }
    if name.starts_with("system:") {
        bail!("user name {name:?}: names starting with \"system:\" are reserved for the server's own identities");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@')))
    {
        bail!("user name {name:?}: expected letters, digits, '.', '-', '_' or '@', found {c:?}");
    }
    Ok(())
}

fn check_group(group: &str) -> Result<()> {
    if group.is_empty() || group.chars().any(|c| c.is_control() || c == ',') {
        bail!("group {group:?}: expected a non-empty name without control characters or commas");
    }
    Ok(())
}

fn registry_path(dir: &Path) -> PathBuf {
    dir.join(USERS_FILE)
}

fn load(dir: &Path) -> Result<Registry> {
    let path = registry_path(dir);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("cannot parse {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Registry::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn save(dir: &Path, registry: &Registry) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(registry).context("cannot encode the user registry")?;
    pki::write_private(&registry_path(dir), &bytes)
}

/// Issues a user new credentials (replacing any it had) and records them.
pub fn add(dir: &Path, name: &str, groups: &[String], namespace: Option<&str>) -> Result<Issued> {
    check_name(name)?;
    for group in groups {
        check_group(group)?;
    }
    let ca_key = pki::load_ca_key(dir)?;
    let mut token_bytes = [0u8; 32];
    rand::fill(&mut token_bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token_bytes);
    let mut serial = [0u8; 16];
    rand::fill(&mut serial);
    // A positive serial: the top bit clear, as RFC 5280 asks.
    serial[0] &= 0x7f;

    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    for group in groups {
        dn.push(DnType::OrganizationName, group.as_str());
    }
    params.distinguished_name = dn;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = jiff::Timestamp::now();
    // A day early, so a client whose clock is a little behind is not refused.
    let (y, m, d) = day_of(now - jiff::SignedDuration::from_hours(24));
    params.not_before = rcgen::date_time_ymd(y, m, d);
    let (y, m, d) = day_of(now + jiff::SignedDuration::from_hours(24 * CERTIFICATE_DAYS));
    params.not_after = rcgen::date_time_ymd(y, m, d);
    let key = KeyPair::generate().context("cannot generate the user's key")?;
    let issuer = rcgen::Issuer::new(pki::ca_params(), ca_key);
    let cert = params
        .signed_by(&key, &issuer)
        .context("cannot sign the user's certificate")?;

    let record = UserRecord {
        name: name.to_string(),
        groups: groups.to_vec(),
        token_sha256: token_digest(&token),
        certificate_serial: hex::encode(serial),
        namespace: namespace.map(String::from),
    };
    let mut registry = load(dir)?;
    registry.users.retain(|u| u.name != name);
    registry.users.push(record.clone());
    registry.users.sort_by(|a, b| a.name.cmp(&b.name));
    save(dir, &registry)?;
    Ok(Issued {
        record,
        token,
        certificate_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The UTC calendar day `ts` falls on, as rcgen's `date_time_ymd` takes it.
fn day_of(ts: jiff::Timestamp) -> (i32, u8, u8) {
    let date = ts.to_zoned(jiff::tz::TimeZone::UTC).date();
    (date.year().into(), date.month() as u8, date.day() as u8)
}

/// Revokes a user's credentials; false when there was no such user.
pub fn remove(dir: &Path, name: &str) -> Result<bool> {
    let mut registry = load(dir)?;
    let before = registry.users.len();
    registry.users.retain(|u| u.name != name);
    if registry.users.len() == before {
        return Ok(false);
    }
    save(dir, &registry)?;
    Ok(true)
}

/// Every registered user.
pub fn list(dir: &Path) -> Result<Vec<UserRecord>> {
    Ok(load(dir)?.users)
}

fn token_digest(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

/// Which way a user's kubeconfig authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeconfigAuth {
    Token,
    Certificate,
}

/// A kubeconfig for a user just issued, against the server at `server`.
pub fn kubeconfig(server: &str, ca_pem: &str, issued: &Issued, auth: KubeconfigAuth) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let name = &issued.record.name;
    let namespace = issued.record.namespace.as_deref().unwrap_or("default");
    let user = match auth {
        KubeconfigAuth::Token => format!("    token: {}\n", issued.token),
        KubeconfigAuth::Certificate => format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(&issued.certificate_pem),
            b64(&issued.key_pem)
        ),
    };
    crate::pki::render_kubeconfig(
        server,
        ca_pem,
        name,
        &format!("{name}@plinth"),
        namespace,
        &user,
    )
}

/// A file's modification time and length: when either changes, re-read it.
type Stamp = Option<(SystemTime, u64)>;

/// The registry as the server reads it: re-read whenever the file changes.
pub(crate) struct Directory {
    path: PathBuf,
    /// The file's modification time and length when last read, and what it
    /// held; a stat per lookup is cheap next to a request.
    cache: Mutex<(Stamp, Arc<Vec<UserRecord>>)>,
}

impl Directory {
    pub(crate) fn new(dir: &Path) -> Directory {
        Directory {
            path: registry_path(dir),
            cache: Mutex::new((None, Arc::new(Vec::new()))),
        }
    }

    fn users(&self) -> Arc<Vec<UserRecord>> {
        let stamp = fs::metadata(&self.path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        let mut cache = match self.cache.lock() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        if cache.0 != stamp {
            let users = match stamp {
                None => Vec::new(),
                Some(_) => match fs::read(&self.path)
                    .map_err(anyhow::Error::from)
                    .and_then(|b| Ok(serde_json::from_slice::<Registry>(&b)?))
                {
                    Ok(registry) => registry.users,
                    Err(err) => {
                        // Keep serving the users last read rather than
                        // locking everyone out over a half-edited file.
                        tracing::warn!(path = %self.path.display(), error = %err, "cannot read the user registry; keeping the users last read");
                        return cache.1.clone();
                    }
                },
            };
            *cache = (stamp, Arc::new(users));
        }
        cache.1.clone()
    }

    /// The user a bearer token belongs to.
    pub(crate) fn by_token(&self, token: &str) -> Option<UserRecord> {
        let digest = token_digest(token);
        self.users()
            .iter()
            .find(|u| crate::server::constant_time_eq(u.token_sha256.as_bytes(), digest.as_bytes()))
            .cloned()
    }

    /// The user a client certificate (CN and serial) belongs to.
    pub(crate) fn by_certificate(&self, name: &str, serial_hex: &str) -> Option<UserRecord> {
        self.users()
            .iter()
            .find(|u| u.name == name && u.certificate_serial.eq_ignore_ascii_case(serial_hex))
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_under_system_and_odd_characters_are_refused() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("alice@example.com").is_ok());
        let err = check_name("system:admin").unwrap_err().to_string();
        assert!(err.contains("reserved"), "{err}");
        let err = check_name("a b").unwrap_err().to_string();
        assert!(err.contains("found ' '"), "{err}");
    }
}
