//! Everything the messaging functions share, in layers that point one way: `domain` (ids,
//! records, timestamps and the rules of who may do what; neither HTTP nor DynamoDB), `store`
//! (the single-table DynamoDB store; no HTTP), `http` (requests, responses, errors, routes and
//! pages as API Gateway and DRF clients see them), and what builds and wires them: `config`,
//! `app`, `jwt`, `password`, `accounts`, `realtime` and `telemetry`.

pub mod accounts;
pub mod app;
pub mod config;
pub mod domain;
pub mod http;
pub mod jwt;
pub mod password;
pub mod realtime;
pub mod store;
pub mod telemetry;

pub use app::App;
pub use http::error::ApiError;
