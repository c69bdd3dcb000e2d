//! Impersonation, as kube-apiserver's filter does it: a request carrying
//! `Impersonate-User` (and optionally `Impersonate-Group`, `Impersonate-Uid`
//! and `Impersonate-Extra-<key>`) is served as that user, once the caller
//! has been authorized to `impersonate` each of them. This is what
//! `kubectl --as` and `kubectl auth can-i --as` send.

use std::collections::BTreeMap;

use hyper::HeaderMap;

use crate::status::ApiError;
use crate::Api;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";

/// The API group of impersonated uids and extras.
const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

/// What the headers ask to be, before any check.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Requested {
    pub user: Option<String>,
    pub groups: Vec<String>,
    pub uid: Option<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Requested {
    /// Reads the impersonation headers; `None` when there are none.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Requested>, ApiError> {
        let text = |value: &hyper::header::HeaderValue, name: &str| {
            value
                .to_str()
                .map(str::to_string)
                .map_err(|_| ApiError::bad_request(format!("the {name} header is not valid text")))
        };
        let mut requested = Requested::default();
        let mut any = false;
        for (name, value) in headers {
            let name = name.as_str();
            if name == USER {
                requested.user = Some(text(value, "Impersonate-User")?);
            } else if name == GROUP {
                requested.groups.push(text(value, "Impersonate-Group")?);
            } else if name == UID {
                requested.uid = Some(text(value, "Impersonate-Uid")?);
            } else if let Some(key) = name.strip_prefix(EXTRA_PREFIX) {
                // The key is percent-encoded in the header name, as
                // client-go writes it; header names arrive lower-cased.
                let key = percent_encoding::percent_decode_str(key)
                    .decode_utf8()
                    .map_err(|_| {
                        ApiError::bad_request(format!(
                            "the header {name} does not name a UTF-8 extra key"
                        ))
                    })?
                    .into_owned();
                requested
                    .extra
                    .entry(key)
                    .or_default()
                    .push(text(value, name)?);
            } else {
                continue;
            }
            any = true;
        }
        if !any {
            return Ok(None);
        }
        if requested.user.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::bad_request(
                "requested impersonation of groups, a uid or extras without impersonating a user (Impersonate-User)",
            ));
        }
        Ok(Some(requested))
    }
}

/// One thing to impersonate, as RBAC sees it.
struct Target<'a> {
    namespace: &'a str,
    api_group: &'a str,
    resource: &'a str,
    subresource: &'a str,
    name: &'a str,
}

/// The user `caller` acts as, once it may impersonate everything asked.
pub fn impersonate(
    api: &Api,
    caller: &rbac::UserInfo,
    requested: Requested,
) -> Result<rbac::UserInfo, ApiError> {
    let Requested {
        user,
        mut groups,
        uid,
        extra,
    } = requested;
    let user = user.unwrap_or_default();
    let mut targets = Vec::new();
    let service_account = rbac::split_service_account_user(&user);
    match service_account {
        Some((namespace, name)) => targets.push(Target {
            namespace,
            api_group: "",
            resource: "serviceaccounts",
            subresource: "",
            name,
        }),
        None => targets.push(Target {
            namespace: "",
            api_group: "",
            resource: "users",
            subresource: "",
            name: &user,
        }),
    }
    for group in &groups {
        targets.push(Target {
            namespace: "",
            api_group: "",
            resource: "groups",
            subresource: "",
            name: group,
        });
    }
    if let Some(uid) = &uid {
        targets.push(Target {
            namespace: "",
            api_group: AUTHENTICATION_GROUP,
            resource: "uids",
            subresource: "",
            name: uid,
        });
    }
    for (key, values) in &extra {
        for value in values {
            targets.push(Target {
                namespace: "",
                api_group: AUTHENTICATION_GROUP,
                resource: "userextras",
                subresource: key,
                name: value,
            });
        }
    }
    for target in &targets {
        let attrs = rbac::Attributes {
            user: caller,
            verb: "impersonate",
            resource_request: true,
            namespace: target.namespace,
            api_group: target.api_group,
            api_version: "",
            resource: target.resource,
            subresource: target.subresource,
            name: target.name,
            path: "",
        };
        let decision = api.authz.authorize(api, &attrs);
        if !decision.allowed {
            return Err(crate::authz::forbidden(&attrs, &decision.reason));
        }
    }
    // As kube-apiserver: a service account asked for without groups gets
    // its own, and everyone but the anonymous user is authenticated.
    if let Some((namespace, _)) = service_account {
        if groups.is_empty() {
            groups = rbac::service_account_groups(namespace);
        }
    }
    if user != "system:anonymous"
        && !groups
            .iter()
            .any(|g| g == rbac::SYSTEM_AUTHENTICATED || g == rbac::SYSTEM_UNAUTHENTICATED)
    {
        groups.push(rbac::SYSTEM_AUTHENTICATED.to_string());
    }
    Ok(rbac::UserInfo {
        name: user,
        uid: uid.unwrap_or_default(),
        groups,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                hyper::header::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                value.parse().expect("value"),
            );
        }
        map
    }

    #[test]
    fn impersonation_headers_read_as_kubectl_sends_them() {
        // (reason, the request's headers, what is asked or a part of the error)
        type Case = (
            &'static str,
            HeaderMap,
            Result<Option<Requested>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            ("no headers, no impersonation", headers(&[]), Ok(None)),
            (
                "other headers are not impersonation",
                headers(&[("Authorization", "Bearer x")]),
                Ok(None),
            ),
            (
                "--as and two --as-group",
                headers(&[
                    ("Impersonate-User", "bob"),
                    ("Impersonate-Group", "a"),
                    ("Impersonate-Group", "b"),
                ]),
                Ok(Some(Requested {
                    user: Some("bob".into()),
                    groups: vec!["a".into(), "b".into()],
                    ..Requested::default()
                })),
            ),
            (
                "an extra's key is percent-decoded from the header name",
                headers(&[
                    ("Impersonate-User", "bob"),
                    ("Impersonate-Uid", "u-1"),
                    ("Impersonate-Extra-scopes%2Fview", "one"),
                    ("Impersonate-Extra-scopes%2Fview", "two"),
                ]),
                Ok(Some(Requested {
                    user: Some("bob".into()),
                    uid: Some("u-1".into()),
                    extra: BTreeMap::from([(
                        "scopes/view".to_string(),
                        vec!["one".to_string(), "two".to_string()],
                    )]),
                    ..Requested::default()
                })),
            ),
            (
                "groups without a user are refused, as kube-apiserver refuses them",
                headers(&[("Impersonate-Group", "system:masters")]),
                Err("without impersonating a user"),
            ),
            (
                "an empty user is no user",
                headers(&[("Impersonate-User", "")]),
                Err("without impersonating a user"),
            ),
        ];
        for (reason, headers, want) in cases {
            let got = Requested::from_headers(&headers).map_err(|e| e.message);
            match (want, got) {
                (Ok(want), Ok(got)) => pretty_assertions::assert_eq!(want, got, "{reason}"),
                (Err(want), Err(got)) => assert!(got.contains(want), "{reason}: {got}"),
                (want, got) => panic!("{reason}: want {want:?}, got {got:?}"),
            }
        }
    }
}
