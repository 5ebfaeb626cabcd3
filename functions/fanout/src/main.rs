use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let fanout: &'static fanout::Fanout = Box::leak(Box::new(fanout::Fanout::from_env().await?));
    fanout.store.warm_up().await;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let records = event.payload.records.len();
        let (response, totals) = fanout::handle(fanout, event.payload).await;
        tracing::info!(
            records,
            ?totals,
            failed_records = response.batch_item_failures.len(),
            "batch fanned out"
        );
        Ok::<_, lambda_runtime::Error>(response)
    }))
    .await
}
