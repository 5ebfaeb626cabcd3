//! DynamoDB calls and capacity of each endpoint, against DynamoDB Local.

use serde::{Deserialize, Serialize};
use shared::App;

use crate::meter::{Meter, Work};
use crate::scenario::{Endpoint, Fixture};

/// What one request of an endpoint cost in DynamoDB.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EndpointWork {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The status it answered (a failed request's work would mean nothing).
    pub status: u16,
    /// Calls and capacity.
    pub work: Work,
}

/// Calls every endpoint once, in order, as the fixture's reader.
pub async fn measure(app: &App, meter: &Meter, fx: &Fixture) -> Vec<EndpointWork> {
    let mut out = Vec::new();
    for endpoint in Endpoint::ALL {
        let prepared = endpoint.prepare(app, fx).await;
        meter.reset();
        let response = prepared.send(app).await;
        let work = Work::of(&meter.take());
        out.push(EndpointWork { endpoint, status: response.status().as_u16(), work });
    }
    out
}
