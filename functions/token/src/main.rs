#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let app = shared::App::from_env().await?;
    app.warm_up().await;
    shared::http::serve(app, token::handle).await
}
