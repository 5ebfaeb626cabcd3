//! `docs/events.schema.json`, compiled once, and the check of every frame a WebSocket client
//! was sent against it; shared by the in-process tests (`api/schema.rs`) and the end-to-end run
//! (`e2e/frames.rs`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use devstack::websocket::{FrameSource, SentFrame};
use serde_json::Value;

const SCHEMA: &str = include_str!("../../docs/events.schema.json");

pub static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    let schema: Value = serde_json::from_str(SCHEMA).expect("the schema is JSON");
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema is a valid draft 2020-12 schema")
});

/// What the client may receive as an answer to its own message, rather than as an event.
const REPLIES: [&str; 2] = ["pong", "error"];

/// Checks every frame against the schema, posts as events and route answers as replies, and
/// counts them by `type`. Panics naming each frame at fault and why.
pub fn check_frames(frames: &[SentFrame]) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    let mut faults = Vec::new();
    for frame in frames {
        let text = String::from_utf8_lossy(&frame.data);
        let value: Value = match serde_json::from_slice(&frame.data) {
            Ok(v) => v,
            Err(e) => {
                faults.push(format!("{text}: not JSON: {e}"));
                continue;
            }
        };
        let errors: Vec<String> =
            VALIDATOR.iter_errors(&value).map(|e| format!("{e} at {}", e.instance_path())).collect();
        if !errors.is_empty() {
            faults.push(format!("{text}: {errors:?}"));
        }
        let kind = value["type"].as_str().unwrap_or("?").to_owned();
        let is_reply = REPLIES.contains(&kind.as_str());
        if is_reply != (frame.source == FrameSource::Reply) {
            faults.push(format!("{text}: a {kind} sent as a {:?}", frame.source));
        }
        *kinds.entry(kind).or_default() += 1;
    }
    assert!(
        faults.is_empty(),
        "{} of {} frames do not match docs/events.schema.json:\n{}",
        faults.len(),
        frames.len(),
        faults.join("\n")
    );
    kinds
}
