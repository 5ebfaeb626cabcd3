//! The local stack's stand-ins for what AWS does and no local tool does: API Gateway's CORS
//! (`cors`) and Lambda's event source mapping for DynamoDB Streams (`streams`). Nothing here
//! runs in AWS or inside a function.

pub mod cors;
pub mod streams;
