//! Who sent a request, in the order kube-apiserver asks: a client
//! certificate signed by Plinth's CA (CN is the user, O the groups), then a
//! bearer token (the admin's, a user's from `plinth user add`, or a
//! service-account JWT). Requests from the embedding process act as the
//! controllers' own service account, bound to the same rules on a cluster.

use std::sync::Arc;

use rbac::UserInfo;

use crate::status::ApiError;
use crate::tokens::{self, Signer};
use crate::users::Directory;
use crate::Api;

/// The admin's user name; its group `system:masters` may do anything.
pub const ADMIN_USER: &str = "plinth-admin";

/// The namespace and name of the service account the embedding process's
/// controllers act as: the account the deploy manifests bind on a cluster.
pub const CONTROLLER_NAMESPACE: &str = "plinth-system";
pub const CONTROLLER_ACCOUNT: &str = "plinth-controller";

/// What a client certificate says, read once per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateIdentity {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub serial_hex: String,
}

impl CertificateIdentity {
    /// Reads the subject and serial of a DER certificate rustls has already
    /// verified against the CA.
    pub fn from_der(der: &[u8]) -> Option<CertificateIdentity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let common_name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())?
            .to_string();
        let organizations = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(String::from))
            .collect();
        Some(CertificateIdentity {
            common_name,
            organizations,
            serial_hex: hex::encode(cert.raw_serial()),
        })
    }
}

/// Checks credentials against the admin token, the user registry and the
/// service-account signing key.
pub struct Authenticator {
    admin_token: String,
    users: Directory,
    signer: Signer,
    controller: Arc<UserInfo>,
}

impl Authenticator {
    pub(crate) fn new(admin_token: String, users: Directory, signer: Signer) -> Authenticator {
        Authenticator {
            admin_token,
            users,
            signer,
            controller: Arc::new(service_account(
                CONTROLLER_NAMESPACE,
                CONTROLLER_ACCOUNT,
                "",
            )),
        }
    }

    pub(crate) fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The identity of the embedding process's own requests.
    pub(crate) fn controller(&self) -> Arc<UserInfo> {
        self.controller.clone()
    }

    /// The user behind a remote request, or 401.
    pub(crate) fn authenticate(
        &self,
        api: &Api,
        certificate: Option<&CertificateIdentity>,
        authorization: Option<&str>,
    ) -> Result<UserInfo, ApiError> {
        if let Some(cert) = certificate {
            if let Some(user) = self
                .users
                .by_certificate(&cert.common_name, &cert.serial_hex)
            {
                let mut groups = cert.organizations.clone();
                groups.push(rbac::SYSTEM_AUTHENTICATED.to_string());
                return Ok(UserInfo {
                    name: user.name,
                    groups,
                    ..UserInfo::default()
                });
            }
            // A certificate of a removed user: fall through to the token,
            // and fail as unauthenticated if there is none.
        }
        let Some(token) = authorization.and_then(bearer) else {
            return Err(ApiError::unauthorized());
        };
        if crate::server::constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            return Ok(UserInfo {
                name: ADMIN_USER.to_string(),
                groups: vec![
                    rbac::SYSTEM_MASTERS.to_string(),
                    rbac::SYSTEM_AUTHENTICATED.to_string(),
                ],
                ..UserInfo::default()
            });
        }
        if tokens::looks_like_jwt(token) {
            let account = self.signer.verify(token).map_err(unauthorized)?;
            // Bound to the account's UID: a deleted account's tokens die with it.
            let accounts = crate::builtin::Builtin::ServiceAccount.resource();
            let key = accounts.key(Some(&account.namespace), &account.name);
            let live = api
                .store
                .get(&key)
                .is_some_and(|record| *record.meta.uid == *account.uid);
            if !live {
                return Err(unauthorized(format!(
                    "service account {}/{} has been deleted",
                    account.namespace, account.name
                )));
            }
            return Ok(service_account(
                &account.namespace,
                &account.name,
                &account.uid,
            ));
        }
        if let Some(user) = self.users.by_token(token) {
            let mut groups = user.groups;
            groups.push(rbac::SYSTEM_AUTHENTICATED.to_string());
            return Ok(UserInfo {
                name: user.name,
                groups,
                ..UserInfo::default()
            });
        }
        Err(ApiError::unauthorized())
    }
}

fn unauthorized(why: String) -> ApiError {
    tracing::debug!(reason = %why, "refused a bearer token");
    ApiError::unauthorized()
}

fn bearer(header: &str) -> Option<&str> {
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
}

/// A service account's identity, with the groups kube-apiserver gives it.
pub fn service_account(namespace: &str, name: &str, uid: &str) -> UserInfo {
    UserInfo {
        name: rbac::service_account_user(namespace, name),
        uid: uid.to_string(),
        groups: rbac::service_account_groups(namespace),
        ..UserInfo::default()
    }
}
