//! Loads the SDK's configuration, builds a DynamoDB client, and answers every request with one
//! `GetItem`: what any Rust function that reads DynamoDB pays, before any code of ours.

use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let table = std::env::var("TABLE_NAME")?;
    let (client, table) = (&client, table.as_str());
    lambda_http::run(service_fn(move |_: Request| async move {
        let out = client
            .get_item()
            .table_name(table)
            .key("PK", AttributeValue::S("hello".into()))
            .key("SK", AttributeValue::S("hello".into()))
            .send()
            .await?;
        let found = out.item.is_some();
        Ok::<_, Error>(Response::new(Body::Text(format!("{{\"found\":{found}}}"))))
    }))
    .await
}
