//! Prometheus metrics: what the supervisor counts, and a tiny HTTP server exporting it.
//!
//! [`Metrics`] owns its own [`prometheus::Registry`] (never the process-global default), so
//! tests and embedders can hold several side by side. Every recording method takes typed
//! arguments: labels come from fixed enums ([`Outcome`], [`KillKind`], [`LimitKind`]) or from a
//! worker name. Workers are few and operator-controlled, so a worker label is bounded; **no
//! method takes an object name**, so an object can never become a label. [`serve`] answers
//! `GET /metrics` on a TCP listener (the daemon's `metrics` address, default `127.0.0.1:9464`);
//! [`Metrics::render`] gives the same text for any other surface (the control socket).
//!
//! Names follow the Prometheus conventions: base units in the name (`_seconds`, `_bytes`),
//! counters end in `_total`, everything is prefixed `warren_`.
//!
//! | metric | type | labels | meaning |
//! |---|---|---|---|
//! | `warren_build_info` | gauge | `version`, `commit` | always 1; the daemon's version and git commit (`unknown` when built outside git) |
//! | `warren_workers` | gauge | | workers deployed |
//! | `warren_objects` | gauge | | objects known, over all workers |
//! | `warren_instances_active` | gauge | | instances (jailed processes serving an object) running now |
//! | `warren_husks_warm` | gauge | | pre-warmed husks waiting in the pool |
//! | `warren_instance_spawn_seconds` | histogram | | time to start an instance: husk taken to guest ready (buckets 0.5 ms .. 1 s) |
//! | `warren_instance_kills_total` | counter | `reason` | instances ended by the supervisor or the kernel; `reason` is one of `oom`, `timeout`, `cpu`, `seccomp`, `crash`, `protocol`, `idle`, `redeploy` |
//! | `warren_requests_total` | counter | `worker`, `outcome` | requests to objects, finished; `outcome` is one of `ok` (status < 400), `client_error` (guest answered 4xx), `server_error` (guest answered 5xx), `guest_crashed`, `guest_killed`, `guest_timeout`, `guest_protocol`, `rejected` (a limit refused it), `error` (daemon-side failure) |
//! | `warren_request_duration_seconds` | histogram | `worker`, `outcome` | wall time of those requests, arrival to answer (buckets 1 ms .. 60 s) |
//! | `warren_sql_statements_total` | counter | `worker`, `result` | SQL statements run by the broker for guests; `result` is `ok` or `error` |
//! | `warren_sql_duration_seconds` | histogram | `worker` | time the broker spent on each statement (buckets 10 µs .. 1 s) |
//! | `warren_storage_bytes` | gauge | `worker` | sum of the sizes of the worker's object databases |
//! | `warren_limit_rejections_total` | counter | `kind` | things a limit refused or cut short; `kind` is one of `max_objects`, `max_instances`, `request_body`, `response_body`, `storage_quota`, `timeout`, `cpu_budget`, `memory`, `pids`, `log_volume`, `queue_full` |
//! | `warren_log_lines_dropped_total` | counter | `worker` | guest log lines dropped by the rate limit or size cap |
//!
//! The `reason` and `kind` series exist from the start at 0 for every value, so a rate over them
//! works before the first event. Per-worker series appear with the worker's first event and go
//! away with [`Metrics::forget_worker`] when the worker is removed.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// The `Content-Type` of [`Metrics::render`]'s output (Prometheus text exposition format 0.0.4).
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How a request to an object ended: the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// the guest answered with a status below 400
    Ok,
    /// the guest answered 4xx
    ClientError,
    /// the guest answered 5xx
    ServerError,
    /// the guest exited or died on its own during the request
    GuestCrashed,
    /// the guest was killed (memory, pids, seccomp, CPU) during the request
    GuestKilled,
    /// the guest did not answer within the request timeout
    GuestTimeout,
    /// the guest broke the guest protocol (garbage or oversized frames)
    GuestProtocol,
    /// a limit refused the request before or while it ran
    Rejected,
    /// the daemon failed (storage, spawn, internal error)
    Error,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 9] = [
        Outcome::Ok,
        Outcome::ClientError,
        Outcome::ServerError,
        Outcome::GuestCrashed,
        Outcome::GuestKilled,
        Outcome::GuestTimeout,
        Outcome::GuestProtocol,
        Outcome::Rejected,
        Outcome::Error,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::ServerError => "server_error",
            Outcome::GuestCrashed => "guest_crashed",
            Outcome::GuestKilled => "guest_killed",
            Outcome::GuestTimeout => "guest_timeout",
            Outcome::GuestProtocol => "guest_protocol",
            Outcome::Rejected => "rejected",
            Outcome::Error => "error",
        }
    }

    /// The outcome of a request the guest answered with `status`: `ok` below 400,
    /// `client_error` for 4xx, `server_error` for 5xx and above.
    pub fn from_status(status: u16) -> Outcome {
        match status {
            0..=399 => Outcome::Ok,
            400..=499 => Outcome::ClientError,
            _ => Outcome::ServerError,
        }
    }
}

/// Why an instance was ended: the `reason` label of `warren_instance_kills_total`.
///
/// (Named `KillKind` so it does not clash with `warren_jail::KillReason`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KillKind {
    /// the memory cgroup's OOM killer
    Oom,
    /// the wall-clock request timeout
    Timeout,
    /// the CPU budget
    Cpu,
    /// a syscall outside the seccomp policy
    Seccomp,
    /// the guest exited or died on its own
    Crash,
    /// the guest broke the guest protocol
    Protocol,
    /// stopped for being idle (or to make room for another instance)
    Idle,
    /// stopped because its worker was redeployed or removed
    Redeploy,
}

impl KillKind {
    /// Every reason, in label order.
    pub const ALL: [KillKind; 8] = [
        KillKind::Oom,
        KillKind::Timeout,
        KillKind::Cpu,
        KillKind::Seccomp,
        KillKind::Crash,
        KillKind::Protocol,
        KillKind::Idle,
        KillKind::Redeploy,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            KillKind::Oom => "oom",
            KillKind::Timeout => "timeout",
            KillKind::Cpu => "cpu",
            KillKind::Seccomp => "seccomp",
            KillKind::Crash => "crash",
            KillKind::Protocol => "protocol",
            KillKind::Idle => "idle",
            KillKind::Redeploy => "redeploy",
        }
    }
}

/// Which limit refused something: the `kind` label of `warren_limit_rejections_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    /// objects per worker
    MaxObjects,
    /// concurrent instances, per worker or in total
    MaxInstances,
    /// request body size
    RequestBody,
    /// response body size
    ResponseBody,
    /// storage per object
    StorageQuota,
    /// per-request wall-clock timeout
    Timeout,
    /// per-request CPU budget
    CpuBudget,
    /// memory per instance
    Memory,
    /// pids per instance
    Pids,
    /// log volume per instance
    LogVolume,
    /// the wait queue for an instance slot was full
    QueueFull,
}

impl LimitKind {
    /// Every kind, in label order.
    pub const ALL: [LimitKind; 11] = [
        LimitKind::MaxObjects,
        LimitKind::MaxInstances,
        LimitKind::RequestBody,
        LimitKind::ResponseBody,
        LimitKind::StorageQuota,
        LimitKind::Timeout,
        LimitKind::CpuBudget,
        LimitKind::Memory,
        LimitKind::Pids,
        LimitKind::LogVolume,
        LimitKind::QueueFull,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::MaxObjects => "max_objects",
            LimitKind::MaxInstances => "max_instances",
            LimitKind::RequestBody => "request_body",
            LimitKind::ResponseBody => "response_body",
            LimitKind::StorageQuota => "storage_quota",
            LimitKind::Timeout => "timeout",
            LimitKind::CpuBudget => "cpu_budget",
            LimitKind::Memory => "memory",
            LimitKind::Pids => "pids",
            LimitKind::LogVolume => "log_volume",
            LimitKind::QueueFull => "queue_full",
        }
    }
}

/// Buckets of `warren_instance_spawn_seconds`: 0.5 ms .. 1 s.
const SPAWN_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];
/// Buckets of `warren_request_duration_seconds`: 1 ms .. 60 s (request timeouts reach there).
const REQUEST_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];
/// Buckets of `warren_sql_duration_seconds`: 10 µs .. 1 s.
const SQL_BUCKETS: &[f64] = &[
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0,
];

/// The daemon's metrics. `Send + Sync`; share it as `Arc<Metrics>`. Recording is lock-free
/// for existing series (a short lock the first time a label set is seen).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    workers: IntGauge,
    objects: IntGauge,
    instances_active: IntGauge,
    husks_warm: IntGauge,
    spawn_seconds: Histogram,
    kills_total: IntCounterVec,
    requests_total: IntCounterVec,
    request_duration: HistogramVec,
    sql_total: IntCounterVec,
    sql_duration: HistogramVec,
    storage_bytes: IntGaugeVec,
    rejections_total: IntCounterVec,
    log_dropped_total: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Saturating conversion for gauges (counts and byte sizes never come near `i64::MAX`).
fn gauge_value<T: TryInto<i64>>(n: T) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

impl Metrics {
    /// Create every metric in a fresh registry, with `warren_build_info` set and the
    /// `reason`/`kind` series at 0.
    ///
    /// # Panics
    /// Only on a bug in this module (an invalid or duplicate metric definition), which the
    /// unit tests catch.
    pub fn new() -> Metrics {
        const BUG: &str = "metrics.rs: invalid metric definition";
        let registry = Registry::new();
        let reg = |c: Box<dyn prometheus::core::Collector>| registry.register(c).expect(BUG);

        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect(BUG);
            reg(Box::new(g.clone()));
            g
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect(BUG);
            reg(Box::new(g.clone()));
            g
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect(BUG);
            reg(Box::new(c.clone()));
            c
        };
        let histogram_vec = |name: &str, help: &str, buckets: &[f64], labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )
            .expect(BUG);
            reg(Box::new(h.clone()));
            h
        };

        let build_info = gauge_vec(
            "warren_build_info",
            "Always 1; labels give the daemon's version and git commit.",
            &["version", "commit"],
        );
        build_info
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("WARREN_GIT_COMMIT").unwrap_or("unknown"),
            ])
            .set(1);

        let spawn_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "warren_instance_spawn_seconds",
                "Time to start an instance, from taking a husk to the guest being ready.",
            )
            .buckets(SPAWN_BUCKETS.to_vec()),
        )
        .expect(BUG);
        reg(Box::new(spawn_seconds.clone()));

        let m = Metrics {
            workers: gauge("warren_workers", "Workers deployed."),
            objects: gauge("warren_objects", "Objects known, over all workers."),
            instances_active: gauge(
                "warren_instances_active",
                "Instances (jailed processes serving an object) running now.",
            ),
            husks_warm: gauge("warren_husks_warm", "Pre-warmed husks waiting in the pool."),
            spawn_seconds,
            kills_total: counter_vec(
                "warren_instance_kills_total",
                "Instances ended by the supervisor or the kernel, by reason.",
                &["reason"],
            ),
            requests_total: counter_vec(
                "warren_requests_total",
                "Requests to objects, finished, by worker and outcome.",
                &["worker", "outcome"],
            ),
            request_duration: histogram_vec(
                "warren_request_duration_seconds",
                "Wall time of requests to objects, arrival to answer, by worker and outcome.",
                REQUEST_BUCKETS,
                &["worker", "outcome"],
            ),
            sql_total: counter_vec(
                "warren_sql_statements_total",
                "SQL statements run by the broker for guests, by worker and result.",
                &["worker", "result"],
            ),
            sql_duration: histogram_vec(
                "warren_sql_duration_seconds",
                "Time the broker spent on each SQL statement, by worker.",
                SQL_BUCKETS,
                &["worker"],
            ),
            storage_bytes: gauge_vec(
                "warren_storage_bytes",
                "Sum of the sizes of the worker's object databases.",
                &["worker"],
            ),
            rejections_total: counter_vec(
                "warren_limit_rejections_total",
                "Things a limit refused or cut short, by limit kind.",
                &["kind"],
            ),
            log_dropped_total: counter_vec(
                "warren_log_lines_dropped_total",
                "Guest log lines dropped by the rate limit or size cap, by worker.",
                &["worker"],
            ),
            registry,
        };
        for k in KillKind::ALL {
            m.kills_total.with_label_values(&[k.as_str()]);
        }
        for k in LimitKind::ALL {
            m.rejections_total.with_label_values(&[k.as_str()]);
        }
        m
    }

    /// The registry behind these metrics (to add collectors, or gather directly).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A request to one of `worker`'s objects finished with `outcome` after `took`.
    pub fn request(&self, worker: &str, outcome: Outcome, took: Duration) {
        let labels = [worker, outcome.as_str()];
        self.requests_total.with_label_values(&labels).inc();
        self.request_duration
            .with_label_values(&labels)
            .observe(took.as_secs_f64());
    }

    /// The broker ran one SQL statement for one of `worker`'s objects.
    pub fn sql(&self, worker: &str, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "error" };
        self.sql_total.with_label_values(&[worker, result]).inc();
        self.sql_duration
            .with_label_values(&[worker])
            .observe(took.as_secs_f64());
    }

    /// An instance was started in `took`.
    pub fn spawn(&self, took: Duration) {
        self.spawn_seconds.observe(took.as_secs_f64());
    }

    /// An instance was ended for `reason`.
    pub fn kill(&self, reason: KillKind) {
        self.kills_total.with_label_values(&[reason.as_str()]).inc();
    }

    /// A limit of `kind` refused something.
    pub fn reject(&self, kind: LimitKind) {
        self.reject_n(kind, 1);
    }

    /// A limit refused or cut short `n` things at once (e.g. forks refused by the pids limit).
    pub fn reject_n(&self, kind: LimitKind, n: u64) {
        self.rejections_total
            .with_label_values(&[kind.as_str()])
            .inc_by(n);
    }

    /// `n` instances are running now.
    pub fn set_instances(&self, n: usize) {
        self.instances_active.set(gauge_value(n));
    }

    /// `n` husks are warm now.
    pub fn set_warm(&self, n: usize) {
        self.husks_warm.set(gauge_value(n));
    }

    /// `worker`'s object databases add up to `bytes`.
    pub fn set_storage(&self, worker: &str, bytes: u64) {
        self.storage_bytes
            .with_label_values(&[worker])
            .set(gauge_value(bytes));
    }

    /// There are `workers` workers and `objects` objects now.
    pub fn set_counts(&self, workers: usize, objects: usize) {
        self.workers.set(gauge_value(workers));
        self.objects.set(gauge_value(objects));
    }

    /// `n` of `worker`'s log lines were dropped.
    pub fn log_dropped(&self, worker: &str, n: u64) {
        self.log_dropped_total
            .with_label_values(&[worker])
            .inc_by(n);
    }

    /// Drop every series labelled with `worker` (call when the worker is removed). A recording
    /// for that worker that races with this call may bring a series back; the next
    /// `forget_worker` removes it again.
    pub fn forget_worker(&self, worker: &str) {
        // Errors only say "no such series"; there is nothing to remove then.
        for o in Outcome::ALL {
            let labels = [worker, o.as_str()];
            let _ = self.requests_total.remove_label_values(&labels);
            let _ = self.request_duration.remove_label_values(&labels);
        }
        for result in ["ok", "error"] {
            let _ = self.sql_total.remove_label_values(&[worker, result]);
        }
        let _ = self.sql_duration.remove_label_values(&[worker]);
        let _ = self.storage_bytes.remove_label_values(&[worker]);
        let _ = self.log_dropped_total.remove_label_values(&[worker]);
    }

    /// Everything, in the Prometheus text exposition format ([`CONTENT_TYPE_TEXT`]).
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!("rendering metrics: {e}");
        }
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

/// How many scrapes may be connected at once; more are closed right away.
const MAX_CONNECTIONS: usize = 32;
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serve `GET /metrics` on `listener` until `shutdown` turns true (or its sender is dropped).
/// `HEAD /metrics` works too; other methods on `/metrics` get 405, other paths 404.
/// Open connections are closed gracefully at shutdown.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!("metrics accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            // Err: the sender is gone, which means shutdown too
            r = shutdown.changed() => match r {
                Ok(()) => continue,
                Err(_) => return,
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::warn!(
                "metrics: {MAX_CONNECTIONS} scrapes already connected; closing a new one"
            );
            continue;
        };
        let metrics = Arc::clone(&metrics);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let svc = hyper::service::service_fn(move |req| {
                let metrics = Arc::clone(&metrics);
                async move { Ok::<_, Infallible>(respond(&metrics, &req)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = shutdown.wait_for(|down| *down) => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
    }
}

fn respond(metrics: &Metrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: Bytes| {
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        r
    };
    if req.uri().path() != "/metrics" {
        let mut r = reply(
            StatusCode::NOT_FOUND,
            Bytes::from_static(b"not found: metrics are at /metrics\n"),
        );
        r.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return r;
    }
    let head = req.method() == Method::HEAD;
    if req.method() != Method::GET && !head {
        let mut r = reply(
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(b"method not allowed: use GET\n"),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(metrics.render())
    };
    let mut r = reply(StatusCode::OK, body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::io::Write;
    use std::process::{Command, Stdio};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// The value of the sample written exactly as `series` (name plus `{labels}` as the text
    /// format prints them, labels sorted by name), if present.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(series)?;
            let v = rest.strip_prefix(' ')?;
            v.parse().ok()
        })
    }

    #[test]
    fn requests_counted_by_worker_and_outcome() {
        let m = Metrics::new();
        m.request("counter", Outcome::Ok, ms(3));
        m.request("counter", Outcome::Ok, ms(20));
        m.request("counter", Outcome::from_status(404), ms(1));
        m.request("todo", Outcome::GuestTimeout, Duration::from_secs(5));
        let t = m.render();
        assert!(
            t.contains("warren_requests_total{outcome=\"ok\",worker=\"counter\"} 2\n"),
            "{t}"
        );
        assert!(
            t.contains("warren_requests_total{outcome=\"client_error\",worker=\"counter\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("warren_requests_total{outcome=\"guest_timeout\",worker=\"todo\"} 1\n"),
            "{t}"
        );
        assert!(t.contains(
            "warren_request_duration_seconds_count{outcome=\"ok\",worker=\"counter\"} 2\n"
        ));
        // 3 ms falls in le=0.005, 20 ms does not; both are under le=0.025.
        assert_eq!(
            sample(
                &t,
                "warren_request_duration_seconds_bucket{outcome=\"ok\",worker=\"counter\",le=\"0.005\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &t,
                "warren_request_duration_seconds_bucket{outcome=\"ok\",worker=\"counter\",le=\"0.025\"}"
            ),
            Some(2.0)
        );
        let sum = sample(
            &t,
            "warren_request_duration_seconds_sum{outcome=\"ok\",worker=\"counter\"}",
        )
        .expect("sum present");
        assert!((sum - 0.023).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn outcome_from_status() {
        assert_eq!(Outcome::from_status(200), Outcome::Ok);
        assert_eq!(Outcome::from_status(399), Outcome::Ok);
        assert_eq!(Outcome::from_status(400), Outcome::ClientError);
        assert_eq!(Outcome::from_status(499), Outcome::ClientError);
        assert_eq!(Outcome::from_status(500), Outcome::ServerError);
        assert_eq!(Outcome::from_status(599), Outcome::ServerError);
    }

    #[test]
    fn sql_spawn_kills_rejections_gauges() {
        let m = Metrics::new();
        let before = m.render();
        // fixed-kind series exist at 0 from the start
        for k in KillKind::ALL {
            let s = format!("warren_instance_kills_total{{reason=\"{}\"}}", k.as_str());
            assert_eq!(sample(&before, &s), Some(0.0), "{s}");
        }
        for k in LimitKind::ALL {
            let s = format!("warren_limit_rejections_total{{kind=\"{}\"}}", k.as_str());
            assert_eq!(sample(&before, &s), Some(0.0), "{s}");
        }
        assert_eq!(
            sample(&before, "warren_instance_spawn_seconds_count"),
            Some(0.0)
        );

        m.sql("counter", true, Duration::from_micros(40));
        m.sql("counter", true, Duration::from_micros(400));
        m.sql("counter", false, Duration::from_micros(40));
        m.spawn(Duration::from_micros(800));
        m.spawn(ms(3));
        m.kill(KillKind::Oom);
        m.kill(KillKind::Oom);
        m.kill(KillKind::Seccomp);
        m.reject(LimitKind::StorageQuota);
        m.reject(LimitKind::QueueFull);
        m.reject(LimitKind::QueueFull);
        m.set_instances(7);
        m.set_warm(4);
        m.set_storage("counter", 12_288);
        m.set_counts(3, 1000);
        m.log_dropped("counter", 17);
        m.log_dropped("counter", 3);

        let t = m.render();
        let want = [
            (
                "warren_sql_statements_total{result=\"ok\",worker=\"counter\"}",
                2.0,
            ),
            (
                "warren_sql_statements_total{result=\"error\",worker=\"counter\"}",
                1.0,
            ),
            ("warren_sql_duration_seconds_count{worker=\"counter\"}", 3.0),
            (
                "warren_sql_duration_seconds_bucket{worker=\"counter\",le=\"0.00005\"}",
                2.0,
            ),
            (
                "warren_sql_duration_seconds_bucket{worker=\"counter\",le=\"0.0005\"}",
                3.0,
            ),
            ("warren_instance_spawn_seconds_count", 2.0),
            ("warren_instance_spawn_seconds_bucket{le=\"0.0005\"}", 0.0),
            ("warren_instance_spawn_seconds_bucket{le=\"0.001\"}", 1.0),
            ("warren_instance_spawn_seconds_bucket{le=\"0.005\"}", 2.0),
            ("warren_instance_spawn_seconds_bucket{le=\"+Inf\"}", 2.0),
            ("warren_instance_kills_total{reason=\"oom\"}", 2.0),
            ("warren_instance_kills_total{reason=\"seccomp\"}", 1.0),
            ("warren_instance_kills_total{reason=\"timeout\"}", 0.0),
            ("warren_limit_rejections_total{kind=\"storage_quota\"}", 1.0),
            ("warren_limit_rejections_total{kind=\"queue_full\"}", 2.0),
            ("warren_limit_rejections_total{kind=\"memory\"}", 0.0),
            ("warren_instances_active", 7.0),
            ("warren_husks_warm", 4.0),
            ("warren_storage_bytes{worker=\"counter\"}", 12_288.0),
            ("warren_workers", 3.0),
            ("warren_objects", 1000.0),
            ("warren_log_lines_dropped_total{worker=\"counter\"}", 20.0),
        ];
        for (series, v) in want {
            assert_eq!(sample(&t, series), Some(v), "{series} in\n{t}");
        }

        // gauges go down as well as up
        m.set_instances(0);
        m.set_storage("counter", 4096);
        let t = m.render();
        assert_eq!(sample(&t, "warren_instances_active"), Some(0.0));
        assert_eq!(
            sample(&t, "warren_storage_bytes{worker=\"counter\"}"),
            Some(4096.0)
        );
    }

    #[test]
    fn build_info_is_one() {
        let t = Metrics::new().render();
        let commit = option_env!("WARREN_GIT_COMMIT").unwrap_or("unknown");
        let s = format!(
            "warren_build_info{{commit=\"{commit}\",version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(sample(&t, &s), Some(1.0), "{t}");
    }

    #[test]
    fn enum_label_values_are_distinct_snake_case() {
        fn check(values: &[&str]) {
            let set: BTreeSet<_> = values.iter().collect();
            assert_eq!(
                set.len(),
                values.len(),
                "duplicate label value in {values:?}"
            );
            for v in values {
                assert!(
                    !v.is_empty() && v.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{v}"
                );
            }
        }
        check(&Outcome::ALL.map(Outcome::as_str));
        check(&KillKind::ALL.map(KillKind::as_str));
        check(&LimitKind::ALL.map(LimitKind::as_str));
    }

    /// Every label name is one of a fixed, bounded set (no `object` label can exist), every
    /// name is `warren_`-prefixed, and the number of series does not grow with objects.
    #[test]
    fn label_sets_are_bounded() {
        let m = Metrics::new();
        // one worker, many "objects": nothing in the API can take an object name
        for _object in 0..1000 {
            m.request("counter", Outcome::Ok, ms(1));
            m.sql("counter", true, ms(1));
            m.set_storage("counter", 1);
            m.log_dropped("counter", 1);
        }
        for o in Outcome::ALL {
            m.request("counter", o, ms(1));
        }
        m.sql("counter", false, ms(1));
        for k in KillKind::ALL {
            m.kill(k);
        }
        for k in LimitKind::ALL {
            m.reject(k);
        }
        let allowed: BTreeSet<&str> = [
            "worker", "outcome", "result", "kind", "reason", "version", "commit",
        ]
        .into();
        let families = m.registry().gather();
        let mut series = 0;
        for f in &families {
            assert!(f.name().starts_with("warren_"), "{}", f.name());
            for metric in f.get_metric() {
                series += 1;
                for l in metric.get_label() {
                    assert!(
                        allowed.contains(l.name()),
                        "{}: label {}",
                        f.name(),
                        l.name()
                    );
                    if l.name() == "worker" {
                        assert_eq!(l.value(), "counter");
                    }
                }
            }
        }
        // build_info 1 + workers/objects/instances/husks 4 + spawn 1 + kills 8 + rejections 11
        // + requests 9 + request durations 9 + sql 2 + sql duration 1 + storage 1 + logs 1
        assert_eq!(series, 1 + 4 + 1 + 8 + 11 + 9 + 9 + 2 + 1 + 1 + 1);
    }

    #[test]
    fn forget_worker_removes_its_series() {
        let m = Metrics::new();
        for w in ["counter", "todo"] {
            for o in Outcome::ALL {
                m.request(w, o, ms(2));
            }
            m.sql(w, true, ms(1));
            m.sql(w, false, ms(1));
            m.set_storage(w, 100);
            m.log_dropped(w, 1);
        }
        m.kill(KillKind::Crash);
        m.forget_worker("counter");
        m.forget_worker("never-deployed"); // harmless
        let t = m.render();
        assert!(!t.contains("worker=\"counter\""), "{t}");
        assert!(t.contains("warren_requests_total{outcome=\"ok\",worker=\"todo\"} 1\n"));
        assert!(t.contains("warren_storage_bytes{worker=\"todo\"} 100\n"));
        assert!(t.contains("warren_sql_duration_seconds_count{worker=\"todo\"} 2\n"));
        assert!(t.contains("warren_log_lines_dropped_total{worker=\"todo\"} 1\n"));
        // worker-less series stay
        assert_eq!(
            sample(&t, "warren_instance_kills_total{reason=\"crash\"}"),
            Some(1.0)
        );
        // a worker deployed again under the same name starts from zero
        m.request("counter", Outcome::Ok, ms(2));
        let t = m.render();
        assert!(t.contains("warren_requests_total{outcome=\"ok\",worker=\"counter\"} 1\n"));
    }

    #[test]
    fn worker_label_values_are_escaped() {
        // worker names are validated elsewhere; even so, no value can break the format
        let m = Metrics::new();
        m.request("we\"ird\\\nname", Outcome::Ok, ms(1));
        let t = m.render();
        assert!(
            t.contains("warren_requests_total{outcome=\"ok\",worker=\"we\\\"ird\\\\\\nname\"} 1\n"),
            "{t}"
        );
    }

    /// The rendered text passes `promtool check metrics` (format and naming lint).
    /// promtool is Debian's `prometheus` package, which `scripts/test` installs.
    #[test]
    fn promtool_accepts_the_output() {
        let m = Metrics::new();
        m.request("counter", Outcome::Ok, ms(3));
        m.request("counter", Outcome::ServerError, ms(30));
        m.sql("counter", true, Duration::from_micros(50));
        m.sql("counter", false, Duration::from_micros(50));
        m.spawn(ms(1));
        m.kill(KillKind::Timeout);
        m.reject(LimitKind::MaxObjects);
        m.set_instances(1);
        m.set_warm(2);
        m.set_storage("counter", 8192);
        m.set_counts(1, 1);
        m.log_dropped("counter", 5);
        let text = m.render();

        let mut child = match Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!(
                "cannot run promtool ({e}): install Debian's `prometheus` package \
                 (apt-get install prometheus; scripts/test does it) — this test does not skip"
            ),
        };
        child
            .stdin
            .take()
            .expect("stdin piped")
            .write_all(text.as_bytes())
            .expect("write to promtool");
        let out = child.wait_with_output().expect("wait for promtool");
        assert!(
            out.status.success(),
            "promtool check metrics failed ({}):\nstdout: {}\nstderr: {}\ninput:\n{text}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        // promtool prints lint problems even when it exits 0 in some versions
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            said.trim().is_empty(),
            "promtool complained:\n{said}\ninput:\n{text}"
        );
    }

    async fn http(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(request.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn serves_metrics_over_http_until_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let metrics = Arc::new(Metrics::new());
        metrics.request("counter", Outcome::Ok, ms(1));
        let (tx, rx) = watch::channel(false);
        let server = tokio::spawn(serve(listener, Arc::clone(&metrics), rx));

        let r = http(
            addr,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(
            r.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{r}"
        );
        assert!(
            r.contains("warren_requests_total{outcome=\"ok\",worker=\"counter\"} 1\n"),
            "{r}"
        );

        // the served text is live
        metrics.request("counter", Outcome::Ok, ms(1));
        let r = http(
            addr,
            "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            r.contains("warren_requests_total{outcome=\"ok\",worker=\"counter\"} 2\n"),
            "{r}"
        );

        let r = http(
            addr,
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 404 Not Found\r\n"), "{r}");
        let r = http(
            addr,
            "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{r}");
        let r = http(addr, "garbage\r\n\r\n").await;
        assert!(r.is_empty() || r.starts_with("HTTP/1.1 400"), "{r}");

        // an idle keep-alive connection does not hold shutdown up
        let mut idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
        idle.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 64];
        let n = idle.read(&mut buf).await.expect("read");
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

        tx.send(true).expect("send shutdown");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns after shutdown")
            .expect("serve did not panic");
        // the idle connection is closed too
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest))
            .await
            .expect("keep-alive connection closed at shutdown")
            .expect("read");
        // and nothing listens any more
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn serve_returns_at_once_if_already_shut_down() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (_tx, rx) = watch::channel(true);
        tokio::time::timeout(
            Duration::from_secs(5),
            serve(listener, Arc::new(Metrics::new()), rx),
        )
        .await
        .expect("serve returns");
    }
}
