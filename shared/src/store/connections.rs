//! WebSocket tickets and connections: who may open a connection, and which connections each
//! user has open, for the fan-out.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, ReturnValue, ReturnValuesOnConditionCheckFailure, WriteRequest,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::try_join_all;
use sha2::{Digest, Sha256};

use super::error::is_condition_failure;
use super::expr::{Change, Cond};
use super::items::{ConnectionItem, ConnectionOwnerItem, TicketItem, attr, decode, encode};
use super::retry::{Next, Why, retrying};
use super::tx::{Step, Tx};
use super::{Store, StoreError, key, keys, n, s};
use crate::domain::ids::{ConnectionId, ThreadId, UserId};
use crate::domain::model::OpenConnection;
use crate::domain::timestamp::Timestamp;

/// How long a ticket may wait for its handshake: long enough for a slow network, short enough
/// that one read off a screen or a log is worthless.
pub const TICKET_TTL_SECS: i64 = 30;

/// API Gateway closes every connection after two hours ("Connection duration for WebSocket
/// API: 2 hours", API Gateway quotas for WebSocket APIs); a record left by a lost
/// `$disconnect` expires then.
pub const CONNECTION_TTL_SECS: i64 = 2 * 60 * 60;

/// How many tickets a user is issued per window of [`TICKET_WINDOW_SECS`]: one per
/// connection, so a client reconnecting with backoff (1 s, 2 s, 4 s ... up to 30 s) never
/// comes near it, even with ten connections (the most a user keeps) reconnecting at once; a script
/// opening sockets in a loop is stopped within a second.
pub const TICKETS_PER_WINDOW: u64 = 20;

/// The ticket window: it opens with a user's first ticket and lasts this long.
pub const TICKET_WINDOW_SECS: i64 = 60;

/// A WebSocket ticket: the user it is for and a random secret, shown as `<user>.<secret>`.
/// The token version it was issued for is part of it too (`<user>.<version>.<secret>`): the
/// handshake checks both in the same transaction that uses the ticket up, and the stored hash
/// covers them, so neither can be changed.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket {
    user: UserId,
    token_version: u64,
    secret: String,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket").field("user", &self.user).finish_non_exhaustive()
    }
}

impl std::fmt::Display for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.user, self.token_version, self.secret)
    }
}

/// Why a string is not a ticket.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a ticket")]
pub struct InvalidTicket;

impl std::str::FromStr for Ticket {
    type Err = InvalidTicket;
    fn from_str(text: &str) -> Result<Self, InvalidTicket> {
        let mut parts = text.splitn(3, '.');
        let (Some(user), Some(version), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(InvalidTicket);
        };
        // Digits only: `parse` would take a sign, and two spellings must not name one ticket.
        if version.is_empty() || version.len() > 19 || !version.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidTicket);
        }
        let token_version: u64 = version.parse().map_err(|_| InvalidTicket)?;
        // 32 bytes, base64url without padding.
        let well_formed =
            secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !well_formed {
            return Err(InvalidTicket);
        }
        Ok(Self { user: user.parse().map_err(|_| InvalidTicket)?, token_version, secret: secret.to_owned() })
    }
}

impl Ticket {
    fn new(user: &UserId, token_version: u64) -> Self {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Self { user: user.clone(), token_version, secret: URL_SAFE_NO_PAD.encode(bytes) }
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
    /// Counts one ticket for `user` in their window, if it has room: `Ok(Ok(()))`, or
    /// `Ok(Err(seconds))` until the window ends. One conditional update per ticket (two when a
    /// window has ended), so the count holds across instances at any concurrency. A retried
    /// update that had landed counts a ticket twice: the limit errs on the safe side.
    pub async fn take_ticket_slot(&self, user: &UserId, now: i64) -> Result<Result<(), i64>, StoreError> {
        let k = &key(keys::user_pk(user), keys::TICKET_WINDOW);
        retrying("ticket window", |_| async move {
            let end = n(now + TICKET_WINDOW_SECS);
            let counted = self
                .update_item(
                    k.clone(),
                    &Change::new()
                        .set_if_missing(attr::WINDOW_END, end.clone())
                        .set_if_missing(attr::EXPIRES_AT, end.clone())
                        .add(attr::COUNT, n(1)),
                    &Cond::new().missing(attr::WINDOW_END).or(Cond::new().gt(attr::WINDOW_END, n(now)).and(
                        Cond::new()
                            .missing(attr::COUNT)
                            .or(Cond::new().lt(attr::COUNT, n(TICKETS_PER_WINDOW))),
                    )),
                )
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let old = match counted {
                Ok(_) => return Ok(Next::Done(Ok(()))),
                Err(e) if is_condition_failure(&e) => match e.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item.unwrap_or_default(),
                    _ => Default::default(),
                },
                Err(e) => return Err(StoreError::from_sdk(e)),
            };
            let window_end =
                old.get(attr::WINDOW_END).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
            if let Some(window_end) = window_end.filter(|e| *e > now) {
                // A request that read its clock before the one that opened the window waits no
                // longer than a window.
                return Ok(Next::Done(Err((window_end - now).clamp(1, TICKET_WINDOW_SECS))));
            }
            // The window has ended (TTL removes it only eventually): open a new one, unless a
            // concurrent request just did (then count in that one).
            let mut item = k.clone();
            item.insert(attr::WINDOW_END.into(), end.clone());
            item.insert(attr::EXPIRES_AT.into(), end);
            item.insert(attr::COUNT.into(), n(1));
            let ended = Cond::new().missing(attr::PK).or(Cond::new().le(attr::WINDOW_END, n(now)));
            match self.put_item(item, &ended).send().await {
                Ok(_) => Ok(Next::Done(Ok(()))),
                Err(e) if is_condition_failure(&e) => Ok(Next::Retry(Why::Moved)),
                Err(e) => Err(StoreError::from_sdk(e)),
            }
        })
        .await
    }

    /// Issues a ticket for one handshake by `user` within [`TICKET_TTL_SECS`]. The handshake
    /// needs the user's token version to be `token_version` still (that of the access token
    /// the ticket was asked with): a password change made in between voids it.
    pub async fn issue_ticket(
        &self,
        user: &UserId,
        token_version: u64,
        now: Timestamp,
    ) -> Result<Ticket, StoreError> {
        let ticket = Ticket::new(user, token_version);
        let item = TicketItem {
            pk: keys::ticket_pk(&ticket.hash()),
            sk: keys::TICKET.to_owned(),
            user: user.clone(),
            expires_at: now.unix() + TICKET_TTL_SECS,
            token_version,
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
    /// unexpired ticket, checks that its user is active with the token version the ticket was
    /// issued for, and records the connection both ways. So of two handshakes with one ticket
    /// exactly one succeeds, and a deactivation or password change either comes first and
    /// refuses the handshake, or comes after and finds the connection to close.
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
        // Profiles written before token versions existed have none: version 0.
        tx.check(
            Step::Profile,
            key(keys::user_pk(user), keys::PROFILE),
            Cond::new()
                .eq(attr::IS_ACTIVE, AttributeValue::Bool(true))
                .number_is(attr::TOKEN_VERSION, ticket.token_version),
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
        self.query_connections(users, now, false).await
    }

    /// The open connections of `user`, read strongly consistently: every connection whose
    /// `$connect` has recorded it, for closing them or counting them against a cap.
    pub async fn current_connections(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Vec<OpenConnection>, StoreError> {
        self.query_connections(std::slice::from_ref(user), now, true).await
    }

    async fn query_connections(
        &self,
        users: &[UserId],
        now: Timestamp,
        consistent: bool,
    ) -> Result<Vec<OpenConnection>, StoreError> {
        let queries = users.iter().map(|user| async move {
            let q = self
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
                .consistent_read(consistent);
            self.query_items(q, None)
                .await?
                .into_iter()
                .map(|item| {
                    let item: ConnectionItem = decode(item)?;
                    Ok(OpenConnection {
                        user: user.clone(),
                        id: item.connection,
                        connected_at: item.connected_at,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
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

impl Store {
    /// Lets `user` have one typing notice relayed in `thread` per `min_gap_ms`, whichever of
    /// their connections sends it, across every instance of the function: one conditional
    /// update of a small item that expires by itself. True if this one may go.
    pub async fn typing_slot(
        &self,
        user: &UserId,
        thread: &ThreadId,
        now_ms: i64,
        min_gap_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(self.table())
            .set_key(Some(key(keys::user_pk(user), keys::typing_sk(thread))))
            .update_expression("SET #t = :now, #exp = :exp")
            .condition_expression("attribute_not_exists(#t) OR #t <= :cutoff")
            .expression_attribute_names("#t", attr::TYPING_AT)
            .expression_attribute_names("#exp", attr::EXPIRES_AT)
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":cutoff", n(now_ms - min_gap_ms))
            // Long past the gap; TTL tidies up when it gets round to it.
            .expression_attribute_values(":exp", n(now_ms / 1000 + 3600))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
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
        let ticket = Ticket::new(&user, 3);
        let text = ticket.to_string();
        assert!(text.starts_with("u_1.3."), "{text}");
        assert_eq!(text.parse::<Ticket>().unwrap(), ticket);
        assert!(!format!("{ticket:?}").contains(&ticket.secret));
        assert_ne!(Ticket::new(&user, 3), ticket);
        let secret = "A".repeat(43);
        for bad in [
            "",
            "u_1",
            "u_1.",
            "u 1.0.AAAA",
            &format!("u_1.{secret}"),
            &format!("u_1.+3.{secret}"),
            &format!("u_1.03x.{secret}"),
            &format!("u_1..{secret}"),
            &format!("u_1.0.{}", "A".repeat(42)),
            &format!("u_1.0.{}!", "A".repeat(42)),
        ] {
            assert!(bad.parse::<Ticket>().is_err(), "{bad:?}");
        }
    }
}
