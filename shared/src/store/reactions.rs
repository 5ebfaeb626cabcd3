//! Reactions to messages: queued under the thread and applied by the next append (`append`),
//! so that a dozen people reacting at once, and sending meanwhile, are written a batch at a
//! time rather than one transaction each.

use std::collections::HashMap;

use super::append::{AppendRead, PENDING_MAX_AGE_SECS, Queued, SendRead, plan_append};
use super::items::{MessageItem, QueuedReaction};
use super::retry::{Next, Why, retrying};
use super::threads::WriteError;
use super::{Store, StoreError, keys};
use crate::domain::ids::{Seq, ThreadId};
use crate::domain::model::Message;
use crate::domain::reaction::{Emoji, MAX_EMOJIS};
use crate::domain::rules::{self, Actor, Refusal};
use crate::domain::timestamp::Timestamp;

/// Whether a message shows the reaction as asked: the user among the emoji's, or not.
fn shows(item: &MessageItem, queued: &QueuedReaction) -> bool {
    let has = item.reactions.iter().any(|r| r.emoji == queued.emoji && r.users.contains(&queued.user));
    has == queued.on
}

/// Whether a reaction asked for could not be added: the message has all its emoji, not this one.
fn full(item: &MessageItem, queued: &QueuedReaction) -> bool {
    queued.on && item.reactions.len() >= MAX_EMOJIS && !item.reactions.iter().any(|r| r.emoji == queued.emoji)
}

impl Store {
    /// Adds (`on`) or takes away `actor`'s reaction `emoji` to a message; both are idempotent
    /// and answer the message as it is then. Like an edit it moves the thread's version (so
    /// `?since=` shows the message as changed, and the live event goes out), but no one's
    /// unread count and not the thread's activity.
    pub async fn react(
        &self,
        actor: &Actor,
        thread: &ThreadId,
        seq: Seq,
        emoji: &Emoji,
        on: bool,
    ) -> Result<Message, WriteError> {
        let user = actor.user().ok_or(Refusal::NotFound)?;
        let now = Timestamp::now();
        let queued = QueuedReaction {
            pk: keys::thread_pk(thread),
            sk: keys::queued_reaction_sk(seq, emoji.as_str(), user),
            user: user.clone(),
            seq: seq.0,
            emoji: emoji.clone(),
            on,
            request: uuid::Uuid::new_v4().simple().to_string(),
            queued_at: now,
            expires_at: now.unix() + PENDING_MAX_AGE_SECS * 2,
        };
        // On an instance that knows the reactor takes part, queueing and every read are one
        // round trip, as for a send; otherwise their view comes first, so that nothing is queued
        // for someone outside the thread.
        if !self.hints.participants(thread).is_some_and(|p| p.contains(user)) {
            let mine = self.membership(user, thread).await?.ok_or(Refusal::NotFound)?;
            rules::may_take_part(actor, &mine.thread)?;
        }
        let queued = &queued;
        retrying("reaction", |attempt| async move {
            let queue = async {
                match attempt {
                    0 => self.queue_reaction(queued).await,
                    _ => Ok(()),
                }
            };
            let (views, mut waiting, target, ()) = tokio::try_join!(
                self.member_and_others(user, thread),
                self.waiting(thread),
                self.message_item(thread, seq, true),
                queue,
            )?;
            let Some(target) = target.filter(|t| t.deleted.is_none()) else {
                self.unqueue(&queued.pk, &queued.sk).await?;
                return Err(Refusal::NotFound.into());
            };
            let Some((me, others)) = views else {
                self.unqueue(&queued.pk, &queued.sk).await?;
                return Err(Refusal::NotFound.into());
            };
            rules::may_take_part(actor, &me.thread)?;
            let mine = |w: &Queued| matches!(w, Queued::Reaction(r) if r.request == queued.request);
            if !waiting.iter().any(mine) {
                if attempt == 0 {
                    // Queued beside the query, which may not have seen it.
                    waiting.push(Queued::Reaction(queued.clone()));
                } else if shows(&target, queued) {
                    // Another's append applied it.
                    return Ok(Next::Done(target.into_message()));
                } else if full(&target, queued) {
                    return Err(Refusal::TooManyReactions.into());
                } else {
                    // Dropped, or replaced by another of the user's own: queued again.
                    self.queue_reaction(queued).await?;
                    waiting.push(Queued::Reaction(queued.clone()));
                }
            }
            let views = SendRead { mine: me, others };
            if views.missing().next().is_some() {
                if self.participants_changed(&views.mine.thread).await? {
                    return Ok(Next::Retry(Why::Unsettled));
                }
                return Err(StoreError::Corrupt(format!("thread {thread} lacks a membership")).into());
            }
            let targets = self.targets(thread, &waiting, HashMap::from([(seq, target)])).await?;
            let read = AppendRead { views, waiting, targets };
            let (tx, batch) = plan_append(&read, Timestamp::now())?;
            match self.transact(tx).await {
                Ok(()) => {
                    if batch.refusal(&queued.request).is_some() {
                        return Err(Refusal::TooManyReactions.into());
                    }
                    match batch.reacted.into_iter().find(|r| r.request == queued.request) {
                        Some(done) => Ok(Next::Done(done.message)),
                        // The batch was full before this one: the next append takes it.
                        None => Ok(Next::Retry(Why::Moved)),
                    }
                }
                Err(f) => f.why().map(Next::Retry).ok_or_else(|| StoreError::from(f).into()),
            }
        })
        .await
    }
}
