//! Every frame the whole run's WebSocket API sent a client, checked against
//! `docs/events.schema.json`: `make test` has `devstack ws` record them (`--record-frames`)
//! through the end-to-end and browser tests, and runs this last, with `E2E_FRAMES_FILE`.

use bytes::Bytes;
use devstack::websocket::{FrameSource, SentFrame};
use serde_json::Value;

use crate::event_schema::check_frames;

#[test]
#[ignore = "run by `make test` once the end-to-end and browser tests have made their frames"]
fn every_frame_of_the_run_matches_the_schema() {
    let path = std::env::var("E2E_FRAMES_FILE").expect("E2E_FRAMES_FILE (run `make test`)");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let frames: Vec<SentFrame> = text
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            SentFrame {
                connection: v["connection"].as_str().unwrap().to_owned(),
                source: if v["source"] == "reply" { FrameSource::Reply } else { FrameSource::Post },
                data: Bytes::from(v["data"].as_str().unwrap().to_owned()),
            }
        })
        .collect();
    let kinds = check_frames(&frames);
    eprintln!(
        "{} frames of the run checked against docs/events.schema.json, by type: {kinds:?}",
        frames.len()
    );
    // What `live.rs` makes for certain (its thread may exist already, so no `thread.created`;
    // the browser test adds more): a check of nothing, or of
    // a recording that stopped, would pass anything.
    for (kind, at_least) in [
        ("message.created", 6),
        ("message.updated", 3),
        ("message.deleted", 3),
        ("thread.read", 1),
        ("unread.changed", 2),
        ("typing", 2),
        ("pong", 1),
    ] {
        let seen = kinds.get(kind).copied().unwrap_or(0);
        assert!(seen >= at_least, "{kind}: {seen} frames, expected at least {at_least}: {kinds:?}");
    }
}
