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

/// The token signing keys, by key id: the current one signs, every one verifies, so a key can
/// be rotated without logging everyone out.
///
/// Configured as a single secret (its id is derived from it), or as JSON
/// `{"current": "<kid>", "keys": {"<kid>": "<secret>", ...}}`; every secret is at least 32 bytes.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: String,
    keys: Vec<(String, Secret)>,
}

impl Keyring {
    /// One key, whose id is derived from it.
    pub fn single(secret: Secret) -> Self {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(secret.expose());
        let kid = format!("k-{}", digest[..4].iter().map(|b| format!("{b:02x}")).collect::<String>());
        Self { current: kid.clone(), keys: vec![(kid, secret)] }
    }

    /// Parses the configured value.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let invalid = |reason| ConfigError::Invalid { name: "JWT keys", reason };
        let text = text.trim();
        if !text.starts_with('{') {
            return Ok(Self::single(Secret::new(text.as_bytes().to_vec())?));
        }
        #[derive(serde::Deserialize)]
        struct Raw {
            current: String,
            keys: std::collections::BTreeMap<String, String>,
        }
        let raw: Raw = serde_json::from_str(text).map_err(|_| invalid("not {\"current\", \"keys\"} JSON"))?;
        let mut keys = Vec::new();
        for (kid, secret) in raw.keys {
            let ok = !kid.is_empty()
                && kid.len() <= 64
                && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
            if !ok {
                return Err(invalid("key ids are 1-64 letters, digits or -_."));
            }
            keys.push((kid, Secret::new(secret.into_bytes())?));
        }
        if !keys.iter().any(|(kid, _)| *kid == raw.current) {
            return Err(invalid("`current` names no key"));
        }
        Ok(Self { current: raw.current, keys })
    }

    /// The id of the key that signs.
    pub fn current_id(&self) -> &str {
        &self.current
    }

    /// The key that signs.
    pub fn current(&self) -> &Secret {
        &self.keys.iter().find(|(kid, _)| *kid == self.current).expect("parse checked it").1
    }

    /// Every key, by id.
    pub fn all(&self) -> impl Iterator<Item = (&str, &Secret)> {
        self.keys.iter().map(|(kid, secret)| (kid.as_str(), secret))
    }
}

/// Everything a function needs to know about its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// The single DynamoDB table.
    pub table_name: String,
    /// HS256 keys for tokens; the current one also keys cursors and CSRF tokens.
    pub keys: Keyring,
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
    /// Reads the environment; the key comes from `JWT_SECRET` or the file `JWT_SECRET_FILE`
    /// names locally, or from the SSM SecureString named by `JWT_SECRET_PARAMETER` when deployed.
    /// The local stack uses the file: `cargo lambda watch` prints every variable it passes.
    pub async fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, ConfigError> {
        let keys = match (std::env::var("JWT_SECRET"), std::env::var_os("JWT_SECRET_FILE")) {
            (Ok(s), _) if !s.is_empty() => Keyring::parse(&s)?,
            (_, Some(path)) if !path.is_empty() => {
                Keyring::parse(&std::fs::read_to_string(path).map_err(|_| ConfigError::Invalid {
                    name: "JWT_SECRET_FILE",
                    reason: "cannot be read as text",
                })?)?
            }
            _ => {
                let name = std::env::var("JWT_SECRET_PARAMETER").map_err(|_| {
                    ConfigError::Missing("JWT_SECRET, JWT_SECRET_FILE or JWT_SECRET_PARAMETER")
                })?;
                let value = read_ssm_secret(sdk, &name).await?;
                Keyring::parse(
                    &String::from_utf8(value)
                        .map_err(|_| ConfigError::Invalid { name: "JWT keys", reason: "not UTF-8" })?,
                )?
            }
        };
        Ok(Self {
            table_name: table_name_from_env()?,
            keys,
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
    fn keyrings_parse_single_secrets_and_json() {
        let single = Keyring::parse(&"s".repeat(40)).unwrap();
        assert!(single.current_id().starts_with("k-"));
        let json = format!(
            r#"{{"current": "b", "keys": {{"a": "{}", "b": "{}"}}}}"#,
            "x".repeat(32),
            "y".repeat(32)
        );
        let ring = Keyring::parse(&json).unwrap();
        assert_eq!(ring.current_id(), "b");
        assert_eq!(ring.current().expose(), "y".repeat(32).as_bytes());
        assert_eq!(ring.all().count(), 2);
        assert!(Keyring::parse(r#"{"current": "c", "keys": {}}"#).is_err());
        assert!(Keyring::parse(r#"{"current": "a", "keys": {"a": "short"}}"#).is_err());
        assert!(format!("{ring:?}").contains("Secret(..)") && !format!("{ring:?}").contains("yyyy"));
    }

    #[test]
    fn short_secrets_are_refused_and_never_printed() {
        assert!(Secret::new(b"short".to_vec()).is_err());
        let s = Secret::new(vec![b'k'; 32]).unwrap();
        assert_eq!(format!("{s:?}"), "Secret(..)");
    }
}
