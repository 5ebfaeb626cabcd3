//! A local event source mapping for DynamoDB Streams: reads the table's stream from DynamoDB
//! Local and invokes the functions the template subscribes to it, with the template's settings.
//!
//! What Lambda does, and so what this does (Lambda developer guide, "Using AWS Lambda with
//! Amazon DynamoDB", with-ddb.html, and the pages it links):
//!
//! - "Lambda polls shards in your DynamoDB stream for records at a base rate of 4 times per
//!   second. When records are available, Lambda invokes your function and waits for the result."
//!   Here every `--poll-interval-ms` (200 ms by default), and again at once after a read that
//!   returned records.
//! - Each event source mapping reads the whole stream with its own position; two functions
//!   subscribed to one stream each see every record.
//! - "Lambda processes records from a shard in order"; "Lambda processes records from parent
//!   shards before child shards": a child shard is read only once its parent is read to its end.
//!   Shards that DynamoDB opens later (it rotates them) are found by re-describing the stream.
//! - Batching ("Polling and batching streams"): "Lambda invokes your function when one of the
//!   following criteria is met: the batching window reaches its maximum value, the batch size
//!   is met, [or] the payload size reaches 6 MB" (the payload limit is not imitated).
//! - Filtering ("Control which events Lambda sends to your function"): records no filter
//!   matches are dropped before batching and never reach the function; the position moves past
//!   them all the same (see [`filter`]).
//! - Errors ("Error handling", services-dynamodb-errors / with-ddb.html): "If your function
//!   returns an error, Lambda retries the batch until processing succeeds or the data expires",
//!   bounded by `MaximumRetryAttempts`; with `BisectBatchOnFunctionError`, "Lambda splits a
//!   failed batch into two batches [...] Splitting a batch does not count towards the retry
//!   quota." Records whose retries are exhausted are discarded and reading goes on. The
//!   on-failure destination that would receive them is NOT imitated: they are only logged
//!   (their sequence numbers, never their images).
//! - Partial batch responses ("Configuring partial batch response with DynamoDB and Lambda",
//!   services-ddb-batchfailurereporting.html): with `ReportBatchItemFailures`, a response
//!   `{"batchItemFailures": [{"itemIdentifier": "<SequenceNumber>"}]}` checkpoints before the
//!   lowest sequence number listed and retries from there; "an empty batchItemFailure list, a
//!   null batchItemFailure list, an empty EventResponse, a null EventResponse" are complete
//!   successes; "an empty string itemIdentifier, a null itemIdentifier, an itemIdentifier with a
//!   bad key name" make the batch a complete failure (so does an identifier naming no record of
//!   the batch); with bisecting also on, "the batch is bisected at the returned sequence number
//!   and Lambda retries only the remaining records."
//! - The function's `Timeout` bounds each invocation; running past it is a function error.
//!
//! Not imitated: `MaximumRecordAgeInSeconds`, `ParallelizationFactor` (shards are read one after
//! another, each in order), `TumblingWindowInSeconds`, `DestinationConfig`, the 6 MB payload
//! limit, and the mapping's own scaling. Streams that appear after the dispatcher started (the
//! table created or re-created later) are read from their start, since everything in them was
//! written after the mapping "was created"; `StartingPosition` applies to the stream found at
//! start. When the table is re-created, what is left in the old stream is read once more before
//! moving to the new one.

pub mod event;
pub mod filter;
pub use crate::invoke;
pub mod mapping;

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_dynamodbstreams::types::ShardIteratorType;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use invoke::{FnInvoker, HttpInvoker, InvokeError, Invoker};
pub use mapping::{Mapping, StartingPosition};

/// How the dispatcher runs, apart from the mappings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The table whose latest stream is read.
    pub table: String,
    /// Pause between reads of a shard that returned nothing.
    pub poll_interval: Duration,
    /// First pause before retrying a failed batch; it doubles with each retry, up to 5 s.
    pub retry_backoff: Duration,
    /// No log line per invocation.
    pub quiet: bool,
}

impl Config {
    /// 200 ms polling, retries after 200 ms, 400 ms, ...
    pub fn new(table: &str) -> Self {
        Self {
            table: table.to_owned(),
            poll_interval: Duration::from_millis(200),
            retry_backoff: Duration::from_millis(200),
            quiet: false,
        }
    }
}

#[derive(Default)]
struct Counters {
    seen: AtomicU64,
    matched: AtomicU64,
    invocations: AtomicU64,
    retries: AtomicU64,
    skipped: AtomicU64,
    delay_samples: AtomicU64,
    delay_total_us: AtomicU64,
    delay_max_us: AtomicU64,
}

/// One mapping's counts since the dispatcher started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingStats {
    /// The function's binary name.
    pub function: String,
    /// `<function logical id>.<event key>`.
    pub mapping: String,
    /// Stream records read.
    pub records_seen: u64,
    /// Records that matched the filters (all records without filters).
    pub records_matched: u64,
    /// Invocations, retries included.
    pub invocations: u64,
    /// Retries (of whole batches, halves or the rest after a partial failure).
    pub retries: u64,
    /// Records discarded after their retries were exhausted.
    pub records_skipped: u64,
    /// Records whose first invocation has started (the delay's samples).
    pub delay_samples: u64,
    /// Mean time from `GetRecords` returning a record to its batch's first invocation starting.
    pub delay_mean: Duration,
    /// The longest such time.
    pub delay_max: Duration,
    /// The polling interval, which adds up to its length before a record is read at all.
    pub poll_interval: Duration,
}

impl MappingStats {
    /// The stats as `GET /stats` shows them.
    pub fn to_json(&self) -> Value {
        json!({
            "function": self.function,
            "mapping": self.mapping,
            "records_seen": self.records_seen,
            "records_matched": self.records_matched,
            "invocations": self.invocations,
            "retries": self.retries,
            "records_skipped": self.records_skipped,
            "delay_samples": self.delay_samples,
            "delay_mean_ms": self.delay_mean.as_secs_f64() * 1000.0,
            "delay_max_ms": self.delay_max.as_secs_f64() * 1000.0,
            "poll_interval_ms": self.poll_interval.as_secs_f64() * 1000.0,
        })
    }
}

/// The running mappings; [`Dispatcher::stop`] ends them.
pub struct Dispatcher {
    mappings: Vec<(Mapping, Arc<Counters>)>,
    poll_interval: Duration,
    stop: watch::Sender<bool>,
    ready: watch::Receiver<usize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Dispatcher {
    /// Starts one task per mapping.
    pub fn spawn(
        dynamodb: aws_sdk_dynamodb::Client,
        streams: aws_sdk_dynamodbstreams::Client,
        invoker: Arc<dyn Invoker>,
        mappings: Vec<Mapping>,
        config: Config,
    ) -> Self {
        let (stop, _) = watch::channel(false);
        let (ready_tx, ready) = watch::channel(0usize);
        let ready_tx = Arc::new(ready_tx);
        let mut tasks = Vec::new();
        let mut with_counters = Vec::new();
        for mapping in mappings {
            let counters = Arc::new(Counters::default());
            with_counters.push((mapping.clone(), counters.clone()));
            let worker = Worker {
                dynamodb: dynamodb.clone(),
                streams: streams.clone(),
                invoker: invoker.clone(),
                mapping,
                config: config.clone(),
                counters,
                ready_tx: ready_tx.clone(),
                is_ready: false,
            };
            let mut stopped = stop.subscribe();
            tasks.push(tokio::spawn(async move {
                tokio::select! {
                    () = worker.run() => {}
                    _ = stopped.wait_for(|s| *s) => {}
                }
            }));
        }
        Self { mappings: with_counters, poll_interval: config.poll_interval, stop, ready, tasks }
    }

    /// Resolves once every mapping has taken its starting position (or found no table yet):
    /// anything written from then on reaches every mapping.
    pub async fn ready(&self) {
        let total = self.mappings.len();
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|n| *n >= total).await;
    }

    /// Every mapping's counts, in the mappings' order.
    pub fn stats(&self) -> Vec<MappingStats> {
        self.mappings
            .iter()
            .map(|(m, c)| {
                let samples = c.delay_samples.load(Ordering::Relaxed);
                let total = c.delay_total_us.load(Ordering::Relaxed);
                MappingStats {
                    function: m.function.clone(),
                    mapping: format!("{}.{}", m.resource, m.event),
                    records_seen: c.seen.load(Ordering::Relaxed),
                    records_matched: c.matched.load(Ordering::Relaxed),
                    invocations: c.invocations.load(Ordering::Relaxed),
                    retries: c.retries.load(Ordering::Relaxed),
                    records_skipped: c.skipped.load(Ordering::Relaxed),
                    delay_samples: samples,
                    delay_mean: Duration::from_micros(total.checked_div(samples).unwrap_or(0)),
                    delay_max: Duration::from_micros(c.delay_max_us.load(Ordering::Relaxed)),
                    poll_interval: self.poll_interval,
                }
            })
            .collect()
    }

    /// Stops every mapping (an invocation under way is abandoned) and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// A matched record waiting for its batch.
struct Pending {
    record: Value,
    read_at: Instant,
}

struct Shard {
    id: String,
    parent: Option<String>,
    iterator: Option<String>,
    /// Where to take an iterator when there is none.
    start: ShardIteratorType,
    last_read: Option<String>,
    pending: VecDeque<Pending>,
    done: bool,
}

/// The stream is gone (or no longer the table's latest).
struct Gone;

struct Worker {
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    invoker: Arc<dyn Invoker>,
    mapping: Mapping,
    config: Config,
    counters: Arc<Counters>,
    ready_tx: Arc<watch::Sender<usize>>,
    is_ready: bool,
}

enum Outcome {
    Success,
    /// Records from this index on failed (partial batch response).
    FailedFrom(usize),
    Failed(String, bool),
}

impl Worker {
    fn log(&self, line: std::fmt::Arguments<'_>) {
        if !self.config.quiet {
            eprintln!(
                "devstack streams: {} ({}.{}) {line}",
                self.mapping.function, self.mapping.resource, self.mapping.event
            );
        }
    }

    fn mark_ready(&mut self) {
        if !self.is_ready {
            self.is_ready = true;
            self.ready_tx.send_modify(|n| *n += 1);
        }
    }

    /// The table's current stream, `None` while there is no table or no stream.
    async fn latest_stream(&self) -> Result<Option<String>, String> {
        match self.dynamodb.describe_table().table_name(&self.config.table).send().await {
            Ok(out) => {
                let Some(table) = out.table else { return Ok(None) };
                let enabled = table.stream_specification.as_ref().is_some_and(|s| s.stream_enabled);
                Ok(table.latest_stream_arn.filter(|_| enabled))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(format!("DescribeTable: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e))),
        }
    }

    async fn run(mut self) {
        let mut first = true;
        let mut last: Option<String> = None;
        let mut said_waiting = false;
        loop {
            let arn = match self.latest_stream().await {
                Ok(Some(arn)) if last.as_ref() != Some(&arn) => arn,
                Ok(_) => {
                    if !said_waiting {
                        self.log(format_args!("waiting for table {} and its stream", self.config.table));
                        said_waiting = true;
                    }
                    first = false;
                    self.mark_ready();
                    tokio::time::sleep(self.config.poll_interval.max(Duration::from_millis(250))).await;
                    continue;
                }
                Err(e) => {
                    self.log(format_args!("{e}; retrying"));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            said_waiting = false;
            let position = if first { self.mapping.starting_position } else { StartingPosition::TrimHorizon };
            first = false;
            self.log(format_args!("reading {arn} from {position:?}"));
            self.run_stream(&arn, position).await;
            last = Some(arn);
        }
    }

    /// Adds the stream's shards not seen yet; on the first call, takes LATEST positions.
    async fn refresh_shards(
        &mut self,
        arn: &str,
        shards: &mut Vec<Shard>,
        known: &mut HashSet<String>,
        initial: Option<StartingPosition>,
    ) -> Result<(), Gone> {
        let mut start_after: Option<String> = None;
        loop {
            let out = match self
                .streams
                .describe_stream()
                .stream_arn(arn)
                .set_exclusive_start_shard_id(start_after.clone())
                .send()
                .await
            {
                Ok(out) => out,
                Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => {
                    return Err(Gone);
                }
                Err(e) => {
                    self.log(format_args!(
                        "DescribeStream: {}",
                        aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)
                    ));
                    return Ok(());
                }
            };
            let Some(description) = out.stream_description else { return Ok(()) };
            for s in description.shards.unwrap_or_default() {
                let Some(id) = s.shard_id else { continue };
                if !known.insert(id.clone()) {
                    continue;
                }
                let closed =
                    s.sequence_number_range.as_ref().is_some_and(|r| r.ending_sequence_number.is_some());
                let mut shard = Shard {
                    id,
                    parent: s.parent_shard_id,
                    iterator: None,
                    start: ShardIteratorType::TrimHorizon,
                    last_read: None,
                    pending: VecDeque::new(),
                    done: false,
                };
                if initial == Some(StartingPosition::Latest) {
                    // Closed shards hold only what was written before: nothing to read.
                    shard.done = closed;
                    shard.start = ShardIteratorType::Latest;
                    if !closed {
                        shard.iterator = self.iterator(arn, &shard).await?;
                    }
                }
                shards.push(shard);
            }
            match description.last_evaluated_shard_id {
                Some(last) => start_after = Some(last),
                None => return Ok(()),
            }
        }
    }

    async fn iterator(&self, arn: &str, shard: &Shard) -> Result<Option<String>, Gone> {
        let mut request = self.streams.get_shard_iterator().stream_arn(arn).shard_id(&shard.id);
        request = match &shard.last_read {
            Some(seq) => {
                request.shard_iterator_type(ShardIteratorType::AfterSequenceNumber).sequence_number(seq)
            }
            None => request.shard_iterator_type(shard.start.clone()),
        };
        match request.send().await {
            Ok(out) => Ok(out.shard_iterator),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Err(Gone),
            Err(e) => {
                self.log(format_args!(
                    "GetShardIterator {}: {}",
                    shard.id,
                    aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)
                ));
                Ok(None)
            }
        }
    }

    async fn run_stream(&mut self, arn: &str, position: StartingPosition) {
        let mut shards = Vec::new();
        let mut known = HashSet::new();
        if self.refresh_shards(arn, &mut shards, &mut known, Some(position)).await.is_err() {
            self.mark_ready();
            return;
        }
        self.mark_ready();
        let mut refreshed = Instant::now();
        let mut refresh = false;
        loop {
            if refresh || refreshed.elapsed() >= Duration::from_secs(1) {
                refreshed = Instant::now();
                refresh = false;
                match self.latest_stream().await {
                    Ok(Some(latest)) if latest == arn => {}
                    Ok(_) => {
                        // Re-created or deleted: what is left of this stream, then the next.
                        let _ = self.pass(arn, &mut shards, true).await;
                        return;
                    }
                    Err(e) => self.log(format_args!("{e}")),
                }
                if self.refresh_shards(arn, &mut shards, &mut known, None).await.is_err() {
                    return;
                }
            }
            match self.pass(arn, &mut shards, false).await {
                Err(Gone) => return,
                Ok((read, ended)) => {
                    refresh |= ended;
                    if !read {
                        tokio::time::sleep(self.config.poll_interval).await;
                    }
                }
            }
        }
    }

    /// Reads every shard that may be read once; whether any returned records, whether any ended.
    async fn pass(&mut self, arn: &str, shards: &mut [Shard], flush: bool) -> Result<(bool, bool), Gone> {
        let (mut read, mut ended) = (false, false);
        for i in 0..shards.len() {
            if shards[i].done {
                continue;
            }
            if let Some(parent) = &shards[i].parent
                && shards.iter().any(|s| &s.id == parent && !s.done)
            {
                continue;
            }
            let (got, end) = self.poll_shard(arn, &mut shards[i], flush).await?;
            read |= got;
            ended |= end;
        }
        Ok((read, ended))
    }

    async fn poll_shard(&mut self, arn: &str, shard: &mut Shard, flush: bool) -> Result<(bool, bool), Gone> {
        if shard.iterator.is_none() {
            shard.iterator = self.iterator(arn, shard).await?;
            if shard.iterator.is_none() {
                return Ok((false, false));
            }
        }
        let iterator = shard.iterator.clone().expect("just set");
        let out = match self.streams.get_records().shard_iterator(iterator).limit(1000).send().await {
            Ok(out) => out,
            Err(e) => {
                let service = e.as_service_error();
                if service.is_some_and(|e| e.is_resource_not_found_exception()) {
                    return Err(Gone);
                }
                if service.is_some_and(|e| e.is_trimmed_data_access_exception()) {
                    shard.last_read = None;
                    shard.start = ShardIteratorType::TrimHorizon;
                } else if !service.is_some_and(|e| e.is_expired_iterator_exception()) {
                    self.log(format_args!(
                        "GetRecords {}: {}",
                        shard.id,
                        aws_sdk_dynamodbstreams::error::DisplayErrorContext(e)
                    ));
                }
                shard.iterator = None;
                return Ok((false, false));
            }
        };
        let read_at = Instant::now();
        let records = out.records.unwrap_or_default();
        let got = !records.is_empty();
        for r in &records {
            self.counters.seen.fetch_add(1, Ordering::Relaxed);
            let record = event::record(r, arn);
            if let Some(seq) = event::sequence_number(&record) {
                shard.last_read = Some(seq.to_owned());
            }
            if filter::any_matches(&self.mapping.filters, &record) {
                self.counters.matched.fetch_add(1, Ordering::Relaxed);
                shard.pending.push_back(Pending { record, read_at });
            }
        }
        shard.iterator = out.next_shard_iterator;
        let shard_ended = shard.iterator.is_none();
        loop {
            let full = shard.pending.len() >= self.mapping.batch_size;
            let waited =
                shard.pending.front().is_some_and(|p| p.read_at.elapsed() >= self.mapping.batching_window);
            if !(full || (!shard.pending.is_empty() && (waited || shard_ended || flush))) {
                break;
            }
            let n = shard.pending.len().min(self.mapping.batch_size);
            let batch: Vec<Pending> = shard.pending.drain(..n).collect();
            self.deliver(batch).await;
        }
        if shard_ended && shard.pending.is_empty() {
            shard.done = true;
        }
        Ok((got, shard_ended))
    }

    fn backoff(&self, retry: u32) -> Duration {
        self.config.retry_backoff.saturating_mul(1 << retry.min(10)).min(Duration::from_secs(5))
    }

    fn may_retry(&self, retries: u32) -> bool {
        self.mapping.maximum_retry_attempts.is_none_or(|max| retries < max)
    }

    /// What a response means under `ReportBatchItemFailures`.
    fn classify(&self, response: &Value, records: &[Value]) -> Outcome {
        if !self.mapping.report_batch_item_failures {
            return Outcome::Success;
        }
        let failures = match response {
            Value::Null => return Outcome::Success,
            Value::Object(o) => match o.get("batchItemFailures") {
                None | Some(Value::Null) => return Outcome::Success,
                Some(Value::Array(list)) => list,
                Some(_) => return Outcome::Failed("batchItemFailures is not a list".into(), false),
            },
            // A string, number... is an EventResponse that is neither empty nor null.
            _ => return Outcome::Success,
        };
        let mut lowest: Option<usize> = None;
        for failure in failures {
            let Some(id) = failure.get("itemIdentifier").and_then(Value::as_str).filter(|s| !s.is_empty())
            else {
                return Outcome::Failed("a batchItemFailures entry has no itemIdentifier".into(), false);
            };
            let Some(index) = records.iter().position(|r| event::sequence_number(r) == Some(id)) else {
                return Outcome::Failed(format!("itemIdentifier {id:?} names no record of the batch"), false);
            };
            lowest = Some(lowest.map_or(index, |l| l.min(index)));
        }
        match lowest {
            None => Outcome::Success,
            Some(i) => Outcome::FailedFrom(i),
        }
    }

    async fn deliver(&mut self, batch: Vec<Pending>) {
        let started = Instant::now();
        for p in &batch {
            let us = started.duration_since(p.read_at).as_micros() as u64;
            self.counters.delay_samples.fetch_add(1, Ordering::Relaxed);
            self.counters.delay_total_us.fetch_add(us, Ordering::Relaxed);
            self.counters.delay_max_us.fetch_max(us, Ordering::Relaxed);
        }
        let mut work: VecDeque<(Vec<Value>, u32)> = VecDeque::new();
        work.push_back((batch.into_iter().map(|p| p.record).collect(), 0));
        while let Some((records, retries)) = work.pop_front() {
            let range = seq_range(&records);
            self.counters.invocations.fetch_add(1, Ordering::Relaxed);
            let t0 = Instant::now();
            let invocation = self.invoker.invoke(&self.mapping.function, event::event(&records));
            let result = match tokio::time::timeout(self.mapping.timeout, invocation).await {
                Ok(r) => r,
                Err(_) => Err(InvokeError::Timeout(self.mapping.timeout)),
            };
            let ms = t0.elapsed().as_millis();
            let outcome = match &result {
                Ok(response) => self.classify(response, &records),
                Err(e @ InvokeError::Invoke(_)) => Outcome::Failed(e.to_string(), false),
                Err(e) => Outcome::Failed(e.to_string(), true),
            };
            let n = records.len();
            match outcome {
                Outcome::Success => self.log(format_args!("<- {n} records [{range}]: ok in {ms} ms")),
                Outcome::FailedFrom(i) => {
                    let rest = records[i..].to_vec();
                    let from = event::sequence_number(&rest[0]).unwrap_or("?").to_owned();
                    if self.may_retry(retries) {
                        let wait = self.backoff(retries);
                        self.log(format_args!(
                            "<- {n} records [{range}]: in {ms} ms, partial batch failure from {from}; retry {} from there in {} ms",
                            retries + 1,
                            wait.as_millis()
                        ));
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(wait).await;
                        work.push_front((rest, retries + 1));
                    } else {
                        self.skip(&rest, retries, &format!("partial batch failure from {from}"), ms);
                    }
                }
                Outcome::Failed(why, function_error) => {
                    if function_error && self.mapping.bisect_batch_on_function_error && n > 1 {
                        let wait = self.backoff(retries);
                        self.log(format_args!(
                            "<- {n} records [{range}]: {why} in {ms} ms; bisecting, halves in {} ms",
                            wait.as_millis()
                        ));
                        tokio::time::sleep(wait).await;
                        let mut first = records;
                        let second = first.split_off(n / 2);
                        work.push_front((second, retries));
                        work.push_front((first, retries));
                    } else if self.may_retry(retries) {
                        let wait = self.backoff(retries);
                        self.log(format_args!(
                            "<- {n} records [{range}]: {why} in {ms} ms; retry {} in {} ms",
                            retries + 1,
                            wait.as_millis()
                        ));
                        self.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(wait).await;
                        work.push_front((records, retries + 1));
                    } else {
                        self.skip(&records, retries, &why, ms);
                    }
                }
            }
        }
    }

    fn skip(&self, records: &[Value], retries: u32, why: &str, ms: u128) {
        self.counters.skipped.fetch_add(records.len() as u64, Ordering::Relaxed);
        self.log(format_args!(
            "<- {} records [{}]: {why} in {ms} ms; retries exhausted ({retries}), records discarded \
             (on-failure destinations are not imitated)",
            records.len(),
            seq_range(records)
        ));
    }
}

fn seq_range(records: &[Value]) -> String {
    let first = records.first().and_then(event::sequence_number).unwrap_or("?");
    let last = records.last().and_then(event::sequence_number).unwrap_or("?");
    if records.len() == 1 { first.to_owned() } else { format!("{first}..{last}") }
}
