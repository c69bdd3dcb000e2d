//! The provider seam over gRPC: [`runtime::provider::ExternalClient`]
//! implemented by a `plinth.provider.v1` client, so the managed reconciler
//! knows nothing of tonic or protobuf.

use provider_sdk::pb::{self, provider_client::ProviderClient};
use provider_sdk::ProviderError;
use runtime::provider::{
    ConnectionDetails, Creation, ExternalClient, ExternalError, ExternalResource, Observation,
    ProviderConfig, Readiness, Violation,
};
use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// One provider process, spoken to over its channel.
#[derive(Clone)]
pub struct GrpcClient {
    provider: String,
    client: ProviderClient<Channel>,
    /// How long one call may take before it fails as DeadlineExceeded.
    timeout: Duration,
    /// Calls in a row that ran out of time, for the host to restart a
    /// provider that answers health checks but not calls.
    timeouts_in_a_row: Arc<AtomicU32>,
}

impl GrpcClient {
    pub fn new(
        provider: &str,
        client: ProviderClient<Channel>,
        timeout: Duration,
        timeouts_in_a_row: Arc<AtomicU32>,
    ) -> GrpcClient {
        GrpcClient {
            provider: provider.to_string(),
            client,
            timeout,
            timeouts_in_a_row,
        }
    }

    /// `message` as a request carrying the deadline (`grpc-timeout`), so
    /// the provider may give up too.
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.timeout);
        request
    }

    /// A call, bounded by the timeout and timed for
    /// `plinth_provider_rpc_duration_seconds` with its code.
    async fn timed<T>(
        &self,
        method: &'static str,
        call: impl std::future::Future<Output = Result<T, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout, call).await {
            // The provider's gRPC server enforces the deadline too, and its
            // answer ("Timeout expired") may come first: the same timeout.
            Ok(Err(status))
                if matches!(
                    status.code(),
                    tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
                ) && started.elapsed() >= self.timeout.mul_f64(0.9) =>
            {
                Err(self.timed_out(method))
            }
            Ok(result) => {
                self.timeouts_in_a_row.store(0, Ordering::Relaxed);
                result
            }
            Err(_) => Err(self.timed_out(method)),
        };
        let code = match &result {
            Ok(_) => "Ok".to_string(),
            Err(status) => format!("{:?}", status.code()),
        };
        runtime::metrics::provider_rpc(&self.provider, method, code, started.elapsed());
        result
    }
}

impl GrpcClient {
    /// Counts a call that ran out of time, and says so.
    fn timed_out(&self, method: &str) -> tonic::Status {
        self.timeouts_in_a_row.fetch_add(1, Ordering::Relaxed);
        tonic::Status::deadline_exceeded(format!(
            "the provider {} did not answer {method} within {}",
            self.provider,
            humanize(self.timeout)
        ))
    }
}

/// A timeout as its flag would be written: `30s`, `1500ms`.
pub(crate) fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn failed(status: tonic::Status) -> ExternalError {
    match ProviderError::from_status(&status) {
        ProviderError::Retryable(m) => ExternalError::Retryable(m),
        ProviderError::Throttled(m) => ExternalError::Throttled(m),
        ProviderError::Terminal(m) => ExternalError::Terminal(m),
        ProviderError::Unauthorized(m) => ExternalError::Unauthorized(m),
        ProviderError::NotConfigured(m) => ExternalError::NotConfigured(m),
    }
}

fn resource(r: &ExternalResource) -> pb::Resource {
    pb::Resource {
        kind: r.kind.clone(),
        name: r.name.clone(),
        uid: r.uid.clone(),
        external_name: r.external_name.clone(),
        for_provider_json: r.for_provider.to_string().into_bytes(),
        provider_config: r.provider_config.clone(),
        secrets: r.secrets.clone(),
        secret_seed: r.secret_seed.clone(),
    }
}

/// A JSON field of a provider's answer; a provider that sends something
/// that is not JSON has a bug, and the resource says so rather than
/// silently reporting nothing.
fn json_field(verb: &str, field: &str, bytes: &[u8]) -> Result<Option<Value>, ExternalError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    serde_json::from_slice(bytes).map(Some).map_err(|e| {
        ExternalError::Retryable(format!(
            "the provider answered {verb} with {field} that is not JSON: {e}"
        ))
    })
}

/// A JSON field that lands in the object as a map (status.atProvider, the
/// late-initialized spec): anything but an object would make every status
/// write fail schema validation, so it is refused here, by name.
fn json_object_field(
    verb: &str,
    field: &str,
    bytes: &[u8],
) -> Result<Option<serde_json::Map<String, Value>>, ExternalError> {
    match json_field(verb, field, bytes)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(fields)) => Ok(Some(fields)),
        Some(other) => {
            let found = match other {
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                _ => "an array",
            };
            Err(ExternalError::Retryable(format!(
                "the provider answered {verb} with {field} that is {found}, not a JSON object"
            )))
        }
    }
}

/// Observe's readiness; a number outside the protocol's enum is a provider
/// bug, said as such rather than read as "unavailable".
fn readiness(code: i32) -> Result<Readiness, ExternalError> {
    match pb::Readiness::try_from(code) {
        Ok(pb::Readiness::Available) => Ok(Readiness::Available),
        Ok(pb::Readiness::Creating) => Ok(Readiness::Creating),
        Ok(pb::Readiness::Deleting) => Ok(Readiness::Deleting),
        Ok(pb::Readiness::Unavailable) => Ok(Readiness::Unavailable),
        Ok(pb::Readiness::Unspecified) => Ok(Readiness::Unspecified),
        Err(_) => Err(ExternalError::Retryable(format!(
            "the provider answered Observe with readiness {code}, which is not a value of the protocol's Readiness enum"
        ))),
    }
}

fn details(map: std::collections::HashMap<String, Vec<u8>>) -> ConnectionDetails {
    map.into_iter().collect()
}

#[async_trait::async_trait]
impl ExternalClient for GrpcClient {
    async fn configure(&self, config: &ProviderConfig) -> Result<(), ExternalError> {
        self.timed(
            "Configure",
            self.client
                .clone()
                .configure(self.request(pb::ConfigureRequest {
                    name: config.name.clone(),
                    spec_json: config.spec.to_string().into_bytes(),
                    credentials: config.credentials.clone().into_iter().collect(),
                })),
        )
        .await
        .map_err(failed)?;
        Ok(())
    }

    async fn validate(&self, r: &ExternalResource) -> Result<Vec<Violation>, ExternalError> {
        let response = self
            .timed(
                "Validate",
                self.client
                    .clone()
                    .validate(self.request(pb::ValidateRequest {
                        resource: Some(resource(r)),
                    })),
            )
            .await
            .map_err(failed)?
            .into_inner();
        Ok(response
            .violations
            .into_iter()
            .map(|v| Violation {
                field: v.field,
                message: v.message,
            })
            .collect())
    }

    async fn observe(&self, r: &ExternalResource) -> Result<Observation, ExternalError> {
        let o = self
            .timed(
                "Observe",
                self.client
                    .clone()
                    .observe(self.request(pb::ObserveRequest {
                        resource: Some(resource(r)),
                    })),
            )
            .await
            .map_err(failed)?
            .into_inner();
        let late_init =
            json_object_field("Observe", "lateInit", &o.late_init_json)?.unwrap_or_default();
        let at_provider =
            json_object_field("Observe", "atProvider", &o.at_provider_json)?.map(Value::Object);
        Ok(Observation {
            exists: o.exists,
            up_to_date: o.up_to_date,
            diff: o.diff,
            late_init,
            at_provider,
            connection: details(o.connection_details),
            readiness: readiness(o.readiness)?,
            readiness_message: o.readiness_message,
            external_name: o.external_name,
        })
    }

    async fn create(&self, r: &ExternalResource) -> Result<Creation, ExternalError> {
        let c = self
            .timed(
                "Create",
                self.client.clone().create(self.request(pb::CreateRequest {
                    resource: Some(resource(r)),
                })),
            )
            .await
            .map_err(failed)?
            .into_inner();
        Ok(Creation {
            external_name: c.external_name,
            connection: details(c.connection_details),
        })
    }

    async fn update(&self, r: &ExternalResource) -> Result<ConnectionDetails, ExternalError> {
        let u = self
            .timed(
                "Update",
                self.client.clone().update(self.request(pb::UpdateRequest {
                    resource: Some(resource(r)),
                })),
            )
            .await
            .map_err(failed)?
            .into_inner();
        Ok(details(u.connection_details))
    }

    async fn delete(&self, r: &ExternalResource) -> Result<(), ExternalError> {
        self.timed(
            "Delete",
            self.client.clone().delete(self.request(pb::DeleteRequest {
                resource: Some(resource(r)),
            })),
        )
        .await
        .map_err(failed)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn readiness_numbers_outside_the_enum_are_provider_bugs() {
        let cases: &[(&str, i32, Result<Readiness, &str>)] = &[
            (
                "the zero value is the protocol's own unspecified",
                0,
                Ok(Readiness::Unspecified),
            ),
            ("available is Ready", 1, Ok(Readiness::Available)),
            ("the last value of the enum", 4, Ok(Readiness::Unavailable)),
            (
                "a number the enum does not have is refused by value",
                42,
                Err("readiness 42"),
            ),
            (
                "negative numbers are not values either",
                -1,
                Err("readiness -1"),
            ),
        ];
        for (reason, code, want) in cases {
            let got = match readiness(*code) {
                Ok(r) => Ok(r),
                Err(ExternalError::Retryable(message)) => {
                    assert!(message.contains("Readiness enum"), "{reason}: {message}");
                    Err(message)
                }
                Err(other) => panic!("{reason}: not retryable: {other:?}"),
            };
            match (want, got) {
                (Ok(want), Ok(got)) => assert_eq!(*want, got, "{reason}"),
                (Err(want), Err(got)) => assert!(got.contains(want), "{reason}: {got}"),
                (want, got) => panic!("{reason}: want {want:?}, got {got:?}"),
            }
        }
    }

    #[test]
    fn object_fields_refuse_anything_but_an_object_by_name() {
        // (reason, what the provider sent, the map or a part of the error)
        type Case<'a> = (&'a str, &'a [u8], Result<Option<Value>, &'a str>);
        let cases: &[Case] = &[
            ("empty bytes mean the field was not sent", b"", Ok(None)),
            ("JSON null is the same as not sent", b"null", Ok(None)),
            (
                "an object is taken as it is",
                br#"{"state":"up"}"#,
                Ok(Some(json!({"state": "up"}))),
            ),
            (
                "truncated JSON says it is not JSON",
                br#"{"state": tru"#,
                Err("atProvider that is not JSON"),
            ),
            (
                "an array is named as one",
                b"[1, 2]",
                Err("atProvider that is an array, not a JSON object"),
            ),
            (
                "a bare string is named as one",
                br#""up""#,
                Err("atProvider that is a string"),
            ),
        ];
        for (reason, bytes, want) in cases {
            let got = json_object_field("Observe", "atProvider", bytes)
                .map(|m| m.map(Value::Object))
                .map_err(|e| e.to_string());
            match (want, got) {
                (Ok(want), Ok(got)) => assert_eq!(*want, got, "{reason}"),
                (Err(want), Err(got)) => assert!(got.contains(want), "{reason}: {got}"),
                (want, got) => panic!("{reason}: want {want:?}, got {got:?}"),
            }
        }
    }
}
