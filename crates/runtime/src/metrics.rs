//! The controllers' Prometheus metrics, in one process-wide set that each
//! binary registers where it serves `/metrics`: `plinth up` on the API
//! port, `plinth controller` on `--metrics-addr`. Names follow Prometheus'
//! conventions: units in the name, `_total` for counters (added by the
//! encoder).

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    controller: String,
    /// `success`, `requeue` or `error`.
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    provider: String,
    method: &'static str,
    code: String,
}

fn seconds() -> Histogram {
    // 0.5 ms to about 33 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

struct Set {
    reconciles: Family<ReconcileLabels, Counter>,
    reconcile_seconds: Histograms<ControllerLabels>,
    queue_depth: Family<ControllerLabels, Gauge>,
    provider_rpc_seconds: Histograms<RpcLabels>,
}

static METRICS: LazyLock<Set> = LazyLock::new(|| Set {
    reconciles: Family::default(),
    reconcile_seconds: Family::new_with_constructor(seconds),
    queue_depth: Family::default(),
    provider_rpc_seconds: Family::new_with_constructor(seconds),
});

/// Adds the controllers' metrics to `registry`.
pub fn register(registry: &mut Registry) {
    let m = &*METRICS;
    registry.register(
        "plinth_controller_reconciles",
        "Reconciles by controller and result (success, requeue, error)",
        m.reconciles.clone(),
    );
    registry.register(
        "plinth_controller_reconcile_duration_seconds",
        "How long each reconcile took, by controller",
        m.reconcile_seconds.clone(),
    );
    registry.register(
        "plinth_controller_queue_depth",
        "Keys waiting in each controller's work queue (ready or due later)",
        m.queue_depth.clone(),
    );
    registry.register(
        "plinth_provider_rpc_duration_seconds",
        "Provider plugin calls by provider, method and gRPC code",
        m.provider_rpc_seconds.clone(),
    );
}

/// One reconcile of `controller`, its result and how long it took.
pub fn reconciled(controller: &str, result: &'static str, took: Duration) {
    let m = &*METRICS;
    m.reconciles
        .get_or_create(&ReconcileLabels {
            controller: controller.to_string(),
            result,
        })
        .inc();
    m.reconcile_seconds
        .get_or_create(&ControllerLabels {
            controller: controller.to_string(),
        })
        .observe(took.as_secs_f64());
}

/// How many keys wait in `controller`'s queue now.
pub fn queue_depth(controller: &str, depth: usize) {
    METRICS
        .queue_depth
        .get_or_create(&ControllerLabels {
            controller: controller.to_string(),
        })
        .set(i64::try_from(depth).unwrap_or(i64::MAX));
}

/// One call to a provider plugin.
pub fn provider_rpc(provider: &str, method: &'static str, code: String, took: Duration) {
    METRICS
        .provider_rpc_seconds
        .get_or_create(&RpcLabels {
            provider: provider.to_string(),
            method,
            code,
        })
        .observe(took.as_secs_f64());
}
