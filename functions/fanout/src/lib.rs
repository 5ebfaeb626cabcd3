//! Live delivery: each stream record that means something to clients becomes events, posted to
//! every open connection of every participant of its thread, and to nobody else. A user who is
//! deactivated, or whose password changes, has every connection closed.
//!
//! The send path never waits for this: the table's stream calls it after the write. Records
//! of one item arrive in order (per partition key), so one partition's records are handled in
//! order; different partitions run at once. A record is reported failed, and so redelivered,
//! only when storage failed or a post stayed throttled through every retry; then its events
//! may reach some connections twice, with the same `id`, which clients drop.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use futures_util::StreamExt;
use shared::domain::ids::{MessageId, ThreadId, UserId};
use shared::domain::model::OpenConnection;
use shared::domain::timestamp::Timestamp;
use shared::realtime::{
    CloseReason, Closing, Delivery, Event as LiveEvent, MessageData, OnGone, Payload, Pusher,
};
use shared::store::changes::{Change, WriteKind, change_of};
use shared::store::{Store, StoreError};

/// Partitions handled at once within one batch.
const CONCURRENT_PARTITIONS: usize = 8;

/// What the function builds once per instance.
pub struct Fanout {
    /// The table.
    pub store: Store,
    /// Posts to connections.
    pub pusher: Pusher,
}

impl Fanout {
    /// From the environment: `TABLE_NAME` and `WEBSOCKET_URL`.
    pub async fn from_env() -> Result<Self, lambda_runtime::Error> {
        let sdk = shared::app::load_aws_config().await;
        let table = shared::config::table_name_from_env()?;
        let websocket_url = std::env::var("WEBSOCKET_URL").map_err(|_| "WEBSOCKET_URL is not set")?;
        Ok(Self { store: Store::connect(&sdk, table), pusher: Pusher::new(&sdk, &websocket_url) })
    }
}

/// Who an event is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Everyone in the thread now.
    Participants(ThreadId),
    /// These users.
    Users(Vec<UserId>),
    /// Every connection of this user, each closed right after the event.
    Closing(UserId),
}

/// The events one change makes, each with its audience. `record_id` (the stream record's
/// `eventID`) makes the event ids: the same on every redelivery of the record.
pub fn events_of(record_id: &str, change: Change) -> Vec<(LiveEvent, Audience)> {
    let event = |thread: &ThreadId, payload| LiveEvent {
        id: record_id.to_owned(),
        thread: Some(thread.clone()),
        payload,
    };
    match change {
        Change::MessageCreated(message) => {
            let thread = message.thread.clone();
            vec![(
                event(&thread, Payload::MessageCreated(MessageData::Whole { message: Box::new(message) })),
                Audience::Participants(thread),
            )]
        }
        Change::MessageUpdated(message) => {
            let thread = message.thread.clone();
            vec![(
                event(&thread, Payload::MessageUpdated(MessageData::Whole { message: Box::new(message) })),
                Audience::Participants(thread),
            )]
        }
        Change::MessageDeleted { id, sender, deleted } => {
            let thread = id.thread.clone();
            vec![(
                event(&thread, Payload::MessageDeleted { message: id, sender, deleted }),
                Audience::Participants(thread),
            )]
        }
        Change::ThreadRead { thread, user, seq, read_at } => {
            let message = MessageId { thread: thread.clone(), seq };
            vec![(
                event(&thread, Payload::ThreadRead { user, message, read_at }),
                Audience::Participants(thread),
            )]
        }
        Change::ThreadCreated(t) => {
            let audience = Audience::Users(t.participants.clone());
            vec![(event(&t.id.clone(), Payload::ThreadCreated { thread: t.into() }), audience)]
        }
        Change::ThreadChanged { before, after } => {
            let removed: Vec<UserId> =
                before.participants.iter().filter(|p| !after.participants.contains(p)).cloned().collect();
            let id = after.id.clone();
            let audience = Audience::Users(after.participants.clone());
            let mut events = vec![(event(&id, Payload::ThreadUpdated { thread: (*after).into() }), audience)];
            if !removed.is_empty() {
                // For those removed, the thread is gone: it answers them 404 from now on.
                let mut gone = event(&id, Payload::ThreadDeleted {});
                gone.id = format!("{record_id}-removed");
                events.push((gone, Audience::Users(removed)));
            }
            events
        }
        Change::ThreadDeleted(t) => {
            vec![(event(&t.id, Payload::ThreadDeleted {}), Audience::Users(t.participants))]
        }
        Change::CountersChanged { user, counters } => {
            vec![(
                LiveEvent { id: record_id.to_owned(), thread: None, payload: Payload::unread(&counters) },
                Audience::Users(vec![user]),
            )]
        }
        Change::ViewChanged { user, thread, mute, archived } => {
            let (muted, muted_until) = mute.shown(Timestamp::now());
            vec![(
                event(&thread, Payload::MemberUpdated { muted, muted_until, archived }),
                Audience::Users(vec![user]),
            )]
        }
        Change::SignedOut { user } => {
            let reason = CloseReason::SignedOut;
            vec![(
                LiveEvent {
                    id: record_id.to_owned(),
                    thread: None,
                    payload: Payload::ConnectionClosed { reason },
                },
                Audience::Closing(user),
            )]
        }
    }
}

/// Why a record's events did not all go out.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Reading participants or connections, or forgetting a gone one, failed.
    #[error("storage failed")]
    Store(#[from] StoreError),
    /// Some posts stayed throttled or failing through every retry.
    #[error("{0} posts failed")]
    Posts(usize),
    /// The record is not one this code can read.
    #[error("unreadable record: {0}")]
    Unreadable(String),
    /// The batch's connections could not be read (logged once, with the cause).
    #[error("the connections could not be read")]
    ConnectionsUnread,
}

/// What one invocation did, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Events built.
    pub events: usize,
    /// Posts API Gateway took.
    pub delivered: usize,
    /// Connections found gone and forgotten.
    pub gone: usize,
    /// Connections that answered 410 while they may still have been connecting, kept.
    pub connecting: usize,
    /// Posts that failed, and connections that could not be closed.
    pub failed: usize,
    /// Connections closed because their user was signed out.
    pub closed: usize,
}

impl Totals {
    fn merge(&mut self, other: Totals) {
        self.events += other.events;
        self.delivered += other.delivered;
        self.gone += other.gone;
        self.connecting += other.connecting;
        self.failed += other.failed;
        self.closed += other.closed;
    }

    fn add(&mut self, d: &Delivery) {
        self.delivered += d.delivered;
        self.gone += d.gone;
        self.connecting += d.connecting;
        self.failed += d.failed + d.refused;
    }

    fn add_closing(&mut self, c: &Closing) {
        self.closed += c.closed;
        self.gone += c.gone;
        self.failed += c.failed;
    }
}

/// One event of a record, and whose connections it goes to.
struct Outgoing {
    event: LiveEvent,
    users: Vec<UserId>,
    /// Close each of those connections after the event.
    close: bool,
}

/// Handles one batch: the records that failed are reported by sequence number, so Lambda
/// retries from the first of them rather than the whole batch (`ReportBatchItemFailures`).
///
/// In three steps: each partition's records become events with their recipients (in order,
/// participants read once per partition); the recipients' connections are read once for the
/// whole batch (a send to 32 participants makes 32 counter records besides the message, all
/// for the same people); then each partition's events are posted, in order, partitions at once.
/// Every read happens after every write of the batch, so once is as fresh as per record.
pub async fn handle(fanout: &Fanout, event: Event) -> (DynamoDbEventResponse, Totals) {
    let mut partitions: Vec<(String, Vec<EventRecord>)> = Vec::new();
    for record in event.records {
        let pk = serde_json::to_value(&record.change.keys)
            .ok()
            .and_then(|k| k.pointer("/PK/S").and_then(|v| v.as_str()).map(str::to_owned))
            .unwrap_or_default();
        match partitions.iter_mut().find(|(p, _)| *p == pk) {
            Some((_, records)) => records.push(record),
            None => partitions.push((pk, vec![record])),
        }
    }
    // Built eagerly: a lazy `map` closure in the stream's type trips up `Send` inference.
    let planning: Vec<_> = partitions.iter().map(|(_, records)| plan(fanout, records)).collect();
    let plans: Vec<Vec<Planned>> =
        futures_util::stream::iter(planning).buffered(CONCURRENT_PARTITIONS).collect().await;

    let mut users: Vec<UserId> = plans
        .iter()
        .flatten()
        .filter_map(|p| p.events.as_ref().ok())
        .flatten()
        .filter(|o| !o.close)
        .flat_map(|o| o.users.iter().cloned())
        .collect();
    users.sort_unstable();
    users.dedup();
    let connections = match fanout.store.connections_of(&users, Timestamp::now()).await {
        Ok(found) => {
            let mut by_user: HashMap<UserId, Vec<OpenConnection>> = HashMap::new();
            for connection in found {
                by_user.entry(connection.user.clone()).or_default().push(connection);
            }
            Some(by_user)
        }
        Err(e) => {
            tracing::warn!(error = ?shared::telemetry::ErrorChain(&e), "reading connections failed");
            None
        }
    };

    let work: Vec<_> = plans.into_iter().map(|plan| deliver(fanout, plan, connections.as_ref())).collect();
    let results: Vec<_> =
        futures_util::stream::iter(work).buffer_unordered(CONCURRENT_PARTITIONS).collect().await;
    let mut response = DynamoDbEventResponse::default();
    let mut totals = Totals::default();
    for (failed, t) in results {
        response.batch_item_failures.extend(failed);
        totals.merge(t);
    }
    (response, totals)
}

/// One record's events, each with the users it is for; or why there are none to send.
struct Planned<'a> {
    record: &'a EventRecord,
    events: Result<Vec<Outgoing>, RecordError>,
}

/// One partition's records, in order, as events with their recipients. Participants are read
/// once per partition, and a change of participants in it counts for the records after it.
async fn plan<'a>(fanout: &Fanout, records: &'a [EventRecord]) -> Vec<Planned<'a>> {
    let mut participants: HashMap<ThreadId, Vec<UserId>> = HashMap::new();
    let mut planned = Vec::with_capacity(records.len());
    for record in records {
        let events = events_for(fanout, record, &mut participants).await;
        planned.push(Planned { record, events });
    }
    planned
}

async fn events_for(
    fanout: &Fanout,
    record: &EventRecord,
    participants: &mut HashMap<ThreadId, Vec<UserId>>,
) -> Result<Vec<Outgoing>, RecordError> {
    let Some(kind) = WriteKind::parse(&record.event_name) else { return Ok(Vec::new()) };
    let c = &record.change;
    let change = change_of(kind, &c.keys, &c.old_image, &c.new_image)
        .map_err(|e| RecordError::Unreadable(e.to_string()))?;
    let Some(change) = change else { return Ok(Vec::new()) };
    if let Change::ThreadChanged { after, .. } = &change {
        participants.insert(after.id.clone(), after.participants.clone());
    }
    let mut events = Vec::new();
    for (event, audience) in events_of(&record.event_id, change) {
        let users = match audience {
            Audience::Closing(user) => {
                events.push(Outgoing { event, users: vec![user], close: true });
                continue;
            }
            Audience::Users(users) => users,
            Audience::Participants(thread) => match participants.get(&thread) {
                Some(users) => users.clone(),
                None => {
                    let users =
                        fanout.store.thread(&thread).await?.map(|t| t.participants).unwrap_or_default();
                    participants.insert(thread, users.clone());
                    users
                }
            },
        };
        events.push(Outgoing { event, users, close: false });
    }
    Ok(events)
}

/// Posts one partition's events, in order, to the connections read for the batch.
async fn deliver(
    fanout: &Fanout,
    plan: Vec<Planned<'_>>,
    connections: Option<&HashMap<UserId, Vec<OpenConnection>>>,
) -> (Vec<DynamoDbBatchItemFailure>, Totals) {
    let mut failures = Vec::new();
    let mut totals = Totals::default();
    for Planned { record, events } in plan {
        let result = match events {
            Ok(events) => post_all(fanout, events, connections, &mut totals).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(event_id = %record.event_id, error = ?shared::telemetry::ErrorChain(&e), "record not delivered");
            // Unreadable records would fail every retry: they are logged and skipped.
            if !matches!(e, RecordError::Unreadable(_)) {
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                failures.push(failure);
            }
        }
    }
    (failures, totals)
}

async fn post_all(
    fanout: &Fanout,
    events: Vec<Outgoing>,
    connections: Option<&HashMap<UserId, Vec<OpenConnection>>>,
    totals: &mut Totals,
) -> Result<(), RecordError> {
    let mut failed = 0;
    for Outgoing { event, users, close } in events {
        totals.events += 1;
        if close {
            failed += close_all(fanout, &users, &event, totals).await?;
            continue;
        }
        if users.is_empty() {
            continue;
        }
        let connections = connections.ok_or(RecordError::ConnectionsUnread)?;
        let targets: Vec<OpenConnection> =
            users.iter().flat_map(|u| connections.get(u).into_iter().flatten().cloned()).collect();
        if targets.is_empty() {
            continue;
        }
        let delivery = fanout
            .pusher
            .deliver(&fanout.store, &targets, &event.to_frame(), Timestamp::now(), OnGone::Retry)
            .await?;
        totals.add(&delivery);
        failed += delivery.failed;
    }
    if failed > 0 { Err(RecordError::Posts(failed)) } else { Ok(()) }
}

/// Closes every connection of `users`, each told why by `event` first; the connections that
/// could not be closed are kept and counted, so the record is retried. They are read here,
/// strongly consistently, not with the batch's: a handshake whose transaction committed before
/// the change that signs its user out must be found (one after it is refused).
async fn close_all(
    fanout: &Fanout,
    users: &[UserId],
    event: &LiveEvent,
    totals: &mut Totals,
) -> Result<usize, RecordError> {
    let now = Timestamp::now();
    let mut failed = 0;
    for user in users {
        let targets = fanout.store.current_connections(user, now).await?;
        let closing = fanout.pusher.close_all(&fanout.store, &targets, event, now).await?;
        tracing::info!(%user, ?closing, "signed out: connections closed");
        totals.add_closing(&closing);
        failed += closing.failed;
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::domain::model::{Counters, Thread, UnreadTotals};

    fn thread(participants: &[&str]) -> Thread {
        let now: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        Thread {
            id: "t1".parse().unwrap(),
            participants: participants.iter().map(|p| p.parse().unwrap()).collect(),
            owner: "a".parse().unwrap(),
            created: now,
            updated: now,
            message_count: 0,
            deleted_count: 0,
            last_message: None,
            version: Default::default(),
        }
    }

    fn users(names: &[&str]) -> Audience {
        Audience::Users(names.iter().map(|p| p.parse().unwrap()).collect())
    }

    #[test]
    fn removed_participants_hear_the_thread_is_gone_and_nothing_else() {
        let change = Change::ThreadChanged {
            before: Box::new(thread(&["a", "b", "c"])),
            after: Box::new(thread(&["a", "c", "d"])),
        };
        let events = events_of("r1", change);
        assert_eq!(events.len(), 2);
        assert!(matches!(events[0].0.payload, Payload::ThreadUpdated { .. }));
        assert_eq!(events[0].1, users(&["a", "c", "d"]));
        assert_eq!(events[1].0.payload, Payload::ThreadDeleted {});
        assert_eq!(events[1].1, users(&["b"]));
        assert_ne!(events[0].0.id, events[1].0.id, "ids are unique per event");
    }

    #[test]
    fn thread_events_go_to_their_people_and_totals_to_their_owner() {
        let created = events_of("r2", Change::ThreadCreated(thread(&["a", "b"])));
        assert_eq!(created[0].1, users(&["a", "b"]));
        let deleted = events_of("r3", Change::ThreadDeleted(thread(&["a", "b"])));
        assert_eq!(
            (deleted[0].0.payload.clone(), deleted[0].1.clone()),
            (Payload::ThreadDeleted {}, users(&["a", "b"]))
        );
        let counters = Counters {
            thread_count: 2,
            unread_total: 5,
            unread_threads: 1,
            mentions: 1,
            ..Counters::default()
        };
        let totals = events_of("r4", Change::CountersChanged { user: "b".parse().unwrap(), counters });
        assert_eq!(totals[0].1, users(&["b"]));
        assert_eq!(
            totals[0].0.payload,
            Payload::UnreadChanged(UnreadTotals { unread_count: 5, threads: 1, mentions: 1 })
        );
        assert_eq!(totals[0].0.id, "r4");
    }

    #[test]
    fn a_signed_out_user_has_their_connections_closed_and_told_why() {
        let events = events_of("r6", Change::SignedOut { user: "b".parse().unwrap() });
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1, Audience::Closing("b".parse().unwrap()));
        let json: serde_json::Value = serde_json::from_slice(&events[0].0.to_frame()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"id": "r6", "type": "connection.closed", "data": {"reason": "signed_out"}})
        );
    }

    #[test]
    fn message_and_read_events_go_to_the_thread_as_it_is_now() {
        let t: ThreadId = "t1".parse().unwrap();
        let read = Change::ThreadRead {
            thread: t.clone(),
            user: "b".parse().unwrap(),
            seq: shared::domain::ids::Seq(3),
            read_at: "2026-01-02T03:04:05Z".parse().unwrap(),
        };
        let events = events_of("r5", read);
        assert_eq!(events[0].1, Audience::Participants(t));
        let json: serde_json::Value = serde_json::from_slice(&events[0].0.to_frame()).unwrap();
        assert_eq!(json["type"], "thread.read");
        assert_eq!(json["data"]["message"], "t1.3");
        assert_eq!(json["data"]["user"], "b");
    }
}
