//! The provider SDK: everything a Plinth provider plugin needs, and nothing of
//! the control plane.
//!
//! An author describes each resource kind with a [`KindSchema`] and implements
//! [`ExternalResource`] for it (observe, create, update, delete), then hands a
//! [`Provider`] to [`serve`]. The SDK speaks `plinth.provider.v1` over gRPC,
//! does the go-plugin style handshake with the host, serves the gRPC health
//! service, logs to stderr (the host forwards it) and shuts down gracefully.
//! [`conformance`] checks a provider keeps the protocol's contract.
//!
//! Layout:
//! - `pb`: the generated protocol.
//! - `handshake`: the magic cookie and the line a plugin prints when ready.
//! - `error`: retryable and terminal errors, mapped to gRPC codes.
//! - `kind`: the trait a resource kind implements and its inputs and outputs.
//! - `service`: the gRPC service that dispatches to kinds.
//! - `serve`: listening, handshake, health, shutdown.
//! - `client`: connecting to a plugin, for the host and for tests.
//! - `conformance`: the harness every provider runs in its tests.
//! - `connection`: connection details every DBaaS backend writes alike.
#![forbid(unsafe_code)]

pub mod pb {
    //! Generated from proto/plinth/provider/v1/provider.proto.
    #![allow(clippy::all)]
    tonic::include_proto!("plinth.provider.v1");
}

pub mod client;
pub mod clients;
pub mod conformance;
pub mod connection;
pub mod diff;
pub mod error;
pub mod handshake;
pub mod kind;
pub mod serve;
pub mod service;

pub use error::ProviderError;
pub use kind::{
    ConnectionDetails, Created, ExternalResource, KindSchema, Observation, ProviderConfig,
    Readiness, Request,
};
pub use serve::serve;
pub use service::Provider;

/// Re-exported so provider crates need not name these in their own manifests.
pub use serde_json;
pub use tonic::async_trait;
