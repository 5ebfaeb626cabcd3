//! Who may do what to threads and messages: every rule in one place, over domain records only.
//! The store applies them to what it read, inside its retries, and makes its writes
//! conditional on that state; it decides nothing itself. Handlers map the refusals to HTTP.

use crate::domain::ids::UserId;
use crate::domain::model::{MAX_PARTICIPANTS, Thread};

/// Who asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A user, through the API: they see only the threads they take part in.
    User(UserId),
    /// Staff, through the admin panel: every thread, as its owner could.
    Staff,
}

impl Actor {
    /// The user, if the actor is one.
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Actor::User(u) => Some(u),
            Actor::Staff => None,
        }
    }

    /// True when the actor may see the thread at all: staff, or a participant. Anyone else is
    /// told it does not exist.
    pub fn sees(&self, thread: &Thread) -> bool {
        self.user().is_none_or(|u| thread.participants.contains(u))
    }

    /// True when the actor acts as the thread's owner: staff, or its owner.
    fn owns(&self, thread: &Thread) -> bool {
        self.user().is_none_or(|u| &thread.owner == u)
    }
}

/// Why a request about a thread was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such thread or message for this actor: a thread they are not in looks exactly like
    /// one that does not exist.
    #[error("not found")]
    NotFound,
    /// Only the thread's owner may do this.
    #[error("only the owner may do this")]
    NotOwner,
    /// Only the message's sender may do this.
    #[error("only the sender may do this")]
    NotSender,
    /// Only the message's sender or the thread's owner may do this.
    #[error("only the sender or the owner may do this")]
    NotSenderOrOwner,
    /// The owner cannot leave.
    #[error("the owner cannot leave")]
    OwnerLeaving,
    /// Leaving would leave fewer than two participants.
    #[error("the last other participant cannot leave")]
    LastOther,
    /// The new participants leave out the owner, who must hand over ownership first.
    #[error("the owner must stay a participant")]
    OwnerLeftOut,
    /// The new owner is not among the participants.
    #[error("the new owner must be a participant")]
    OwnerNotParticipant,
    /// A thread keeps 2 to [`MAX_PARTICIPANTS`] participants, and at most that many join or
    /// leave at once.
    #[error("a thread needs 2 to {MAX_PARTICIPANTS} participants")]
    Size,
    /// Adding someone already in the thread (administration).
    #[error("already a participant")]
    AlreadyIn,
    /// Removing someone not in the thread (administration).
    #[error("not a participant")]
    NotIn,
    /// A message carries at most 20 different emoji.
    #[error("a message has {} different reactions already", crate::domain::reaction::MAX_EMOJIS)]
    TooManyReactions,
    /// A message may mention only the thread's participants.
    #[error("a mention of someone outside the thread")]
    MentionsOutsider,
}

/// May a message (sent by `sender`, or edited, which kept `kept` of its mentions) mention
/// `mentions` in `thread`? Participants only; an edit may keep a mention of someone who has
/// left since, as long as it does not add one.
pub fn may_mention(thread: &Thread, mentions: &[UserId], kept: &[UserId]) -> Result<(), Refusal> {
    match mentions.iter().all(|m| thread.participants.contains(m) || kept.contains(m)) {
        true => Ok(()),
        false => Err(Refusal::MentionsOutsider),
    }
}

/// Who a thread should have, as asked; `None` keeps what is there.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberChange {
    /// The whole new participant set.
    pub participants: Option<Vec<UserId>>,
    /// The new owner, who must be a participant afterwards.
    pub owner: Option<UserId>,
}

/// The participants and owner a thread has after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Members {
    /// Everyone in it, each once, in the order given.
    pub participants: Vec<UserId>,
    /// Its owner, one of them.
    pub owner: UserId,
}

impl Members {
    /// True when this is what the thread has already (the same people in any order, the same
    /// owner).
    pub fn unchanged(&self, thread: &Thread) -> bool {
        self.owner == thread.owner
            && self.participants.len() == thread.participants.len()
            && self.participants.iter().all(|p| thread.participants.contains(p))
    }
}

fn checked(mut participants: Vec<UserId>, owner: UserId) -> Result<Members, Refusal> {
    let mut seen = std::collections::HashSet::new();
    participants.retain(|p| seen.insert(p.clone()));
    if participants.len() < 2 || participants.len() > MAX_PARTICIPANTS {
        return Err(Refusal::Size);
    }
    Ok(Members { participants, owner })
}

/// May the actor read the thread (its view, its messages, a message's readers) or send to it?
pub fn may_take_part(actor: &Actor, thread: &Thread) -> Result<(), Refusal> {
    if actor.sees(thread) { Ok(()) } else { Err(Refusal::NotFound) }
}

/// The thread's members after the actor's change: its owner (or staff) sets who is in it and
/// may hand ownership to a participant. The owner stays in the set unless ownership moves in
/// the same change; a set that leaves them out otherwise is refused, never silently mended.
pub fn change_members(actor: &Actor, thread: &Thread, change: &MemberChange) -> Result<Members, Refusal> {
    may_take_part(actor, thread)?;
    if !actor.owns(thread) {
        return Err(Refusal::NotOwner);
    }
    let participants = change.participants.clone().unwrap_or_else(|| thread.participants.clone());
    let owner = change.owner.clone().unwrap_or_else(|| thread.owner.clone());
    if !participants.contains(&owner) {
        return Err(if change.owner.is_some() {
            Refusal::OwnerNotParticipant
        } else {
            Refusal::OwnerLeftOut
        });
    }
    // Every join and leave is two writes of one transaction (a view and a user's totals): at
    // most this many at once keeps a change within DynamoDB's 100 actions.
    let joins = participants.iter().filter(|p| !thread.participants.contains(p)).count();
    let leaves = thread.participants.iter().filter(|p| !participants.contains(p)).count();
    if joins + leaves > MAX_PARTICIPANTS {
        return Err(Refusal::Size);
    }
    checked(participants, owner)
}

/// The thread's members after `user` leaves: anyone but the owner, while two others remain.
pub fn leave(user: &UserId, thread: &Thread) -> Result<Members, Refusal> {
    may_take_part(&Actor::User(user.clone()), thread)?;
    if &thread.owner == user {
        return Err(Refusal::OwnerLeaving);
    }
    if thread.participants.len() <= 2 {
        return Err(Refusal::LastOther);
    }
    let rest = thread.participants.iter().filter(|p| *p != user).cloned().collect();
    checked(rest, thread.owner.clone())
}

/// The thread's members after staff add a participant.
pub fn add_participant(thread: &Thread, user: &UserId) -> Result<Members, Refusal> {
    if thread.participants.contains(user) {
        return Err(Refusal::AlreadyIn);
    }
    checked(thread.participants.iter().chain([user]).cloned().collect(), thread.owner.clone())
}

/// The thread's members after staff remove a participant other than the owner.
pub fn remove_participant(thread: &Thread, user: &UserId) -> Result<Members, Refusal> {
    if !thread.participants.contains(user) {
        return Err(Refusal::NotIn);
    }
    if &thread.owner == user {
        return Err(Refusal::OwnerLeftOut);
    }
    checked(thread.participants.iter().filter(|p| *p != user).cloned().collect(), thread.owner.clone())
}

/// May the actor delete the thread? Its owner, or staff.
pub fn may_delete_thread(actor: &Actor, thread: &Thread) -> Result<(), Refusal> {
    may_take_part(actor, thread)?;
    if actor.owns(thread) { Ok(()) } else { Err(Refusal::NotOwner) }
}

/// May the actor change the text of a message `sender` sent? Its sender only.
pub fn may_edit_message(actor: &Actor, thread: &Thread, sender: &UserId) -> Result<(), Refusal> {
    may_take_part(actor, thread)?;
    if actor.user() == Some(sender) { Ok(()) } else { Err(Refusal::NotSender) }
}

/// May the actor delete a message `sender` sent? Its sender, or the thread's owner (or staff).
pub fn may_delete_message(actor: &Actor, thread: &Thread, sender: &UserId) -> Result<(), Refusal> {
    may_take_part(actor, thread)?;
    if actor.user() == Some(sender) || actor.owns(thread) { Ok(()) } else { Err(Refusal::NotSenderOrOwner) }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::testing::{id, ids};

    fn thread(participants: &[&str], owner: &str) -> Thread {
        Thread { owner: id(owner), ..crate::domain::testing::thread(participants) }
    }

    fn user(s: &str) -> Actor {
        Actor::User(id(s))
    }

    #[test]
    fn strangers_find_nothing_whatever_they_ask() {
        let t = thread(&["a", "b"], "a");
        let stranger = user("x");
        let change = MemberChange { participants: Some(ids(&["x", "a"])), owner: None };
        assert_eq!(change_members(&stranger, &t, &change), Err(Refusal::NotFound));
        assert_eq!(leave(&id("x"), &t), Err(Refusal::NotFound));
        assert_eq!(may_delete_thread(&stranger, &t), Err(Refusal::NotFound));
        assert_eq!(may_edit_message(&stranger, &t, &id("x")), Err(Refusal::NotFound));
        assert_eq!(may_delete_message(&stranger, &t, &id("x")), Err(Refusal::NotFound));
        assert_eq!(may_take_part(&stranger, &t), Err(Refusal::NotFound));
        assert_eq!(may_take_part(&Actor::Staff, &t), Ok(()));
    }

    #[test]
    fn only_the_owner_changes_members_and_never_drops_themselves_unnoticed() {
        let t = thread(&["a", "b", "c"], "a");
        let set = |p: &[&str]| MemberChange { participants: Some(ids(p)), owner: None };
        assert_eq!(change_members(&user("b"), &t, &set(&["a", "b"])), Err(Refusal::NotOwner));
        assert_eq!(change_members(&user("a"), &t, &set(&["b", "c"])), Err(Refusal::OwnerLeftOut));
        let handed = MemberChange { participants: Some(ids(&["b", "c"])), owner: Some(id("b")) };
        assert_eq!(
            change_members(&user("a"), &t, &handed),
            Ok(Members { participants: ids(&["b", "c"]), owner: id("b") })
        );
        let elsewhere = MemberChange { participants: None, owner: Some(id("x")) };
        assert_eq!(change_members(&user("a"), &t, &elsewhere), Err(Refusal::OwnerNotParticipant));
        assert_eq!(change_members(&user("a"), &t, &set(&["a"])), Err(Refusal::Size));
        let dupes = set(&["a", "b", "b", "a", "c"]);
        assert_eq!(change_members(&user("a"), &t, &dupes).unwrap().participants, ids(&["a", "b", "c"]));
        assert_eq!(
            change_members(&Actor::Staff, &t, &set(&["a", "c"])).unwrap().participants,
            ids(&["a", "c"])
        );
        assert!(change_members(&user("a"), &t, &set(&["c", "b", "a"])).unwrap().unchanged(&t));
    }

    #[test]
    fn leaving_keeps_the_owner_and_two_people() {
        let t = thread(&["a", "b", "c"], "a");
        assert_eq!(leave(&id("a"), &t), Err(Refusal::OwnerLeaving));
        assert_eq!(leave(&id("b"), &t).unwrap().participants, ids(&["a", "c"]));
        assert_eq!(leave(&id("b"), &thread(&["a", "b"], "a")), Err(Refusal::LastOther));
    }

    #[test]
    fn messages_are_edited_by_their_sender_and_deleted_by_sender_or_owner() {
        let t = thread(&["a", "b", "c"], "a");
        assert_eq!(may_edit_message(&user("b"), &t, &id("b")), Ok(()));
        assert_eq!(may_edit_message(&user("a"), &t, &id("b")), Err(Refusal::NotSender));
        assert_eq!(may_delete_message(&user("a"), &t, &id("b")), Ok(()));
        assert_eq!(may_delete_message(&user("b"), &t, &id("b")), Ok(()));
        assert_eq!(may_delete_message(&user("c"), &t, &id("b")), Err(Refusal::NotSenderOrOwner));
        assert_eq!(may_delete_thread(&user("b"), &t), Err(Refusal::NotOwner));
        assert_eq!(may_delete_thread(&Actor::Staff, &t), Ok(()));
    }

    #[test]
    fn staff_add_and_remove_anyone_but_the_owner() {
        let t = thread(&["a", "b"], "a");
        assert_eq!(add_participant(&t, &id("b")), Err(Refusal::AlreadyIn));
        assert_eq!(add_participant(&t, &id("c")).unwrap().participants, ids(&["a", "b", "c"]));
        assert_eq!(remove_participant(&t, &id("a")), Err(Refusal::OwnerLeftOut));
        assert_eq!(remove_participant(&t, &id("c")), Err(Refusal::NotIn));
        assert_eq!(remove_participant(&t, &id("b")), Err(Refusal::Size));
    }
}
