#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let realtime = realtime::Realtime::from_env().await?;
    realtime.app.warm_up().await;
    shared::http::serve(realtime, realtime::handle).await
}
