//! The local stack's stand-ins for what API Gateway does and no local tool does. Nothing here
//! runs in AWS or inside a function.

pub mod cors;
pub mod websocket;
