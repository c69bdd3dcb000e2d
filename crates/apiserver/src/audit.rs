//! The audit log (`plinth up --audit-log FILE`): one JSON line per request,
//! shaped as kube-apiserver's `audit.k8s.io/v1` Event at the `Metadata`
//! level: who asked, for what, what was decided and the response code. Never
//! a request or response body, so never a Secret's data.
//!
//! Lines go through a channel to a writer thread, so a slow disk delays the
//! log, not the requests. The writer flushes whenever the channel runs dry.

use std::io::Write;
use std::path::Path;
use std::sync::mpsc;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::authz::RequestAttributes;

/// How many lines may wait for the writer before requests start dropping them.
const QUEUE: usize = 16 * 1024;

pub struct AuditLog {
    lines: mpsc::SyncSender<String>,
}

/// What one audit line says about a request.
pub struct Entry<'a> {
    pub request_uri: &'a str,
    pub attrs: &'a RequestAttributes,
    pub user: &'a rbac::UserInfo,
    pub source_ip: Option<std::net::IpAddr>,
    pub user_agent: Option<&'a str>,
    /// `allow` or `forbid`, with the authorizer's reason; `None` when the
    /// request never reached authorization (it failed authentication).
    pub decision: Option<(bool, &'a str)>,
    pub code: u16,
    pub received: jiff::Timestamp,
    /// Who sent a request that impersonated `user` (`kubectl --as`).
    pub impersonator: Option<&'a rbac::UserInfo>,
}

impl AuditLog {
    /// Opens (appending) the log file, mode 0600, and starts its writer.
    pub fn open(path: &Path) -> Result<AuditLog> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot open the audit log {}", path.display()))?;
        let (lines, queued) = mpsc::sync_channel::<String>(QUEUE);
        let shown = path.display().to_string();
        std::thread::Builder::new()
            .name("plinth-audit".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(file);
                while let Ok(line) = queued.recv() {
                    let mut result = writeln!(out, "{line}");
                    while let Ok(more) = queued.try_recv() {
                        result = result.and_then(|_| writeln!(out, "{more}"));
                    }
                    if let Err(err) = result.and_then(|_| out.flush()) {
                        tracing::error!(path = %shown, error = %err, "cannot write the audit log");
                    }
                }
            })
            .context("cannot start the audit log writer")?;
        Ok(AuditLog { lines })
    }

    pub fn record(&self, entry: &Entry) {
        let line = event(entry).to_string();
        if self.lines.try_send(line).is_err() {
            tracing::warn!("audit log queue full; a line was dropped");
        }
    }
}

fn micro(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The `audit.k8s.io/v1` Event for one request.
pub fn event(entry: &Entry) -> Value {
    let attrs = entry.attrs;
    let user_json = |user: &rbac::UserInfo| {
        let mut out = json!({"username": user.name, "groups": user.groups});
        if !user.uid.is_empty() {
            out["uid"] = json!(user.uid);
        }
        out
    };
    // As kube-apiserver records it: `user` is who sent the request, and
    // `impersonatedUser` whom it acted as.
    let (user, impersonated) = match entry.impersonator {
        Some(sender) => (user_json(sender), Some(user_json(entry.user))),
        None => (user_json(entry.user), None),
    };
    let mut event = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": uuid::Uuid::new_v4().to_string(),
        "stage": "ResponseComplete",
        "requestURI": entry.request_uri,
        "verb": attrs.verb,
        "user": user,
        "sourceIPs": entry.source_ip.map(|ip| vec![ip.to_string()]).unwrap_or_default(),
        "responseStatus": {"metadata": {}, "code": entry.code},
        "requestReceivedTimestamp": micro(entry.received),
        "stageTimestamp": micro(jiff::Timestamp::now()),
    });
    if let Some(impersonated) = impersonated {
        event["impersonatedUser"] = impersonated;
    }
    if let Some(agent) = entry.user_agent {
        event["userAgent"] = json!(agent);
    }
    if attrs.resource_request {
        let mut object = serde_json::Map::new();
        let mut put = |key: &str, value: &str| {
            if !value.is_empty() {
                object.insert(key.into(), json!(value));
            }
        };
        put("resource", &attrs.resource);
        put("namespace", &attrs.namespace);
        put("name", &attrs.name);
        put("apiGroup", &attrs.api_group);
        put("apiVersion", &attrs.api_version);
        put("subresource", &attrs.subresource);
        event["objectRef"] = Value::Object(object);
    }
    if let Some((allowed, reason)) = entry.decision {
        let mut annotations = json!({
            "authorization.k8s.io/decision": if allowed { "allow" } else { "forbid" },
        });
        if !reason.is_empty() {
            annotations["authorization.k8s.io/reason"] = json!(reason);
        }
        event["annotations"] = annotations;
    }
    event
}
