//! WebSocket tickets and connections: who may open a connection, and which connections each
//! user has open, for the fan-out.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, ReturnValue, ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::try_join_all;
use sha2::{Digest, Sha256};

use super::expr::Cond;
use super::items::{ConnectionItem, ConnectionOwnerItem, TicketItem, attr, decode, encode};
use super::tx::{Step, Tx};
use super::{Store, StoreError, key, keys, n, s};
use crate::ids::{ConnectionId, UserId};
use crate::model::OpenConnection;
use crate::timestamp::Timestamp;

/// How long a ticket may wait for its handshake: long enough for a slow network, short enough
/// that one read off a screen or a log is worthless.
pub const TICKET_TTL_SECS: i64 = 30;

/// API Gateway closes every connection after two hours ("Connection duration for WebSocket
/// API: 2 hours", API Gateway quotas for WebSocket APIs); a record left by a lost
/// `$disconnect` expires then.
pub const CONNECTION_TTL_SECS: i64 = 2 * 60 * 60;

/// A WebSocket ticket: the user it is for and a random secret, shown as `<user>.<secret>`.
/// Naming the user lets the handshake check it in the same transaction that uses it up.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket {
    user: UserId,
    secret: String,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("user", &self.user).finish_non_exhaustive()
    }
}

impl std::fmt::Display for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.user, self.secret)
    }
}

/// Why a string is not a ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a ticket")]
pub struct InvalidTicket;

impl std::str::FromStr for Ticket {
    type Err = InvalidTicket;
    fn from_str(text: &str) -> Result<Self, InvalidTicket> {
        let (user, secret) = text.split_once('.').ok_or(InvalidTicket)?;
        // 32 bytes, base64url without padding.
        let well_formed =
            secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(InvalidTicket);
        }
        Ok(Self { user: user.parse().map_err(|_| InvalidTicket)?, secret: secret.to_owned() })
    }
}

impl Ticket {
    fn new(user: &UserId) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self { user: user.clone(), secret: URL_SAFE_NO_PAD.encode(bytes) }
    }

    /// The user the ticket is for.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    fn hash(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.to_string().as_bytes()))
    }
}

/// Why a handshake was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The ticket is unknown, used, expired, or its user can no longer sign in.
    #[error("ticket not valid")]
    BadTicket,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether a connection may send a typing notice now.
#[derive(Debug, PartialEq, Eq)]
pub enum TypingGate {
    /// Yes: the connection's user.
    Allowed(UserId),
    /// It sent one less than the minimum gap ago.
    TooSoon,
    /// No such connection (closed, or never opened).
    Unknown,
}

impl Store {
    /// Issues a ticket for one handshake by `user` within [`TICKET_TTL_SECS`].
    pub async fn issue_ticket(&self, user: &UserId, now: Timestamp) -> Result<Ticket, StoreError> {
        let ticket = Ticket::new(user);
        let item = TicketItem {
            pk: keys::ticket_pk(&ticket.hash()),
            sk: keys::TICKET.to_owned(),
            user: user.clone(),
            expires_at: now.unix() + TICKET_TTL_SECS,
        };
        self.client
            .put_item()
            .table_name(self.table())
            .set_item(Some(encode(&item)?))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(ticket)
    }

    /// Opens a connection with a ticket, using the ticket up: one transaction deletes the
    /// unexpired ticket of an active user and records the connection both ways, so of two
    /// handshakes with one ticket exactly one succeeds.
    pub async fn open_connection(
        &self,
        ticket: &Ticket,
        connection: &ConnectionId,
        now: Timestamp,
    ) -> Result<(), ConnectError> {
        let user = ticket.user();
        let expires_at = now.unix() + CONNECTION_TTL_SECS;
        let mut tx = Tx::default();
        tx.delete(
            Step::Ticket,
            key(keys::ticket_pk(&ticket.hash()), keys::TICKET),
            Cond::new()
                .exists(attr::PK)
                .eq(attr::TICKET_USER, s(user.as_str()))
                .gt(attr::EXPIRES_AT, n(now.unix())),
        );
        tx.check(
            Step::Profile,
            key(keys::user_pk(user), keys::PROFILE),
            Cond::new().eq(attr::IS_ACTIVE, AttributeValue::Bool(true)),
        );
        let mine = ConnectionItem {
            pk: keys::user_pk(user),
            sk: keys::connection_sk(connection),
            connection: connection.clone(),
            connected_at: now,
            expires_at,
        };
        tx.put(Step::Connection, encode(&mine)?, Cond::new());
        let owner = ConnectionOwnerItem {
            pk: keys::connection_pk(connection),
            sk: keys::CONNECTION.to_owned(),
            user: user.clone(),
            expires_at,
            typing_at: None,
        };
        tx.put(Step::Connection, encode(&owner)?, Cond::new().missing(attr::PK));
        match self.transact(tx).await {
            Ok(()) => Ok(()),
            Err(f) if f.failed(Step::Ticket) || f.failed(Step::Profile) => Err(ConnectError::BadTicket),
            Err(f) => Err(StoreError::from(f).into()),
        }
    }

    /// Forgets a connection API Gateway reports closed: its owner record says whose it was.
    /// Returns that user, or `None` if it was already gone.
    pub async fn disconnect(&self, connection: &ConnectionId) -> Result<Option<UserId>, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key(keys::connection_pk(connection), keys::CONNECTION)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        let Some(old) = out.attributes else { return Ok(None) };
        let owner: ConnectionOwnerItem = decode(old)?;
        self.client
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key(keys::user_pk(&owner.user), keys::connection_sk(connection))))
            .send()
            .await
            .map_err(StoreError::from_sdk)?;
        Ok(Some(owner.user))
    }

    /// Forgets a connection that API Gateway says is gone (410), both records in one call.
    pub async fn drop_connection(&self, user: &UserId, connection: &ConnectionId) -> Result<(), StoreError> {
        let delete = |pk: String, sk: String| {
            WriteRequest::builder()
                .delete_request(DeleteRequest::builder().set_key(Some(key(pk, sk))).build().expect("key set"))
                .build()
        };
        self.batch_write(vec![
            delete(keys::user_pk(user), keys::connection_sk(connection)),
            delete(keys::connection_pk(connection), keys::CONNECTION.to_owned()),
        ])
        .await
    }

    /// The open connections of each of `users`: one query per user, all at once. Records past
    /// their expiry are left out even before DynamoDB's TTL removes them (which can take days).
    pub async fn connections_of(
        &self,
        users: &[UserId],
        now: Timestamp,
    ) -> Result<Vec<OpenConnection>, StoreError> {
        let queries = users.iter().map(|user| async move {
            let mut found = Vec::new();
            let mut start = None;
            loop {
                let out = self
                    .client
                    .query()
                    .table_name(self.table())
                    .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
                    .filter_expression("#exp > :now")
                    .expression_attribute_names("#pk", attr::PK)
                    .expression_attribute_names("#sk", attr::SK)
                    .expression_attribute_names("#exp", attr::EXPIRES_AT)
                    .expression_attribute_values(":pk", s(keys::user_pk(user)))
                    .expression_attribute_values(":prefix", s(keys::CONNECTION_PREFIX))
                    .expression_attribute_values(":now", n(now.unix()))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(StoreError::from_sdk)?;
                for item in out.items.unwrap_or_default() {
                    let item: ConnectionItem = decode(item)?;
                    found.push(OpenConnection {
                        user: user.clone(),
                        id: item.connection,
                        connected_at: item.connected_at,
                    });
                }
                start = out.last_evaluated_key;
                if start.is_none() {
                    return Ok::<_, StoreError>(found);
                }
            }
        });
        Ok(try_join_all(queries).await?.into_iter().flatten().collect())
    }

    /// Lets a connection send a typing notice at most once per `min_gap_ms`, across every
    /// instance of the function: one conditional update of its owner record, which also says
    /// whose connection it is.
    pub async fn typing_gate(
        &self,
        connection: &ConnectionId,
        now_ms: i64,
        min_gap_ms: i64,
    ) -> Result<TypingGate, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(keys::connection_pk(connection), keys::CONNECTION)))
            .update_expression("SET #t = :now")
            .condition_expression("attribute_exists(#pk) AND (attribute_not_exists(#t) OR #t <= :cutoff)")
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#t", attr::TYPING_AT)
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":cutoff", n(now_ms - min_gap_ms))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let owner: ConnectionOwnerItem =
                    decode(out.attributes.ok_or_else(|| StoreError::Corrupt("no attributes".into()))?)?;
                Ok(TypingGate::Allowed(owner.user))
            }
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => {
                let old = e.as_service_error().and_then(|s| match s {
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c) => {
                        c.item.clone()
                    }
                    _ => None,
                });
                Ok(if old.is_some_and(|i| !i.is_empty()) { TypingGate::TooSoon } else { TypingGate::Unknown })
            }
            Err(e) => Err(StoreError::from_sdk(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_round_trip_and_hide_their_secret() {
        let user: UserId = "u_1".parse().unwrap();
        let ticket = Ticket::new(&user);
        let text = ticket.to_string();
        assert_eq!(text.parse::<Ticket>().unwrap(), ticket);
        assert!(!format!("{ticket:?}").contains(&ticket.secret));
        assert_ne!(Ticket::new(&user), ticket);
        for bad in [
            "",
            "u_1",
            "u_1.",
            "u 1.AAAA",
            &format!("u_1.{}", "A".repeat(42)),
            &format!("u_1.{}!", "A".repeat(42)),
        ] {
            assert!(bad.parse::<Ticket>().is_err(), "{bad:?}");
        }
    }
}
