//! Calls a function by its name: over the channel its runtime registered,
//! within a timeout, falling back to v1beta1 for functions that only speak
//! that, and answering from the cache while an earlier identical request's
//! TTL lasts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use prost::Message;
use sha2::{Digest, Sha256};
use tonic::transport::{Channel, Endpoint};

use crate::pb::{self, function_runner_service_client::FunctionRunnerServiceClient};

/// Crossplane's default for how long a function may take to answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The same method under the older package, same messages.
const V1BETA1_PATH: &str = "/apiextensions.fn.proto.v1beta1.FunctionRunnerService/RunFunction";
/// Most cached responses kept; expired ones go first.
const CACHE_LIMIT: usize = 16_384;
/// The longest a response is cached, whatever TTL it asks for (Crossplane's
/// `--xfn-cache-max-ttl` default).
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("function {function:?} is not running: {why}")]
    NotRunning { function: String, why: String },
    #[error("function {function:?} did not answer within {after:?}")]
    Timeout { function: String, after: Duration },
    #[error("cannot run function {function:?}: {message}")]
    Failed { function: String, message: String },
}

/// Told of every call that reached a function: for metrics.
pub type Observer = Arc<dyn Fn(&str, Duration) + Send + Sync>;

struct Cached {
    until: Instant,
    response: pb::RunFunctionResponse,
}

pub struct Runner {
    channels: RwLock<HashMap<String, Channel>>,
    /// Why a function has no channel, when its runtime said.
    down: RwLock<HashMap<String, String>>,
    timeout: Duration,
    cache: Mutex<HashMap<(String, String), Cached>>,
    observer: RwLock<Option<Observer>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The request's tag: a hash of its deterministic encoding (maps are
/// BTreeMaps), without the meta that carries the tag itself.
pub fn tag(request: &pb::RunFunctionRequest) -> String {
    let mut untagged = request.clone();
    untagged.meta = None;
    hex::encode(Sha256::digest(untagged.encode_to_vec()))
}

impl Runner {
    pub fn new(timeout: Duration) -> Arc<Runner> {
        Arc::new(Runner {
            channels: RwLock::default(),
            down: RwLock::default(),
            timeout,
            cache: Mutex::default(),
            observer: RwLock::default(),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn observe(&self, observer: Observer) {
        if let Ok(mut o) = self.observer.write() {
            *o = Some(observer);
        }
    }

    /// Reaches `function` at `address` (HOST:PORT) without TLS, as
    /// `crossplane render` dials a Development-runtime function.
    pub fn register_insecure(&self, function: &str, address: &str) -> Result<(), CallError> {
        let endpoint =
            Endpoint::from_shared(format!("http://{address}")).map_err(|e| CallError::Failed {
                function: function.to_string(),
                message: format!("cannot use address {address:?}: {e}"),
            })?;
        let channel = endpoint
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        self.register(function, channel);
        Ok(())
    }

    /// Reaches `function` at `address` (HOST:PORT) over mTLS.
    pub fn register_tls(
        &self,
        function: &str,
        address: &str,
        tls: tonic::transport::ClientTlsConfig,
    ) -> Result<(), CallError> {
        let failed = |e: tonic::transport::Error| CallError::Failed {
            function: function.to_string(),
            message: format!("cannot use address {address:?} over mTLS: {e}"),
        };
        let endpoint = Endpoint::from_shared(format!("https://{address}"))
            .map_err(failed)?
            .tls_config(tls)
            .map_err(failed)?;
        self.register(
            function,
            endpoint
                .connect_timeout(Duration::from_secs(5))
                .connect_lazy(),
        );
        Ok(())
    }

    pub fn register(&self, function: &str, channel: Channel) {
        self.forget_answers(function);
        if let Ok(mut down) = self.down.write() {
            down.remove(function);
        }
        if let Ok(mut channels) = self.channels.write() {
            channels.insert(function.to_string(), channel);
        }
    }

    /// The function cannot be reached any more, and why.
    pub fn unregister(&self, function: &str, why: impl Into<String>) {
        if let Ok(mut channels) = self.channels.write() {
            channels.remove(function);
        }
        if let Ok(mut down) = self.down.write() {
            down.insert(function.to_string(), why.into());
        }
    }

    /// What a function answered before: not to be given for a function
    /// that runs anew (its command or address changed).
    fn forget_answers(&self, function: &str) {
        lock(&self.cache).retain(|(f, _), _| f != function);
    }

    /// Forgets a function that no longer exists.
    pub fn remove(&self, function: &str) {
        self.forget_answers(function);
        if let Ok(mut channels) = self.channels.write() {
            channels.remove(function);
        }
        if let Ok(mut down) = self.down.write() {
            down.remove(function);
        }
    }

    fn channel(&self, function: &str) -> Result<Channel, CallError> {
        if let Some(c) = self
            .channels
            .read()
            .ok()
            .and_then(|c| c.get(function).cloned())
        {
            return Ok(c);
        }
        let why = self
            .down
            .read()
            .ok()
            .and_then(|d| d.get(function).cloned())
            .unwrap_or_else(|| {
                format!("no Function named {function:?} exists (kubectl get functions)")
            });
        Err(CallError::NotRunning {
            function: function.to_string(),
            why,
        })
    }

    /// Runs `function`, or answers from the cache: a response with a TTL
    /// answers every identical request until the TTL runs out.
    pub async fn run(
        &self,
        function: &str,
        request: pb::RunFunctionRequest,
    ) -> Result<pb::RunFunctionResponse, CallError> {
        let tag = request
            .meta
            .as_ref()
            .map(|m| m.tag.clone())
            .filter(|t| !t.is_empty());
        let key = tag.map(|t| (function.to_string(), t));
        if let Some(key) = &key {
            if let Some(hit) = lock(&self.cache).get(key) {
                if hit.until > Instant::now() {
                    return Ok(hit.response.clone());
                }
            }
        }
        let channel = self.channel(function)?;
        let started = Instant::now();
        let response = tokio::time::timeout(self.timeout, call(channel, request))
            .await
            .map_err(|_| CallError::Timeout {
                function: function.to_string(),
                after: self.timeout,
            })?
            .map_err(|status| CallError::Failed {
                function: function.to_string(),
                message: format!("{}: {}", status.code(), status.message()),
            })?;
        if let Some(observer) = self.observer.read().ok().and_then(|o| o.clone()) {
            observer(function, started.elapsed());
        }
        let ttl = response
            .meta
            .as_ref()
            .and_then(|m| m.ttl)
            .and_then(|d| Duration::try_from(d).ok())
            .filter(|d| !d.is_zero())
            .map(|d| d.min(MAX_TTL));
        if let (Some(key), Some(ttl)) = (key, ttl) {
            let mut cache = lock(&self.cache);
            if cache.len() >= CACHE_LIMIT {
                let now = Instant::now();
                cache.retain(|_, c| c.until > now);
                if cache.len() >= CACHE_LIMIT {
                    cache.clear();
                }
            }
            cache.insert(
                key,
                Cached {
                    until: Instant::now() + ttl,
                    response: response.clone(),
                },
            );
        }
        Ok(response)
    }
}

/// One RunFunction call: v1, else v1beta1 when the function has no v1.
async fn call(
    channel: Channel,
    request: pb::RunFunctionRequest,
) -> Result<pb::RunFunctionResponse, tonic::Status> {
    let mut v1 = FunctionRunnerServiceClient::new(channel.clone());
    match v1.run_function(request.clone()).await {
        Ok(r) => Ok(r.into_inner()),
        Err(status) if status.code() == tonic::Code::Unimplemented => {
            // Hand-made because the generated client knows only its own
            // package's path; the messages are the same on the wire.
            let mut grpc = tonic::client::Grpc::new(channel);
            grpc.ready()
                .await
                .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
            let path = tonic::codegen::http::uri::PathAndQuery::from_static(V1BETA1_PATH);
            let codec =
                tonic_prost::ProstCodec::<pb::RunFunctionRequest, pb::RunFunctionResponse>::default(
                );
            grpc.unary(tonic::Request::new(request), path, codec)
                .await
                .map(tonic::Response::into_inner)
        }
        Err(status) => Err(status),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::pb::function_runner_service_server::{
        FunctionRunnerService, FunctionRunnerServiceServer,
    };

    /// A function that counts its calls, answers with a TTL, and hangs
    /// when its input says so.
    #[derive(Default, Clone)]
    struct Counting {
        calls: Arc<AtomicUsize>,
    }

    #[tonic::async_trait]
    impl FunctionRunnerService for Counting {
        async fn run_function(
            &self,
            request: tonic::Request<pb::RunFunctionRequest>,
        ) -> Result<tonic::Response<pb::RunFunctionResponse>, tonic::Status> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let input = request.get_ref().input.clone().unwrap_or_default();
            if input.fields.contains_key("hang") {
                tokio::time::sleep(Duration::from_secs(60)).await;
            }
            Ok(tonic::Response::new(pb::RunFunctionResponse {
                meta: Some(pb::ResponseMeta {
                    tag: String::new(),
                    ttl: Some(prost_types::Duration {
                        seconds: 60,
                        nanos: 0,
                    }),
                }),
                ..Default::default()
            }))
        }
    }

    async fn serve(function: Counting) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(FunctionRunnerServiceServer::new(function))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        address
    }

    fn request(input: serde_json::Value) -> pb::RunFunctionRequest {
        let mut r = pb::RunFunctionRequest {
            input: Some(crate::structs::to_struct(&input)),
            ..Default::default()
        };
        r.meta = Some(pb::RequestMeta {
            tag: tag(&r),
            capabilities: Vec::new(),
        });
        r
    }

    #[tokio::test]
    async fn an_identical_request_within_the_ttl_is_answered_from_the_cache() {
        let function = Counting::default();
        let address = serve(function.clone()).await;
        let runner = Runner::new(Duration::from_secs(5));
        runner.register_insecure("f", &address).expect("register");
        runner
            .run("f", request(serde_json::json!({"a": 1})))
            .await
            .expect("first call");
        runner
            .run("f", request(serde_json::json!({"a": 1})))
            .await
            .expect("second call");
        assert_eq!(
            function.calls.load(Ordering::SeqCst),
            1,
            "the same request is not sent again"
        );
        runner
            .run("f", request(serde_json::json!({"a": 2})))
            .await
            .expect("third call");
        assert_eq!(
            function.calls.load(Ordering::SeqCst),
            2,
            "a changed request is"
        );
    }

    #[tokio::test]
    async fn a_function_that_does_not_answer_is_timed_out() {
        let address = serve(Counting::default()).await;
        let runner = Runner::new(Duration::from_millis(300));
        runner
            .register_insecure("slow", &address)
            .expect("register");
        let got = runner
            .run("slow", request(serde_json::json!({"hang": true})))
            .await;
        assert_eq!(
            got,
            Err(CallError::Timeout {
                function: "slow".into(),
                after: Duration::from_millis(300)
            })
        );
    }

    #[tokio::test]
    async fn an_unknown_function_says_so() {
        let runner = Runner::new(DEFAULT_TIMEOUT);
        let got = runner.run("nobody", request(serde_json::json!({}))).await;
        assert!(matches!(got, Err(CallError::NotRunning { .. })), "{got:?}");
        runner.unregister("nobody", "the function process exited (signal: 9)");
        let got = runner.run("nobody", request(serde_json::json!({}))).await;
        assert_eq!(
            got.map_err(|e| e.to_string()),
            Err(
                "function \"nobody\" is not running: the function process exited (signal: 9)"
                    .into()
            )
        );
    }

    #[test]
    fn the_tag_depends_on_the_request_not_on_its_meta() {
        let a = request(serde_json::json!({"a": 1, "b": [1, 2]}));
        let mut b = a.clone();
        b.meta = None;
        assert_eq!(tag(&a), tag(&b));
        assert_ne!(tag(&a), tag(&request(serde_json::json!({"a": 2}))));
    }
}
