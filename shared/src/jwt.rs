//! Access and refresh tokens compatible with djangorestframework-simplejwt (HS256).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Keyring;
use crate::domain::ids::UserId;
use crate::domain::timestamp::Timestamp;

/// Clock skew tolerated on `exp`, in seconds (jsonwebtoken's default of 60 is too lax).
pub const LEEWAY_SECONDS: u64 = 5;

/// Which kind a token is; an endpoint accepts exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// Short-lived, sent on every API call.
    Access,
    /// Long-lived, only exchanged at `/api/token/refresh/`.
    Refresh,
    /// The admin panel's session cookie; never accepted by the API.
    Admin,
}

/// The claims we sign, named as simplejwt names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// `access` or `refresh`.
    pub token_type: TokenType,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// Unique token id (uuid4 hex), used to blacklist rotated refresh tokens.
    pub jti: String,
    /// The user the token speaks for.
    pub user_id: UserId,
    /// The user's token version when issued; a password change bumps it and revokes refresh tokens.
    #[serde(default)]
    pub ver: u64,
    /// Admin sessions only: the user's session version when issued; logout bumps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sv: Option<u64>,
}

/// A fresh access/refresh pair.
#[derive(Debug, Clone, Serialize)]
pub struct TokenPair {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

/// Why a token was refused; the client only ever learns "invalid".
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Bad signature, algorithm, format, expiry or claims.
    #[error("token rejected: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
    /// A valid token of the other type.
    #[error("wrong token type")]
    WrongType,
    /// A claim we need is empty.
    #[error("missing claim")]
    MissingClaim,
    /// Issued later than now, beyond the leeway.
    #[error("issued in the future")]
    IssuedInFuture,
    /// A `crit` header: extensions we do not implement, so RFC 7515 says refuse.
    #[error("critical header extension")]
    CriticalHeader,
    /// Signed with a key id we do not have (retired, or never ours).
    #[error("unknown key id")]
    UnknownKey,
}

/// Lifetime of an admin panel session, in seconds.
pub const ADMIN_SESSION_SECONDS: i64 = 30 * 60;

/// Keys and lifetimes, built once at init.
pub struct JwtKeys {
    current: String,
    encoding: EncodingKey,
    decoding: std::collections::HashMap<String, DecodingKey>,
    validation: Validation,
    access_ttl: i64,
    refresh_ttl: i64,
}

impl JwtKeys {
    /// Builds HS256 keys from the configured keyring.
    pub fn new(keys: &Keyring, access_ttl: i64, refresh_ttl: i64) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_required_spec_claims(&["exp"]);
        Self {
            current: keys.current_id().to_owned(),
            encoding: EncodingKey::from_secret(keys.current().expose()),
            decoding: keys
                .all()
                .map(|(kid, s)| (kid.to_owned(), DecodingKey::from_secret(s.expose())))
                .collect(),
            validation,
            access_ttl,
            refresh_ttl,
        }
    }

    fn sign(
        &self,
        user: &UserId,
        version: u64,
        session: Option<u64>,
        kind: TokenType,
        now: Timestamp,
    ) -> String {
        let ttl = match kind {
            TokenType::Access => self.access_ttl,
            TokenType::Refresh => self.refresh_ttl,
            TokenType::Admin => ADMIN_SESSION_SECONDS,
        };
        let claims = Claims {
            token_type: kind,
            exp: now.unix() + ttl,
            iat: now.unix(),
            jti: uuid::Uuid::new_v4().simple().to_string(),
            user_id: user.clone(),
            ver: version,
            sv: session,
        };
        let header = Header { kid: Some(self.current.clone()), ..Header::new(Algorithm::HS256) };
        jsonwebtoken::encode(&header, &claims, &self.encoding).expect("HS256 signing cannot fail")
    }

    /// Issues a new access and refresh token for a user.
    pub fn issue_pair(&self, user: &UserId, version: u64) -> TokenPair {
        let now = Timestamp::now();
        TokenPair {
            access: self.sign(user, version, None, TokenType::Access, now),
            refresh: self.sign(user, version, None, TokenType::Refresh, now),
        }
    }

    /// Issues an admin panel session token for the user's token and session versions.
    pub fn issue_admin_session(&self, user: &UserId, version: u64, session: u64) -> String {
        self.sign(user, version, Some(session), TokenType::Admin, Timestamp::now())
    }

    /// Verifies signature, algorithm, expiry, issue time and type.
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        if header.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        // Tokens from before key ids were used carry none: they verify with the current key.
        let kid = header.kid.unwrap_or_else(|| self.current.clone());
        let key = self.decoding.get(&kid).ok_or(TokenError::UnknownKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, key, &self.validation)?;
        let claims = data.claims;
        if claims.token_type != expected {
            return Err(TokenError::WrongType);
        }
        if claims.jti.is_empty() || claims.jti.len() > 64 {
            return Err(TokenError::MissingClaim);
        }
        // simplejwt (through PyJWT) refuses these; we never issue one, so it is forged or
        // from a clock that cannot be trusted with `exp` either.
        if claims.iat > Timestamp::now().unix() + LEEWAY_SECONDS as i64 {
            return Err(TokenError::IssuedInFuture);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use crate::config::Secret;

    fn ring(secret: u8) -> Keyring {
        Keyring::single(Secret::new(vec![secret; 32]).unwrap())
    }

    fn keys() -> JwtKeys {
        JwtKeys::new(&ring(7), 1800, 604800)
    }

    fn user() -> UserId {
        "u1".parse().unwrap()
    }

    #[test]
    fn access_and_refresh_verify_only_as_their_type() {
        let k = keys();
        let pair = k.issue_pair(&user(), 3);
        let claims = k.verify(&pair.access, TokenType::Access).unwrap();
        assert_eq!(claims.user_id, user());
        assert_eq!(claims.ver, 3);
        assert_eq!(claims.exp - claims.iat, 1800);
        assert!(matches!(k.verify(&pair.access, TokenType::Refresh), Err(TokenError::WrongType)));
        assert!(k.verify(&pair.refresh, TokenType::Refresh).is_ok());
        assert!(matches!(k.verify(&pair.refresh, TokenType::Access), Err(TokenError::WrongType)));
        let session = k.issue_admin_session(&user(), 0, 4);
        assert_eq!(k.verify(&session, TokenType::Admin).unwrap().sv, Some(4));
        assert_eq!(k.verify(&pair.access, TokenType::Access).unwrap().sv, None);
        assert!(k.verify(&session, TokenType::Admin).is_ok());
        assert!(matches!(k.verify(&session, TokenType::Access), Err(TokenError::WrongType)));
    }

    #[test]
    fn wrong_key_and_tampering_are_refused() {
        let pair = keys().issue_pair(&user(), 0);
        let other = JwtKeys::new(&ring(8), 1800, 604800);
        assert!(other.verify(&pair.access, TokenType::Access).is_err());

        let mut parts: Vec<String> = pair.access.split('.').map(str::to_owned).collect();
        let payload = URL_SAFE_NO_PAD.decode(&parts[1]).unwrap();
        let forged = String::from_utf8(payload).unwrap().replace("\"u1\"", "\"u2\"");
        parts[1] = URL_SAFE_NO_PAD.encode(forged);
        assert!(keys().verify(&parts.join("."), TokenType::Access).is_err());
    }

    #[test]
    fn alg_none_is_refused() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"token_type":"access","exp":{},"iat":0,"jti":"x","user_id":"u1"}}"#,
            Timestamp::now().unix() + 100
        ));
        assert!(keys().verify(&format!("{header}.{payload}."), TokenType::Access).is_err());
    }

    #[test]
    fn expired_beyond_leeway_is_refused() {
        let k = keys();
        let now = Timestamp::now().unix();
        let claims = Claims {
            token_type: TokenType::Access,
            exp: now - LEEWAY_SECONDS as i64 - 2,
            iat: now - 100,
            jti: "j".into(),
            user_id: user(),
            ver: 0,
            sv: None,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &k.encoding).unwrap();
        assert!(k.verify(&token, TokenType::Access).is_err());
    }

    #[test]
    fn rotated_keys_keep_old_tokens_valid_until_the_old_key_is_dropped() {
        let text = |current: &str, keys: &[(&str, char)]| {
            let keys: Vec<String> =
                keys.iter().map(|(k, c)| format!("\"{k}\": \"{}\"", c.to_string().repeat(32))).collect();
            Keyring::parse(&format!("{{\"current\": \"{current}\", \"keys\": {{{}}}}}", keys.join(", ")))
                .unwrap()
        };
        let before = JwtKeys::new(&text("2026-10", &[("2026-10", 'a')]), 1800, 604800);
        let during = JwtKeys::new(&text("2026-11", &[("2026-10", 'a'), ("2026-11", 'b')]), 1800, 604800);
        let after = JwtKeys::new(&text("2026-11", &[("2026-11", 'b')]), 1800, 604800);
        let old = before.issue_pair(&user(), 0).access;
        assert_eq!(jsonwebtoken::decode_header(&old).unwrap().kid.as_deref(), Some("2026-10"));
        assert!(during.verify(&old, TokenType::Access).is_ok());
        let new = during.issue_pair(&user(), 0).access;
        assert_eq!(jsonwebtoken::decode_header(&new).unwrap().kid.as_deref(), Some("2026-11"));
        assert!(after.verify(&new, TokenType::Access).is_ok());
        assert!(matches!(after.verify(&old, TokenType::Access), Err(TokenError::UnknownKey)));
        assert!(before.verify(&new, TokenType::Access).is_err());
    }

    fn signed(k: &JwtKeys, header: &Header, kind: TokenType, iat: i64) -> String {
        let claims = Claims {
            token_type: kind,
            exp: Timestamp::now().unix() + 600,
            iat,
            jti: "j".into(),
            user_id: user(),
            ver: 0,
            sv: (kind == TokenType::Admin).then_some(0),
        };
        jsonwebtoken::encode(header, &claims, &k.encoding).unwrap()
    }

    const KINDS: [TokenType; 3] = [TokenType::Access, TokenType::Refresh, TokenType::Admin];

    #[test]
    fn issued_in_the_future_beyond_leeway_is_refused() {
        let k = keys();
        let now = Timestamp::now().unix();
        let header = Header::new(Algorithm::HS256);
        for kind in KINDS {
            let late = signed(&k, &header, kind, now + LEEWAY_SECONDS as i64 + 2);
            assert!(matches!(k.verify(&late, kind), Err(TokenError::IssuedInFuture)), "{kind:?}");
            let skewed = signed(&k, &header, kind, now + 1);
            assert!(k.verify(&skewed, kind).is_ok(), "{kind:?} within the leeway");
        }
    }

    #[test]
    fn critical_header_extensions_are_refused() {
        let k = keys();
        let now = Timestamp::now().unix();
        for crit in [vec!["exp".to_owned()], vec!["b64".to_owned()], vec![]] {
            let header = Header { crit: Some(crit.clone()), ..Header::new(Algorithm::HS256) };
            for kind in KINDS {
                let token = signed(&k, &header, kind, now);
                assert!(
                    matches!(k.verify(&token, kind), Err(TokenError::CriticalHeader)),
                    "{kind:?} {crit:?}"
                );
            }
        }
        // The same tokens without the header are fine, so it is `crit` that is refused.
        for kind in KINDS {
            assert!(k.verify(&signed(&k, &Header::new(Algorithm::HS256), kind, now), kind).is_ok());
        }
    }

    #[test]
    fn missing_claims_are_refused() {
        let k = keys();
        let claims = serde_json::json!({"token_type": "access", "exp": Timestamp::now().unix() + 100, "iat": 0, "jti": "j"});
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &k.encoding).unwrap();
        assert!(k.verify(&token, TokenType::Access).is_err());
    }
}
