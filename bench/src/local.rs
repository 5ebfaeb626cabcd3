//! The DynamoDB Local table a bench run writes to, and the settings the functions get for it.

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Intercept, Region};
use shared::App;
use shared::config::{Config, Keyring};

/// One bench run's table in DynamoDB Local and its signing key.
#[derive(Debug, Clone)]
pub struct Local {
    /// DynamoDB Local's URL.
    pub endpoint: String,
    /// The table (new per run).
    pub table: String,
    /// The JWT signing key (random per run, never written to disk).
    pub secret: String,
}

impl Local {
    /// A new table name and key for DynamoDB Local at `endpoint`.
    pub fn new(endpoint: &str) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        Self { endpoint: endpoint.to_owned(), table: format!("bench-{}", &id[..12]), secret }
    }

    /// A client for DynamoDB Local with the deployed retries and timeouts, seen by `interceptor`.
    pub fn client_with(&self, interceptor: Option<impl Intercept + 'static>) -> aws_sdk_dynamodb::Client {
        let mut config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("local", "local", None, None, "bench"))
            .retry_config(shared::app::retry_config())
            .timeout_config(shared::app::timeout_config())
            .endpoint_url(&self.endpoint);
        if let Some(interceptor) = interceptor {
            config = config.interceptor(interceptor);
        }
        aws_sdk_dynamodb::Client::from_conf(config.build())
    }

    /// The app the functions would build, over `client`.
    pub fn app(&self, client: aws_sdk_dynamodb::Client) -> App {
        let config = Config {
            table_name: self.table.clone(),
            keys: Keyring::parse(&self.secret).expect("a valid bench key"),
            access_ttl_secs: 1800,
            refresh_ttl_secs: 7 * 24 * 3600,
        };
        App::new(config, client)
    }

    /// The environment a function process needs to use this table.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("TABLE_NAME", self.table.clone()),
            ("JWT_SECRET", self.secret.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "local".into()),
            ("AWS_SECRET_ACCESS_KEY", "local".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("RUST_LOG", "info".into()),
            // The realtime and fanout functions' WebSocket API; their first requests post nothing.
            ("WEBSOCKET_URL", "ws://127.0.0.1:9/live".into()),
        ]
    }
}
