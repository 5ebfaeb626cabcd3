//! Identifier newtypes, parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest id we accept anywhere; keeps keys and cursors small.
const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id")]
pub struct InvalidId;

fn check_id(s: &str) -> Result<(), InvalidId> {
    let ok = !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(InvalidId) }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(String);

        // By hand rather than `into = "String"`, which clones every id it writes.
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl $name {
            /// A new random, time-ordered id.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().simple().to_string())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                check_id(s)?;
                Ok(Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                check_id(&s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// A user's id: opaque text (uuid v7 for new users, Django pks for imported ones).
    UserId
);
string_id!(
    /// A thread's id.
    ThreadId
);

/// API Gateway's id of one WebSocket connection (as in `L0SM9cOFvHcCIhw=`): base64 text, kept
/// as given, bounded so a forged one cannot blow up a key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct ConnectionId(String);

impl ConnectionId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Serialize for ConnectionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl FromStr for ConnectionId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, InvalidId> {
        let ok = !s.is_empty()
            && s.len() <= MAX_ID_LEN
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b));
        if ok { Ok(Self(s.to_owned())) } else { Err(InvalidId) }
    }
}

impl TryFrom<String> for ConnectionId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        s.parse()
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message's position in its thread: 1 for the first message, then +1 per send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Seq(pub u64);

impl Seq {
    /// Fixed-width text, so that sort keys order like the numbers.
    pub fn padded(self) -> String {
        format!("{:020}", self.0)
    }
}

/// A thread's change version: +1 for every send, edit and delete in it, in the order they
/// committed, so "what changed since version v" is exact. Changes of participants do not
/// count: they change no message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub u64);

impl Version {
    /// The version a change makes.
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// Fixed-width text, so that sort keys order like the numbers.
    pub fn padded(self) -> String {
        format!("{:020}", self.0)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Version {
    type Err = InvalidId;
    /// Only plain decimal digits, as the API writes them: no sign, no spaces, at most 19 (so
    /// that every string of that shape, as the OpenAPI spec describes it, fits a `u64`).
    fn from_str(s: &str) -> Result<Self, InvalidId> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidId);
        }
        s.parse().map(Self).map_err(|_| InvalidId)
    }
}

/// A message's id: its thread and its place there, shown as `<thread>.<seq>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId {
    /// The thread the message belongs to.
    pub thread: ThreadId,
    /// Its position in that thread.
    pub seq: Seq,
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.thread, self.seq.0)
    }
}

impl FromStr for MessageId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, InvalidId> {
        let (thread, seq) = s.rsplit_once('.').ok_or(InvalidId)?;
        if seq.is_empty() || seq.len() > 19 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidId);
        }
        let seq: u64 = seq.parse().map_err(|_| InvalidId)?;
        if seq == 0 {
            return Err(InvalidId);
        }
        Ok(Self { thread: thread.parse()?, seq: Seq(seq) })
    }
}

impl Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_plain_digits_that_fit() {
        assert_eq!("0".parse::<Version>(), Ok(Version(0)));
        assert_eq!("9999999999999999999".parse::<Version>(), Ok(Version(9_999_999_999_999_999_999)));
        for bad in ["", "-1", "+1", " 1", "1 ", "1e3", "0x1", "10000000000000000000"] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?}");
        }
        assert!(Version(9).padded() < Version(10).padded());
        assert_eq!(Version(4).next(), Version(5));
    }

    #[test]
    fn ids_accept_safe_text_only() {
        assert!("01J9ZK".parse::<UserId>().is_ok());
        assert!("2".parse::<UserId>().is_ok());
        for bad in ["", "a b", "a#b", "a.b", "é", &"x".repeat(65)] {
            assert!(bad.parse::<UserId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn generated_ids_are_valid_and_ordered() {
        let a = ThreadId::generate();
        let b = ThreadId::generate();
        assert!(a.as_str().parse::<ThreadId>().is_ok());
        assert!(a < b);
    }

    #[test]
    fn message_ids_round_trip() {
        let id: MessageId = "abc_1.42".parse().unwrap();
        assert_eq!(id.thread.as_str(), "abc_1");
        assert_eq!(id.seq, Seq(42));
        assert_eq!(id.to_string(), "abc_1.42");
        for bad in ["abc", "abc.", ".1", "abc.0", "abc.-1", "abc.1x", "a b.1", "abc.99999999999999999999"] {
            assert!(bad.parse::<MessageId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn connection_ids_are_api_gateway_text() {
        assert!("L0SM9cOFvHcCIhw=".parse::<ConnectionId>().is_ok());
        assert!("a+b/c".parse::<ConnectionId>().is_ok());
        for bad in ["", "a b", "a#b", "a.b", &"x".repeat(65)] {
            assert!(bad.parse::<ConnectionId>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn padded_seqs_sort_like_numbers() {
        assert!(Seq(9).padded() < Seq(10).padded());
    }
}
