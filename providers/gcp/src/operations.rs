//! Long-running operations, followed across reconciles. A write answers
//! with an Operation at once; the resource remembers it here, and each later
//! Observe asks Google how it is going instead of waiting in the call. A
//! reconcile is never blocked on an operation.
//!
//! What is remembered lives in the provider's memory: after a restart the
//! resource's own state (PENDING_CREATE, PROVISIONING, …) still says what is
//! happening, and a write that meets an operation still running is refused
//! by Google as a conflict, which is retried.

use std::collections::HashMap;
use std::sync::Mutex;

use provider_sdk::ProviderError;
use serde_json::Value;

use crate::config::Clients;
use crate::errors::{self, classify, Answer};
use crate::rest;

/// Where an operation lives: Cloud SQL's are per project, Compute Engine's
/// per zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Sql,
    Zone(String),
}

/// An operation a resource waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub name: String,
    pub scope: Scope,
    /// What the operation does, for messages: e.g. "create".
    pub what: String,
}

/// How a resource's operation is going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// No operation is remembered for the resource, or the last one finished
    /// well.
    Idle,
    /// Still running; the message says which.
    Running(String),
}

/// What an operation says of itself, from Cloud SQL's model or Compute
/// Engine's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub name: String,
    /// PENDING, RUNNING or DONE.
    pub status: String,
    pub progress: Option<i32>,
    pub failure: Option<Answer>,
}

/// An operation model a write or a poll answers with.
pub trait Operation {
    fn view(&self) -> View;
}

impl Operation for google_cloud_sql_v1::model::Operation {
    fn view(&self) -> View {
        View {
            name: self.name.clone(),
            status: self.status.name().unwrap_or("PENDING").to_string(),
            progress: None,
            failure: failure(&rest::json(self)),
        }
    }
}

impl Operation for google_cloud_compute_v1::model::Operation {
    fn view(&self) -> View {
        View {
            name: self.name.clone().unwrap_or_default(),
            status: self
                .status
                .as_ref()
                .and_then(|s| s.name())
                .unwrap_or("PENDING")
                .to_string(),
            progress: self.progress,
            failure: failure(&rest::json(self)),
        }
    }
}

/// The operations resources wait for, by resource UID.
#[derive(Default)]
pub struct Operations {
    pending: Mutex<HashMap<String, Pending>>,
}

impl Operations {
    /// Remembers the operation a write on a resource answered with.
    pub fn track(&self, uid: &str, scope: Scope, what: &str, operation: &impl Operation) {
        let View { name, status, .. } = operation.view();
        if name.is_empty() {
            return;
        }
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if status == "DONE" {
            pending.remove(uid);
        } else {
            pending.insert(
                uid.to_string(),
                Pending {
                    name,
                    scope,
                    what: what.to_string(),
                },
            );
        }
    }

    /// Forgets a resource's operation.
    pub fn forget(&self, uid: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uid);
    }

    fn get(&self, uid: &str) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(uid)
            .cloned()
    }

    /// Asks Google how a resource's operation is going. An operation that
    /// failed is forgotten and its error returned, sorted as a call's
    /// error would be.
    pub async fn progress(
        &self,
        clients: &Clients,
        uid: &str,
        target: &str,
    ) -> Result<Progress, ProviderError> {
        let Some(pending) = self.get(uid) else {
            return Ok(Progress::Idle);
        };
        let what = format!(
            "get the {} operation {} of {target}",
            pending.what, pending.name
        );
        let result = match &pending.scope {
            Scope::Sql => clients
                .sql_operations
                .get()
                .set_project(&clients.project)
                .set_operation(&pending.name)
                .send()
                .await
                .map(|op| op.view()),
            Scope::Zone(zone) => clients
                .compute
                .get_operation()
                .set_project(&clients.project)
                .set_zone(zone)
                .set_operation(&pending.name)
                .send()
                .await
                .map(|op| op.view()),
        };
        let operation = match result {
            Ok(op) => op,
            Err(e) if errors::is_not_found(&e) => {
                // Operations are kept for a while only; the resource's own
                // state says the rest.
                self.forget(uid);
                return Ok(Progress::Idle);
            }
            Err(e) => return Err(classify(&what, &e)),
        };
        if operation.status != "DONE" {
            let progress = operation
                .progress
                .map(|p| format!(", {p}% done"))
                .unwrap_or_default();
            return Ok(Progress::Running(format!(
                "waiting for the {} operation {} ({}{progress})",
                pending.what, pending.name, operation.status
            )));
        }
        self.forget(uid);
        match operation.failure {
            None => Ok(Progress::Idle),
            Some(answer) => Err(errors::sort(
                &format!(
                    "{} {target}: the operation {} failed",
                    pending.what, pending.name
                ),
                &answer,
            )),
        }
    }
}

/// The error a finished operation reports, if it failed: Cloud SQL's and
/// Compute Engine's both carry `error.errors[] {code, message}`; Compute
/// Engine's also the HTTP status the call would have had.
fn failure(operation: &Value) -> Option<Answer> {
    let first = operation.pointer("/error/errors/0")?;
    let code = first
        .get("code")
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(Answer {
        http: operation
            .get("httpErrorStatusCode")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok()),
        status: None,
        reason: code,
        message: first
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failed_operation_reports_its_first_error() {
        let cases = [
            (
                "a finished operation without errors did not fail",
                json!({"status": "DONE"}),
                None,
            ),
            (
                "Cloud SQL's error code and message are kept",
                json!({"status": "DONE", "error": {"errors": [{"code": "ERROR_RDBMS", "message": "invalid flag"}]}}),
                Some(Answer {
                    http: None,
                    status: None,
                    reason: Some("ERROR_RDBMS".into()),
                    message: "invalid flag".into(),
                }),
            ),
            (
                "Compute Engine's HTTP status is kept beside its code",
                json!({"status": "DONE", "httpErrorStatusCode": 403, "error": {"errors": [{"code": "QUOTA_EXCEEDED", "message": "Quota 'CPUS' exceeded."}]}}),
                Some(Answer {
                    http: Some(403),
                    status: None,
                    reason: Some("QUOTA_EXCEEDED".into()),
                    message: "Quota 'CPUS' exceeded.".into(),
                }),
            ),
        ];
        for (reason, operation, want) in cases {
            assert_eq!(failure(&operation), want, "{reason}");
        }
    }
}
