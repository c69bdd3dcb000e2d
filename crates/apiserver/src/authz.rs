//! Authorization: Kubernetes RBAC over the Roles and bindings in the store,
//! asked on every request, and the escalation check on RBAC writes.
//!
//! The policy is a snapshot (`rbac::Policy`) rebuilt lazily after any RBAC
//! write, so a binding takes effect for the very next request. ClusterRoles
//! with an `aggregationRule` are evaluated with their aggregated rules at
//! once; the aggregated rules are also written back into the objects, as
//! kube-controller-manager's aggregation controller does, so that
//! `kubectl get clusterrole edit -o yaml` shows them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rbac::{Attributes, Decision, Policy, PolicyRule, UserInfo};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::builtin::{Builtin, RBAC_GROUP};
use crate::request::{ResourcePath, Route};
use crate::status::{qualified, reason, ApiError, Subject};
use crate::Api;

/// Who decides: RBAC, or (for embedding processes that bring their own
/// gatekeeping, and for benchmarks of the bare server) everyone may do anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Rbac,
    AlwaysAllow,
}

/// The manager the aggregation write-back records its writes under.
const AGGREGATION_MANAGER: &str = "clusterrole-aggregation-controller";

pub struct Authorizer {
    mode: Mode,
    /// The snapshot, and the count of RBAC writes it was built after.
    policy: RwLock<(u64, Arc<Policy>)>,
    /// Counts RBAC writes; a snapshot older than this count is rebuilt
    /// before the next decision, so a binding holds for the very next request.
    writes: AtomicU64,
    /// Held while rebuilding, so that a request racing a rebuild waits for
    /// it rather than deciding on the snapshot from before the write.
    rebuilding: Mutex<()>,
    /// Wakes the aggregation write-back after a rebuild.
    rebuilt: Notify,
}

impl Authorizer {
    pub fn new(mode: Mode) -> Authorizer {
        Authorizer {
            mode,
            policy: RwLock::new((0, Arc::new(Policy::new(&[], &[], &[], &[])))),
            writes: AtomicU64::new(1),
            rebuilding: Mutex::new(()),
            rebuilt: Notify::new(),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Called after every write to an RBAC kind.
    pub fn invalidate(&self) {
        self.writes.fetch_add(1, Ordering::AcqRel);
    }

    fn current(&self) -> (u64, Arc<Policy>) {
        match self.policy.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The current snapshot, rebuilt first if an RBAC write made it stale.
    pub fn policy(&self, api: &Api) -> Arc<Policy> {
        let (built_after, policy) = self.current();
        if built_after >= self.writes.load(Ordering::Acquire) {
            return policy;
        }
        let _rebuilding = match self.rebuilding.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Someone else may have rebuilt while this request waited.
        let (built_after, policy) = self.current();
        let writes = self.writes.load(Ordering::Acquire);
        if built_after >= writes {
            return policy;
        }
        let policy = Arc::new(build(api));
        for problem in policy.problems() {
            tracing::warn!(problem = %problem, "RBAC object not understood; it grants nothing");
        }
        match self.policy.write() {
            Ok(mut current) => *current = (writes, policy.clone()),
            Err(poisoned) => *poisoned.into_inner() = (writes, policy.clone()),
        }
        self.rebuilt.notify_one();
        policy
    }

    pub fn authorize(&self, api: &Api, attrs: &Attributes) -> Decision {
        if self.mode == Mode::AlwaysAllow {
            return Decision {
                allowed: true,
                reason: String::new(),
            };
        }
        self.policy(api).authorize(attrs)
    }
}

fn build(api: &Api) -> Policy {
    let list = |kind: Builtin| -> Vec<Value> {
        let res = kind.resource();
        api.store
            .list(&res.key_prefix(None), None, 0, &|_| true)
            .items
            .iter()
            .filter_map(|record| record.value().ok())
            .collect()
    };
    Policy::new(
        &list(Builtin::Role),
        &list(Builtin::ClusterRole),
        &list(Builtin::RoleBinding),
        &list(Builtin::ClusterRoleBinding),
    )
}

/// What a request asks, as RBAC sees it. `None` for requests everyone may
/// make (health and version, which need no credentials either).
pub struct RequestAttributes {
    pub verb: String,
    pub resource_request: bool,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    pub path: String,
}

impl RequestAttributes {
    pub fn of(
        route: &Route,
        method: &hyper::Method,
        path: &str,
        watching: bool,
        field_selector: Option<&str>,
    ) -> RequestAttributes {
        match route {
            Route::Resource(p) => resource_attributes(p, method, watching, field_selector),
            _ => RequestAttributes {
                verb: method.as_str().to_ascii_lowercase(),
                resource_request: false,
                namespace: String::new(),
                api_group: String::new(),
                api_version: String::new(),
                resource: String::new(),
                subresource: String::new(),
                name: String::new(),
                path: path.to_string(),
            },
        }
    }

    pub fn as_rbac<'a>(&'a self, user: &'a UserInfo) -> Attributes<'a> {
        Attributes {
            user,
            verb: &self.verb,
            resource_request: self.resource_request,
            namespace: &self.namespace,
            api_group: &self.api_group,
            api_version: &self.api_version,
            resource: &self.resource,
            subresource: &self.subresource,
            name: &self.name,
            path: &self.path,
        }
    }
}

fn resource_attributes(
    p: &ResourcePath,
    method: &hyper::Method,
    watching: bool,
    field_selector: Option<&str>,
) -> RequestAttributes {
    use hyper::Method;
    let named = p.name.is_some();
    let verb = match *method {
        Method::GET | Method::HEAD if watching || p.legacy_watch => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    };
    // As kube-apiserver's RequestInfo: a namespace object is in itself.
    let namespace = match (&p.namespace, p.plural.as_str(), &p.name) {
        (Some(ns), _, _) => ns.clone(),
        (None, "namespaces", Some(name)) if p.group.is_empty() => name.clone(),
        _ => String::new(),
    };
    // As kube-apiserver's RequestInfo: a list or watch of one name
    // (`kubectl get pod X -w` asks that way) is authorized for that name,
    // so a rule with resourceNames allows it.
    let name = match &p.name {
        Some(name) => name.clone(),
        None if verb == "list" || verb == "watch" => field_selector
            .and_then(|s| apimachinery::selector::FieldSelector::parse(s).ok())
            .and_then(|s| s.exact("metadata.name").map(str::to_string))
            .filter(|name| is_path_segment(name))
            .unwrap_or_default(),
        None => String::new(),
    };
    RequestAttributes {
        verb: verb.to_string(),
        resource_request: true,
        namespace,
        api_group: p.group.clone(),
        api_version: p.version.clone(),
        resource: p.plural.clone(),
        subresource: p.subresource.clone().unwrap_or_default(),
        name,
        path: String::new(),
    }
}

/// apimachinery's IsValidPathSegmentName: what could not be a name in a
/// path is not taken as one from a selector either.
fn is_path_segment(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%'])
}

/// kube-apiserver's 403 for a denied request.
pub fn forbidden(attrs: &Attributes, decision_reason: &str) -> ApiError {
    let mut message = rbac::forbidden_message(attrs);
    if !decision_reason.is_empty() {
        message = format!("{message}: {decision_reason}");
    }
    if !attrs.resource_request {
        return ApiError::new(403, reason::FORBIDDEN, message);
    }
    let resource = if attrs.subresource.is_empty() {
        attrs.resource.to_string()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let what = qualified(&resource, attrs.api_group);
    let full = if attrs.name.is_empty() {
        format!("{what} is forbidden: {message}")
    } else {
        format!("{what} {:?} is forbidden: {message}", attrs.name)
    };
    ApiError {
        subject: Some(Box::new(Subject {
            group: attrs.api_group.to_string(),
            kind: attrs.resource.to_string(),
            name: attrs.name.to_string(),
        })),
        ..ApiError::new(403, reason::FORBIDDEN, full)
    }
}

/// Refuses a Role, ClusterRole or binding that would grant `user` more than
/// it holds, unless it may `escalate` (roles) or `bind` (bindings), as
/// kube-apiserver's RBAC storage does.
pub fn check_escalation(
    api: &Api,
    user: &UserInfo,
    kind: Builtin,
    obj: &Value,
) -> Result<(), ApiError> {
    if api.authz.mode() == Mode::AlwaysAllow
        || user.groups.iter().any(|g| g == rbac::SYSTEM_MASTERS)
    {
        return Ok(());
    }
    let policy = api.authz.policy(api);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let resource = kind.resource();
    let allowed_by = |verb: &str, res: &str, res_name: &str| {
        policy
            .authorize(&Attributes {
                user,
                verb,
                resource_request: true,
                namespace,
                api_group: RBAC_GROUP,
                api_version: "v1",
                resource: res,
                subresource: "",
                name: res_name,
                path: "",
            })
            .allowed
    };
    let granted: Vec<PolicyRule> = match kind {
        Builtin::Role | Builtin::ClusterRole => {
            if allowed_by("escalate", &resource.plural, name) {
                return Ok(());
            }
            let rules: Vec<PolicyRule> = obj
                .get("rules")
                .cloned()
                .and_then(|r| serde_json::from_value(r).ok())
                .unwrap_or_default();
            if kind == Builtin::ClusterRole && obj.get("aggregationRule").is_some() {
                // Aggregated rules are the controller's to write; what the
                // role will grant is decided by the roles it selects, which
                // their own writes were checked for.
                Vec::new()
            } else {
                rules
            }
        }
        Builtin::RoleBinding | Builtin::ClusterRoleBinding => {
            let role_kind = obj
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or("");
            let role_name = obj
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let role_plural = if role_kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            if allowed_by("bind", role_plural, role_name) {
                return Ok(());
            }
            let rules = if role_kind == "Role" {
                policy.role_rules(namespace, role_name)
            } else {
                policy.cluster_role_rules(role_name)
            };
            match rules {
                Some(rules) => rules.to_vec(),
                None => {
                    return Err(escalation_error(
                        &resource.plural,
                        name,
                        user,
                        &format!(
                        "{role_kind} {role_name:?} not found, so what it grants cannot be checked"
                    ),
                    ))
                }
            }
        }
        _ => return Ok(()),
    };
    let held = policy.rules_for(user, namespace);
    let mut owner = held.resource_rules;
    owner.extend(held.non_resource_rules);
    match rbac::covers(&owner, &granted) {
        Ok(()) => Ok(()),
        Err(missing) => {
            let listed: Vec<String> = missing.iter().map(describe_rule).collect();
            Err(escalation_error(
                &resource.plural,
                name,
                user,
                &format!(
                    "user {:?} (groups={:?}) is attempting to grant RBAC permissions not currently held:\n{}",
                    user.name,
                    user.groups,
                    listed.join("\n")
                ),
            ))
        }
    }
}

fn escalation_error(plural: &str, name: &str, _user: &UserInfo, why: &str) -> ApiError {
    ApiError {
        subject: Some(Box::new(Subject {
            group: RBAC_GROUP.to_string(),
            kind: plural.to_string(),
            name: name.to_string(),
        })),
        ..ApiError::new(
            403,
            reason::FORBIDDEN,
            format!(
                "{} {name:?} is forbidden: {why}",
                qualified(plural, RBAC_GROUP)
            ),
        )
    }
}

/// A rule the way upstream prints one in escalation errors.
fn describe_rule(rule: &PolicyRule) -> String {
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
        format!("[{}]", quoted.join(" "))
    };
    let mut parts = Vec::new();
    if !rule.api_groups.is_empty() {
        parts.push(format!("APIGroups:{}", list(&rule.api_groups)));
    }
    if !rule.resources.is_empty() {
        parts.push(format!("Resources:{}", list(&rule.resources)));
    }
    if !rule.resource_names.is_empty() {
        parts.push(format!("ResourceNames:{}", list(&rule.resource_names)));
    }
    if !rule.non_resource_urls.is_empty() {
        parts.push(format!("NonResourceURLs:{}", list(&rule.non_resource_urls)));
    }
    parts.push(format!("Verbs:{}", list(&rule.verbs)));
    format!("{{{}}}", parts.join(", "))
}

/// Creates the default roles and bindings, and the embedding process's own,
/// when absent; re-writes those that say `autoupdate: "true"` when they
/// drifted from what this version ships, as kube-apiserver does on start.
pub async fn bootstrap(api: &Api, extra: &[Value]) -> Result<(), ApiError> {
    let mut objects = rbac::defaults::cluster_roles();
    objects.extend(rbac::defaults::cluster_role_bindings());
    objects.extend(extra.iter().cloned());
    for obj in objects {
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        let Some(builtin) = Builtin::ALL
            .into_iter()
            .find(|b| b.is_rbac() && b.kind() == kind)
        else {
            return Err(ApiError::bad_request(format!(
                "cannot bootstrap RBAC: kind {kind:?} is not an RBAC kind"
            )));
        };
        let res = Arc::new(builtin.resource());
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let namespace = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .map(String::from);
        let opts = crate::lifecycle::WriteOptions::system("plinth-rbac-bootstrap");
        match api.store.get(&res.key(namespace.as_deref(), &name)) {
            None => {
                crate::lifecycle::create(api, &res, namespace.as_deref(), obj, &opts).await?;
            }
            Some(record) => {
                let current = record.value()?;
                let autoupdate = current
                    .pointer("/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate")
                    .and_then(Value::as_str)
                    != Some("false");
                let fields = ["rules", "aggregationRule", "subjects"];
                let drifted = fields.iter().any(|f| {
                    // Aggregated rules are the write-back's, not drift.
                    !(*f == "rules" && obj.get("aggregationRule").is_some())
                        && current.get(*f) != obj.get(*f)
                });
                if autoupdate && drifted {
                    let mut desired = current.clone();
                    for f in fields {
                        if *f == *"rules" && obj.get("aggregationRule").is_some() {
                            continue;
                        }
                        match obj.get(f) {
                            Some(v) => desired[f] = v.clone(),
                            None => {
                                if let Some(m) = desired.as_object_mut() {
                                    m.remove(f);
                                }
                            }
                        }
                    }
                    crate::lifecycle::update(
                        api,
                        &res,
                        namespace.as_deref(),
                        &name,
                        desired,
                        crate::lifecycle::Part::Main,
                        &opts,
                    )
                    .await?;
                }
            }
        }
    }
    api.authz.invalidate();
    Ok(())
}

/// Writes aggregated rules back into their ClusterRoles whenever the policy
/// is rebuilt, until the server stops.
pub async fn run_aggregation(api: Arc<Api>, mut stopped: watch::Receiver<bool>) {
    let res = Arc::new(Builtin::ClusterRole.resource());
    // Immediate passes in a row; bounded so that rules which never settle
    // (a bug) cost a pass per wake-up, not a busy loop.
    let mut passes = 0;
    loop {
        let policy = api.authz.policy(&api);
        let mut wrote = false;
        for (name, rules) in policy.stale_aggregations() {
            let Some(record) = api.store.get(&res.key(None, &name)) else {
                continue;
            };
            let Ok(mut obj) = record.value() else {
                continue;
            };
            obj["rules"] = json!(rules);
            let opts = crate::lifecycle::WriteOptions::system(AGGREGATION_MANAGER);
            match crate::lifecycle::update(
                api.as_ref(),
                &res,
                None,
                &name,
                obj,
                crate::lifecycle::Part::Main,
                &opts,
            )
            .await
            {
                Ok(_) => wrote = true,
                // A conflict means someone wrote it meanwhile; the next rebuild retries.
                Err(err) => {
                    tracing::debug!(clusterrole = %name, error = %err, "cannot write aggregated rules yet")
                }
            }
        }
        passes += 1;
        if wrote && passes < 10 {
            // Rebuild now: what was written may select or feed other roles.
            continue;
        }
        passes = 0;
        tokio::select! {
            _ = api.authz.rebuilt.notified() => {}
            // A rebuild that happened while no one waited, or a lost conflict.
            _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
            _ = stopped.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::route;
    use hyper::Method;

    #[test]
    fn request_attributes_as_kube_apiserver_derives_them() {
        // (reason, method, path, watch, fieldSelector, want verb, want name)
        type Case = (
            &'static str,
            Method,
            &'static str,
            bool,
            Option<&'static str>,
            &'static str,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                "a GET of a name is a get of it",
                Method::GET,
                "/api/v1/namespaces/a/secrets/s",
                false,
                None,
                "get",
                "s",
            ),
            (
                "a GET of the collection is a list of no name",
                Method::GET,
                "/api/v1/namespaces/a/secrets",
                false,
                None,
                "list",
                "",
            ),
            (
                "a list of one name by field selector is authorized for that name",
                Method::GET,
                "/api/v1/namespaces/a/secrets",
                false,
                Some("metadata.name=s"),
                "list",
                "s",
            ),
            (
                "so is a watch, as kubectl get X -w asks",
                Method::GET,
                "/api/v1/namespaces/a/secrets",
                true,
                Some("metadata.name==s,type=Opaque"),
                "watch",
                "s",
            ),
            (
                "a selector that excludes a name names none",
                Method::GET,
                "/api/v1/namespaces/a/secrets",
                true,
                Some("metadata.name!=s"),
                "watch",
                "",
            ),
            (
                "a name that could not be a path segment is not taken",
                Method::GET,
                "/api/v1/namespaces/a/secrets",
                false,
                Some("metadata.name=a/b"),
                "list",
                "",
            ),
            (
                "an unparsable selector names none (the handler refuses it)",
                Method::GET,
                "/api/v1/namespaces/a/secrets",
                false,
                Some("metadata.name"),
                "list",
                "",
            ),
            (
                "a deletecollection is never narrowed to a name",
                Method::DELETE,
                "/api/v1/namespaces/a/secrets",
                false,
                Some("metadata.name=s"),
                "deletecollection",
                "",
            ),
            (
                "the legacy watch path names the object itself",
                Method::GET,
                "/api/v1/watch/namespaces/a/secrets/s",
                false,
                None,
                "watch",
                "s",
            ),
        ];
        for (reason, method, path, watching, selector, verb, name) in cases {
            let got = RequestAttributes::of(&route(path), &method, path, watching, selector);
            pretty_assertions::assert_eq!(
                (verb, name),
                (got.verb.as_str(), got.name.as_str()),
                "{reason}"
            );
        }
    }
}
