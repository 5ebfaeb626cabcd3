//! Everything the messaging functions share: configuration, errors, auth,
//! HTTP plumbing, domain types and the single-table DynamoDB store.

pub mod accounts;
pub mod app;
pub mod auth;
pub mod body;
pub mod config;
pub mod cursor;
pub mod error;
pub mod http;
pub mod ids;
pub mod jwt;
pub mod model;
pub mod pagination;
pub mod password;
pub mod realtime;
pub mod routes;
pub mod rules;
pub mod store;
pub mod telemetry;
pub mod timestamp;

pub use app::App;
pub use error::ApiError;
