//! Plinth's command line: `plinth up` runs the embedded control plane,
//! `plinth kubeconfig` prints how to reach it, and `plinth bench` measures it.
//!
//! Layout:
//! - `cli`: argument parsing and dispatch.
//! - `up`: the embedded control plane process.
//! - `controller`: the controllers against another API server, by leader election.
//! - `local_postgres`: the PostgreSQL server `plinth up` runs for the local provider.
//! - `startup`: what `plinth up` waits for before it reports ready.
//! - `bench`: the benchmark harness for the API server.
//! - `bench_providers`: the benchmark harness for providers.
//! - `bench_composition`: the benchmark harness for claims and composition.
//! - `bench_aws`: claims on AWS (against moto), and the AWS provider's memory.
//! - `bench_usage`: what the benchmarks' Plinth processes use.
//! - `render`, `trace`, `validate`: the composition tools.
//! - `dapr`: Dapr's Component CRD, and Components for Dapr's standalone mode.
//! - `catalog`: the Backstage catalog, as `plinth catalog` and as the HTTPS endpoint of `plinth up`.
//! - `backup`: `plinth backup` and `plinth restore` of the store.
//! - `user`: users of the embedded API server (tokens, client certificates, kubeconfigs).
#![forbid(unsafe_code)]

pub mod backup;
pub mod bench;
pub mod bench_aws;
pub mod bench_chaos;
pub mod bench_composition;
pub mod bench_providers;
mod bench_usage;
pub mod catalog;
pub mod certs;
pub mod cli;
pub mod compositions;
pub mod controller;
pub mod crds;
pub mod dapr;
pub mod local_postgres;
pub mod render;
mod startup;
pub mod trace;
pub mod up;
pub mod user;
pub mod validate;
