//! promgate: a Prometheus remote-write receiver that keeps the latest sample of
//! every series in memory and re-exposes them in the text format.
//!
//! The write path is `decode` → `model` → `store`; the read path is
//! `store` → `exposition` → `http`. See ARCHITECTURE.md for the map.

pub mod config;
pub mod decode;
pub mod error;
pub mod exposition;
pub mod http;
pub mod model;
pub mod proto;
pub mod self_metrics;
pub mod store;
