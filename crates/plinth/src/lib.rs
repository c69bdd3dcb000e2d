//! Plinth's command line: `plinth up` runs the embedded control plane,
//! `plinth kubeconfig` prints how to reach it, and `plinth bench` measures it.
//!
//! Layout:
//! - `cli`: argument parsing and dispatch.
//! - `up`: the embedded control plane process.
//! - `bench`: the benchmark harness.
#![forbid(unsafe_code)]

pub mod bench;
pub mod cli;
pub mod up;
