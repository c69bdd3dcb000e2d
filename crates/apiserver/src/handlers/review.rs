//! The kinds that answer a question instead of storing an object:
//! SelfSubjectReview (`kubectl auth whoami`), the access reviews and the
//! rules review (`kubectl auth can-i`, with and without `--list`), and
//! TokenRequest (`kubectl create token`). Each is a `create` whose
//! response carries the answer in `status`.

use hyper::{Response, StatusCode};
use rbac::{Attributes, UserInfo};
use serde_json::{json, Value};

use super::{json, Body, Ctx};
use crate::builtin::Builtin;
use crate::request::ResourcePath;
use crate::resource::Resource;
use crate::status::ApiError;
use crate::tokens::{Account, DEFAULT_EXPIRATION_SECONDS};
use crate::Api;

pub fn handle(
    api: &Api,
    ctx: &Ctx,
    res: &Resource,
    path: &ResourcePath,
    kind: Builtin,
) -> Result<Response<Body>, ApiError> {
    let body = ctx.decode_body()?;
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    let status = match kind {
        Builtin::SelfSubjectReview => json!({"userInfo": user_info_json(&ctx.user)}),
        Builtin::SelfSubjectAccessReview => access(api, &ctx.user, &spec, None)?,
        Builtin::LocalSubjectAccessReview => {
            let namespace = path.namespace.as_deref().unwrap_or("");
            let asked = spec
                .pointer("/resourceAttributes/namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            if asked != namespace {
                return Err(ApiError::bad_field(
                    "spec.resourceAttributes.namespace",
                    format!("spec.resourceAttributes.namespace: Invalid value: {asked:?}: must match metadata.namespace {namespace:?}"),
                ));
            }
            access(api, &subject_of(&spec)?, &spec, Some(namespace))?
        }
        Builtin::SubjectAccessReview => access(api, &subject_of(&spec)?, &spec, None)?,
        Builtin::SelfSubjectRulesReview => rules(api, &ctx.user, &spec),
        _ => {
            return Err(ApiError::internal(format!(
                "{} is not a review",
                kind.kind()
            )))
        }
    };
    let mut answer = json!({
        "kind": res.kind,
        "apiVersion": res.api_version(),
        "metadata": {"creationTimestamp": Value::Null},
        "status": status,
    });
    if kind != Builtin::SelfSubjectReview {
        answer["spec"] = spec;
    } else {
        answer["metadata"]["creationTimestamp"] = json!(now());
    }
    Ok(json(StatusCode::CREATED, &answer))
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn user_info_json(user: &UserInfo) -> Value {
    let mut info = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        info["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        info["extra"] = json!(user.extra);
    }
    info
}

/// The user a SubjectAccessReview asks about.
fn subject_of(spec: &Value) -> Result<UserInfo, ApiError> {
    let text = |f: &str| {
        spec.get(f)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let groups: Vec<String> = spec
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let user = UserInfo {
        name: text("user"),
        uid: text("uid"),
        groups,
        extra: spec
            .get("extra")
            .cloned()
            .and_then(|e| serde_json::from_value(e).ok())
            .unwrap_or_default(),
    };
    if user.name.is_empty() && user.groups.is_empty() {
        return Err(ApiError::bad_field(
            "spec.user",
            "spec.user: Invalid value: \"\": at least one of user or group must be specified",
        ));
    }
    Ok(user)
}

/// `status` of an access review: may `user` do what the spec asks?
fn access(
    api: &Api,
    user: &UserInfo,
    spec: &Value,
    namespace: Option<&str>,
) -> Result<Value, ApiError> {
    let field = |pointer: &str| spec.pointer(pointer).and_then(Value::as_str).unwrap_or("");
    let decision = if spec.get("resourceAttributes").is_some() {
        let attrs = Attributes {
            user,
            verb: field("/resourceAttributes/verb"),
            resource_request: true,
            namespace: namespace.unwrap_or(field("/resourceAttributes/namespace")),
            api_group: field("/resourceAttributes/group"),
            api_version: field("/resourceAttributes/version"),
            resource: field("/resourceAttributes/resource"),
            subresource: field("/resourceAttributes/subresource"),
            name: field("/resourceAttributes/name"),
            path: "",
        };
        api.authz.authorize(api, &attrs)
    } else if spec.get("nonResourceAttributes").is_some() {
        let attrs = Attributes {
            user,
            verb: field("/nonResourceAttributes/verb"),
            resource_request: false,
            namespace: "",
            api_group: "",
            api_version: "",
            resource: "",
            subresource: "",
            name: "",
            path: field("/nonResourceAttributes/path"),
        };
        api.authz.authorize(api, &attrs)
    } else {
        return Err(ApiError::bad_field(
            "spec.resourceAttributes",
            "spec.resourceAttributes: Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    Ok(status)
}

/// `status` of a SelfSubjectRulesReview: every rule that applies in the namespace.
fn rules(api: &Api, user: &UserInfo, spec: &Value) -> Value {
    let namespace = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
    if api.authz.mode() == crate::authz::Mode::AlwaysAllow {
        return json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        });
    }
    let found = api.authz.policy(api).rules_for(user, namespace);
    let resource_rules: Vec<Value> = found
        .resource_rules
        .iter()
        .map(|r| {
            let mut v =
                json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if !r.resource_names.is_empty() {
                v["resourceNames"] = json!(r.resource_names);
            }
            v
        })
        .collect();
    let non_resource_rules: Vec<Value> = found
        .non_resource_rules
        .iter()
        .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
        .collect();
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": found.incomplete,
    });
    if !found.evaluation_error.is_empty() {
        status["evaluationError"] = json!(found.evaluation_error);
    }
    status
}

/// Smallest `expirationSeconds` kube-apiserver accepts. Plinth accepts
/// shorter ones (with a warning) so that expiry can be shown and tested
/// without waiting ten minutes.
const UPSTREAM_MIN_EXPIRATION_SECONDS: i64 = 600;

/// `POST .../serviceaccounts/NAME/token`: a TokenRequest answered with a
/// signed token for that account.
pub fn token_request(
    api: &Api,
    ctx: &Ctx,
    accounts: &Resource,
    path: &ResourcePath,
    name: &str,
) -> Result<Response<Body>, ApiError> {
    let namespace = path.namespace.as_deref().unwrap_or("");
    let record = api
        .store
        .get(&accounts.key(Some(namespace), name))
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", name))?;
    let body = ctx.decode_body()?;
    let spec = body.get("spec").cloned().unwrap_or(json!({}));
    let seconds = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => DEFAULT_EXPIRATION_SECONDS,
        Some(v) => v.as_i64().filter(|s| (1..=1 << 32).contains(s)).ok_or_else(|| {
            ApiError::bad_field(
                "spec.expirationSeconds",
                format!("spec.expirationSeconds: Invalid value: {v}: expected a whole number of seconds from 1 to 4294967296"),
            )
        })?,
    };
    let audiences: Vec<String> = spec
        .get("audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    let account = Account {
        namespace: namespace.to_string(),
        name: name.to_string(),
        uid: record.meta.uid.to_string(),
    };
    let now = jiff::Timestamp::now();
    let token = api
        .authn
        .signer()
        .mint(&account, &audiences, now.as_second(), seconds)
        .map_err(|e| ApiError::internal(format!("cannot sign the token: {e}")))?;
    let expires = jiff::Timestamp::from_second(now.as_second() + seconds)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let mut spec = spec;
    spec["expirationSeconds"] = json!(seconds);
    if audiences.is_empty() {
        spec["audiences"] = json!([crate::tokens::ISSUER]);
    }
    let answer = json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": Value::Null},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": expires},
    });
    let warnings = if seconds < UPSTREAM_MIN_EXPIRATION_SECONDS {
        vec![format!("spec.expirationSeconds: {seconds}s is shorter than the 10 minutes kube-apiserver requires; a cluster would refuse it")]
    } else {
        Vec::new()
    };
    Ok(super::raw_json(
        StatusCode::CREATED,
        bytes::Bytes::from(answer.to_string()),
        &warnings,
    ))
}
