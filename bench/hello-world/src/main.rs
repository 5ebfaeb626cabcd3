//! Answers every request with a fixed JSON body and does nothing else.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async {
        Ok::<_, Error>(Response::new(Body::Text("{\"hello\":\"world\"}".into())))
    }))
    .await
}
