//! The load generator's parts, for its binary and for tests that drive a workload through a
//! running stack (`tests/e2e`).

pub mod api;
pub mod burst;
pub mod client;
pub mod live;
pub mod report;
pub mod stats;
pub mod workload;
