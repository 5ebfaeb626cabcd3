//! The state every HTTP function builds once at init and borrows per request.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

use crate::config::{Config, ConfigError};
use crate::http::cursor::CursorKey;
use crate::jwt::JwtKeys;
use crate::store::Store;

/// Config, clients and keys, built once per Lambda instance.
pub struct App {
    /// Settings from the environment.
    pub config: Config,
    /// The DynamoDB single-table store.
    pub store: Store,
    /// Token signing and verification.
    pub jwt: JwtKeys,
    /// Signs pagination cursors.
    pub cursors: CursorKey,
}

/// The SDK's retries: standard mode (throttling, transient errors and timeouts, with
/// exponential backoff and jitter), 4 attempts in all.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(4)
}

/// Timeouts that keep a request, retries included, inside a 10-second Lambda budget.
pub fn timeout_config() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(3))
        .operation_timeout(Duration::from_secs(8))
        .build()
}

/// Loads the AWS SDK configuration with bounded retries and timeouts that fit in a Lambda budget.
pub async fn load_aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config())
        .load()
        .await
}

impl App {
    /// Builds everything from the environment.
    pub async fn from_env() -> Result<Self, ConfigError> {
        Self::from_sdk(&load_aws_config().await).await
    }

    /// Builds everything from the environment, with an SDK configuration already loaded.
    pub async fn from_sdk(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let config = Config::from_env(sdk).await?;
        Ok(Self::new(config, aws_sdk_dynamodb::Client::new(sdk)))
    }

    /// Builds the app from explicit parts (tests use this with DynamoDB Local).
    pub fn new(config: Config, client: aws_sdk_dynamodb::Client) -> Self {
        let jwt = JwtKeys::new(&config.keys, config.access_ttl_secs, config.refresh_ttl_secs);
        let cursors = CursorKey::derive(config.keys.current());
        let store = Store::new(client, config.table_name.clone());
        Self { config, store, jwt, cursors }
    }

    /// Opens the connection to DynamoDB during init, so the first request does not pay the TLS handshake.
    pub async fn warm_up(&self) {
        self.store.warm_up().await;
    }
}
