//! Domain types and rules: what the API is about, with no knowledge of HTTP or DynamoDB.

pub mod ids;
pub mod model;
pub mod rules;
pub mod timestamp;
