//! The master password of a `DBInstance`, and the connection details that
//! carry it.
//!
//! The password is the one `masterPasswordSecretRef` names, or one derived
//! from the resource's secret seed, which the control plane keeps stable for
//! the resource's life: never stored, never lost, the same after a Create
//! whose result was lost, and untouched by a rotation of the AWS keys.
//! Instances Plinth made carry a keyed fingerprint of their password in a
//! tag, so a changed password is noticed and set, and an instance Plinth
//! did not make never gets a password reported that it does not have.

use aws_sdk_rds::types::DbInstance as Observed;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use provider_sdk::{ConnectionDetails, ProviderError, Request};

use super::spec::Desired;
use crate::tags;

/// The forProvider field holding a reference to the master password.
pub const PASSWORD_REF: &str = "masterPasswordSecretRef";

/// What a URI's user and password may hold as they are: RFC 3986's
/// unreserved characters; everything else is percent-encoded.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The password a resource's instance should have, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterPassword {
    /// From `masterPasswordSecretRef`: the user vouches for it.
    FromSecret(String),
    /// Derived from the resource's secret seed: only an instance Plinth
    /// made for this resource has it.
    Generated(String),
}

impl MasterPassword {
    pub fn of(req: &Request) -> Result<MasterPassword, ProviderError> {
        if let Some(password) = req.secret(PASSWORD_REF) {
            return Ok(MasterPassword::FromSecret(password.to_string()));
        }
        if req.field(PASSWORD_REF).is_some() {
            return Err(ProviderError::retryable(format!(
                "spec.forProvider.{PASSWORD_REF} was not resolved by the control plane; retrying"
            )));
        }
        // Hex, which every engine accepts (no `/`, `"`, `@` or spaces).
        req.derived_secret("rds master password")
            .map(MasterPassword::Generated)
            .ok_or_else(|| {
                ProviderError::terminal(format!(
                    "the control plane sent no secret seed to generate a master password from; set spec.forProvider.{PASSWORD_REF}"
                ))
            })
    }

    pub fn text(&self) -> &str {
        match self {
            MasterPassword::FromSecret(p) | MasterPassword::Generated(p) => p,
        }
    }

    /// The password the instance has, as far as Plinth can vouch for it.
    pub fn known_for(&self, made_by_us: bool) -> Option<&str> {
        match self {
            MasterPassword::FromSecret(p) => Some(p),
            MasterPassword::Generated(p) => made_by_us.then_some(p.as_str()),
        }
    }
}

/// A fingerprint of `password` keyed by the resource's secret seed: equal
/// for equal passwords, and useless for guessing one.
pub fn fingerprint(req: &Request, password: &str) -> Option<String> {
    req.derived_secret(&format!("rds master password fingerprint\n{password}"))
}

/// Whether this resource's Create made the instance (its UID tag says so).
pub fn made_by(db: &Observed, uid: &str) -> bool {
    recorded(db, tags::UID) == Some(uid)
}

/// The value of one of the provider's own tags on the instance.
pub fn recorded<'a>(db: &'a Observed, key: &str) -> Option<&'a str> {
    tags::find(
        db.tag_list()
            .iter()
            .filter_map(|t| Some((t.key()?, t.value().unwrap_or_default()))),
        key,
    )
}

pub fn connection(
    desired: &Desired,
    db: Option<&Observed>,
    password: Option<&str>,
) -> ConnectionDetails {
    let username = db
        .and_then(|d| d.master_username())
        .map(str::to_string)
        .unwrap_or_else(|| desired.username());
    let database = db
        .and_then(|d| d.db_name())
        .map(str::to_string)
        .unwrap_or_else(|| desired.database());
    let mut details = ConnectionDetails::new();
    details.insert("username".into(), username.clone().into_bytes());
    details.insert("database".into(), database.clone().into_bytes());
    if let Some(password) = password {
        details.insert("password".into(), password.as_bytes().to_vec());
    }
    let endpoint = db.and_then(|d| d.endpoint());
    if let (Some(host), Some(port)) = (
        endpoint.and_then(|e| e.address()),
        endpoint.and_then(|e| e.port()),
    ) {
        details.insert("host".into(), host.as_bytes().to_vec());
        details.insert("port".into(), port.to_string().into_bytes());
        let userinfo = match password {
            Some(p) => format!(
                "{}:{}",
                utf8_percent_encode(&username, USERINFO),
                utf8_percent_encode(p, USERINFO)
            ),
            None => utf8_percent_encode(&username, USERINFO).to_string(),
        };
        let uri = format!("{}://{userinfo}@{host}:{port}/{database}", desired.scheme());
        details.insert("uri".into(), uri.into_bytes());
        // libpq's keyword form, which Dapr's PostgreSQL state store reads;
        // RDS serves TLS, so it is required.
        if desired.scheme() == "postgresql" {
            let keywords = provider_sdk::connection::postgres_keywords(
                host,
                u16::try_from(port).unwrap_or(5432),
                &username,
                password,
                &database,
                Some("require"),
            );
            details.insert("connectionString".into(), keywords.into_bytes());
        }
    }
    details
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rds::spec::tests::{desired, observed};
    use aws_sdk_rds::types::Tag;
    use provider_sdk::serde_json::json;
    use std::sync::Arc;

    const CONNECTION_KEYS: [&str; 6] = super::super::CONNECTION_KEYS;

    fn request(
        seed: &[u8],
        secrets: &[(&str, &str)],
        for_provider: provider_sdk::serde_json::Value,
    ) -> Request {
        Request {
            name: "orders".into(),
            uid: "uid-1".into(),
            external_name: String::new(),
            for_provider,
            secrets: secrets
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            secret_seed: seed.to_vec(),
            config: Arc::default(),
        }
    }

    #[test]
    fn connection_details_name_the_endpoint() {
        let db = observed("db.t3.micro", 20, None);
        let spec = desired(json!({"engine": "postgres"}));
        let details = connection(&spec, Some(&db), Some("p@ss"));
        for key in CONNECTION_KEYS {
            assert!(details.contains_key(key), "{key}");
        }
        assert_eq!(
            String::from_utf8_lossy(&details["uri"]),
            "postgresql://postgres:p%40ss@orders.abc.rds.amazonaws.com:5432/postgres"
        );
        assert_eq!(
            String::from_utf8_lossy(&details["connectionString"]),
            "host=orders.abc.rds.amazonaws.com port=5432 user=postgres password=p@ss dbname=postgres sslmode=require"
        );
        // Before RDS assigns an endpoint there is no host to give.
        let early = connection(&spec, None, Some("x"));
        assert!(!early.contains_key("host"));
        assert_eq!(String::from_utf8_lossy(&early["username"]), "postgres");
    }

    #[test]
    fn generated_passwords_follow_the_seed_only() {
        let a = MasterPassword::of(&request(b"seed-a", &[], json!({}))).expect("generated");
        let again = MasterPassword::of(&request(b"seed-a", &[], json!({}))).expect("generated");
        let other = MasterPassword::of(&request(b"seed-b", &[], json!({}))).expect("generated");
        assert_eq!(a, again);
        assert_ne!(a, other);
        assert!(matches!(a, MasterPassword::Generated(ref p) if p.len() == 32));
        assert!(
            MasterPassword::of(&request(b"", &[], json!({}))).is_err(),
            "no seed, no password"
        );
        let chosen = MasterPassword::of(&request(
            b"seed-a",
            &[(PASSWORD_REF, "Chosen-1")],
            json!({PASSWORD_REF: {"namespace": "default", "name": "db", "key": "password"}}),
        ))
        .expect("from the Secret");
        assert_eq!(chosen, MasterPassword::FromSecret("Chosen-1".into()));
    }

    #[test]
    fn only_an_instance_made_for_the_resource_gets_a_generated_password() {
        let generated = MasterPassword::Generated("p".into());
        assert_eq!(generated.known_for(true), Some("p"));
        assert_eq!(
            generated.known_for(false),
            None,
            "an imported instance has its own password"
        );
        assert_eq!(
            MasterPassword::FromSecret("s".into()).known_for(false),
            Some("s")
        );
        let mut db = observed("db.t3.micro", 20, None);
        assert!(!made_by(&db, "uid-1"));
        db.tag_list
            .get_or_insert_with(Vec::new)
            .push(Tag::builder().key(tags::UID).value("uid-1").build());
        assert!(made_by(&db, "uid-1"));
        assert!(!made_by(&db, "uid-2"));
    }

    #[test]
    fn fingerprints_are_keyed_by_the_seed() {
        let req = request(b"seed-a", &[], json!({}));
        let print = fingerprint(&req, "p").expect("a fingerprint");
        assert_eq!(Some(print.clone()), fingerprint(&req, "p"));
        assert_ne!(Some(print.clone()), fingerprint(&req, "q"));
        assert_ne!(
            Some(print),
            fingerprint(&request(b"seed-b", &[], json!({})), "p")
        );
    }
}
