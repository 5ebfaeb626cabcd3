//! The local stack's stand-ins for what AWS does and no local tool does: API Gateway's HTTP API
//! (`http_api`: its routes, payload format 2.0 events, access log and CORS, `cors`), Lambda's event source mapping for DynamoDB Streams (`streams`), and API Gateway's
//! WebSocket APIs (`websocket`), both handing events to the functions through `invoke`, and a
//! static host for the web client on its own origin (`web`, as S3 + CloudFront would serve it);
//! and `compact`, which keeps `make dev`'s DynamoDB Local database responsive after long use.
//! Nothing here runs in AWS or inside a function.

pub mod compact;
pub mod cors;
pub mod http_api;
pub mod invoke;
pub mod local;
pub mod streams;
pub mod web;
pub mod websocket;
