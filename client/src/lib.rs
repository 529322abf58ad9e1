//! `warren-client`: the Rust SDK for warrend's control socket, and the `warren` CLI built on it.
//!
//! The daemon serves HTTP/1.1 with JSON bodies on a Unix socket (docs/api.md). [`Client`] opens
//! one connection per request, so it is cheap to clone and needs no shutdown. Its methods are
//! `async` and need a Tokio runtime.
//!
//! ```no_run
//! # async fn demo() -> warren_client::Result<()> {
//! use warren_client::{Client, DeployLimits, FetchRequest};
//!
//! let client = Client::from_env(); // WARREN_SOCKET, or /run/warren/warrend.sock
//! let program = std::fs::read("target/release/examples/counter").unwrap();
//! let limits = DeployLimits { memory: Some("64M".into()), ..DeployLimits::default() };
//! let worker = client.deploy("counter", program, &limits).await?;
//! println!("deployed {} version {}", worker.name, worker.version);
//!
//! let answer = client.fetch("counter", "alice", FetchRequest::post("/increment", "")).await?;
//! println!("{} {}", answer.status, String::from_utf8_lossy(&answer.body));
//! # Ok(())
//! # }
//! ```

pub mod error;
pub mod limits;
pub mod types;
pub mod uri;

mod transport;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::BodyExt as _;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Method, StatusCode};
use serde::de::DeserializeOwned;

pub use crate::error::{Error, ErrorBody, ErrorDetail, Result};
pub use crate::limits::{DeployLimits, LimitError};
pub use crate::types::{
    DeletedObject, DeletedWorker, Doctor, DoctorLayer, FetchRequest, FetchResponse, Health, Limits,
    LogEntry, LogQuery, ObjectInfo, ObjectList, ObjectUsage, SqlResult, SqlValue, UsageCounters,
    UsageReport, Worker, WorkerDetail, WorkerList, WorkerUsage, WorkerVersion, WARREN_ERROR_HEADER,
};
/// The `http` crate, whose types (`HeaderMap`, ...) appear in this API.
pub use hyper::http;

/// The control socket when neither `--socket` nor `WARREN_SOCKET` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/warren/warrend.sock";

/// The environment variable naming the control socket.
pub const SOCKET_ENV: &str = "WARREN_SOCKET";

/// The largest program the daemon accepts (256 MiB).
pub const MAX_PROGRAM: usize = 256 << 20;

/// The largest request body a fetch may carry (16 MiB).
pub const MAX_FETCH_BODY: usize = 16 << 20;

/// The most log lines one [`Client::logs`] may ask for with [`LogQuery::tail`].
pub const MAX_LOG_TAIL: usize = 10_000;

/// The longest log line ([`LogReader`]) this client accepts, bytes of JSON.
pub const MAX_LOG_LINE: usize = 1 << 20;

/// The largest body of a [`Client::sql`] request (the daemon's limit: 1 MiB).
pub const MAX_SQL_BODY: usize = 1 << 20;

/// The largest error body read from a log request.
const MAX_ERROR_BODY: usize = 64 << 10;

/// Request headers that the client sets itself (or that make no sense end to end), refused in
/// a [`FetchRequest`].
const RESERVED_HEADERS: [&str; 6] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "proxy-connection",
];

/// The control socket to use: `WARREN_SOCKET` when set and not empty, else [`DEFAULT_SOCKET`].
pub fn socket_from_env() -> PathBuf {
    match std::env::var_os(SOCKET_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}

/// A client of warrend's control API on a Unix socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    /// A client of the daemon listening on `socket`. Nothing is connected until a request.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Client {
            socket: socket.into(),
        }
    }

    /// A client of the socket named by `WARREN_SOCKET`, or [`DEFAULT_SOCKET`].
    pub fn from_env() -> Self {
        Self::new(socket_from_env())
    }

    /// The socket this client connects to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET /v1/health`.
    pub async fn health(&self) -> Result<Health> {
        self.get_json(&uri::health()).await
    }

    /// `PUT /v1/workers/{name}`: deploys `program` (an x86-64 ELF executable) as the next
    /// version of worker `name`. Limits are checked locally for syntax, then sent as given.
    pub async fn deploy(
        &self,
        name: &str,
        program: impl Into<Bytes>,
        limits: &DeployLimits,
    ) -> Result<Worker> {
        limits
            .validate()
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let program = program.into();
        if program.len() > MAX_PROGRAM {
            return Err(Error::InvalidArgument(format!(
                "the program is {} bytes; warrend accepts at most 256 MiB",
                program.len()
            )));
        }
        let mut target = uri::worker(name)?;
        let query = limits.query();
        if !query.is_empty() {
            target.push('?');
            target.push_str(&query);
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let (status, _, body) = self.send(Method::PUT, &target, headers, program).await?;
        json_answer(status, &body)
    }

    /// `GET /v1/workers`: all workers, sorted by name.
    pub async fn workers(&self) -> Result<Vec<Worker>> {
        let list: WorkerList = self.get_json(&uri::workers()).await?;
        Ok(list.workers)
    }

    /// `PATCH /v1/workers/{name}`: changes the set limits of worker `name` (the others keep
    /// their values; no new version is made) and answers the worker with its new limits.
    /// Limits are checked locally for syntax, then sent as given; at least one must be set.
    pub async fn set_limits(&self, name: &str, limits: &DeployLimits) -> Result<Worker> {
        let body = self.set_limits_raw(name, limits).await?;
        json_answer(StatusCode::OK, &body)
    }

    /// [`Client::set_limits`], answering the daemon's JSON verbatim.
    pub async fn set_limits_raw(&self, name: &str, limits: &DeployLimits) -> Result<Bytes> {
        limits
            .validate()
            .map_err(|e| Error::InvalidArgument(e.to_string()))?;
        if limits.is_empty() {
            return Err(Error::InvalidArgument(
                "no limit to change; set at least one".into(),
            ));
        }
        let target = uri::worker_limits(name, limits)?;
        self.raw(Method::PATCH, &target, HeaderMap::new(), Bytes::new())
            .await
    }

    /// `GET /v1/workers/{name}`: the worker and all its versions.
    pub async fn worker(&self, name: &str) -> Result<WorkerDetail> {
        self.get_json(&uri::worker(name)?).await
    }

    /// `DELETE /v1/workers/{name}`: stops the worker's instances and deletes it, its versions
    /// and all its objects' data.
    pub async fn delete_worker(&self, name: &str) -> Result<DeletedWorker> {
        self.delete_json(&uri::worker(name)?).await
    }

    /// `GET /v1/workers/{name}/objects`: the worker's objects, sorted by name.
    pub async fn objects(&self, name: &str) -> Result<Vec<ObjectInfo>> {
        let list: ObjectList = self.get_json(&uri::objects(name)?).await?;
        Ok(list.objects)
    }

    /// `DELETE /v1/workers/{name}/objects/{object}`: stops the object's instance and deletes its
    /// database.
    pub async fn delete_object(&self, name: &str, object: &str) -> Result<DeletedObject> {
        self.delete_json(&uri::object(name, object)?).await
    }

    /// Sends `request` to object `object` of worker `name`
    /// (`/v1/workers/{name}/objects/{object}/fetch{path}`).
    ///
    /// Any status comes back as a [`FetchResponse`], the guest's as well as the daemon's own
    /// errors (then [`FetchResponse::daemon_error`] is `Some`); `Err` means the exchange itself
    /// failed or the request could not be built.
    pub async fn fetch(
        &self,
        name: &str,
        object: &str,
        request: FetchRequest,
    ) -> Result<FetchResponse> {
        let method = Method::from_bytes(request.method.as_bytes()).map_err(|_| {
            Error::InvalidArgument(format!("{:?} is not an HTTP method", request.method))
        })?;
        if request.body.len() > MAX_FETCH_BODY {
            return Err(Error::InvalidArgument(format!(
                "the request body is {} bytes; warrend accepts at most 16 MiB",
                request.body.len()
            )));
        }
        let target = uri::fetch(name, object, &request.path)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let header = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                Error::InvalidArgument(format!("{name:?} is not a valid header name"))
            })?;
            if RESERVED_HEADERS.contains(&header.as_str()) {
                return Err(Error::InvalidArgument(format!(
                    "the header {name:?} is set by the client and cannot be given"
                )));
            }
            let value = HeaderValue::from_str(value.trim()).map_err(|_| {
                Error::InvalidArgument(format!("the value of header {name:?} is not valid"))
            })?;
            headers.append(header, value);
        }
        let (status, headers, body) = self.send(method, &target, headers, request.body).await?;
        Ok(FetchResponse {
            status: status.as_u16(),
            headers,
            body,
        })
    }

    /// `GET /v1/workers/{name}/logs`: the worker's last log lines (of one object when
    /// [`LogQuery::object`] is given), then, with [`LogQuery::follow`], new lines as they come.
    ///
    /// An unknown worker or a bad query is an `Err` here; then read the lines with
    /// [`LogReader::next`]:
    ///
    /// ```no_run
    /// # async fn demo() -> warren_client::Result<()> {
    /// use warren_client::{Client, LogQuery};
    ///
    /// let client = Client::from_env();
    /// let query = LogQuery { object: Some("alice".into()), follow: true, ..LogQuery::default() };
    /// let mut logs = client.logs("counter", query).await?;
    /// while let Some(entry) = logs.next().await? {
    ///     println!("{} {}: {}", entry.object, entry.stream, entry.line);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn logs(&self, name: &str, query: LogQuery) -> Result<LogReader> {
        let target = uri::logs(name, &query)?;
        let mut answer = transport::open(
            &self.socket,
            Method::GET,
            &target,
            HeaderMap::new(),
            Bytes::new(),
        )
        .await?;
        if !answer.status.is_success() {
            let mut body = Vec::new();
            while body.len() < MAX_ERROR_BODY {
                match answer.body.frame().await {
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            body.extend_from_slice(&data);
                        }
                    }
                    Some(Err(e)) => return Err(transport::transport_error(&self.socket, &e)),
                    None => break,
                }
            }
            return Err(Error::from_response(answer.status.as_u16(), &body));
        }
        Ok(LogReader {
            socket: self.socket.clone(),
            answer,
            buf: Vec::new(),
            scanned: 0,
            done: false,
        })
    }

    /// `POST /v1/workers/{name}/objects/{object}/sql`: runs one SQL statement on the object's
    /// database, in its own transaction, under the same guards as the guest's SQL.
    ///
    /// `params` bind the statement's `?` placeholders; the daemon takes null, integers, reals
    /// and text (a [`SqlValue::Blob`] or a non-finite real is refused here). A SQL error is an
    /// [`Error::Api`] with code `bad_request` and the message `SQL error <code>: <message>`; an
    /// unknown worker or object is `not_found` (objects are made by requests, not by SQL).
    ///
    /// ```no_run
    /// # async fn demo() -> warren_client::Result<()> {
    /// use warren_client::{Client, SqlValue};
    ///
    /// let client = Client::from_env();
    /// let result = client
    ///     .sql("todo", "alice", "SELECT id, title FROM items WHERE id > ?", &[SqlValue::from(3)])
    ///     .await?;
    /// println!("{:?}: {} rows", result.columns, result.rows.len());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn sql(
        &self,
        name: &str,
        object: &str,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<SqlResult> {
        let body = self.sql_raw(name, object, sql, params).await?;
        json_answer(StatusCode::OK, &body)
    }

    /// [`Client::sql`], answering the daemon's JSON verbatim.
    pub async fn sql_raw(
        &self,
        name: &str,
        object: &str,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Bytes> {
        let target = uri::sql(name, object)?;
        if sql.trim().is_empty() {
            return Err(Error::InvalidArgument("the SQL statement is empty".into()));
        }
        for (i, p) in params.iter().enumerate() {
            match p {
                SqlValue::Blob(_) => {
                    return Err(Error::InvalidArgument(format!(
                        "parameter {} is a blob; warrend takes null, numbers and text (write blobs as x'..' in the SQL)",
                        i + 1
                    )))
                }
                SqlValue::Real(f) if !f.is_finite() => {
                    return Err(Error::InvalidArgument(format!(
                        "parameter {} is {f}, which JSON cannot carry",
                        i + 1
                    )))
                }
                _ => {}
            }
        }
        let body = serde_json::to_vec(&serde_json::json!({"sql": sql, "params": params}))
            .map_err(|e| Error::InvalidArgument(format!("cannot encode the SQL request: {e}")))?;
        if body.len() > MAX_SQL_BODY {
            return Err(Error::InvalidArgument(format!(
                "the SQL request is {} bytes; warrend accepts at most 1 MiB",
                body.len()
            )));
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.raw(Method::POST, &target, headers, Bytes::from(body))
            .await
    }

    /// `GET /v1/usage`: usage for billing, per worker and object, of worker `name` (all workers
    /// when `None`) since `since`: a duration back from now (`24h`), Unix seconds, or a UTC
    /// time like `2026-12-04T00:00:00Z`, rounded down to the hour by the daemon (everything
    /// when `None`).
    pub async fn usage(&self, name: Option<&str>, since: Option<&str>) -> Result<UsageReport> {
        self.get_json(&uri::usage(name, since)?).await
    }

    /// `GET /v1/doctor`: the isolation layers of the daemon's cells, its husk pool and
    /// instances. The answer is `Ok` whether or not the layers are all there; see
    /// [`Doctor::healthy`].
    pub async fn doctor(&self) -> Result<Doctor> {
        self.get_json(&uri::doctor()).await
    }

    /// `GET /metrics`: the daemon's Prometheus metrics, as text.
    pub async fn metrics(&self) -> Result<String> {
        let body = self.get_raw(&uri::metrics()).await?;
        String::from_utf8(body.to_vec())
            .map_err(|_| Error::Protocol("the metrics are not UTF-8 text".into()))
    }

    /// `GET` of an API path (e.g. `/v1/workers`, see [`uri`]): the body of a 2xx answer
    /// verbatim; any other status is an error as for the typed methods.
    pub async fn get_raw(&self, api_path: &str) -> Result<Bytes> {
        self.raw(Method::GET, api_path, HeaderMap::new(), Bytes::new())
            .await
    }

    /// One request: the body of a 2xx answer verbatim, any other status an error.
    async fn raw(
        &self,
        method: Method,
        target: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Bytes> {
        let (status, _, body) = self.send(method, target, headers, body).await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(Error::from_response(status.as_u16(), &body))
        }
    }

    /// One request to the daemon, any status: `(status, headers, body)`.
    pub async fn send(
        &self,
        method: Method,
        target: &str,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<(StatusCode, HeaderMap, Bytes)> {
        transport::exchange(&self.socket, method, target, headers, body).await
    }

    async fn get_json<T: DeserializeOwned>(&self, target: &str) -> Result<T> {
        let (status, _, body) = self
            .send(Method::GET, target, HeaderMap::new(), Bytes::new())
            .await?;
        json_answer(status, &body)
    }

    async fn delete_json<T: DeserializeOwned>(&self, target: &str) -> Result<T> {
        let (status, _, body) = self
            .send(Method::DELETE, target, HeaderMap::new(), Bytes::new())
            .await?;
        json_answer(status, &body)
    }
}

/// The lines of [`Client::logs`], read as they arrive (`application/x-ndjson`: one JSON
/// [`LogEntry`] per line). Dropping it closes the connection.
#[derive(Debug)]
pub struct LogReader {
    socket: PathBuf,
    answer: transport::Answer,
    /// Bytes received and not yet returned.
    buf: Vec<u8>,
    /// How much of `buf` is known to hold no newline.
    scanned: usize,
    /// The body ended.
    done: bool,
}

impl LogReader {
    /// The next entry; `Ok(None)` when the daemon ended the stream (at once without
    /// [`LogQuery::follow`], when the worker is deleted or the daemon stops with it).
    pub async fn next(&mut self) -> Result<Option<LogEntry>> {
        let Some(line) = self.next_line().await? else {
            return Ok(None);
        };
        serde_json::from_slice(&line).map(Some).map_err(|e| {
            Error::Protocol(format!(
                "a log line is not the expected JSON ({e}): {:?}",
                String::from_utf8_lossy(&line[..line.len().min(120)])
            ))
        })
    }

    /// The next line of the stream as it came (its JSON, without the newline; blank lines
    /// are skipped); `Ok(None)` at the end.
    pub async fn next_line(&mut self) -> Result<Option<Bytes>> {
        loop {
            if let Some(at) = self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                let end = self.scanned + at;
                let line: Vec<u8> = self.buf.drain(..=end).take(end).collect();
                self.scanned = 0;
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Ok(Some(Bytes::from(line)));
            }
            self.scanned = self.buf.len();
            if self.buf.len() > MAX_LOG_LINE {
                return Err(Error::Protocol(format!(
                    "a log line is longer than {MAX_LOG_LINE} bytes"
                )));
            }
            if self.done {
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                // The last line had no newline.
                self.scanned = 0;
                return Ok(Some(Bytes::from(std::mem::take(&mut self.buf))));
            }
            match self.answer.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(transport::transport_error(&self.socket, &e)),
                None => self.done = true,
            }
        }
    }
}

/// The JSON document of a 2xx answer, or the error of any other.
fn json_answer<T: DeserializeOwned>(status: StatusCode, body: &[u8]) -> Result<T> {
    if !status.is_success() {
        return Err(Error::from_response(status.as_u16(), body));
    }
    serde_json::from_slice(body).map_err(|e| {
        Error::Protocol(format!(
            "HTTP {} with a body that is not the expected JSON ({e})",
            status.as_u16()
        ))
    })
}
