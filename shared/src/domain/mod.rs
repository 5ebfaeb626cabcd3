//! Domain types and rules: what the API is about, with no knowledge of HTTP or DynamoDB.

pub mod ids;
pub mod model;
pub mod reaction;
pub mod rules;
#[cfg(test)]
pub(crate) mod testing;
pub mod timestamp;
