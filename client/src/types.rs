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
