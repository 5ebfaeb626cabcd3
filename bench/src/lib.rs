//! `make bench`: what our functions cost in time, bytes, DynamoDB capacity and dollars.
//! `docs/performance.md` explains each measurement.

pub mod coldstart;
pub mod fanout;
pub mod local;
pub mod memory;
pub mod meter;
pub mod process;
pub mod replay;
pub mod report;
pub mod scenario;
pub mod sdk_clock;
pub mod stats;
pub mod warm;
pub mod work;
