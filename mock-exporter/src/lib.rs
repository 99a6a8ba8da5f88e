//! The synthetic workload behind the stack's dashboards: HTTP (RED), node
//! (USE) and application metrics for many clusters, moving like a real fleet.
//!
//! Everything is deterministic given the seed, the cluster name and the clock:
//! each cluster's [`sim::Simulation`] advances in fixed one-second steps from
//! the exporter's start, and incidents are drawn per 30-minute window from the
//! seed, so the values at time `t` do not depend on when anyone scraped.

pub mod cluster;
pub mod http;
pub mod probe;
pub mod sim;
pub mod text;
