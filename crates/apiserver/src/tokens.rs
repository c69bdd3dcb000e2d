//! Service-account tokens: JWTs signed by the server (ES256), minted by the
//! TokenRequest API (`kubectl create token`) and checked on every request
//! that carries one, with the claims kube-apiserver writes, so tools that
//! read them find what they expect.
//!
//! Tokens are bound to the ServiceAccount's UID: once the account is deleted
//! (or re-created) its old tokens stop working, as bound tokens do upstream.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The issuer and default audience, as in-cluster kube-apiserver uses.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// `TokenRequestSpec.expirationSeconds`' default.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    aud: Vec<String>,
    exp: i64,
    iat: i64,
    nbf: i64,
    iss: String,
    jti: String,
    sub: String,
    #[serde(rename = "kubernetes.io")]
    kubernetes: KubernetesClaims,
}

#[derive(Debug, Serialize, Deserialize)]
struct KubernetesClaims {
    namespace: String,
    serviceaccount: AccountRef,
}

#[derive(Debug, Serialize, Deserialize)]
struct AccountRef {
    name: String,
    uid: String,
}

/// The account a valid token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

/// Signs and checks tokens with the data directory's `sa.key`.
pub struct Signer {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Signer {
    pub fn new(private_pem: &str, public_pem: &str) -> Result<Signer, jsonwebtoken::errors::Error> {
        Ok(Signer {
            encoding: EncodingKey::from_ec_pem(private_pem.as_bytes())?,
            decoding: DecodingKey::from_ec_pem(public_pem.as_bytes())?,
        })
    }

    /// A token for `account`, valid from `now` for `seconds`, for `audiences`
    /// (the API server itself when empty).
    pub fn mint(
        &self,
        account: &Account,
        audiences: &[String],
        now: i64,
        seconds: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            aud: if audiences.is_empty() {
                vec![ISSUER.to_string()]
            } else {
                audiences.to_vec()
            },
            exp: now + seconds,
            iat: now,
            nbf: now,
            iss: ISSUER.to_string(),
            jti: uuid::Uuid::new_v4().to_string(),
            sub: rbac::service_account_user(&account.namespace, &account.name),
            kubernetes: KubernetesClaims {
                namespace: account.namespace.clone(),
                serviceaccount: AccountRef {
                    name: account.name.clone(),
                    uid: account.uid.clone(),
                },
            },
        };
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &self.encoding)
    }

    /// The account a token names, if its signature, issuer, audience and
    /// lifetime hold. No leeway: an expired token is refused the second it
    /// expires.
    pub fn verify(&self, token: &str) -> Result<Account, String> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    "service account token has expired".to_string()
                }
                _ => format!("invalid service account token: {e}"),
            },
        )?;
        let claims = data.claims;
        let account = Account {
            namespace: claims.kubernetes.namespace,
            name: claims.kubernetes.serviceaccount.name,
            uid: claims.kubernetes.serviceaccount.uid,
        };
        if claims.sub != rbac::service_account_user(&account.namespace, &account.name) {
            return Err("invalid service account token: subject and account differ".into());
        }
        Ok(account)
    }
}

/// True when a bearer credential is shaped like a JWT (three base64url parts).
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3 && token.starts_with("ey")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> Signer {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        Signer::new(&key.serialize_pem(), &key.public_key_pem()).unwrap()
    }

    fn account() -> Account {
        Account {
            namespace: "team-a".into(),
            name: "builder".into(),
            uid: "u-1".into(),
        }
    }

    #[test]
    fn a_fresh_token_names_its_account_and_an_expired_one_is_refused() {
        let signer = signer();
        let now = jiff::Timestamp::now().as_second();
        let token = signer.mint(&account(), &[], now, 600).unwrap();
        assert!(looks_like_jwt(&token));
        assert_eq!(signer.verify(&token).unwrap(), account());

        let expired = signer.mint(&account(), &[], now - 700, 600).unwrap();
        assert_eq!(
            signer.verify(&expired).unwrap_err(),
            "service account token has expired"
        );
    }

    #[test]
    fn tokens_for_other_audiences_or_signers_are_refused() {
        let signer = signer();
        let now = jiff::Timestamp::now().as_second();
        let vault = signer
            .mint(&account(), &["vault".to_string()], now, 600)
            .unwrap();
        assert!(signer.verify(&vault).unwrap_err().contains("invalid"));
        let other = super::tests::signer()
            .mint(&account(), &[], now, 600)
            .unwrap();
        assert!(signer.verify(&other).unwrap_err().contains("invalid"));
    }
}
