//! Warm invocations of a whole function process, the way Lambda runs a warm instance: the
//! release binary, with Lambda's environment, asks the bench's Runtime API
//! (`coldstart::RuntimeApi`) for one API Gateway event after another and answers each against
//! DynamoDB Local. The process's own CPU over the timed invocations, from `/proc`, divided by
//! their number, is what one warm invocation costs: the runtime client, reading the event and
//! writing the response, logging, the SDK's whole request path (signing, the HTTP client, the
//! connection, parsing) and our handler. The in-process bench (`warm.rs`) sees only the last
//! part of that.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::coldstart::WarmRun;
use crate::scenario::Endpoint;
use crate::stats::Summary;

/// What a process has spent on CPU so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTime {
    /// Time on a CPU, every thread summed (`/proc/<pid>/task/*/schedstat`), nanoseconds.
    pub on_cpu_ns: u64,
    /// User and system time (`/proc/<pid>/stat`), in ticks of [`USER_HZ`].
    pub user_ticks: u64,
    pub system_ticks: u64,
}

/// The unit of `/proc/<pid>/stat` times: Linux reports them in USER_HZ, which is 100 on every
/// architecture we run on (x86_64 and arm64), whatever the kernel's own tick rate.
pub const USER_HZ: f64 = 100.0;

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("unexpected {what}"))
}

/// The CPU time of process `pid` so far.
///
/// The split into user and system comes in 10 ms ticks, too coarse for one invocation, so the
/// total comes from the scheduler's nanosecond counts and the split is applied to it in
/// proportion. Threads that ended are in `stat` but no longer in `task/`; our functions run on
/// one thread, and the SDK's pool threads live as long as their connections.
pub fn cpu_of(pid: u32) -> std::io::Result<CpuTime> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name is in parentheses and may hold spaces: the fields start after the last ')'.
    let (_, rest) = stat.rsplit_once(')').ok_or_else(|| invalid("stat line"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // proc(5) numbers utime and stime 14 and 15; after the name, state is the first (0).
    let tick =
        |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).ok_or_else(|| invalid("stat field"));
    let (user_ticks, system_ticks) = (tick(11)?, tick(12)?);
    let mut on_cpu_ns = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread that ended meanwhile has no file any more.
        if let Ok(s) = std::fs::read_to_string(task?.path().join("schedstat")) {
            on_cpu_ns += s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    Ok(CpuTime { on_cpu_ns, user_ticks, system_ticks })
}

/// One function's warm invocations of one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessWarm {
    /// The binary.
    pub function: String,
    /// What it was asked, as in the cold start table.
    pub request: String,
    /// The endpoint, for the API's functions.
    pub endpoint: Option<Endpoint>,
    /// Timed invocations.
    pub invocations: usize,
    /// CPU per invocation, user and system together, µs.
    pub cpu_us: f64,
    /// Its user and system parts, µs.
    pub user_us: f64,
    pub system_us: f64,
    /// From handing out the event to receiving the response.
    pub wall: Summary,
}

impl ProcessWarm {
    /// The figures of one run.
    pub fn of(function: &str, request: &str, endpoint: Option<Endpoint>, run: &WarmRun) -> Self {
        let n = run.walls.len().max(1) as f64;
        let cpu_us = run.after.on_cpu_ns.saturating_sub(run.before.on_cpu_ns) as f64 / 1000.0 / n;
        let user = run.after.user_ticks.saturating_sub(run.before.user_ticks) as f64;
        let system = run.after.system_ticks.saturating_sub(run.before.system_ticks) as f64;
        let user_share = if user + system > 0.0 { user / (user + system) } else { f64::NAN };
        Self {
            function: function.to_owned(),
            request: request.to_owned(),
            endpoint,
            invocations: run.walls.len(),
            cpu_us,
            user_us: cpu_us * user_share,
            system_us: cpu_us * (1.0 - user_share),
            wall: Summary::of(if run.walls.is_empty() { vec![Duration::ZERO] } else { run.walls.clone() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_spent_cpu_and_it_only_grows() {
        let pid = std::process::id();
        let before = cpu_of(pid).unwrap();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = cpu_of(pid).unwrap();
        assert!(after.on_cpu_ns > before.on_cpu_ns, "{before:?} {after:?}");
        assert!(after.user_ticks + after.system_ticks >= before.user_ticks + before.system_ticks);
    }

    #[test]
    fn per_invocation_figures_split_the_total_by_the_ticks() {
        let at = |ns, user, system| CpuTime { on_cpu_ns: ns, user_ticks: user, system_ticks: system };
        let run = WarmRun {
            before: at(1_000_000, 10, 5),
            after: at(5_000_000, 13, 6),
            walls: vec![Duration::from_micros(900); 4],
        };
        let w = ProcessWarm::of("f", "GET /", None, &run);
        assert_eq!((w.invocations, w.cpu_us), (4, 1000.0));
        assert!((w.user_us - 750.0).abs() < 1e-9 && (w.system_us - 250.0).abs() < 1e-9, "{w:?}");
        assert_eq!(w.wall.p50_us, 900.0);
    }
}
