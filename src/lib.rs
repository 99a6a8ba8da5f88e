//! promgate: a Prometheus remote-write receiver that keeps the latest sample
//! of every series in memory and re-exposes them in the text format.
//!
//! The write path is `ingest` → `model` → `store`; the read path is
//! `store` → `exposition` → `http`; `server` runs them. See ARCHITECTURE.md
//! for the map and its invariants.

pub mod config;
pub mod exposition;
pub mod http;
pub mod ingest;
pub mod model;
pub mod proto;
pub mod push_client;
pub mod self_metrics;
pub mod server;
pub mod store;
pub mod web_config;
