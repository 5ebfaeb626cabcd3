//! Settings read once at init from the environment (and SSM for the signing key).

use std::fmt;

/// Shortest HS256 key we accept; jsonwebtoken itself enforces no minimum.
pub const MIN_SECRET_LEN: usize = 32;

/// Why the function cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is unset.
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    /// A variable holds something unusable.
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong with it (never its value).
        reason: &'static str,
    },
    /// The signing key could not be read from SSM.
    #[error("could not read the signing key from SSM")]
    Ssm(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Bytes that must never be printed: the JWT signing key.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps key material, refusing keys too short for HS256.
    pub fn new(bytes: Vec<u8>) -> Result<Self, ConfigError> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(ConfigError::Invalid { name: "JWT secret", reason: "must be at least 32 bytes" });
        }
        Ok(Self(bytes))
    }

    /// The key bytes, for building signing keys.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Everything a function needs to know about its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// The single DynamoDB table.
    pub table_name: String,
    /// HS256 signing key for tokens and cursors.
    pub jwt_secret: Secret,
    /// Access token lifetime in seconds.
    pub access_ttl_secs: i64,
    /// Refresh token lifetime in seconds.
    pub refresh_ttl_secs: i64,
}

/// Reads `TABLE_NAME`, or fails.
pub fn table_name_from_env() -> Result<String, ConfigError> {
    std::env::var("TABLE_NAME").ok().filter(|s| !s.is_empty()).ok_or(ConfigError::Missing("TABLE_NAME"))
}

fn seconds(name: &'static str, default: i64) -> Result<i64, ConfigError> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or(ConfigError::Invalid { name, reason: "must be a positive number of seconds" }),
    }
}

impl Config {
    /// Reads the environment; the key comes from `JWT_SECRET` locally or from the SSM
    /// SecureString named by `JWT_SECRET_PARAMETER` when deployed.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let jwt_secret = match std::env::var("JWT_SECRET") {
            Ok(s) if !s.is_empty() => Secret::new(s.into_bytes())?,
            _ => {
                let name = std::env::var("JWT_SECRET_PARAMETER")
                    .map_err(|_| ConfigError::Missing("JWT_SECRET or JWT_SECRET_PARAMETER"))?;
                Secret::new(read_ssm_secret(sdk, &name).await?)?
            }
        };
        Ok(Self {
            table_name: table_name_from_env()?,
            jwt_secret,
            access_ttl_secs: seconds("ACCESS_TOKEN_TTL_SECONDS", 30 * 60)?,
            refresh_ttl_secs: seconds("REFRESH_TOKEN_TTL_SECONDS", 7 * 24 * 3600)?,
        })
    }
}

async fn read_ssm_secret(sdk: &aws_config::SdkConfig, name: &str) -> Result<Vec<u8>, ConfigError> {
    let out = aws_sdk_ssm::Client::new(sdk)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| ConfigError::Ssm(Box::new(e)))?;
    out.parameter
        .and_then(|p| p.value)
        .map(String::into_bytes)
        .ok_or(ConfigError::Ssm("parameter has no value".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        assert!(Secret::new(b"short".to_vec()).is_err());
        let s = Secret::new(vec![b'k'; 32]).unwrap();
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }
}
