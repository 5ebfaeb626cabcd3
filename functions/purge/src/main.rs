use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};
use shared::store::Store;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let sdk = shared::app::load_aws_config().await;
    let table = shared::config::table_name_from_env()?;
    let store: &'static Store = Box::leak(Box::new(Store::connect(&sdk, table)));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        purge::handle(store, event.payload).await.map(|_| ()).map_err(lambda_runtime::Error::from)
    }))
    .await
}
