//! Importing a Django `manage.py dumpdata auth.user thread` export.
//!
//! The whole file is parsed and checked first; any fault is reported with the object and
//! field at fault and nothing is written. Message text the Django database held but this API
//! refuses (over 10,000 characters, NUL characters) is a fault too unless a [`TextPolicy`]
//! says what to do with it, and every message so changed or skipped is listed in the
//! [`Summary`]. Then users, then threads (each with its messages and read state) are written;
//! ids, hashes, times and order are kept, threads with exactly the same participants each stay
//! a thread of their own, and a second run finds everything in place and writes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use serde_json::Value;
use shared::domain::ids::{ThreadId, UserId};
use shared::domain::model::{MAX_PARTICIPANTS, MAX_TEXT_CHARS, User, is_valid_username};
use shared::domain::timestamp::Timestamp;
use shared::store::{CreateUserError, Imported, ImportedThread, NewUser, Store};

/// One fault in the file: which object, which field, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// `model pk=N`, or the position of an object without a usable model or pk.
    pub object: String,
    /// The field at fault (empty for the object as a whole).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.object, self.message)
        } else {
            write!(f, "{}: field `{}`: {}", self.object, self.field, self.message)
        }
    }
}

/// What to do with a message longer than the API allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LongText {
    /// Keep its first 10,000 characters.
    Truncate,
    /// Leave the message out.
    Skip,
}

/// What to do with a message that contains NUL characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NulText {
    /// Remove the NUL characters (before the length is checked).
    Strip,
    /// Leave the message out.
    Skip,
}

/// The choices for text the Django database held but this API refuses; `None` refuses the
/// import and names every such message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextPolicy {
    /// Messages over [`MAX_TEXT_CHARS`] characters.
    pub long_text: Option<LongText>,
    /// Messages with NUL characters.
    pub nul: Option<NulText>,
}

/// What was wrong with a message's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    /// Longer than the API allows, in characters.
    TooLong {
        /// Its length (after NUL characters were stripped, if they were).
        chars: usize,
    },
    /// NUL characters.
    Nul {
        /// How many.
        count: usize,
    },
}

impl fmt::Display for TextProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { chars } => write!(f, "{chars} characters, over the limit of {MAX_TEXT_CHARS}"),
            Self::Nul { count } => write!(f, "{count} NUL character(s)"),
        }
    }
}

/// What the import did about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextAction {
    /// Cut to the first [`MAX_TEXT_CHARS`] characters.
    Truncated,
    /// NUL characters removed.
    Stripped,
    /// The message was left out, with its read statuses.
    Skipped,
}

/// One message whose text was changed, or that was left out, by the [`TextPolicy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextChange {
    /// The Django message pk.
    pub message: String,
    /// Its thread.
    pub thread: ThreadId,
    /// What was wrong.
    pub problem: TextProblem,
    /// What was done.
    pub action: TextAction,
}

impl fmt::Display for TextChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            TextAction::Truncated => "truncated",
            TextAction::Stripped => "NUL characters removed",
            TextAction::Skipped => "skipped",
        };
        write!(f, "thread.message pk={} (thread {}): {}: {action}", self.message, self.thread, self.problem)
    }
}

/// Threads of the export that have exactly the same participants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedSet {
    /// The participants, sorted.
    pub participants: Vec<UserId>,
    /// The threads, oldest activity first; creating a thread with this set right after the
    /// import returns the last one (unless the table had a thread with the set already that
    /// was active later, such as one made through the API).
    pub threads: Vec<ThreadId>,
}

/// A checked export, ready to write.
#[derive(Debug)]
pub struct Export {
    /// Users with their Django hashes.
    pub users: Vec<User>,
    /// Threads with messages and reads.
    pub threads: Vec<ImportedThread>,
    /// How many read-status objects the file had.
    pub read_statuses: usize,
    /// Participant sets that several threads have.
    pub shared_sets: Vec<SharedSet>,
    /// Messages changed or left out by the text policy.
    pub text_changes: Vec<TextChange>,
    /// Read statuses of messages left out, dropped with them.
    pub read_statuses_dropped: usize,
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Users written now.
    pub users_written: usize,
    /// Users found from an earlier run.
    pub users_present: usize,
    /// Threads written now.
    pub threads_written: usize,
    /// Threads found from an earlier run.
    pub threads_present: usize,
    /// Threads an earlier run imported that were deleted since, left deleted.
    pub threads_deleted_since: usize,
    /// Threads written now that joined a participant set another thread had already (one of
    /// the export's shared sets, or a thread made through the API before the import).
    pub threads_joined_a_set: usize,
    /// Messages in threads written now.
    pub messages_written: usize,
    /// The export's participant sets held by several threads.
    pub shared_sets: Vec<SharedSet>,
    /// Messages changed or left out by the text policy.
    pub text_changes: Vec<TextChange>,
    /// Read statuses dropped with the messages left out.
    pub read_statuses_dropped: usize,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "imported {} users and {} threads ({} messages); already present: {} users, {} threads",
            self.users_written,
            self.threads_written,
            self.messages_written,
            self.users_present,
            self.threads_present
        )?;
        if self.threads_deleted_since > 0 {
            writeln!(
                f,
                "{} threads were imported before and deleted since; left deleted",
                self.threads_deleted_since
            )?;
        }
        let sharing: usize = self.shared_sets.iter().map(|s| s.threads.len()).sum();
        if self.shared_sets.is_empty() {
            writeln!(f, "no two threads share a participant set")?;
        } else {
            writeln!(
                f,
                "{sharing} threads share {} participant set(s), each kept as its own thread",
                self.shared_sets.len(),
            )?;
        }
        if self.threads_joined_a_set > 0 {
            writeln!(
                f,
                "{} threads written now joined a participant set another thread had already",
                self.threads_joined_a_set
            )?;
        }
        for set in &self.shared_sets {
            let users: Vec<&str> = set.participants.iter().map(UserId::as_str).collect();
            let threads: Vec<&str> = set.threads.iter().map(ThreadId::as_str).collect();
            writeln!(
                f,
                "  users {}: threads {} (a new thread with them returns {})",
                users.join(","),
                threads.join(", "),
                threads.last().copied().unwrap_or_default()
            )?;
        }
        writeln!(
            f,
            "{} messages changed or skipped for their text; {} read statuses dropped with skipped messages",
            self.text_changes.len(),
            self.read_statuses_dropped
        )?;
        for change in &self.text_changes {
            writeln!(f, "  {change}")?;
        }
        Ok(())
    }
}

struct Checker {
    faults: Vec<Fault>,
}

impl Checker {
    fn fault(&mut self, object: &str, field: &str, message: impl Into<String>) {
        self.faults.push(Fault {
            object: object.to_owned(),
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn id<T: std::str::FromStr>(&mut self, object: &str, field: &str, v: Option<&Value>) -> Option<T> {
        let text = match v {
            Some(Value::Number(n)) if n.is_u64() => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            None => {
                self.fault(object, field, "missing");
                return None;
            }
            Some(other) => {
                self.fault(object, field, format!("expected an id, got {other}"));
                return None;
            }
        };
        let parsed = text.parse().ok();
        if parsed.is_none() {
            self.fault(object, field, format!("{text:?} is not a usable id"));
        }
        parsed
    }

    fn time(&mut self, object: &str, field: &str, v: Option<&Value>) -> Option<Timestamp> {
        match v.and_then(Value::as_str).map(str::parse::<Timestamp>) {
            Some(Ok(t)) => Some(t),
            _ => {
                self.fault(object, field, "expected an ISO 8601 timestamp");
                None
            }
        }
    }

    fn boolean(&mut self, object: &str, field: &str, v: Option<&Value>) -> Option<bool> {
        let b = v.and_then(Value::as_bool);
        if b.is_none() {
            self.fault(object, field, "expected true or false");
        }
        b
    }

    fn string<'a>(&mut self, object: &str, field: &str, v: Option<&'a Value>) -> Option<&'a str> {
        let s = v.and_then(Value::as_str);
        if s.is_none() {
            self.fault(object, field, "expected a string");
        }
        s
    }
}

struct RawMessage {
    pk: String,
    thread: ThreadId,
    sender: UserId,
    text: String,
    created: Timestamp,
}

/// Parses and checks an export; returns every fault found, or the data to write.
pub fn parse(text: &str, policy: TextPolicy) -> Result<Export, Vec<Fault>> {
    let whole = |message: String| vec![Fault { object: "file".into(), field: String::new(), message }];
    let objects: Vec<Value> = serde_json::from_str(text).map_err(|e| whole(format!("not JSON: {e}")))?;
    let mut c = Checker { faults: Vec::new() };
    let mut users: Vec<User> = Vec::new();
    let mut threads: BTreeMap<String, (ThreadId, UserId, Vec<UserId>, Timestamp, Timestamp)> =
        BTreeMap::new();
    let mut messages: Vec<RawMessage> = Vec::new();
    let mut statuses: Vec<(String, String, UserId, bool, Option<Timestamp>)> = Vec::new();

    for (i, obj) in objects.iter().enumerate() {
        let model = obj.get("model").and_then(Value::as_str).unwrap_or("");
        let pk = match obj.get("pk") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let name = format!("{model} pk={pk}");
        if model.is_empty() || pk.is_empty() {
            c.fault(&format!("object #{}", i + 1), "", "needs a `model` and a `pk`");
            continue;
        }
        let Some(fields) = obj.get("fields").and_then(Value::as_object) else {
            c.fault(&name, "fields", "missing");
            continue;
        };
        let f = |k: &str| fields.get(k);
        match model {
            "auth.user" => {
                let id = c.id::<UserId>(&name, "pk", obj.get("pk"));
                let username = c.string(&name, "username", f("username"));
                if let Some(u) = username.filter(|u| !is_valid_username(u)) {
                    c.fault(&name, "username", format!("{u:?} is not a valid username"));
                }
                let password = c.string(&name, "password", f("password"));
                let is_active = c.boolean(&name, "is_active", f("is_active"));
                let is_staff = c.boolean(&name, "is_staff", f("is_staff"));
                let joined = c.time(&name, "date_joined", f("date_joined"));
                if let (
                    Some(id),
                    Some(username),
                    Some(password),
                    Some(is_active),
                    Some(is_staff),
                    Some(joined),
                ) = (id, username, password, is_active, is_staff, joined)
                {
                    users.push(User {
                        id,
                        username: username.to_owned(),
                        password_hash: password.to_owned(),
                        is_active,
                        is_staff,
                        token_version: 0,
                        date_joined: joined,
                    });
                }
            }
            "thread.thread" => {
                let id = c.id::<ThreadId>(&name, "pk", obj.get("pk"));
                let owner = c.id::<UserId>(&name, "owner", f("owner"));
                let participants: Option<Vec<UserId>> = match f("participants").and_then(Value::as_array) {
                    Some(list) => {
                        list.iter().map(|v| c.id::<UserId>(&name, "participants", Some(v))).collect()
                    }
                    None => {
                        c.fault(&name, "participants", "expected a list of user pks");
                        None
                    }
                };
                let created = c.time(&name, "created", f("created"));
                let updated = c.time(&name, "updated", f("updated"));
                if let (Some(id), Some(owner), Some(participants), Some(created), Some(updated)) =
                    (id, owner, participants, created, updated)
                {
                    threads.insert(pk.clone(), (id, owner, participants, created, updated));
                }
            }
            "thread.message" => {
                let thread = c.id::<ThreadId>(&name, "thread", f("thread"));
                let sender = c.id::<UserId>(&name, "sender", f("sender"));
                let text = c.string(&name, "text", f("text"));
                let created = c.time(&name, "created", f("created"));
                if let (Some(thread), Some(sender), Some(text), Some(created)) =
                    (thread, sender, text, created)
                {
                    messages.push(RawMessage {
                        pk: pk.clone(),
                        thread,
                        sender,
                        text: text.to_owned(),
                        created,
                    });
                }
            }
            "thread.messagereadstatus" => {
                let message = c.id::<String>(&name, "message", f("message"));
                let user = c.id::<UserId>(&name, "user", f("user"));
                let is_read = c.boolean(&name, "is_read", f("is_read"));
                let read_at = match f("read_at") {
                    None | Some(Value::Null) => None,
                    v => c.time(&name, "read_at", v),
                };
                if let (Some(message), Some(user), Some(is_read)) = (message, user, is_read) {
                    statuses.push((name.clone(), message, user, is_read, read_at));
                }
            }
            other => c.fault(&name, "model", format!("unsupported model {other:?}")),
        }
    }
    let export = link(&mut c, policy, users, threads, messages, statuses);
    if c.faults.is_empty() { Ok(export) } else { Err(c.faults) }
}

fn link(
    c: &mut Checker,
    policy: TextPolicy,
    users: Vec<User>,
    threads: BTreeMap<String, (ThreadId, UserId, Vec<UserId>, Timestamp, Timestamp)>,
    messages: Vec<RawMessage>,
    statuses: Vec<(String, String, UserId, bool, Option<Timestamp>)>,
) -> Export {
    let mut ids = HashSet::new();
    let mut names = HashSet::new();
    for u in &users {
        let object = format!("auth.user pk={}", u.id);
        if !ids.insert(u.id.clone()) {
            c.fault(&object, "pk", "appears twice");
        }
        if !names.insert(u.username.clone()) {
            c.fault(&object, "username", format!("{:?} appears twice", u.username));
        }
    }
    let mut sets: BTreeMap<Vec<UserId>, Vec<(Timestamp, ThreadId)>> = BTreeMap::new();
    let mut out: BTreeMap<String, ImportedThread> = BTreeMap::new();
    for (pk, (id, owner, participants, created, updated)) in threads {
        let object = format!("thread.thread pk={pk}");
        let mut distinct: Vec<UserId> = Vec::new();
        for p in &participants {
            if !ids.contains(p) {
                c.fault(&object, "participants", format!("user {p} does not exist"));
            }
            if !distinct.contains(p) {
                distinct.push(p.clone());
            }
        }
        if !ids.contains(&owner) {
            c.fault(&object, "owner", format!("user {owner} does not exist"));
        } else if !distinct.contains(&owner) {
            c.fault(&object, "owner", "the owner is not a participant");
        }
        if distinct.len() < 2 || distinct.len() > MAX_PARTICIPANTS {
            c.fault(&object, "participants", format!("needs 2 to {MAX_PARTICIPANTS} distinct users"));
        }
        let mut key = distinct.clone();
        key.sort();
        sets.entry(key).or_default().push((updated, id.clone()));
        let thread = ImportedThread {
            id,
            owner,
            participants: distinct,
            created,
            updated,
            messages: Vec::new(),
            reads: Vec::new(),
        };
        out.insert(pk, thread);
    }
    // Oldest activity first, ties by id: the order in which the store's thread lists and
    // `create_thread` rank them, so the last one is what a create with the set returns.
    let shared_sets = sets
        .into_iter()
        .filter(|(_, threads)| threads.len() > 1)
        .map(|(participants, mut threads)| {
            threads.sort_by(|a, b| (a.0, a.1.as_str()).cmp(&(b.0, b.1.as_str())));
            SharedSet { participants, threads: threads.into_iter().map(|(_, id)| id).collect() }
        })
        .collect();
    let mut messages = messages;
    // Django ordered messages by creation time; ties keep primary-key order.
    messages.sort_by(|a, b| a.created.cmp(&b.created).then(pk_order(&a.pk, &b.pk)));
    let mut position: HashMap<String, (String, usize, UserId)> = HashMap::new();
    let mut skipped: HashSet<String> = HashSet::new();
    let mut text_changes = Vec::new();
    for m in messages {
        let object = format!("thread.message pk={}", m.pk);
        let Some(thread) = out.get_mut(m.thread.as_str()) else {
            c.fault(&object, "thread", format!("thread {} does not exist", m.thread));
            continue;
        };
        if !thread.participants.contains(&m.sender) {
            c.fault(
                &object,
                "sender",
                format!("user {} is not a participant of thread {}", m.sender, m.thread),
            );
        }
        let Some(text) = fit_text(c, policy, &object, &m, &mut text_changes) else {
            skipped.insert(m.pk);
            continue;
        };
        position.insert(m.pk.clone(), (m.thread.to_string(), thread.messages.len(), m.sender.clone()));
        thread.messages.push((m.sender, text, m.created));
    }
    let read_statuses = statuses.len();
    let mut read_statuses_dropped = 0;
    for (object, message, user, is_read, read_at) in statuses {
        let Some((thread_pk, index, sender)) = position.get(&message) else {
            if skipped.contains(&message) {
                read_statuses_dropped += 1;
            } else {
                c.fault(&object, "message", format!("message {message} does not exist"));
            }
            continue;
        };
        let thread = out.get_mut(thread_pk).expect("positions point at threads");
        if !thread.participants.contains(&user) {
            c.fault(&object, "user", format!("user {user} is not a participant of thread {thread_pk}"));
            continue;
        }
        if is_read && &user != sender {
            let when = read_at.unwrap_or(thread.messages[*index].2);
            thread.reads.push((user, *index, when));
        }
    }
    Export {
        users,
        threads: out.into_values().collect(),
        read_statuses,
        shared_sets,
        text_changes,
        read_statuses_dropped,
    }
}

/// The text to import for a message under the policy, or `None` to leave the message out.
/// Without a choice for a problem, the problem is a fault naming the message, its thread and
/// what is wrong. NUL characters are dealt with first, so a stripped text's length is what
/// the API would see.
fn fit_text(
    c: &mut Checker,
    policy: TextPolicy,
    object: &str,
    m: &RawMessage,
    changes: &mut Vec<TextChange>,
) -> Option<String> {
    let mut change = |problem, action| {
        changes.push(TextChange { message: m.pk.clone(), thread: m.thread.clone(), problem, action });
    };
    let mut text = m.text.clone();
    let nuls = text.matches('\0').count();
    if nuls > 0 {
        let problem = TextProblem::Nul { count: nuls };
        match policy.nul {
            None => {
                c.fault(
                    object,
                    "text",
                    format!(
                        "in thread {}: {problem}, which the API refuses; choose --nul strip or --nul skip",
                        m.thread
                    ),
                );
                // The checks below then name only what `--nul strip` would still leave wrong.
                text = text.replace('\0', "");
            }
            Some(NulText::Skip) => {
                change(problem, TextAction::Skipped);
                return None;
            }
            Some(NulText::Strip) => {
                text = text.replace('\0', "");
                change(problem, TextAction::Stripped);
            }
        }
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        let problem = TextProblem::TooLong { chars };
        match policy.long_text {
            None => c.fault(
                object,
                "text",
                format!("in thread {}: {problem}; choose --long-text truncate or --long-text skip", m.thread),
            ),
            Some(LongText::Skip) => {
                change(problem, TextAction::Skipped);
                return None;
            }
            Some(LongText::Truncate) => {
                text = text.chars().take(MAX_TEXT_CHARS).collect();
                change(problem, TextAction::Truncated);
            }
        }
    }
    if text.trim().is_empty() {
        let why =
            if nuls > 0 { "blank once its NUL characters are removed; use --nul skip" } else { "blank" };
        c.fault(object, "text", format!("in thread {}: {why}", m.thread));
    }
    Some(text)
}

fn pk_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// Checks what the table already holds: a username taken by a different user is a fault.
pub async fn check_against(store: &Store, export: &Export) -> Result<Vec<Fault>, shared::store::StoreError> {
    let mut faults = Vec::new();
    for u in &export.users {
        if let Some(existing) = store.user_by_username(&u.username).await? {
            if existing.id != u.id {
                faults.push(Fault {
                    object: format!("auth.user pk={}", u.id),
                    field: "username".into(),
                    message: format!("{:?} already belongs to user {} in the table", u.username, existing.id),
                });
            }
        } else if store.user(&u.id).await?.is_some() {
            faults.push(Fault {
                object: format!("auth.user pk={}", u.id),
                field: "pk".into(),
                message: "a different user has this id in the table".into(),
            });
        }
    }
    Ok(faults)
}

/// Writes a checked export; `progress` hears about every object written.
pub async fn write(
    store: &Store,
    export: &Export,
    mut progress: impl FnMut(&str, usize, usize),
) -> Result<Summary, Box<dyn std::error::Error>> {
    let mut summary = Summary {
        shared_sets: export.shared_sets.clone(),
        text_changes: export.text_changes.clone(),
        read_statuses_dropped: export.read_statuses_dropped,
        ..Summary::default()
    };
    for (i, u) in export.users.iter().enumerate() {
        let new = NewUser {
            username: u.username.clone(),
            password_hash: u.password_hash.clone(),
            is_staff: u.is_staff,
            is_active: u.is_active,
            id: Some(u.id.clone()),
            date_joined: Some(u.date_joined),
        };
        match store.create_user(new).await {
            Ok(_) => summary.users_written += 1,
            Err(CreateUserError::Taken) => summary.users_present += 1,
            Err(e) => return Err(e.into()),
        }
        progress("users", i + 1, export.users.len());
    }
    for (i, t) in export.threads.iter().enumerate() {
        match store.import_thread(t).await? {
            Imported::Written { shares_set } => {
                summary.threads_written += 1;
                summary.threads_joined_a_set += usize::from(shares_set);
                summary.messages_written += t.messages.len();
            }
            Imported::AlreadyThere => summary.threads_present += 1,
            Imported::DeletedSince => summary.threads_deleted_since += 1,
        }
        progress("threads", i + 1, export.threads.len());
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export_with(text: &str) -> String {
        serde_json::json!([
            {"model": "auth.user", "pk": 1, "fields": {"username": "a", "password": "x", "is_active": true, "is_staff": false, "date_joined": "2026-01-01T00:00:00Z"}},
            {"model": "auth.user", "pk": 2, "fields": {"username": "b", "password": "x", "is_active": true, "is_staff": false, "date_joined": "2026-01-01T00:00:00Z"}},
            {"model": "thread.thread", "pk": 1, "fields": {"owner": 1, "participants": [1, 2], "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z"}},
            {"model": "thread.message", "pk": 7, "fields": {"thread": 1, "sender": 1, "text": text, "created": "2026-01-01T00:00:00Z"}},
        ])
        .to_string()
    }

    #[test]
    fn nul_characters_are_stripped_before_the_length_is_checked() {
        let text = format!("{}\0", "y".repeat(MAX_TEXT_CHARS));
        let strip = TextPolicy { long_text: None, nul: Some(NulText::Strip) };
        let export = parse(&export_with(&text), strip).unwrap();
        assert_eq!(export.threads[0].messages[0].1, "y".repeat(MAX_TEXT_CHARS));
        let faults = parse(&export_with(&text), TextPolicy::default()).unwrap_err();
        assert_eq!(faults.len(), 1, "{faults:?}");
        assert!(faults[0].message.contains("NUL"), "{faults:?}");
    }

    #[test]
    fn truncation_counts_characters_not_bytes() {
        let text = "é".repeat(MAX_TEXT_CHARS + 1);
        let cut = TextPolicy { long_text: Some(LongText::Truncate), nul: None };
        let export = parse(&export_with(&text), cut).unwrap();
        assert_eq!(export.threads[0].messages[0].1.chars().count(), MAX_TEXT_CHARS);
        assert_eq!(
            export.text_changes,
            [TextChange {
                message: "7".into(),
                thread: "1".parse().unwrap(),
                problem: TextProblem::TooLong { chars: MAX_TEXT_CHARS + 1 },
                action: TextAction::Truncated,
            }]
        );
    }

    #[test]
    fn a_text_of_only_nul_characters_cannot_be_stripped_to_nothing() {
        let strip = TextPolicy { long_text: None, nul: Some(NulText::Strip) };
        let faults = parse(&export_with("\0\0"), strip).unwrap_err();
        assert!(faults[0].message.contains("blank once its NUL characters are removed"), "{faults:?}");
        let skip = TextPolicy { long_text: None, nul: Some(NulText::Skip) };
        assert!(parse(&export_with("\0\0"), skip).unwrap().threads[0].messages.is_empty());
    }
}
