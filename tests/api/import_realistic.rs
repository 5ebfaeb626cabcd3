//! The Django import on an export shaped like a real one: dozens of users and threads, several
//! threads with exactly the same participants, a thousand messages and mixed read statuses.
//! Everything a user sees afterwards is checked through the API against the export itself.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use msgctl::django::{self, TextPolicy};
use serde_json::{Value, json};
use shared::domain::timestamp::Timestamp;

use crate::helpers::{TestApp, TestUser};

const USERS: u64 = 36;
const UNIQUE_SETS: usize = 40;
/// How many more threads reuse the first few sets: 3 + 3 + 2 + 1 + 1.
const REUSES: [usize; 5] = [3, 3, 2, 1, 1];
const MESSAGES: usize = 1000;

fn at(ms: i64) -> String {
    // 2026-01-01T00:00:00Z plus `ms` milliseconds, in dumpdata's millisecond format.
    let base: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let whole = base.plus_seconds(ms.div_euclid(1000)).to_string();
    format!("{}.{:03}Z", &whole[..19], ms.rem_euclid(1000))
}

/// A `dumpdata auth.user thread` export, the same for the same seed.
pub fn generate(seed: u64) -> Value {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut objects = Vec::new();
    for pk in 1..=USERS {
        objects.push(json!({"model": "auth.user", "pk": pk, "fields": {
            "password": format!("pbkdf2_sha256$260000$salt{pk}$aGFzaA=="),
            "last_login": null, "is_superuser": pk == 1, "username": format!("user{pk}"),
            "first_name": "", "last_name": "", "email": "", "is_staff": pk == 1,
            "is_active": true, "date_joined": at(pk as i64 * 1000), "groups": [], "user_permissions": [],
        }}));
    }
    let mut sets: Vec<Vec<u64>> = Vec::new();
    let mut seen = BTreeSet::new();
    while sets.len() < UNIQUE_SETS {
        let size = match rng.u8(0..20) {
            0..8 => 2,
            8..15 => 3,
            15..18 => 4,
            _ => 5,
        };
        let mut set: Vec<u64> = Vec::new();
        while set.len() < size {
            let u = rng.u64(1..=USERS);
            if !set.contains(&u) {
                set.push(u);
            }
        }
        let mut sorted = set.clone();
        sorted.sort_unstable();
        if seen.insert(sorted) {
            sets.push(set);
        }
    }
    let mut thread_sets = sets.clone();
    for (i, n) in REUSES.iter().enumerate() {
        for _ in 0..*n {
            // Same set, participants listed in another order, as Django's admin would.
            let mut again = sets[i].clone();
            rng.shuffle(&mut again);
            thread_sets.push(again);
        }
    }
    rng.shuffle(&mut thread_sets);

    // Message counts: a few empty threads, the rest share the thousand unevenly.
    let threads = thread_sets.len();
    let mut counts = vec![0usize; threads];
    let talking: Vec<usize> = (0..threads).filter(|i| i % 10 != 7).collect();
    for _ in 0..MESSAGES {
        let i = if rng.bool() {
            talking[rng.usize(..talking.len())]
        } else {
            talking[rng.usize(..talking.len() / 3)]
        };
        counts[i] += 1;
    }
    let mut message_pk = 0u64;
    let mut status_pk = 0u64;
    let mut message_objects = Vec::new();
    let mut status_objects = Vec::new();
    for (i, participants) in thread_sets.iter().enumerate() {
        let pk = i as u64 + 1;
        // Each thread lives in its own stretch of time; the `i` milliseconds keep every
        // `updated` distinct, so the expected order of a user's threads is unambiguous.
        let start = rng.i64(0..60 * 24 * 3600) * 1000 + i as i64;
        let mut now = start;
        let modes: HashMap<u64, u8> = participants.iter().map(|p| (*p, rng.u8(0..20))).collect();
        let mut first_unread: HashMap<u64, usize> = HashMap::new();
        for m in 0..counts[i] {
            // Some messages share a timestamp: Django's pk order breaks the tie.
            if rng.u8(0..20) != 0 {
                now += rng.i64(1..600_000);
            }
            message_pk += 1;
            let sender = participants[rng.usize(..participants.len())];
            let text = match rng.u8(0..30) {
                0 => "unicode ✓ привет 🙂 \"quoted\" <b>tags</b>".to_owned(),
                1 => format!("{}\nsecond line", "long ".repeat(rng.usize(100..1900))),
                _ => format!("message {m} in thread {pk} from {sender}"),
            };
            message_objects.push(json!({"model": "thread.message", "pk": message_pk, "fields": {
                "thread": pk, "sender": sender, "text": text, "created": at(now),
            }}));
            for reader in participants {
                let cut = *first_unread.entry(*reader).or_insert_with(|| rng.usize(0..=counts[i]));
                let is_read = if *reader == sender {
                    // Some Django rows mark senders' own messages read; the import ignores them.
                    if rng.u8(0..10) != 0 {
                        continue;
                    }
                    true
                } else {
                    match modes[reader] {
                        0..6 => true,     // read everything
                        6..14 => m < cut, // read the first part
                        14..17 => false,  // read nothing
                        _ => rng.bool(),  // read here and there
                    }
                };
                status_pk += 1;
                let read_at = is_read.then(|| at(now + rng.i64(1..3_600_000)));
                status_objects.push(json!({"model": "thread.messagereadstatus", "pk": status_pk, "fields": {
                    "message": message_pk, "user": reader, "read_at": read_at, "is_read": is_read,
                }}));
            }
        }
        let owner = participants[rng.usize(..participants.len())];
        objects.push(json!({"model": "thread.thread", "pk": pk, "fields": {
            "owner": owner, "participants": participants,
            "created": at(start - 1000), "updated": at(now + 1 + rng.i64(0..1000) * 1000),
        }}));
    }
    // dumpdata writes objects model by model; messages and statuses in pk order.
    objects.extend(message_objects);
    objects.extend(status_objects);
    Value::Array(objects)
}

/// One message as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub id: String,
    pub sender: String,
    pub text: String,
    pub created: String,
}

/// One thread as the export says it should look.
#[derive(Debug, Clone)]
pub struct ExpectedThread {
    pub id: String,
    pub owner: String,
    pub participants: BTreeSet<String>,
    pub updated: String,
    pub messages: Vec<Msg>,
    /// Per participant: messages from others without a read status saying `is_read`.
    pub unread: BTreeMap<String, u64>,
}

fn id(v: &Value) -> String {
    match v {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => panic!("not an id: {other}"),
    }
}

fn api_time(django: &Value) -> String {
    django.as_str().unwrap().parse::<Timestamp>().unwrap().to_string()
}

/// What every thread should look like, computed from the export alone (not from the importer).
pub fn expected(dump: &Value) -> BTreeMap<String, ExpectedThread> {
    let objects = dump.as_array().unwrap();
    let of = |model: &'static str| objects.iter().filter(move |o| o["model"] == model);
    let mut threads: BTreeMap<String, ExpectedThread> = BTreeMap::new();
    for t in of("thread.thread") {
        let f = &t["fields"];
        let participants: BTreeSet<String> = f["participants"].as_array().unwrap().iter().map(id).collect();
        threads.insert(
            id(&t["pk"]),
            ExpectedThread {
                id: id(&t["pk"]),
                owner: id(&f["owner"]),
                unread: participants.iter().map(|p| (p.clone(), 0)).collect(),
                participants,
                updated: api_time(&f["updated"]),
                messages: Vec::new(),
            },
        );
    }
    let read: BTreeSet<(String, String)> = of("thread.messagereadstatus")
        .filter(|s| s["fields"]["is_read"] == json!(true))
        .map(|s| (id(&s["fields"]["message"]), id(&s["fields"]["user"])))
        .collect();
    let mut messages: Vec<&Value> = of("thread.message").collect();
    messages.sort_by_key(|m| (api_time(&m["fields"]["created"]), m["pk"].as_u64().unwrap()));
    for m in messages {
        let f = &m["fields"];
        let thread = threads.get_mut(&id(&f["thread"])).unwrap();
        let sender = id(&f["sender"]);
        for (user, unread) in thread.unread.iter_mut() {
            if *user != sender && !read.contains(&(id(&m["pk"]), user.clone())) {
                *unread += 1;
            }
        }
        thread.messages.push(Msg {
            id: format!("{}.{}", thread.id, thread.messages.len() + 1),
            sender,
            text: f["text"].as_str().unwrap().to_owned(),
            created: api_time(&f["created"]),
        });
    }
    threads
}

fn token(t: &TestApp, user: &str) -> TestUser {
    let id: shared::domain::ids::UserId = user.parse().unwrap();
    let pair = t.app.jwt.issue_pair(&id, 0);
    TestUser { id, token: pair.access, refresh: pair.refresh }
}

/// Checks, through the API, every user's thread list (order, participants, owner, activity,
/// last message, unread per thread), unread totals, and every thread's messages; reading the
/// messages then clears exactly that reader's unread count and nothing else.
pub async fn verify(t: &TestApp, dump: &Value) {
    let threads = expected(dump);
    let users: Vec<String> = (1..=USERS).map(|u| u.to_string()).collect();
    let mut unread: BTreeMap<(String, String), u64> = BTreeMap::new();
    for user in &users {
        let me = token(t, user);
        let mut mine: Vec<&ExpectedThread> =
            threads.values().filter(|th| th.participants.contains(user)).collect();
        mine.sort_by(|a, b| (&b.updated, &b.id).cmp(&(&a.updated, &a.id)));
        let list = t.get("/api/threads/?limit=100", &me).await;
        assert_eq!(list.status, 200, "{list:?}");
        assert_eq!(list.body["count"], mine.len(), "user {user}");
        let got = list.body["results"].as_array().unwrap();
        let ids: Vec<&str> = got.iter().map(|x| x["id"].as_str().unwrap()).collect();
        let want: Vec<&str> = mine.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, want, "user {user}: threads, latest activity first");
        for (g, w) in got.iter().zip(&mine) {
            let participants: BTreeSet<String> = g["participants"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
                .collect();
            assert_eq!(participants, w.participants, "thread {}", w.id);
            assert_eq!(g["owner"], w.owner.as_str(), "thread {}", w.id);
            assert_eq!(g["updated"], w.updated.as_str(), "thread {}", w.id);
            assert_eq!(g["unread_count"], w.unread[user], "user {user} thread {}", w.id);
            match w.messages.last() {
                None => assert_eq!(g["last_message"], Value::Null),
                Some(last) => assert_eq!(g["last_message"]["id"], last.id.as_str()),
            }
            let one = t.thread_unread(&w.id, &me).await;
            assert_eq!(one, w.unread[user], "user {user} thread {}", w.id);
            unread.insert((user.clone(), w.id.clone()), w.unread[user]);
        }
        let total: u64 = mine.iter().map(|w| w.unread[user]).sum();
        let with_unread = mine.iter().filter(|w| w.unread[user] > 0).count() as u64;
        assert_eq!(t.unread(&me).await, (total, with_unread), "user {user}: totals");
    }
    for thread in threads.values() {
        let reader = token(t, &thread.owner);
        let mut got: Vec<Msg> = Vec::new();
        let mut uri = format!("/api/threads/{}/messages/?limit=100", thread.id);
        loop {
            let page = t.get(&uri, &reader).await;
            assert_eq!(page.status, 200, "{page:?}");
            got.extend(page.body["results"].as_array().unwrap().iter().map(|m| Msg {
                id: m["id"].as_str().unwrap().to_owned(),
                sender: m["sender"].as_str().unwrap().to_owned(),
                text: m["text"].as_str().unwrap().to_owned(),
                created: m["created"].as_str().unwrap().to_owned(),
            }));
            match page.body["next"].as_str() {
                Some(_) => uri = crate::helpers::path_of(&page.body["next"]),
                None => break,
            }
        }
        got.reverse();
        assert_eq!(got, thread.messages, "thread {}: messages in order", thread.id);
        unread.insert((thread.owner.clone(), thread.id.clone()), 0);
    }
    // The owners have now read their threads; everyone else's counts are as imported.
    for user in &users {
        let me = token(t, user);
        let left: Vec<u64> = unread.iter().filter(|((u, _), _)| u == user).map(|(_, n)| *n).collect();
        let expected = (left.iter().sum(), left.iter().filter(|n| **n > 0).count() as u64);
        assert_eq!(t.unread(&me).await, expected, "user {user}: totals after the owners read");
    }
}

/// Every item of the table, sorted by key, to tell whether anything was written.
pub async fn snapshot(t: &TestApp) -> Vec<Vec<(String, AttributeValue)>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = t
            .app
            .store
            .client()
            .scan()
            .table_name(t.app.store.table())
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        for item in out.items.unwrap_or_default() {
            let mut sorted: Vec<(String, AttributeValue)> = item.into_iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            items.push(sorted);
        }
        match out.last_evaluated_key {
            Some(k) => start = Some(k),
            None => break,
        }
    }
    items.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    items
}

fn counts(dump: &Value) -> (usize, usize, usize) {
    let of = |model: &str| dump.as_array().unwrap().iter().filter(|o| o["model"] == model).count();
    (of("thread.thread"), of("thread.message"), of("thread.messagereadstatus"))
}

#[tokio::test]
async fn a_realistic_export_imports_whole_and_a_second_run_writes_nothing() {
    let t = TestApp::spawn().await;
    let dump = generate(7);
    let (threads, messages, statuses) = counts(&dump);
    assert_eq!((threads, messages), (50, MESSAGES));
    assert!((1500..2500).contains(&statuses), "{statuses} read statuses");
    let read = dump.as_array().unwrap().iter().filter(|o| o["fields"]["is_read"] == json!(true)).count();
    println!(
        "export: {USERS} users, {threads} threads, {messages} messages, {statuses} read statuses ({read} read)"
    );
    assert!(read > statuses / 4 && read < statuses * 3 / 4, "a mix of read and unread: {read} of {statuses}");
    let export = django::parse(&dump.to_string(), TextPolicy::default()).unwrap();
    assert!(django::check_against(&t.app.store, &export).await.unwrap().is_empty());
    let summary = django::write(&t.app.store, &export, |_, _, _| {}).await.unwrap();
    println!("import summary:\n{summary}");
    assert_eq!(
        (summary.users_written, summary.threads_written, summary.messages_written),
        (USERS as usize, 50, MESSAGES)
    );
    assert_eq!(summary.shared_sets.len(), REUSES.len());
    let sharing: usize = summary.shared_sets.iter().map(|s| s.threads.len()).sum();
    assert_eq!(sharing, REUSES.iter().map(|n| n + 1).sum::<usize>());
    assert_eq!(summary.threads_joined_a_set, REUSES.iter().sum::<usize>());
    assert!(summary.to_string().contains(&format!("{sharing} threads share 5 participant set(s)")));

    let before = snapshot(&t).await;
    let again = django::write(&t.app.store, &export, |_, _, _| {}).await.unwrap();
    println!("second run:\n{again}");
    assert_eq!((again.users_written, again.threads_written), (0, 0));
    assert_eq!((again.users_present, again.threads_present), (USERS as usize, 50));
    assert!(snapshot(&t).await == before, "the second run changed the table");

    verify(&t, &dump).await;

    // A create with a shared set returns the one of its threads with the latest activity.
    let expected = expected(&dump);
    for set in &summary.shared_sets {
        let newest =
            set.threads.iter().max_by_key(|id| (&expected[id.as_str()].updated, id.as_str())).unwrap();
        assert_eq!(set.threads.last(), Some(newest));
        let caller = token(&t, set.participants[0].as_str());
        let others: Vec<&str> = set.participants[1..].iter().map(|p| p.as_str()).collect();
        let r = t.post("/api/threads/", &caller, json!({ "participants": others })).await;
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.body["id"], newest.as_str());
    }
}

#[tokio::test]
async fn an_import_interrupted_again_and_again_is_finished_by_running_it_again() {
    let t = TestApp::spawn().await;
    let dump = generate(11);
    let export = django::parse(&dump.to_string(), TextPolicy::default()).unwrap();
    // First a run that stops after a third of the threads, as if the process were killed
    // between two of them.
    let mut part = django::parse(&dump.to_string(), TextPolicy::default()).unwrap();
    part.threads.truncate(export.threads.len() / 3);
    django::write(&t.app.store, &part, |_, _, _| {}).await.unwrap();
    // Then runs cut off after a short while, wherever they are: between a thread's messages
    // and its transaction, inside a batch, or with a request in flight that lands anyway.
    let mut interrupted = 0;
    for round in 1..40 {
        // Growing budgets: the first runs stop early however fast the machine is, and a later
        // one has time to finish however slow it is (a rerun re-reads what is already there).
        let budget = Duration::from_millis(40).mul_f64(1.4_f64.powi(round));
        let run = django::write(&t.app.store, &export, |_, _, _| {});
        match tokio::time::timeout(budget, run).await {
            Ok(summary) => {
                let summary = summary.unwrap();
                println!("run {round} finished:\n{summary}");
                break;
            }
            Err(_) => interrupted += 1,
        }
        assert!(round < 39, "no run finished");
    }
    assert!(interrupted >= 2, "only {interrupted} run(s) were interrupted");
    let last = django::write(&t.app.store, &export, |_, _, _| {}).await.unwrap();
    assert_eq!((last.users_written, last.threads_written, last.threads_present), (0, 0, 50));
    verify(&t, &dump).await;
    // Counters are exact sums over memberships (nothing counted twice by a repeated run).
    for u in 1..=USERS {
        let user: shared::domain::ids::UserId = u.to_string().parse().unwrap();
        let expected = expected(&dump).values().filter(|th| th.participants.contains(user.as_str())).count();
        assert_eq!(t.app.store.counters(&user).await.unwrap().thread_count, expected as u64, "user {u}");
    }
}
