//! Guest log capture: every instance's stdout and stderr, line by line, tagged with the worker,
//! the object and the request being served, kept in a bounded ring per worker and streamed to
//! followers (`GET /v1/workers/{worker}/logs`, `warren logs NAME [-f]`).
//!
//! A guest is untrusted and may print as fast and as much as it likes; what it costs here is
//! bounded at every step:
//!
//! * the pipe is read in fixed-size chunks by one tokio task per pipe; a line is cut at
//!   [`LogLimits::max_line_bytes`] (the rest of it, up to the next newline, is skipped and the
//!   kept part ends with [`TRUNCATED`]), so a guest printing forever without a newline costs
//!   one chunk and one line buffer;
//! * each instance has a token bucket of [`InstanceLogLimits::lines_per_sec`] lines per second
//!   (burst as large as the rate) and a lifetime volume of
//!   [`InstanceLogLimits::bytes_per_instance`]; lines past either are dropped, counted and said:
//!   the hub writes a [`Stream::System`] entry such as `42 lines dropped (rate limit of 200
//!   lines/s)` at most once per second per instance, and a final one when the pipe closes.
//!   Once the volume limit is reached everything further is dropped (the pipe is still drained,
//!   so the guest never blocks on a full pipe or dies of `SIGPIPE`), said once when it happens
//!   and once more, with the count, at the end;
//! * each worker's ring keeps the last [`LogLimits::ring_lines_per_worker`] entries (the oldest
//!   go first); followers get a bounded broadcast channel ([`FOLLOW_BUFFER`] entries) and one
//!   that falls behind skips what it missed — [`recv_entry`] turns that into a `System` entry
//!   saying how many.
//!
//! Every kept line is also a `tracing` event with target `warren::guest` and the fields
//! `worker`, `object`, `request_id` and `stream`, so the daemon's own structured log carries it
//! with the same ids.
//!
//! The two pipes of one instance share its budget: capture the first with [`LogHub::capture`]
//! (or [`LogHub::capture_with`]) and the second with [`CaptureHandle::also_capture`].
//!
//! For the API, [`LogRequest::from_query`] parses the endpoint's query string and
//! [`LogHub::body`] makes its `application/x-ndjson` response body (tail, then followed entries).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::fmt;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use percent_encoding::percent_decode_str;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::sync::{broadcast, mpsc, watch};

use crate::error::ApiError;

/// Entries a follower may fall behind by before it skips some.
pub const FOLLOW_BUFFER: usize = 1024;

/// What a cut line ends with.
pub const TRUNCATED: &str = " [truncated]";

/// The pipe is read this many bytes at a time.
const CHUNK: usize = 8192;

/// At most one dropped-lines notice per instance this often.
const NOTICE_EVERY: Duration = Duration::from_secs(1);

/// `GET /v1/workers/{worker}/logs`: entries sent when `tail` is not given.
pub const DEFAULT_TAIL: usize = 100;

/// `GET /v1/workers/{worker}/logs`: the largest `tail`.
pub const MAX_TAIL: usize = 10_000;

/// Encoded entries waiting for a slow follower's connection (past it, the follower lags).
const BODY_BUFFER: usize = 64;

/// The daemon-wide log limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Entries kept per worker (all its objects together); the oldest are dropped first.
    /// `0` keeps none (followers still get new entries).
    pub ring_lines_per_worker: usize,
    /// Longest line kept, bytes (at least 1); longer lines are cut.
    pub max_line_bytes: usize,
    /// Default lines per second per instance (token bucket, burst = this); `0` = no rate limit.
    pub lines_per_sec: u32,
    /// Default bytes of output kept per instance over its lifetime (each line counts its length
    /// plus one); past it everything is dropped. `0` = no volume limit.
    pub bytes_per_instance: u64,
}

impl Default for LogLimits {
    fn default() -> Self {
        LogLimits {
            ring_lines_per_worker: 10_000,
            max_line_bytes: 4096,
            lines_per_sec: 200,
            bytes_per_instance: 16 << 20,
        }
    }
}

impl LogLimits {
    /// The per-instance part of these limits (the defaults of [`LogHub::capture`]).
    pub fn instance(&self) -> InstanceLogLimits {
        InstanceLogLimits {
            lines_per_sec: self.lines_per_sec,
            bytes_per_instance: self.bytes_per_instance,
        }
    }
}

/// The limits of one instance's log (a worker may have its own, see [`LogHub::capture_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceLogLimits {
    /// Lines per second (token bucket, burst = this); `0` = no rate limit.
    pub lines_per_sec: u32,
    /// Bytes kept over the instance's lifetime; `0` = no volume limit.
    pub bytes_per_instance: u64,
}

/// Where a log line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The guest's fd 1.
    Stdout,
    /// The guest's fd 2.
    Stderr,
    /// Written by the supervisor about the guest's log (dropped lines, a lagging follower).
    System,
}

impl Stream {
    /// `"stdout"`, `"stderr"` or `"system"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::System => "system",
        }
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One log line, as kept in the ring and sent (one JSON object per line) by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When the line was read (or the notice written), Unix milliseconds.
    pub ts_ms: u64,
    /// The worker.
    pub worker: String,
    /// The object whose instance printed it.
    pub object: String,
    /// The request the instance was serving, if any (`null` in JSON when none).
    pub request_id: Option<u64>,
    /// `stdout`, `stderr` or `system`.
    pub stream: Stream,
    /// The line, without its newline (and a trailing `\r`); invalid UTF-8 replaced by U+FFFD;
    /// a cut line ends with [`TRUNCATED`].
    pub line: String,
}

impl LogEntry {
    /// The entry as one line of `application/x-ndjson`: its JSON and `\n`.
    pub fn ndjson(&self) -> Bytes {
        let mut out = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        out.push(b'\n');
        Bytes::from(out)
    }
}

/// A [`Stream::System`] entry.
fn system_entry(worker: &str, object: &str, request_id: Option<u64>, line: String) -> LogEntry {
    LogEntry {
        ts_ms: now_ms(),
        worker: worker.to_string(),
        object: object.to_string(),
        request_id,
        stream: Stream::System,
        line,
    }
}

/// Now, Unix milliseconds.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Locks a mutex, ignoring poisoning (every critical section here leaves its data consistent).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

type DropHook = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// All workers' log rings. Share it as `Arc<LogHub>`.
pub struct LogHub {
    limits: LogLimits,
    workers: Mutex<HashMap<String, Arc<WorkerLog>>>,
    on_dropped: RwLock<Option<DropHook>>,
}

impl fmt::Debug for LogHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogHub")
            .field("limits", &self.limits)
            .field("workers", &lock(&self.workers).len())
            .finish_non_exhaustive()
    }
}

/// One worker's ring and its followers' channel.
struct WorkerLog {
    ring: Mutex<VecDeque<LogEntry>>,
    tx: broadcast::Sender<LogEntry>,
}

impl WorkerLog {
    fn new() -> Self {
        WorkerLog {
            ring: Mutex::new(VecDeque::new()),
            tx: broadcast::channel(FOLLOW_BUFFER).0,
        }
    }
}

impl LogHub {
    /// A hub with no workers yet.
    pub fn new(limits: LogLimits) -> Self {
        LogHub {
            limits: LogLimits {
                max_line_bytes: limits.max_line_bytes.max(1),
                ..limits
            },
            workers: Mutex::new(HashMap::new()),
            on_dropped: RwLock::new(None),
        }
    }

    /// The limits the hub was made with.
    pub fn limits(&self) -> LogLimits {
        self.limits
    }

    /// Calls `f(worker, n)` whenever `n` lines of a worker's instance were dropped (rate or
    /// volume limit), in batches of at most one pipe read; e.g. to count them in a metric.
    /// Replaces an earlier hook. `f` runs on the capture task: keep it quick.
    pub fn on_dropped(&self, f: impl Fn(&str, u64) + Send + Sync + 'static) {
        *self
            .on_dropped
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
    }

    fn report_dropped(&self, worker: &str, n: u64) {
        let hook = self
            .on_dropped
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(hook) = hook {
            hook(worker, n);
        }
    }

    /// The worker's log, made if it has none yet.
    fn worker_log(&self, worker: &str) -> Arc<WorkerLog> {
        let mut workers = lock(&self.workers);
        if let Some(log) = workers.get(worker) {
            return Arc::clone(log);
        }
        let log = Arc::new(WorkerLog::new());
        workers.insert(worker.to_string(), Arc::clone(&log));
        log
    }

    /// Captures one pipe of an instance of `worker` serving `object`, with the hub's default
    /// per-instance limits. See [`LogHub::capture_with`].
    pub fn capture(
        self: &Arc<Self>,
        fd: OwnedFd,
        worker: &str,
        object: &str,
        stream: Stream,
        current_request: Arc<AtomicU64>,
    ) -> CaptureHandle {
        self.capture_with(
            fd,
            worker,
            object,
            stream,
            current_request,
            self.limits.instance(),
        )
    }

    /// Captures one pipe (the read end of the guest's stdout or stderr) of an instance of
    /// `worker` serving `object`, with its own per-instance `limits`: a tokio task reads it
    /// until end of file. `current_request` is read for each line: the id of the request the
    /// instance is serving, `0` for none. Capture the instance's other pipe with
    /// [`CaptureHandle::also_capture`] so that both share the instance's budget.
    ///
    /// Must be called within a tokio runtime. If the descriptor is not a readable pipe, nothing
    /// is captured and a `System` entry says so.
    pub fn capture_with(
        self: &Arc<Self>,
        fd: OwnedFd,
        worker: &str,
        object: &str,
        stream: Stream,
        current_request: Arc<AtomicU64>,
        limits: InstanceLogLimits,
    ) -> CaptureHandle {
        let shared = Arc::new(Capture {
            hub: Arc::clone(self),
            log: self.worker_log(worker),
            worker: worker.to_string(),
            object: object.to_string(),
            current_request,
            limits,
            max_line: self.limits.max_line_bytes,
            ring_cap: self.limits.ring_lines_per_worker,
            budget: Mutex::new(Budget::new(limits.lines_per_sec)),
            dropped: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
            open: watch::channel(0).0,
        });
        let handle = CaptureHandle { shared };
        handle.also_capture(fd, stream);
        handle
    }

    /// The last `n` entries of `worker` (only those of `object` when given), oldest first.
    /// Empty for a worker with no log.
    pub fn tail(&self, worker: &str, object: Option<&str>, n: usize) -> Vec<LogEntry> {
        let log = lock(&self.workers).get(worker).cloned();
        match log {
            Some(log) => last_entries(&lock(&log.ring), object, n),
            None => Vec::new(),
        }
    }

    /// New entries of `worker` as they come (all its objects; filter by
    /// [`LogEntry::object`] yourself). The channel holds [`FOLLOW_BUFFER`] entries: a receiver
    /// that falls behind gets `Err(Lagged(n))` and skips `n` entries; [`recv_entry`] turns that
    /// into a `System` entry. The channel closes when the worker is [forgotten](Self::forget)
    /// and its last instance's pipes are closed.
    pub fn follow(&self, worker: &str) -> broadcast::Receiver<LogEntry> {
        self.worker_log(worker).tx.subscribe()
    }

    /// [`tail`](Self::tail) and [`follow`](Self::follow) at once, so that no entry is missed
    /// or repeated between the two: what the logs endpoint with `follow=1` needs.
    pub fn tail_and_follow(
        &self,
        worker: &str,
        object: Option<&str>,
        n: usize,
    ) -> (Vec<LogEntry>, broadcast::Receiver<LogEntry>) {
        let log = self.worker_log(worker);
        let ring = lock(&log.ring);
        // Entries are pushed and sent under the ring's lock: this is one point in the stream.
        let rx = log.tx.subscribe();
        (last_entries(&ring, object, n), rx)
    }

    /// Drops a deleted worker's ring. Its followers' channels close once the instances still
    /// writing to it are gone.
    pub fn forget(&self, worker: &str) {
        lock(&self.workers).remove(worker);
    }
}

/// The last `n` entries of `ring` (of `object` when given), oldest first.
fn last_entries(ring: &VecDeque<LogEntry>, object: Option<&str>, n: usize) -> Vec<LogEntry> {
    let mut out: Vec<LogEntry> = ring
        .iter()
        .rev()
        .filter(|e| match object {
            Some(o) => e.object == o,
            None => true,
        })
        .take(n)
        .cloned()
        .collect();
    out.reverse();
    out
}

/// The next followed entry: a `System` entry for a lag (`"N log lines skipped (this
/// follower fell behind)"`), `None` when the channel is closed.
pub async fn recv_entry(rx: &mut broadcast::Receiver<LogEntry>, worker: &str) -> Option<LogEntry> {
    match rx.recv().await {
        Ok(entry) => Some(entry),
        Err(broadcast::error::RecvError::Lagged(n)) => Some(system_entry(
            worker,
            "",
            None,
            format!("{n} log {} skipped (this follower fell behind)", lines(n)),
        )),
        Err(broadcast::error::RecvError::Closed) => None,
    }
}

impl LogHub {
    /// The response body of `GET /v1/workers/{worker}/logs` (`application/x-ndjson`): the
    /// requested tail and, with `follow`, new entries of the requested object as they come,
    /// until the client goes away (dropping the body) or the worker's channel closes. Check
    /// that the worker exists first: following makes its ring. Must be called within a tokio
    /// runtime when following (a task forwards the entries).
    pub fn body(&self, worker: &str, request: &LogRequest) -> LogBody {
        let object = request.object.as_deref();
        if !request.follow {
            return LogBody {
                first: Some(ndjson_lines(&self.tail(worker, object, request.tail))),
                rx: None,
            };
        }
        let (tail, mut entries) = self.tail_and_follow(worker, object, request.tail);
        let (tx, rx) = mpsc::channel(BODY_BUFFER);
        let worker = worker.to_string();
        let request = request.clone();
        tokio::spawn(async move {
            loop {
                let entry = tokio::select! {
                    () = tx.closed() => break,
                    e = recv_entry(&mut entries, &worker) => e,
                };
                let Some(entry) = entry else { break };
                if request.wants(&entry) && tx.send(entry.ndjson()).await.is_err() {
                    break;
                }
            }
        });
        LogBody {
            first: Some(ndjson_lines(&tail)),
            rx: Some(rx),
        }
    }
}

/// Entries as `application/x-ndjson`.
fn ndjson_lines(entries: &[LogEntry]) -> Bytes {
    let mut out = Vec::new();
    for e in entries {
        out.extend_from_slice(&e.ndjson());
    }
    Bytes::from(out)
}

/// The body of a logs response; see [`LogHub::body`]. A `hyper` body of [`Bytes`] that never
/// fails (`Send + Sync`, so it fits `http_body_util::combinators::BoxBody`).
#[derive(Debug)]
pub struct LogBody {
    /// The tail, not sent yet.
    first: Option<Bytes>,
    /// New entries, when following.
    rx: Option<mpsc::Receiver<Bytes>>,
}

impl hyper::body::Body for LogBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        if let Some(first) = self.first.take() {
            if !first.is_empty() {
                return Poll::Ready(Some(Ok(hyper::body::Frame::data(first))));
            }
        }
        match self.rx.as_mut() {
            Some(rx) => rx
                .poll_recv(cx)
                .map(|b| b.map(|b| Ok(hyper::body::Frame::data(b)))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rx.is_none()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match (&self.first, &self.rx) {
            (Some(first), None) => {
                hyper::body::SizeHint::with_exact(u64::try_from(first.len()).unwrap_or(u64::MAX))
            }
            (None, None) => hyper::body::SizeHint::with_exact(0),
            _ => hyper::body::SizeHint::default(),
        }
    }
}

/// What `GET /v1/workers/{worker}/logs` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRequest {
    /// `object=`: only this object's entries.
    pub object: Option<String>,
    /// `tail=`: how many of the last entries to send first ([`DEFAULT_TAIL`] when not given,
    /// at most [`MAX_TAIL`]).
    pub tail: usize,
    /// `follow=1`: keep the response open and stream new entries.
    pub follow: bool,
}

impl LogRequest {
    /// Parses the query string (without `?`): `object` (percent-encoded, a valid object
    /// name), `tail` (0 to [`MAX_TAIL`]), `follow` (`1`/`true`/`0`/`false`). Anything else is
    /// `400 bad_request` (`400 bad_name` for a bad object name).
    pub fn from_query(query: &str) -> Result<LogRequest, ApiError> {
        let mut request = LogRequest {
            object: None,
            tail: DEFAULT_TAIL,
            follow: false,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode_str(v).decode_utf8().map_err(|_| {
                ApiError::bad_request(format!("{k}: not valid UTF-8 after percent-decoding"))
            })?;
            match k {
                "object" => {
                    crate::names::check_object(&v)?;
                    request.object = Some(v.into_owned());
                }
                "tail" => {
                    request.tail = v.parse().ok().filter(|n| *n <= MAX_TAIL).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "tail: {v:?} is not a number of lines (0 to {MAX_TAIL})"
                        ))
                    })?;
                }
                "follow" => {
                    request.follow = match &*v {
                        "1" | "true" | "" => true,
                        "0" | "false" => false,
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "follow: {v:?} is not 1 or 0"
                            )))
                        }
                    };
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown parameter {other:?} (known: object, tail, follow)"
                    )))
                }
            }
        }
        Ok(request)
    }

    /// Whether `entry` is one this request wants (its object, when one was given; `System`
    /// entries about the follower itself, which have no object, always).
    pub fn wants(&self, entry: &LogEntry) -> bool {
        match &self.object {
            Some(o) => entry.object == *o || entry.object.is_empty(),
            None => true,
        }
    }
}

/// The capture of one instance: its budget, counters and open pipes.
#[derive(Clone)]
pub struct CaptureHandle {
    shared: Arc<Capture>,
}

impl fmt::Debug for CaptureHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureHandle")
            .field("worker", &self.shared.worker)
            .field("object", &self.shared.object)
            .field("dropped", &self.dropped())
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

impl CaptureHandle {
    /// Lines of this instance dropped so far (rate and volume limits).
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Bytes of this instance's output kept so far (what counts against the volume limit:
    /// each kept line's length plus one).
    pub fn bytes(&self) -> u64 {
        self.shared.bytes.load(Ordering::Relaxed)
    }

    /// Bytes read from this instance's pipes so far, kept or not.
    pub fn bytes_read(&self) -> u64 {
        self.shared.bytes_read.load(Ordering::Relaxed)
    }

    /// Captures another pipe of the same instance (its stderr after its stdout), sharing the
    /// budget and counters. Must be called within a tokio runtime.
    pub fn also_capture(&self, fd: OwnedFd, stream: Stream) {
        let rx = match tokio::net::unix::pipe::Receiver::from_owned_fd(fd) {
            Ok(rx) => rx,
            Err(e) => {
                let c = &self.shared;
                c.publish(system_entry(
                    &c.worker,
                    &c.object,
                    None,
                    format!("cannot capture {stream}: {e}"),
                ));
                return;
            }
        };
        self.shared.open.send_modify(|n| *n += 1);
        let shared = Arc::clone(&self.shared);
        tokio::spawn(async move {
            shared.run(rx, stream).await;
            shared.open.send_modify(|n| *n = n.saturating_sub(1));
        });
    }

    /// Waits until every captured pipe reached end of file and its last line and notice are
    /// in the ring. Dropping the handle does not stop the capture.
    pub async fn closed(&self) {
        let mut open = self.shared.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }
}

/// One instance's capture state, shared by its pipes' tasks.
struct Capture {
    hub: Arc<LogHub>,
    log: Arc<WorkerLog>,
    worker: String,
    object: String,
    current_request: Arc<AtomicU64>,
    limits: InstanceLogLimits,
    max_line: usize,
    ring_cap: usize,
    budget: Mutex<Budget>,
    dropped: AtomicU64,
    bytes: AtomicU64,
    bytes_read: AtomicU64,
    /// Pipes still being read.
    open: watch::Sender<usize>,
}

/// The rate and volume budget of one instance, and the drops not said yet.
struct Budget {
    tokens: f64,
    refilled: Instant,
    /// Volume limit reached: everything further is dropped.
    full: bool,
    /// Whether the volume notice was written.
    full_said: bool,
    pending_rate: u64,
    pending_volume: u64,
    last_notice: Option<Instant>,
}

/// What happens to one line.
enum Verdict {
    Keep,
    Drop,
}

impl Budget {
    fn new(rate: u32) -> Self {
        Budget {
            tokens: f64::from(rate),
            refilled: Instant::now(),
            full: false,
            full_said: false,
            pending_rate: 0,
            pending_volume: 0,
            last_notice: None,
        }
    }

    /// When the next notice is due (`now` at the earliest), if there is something to say
    /// before the pipe closes.
    fn notice_due(&self, now: Instant) -> Option<Instant> {
        let waiting = self.pending_rate > 0 || (self.pending_volume > 0 && !self.full_said);
        if !waiting {
            return None;
        }
        Some(
            self.last_notice
                .map_or(now, |at| (at + NOTICE_EVERY).max(now)),
        )
    }
}

/// `line` or `lines`.
fn lines(n: u64) -> &'static str {
    if n == 1 {
        "line"
    } else {
        "lines"
    }
}

/// `16M`, `512K`, `1G`; other sizes in bytes.
fn size(bytes: u64) -> String {
    for (shift, unit) in [(40, "T"), (30, "G"), (20, "M"), (10, "K")] {
        if bytes >= 1 << shift && bytes.trailing_zeros() >= shift {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

impl Capture {
    /// Reads the pipe until end of file.
    async fn run(&self, mut rx: tokio::net::unix::pipe::Receiver, stream: Stream) {
        let mut chunk = vec![0u8; CHUNK];
        let mut splitter = Splitter::new(self.max_line);
        loop {
            let due = lock(&self.budget).notice_due(Instant::now());
            let read = match due {
                // `read` is cancel safe: nothing is lost when the timer wins.
                Some(at) => tokio::select! {
                    r = rx.read(&mut chunk) => Some(r),
                    () = tokio::time::sleep_until(at.into()) => None,
                },
                None => Some(rx.read(&mut chunk).await),
            };
            match read {
                None => self.notice(false),
                Some(Ok(0)) => break,
                Some(Ok(n)) => {
                    self.bytes_read
                        .fetch_add(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
                    let mut dropped = 0;
                    splitter.feed(&chunk[..n], &mut |line, cut| {
                        dropped += self.offer(line, cut, stream);
                    });
                    self.count_dropped(dropped);
                    self.notice(false);
                }
                Some(Err(e)) => {
                    tracing::warn!(worker = %self.worker, object = %self.object, %stream, "reading the guest's {stream}: {e}");
                    break;
                }
            }
        }
        let mut dropped = 0;
        splitter.finish(&mut |line, cut| dropped += self.offer(line, cut, stream));
        self.count_dropped(dropped);
        self.notice(true);
    }

    fn count_dropped(&self, n: u64) {
        if n > 0 {
            self.dropped.fetch_add(n, Ordering::Relaxed);
            self.hub.report_dropped(&self.worker, n);
        }
    }

    fn request_id(&self) -> Option<u64> {
        match self.current_request.load(Ordering::Relaxed) {
            0 => None,
            id => Some(id),
        }
    }

    /// Keeps or drops one line; returns the number of lines dropped (0 or 1).
    fn offer(&self, raw: &[u8], cut: bool, stream: Stream) -> u64 {
        let cost = u64::try_from(raw.len())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let verdict = {
            let mut b = lock(&self.budget);
            self.judge(&mut b, cost)
        };
        match verdict {
            Verdict::Drop => 1,
            Verdict::Keep => {
                self.bytes.fetch_add(cost, Ordering::Relaxed);
                let mut line = text(raw, cut);
                if cut {
                    line.push_str(TRUNCATED);
                }
                let entry = LogEntry {
                    ts_ms: now_ms(),
                    worker: self.worker.clone(),
                    object: self.object.clone(),
                    request_id: self.request_id(),
                    stream,
                    line,
                };
                tracing::info!(
                    target: "warren::guest",
                    worker = %entry.worker,
                    object = %entry.object,
                    request_id = entry.request_id,
                    stream = stream.as_str(),
                    "{}",
                    entry.line
                );
                self.publish(entry);
                0
            }
        }
    }

    fn judge(&self, b: &mut Budget, cost: u64) -> Verdict {
        if b.full {
            b.pending_volume += 1;
            return Verdict::Drop;
        }
        let rate = self.limits.lines_per_sec;
        if rate > 0 {
            let now = Instant::now();
            let burst = f64::from(rate);
            let elapsed = now.duration_since(b.refilled).as_secs_f64();
            b.tokens = (b.tokens + elapsed * burst).min(burst);
            b.refilled = now;
            if b.tokens < 1.0 {
                b.pending_rate += 1;
                return Verdict::Drop;
            }
        }
        let limit = self.limits.bytes_per_instance;
        if limit > 0 && self.bytes.load(Ordering::Relaxed).saturating_add(cost) > limit {
            b.full = true;
            b.pending_volume += 1;
            return Verdict::Drop;
        }
        if rate > 0 {
            b.tokens -= 1.0;
        }
        Verdict::Keep
    }

    /// Writes the dropped-lines notice if one is due (`last`: the pipe closed, say everything).
    fn notice(&self, last: bool) {
        let line = {
            let mut b = lock(&self.budget);
            let now = Instant::now();
            let due = b.notice_due(now).is_some_and(|at| at <= now);
            let last_words = last && (b.pending_rate > 0 || b.pending_volume > 0);
            if !due && !last_words {
                return;
            }
            let mut parts = Vec::new();
            if b.pending_rate > 0 {
                parts.push(format!(
                    "{} {} dropped (rate limit of {} lines/s)",
                    b.pending_rate,
                    lines(b.pending_rate),
                    self.limits.lines_per_sec
                ));
            }
            if b.pending_volume > 0 {
                let limit = size(self.limits.bytes_per_instance);
                parts.push(if b.full_said {
                    format!(
                        "{} more {} dropped (log volume limit of {limit} reached)",
                        b.pending_volume,
                        lines(b.pending_volume)
                    )
                } else {
                    format!(
                        "{} {} dropped (log volume limit of {limit} reached; further output dropped)",
                        b.pending_volume,
                        lines(b.pending_volume)
                    )
                });
                b.full_said = true;
            }
            b.pending_rate = 0;
            b.pending_volume = 0;
            b.last_notice = Some(now);
            parts.join("; ")
        };
        let entry = system_entry(&self.worker, &self.object, self.request_id(), line);
        tracing::warn!(
            target: "warren::guest",
            worker = %entry.worker,
            object = %entry.object,
            request_id = entry.request_id,
            stream = "system",
            "{}",
            entry.line
        );
        self.publish(entry);
    }

    /// Pushes into the worker's ring and sends to its followers, as one step.
    fn publish(&self, entry: LogEntry) {
        let mut ring = lock(&self.log.ring);
        if self.ring_cap > 0 {
            if ring.len() >= self.ring_cap {
                ring.pop_front();
            }
            ring.push_back(entry.clone());
        }
        // No followers is not an error.
        let _ = self.log.tx.send(entry);
    }
}

/// A line's text: UTF-8 with invalid bytes replaced, a trailing `\r` removed, and for a cut
/// line a multi-byte character split by the cut left out.
fn text(raw: &[u8], cut: bool) -> String {
    let mut raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    if cut {
        if let Err(e) = std::str::from_utf8(raw) {
            // An incomplete sequence at the very end: the cut split a character.
            if e.error_len().is_none() {
                raw = &raw[..e.valid_up_to()];
            }
        }
    }
    String::from_utf8_lossy(raw).into_owned()
}

/// Splits a byte stream into lines of at most `max` bytes.
struct Splitter {
    buf: Vec<u8>,
    max: usize,
    /// A cut line's rest is being skipped up to its newline.
    skipping: bool,
}

impl Splitter {
    fn new(max: usize) -> Self {
        Splitter {
            buf: Vec::new(),
            max,
            skipping: false,
        }
    }

    /// Feeds bytes; `emit(line, cut)` for each line completed or cut.
    fn feed(&mut self, mut data: &[u8], emit: &mut impl FnMut(&[u8], bool)) {
        while let Some(at) = data.iter().position(|&b| b == b'\n') {
            self.push(&data[..at], emit);
            if !self.skipping {
                emit(&self.buf, false);
            }
            self.buf.clear();
            self.skipping = false;
            data = &data[at + 1..];
        }
        self.push(data, emit);
    }

    /// Adds part of a line (no newline in it).
    fn push(&mut self, part: &[u8], emit: &mut impl FnMut(&[u8], bool)) {
        if self.skipping || part.is_empty() {
            return;
        }
        let room = self.max - self.buf.len();
        if part.len() <= room {
            self.buf.extend_from_slice(part);
        } else {
            self.buf.extend_from_slice(&part[..room]);
            emit(&self.buf, true);
            self.buf.clear();
            self.skipping = true;
        }
    }

    /// The pipe closed: emits an unfinished line.
    fn finish(&mut self, emit: &mut impl FnMut(&[u8], bool)) {
        if !self.skipping && !self.buf.is_empty() {
            emit(&self.buf, false);
        }
        self.buf.clear();
        self.skipping = false;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::atomic::AtomicU64;

    use super::*;

    /// A pipe: the read end, and the write end as a blocking file.
    fn pipe() -> (OwnedFd, std::fs::File) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        (r, std::fs::File::from(w))
    }

    /// Writes `data` from a thread (a big write blocks until the capture reads it) and closes.
    fn write_all(mut w: std::fs::File, data: Vec<u8>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            w.write_all(&data).unwrap();
        })
    }

    /// `f`, or a panic after 10 seconds.
    async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), f)
            .await
            .expect("timed out")
    }

    fn hub(limits: LogLimits) -> Arc<LogHub> {
        Arc::new(LogHub::new(limits))
    }

    fn unlimited() -> LogLimits {
        LogLimits {
            lines_per_sec: 0,
            bytes_per_instance: 0,
            ..LogLimits::default()
        }
    }

    fn no_request() -> Arc<AtomicU64> {
        Arc::new(AtomicU64::new(0))
    }

    async fn capture_all(hub: &Arc<LogHub>, object: &str, data: Vec<u8>) -> CaptureHandle {
        let (r, w) = pipe();
        let handle = hub.capture(r, "app", object, Stream::Stdout, no_request());
        let writer = write_all(w, data);
        tokio::time::timeout(Duration::from_secs(10), handle.closed())
            .await
            .unwrap();
        writer.join().unwrap();
        handle
    }

    fn lines_of(entries: &[LogEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.line.as_str()).collect()
    }

    #[tokio::test]
    async fn lines_are_split_tagged_and_kept() {
        let hub = hub(unlimited());
        let h = capture_all(&hub, "alice", b"one\ntwo\r\n\nbad \xff utf8\nlast".to_vec()).await;
        let tail = hub.tail("app", None, 100);
        assert_eq!(
            lines_of(&tail),
            ["one", "two", "", "bad \u{fffd} utf8", "last"]
        );
        assert!(tail.iter().all(|e| e.worker == "app"
            && e.object == "alice"
            && e.stream == Stream::Stdout
            && e.request_id.is_none()));
        assert_eq!(h.dropped(), 0);
        assert_eq!(h.bytes(), 4 + 5 + 1 + 11 + 5, "each line plus one");
        assert_eq!(h.bytes_read(), 25);
        assert!(hub.tail("other", None, 10).is_empty());

        let json = String::from_utf8(tail[0].ndjson().to_vec()).unwrap();
        assert!(json.ends_with("}\n"), "{json}");
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["stream"], "stdout");
        assert_eq!(v["request_id"], serde_json::Value::Null);
        assert_eq!(v["line"], "one");
        assert!(v["ts_ms"].as_u64().unwrap() > 1_600_000_000_000);
    }

    #[tokio::test]
    async fn the_ring_is_bounded() {
        let hub = hub(LogLimits {
            ring_lines_per_worker: 10,
            ..unlimited()
        });
        let data: String = (0..25).map(|i| format!("line {i}\n")).collect();
        capture_all(&hub, "a", data.into_bytes()).await;
        let tail = hub.tail("app", None, 100);
        assert_eq!(tail.len(), 10);
        assert_eq!(tail[0].line, "line 15");
        assert_eq!(tail[9].line, "line 24");
        assert_eq!(lines_of(&hub.tail("app", None, 2)), ["line 23", "line 24"]);
        hub.forget("app");
        assert!(hub.tail("app", None, 100).is_empty());
    }

    #[tokio::test]
    async fn a_flood_without_newlines_is_cut() {
        let hub = hub(LogLimits {
            max_line_bytes: 100,
            ..unlimited()
        });
        // 4 MiB without a newline, then a normal line; a cut multi-byte character at the end.
        let mut data = vec![b'x'; 4 << 20];
        data.extend_from_slice(b"\nshort\n");
        data.extend_from_slice(&[b'y'; 99]);
        data.extend_from_slice("é and more\n".as_bytes());
        data.extend_from_slice(&[b'z'; 100]);
        data.extend_from_slice(b"\n");
        let h = capture_all(&hub, "a", data).await;
        let tail = hub.tail("app", None, 100);
        assert_eq!(tail.len(), 4, "{tail:?}");
        assert_eq!(tail[0].line, format!("{}{TRUNCATED}", "x".repeat(100)));
        assert_eq!(tail[1].line, "short");
        assert_eq!(tail[2].line, format!("{}{TRUNCATED}", "y".repeat(99)));
        assert_eq!(
            tail[3].line,
            "z".repeat(100),
            "exactly the limit is not cut"
        );
        assert_eq!(h.dropped(), 0);
        assert_eq!(h.bytes_read(), (4 << 20) + 7 + 99 + 12 + 101);
    }

    #[tokio::test]
    async fn the_rate_limit_drops_and_says_so() {
        let hub = hub(LogLimits {
            lines_per_sec: 50,
            bytes_per_instance: 0,
            ..LogLimits::default()
        });
        let reported = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&reported);
        hub.on_dropped(move |worker, n| {
            assert_eq!(worker, "app");
            counter.fetch_add(n, Ordering::Relaxed);
        });
        let data: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let h = capture_all(&hub, "a", data.into_bytes()).await;
        let tail = hub.tail("app", None, 10_000);
        let (system, kept): (Vec<_>, Vec<_>) =
            tail.iter().partition(|e| e.stream == Stream::System);
        // The burst, plus what the bucket refilled while the test ran.
        assert!((50..100).contains(&kept.len()), "{}", kept.len());
        assert_eq!(kept[0].line, "line 0");
        let dropped = 1000 - u64::try_from(kept.len()).unwrap();
        assert_eq!(h.dropped(), dropped);
        assert_eq!(reported.load(Ordering::Relaxed), dropped);
        // Every drop is said, in at most a notice per second plus the final one.
        assert!(!system.is_empty() && system.len() <= 3, "{system:?}");
        let said: u64 = system
            .iter()
            .map(|e| {
                assert!(
                    e.line.ends_with(" dropped (rate limit of 50 lines/s)"),
                    "{}",
                    e.line
                );
                e.line.split(' ').next().unwrap().parse::<u64>().unwrap()
            })
            .sum();
        assert_eq!(said, dropped);
    }

    #[tokio::test]
    async fn a_pending_notice_is_written_without_more_output() {
        let hub = hub(LogLimits {
            lines_per_sec: 5,
            bytes_per_instance: 0,
            ..LogLimits::default()
        });
        let (r, mut w) = pipe();
        let mut rx = hub.follow("app");
        let h = hub.capture(r, "app", "a", Stream::Stderr, no_request());
        // First burst: notice at once. Second burst within the second: said a second later
        // although the pipe stays open and quiet.
        w.write_all(&b"x\n".repeat(10)).unwrap();
        let mut seen = Vec::new();
        while seen
            .iter()
            .filter(|e: &&LogEntry| e.stream == Stream::System)
            .count()
            < 1
        {
            seen.push(within(rx.recv()).await.unwrap());
        }
        w.write_all(&b"y\n".repeat(10)).unwrap();
        let notice = tokio::time::timeout(Duration::from_secs(3), async {
            loop {
                let e = within(rx.recv()).await.unwrap();
                if e.stream == Stream::System {
                    return e;
                }
            }
        })
        .await
        .unwrap();
        assert!(
            notice.line.contains("dropped (rate limit of 5 lines/s)"),
            "{notice:?}"
        );
        assert!(h.dropped() >= 10);
        drop(w);
        within(h.closed()).await;
    }

    #[tokio::test]
    async fn the_volume_limit_stops_everything_and_says_so() {
        let hub = hub(LogLimits {
            lines_per_sec: 0,
            bytes_per_instance: 1 << 10,
            ..LogLimits::default()
        });
        // 100 lines of 99 bytes + newline: the first 10 fit in 1K.
        let data: Vec<u8> = (0..100)
            .flat_map(|i| format!("{i:099}\n").into_bytes())
            .collect();
        let h = capture_all(&hub, "a", data).await;
        let tail = hub.tail("app", None, 1000);
        let kept: Vec<_> = tail.iter().filter(|e| e.stream != Stream::System).collect();
        assert_eq!(kept.len(), 10);
        assert_eq!(h.bytes(), 1000);
        assert_eq!(h.dropped(), 90);
        let system = lines_of(&tail[10..]);
        assert!(!system.is_empty() && system.len() <= 2, "{system:?}");
        assert!(
            system[0].ends_with("dropped (log volume limit of 1K reached; further output dropped)"),
            "{system:?}"
        );
        let said: u64 = system
            .iter()
            .map(|l| l.split(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(said, 90);
        if let Some(last) = system.get(1) {
            assert!(
                last.contains(" more lines dropped (log volume limit of 1K reached)"),
                "{last}"
            );
        }
    }

    #[tokio::test]
    async fn stdout_and_stderr_share_the_instance_budget() {
        let hub = hub(LogLimits {
            lines_per_sec: 0,
            bytes_per_instance: 100,
            ..LogLimits::default()
        });
        let (out_r, out_w) = pipe();
        let (err_r, err_w) = pipe();
        let h = hub.capture(out_r, "app", "a", Stream::Stdout, no_request());
        h.also_capture(err_r, Stream::Stderr);
        let a = write_all(out_w, [&[b'o'; 59][..], b"\n"].concat());
        let b = write_all(err_w, [&[b'e'; 59][..], b"\n"].concat());
        within(h.closed()).await;
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(h.bytes(), 60);
        assert_eq!(h.dropped(), 1);
    }

    #[tokio::test]
    async fn lines_carry_the_current_request() {
        let hub = hub(unlimited());
        let (r, mut w) = pipe();
        let current = Arc::new(AtomicU64::new(0));
        let mut rx = hub.follow("app");
        let h = hub.capture(r, "app", "a", Stream::Stdout, Arc::clone(&current));
        w.write_all(b"idle\n").unwrap();
        assert_eq!(within(rx.recv()).await.unwrap().request_id, None);
        current.store(42, Ordering::Relaxed);
        w.write_all(b"busy\n").unwrap();
        let e = within(rx.recv()).await.unwrap();
        assert_eq!((e.line.as_str(), e.request_id), ("busy", Some(42)));
        current.store(0, Ordering::Relaxed);
        drop(w);
        within(h.closed()).await;
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["request_id"], 42);
    }

    #[tokio::test]
    async fn tail_filters_by_object() {
        let hub = hub(unlimited());
        capture_all(&hub, "alice", b"a1\na2\na3\n".to_vec()).await;
        capture_all(&hub, "bob", b"b1\nb2\n".to_vec()).await;
        capture_all(&hub, "alice", b"a4\n".to_vec()).await;
        assert_eq!(
            lines_of(&hub.tail("app", None, 100)),
            ["a1", "a2", "a3", "b1", "b2", "a4"]
        );
        assert_eq!(lines_of(&hub.tail("app", Some("alice"), 2)), ["a3", "a4"]);
        assert_eq!(lines_of(&hub.tail("app", Some("bob"), 100)), ["b1", "b2"]);
        assert!(hub.tail("app", Some("carol"), 100).is_empty());
        assert!(hub.tail("app", None, 0).is_empty());
    }

    #[tokio::test]
    async fn followers_get_new_lines_and_hear_when_they_lag() {
        let hub = hub(unlimited());
        capture_all(&hub, "a", b"old\n".to_vec()).await;
        let (tail, mut rx) = hub.tail_and_follow("app", None, 10);
        assert_eq!(lines_of(&tail), ["old"]);
        let (r, mut w) = pipe();
        let h = hub.capture(r, "app", "b", Stream::Stderr, no_request());
        w.write_all(b"new 1\nnew 2\n").unwrap();
        for want in ["new 1", "new 2"] {
            let e = within(recv_entry(&mut rx, "app")).await.unwrap();
            assert_eq!(
                (e.line.as_str(), e.object.as_str(), e.stream),
                (want, "b", Stream::Stderr)
            );
        }
        drop(w);
        within(h.closed()).await;
        drop(h);

        // A follower that does not read falls behind and is told how much it missed.
        let mut slow = hub.follow("app");
        let n = FOLLOW_BUFFER + 5;
        let data: String = (0..n).map(|i| format!("{i}\n")).collect();
        capture_all(&hub, "a", data.into_bytes()).await;
        let e = within(recv_entry(&mut slow, "app")).await.unwrap();
        assert_eq!(e.stream, Stream::System);
        assert_eq!(e.line, "5 log lines skipped (this follower fell behind)");
        assert_eq!(
            within(recv_entry(&mut slow, "app")).await.unwrap().line,
            "5"
        );

        // Forgetting the worker closes the channel once no instance writes to it.
        hub.forget("app");
        while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = slow.try_recv() {}
        assert!(within(recv_entry(&mut slow, "app")).await.is_none());
    }

    #[tokio::test]
    async fn response_bodies() {
        use http_body_util::BodyExt as _;

        let hub = hub(unlimited());
        capture_all(&hub, "alice", b"a1\na2\n".to_vec()).await;
        capture_all(&hub, "bob", b"b1\n".to_vec()).await;
        let request = |query: &str| LogRequest::from_query(query).unwrap();

        let all = hub
            .body("app", &request(""))
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8(all.to_vec()).unwrap();
        let lines: Vec<LogEntry> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines_of(&lines), ["a1", "a2", "b1"]);
        assert!(text.ends_with('\n'));
        let some = hub.body("app", &request("object=alice&tail=1"));
        let some = some.collect().await.unwrap().to_bytes();
        assert_eq!(
            serde_json::from_slice::<LogEntry>(&some).unwrap().line,
            "a2"
        );
        let none = hub.body("nobody", &request(""));
        assert!(none.collect().await.unwrap().to_bytes().is_empty());

        // Following: the tail, then new lines of the object asked for, as they come.
        let mut body = hub.body("app", &request("object=bob&follow=1&tail=5"));
        let frame = |f: Option<Result<hyper::body::Frame<Bytes>, Infallible>>| {
            let data = f.unwrap().unwrap().into_data().unwrap();
            serde_json::from_slice::<LogEntry>(&data).unwrap()
        };
        assert_eq!(frame(within(body.frame()).await).line, "b1");
        let (r, mut w) = pipe();
        let h = hub.capture(r, "app", "alice", Stream::Stdout, no_request());
        let (r2, mut w2) = pipe();
        let h2 = hub.capture(r2, "app", "bob", Stream::Stdout, no_request());
        w.write_all(b"not for bob\n").unwrap();
        w2.write_all(b"for bob\n").unwrap();
        let e = frame(within(body.frame()).await);
        assert_eq!((e.object.as_str(), e.line.as_str()), ("bob", "for bob"));
        drop((w, w2));
        within(h.closed()).await;
        within(h2.closed()).await;
        drop((h, h2));
        // The worker goes away: the body ends.
        hub.forget("app");
        assert!(within(body.frame()).await.is_none());
    }

    #[test]
    fn log_requests_from_queries() {
        let r = LogRequest::from_query("").unwrap();
        assert_eq!((r.object, r.tail, r.follow), (None, DEFAULT_TAIL, false));
        let r = LogRequest::from_query("object=chat%2Froom%201&tail=5&follow=1").unwrap();
        assert_eq!(r.object.as_deref(), Some("chat/room 1"));
        assert_eq!((r.tail, r.follow), (5, true));
        assert!(LogRequest::from_query("follow=true").unwrap().follow);
        assert!(!LogRequest::from_query("follow=0").unwrap().follow);
        assert_eq!(LogRequest::from_query("tail=10000").unwrap().tail, MAX_TAIL);
        for bad in [
            "tail=10001",
            "tail=-1",
            "tail=x",
            "follow=yes",
            "lines=3",
            "object=%ff",
        ] {
            let e = LogRequest::from_query(bad).unwrap_err();
            assert_eq!(e.code, "bad_request", "{bad}");
        }
        assert_eq!(
            LogRequest::from_query("object=").unwrap_err().code,
            "bad_name"
        );
        let r = LogRequest::from_query("object=alice").unwrap();
        let entry = |object: &str| system_entry("app", object, None, String::new());
        assert!(r.wants(&entry("alice")));
        assert!(!r.wants(&entry("bob")));
        assert!(r.wants(&entry("")));
    }

    #[test]
    fn splitter_edges() {
        let mut got = Vec::new();
        let mut s = Splitter::new(3);
        let mut emit =
            |l: &[u8], cut: bool| got.push((String::from_utf8_lossy(l).into_owned(), cut));
        s.feed(b"ab", &mut emit);
        s.feed(b"c\nabcd", &mut emit);
        s.feed(b"efg\n\nxy", &mut emit);
        s.finish(&mut emit);
        assert_eq!(
            got,
            [
                ("abc".into(), false),
                ("abc".into(), true),
                (String::new(), false),
                ("xy".into(), false)
            ]
        );
        assert_eq!(size(16 << 20), "16M");
        assert_eq!(size(1 << 30), "1G");
        assert_eq!(size(1500), "1500 bytes");
        assert_eq!(text("é".as_bytes().split_at(1).0, true), "");
        assert_eq!(text(b"a\xffb", true), "a\u{fffd}b");
    }
}
