use std::collections::BTreeMap;

/// Members are allowed everything, before RBAC is asked.
pub const SYSTEM_MASTERS: &str = "system:masters";
/// Every authenticated user is in it.
pub const SYSTEM_AUTHENTICATED: &str = "system:authenticated";
/// Anonymous requests are in it.
pub const SYSTEM_UNAUTHENTICATED: &str = "system:unauthenticated";
/// Every service account is in it.
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
/// What a service account's user name starts with.
pub const SERVICE_ACCOUNT_USER_PREFIX: &str = "system:serviceaccount:";

/// Who makes a request, as the authenticator established it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// `system:serviceaccount:NAMESPACE:NAME`.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USER_PREFIX}{namespace}:{name}")
}

/// The groups a service account's token authenticates into, the
/// authenticated group included.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        SERVICE_ACCOUNTS_GROUP.to_string(),
        format!("{SERVICE_ACCOUNTS_GROUP}:{namespace}"),
        SYSTEM_AUTHENTICATED.to_string(),
    ]
}

/// The (namespace, name) of a service account's user name, or `None` when
/// `user` is not one.
pub fn split_service_account_user(user: &str) -> Option<(&str, &str)> {
    let (namespace, name) = user
        .strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)?
        .split_once(':')?;
    if namespace.is_empty() || name.is_empty() || name.contains(':') {
        return None;
    }
    Some((namespace, name))
}
