//! Opaque, signed pagination cursors: a position in a list, bound to the list it came from.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ApiError;
use crate::config::Secret;

/// Longest cursor we decode (a 150-character non-Latin username fits).
pub const MAX_CURSOR_LEN: usize = 1024;

/// Which way a page goes from its cursor's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Items after the position (towards older / further down the list).
    #[serde(rename = "n")]
    Next,
    /// Items before the position (back towards the top of the list).
    #[serde(rename = "p")]
    Previous,
}

/// A decoded cursor: a direction and the sort key of the item it points past.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Which way to read.
    #[serde(rename = "d")]
    pub direction: Direction,
    /// The sort key to start after (exclusive).
    #[serde(rename = "k")]
    pub key: String,
}

/// The HMAC key for cursors, derived from the signing secret.
pub struct CursorKey(Vec<u8>);

type HmacSha256 = Hmac<Sha256>;

impl CursorKey {
    /// Derives a cursor-only key so cursors and tokens never share a MAC key.
    pub fn derive(secret: &Secret) -> Self {
        let mut mac = HmacSha256::new_from_slice(secret.expose()).expect("any key length works");
        mac.update(b"pagination-cursor-v1");
        Self(mac.finalize().into_bytes().to_vec())
    }

    fn mac(&self, scope: &str, payload: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("any key length works");
        mac.update(scope.as_bytes());
        mac.update(&[0]);
        mac.update(payload.as_bytes());
        mac
    }

    /// Encodes a cursor for one list (`scope` names the list, e.g. the user and route).
    pub fn encode(&self, scope: &str, cursor: &Cursor) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).expect("cursor serializes"));
        let tag = URL_SAFE_NO_PAD.encode(&self.mac(scope, &payload).finalize().into_bytes()[..16]);
        format!("{payload}.{tag}")
    }

    /// Decodes a cursor, refusing one that is forged, damaged or from another list.
    pub fn decode(&self, scope: &str, text: &str) -> Result<Cursor, ApiError> {
        let invalid = || ApiError::InvalidCursor;
        if text.len() > MAX_CURSOR_LEN {
            return Err(invalid());
        }
        let (payload, tag) = text.split_once('.').ok_or_else(invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        if tag.len() != 16 {
            return Err(invalid());
        }
        self.mac(scope, payload).verify_truncated_left(&tag).map_err(|_| invalid())?;
        let bytes = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        serde_json::from_slice(&bytes).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey::derive(&Secret::new(vec![1; 32]).unwrap())
    }

    #[test]
    fn round_trips_within_its_scope_only() {
        let c = Cursor { direction: Direction::Next, key: "00000000000000000042".into() };
        let text = key().encode("messages:t1:u1", &c);
        assert_eq!(key().decode("messages:t1:u1", &text).unwrap(), c);
        assert!(key().decode("messages:t2:u1", &text).is_err());
    }

    #[test]
    fn forged_and_garbage_cursors_are_refused() {
        let c = Cursor { direction: Direction::Next, key: "a".into() };
        let text = key().encode("s", &c);
        let other = CursorKey::derive(&Secret::new(vec![2; 32]).unwrap());
        assert!(other.decode("s", &text).is_err());
        let forged =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(r#"{"d":"n","k":"b"}"#), text.split_once('.').unwrap().1);
        assert!(key().decode("s", &forged).is_err());
        for junk in ["", ".", "abc", "a.b", &"x".repeat(1100)] {
            assert!(key().decode("s", junk).is_err(), "{junk}");
        }
    }
}
