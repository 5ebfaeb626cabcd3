//! What a warm instance remembers between requests to save a round trip: each thread's
//! participants as last read.
//!
//! A send must read every other member's view of the thread (whether each has unread messages
//! decides their counters), and whose views those are is known only once the sender's own
//! membership has been read: two round trips before the write. The deletes of a message and
//! of a thread, and a leave, likewise read what the participants name (their views, the
//! reservation of their set) after the thread. A Lambda instance serves many requests, mostly
//! for threads it has seen, so it keeps each thread's participants as a hint and reads those
//! beside the caller's membership or the thread's metadata. A hint is only a guess of which
//! keys to read: what is read beside it says who the participants are now, whatever the hint
//! missed is read after it, and the write is conditional on what was read, as without hints;
//! where a write could not notice an item missing from what was read (a thread's delete, a
//! leave), the reads are used only when complete. A stale hint costs a round trip, never a
//! wrong answer.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::domain::ids::{ThreadId, UserId};

/// Threads remembered at most: about 1.3 KB each at 32 participants, so under 2 MB.
const MAX_THREADS: usize = 1024;

/// Participants by thread, shared by every clone of a store.
#[derive(Debug, Default)]
pub(crate) struct Hints {
    participants: Mutex<HashMap<ThreadId, Vec<UserId>>>,
}

impl Hints {
    /// The participants of `thread` as last read here, if it was.
    pub(crate) fn participants(&self, thread: &ThreadId) -> Option<Vec<UserId>> {
        self.lock().get(thread).cloned()
    }

    /// Remembers the participants of `thread`, as just read.
    pub(crate) fn remember(&self, thread: &ThreadId, participants: &[UserId]) {
        let mut map = self.lock();
        if let Some(known) = map.get_mut(thread) {
            if known != participants {
                participants.clone_into(known);
            }
            return;
        }
        // Full: start again rather than track recency; the threads in use come back at once.
        if map.len() >= MAX_THREADS {
            map.clear();
        }
        map.insert(thread.clone(), participants.to_vec());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ThreadId, Vec<UserId>>> {
        // A panic while holding the lock cannot leave the map half-written in a way that
        // matters: every entry is only a guess.
        self.participants.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<UserId> {
        names.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn remembers_the_latest_and_stays_bounded() {
        let hints = Hints::default();
        let t: ThreadId = "t1".parse().unwrap();
        assert_eq!(hints.participants(&t), None);
        hints.remember(&t, &ids(&["a", "b"]));
        hints.remember(&t, &ids(&["a", "c"]));
        assert_eq!(hints.participants(&t), Some(ids(&["a", "c"])));
        for i in 0..MAX_THREADS + 1 {
            hints.remember(&format!("x{i}").parse().unwrap(), &ids(&["a"]));
        }
        assert!(hints.lock().len() <= MAX_THREADS);
    }
}
