//! The JSON documents of the control API (docs/api.md), and the request/response types of
//! [`Client::fetch`](crate::Client::fetch).

use bytes::Bytes;
use hyper::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `"ok"`.
    pub status: String,
    /// The daemon's version, e.g. `"0.1.0"`.
    pub version: String,
    /// Pre-warmed husks waiting for a program.
    pub warm_husks: u64,
    /// Running instances.
    pub instances: u64,
}

/// The limits a worker's version runs with, as the daemon resolved them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Memory per instance, bytes.
    pub memory: u64,
    /// Processes/threads per instance.
    pub pids: u64,
    /// CPUs per instance (`0.5` = half a CPU).
    pub cpu: f64,
    /// Database bytes per object.
    pub storage: u64,
    /// Objects the worker may have.
    pub max_objects: u64,
    /// Time one request may take, milliseconds.
    pub timeout_ms: u64,
    /// CPU time one request may use, milliseconds (0 from a daemon that does not report it).
    #[serde(default)]
    pub cpu_budget_ms: u64,
    /// The largest response body, bytes (0 from a daemon that does not report it).
    #[serde(default)]
    pub max_response: u64,
    /// Instances of the worker that may run at once (0 from a daemon that does not report it).
    #[serde(default)]
    pub max_instances: u64,
    /// Log output one instance may write, bytes (0 from a daemon that does not report it).
    #[serde(default)]
    pub log_bytes: u64,
}

/// A worker (its current version). `objects` and `active_instances` are present in
/// `GET /v1/workers` (and `GET /v1/workers/{worker}`), not in the answer to a deploy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Worker {
    /// The worker's name.
    pub name: String,
    /// The current version, counting from 1.
    pub version: u64,
    /// SHA-256 of the program, lowercase hex.
    pub sha256: String,
    /// Program size, bytes.
    pub size: u64,
    /// The limits of this version.
    pub limits: Limits,
    /// When this version was deployed (RFC 3339, UTC).
    pub created_at: String,
    /// How many objects the worker has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objects: Option<u64>,
    /// How many of its instances run now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_instances: Option<u64>,
}

/// One version of a worker, in [`WorkerDetail::versions`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerVersion {
    /// The version number.
    pub version: u64,
    /// SHA-256 of the program, lowercase hex.
    pub sha256: String,
    /// Program size, bytes.
    pub size: u64,
    /// When it was deployed (RFC 3339, UTC).
    pub created_at: String,
}

/// `GET /v1/workers/{worker}`: the worker plus all its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerDetail {
    /// The worker (its current version).
    #[serde(flatten)]
    pub worker: Worker,
    /// All versions, as the daemon lists them.
    pub versions: Vec<WorkerVersion>,
}

/// `GET /v1/workers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerList {
    /// The workers, sorted by name.
    pub workers: Vec<Worker>,
}

/// One object of a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// The object's name (any UTF-8 without NUL, 1-256 bytes).
    pub name: String,
    /// Size of its database, bytes.
    pub bytes: u64,
    /// Whether an instance serves it right now.
    pub active: bool,
}

/// `GET /v1/workers/{worker}/objects`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectList {
    /// The objects, sorted by name.
    pub objects: Vec<ObjectInfo>,
}

/// `DELETE /v1/workers/{worker}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedWorker {
    /// The deleted worker's name.
    pub deleted: String,
    /// How many objects were deleted with it.
    pub objects: u64,
}

/// `DELETE /v1/workers/{worker}/objects/{object}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedObject {
    /// The deleted object's name.
    pub deleted: String,
}

/// A request to send to an object with [`Client::fetch`](crate::Client::fetch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// The HTTP method (`GET`, `POST`, or any other token; sent as given).
    pub method: String,
    /// The request target the guest sees: a path with an optional query, e.g.
    /// `/items/a b?sort=name`. `/` is kept as the separator, valid `%XX` escapes are kept,
    /// everything else that cannot appear in a path is percent-encoded; the query (after the
    /// first `?`) is passed through, encoding only what cannot appear in a query.
    /// Empty means `/`; a missing leading `/` is added.
    pub path: String,
    /// Request headers, in order. `Content-Length`, `Transfer-Encoding` and the hop-by-hop
    /// headers are set by the client and refused here.
    pub headers: Vec<(String, String)>,
    /// The request body (at most [`MAX_FETCH_BODY`](crate::MAX_FETCH_BODY) bytes).
    pub body: Bytes,
}

impl FetchRequest {
    /// A request with `method` to `path`, no headers and no body.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        FetchRequest {
            method: method.into(),
            path: path.into(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// A `GET` of `path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new("GET", path)
    }

    /// A `POST` of `body` to `path`.
    pub fn post(path: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self::new("POST", path).body(body)
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}

impl Default for FetchRequest {
    fn default() -> Self {
        Self::get("/")
    }
}

/// The header that marks a response produced by the daemon rather than the guest.
pub const WARREN_ERROR_HEADER: &str = "x-warren-error";

/// What came back from [`Client::fetch`](crate::Client::fetch): the guest's answer as it is, or
/// a daemon error (then [`FetchResponse::daemon_error`] is `Some`).
#[derive(Debug, Clone)]
pub struct FetchResponse {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body.
    pub body: Bytes,
}

impl FetchResponse {
    /// Whether the status is below 400.
    pub fn is_success(&self) -> bool {
        self.status < 400
    }

    /// The `x-warren-error` code when the daemon (not the guest) produced this response.
    pub fn warren_error_code(&self) -> Option<&str> {
        self.headers
            .get(WARREN_ERROR_HEADER)
            .map(|v| v.to_str().unwrap_or("(unreadable)"))
    }

    /// The daemon's error when the daemon (not the guest) produced this response: an
    /// [`Error::Api`] parsed from the body, or [`Error::Protocol`] when the body is unreadable.
    pub fn daemon_error(&self) -> Option<Error> {
        self.warren_error_code()?;
        Some(Error::from_response(self.status, &self.body))
    }
}

/// One line of a worker's log, as `GET /v1/workers/{worker}/logs` streams them
/// ([`Client::logs`](crate::Client::logs)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When the line was read (or the notice written), Unix milliseconds.
    pub ts_ms: u64,
    /// The worker.
    pub worker: String,
    /// The object whose instance printed it (empty for a notice about the stream itself).
    pub object: String,
    /// The request the instance was serving, if any.
    #[serde(default)]
    pub request_id: Option<u64>,
    /// `stdout`, `stderr`, or `system` for what the daemon says about the log (dropped lines).
    pub stream: String,
    /// The line, without its newline.
    pub line: String,
}

/// What [`Client::logs`](crate::Client::logs) asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this object's lines.
    pub object: Option<String>,
    /// How many of the last lines to send first (the daemon's default is 100; at most
    /// [`MAX_LOG_TAIL`](crate::MAX_LOG_TAIL)).
    pub tail: Option<usize>,
    /// Keep the stream open and send new lines as they come.
    pub follow: bool,
}

/// The usage counters of a worker or one of its objects (`GET /v1/usage`). Counters a daemon
/// does not send are 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsageCounters {
    /// Requests answered (by the guest or with an error).
    pub requests: u64,
    /// CPU time of the instances during requests, microseconds.
    pub cpu_us: u64,
    /// Wall-clock time of requests, microseconds.
    pub wall_us: u64,
    /// Rows returned by the guest's SQL.
    pub rows_read: u64,
    /// Rows inserted, updated or deleted by the guest's SQL.
    pub rows_written: u64,
    /// Request body bytes.
    pub bytes_in: u64,
    /// Response body bytes.
    pub bytes_out: u64,
    /// Instances started.
    pub instance_starts: u64,
    /// Instances killed for their memory limit.
    pub kills_oom: u64,
    /// Instances killed for taking longer than the timeout.
    pub kills_timeout: u64,
    /// Instances killed for using up their CPU budget.
    pub kills_cpu: u64,
    /// Instances killed for a forbidden system call.
    pub kills_seccomp: u64,
    /// Instances that crashed or broke the protocol.
    pub kills_crash: u64,
    /// Database bytes (the latest size seen).
    pub storage_bytes: u64,
}

impl UsageCounters {
    /// All kills, whatever the reason.
    pub fn kills(&self) -> u64 {
        self.kill_reasons().iter().map(|(_, n)| n).sum()
    }

    /// The kills by reason, `oom`, `timeout`, `cpu`, `seccomp`, `crash`, in that order.
    pub fn kill_reasons(&self) -> [(&'static str, u64); 5] {
        [
            ("oom", self.kills_oom),
            ("timeout", self.kills_timeout),
            ("cpu", self.kills_cpu),
            ("seccomp", self.kills_seccomp),
            ("crash", self.kills_crash),
        ]
    }
}

/// The usage of one object, in [`WorkerUsage::objects`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectUsage {
    /// The object's name.
    pub object: String,
    /// Its counters.
    #[serde(flatten)]
    pub counters: UsageCounters,
}

/// The usage of one worker: the totals over its objects, and each object's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerUsage {
    /// The worker's name.
    pub worker: String,
    /// The totals over its objects.
    #[serde(flatten)]
    pub counters: UsageCounters,
    /// Per object, sorted by name.
    #[serde(default)]
    pub objects: Vec<ObjectUsage>,
}

/// `GET /v1/usage` ([`Client::usage`](crate::Client::usage)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageReport {
    /// The start of the counted period, Unix seconds (rounded down to the hour; 0 for
    /// everything).
    pub since: u64,
    /// The workers with usage in the period, sorted by name.
    pub workers: Vec<WorkerUsage>,
}

/// A value of SQLite: a parameter of [`Client::sql`](crate::Client::sql) or a cell of its
/// [`SqlResult`]. In JSON a blob is `{"blob_hex": "..."}`, the rest are plain JSON values.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// `NULL`.
    Null,
    /// A 64-bit integer.
    Integer(i64),
    /// A floating-point number.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes (results only: the daemon takes no blob parameters).
    Blob(Vec<u8>),
}

impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::Integer(v)
    }
}

impl From<f64> for SqlValue {
    fn from(v: f64) -> Self {
        SqlValue::Real(v)
    }
}

impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_string())
    }
}

impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

impl Serialize for SqlValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SqlValue::Null => s.serialize_none(),
            SqlValue::Integer(i) => s.serialize_i64(*i),
            SqlValue::Real(f) => s.serialize_f64(*f),
            SqlValue::Text(t) => s.serialize_str(t),
            SqlValue::Blob(b) => {
                use serde::ser::SerializeMap as _;
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("blob_hex", &hex(b))?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for SqlValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        use serde_json::Value;
        Ok(match Value::deserialize(d)? {
            Value::Null => SqlValue::Null,
            Value::Bool(b) => SqlValue::Integer(i64::from(b)),
            Value::Number(n) => match n.as_i64() {
                Some(i) => SqlValue::Integer(i),
                None => SqlValue::Real(
                    n.as_f64()
                        .ok_or_else(|| D::Error::custom(format!("{n} is not a SQLite number")))?,
                ),
            },
            Value::String(t) => SqlValue::Text(t),
            Value::Object(map) => {
                let hex = match (map.len(), map.get("blob_hex")) {
                    (1, Some(Value::String(hex))) => hex,
                    _ => {
                        return Err(D::Error::custom(
                            "an object value must be {\"blob_hex\": \"...\"}",
                        ))
                    }
                };
                SqlValue::Blob(unhex(hex).ok_or_else(|| {
                    D::Error::custom(format!("blob_hex {hex:?} is not hexadecimal"))
                })?)
            }
            Value::Array(_) => return Err(D::Error::custom("a SQL value cannot be a list")),
        })
    }
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// The bytes of a hex string (either case), or `None`.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digits = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(digits, 16).ok()
        })
        .collect()
}

/// What `POST /v1/workers/{worker}/objects/{object}/sql` answers
/// ([`Client::sql`](crate::Client::sql)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SqlResult {
    /// The result's column names (empty for a statement that returns no rows).
    pub columns: Vec<String>,
    /// The rows, each with one value per column.
    pub rows: Vec<Vec<SqlValue>>,
    /// Rows inserted, updated or deleted by the statement.
    #[serde(default)]
    pub rows_changed: u64,
    /// The rowid of the last inserted row of the connection (0 if none).
    #[serde(default)]
    pub last_insert_id: i64,
}

/// One isolation layer of the daemon's cells, in [`Doctor::layers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoctorLayer {
    /// The layer: `namespaces`, `filesystem`, `landlock`, `seccomp`, `cgroups`, `rlimits`,
    /// `privileges`.
    pub layer: String,
    /// Whether it is usable.
    pub ok: bool,
    /// What was found, or what is missing.
    pub detail: String,
}

/// `GET /v1/doctor` ([`Client::doctor`](crate::Client::doctor)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Doctor {
    /// The daemon's version.
    pub version: String,
    /// The jail layers of the daemon's cells.
    pub layers: Vec<DoctorLayer>,
    /// Pre-warmed husks waiting for a program.
    pub warm_husks: u64,
    /// How many husks the pool keeps warm.
    pub pool_size: u64,
    /// Why the pool last failed to make a husk, if it did.
    #[serde(default)]
    pub pool_error: Option<String>,
    /// Running instances.
    pub instances: u64,
    /// The daemon's state directory.
    #[serde(default)]
    pub state_dir: String,
}

impl Doctor {
    /// Whether every layer is usable and the pool has no error (a report without layers is
    /// not healthy).
    pub fn healthy(&self) -> bool {
        !self.layers.is_empty() && self.layers.iter().all(|l| l.ok) && self.pool_error.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYED: &str = r#"{"name": "counter", "version": 2, "sha256": "9f2c", "size": 812344,
        "limits": {"memory": 67108864, "pids": 32, "cpu": 0.5, "storage": 104857600,
                   "max_objects": 1000, "timeout_ms": 5000},
        "created_at": "2026-12-04T16:00:00Z"}"#;

    #[test]
    fn worker_from_deploy_and_list() {
        let w: Worker = serde_json::from_str(DEPLOYED).unwrap();
        assert_eq!(w.name, "counter");
        assert_eq!(w.version, 2);
        assert_eq!(w.limits.memory, 64 << 20);
        assert!((w.limits.cpu - 0.5).abs() < f64::EPSILON);
        assert_eq!(w.limits.timeout_ms, 5000);
        assert_eq!(w.objects, None);
        // Round trip leaves out the absent counters.
        let back = serde_json::to_value(&w).unwrap();
        assert!(back.get("objects").is_none());

        let list = format!(
            r#"{{"workers": [{}]}}"#,
            DEPLOYED.replace(
                "\"size\"",
                "\"objects\": 3, \"active_instances\": 1, \"size\""
            )
        );
        let list: WorkerList = serde_json::from_str(&list).unwrap();
        assert_eq!(list.workers[0].objects, Some(3));
        assert_eq!(list.workers[0].active_instances, Some(1));
    }

    #[test]
    fn worker_detail_flattens_the_worker() {
        let text = DEPLOYED.replacen(
            '{',
            r#"{"versions": [{"version": 1, "sha256": "aa", "size": 5, "created_at": "x"},
                             {"version": 2, "sha256": "9f2c", "size": 812344, "created_at": "y"}],"#,
            1,
        );
        let d: WorkerDetail = serde_json::from_str(&text).unwrap();
        assert_eq!(d.worker.name, "counter");
        assert_eq!(d.versions.len(), 2);
        assert_eq!(d.versions[0].sha256, "aa");
    }

    #[test]
    fn objects_and_deletions() {
        let l: ObjectList = serde_json::from_str(
            r#"{"objects": [{"name": "alice", "bytes": 24576, "active": true}]}"#,
        )
        .unwrap();
        assert_eq!(
            l.objects,
            vec![ObjectInfo {
                name: "alice".into(),
                bytes: 24576,
                active: true
            }]
        );
        let d: DeletedWorker =
            serde_json::from_str(r#"{"deleted": "counter", "objects": 4}"#).unwrap();
        assert_eq!(d.objects, 4);
        let o: DeletedObject = serde_json::from_str(r#"{"deleted": "alice"}"#).unwrap();
        assert_eq!(o.deleted, "alice");
        let h: Health = serde_json::from_str(
            r#"{"status": "ok", "version": "0.1.0", "warm_husks": 4, "instances": 2}"#,
        )
        .unwrap();
        assert_eq!(h.warm_husks, 4);
    }

    #[test]
    fn fetch_response_daemon_errors() {
        let mut headers = HeaderMap::new();
        let guest = FetchResponse {
            status: 404,
            headers: headers.clone(),
            body: Bytes::from_static(b"nope"),
        };
        assert!(guest.daemon_error().is_none());
        assert!(!guest.is_success());
        headers.insert(WARREN_ERROR_HEADER, "guest_timeout".parse().unwrap());
        let daemon = FetchResponse {
            status: 504,
            headers,
            body: Bytes::from_static(
                br#"{"error": {"kind": "guest", "code": "guest_timeout", "message": "took longer than 5s"}}"#,
            ),
        };
        assert_eq!(daemon.warren_error_code(), Some("guest_timeout"));
        let err = daemon.daemon_error().unwrap();
        assert_eq!(err.to_string(), "took longer than 5s (guest_timeout)");
    }

    #[test]
    fn limits_of_older_and_newer_daemons() {
        let old: Worker = serde_json::from_str(DEPLOYED).unwrap();
        assert_eq!((old.limits.cpu_budget_ms, old.limits.log_bytes), (0, 0));
        let new: Limits = serde_json::from_str(
            r#"{"memory": 1, "pids": 2, "cpu": 1.0, "storage": 3, "max_objects": 4,
                "timeout_ms": 5, "cpu_budget_ms": 6, "max_response": 7, "max_instances": 8,
                "log_bytes": 9}"#,
        )
        .unwrap();
        assert_eq!(
            (
                new.cpu_budget_ms,
                new.max_response,
                new.max_instances,
                new.log_bytes
            ),
            (6, 7, 8, 9)
        );
    }

    #[test]
    fn usage_reports() {
        let r: UsageReport = serde_json::from_str(
            r#"{"since": 1796396400, "workers": [{"worker": "counter", "requests": 10,
                "cpu_us": 20311, "wall_us": 51000, "rows_read": 4, "rows_written": 9,
                "bytes_in": 0, "bytes_out": 12, "instance_starts": 1, "kills_oom": 1,
                "kills_timeout": 2, "kills_cpu": 0, "kills_seccomp": 0, "kills_crash": 0,
                "storage_bytes": 20480,
                "objects": [{"object": "alice", "requests": 10, "kills_oom": 1, "future": 3}]}]}"#,
        )
        .unwrap();
        assert_eq!(r.since, 1_796_396_400);
        let w = &r.workers[0];
        assert_eq!((w.worker.as_str(), w.counters.cpu_us), ("counter", 20311));
        assert_eq!(w.counters.kills(), 3);
        assert_eq!(w.objects[0].object, "alice");
        assert_eq!(w.objects[0].counters.requests, 10);
        assert_eq!(
            w.objects[0].counters.storage_bytes, 0,
            "missing counters are 0"
        );
        assert_eq!(w.objects[0].counters.kills(), 1);
        let back = serde_json::to_value(w).unwrap();
        assert_eq!(back["kills_timeout"], 2);
        assert_eq!(back["objects"][0]["object"], "alice");
    }

    #[test]
    fn sql_values() {
        let r: SqlResult = serde_json::from_str(
            r#"{"columns": ["a", "b", "c", "d", "e"],
                "rows": [[1, 2.5, "x", null, {"blob_hex": "00ff"}], [-9, 1e300, "", true, {"blob_hex": ""}]],
                "rows_changed": 0, "last_insert_id": 0}"#,
        )
        .unwrap();
        assert_eq!(
            r.rows[0],
            [
                SqlValue::Integer(1),
                SqlValue::Real(2.5),
                SqlValue::Text("x".into()),
                SqlValue::Null,
                SqlValue::Blob(vec![0, 0xff])
            ]
        );
        assert_eq!(r.rows[1][3], SqlValue::Integer(1));
        assert_eq!(r.rows[1][4], SqlValue::Blob(Vec::new()));
        for bad in [
            r#"[[{"blob_hex": "0g"}]]"#,
            r#"[[{"blob_hex": "abc"}]]"#,
            r#"[[{"other": "00"}]]"#,
            r#"[[[1]]]"#,
        ] {
            let text = format!(r#"{{"columns": ["a"], "rows": {bad}}}"#);
            assert!(serde_json::from_str::<SqlResult>(&text).is_err(), "{bad}");
        }
        let params = [
            SqlValue::from(7),
            SqlValue::from(0.5),
            SqlValue::from("t"),
            SqlValue::from(None::<i64>),
            SqlValue::Blob(vec![1, 0xab]),
        ];
        assert_eq!(
            serde_json::to_string(&params).unwrap(),
            r#"[7,0.5,"t",null,{"blob_hex":"01ab"}]"#
        );
    }

    #[test]
    fn doctor_reports() {
        let mut d: Doctor = serde_json::from_str(
            r#"{"version": "0.1.0", "layers": [{"layer": "seccomp", "ok": true, "detail": "filter"}],
                "warm_husks": 4, "pool_size": 4, "pool_error": null, "instances": 0,
                "state_dir": "/var/lib/warren"}"#,
        )
        .unwrap();
        assert!(d.healthy());
        d.pool_error = Some("fork failed".into());
        assert!(!d.healthy());
        d.pool_error = None;
        d.layers[0].ok = false;
        assert!(!d.healthy());
        d.layers.clear();
        assert!(!d.healthy());
    }

    #[test]
    fn log_entries() {
        let e: LogEntry = serde_json::from_str(
            r#"{"ts_ms": 1796400000123, "worker": "counter", "object": "alice",
                "request_id": 7, "stream": "stdout", "line": "hello"}"#,
        )
        .unwrap();
        assert_eq!((e.request_id, e.stream.as_str()), (Some(7), "stdout"));
        let e: LogEntry = serde_json::from_str(
            r#"{"ts_ms": 1, "worker": "w", "object": "", "request_id": null, "stream": "system",
                "line": "3 lines dropped", "new_field": true}"#,
        )
        .unwrap();
        assert_eq!(e.request_id, None);
    }
}
