//! The SDK and the `warren` binary against a fake warrend: a small hyper server on a Unix socket
//! in a temporary directory that records every request and answers like docs/api.md says.

use std::convert::Infallible;
use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, Notify};
use warren_client::{Client, DeployLimits, Error, FetchRequest, LogQuery, SqlValue};

/// One request as the fake daemon received it.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    /// Path and query, exactly as sent.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A fake warrend serving on `socket` until the test process ends.
struct FakeDaemon {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    log: Arc<Mutex<Vec<Recorded>>>,
    /// A followed log stream (`logs?follow=1`) sends its second entry after this is notified.
    release: Arc<Notify>,
}

impl FakeDaemon {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("warrend.sock");
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let server_log = Arc::clone(&log);
        let release = Arc::new(Notify::new());
        let server_release = Arc::clone(&release);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::UnixListener::from_std(listener).unwrap();
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let log = Arc::clone(&server_log);
                    let release = Arc::clone(&server_release);
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let log = Arc::clone(&log);
                            let release = Arc::clone(&release);
                            async move { Ok::<_, Infallible>(route(req, &log, release).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        FakeDaemon {
            _dir: dir,
            socket,
            log,
            release,
        }
    }

    fn client(&self) -> Client {
        Client::new(&self.socket)
    }

    fn last(&self) -> Recorded {
        self.log
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no request")
    }

    fn count(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    /// Runs the built `warren` binary with `--socket` pointing here.
    fn warren(&self, args: &[&str]) -> Output {
        warren_with(&self.socket, args, None)
    }
}

fn warren_with(socket: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warren"));
    cmd.arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("WARREN_SOCKET")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

const WORKER: &str = r#"{"name": "NAME", "version": 2, "sha256": "9f2c00112233445566778899", "size": 812344,
 "limits": {"memory": 67108864, "pids": 32, "cpu": 0.5, "storage": 104857600,
            "max_objects": 1000, "timeout_ms": 5000},
 "created_at": "2026-12-04T16:00:00Z"EXTRA}"#;

fn worker_json(name: &str, extra: &str) -> String {
    WORKER.replace("NAME", name).replace("EXTRA", extra)
}

/// A worker as a daemon with the newer limits answers it (`PATCH`).
fn worker_json_new_limits(name: &str) -> String {
    worker_json(name, "").replace(
        r#""timeout_ms": 5000}"#,
        r#""timeout_ms": 5000, "cpu_budget_ms": 2000, "max_response": 16777216,
            "max_instances": 8, "log_bytes": 524288}"#,
    )
}

/// `GET /v1/usage` of the fake: worker `counter` with objects `alice` and `chat/room 1`.
const USAGE: &str = r#"{"since": 1796396400, "workers": [{"worker": "counter", "requests": 10,
  "cpu_us": 20311, "wall_us": 1551000, "rows_read": 4, "rows_written": 9, "bytes_in": 0,
  "bytes_out": 12, "instance_starts": 2, "kills_oom": 1, "kills_timeout": 2, "kills_cpu": 0,
  "kills_seccomp": 0, "kills_crash": 0, "storage_bytes": 20480,
  "objects": [{"object": "alice", "requests": 7, "cpu_us": 311, "wall_us": 51000,
    "rows_read": 4, "rows_written": 9, "bytes_in": 0, "bytes_out": 7, "instance_starts": 1,
    "kills_oom": 0, "kills_timeout": 0, "kills_cpu": 0, "kills_seccomp": 0, "kills_crash": 0,
    "storage_bytes": 12288},
   {"object": "chat/room 1", "requests": 3, "cpu_us": 20000, "wall_us": 1500000,
    "rows_read": 0, "rows_written": 0, "bytes_in": 0, "bytes_out": 5, "instance_starts": 1,
    "kills_oom": 1, "kills_timeout": 2, "kills_cpu": 0, "kills_seccomp": 0, "kills_crash": 0,
    "storage_bytes": 8192}]}]}"#;

/// `GET /v1/doctor` of the fake: all layers there.
const DOCTOR: &str = r#"{"version": "0.1.0", "layers": [
  {"layer": "namespaces", "ok": true, "detail": "user, pid, mount, net, ipc, uts"},
  {"layer": "landlock", "ok": true, "detail": "ABI 7"},
  {"layer": "seccomp", "ok": true, "detail": "filter with user-notify"}],
  "warm_husks": 3, "pool_size": 4, "pool_error": null, "instances": 2,
  "state_dir": "/var/lib/warren"}"#;

/// `POST .../sql` of the fake: `nope` in the SQL is a SQL error, `UPDATE` changes 2 rows,
/// anything else answers its parameters as one row (columns `p1`...) plus a row with a blob,
/// or with no parameters a fixed table.
fn sql_answer(object: &str, body: &[u8]) -> Response<Full<Bytes>> {
    if object != "alice" {
        return error(
            404,
            "client",
            "not_found",
            &format!("worker \"counter\" has no object {object:?}"),
        );
    }
    let Ok(request) = serde_json::from_slice::<serde_json::Value>(body) else {
        return error(400, "client", "bad_request", "body must be JSON");
    };
    let sql = request["sql"].as_str().unwrap_or_default();
    let params = request["params"].as_array().cloned().unwrap_or_default();
    if sql.contains("nope") {
        return error(
            400,
            "client",
            "bad_request",
            "SQL error 1: no such table: nope",
        );
    }
    if sql.starts_with("UPDATE") {
        return json(
            200,
            r#"{"columns": [], "rows": [], "rows_changed": 2, "last_insert_id": 0}"#.into(),
        );
    }
    if params.is_empty() {
        return json(
            200,
            r#"{"columns": ["id", "title", "data"], "rows": [[1, "milk", {"blob_hex": "00ff"}],
                [2, "eggs\nand ham", null]], "rows_changed": 0, "last_insert_id": 0}"#
                .into(),
        );
    }
    let columns: Vec<String> = (1..=params.len()).map(|i| format!("p{i}")).collect();
    json(
        200,
        serde_json::json!({"columns": columns, "rows": [params], "rows_changed": 0, "last_insert_id": 0})
            .to_string(),
    )
}

fn json(status: u16, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn error(status: u16, kind: &str, code: &str, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"error": {"kind": kind, "code": code, "message": message}});
    let mut response = json(status, body.to_string());
    response
        .headers_mut()
        .insert("x-warren-error", code.parse().unwrap());
    response
}

/// Percent-decodes a path segment (test-only, ASCII hex).
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&segment[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Two log entries of worker `counter` as the daemon sends them (`application/x-ndjson`).
const LOG_ALICE: &str = r#"{"ts_ms":1796400000123,"worker":"counter","object":"alice","request_id":7,"stream":"stdout","line":"hello from alice"}"#;
const LOG_SYSTEM: &str = r#"{"ts_ms":1796400001005,"worker":"counter","object":"chat/room 1","request_id":null,"stream":"system","line":"3 lines dropped (rate limit of 200 lines/s)"}"#;
const LOG_ROOM: &str = r#"{"ts_ms":1796400002000,"worker":"counter","object":"chat/room 1","request_id":null,"stream":"stderr","line":"\u001b[31mred\tand tab"}"#;

/// A response body whose chunks are sent as they come through a channel.
struct Chunks(mpsc::Receiver<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(c))))
    }
}

type Body = BoxBody<Bytes, Infallible>;

/// `GET /v1/workers/counter/logs?follow=1` streams (chunked): the first entry in two pieces,
/// then, once the test releases it, the second, then the end. Everything else is [`handle`].
async fn route(
    req: Request<hyper::body::Incoming>,
    log: &Mutex<Vec<Recorded>>,
    release: Arc<Notify>,
) -> Response<Body> {
    let following = req.uri().path() == "/v1/workers/counter/logs"
        && req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "follow=1"));
    if !following {
        return handle(req, log).await.map(BodyExt::boxed);
    }
    log.lock().unwrap().push(Recorded {
        method: req.method().to_string(),
        target: req.uri().path_and_query().unwrap().as_str().to_string(),
        headers: Vec::new(),
        body: Vec::new(),
    });
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let (a, b) = LOG_ALICE.split_at(30);
        tx.send(Bytes::from(a)).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        tx.send(Bytes::from(format!("{b}\n"))).await.unwrap();
        release.notified().await;
        tx.send(Bytes::from(format!("{LOG_ROOM}\n"))).await.unwrap();
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/x-ndjson")
        .body(BodyExt::boxed(Chunks(rx)))
        .unwrap()
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    log: &Mutex<Vec<Recorded>>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes().to_vec();
    let target = parts.uri.path_and_query().unwrap().as_str().to_string();
    let recorded = Recorded {
        method: parts.method.to_string(),
        target: target.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect(),
        body: body.clone(),
    };
    log.lock().unwrap().push(recorded);

    let path = parts.uri.path();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = parts.method.as_str();
    match (method, segments.as_slice()) {
        ("GET", ["v1", "health"]) => json(
            200,
            r#"{"status": "ok", "version": "0.1.0", "warm_husks": 4, "instances": 2}"#.into(),
        ),
        ("PUT", ["v1", "workers", name]) => {
            if body.starts_with(b"\x7fELF") {
                json(201, worker_json(name, ""))
            } else {
                error(
                    415,
                    "client",
                    "not_elf",
                    "the program is not an ELF executable",
                )
            }
        }
        ("GET", ["v1", "workers"]) => json(
            200,
            format!(
                r#"{{"workers": [{}, {}]}}"#,
                worker_json("counter", r#", "objects": 3, "active_instances": 1"#),
                worker_json("todo-app", r#", "objects": 12, "active_instances": 0"#)
            ),
        ),
        ("GET", ["v1", "workers", "counter"]) => json(
            200,
            worker_json(
                "counter",
                r#", "objects": 3, "active_instances": 1, "versions": [
                    {"version": 1, "sha256": "aa", "size": 10, "created_at": "2026-12-01T00:00:00Z"},
                    {"version": 2, "sha256": "9f2c00112233445566778899", "size": 812344, "created_at": "2026-12-04T16:00:00Z"}]"#,
            ),
        ),
        ("PATCH", ["v1", "workers", "counter"]) => match parts.uri.query() {
            None | Some("") => error(
                400,
                "client",
                "bad_request",
                "give the limits to change as query parameters",
            ),
            Some(q) if q.contains("memory=1M") => {
                error(400, "client", "bad_request", "memory: at least 4M")
            }
            Some(_) => json(200, worker_json_new_limits("counter")),
        },
        ("GET", ["v1", "usage"]) => match parts.uri.query().unwrap_or("") {
            q if q.contains("worker=shop") => {
                error(404, "client", "not_found", "worker \"shop\" does not exist")
            }
            q if q.contains("since=never") => error(
                400,
                "client",
                "bad_request",
                "since: \"never\" is not a duration",
            ),
            _ => json(200, USAGE.into()),
        },
        ("GET", ["v1", "doctor"]) => json(200, DOCTOR.into()),
        ("GET", ["metrics"]) => Response::builder()
            .status(200)
            .header("content-type", "text/plain; version=0.0.4")
            .body(Full::new(Bytes::from_static(
                b"# TYPE warren_instances gauge\nwarren_instances 2\n",
            )))
            .unwrap(),
        ("POST", ["v1", "workers", "counter", "objects", object, "sql"]) => {
            sql_answer(&decode(object), &body)
        }
        ("DELETE", ["v1", "workers", "counter"]) => {
            json(200, r#"{"deleted": "counter", "objects": 3}"#.into())
        }
        ("GET", ["v1", "workers", "counter", "objects"]) => json(
            200,
            r#"{"objects": [{"name": "alice", "bytes": 24576, "active": true},
                            {"name": "chat/room 1", "bytes": 8192, "active": false}]}"#
                .into(),
        ),
        ("GET", ["v1", "workers", "broken", "objects"]) => Response::builder()
            .status(500)
            .body(Full::new(Bytes::from_static(b"<html>proxy error</html>")))
            .unwrap(),
        ("GET", ["v1", "workers", "garbled", "objects"]) => json(200, r#"{"objects": 7}"#.into()),
        ("GET", ["v1", "workers", "counter", "logs"]) => {
            let query = parts.uri.query().unwrap_or("");
            let body = if query.contains("object=alice") {
                format!("{LOG_ALICE}\n")
            } else {
                format!("{LOG_ALICE}\n{LOG_SYSTEM}\n\n{LOG_ROOM}\n")
            };
            Response::builder()
                .status(200)
                .header("content-type", "application/x-ndjson")
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        }
        ("GET", ["v1", "workers", "garbled", "logs"]) => Response::builder()
            .status(200)
            .header("content-type", "application/x-ndjson")
            .body(Full::new(Bytes::from(format!("{LOG_ALICE}\nnot json\n"))))
            .unwrap(),
        ("DELETE", ["v1", "workers", "counter", "objects", object]) => json(
            200,
            serde_json::json!({"deleted": decode(object)}).to_string(),
        ),
        (_, ["v1", "workers", "counter", "objects", _object, "fetch", rest @ ..]) => {
            match rest.join("/").as_str() {
                "missing" => Response::builder()
                    .status(404)
                    .header("content-type", "text/plain")
                    .body(Full::new(Bytes::from_static(b"no such page\n")))
                    .unwrap(),
                "binary" => Response::builder()
                    .status(200)
                    .body(Full::new(Bytes::from((0..=255u8).collect::<Vec<u8>>())))
                    .unwrap(),
                "slow" => error(
                    504,
                    "guest",
                    "guest_timeout",
                    "the request took longer than 5s",
                ),
                _ => {
                    // Echo: the body back, or the count if there is none.
                    let answer = if body.is_empty() {
                        b"41".to_vec()
                    } else {
                        body
                    };
                    Response::builder()
                        .status(200)
                        .header("x-guest", "yes")
                        .body(Full::new(Bytes::from(answer)))
                        .unwrap()
                }
            }
        }
        (_, ["v1", "workers", name, ..]) => error(
            404,
            "client",
            "not_found",
            &format!("worker {:?} does not exist", decode(name)),
        ),
        _ => error(404, "client", "not_found", "no such endpoint"),
    }
}

fn stderr_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(String::from)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The SDK
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn health_and_listing() {
    let fake = FakeDaemon::start();
    let client = fake.client();

    let health = client.health().await.unwrap();
    assert_eq!(
        (health.status.as_str(), health.warm_husks, health.instances),
        ("ok", 4, 2)
    );
    let r = fake.last();
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("GET", "/v1/health")
    );
    assert_eq!(r.header("host"), Some("warren"));

    let workers = client.workers().await.unwrap();
    assert_eq!(workers.len(), 2);
    assert_eq!(workers[0].name, "counter");
    assert_eq!(workers[0].objects, Some(3));
    assert_eq!(workers[1].limits.timeout_ms, 5000);
    assert_eq!(fake.last().target, "/v1/workers");

    let detail = client.worker("counter").await.unwrap();
    assert_eq!(detail.worker.version, 2);
    assert_eq!(detail.versions.len(), 2);
    assert_eq!(fake.last().target, "/v1/workers/counter");

    let objects = client.objects("counter").await.unwrap();
    assert_eq!(objects[1].name, "chat/room 1");
    assert!(objects[0].active);
    let r = fake.last();
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("GET", "/v1/workers/counter/objects")
    );

    let raw = client.get_raw("/v1/workers/counter/objects").await.unwrap();
    assert!(raw.starts_with(br#"{"objects": [{"name": "alice""#));
}

#[tokio::test]
async fn deploy_sends_the_program_and_the_limits() {
    let fake = FakeDaemon::start();
    let client = fake.client();
    let program = b"\x7fELF\x02\x01\x01rest of the program\x00\xff".to_vec();
    let limits = DeployLimits {
        memory: Some("64M".into()),
        cpu: Some("0.5".into()),
        max_objects: Some("1000".into()),
        timeout: Some("1.5s".into()),
        ..DeployLimits::default()
    };
    let worker = client
        .deploy("counter", program.clone(), &limits)
        .await
        .unwrap();
    assert_eq!(worker.name, "counter");
    assert_eq!(worker.version, 2);
    assert_eq!(worker.limits.memory, 64 << 20);
    assert_eq!(worker.objects, None);
    let r = fake.last();
    assert_eq!(r.method, "PUT");
    assert_eq!(
        r.target,
        "/v1/workers/counter?memory=64M&cpu=0.5&max_objects=1000&timeout=1.5s"
    );
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(
        r.header("content-length"),
        Some(program.len().to_string().as_str())
    );
    assert_eq!(r.body, program);

    // No limits: no query at all.
    client
        .deploy("counter", program.clone(), &DeployLimits::default())
        .await
        .unwrap();
    assert_eq!(fake.last().target, "/v1/workers/counter");

    // A bad limit never reaches the daemon.
    let before = fake.count();
    let bad = DeployLimits {
        pids: Some("lots".into()),
        ..DeployLimits::default()
    };
    let err = client.deploy("counter", program, &bad).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(ref m) if m.contains("pids")),
        "{err:?}"
    );
    assert_eq!(fake.count(), before);

    // The daemon's refusal comes back as an Api error.
    let err = client
        .deploy("counter", &b"#!/bin/sh\n"[..], &DeployLimits::default())
        .await
        .unwrap_err();
    match err {
        Error::Api {
            status,
            kind,
            code,
            message,
        } => {
            assert_eq!(
                (status, kind.as_str(), code.as_str()),
                (415, "client", "not_elf")
            );
            assert_eq!(message, "the program is not an ELF executable");
        }
        other => panic!("expected Api, got {other:?}"),
    }
}

#[tokio::test]
async fn deletions_encode_object_names() {
    let fake = FakeDaemon::start();
    let client = fake.client();
    let deleted = client.delete_worker("counter").await.unwrap();
    assert_eq!((deleted.deleted.as_str(), deleted.objects), ("counter", 3));
    let r = fake.last();
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("DELETE", "/v1/workers/counter")
    );

    for (object, target) in [
        ("chat/room 1", "/v1/workers/counter/objects/chat%2Froom%201"),
        ("50%?#x", "/v1/workers/counter/objects/50%25%3F%23x"),
        ("ünï", "/v1/workers/counter/objects/%C3%BCn%C3%AF"),
        ("..", "/v1/workers/counter/objects/%2E%2E"),
    ] {
        let deleted = client.delete_object("counter", object).await.unwrap();
        assert_eq!(deleted.deleted, object);
        let r = fake.last();
        assert_eq!((r.method.as_str(), r.target.as_str()), ("DELETE", target));
    }

    let err = client.delete_worker("shop").await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.code(), Some("not_found"));
    assert_eq!(
        err.to_string(),
        "worker \"shop\" does not exist (not_found)"
    );

    let err = client.delete_object("counter", "").await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
}

#[tokio::test]
async fn unreadable_answers_are_protocol_errors() {
    let fake = FakeDaemon::start();
    let client = fake.client();
    let err = client.objects("broken").await.unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ref m) if m.contains("HTTP 500") && m.contains("proxy error")),
        "{err:?}"
    );
    let err = client.objects("garbled").await.unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ref m) if m.contains("HTTP 200")),
        "{err:?}"
    );
}

#[tokio::test]
async fn fetch_passes_method_path_query_headers_and_body() {
    let fake = FakeDaemon::start();
    let client = fake.client();

    let request = FetchRequest::new("PATCH", "/items/a b?q=x y&n=1")
        .header("Content-Type", "application/json")
        .header("X-Trace", "1")
        .header("X-Trace", "2")
        .body(&b"{\"done\": true}"[..]);
    let response = client
        .fetch("counter", "chat/room 1", request)
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(&response.body[..], b"{\"done\": true}");
    assert_eq!(response.headers.get("x-guest").unwrap(), "yes");
    assert!(response.daemon_error().is_none());
    let r = fake.last();
    assert_eq!(r.method, "PATCH");
    assert_eq!(
        r.target,
        "/v1/workers/counter/objects/chat%2Froom%201/fetch/items/a%20b?q=x%20y&n=1"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let traces: Vec<_> = r.headers.iter().filter(|(k, _)| k == "x-trace").collect();
    assert_eq!(traces.len(), 2);
    assert_eq!(r.body, b"{\"done\": true}");

    let response = client
        .fetch("counter", "alice", FetchRequest::get("/binary"))
        .await
        .unwrap();
    assert_eq!(response.body.len(), 256);

    // The guest's own 404 passes through; the daemon's carries its error.
    let guest = client
        .fetch("counter", "alice", FetchRequest::get("/missing"))
        .await
        .unwrap();
    assert_eq!(guest.status, 404);
    assert!(guest.daemon_error().is_none());
    let daemon = client
        .fetch("nope", "alice", FetchRequest::get("/"))
        .await
        .unwrap();
    assert_eq!(daemon.status, 404);
    assert_eq!(daemon.warren_error_code(), Some("not_found"));
    assert_eq!(daemon.daemon_error().unwrap().code(), Some("not_found"));

    // What cannot be sent is refused before connecting.
    let before = fake.count();
    for bad in [
        FetchRequest::new("GE T", "/"),
        FetchRequest::get("/").header("Content-Length", "5"),
        FetchRequest::get("/").header("Bad Name", "x"),
        FetchRequest::get("/").header("X", "a\nb"),
    ] {
        let err = client.fetch("counter", "alice", bad).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }
    assert_eq!(fake.count(), before);
}

#[tokio::test]
async fn a_missing_socket_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("absent.sock");
    let err = Client::new(&socket).health().await.unwrap_err();
    match &err {
        Error::Connect { socket: s, source } => {
            assert_eq!(s, &socket);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot connect to {}: No such file or directory (",
            socket.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("is warrend running?"), "{msg}");
}

#[tokio::test]
async fn logs_tail_and_filter() {
    let fake = FakeDaemon::start();
    let client = fake.client();
    let mut reader = client.logs("counter", LogQuery::default()).await.unwrap();
    let mut entries = Vec::new();
    while let Some(e) = reader.next().await.unwrap() {
        entries.push(e);
    }
    assert_eq!(entries.len(), 3, "blank lines are skipped: {entries:?}");
    assert_eq!(
        (
            entries[0].object.as_str(),
            entries[0].request_id,
            entries[0].stream.as_str()
        ),
        ("alice", Some(7), "stdout")
    );
    assert_eq!(entries[0].line, "hello from alice");
    assert_eq!(entries[0].ts_ms, 1_796_400_000_123);
    assert_eq!(
        (entries[1].stream.as_str(), entries[1].request_id),
        ("system", None)
    );
    assert_eq!(entries[2].line, "\u{1b}[31mred\tand tab");
    assert_eq!(fake.last().target, "/v1/workers/counter/logs");
    assert!(
        reader.next().await.unwrap().is_none(),
        "the end stays the end"
    );

    let query = LogQuery {
        object: Some("alice".into()),
        tail: Some(5),
        follow: false,
    };
    let mut reader = client.logs("counter", query).await.unwrap();
    assert_eq!(reader.next().await.unwrap().unwrap().object, "alice");
    assert!(reader.next().await.unwrap().is_none());
    assert_eq!(
        fake.last().target,
        "/v1/workers/counter/logs?object=alice&tail=5"
    );

    let err = client.logs("shop", LogQuery::default()).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")));

    let mut reader = client.logs("garbled", LogQuery::default()).await.unwrap();
    assert!(reader.next().await.unwrap().is_some());
    let err = reader.next().await.unwrap_err();
    assert!(
        matches!(err, Error::Protocol(ref m) if m.contains("not json")),
        "{err:?}"
    );

    // What cannot be asked is refused before connecting.
    let before = fake.count();
    let too_many = LogQuery {
        tail: Some(10_001),
        ..LogQuery::default()
    };
    let err = client.logs("counter", too_many).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(fake.count(), before);
}

#[tokio::test]
async fn logs_follow_streams_entries_as_they_come() {
    let fake = FakeDaemon::start();
    let client = fake.client();
    let query = LogQuery {
        follow: true,
        ..LogQuery::default()
    };
    let mut reader = client.logs("counter", query).await.unwrap();
    assert_eq!(fake.last().target, "/v1/workers/counter/logs?follow=1");
    // The first entry arrives (in two pieces) while the stream stays open.
    let first = reader.next().await.unwrap().unwrap();
    assert_eq!(first.line, "hello from alice");
    fake.release.notify_one();
    let second = reader.next().await.unwrap().unwrap();
    assert_eq!(
        (second.object.as_str(), second.stream.as_str()),
        ("chat/room 1", "stderr")
    );
    assert!(reader.next().await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// The `warren` binary
// ---------------------------------------------------------------------------------------------

#[test]
fn cli_fetch_prints_the_body_and_exits_0() {
    let fake = FakeDaemon::start();
    let out = fake.warren(&["fetch", "counter", "alice"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, b"41");
    assert!(out.stderr.is_empty(), "{out:?}");
    let r = fake.last();
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("GET", "/v1/workers/counter/objects/alice/fetch/")
    );

    // Binary bodies come out byte for byte.
    let out = fake.warren(&["fetch", "counter", "alice", "/binary"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, (0..=255u8).collect::<Vec<u8>>());

    // -d implies POST; -X wins; -H headers are sent.
    let out = fake.warren(&[
        "fetch",
        "counter",
        "room/1",
        "/increment?by=2",
        "-d",
        "x=1",
        "-H",
        "X-A: b",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(out.stdout, b"x=1");
    let r = fake.last();
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.target,
        "/v1/workers/counter/objects/room%2F1/fetch/increment?by=2"
    );
    assert_eq!(r.header("x-a"), Some("b"));
    assert_eq!(r.body, b"x=1");

    let out = fake.warren(&["fetch", "counter", "alice", "-X", "PUT"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(fake.last().method, "PUT");
}

#[test]
fn cli_fetch_reads_data_from_a_file_and_stdin() {
    let fake = FakeDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.bin");
    let content: Vec<u8> = (0..=255u8).rev().chain(*b"\n\r\n").collect();
    std::fs::write(&file, &content).unwrap();
    let arg = format!("@{}", file.display());
    let out = fake.warren(&["fetch", "counter", "alice", "/upload", "-d", &arg]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = fake.last();
    assert_eq!(r.method, "POST");
    assert_eq!(r.body, content);
    assert_eq!(out.stdout, content);

    let out = warren_with(
        &fake.socket,
        &["fetch", "counter", "alice", "-d", "@-", "-X", "PUT"],
        Some(b"from stdin\0"),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = fake.last();
    assert_eq!(
        (r.method.as_str(), r.body.as_slice()),
        ("PUT", &b"from stdin\0"[..])
    );

    let before = fake.count();
    let missing = format!("@{}", dir.path().join("nope").display());
    let out = fake.warren(&["fetch", "counter", "alice", "-d", &missing]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("warren: cannot read the -d body from "),
        "{lines:?}"
    );
    assert_eq!(fake.count(), before, "nothing was sent");
}

#[test]
fn cli_fetch_exits_1_on_errors() {
    let fake = FakeDaemon::start();

    // A daemon error: one line with its message, nothing on stdout.
    let out = fake.warren(&["fetch", "shop", "alice"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("warren: HTTP 404"), "{lines:?}");
    assert!(
        lines[0].contains(r#"worker "shop" does not exist (not_found)"#),
        "{lines:?}"
    );

    let out = fake.warren(&["fetch", "counter", "alice", "/slow"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("warren: HTTP 504"), "{lines:?}");
    assert!(lines[0].contains("guest_timeout"), "{lines:?}");

    // The guest's own 404: its body on stdout, the status on stderr.
    let out = fake.warren(&["fetch", "counter", "alice", "/missing"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(out.stdout, b"no such page\n");
    let lines = stderr_lines(&out);
    assert_eq!(
        lines,
        ["warren: HTTP 404 Not Found (answered by worker counter)"]
    );
}

#[test]
fn cli_missing_socket_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("warrend.sock");
    for args in [
        &["fetch", "counter", "alice"][..],
        &["ls"],
        &["rm", "counter"],
        &["objects", "x", "--json"],
    ] {
        let out = warren_with(&socket, args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty());
        let lines = stderr_lines(&out);
        assert_eq!(
            lines,
            [format!(
                "warren: cannot connect to {}: No such file or directory (is warrend running? set --socket or WARREN_SOCKET)",
                socket.display()
            )],
            "{args:?}"
        );
    }

    // WARREN_SOCKET is used when there is no --socket.
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["ls"])
        .env("WARREN_SOCKET", &socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&socket.display().to_string()));
}

#[test]
fn cli_env_socket_reaches_the_daemon() {
    let fake = FakeDaemon::start();
    let out = Command::new(env!("CARGO_BIN_EXE_warren"))
        .args(["ls", "--json"])
        .env("WARREN_SOCKET", &fake.socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["workers"][1]["name"], "todo-app");
}

#[test]
fn cli_tables() {
    let fake = FakeDaemon::start();
    let out = fake.warren(&["ls"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("NAME      VERSION  OBJECTS  ACTIVE"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("counter   2        3        1 "),
        "{text}"
    );
    assert!(
        lines[2].starts_with("todo-app  2        12       0 "),
        "{text}"
    );
    // Every row's columns line up under the header.
    let created = lines[0].find("CREATED").unwrap();
    assert!(
        lines[1..].iter().all(|l| l[created..].starts_with("2026-")),
        "{text}"
    );

    let out = fake.warren(&["objects", "counter"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "NAME         SIZE  ACTIVE\nalice        24K   yes\nchat/room 1  8K    no\n"
    );

    let out = fake.warren(&["objects", "counter", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["objects"][0]["bytes"], 24576);

    let out = fake.warren(&["objects", "shop"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr_lines(&out),
        [
            r#"warren: cannot list the objects of shop: worker "shop" does not exist (not_found); run `warren ls` to see the workers"#
        ]
    );

    let out = fake.warren(&["objects", "broken"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(
            "warren: cannot list the objects of broken: unexpected answer from warrend: HTTP 500"
        ),
        "{lines:?}"
    );
}

#[test]
fn cli_rm_and_deploy() {
    let fake = FakeDaemon::start();
    let out = fake.warren(&["rm", "counter"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "deleted worker counter and its 3 objects\n"
    );
    assert_eq!(fake.last().method, "DELETE");

    let out = fake.warren(&["rm", "counter", "chat/room 1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        fake.last().target,
        "/v1/workers/counter/objects/chat%2Froom%201"
    );

    let out = fake.warren(&["rm", "shop"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr_lines(&out),
        [
            r#"warren: cannot delete worker shop: worker "shop" does not exist (not_found); run `warren ls` to see the workers"#
        ]
    );

    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("counter");
    std::fs::write(&program, b"\x7fELF\x02\x01\x01 a program").unwrap();
    let program_arg = program.to_str().unwrap();
    let out = fake.warren(&[
        "deploy",
        "counter",
        program_arg,
        "--memory",
        "64M",
        "--max-objects",
        "10",
        "--timeout",
        "5s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("deployed counter version 2 "),
        "{out:?}"
    );
    let r = fake.last();
    assert_eq!(
        r.target,
        "/v1/workers/counter?memory=64M&max_objects=10&timeout=5s"
    );
    assert_eq!(r.body, b"\x7fELF\x02\x01\x01 a program");

    // A bad flag: one line naming it, usage exit code, nothing sent.
    let before = fake.count();
    let out = fake.warren(&["deploy", "counter", program_arg, "--memory", "64Q"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("warren: invalid --memory \"64Q\""),
        "{lines:?}"
    );
    let out = fake.warren(&["deploy", "counter", program_arg, "--cpu", "lots"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        stderr_lines(&out)[0].starts_with("warren: invalid --cpu"),
        "{out:?}"
    );

    // Not a program, or no file at all.
    let script = dir.path().join("script.sh");
    std::fs::write(&script, b"#!/bin/sh\necho hi\n").unwrap();
    let out = fake.warren(&["deploy", "counter", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr_lines(&out)[0].contains("is not an ELF executable"),
        "{out:?}"
    );
    let out = fake.warren(&["deploy", "counter", "/nonexistent/prog"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr_lines(&out),
        ["warren: cannot read the program /nonexistent/prog: No such file or directory (check the FILE argument)"]
    );
    assert_eq!(fake.count(), before);
}

/// A "daemon" that reads the request and then answers `reply` (possibly nothing) and hangs up.
fn broken_daemon(reply: &'static [u8]) -> (tempfile::TempDir, PathBuf) {
    use std::io::Read as _;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("warrend.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(reply);
        }
    });
    (dir, socket)
}

#[tokio::test]
async fn a_daemon_that_hangs_up_or_talks_garbage() {
    let (_dir, socket) = broken_daemon(b"");
    let err = Client::new(&socket).health().await.unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("closed the connection before answering"),
        "{err}"
    );

    let (_dir, socket) = broken_daemon(b"SSH-2.0-OpenSSH\r\n\r\n");
    let err = Client::new(&socket).health().await.unwrap_err();
    assert!(
        !matches!(err, Error::Connect { .. } | Error::Api { .. }),
        "{err:?}"
    );

    let out = warren_with(&socket, &["ls"], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("warren: cannot list the workers: "),
        "{lines:?}"
    );
}

#[test]
fn cli_logs_prints_lines() {
    let fake = FakeDaemon::start();
    let out = fake.warren(&["logs", "counter"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "2026-12-04T16:00:00.123Z alice [7] stdout: hello from alice\n\
         2026-12-04T16:00:01.005Z chat/room 1 system: 3 lines dropped (rate limit of 200 lines/s)\n\
         2026-12-04T16:00:02.000Z chat/room 1 stderr: \\u{1b}[31mred\tand tab\n"
    );
    assert_eq!(fake.last().target, "/v1/workers/counter/logs");

    let out = fake.warren(&["logs", "counter", "--object", "alice", "--tail", "20"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "2026-12-04T16:00:00.123Z alice [7] stdout: hello from alice\n"
    );
    assert_eq!(
        fake.last().target,
        "/v1/workers/counter/logs?object=alice&tail=20"
    );

    // --json: the API's lines verbatim.
    let out = fake.warren(&["logs", "counter", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{LOG_ALICE}\n{LOG_SYSTEM}\n{LOG_ROOM}\n")
    );

    // A stream that breaks its promise: what came before is printed, then one error line.
    let out = fake.warren(&["logs", "garbled"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), 1);
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("warren: the log stream of garbled broke: unexpected answer from warrend: a log line is not the expected JSON"),
        "{lines:?}"
    );
}

#[test]
fn cli_logs_follows_until_the_stream_ends() {
    let fake = FakeDaemon::start();
    let mut child = Command::new(env!("CARGO_BIN_EXE_warren"))
        .arg("--socket")
        .arg(&fake.socket)
        .args(["logs", "counter", "-f"])
        .env_remove("WARREN_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    // The first line is printed while the stream is still open...
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert_eq!(
        first,
        "2026-12-04T16:00:00.123Z alice [7] stdout: hello from alice\n"
    );
    assert!(child.try_wait().unwrap().is_none(), "still following");
    assert_eq!(fake.last().target, "/v1/workers/counter/logs?follow=1");
    // ...the next when it comes, and the command ends with the stream.
    fake.release.notify_one();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(
        rest,
        "2026-12-04T16:00:02.000Z chat/room 1 stderr: \\u{1b}[31mred\tand tab\n"
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
}

#[test]
fn cli_logs_errors_are_one_line() {
    let fake = FakeDaemon::start();
    let out = fake.warren(&["logs", "shop", "-f"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(
        stderr_lines(&out),
        [
            r#"warren: cannot read the logs of shop: worker "shop" does not exist (not_found); run `warren ls` to see the workers"#
        ]
    );

    let before = fake.count();
    let out = fake.warren(&["logs", "counter", "--tail", "10001"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        stderr_lines(&out),
        ["warren: invalid --tail 10001: at most 10000 lines"]
    );
    assert_eq!(fake.count(), before, "nothing was sent");

    let dir = tempfile::tempdir().unwrap();
    let out = warren_with(&dir.path().join("none.sock"), &["logs", "counter"], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr_lines(&out)[0].starts_with("warren: cannot connect to "),
        "{out:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Limits, usage, SQL, doctor: the SDK
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn set_limits_patches_the_worker() {
    let fake = FakeDaemon::start();
    let client = fake.client();
    let limits = DeployLimits {
        memory: Some("64M".into()),
        cpu_budget: Some("2s".into()),
        max_response: Some("16M".into()),
        max_instances: Some("8".into()),
        log_bytes: Some("512K".into()),
        ..DeployLimits::default()
    };
    let worker = client.set_limits("counter", &limits).await.unwrap();
    let r = fake.last();
    assert_eq!(r.method, "PATCH");
    assert_eq!(
        r.target,
        "/v1/workers/counter?memory=64M&cpu_budget=2s&max_response=16M&max_instances=8&log_bytes=512K"
    );
    assert!(r.body.is_empty());
    assert_eq!(worker.name, "counter");
    assert_eq!(
        (
            worker.limits.cpu_budget_ms,
            worker.limits.max_response,
            worker.limits.max_instances,
            worker.limits.log_bytes
        ),
        (2000, 16 << 20, 8, 512 << 10)
    );

    // The daemon's refusal, and an unknown worker.
    let small = DeployLimits {
        memory: Some("1M".into()),
        ..DeployLimits::default()
    };
    let err = client.set_limits("counter", &small).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(400), Some("bad_request")));
    assert_eq!(err.to_string(), "memory: at least 4M (bad_request)");
    let err = client.set_limits("shop", &limits).await.unwrap_err();
    assert_eq!(err.code(), Some("not_found"));

    // Nothing to change, or a bad limit: refused before connecting.
    let before = fake.count();
    let err = client
        .set_limits("counter", &DeployLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let bad = DeployLimits {
        max_instances: Some("0".into()),
        ..DeployLimits::default()
    };
    let err = client.set_limits("counter", &bad).await.unwrap_err();
    assert!(
        matches!(err, Error::InvalidArgument(ref m) if m.starts_with("invalid max_instances limit")),
        "{err:?}"
    );
    assert_eq!(fake.count(), before);
}

#[tokio::test]
async fn usage_asks_for_a_worker_and_a_period() {
    let fake = FakeDaemon::start();
    let client = fake.client();
    let report = client.usage(None, None).await.unwrap();
    let r = fake.last();
    assert_eq!((r.method.as_str(), r.target.as_str()), ("GET", "/v1/usage"));
    assert_eq!(report.since, 1_796_396_400);
    let w = &report.workers[0];
    assert_eq!(w.worker, "counter");
    assert_eq!(
        (w.counters.requests, w.counters.cpu_us, w.counters.kills()),
        (10, 20311, 3)
    );
    assert_eq!(w.counters.storage_bytes, 20480);
    assert_eq!(w.objects.len(), 2);
    assert_eq!(w.objects[1].object, "chat/room 1");
    assert_eq!(w.objects[1].counters.kills_timeout, 2);

    client
        .usage(Some("counter"), Some("2026-12-04T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        fake.last().target,
        "/v1/usage?worker=counter&since=2026-12-04T00%3A00%3A00Z"
    );

    let err = client.usage(Some("shop"), None).await.unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")));
    let err = client.usage(None, Some("never")).await.unwrap_err();
    assert_eq!(err.code(), Some("bad_request"));

    let before = fake.count();
    let err = client.usage(Some(""), None).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(fake.count(), before);
}

#[tokio::test]
async fn sql_sends_the_statement_and_its_params() {
    let fake = FakeDaemon::start();
    let client = fake.client();
    let params = [
        SqlValue::from(1),
        SqlValue::from(2.5),
        SqlValue::from("x y"),
        SqlValue::Null,
    ];
    let result = client
        .sql("counter", "alice", "SELECT ?, ?, ?, ?", &params)
        .await
        .unwrap();
    let r = fake.last();
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, "/v1/workers/counter/objects/alice/sql");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let sent: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"sql": "SELECT ?, ?, ?, ?", "params": [1, 2.5, "x y", null]})
    );
    assert_eq!(result.columns, ["p1", "p2", "p3", "p4"]);
    assert_eq!(result.rows, [params.to_vec()]);

    let result = client
        .sql("counter", "alice", "SELECT * FROM items", &[])
        .await
        .unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&fake.last().body).unwrap();
    assert_eq!(sent["params"], serde_json::json!([]));
    assert_eq!(result.rows[0][2], SqlValue::Blob(vec![0, 0xff]));
    assert_eq!(result.rows[1][1], SqlValue::Text("eggs\nand ham".into()));

    let result = client
        .sql("counter", "alice", "UPDATE items SET done = 1", &[])
        .await
        .unwrap();
    assert!(result.columns.is_empty());
    assert_eq!(result.rows_changed, 2);

    // A SQL error is the daemon's 400 with its message; an unknown object its 404.
    let err = client
        .sql("counter", "alice", "SELECT * FROM nope", &[])
        .await
        .unwrap_err();
    match &err {
        Error::Api {
            status,
            code,
            message,
            ..
        } => {
            assert_eq!((*status, code.as_str()), (400, "bad_request"));
            assert_eq!(message, "SQL error 1: no such table: nope");
        }
        other => panic!("expected Api, got {other:?}"),
    }
    let err = client
        .sql("counter", "ghost", "SELECT 1", &[])
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")));
    assert_eq!(fake.last().target, "/v1/workers/counter/objects/ghost/sql");

    // What cannot be sent is refused before connecting.
    let before = fake.count();
    for (sql, params) in [
        ("", vec![]),
        ("  ", vec![]),
        ("SELECT ?", vec![SqlValue::Blob(vec![1])]),
        ("SELECT ?", vec![SqlValue::Real(f64::NAN)]),
        ("SELECT ?", vec![SqlValue::Text("x".repeat(1 << 20))]),
    ] {
        let err = client
            .sql("counter", "alice", sql, &params)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }
    let err = client
        .sql("counter", "", "SELECT 1", &[])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert_eq!(fake.count(), before);
}

#[tokio::test]
async fn doctor_and_metrics() {
    let fake = FakeDaemon::start();
    let client = fake.client();
    let doctor = client.doctor().await.unwrap();
    assert_eq!(fake.last().target, "/v1/doctor");
    assert!(doctor.healthy());
    assert_eq!(doctor.layers.len(), 3);
    assert_eq!(doctor.layers[1].layer, "landlock");
    assert_eq!((doctor.warm_husks, doctor.pool_size), (3, 4));
    assert_eq!(doctor.state_dir, "/var/lib/warren");

    let metrics = client.metrics().await.unwrap();
    assert_eq!(fake.last().target, "/metrics");
    assert!(metrics.contains("warren_instances 2\n"), "{metrics}");
}

// ---------------------------------------------------------------------------------------------
// Limits, usage, SQL, doctor: the `warren` binary
// ---------------------------------------------------------------------------------------------

#[test]
fn cli_limits_shows_and_changes() {
    let fake = FakeDaemon::start();
    // No flags: the worker's limits, from a daemon that does not report the newer ones.
    let out = fake.warren(&["limits", "counter"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = fake.last();
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("GET", "/v1/workers/counter")
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "LIMIT          VALUE\n\
         memory         64M\n\
         pids           32\n\
         cpu            0.5\n\
         storage        100M\n\
         max_objects    1000\n\
         timeout        5s\n\
         cpu_budget     -\n\
         max_response   -\n\
         max_instances  -\n\
         log_bytes      -\n"
    );

    // Flags: a PATCH with them as the query, then the new limits.
    let out = fake.warren(&[
        "limits",
        "counter",
        "--cpu-budget",
        "2s",
        "--max-instances",
        "8",
        "--log-bytes",
        "512K",
        "--timeout",
        "5s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let r = fake.last();
    assert_eq!(r.method, "PATCH");
    assert_eq!(
        r.target,
        "/v1/workers/counter?timeout=5s&cpu_budget=2s&max_instances=8&log_bytes=512K"
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\ncpu_budget     2s\n"), "{text}");
    assert!(text.contains("\nmax_instances  8\n"), "{text}");
    assert!(text.contains("\nlog_bytes      512K\n"), "{text}");

    // --json: the daemon's answer verbatim.
    let out = fake.warren(&["limits", "counter", "--max-response", "16M", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n", worker_json_new_limits("counter"))
    );
    assert_eq!(fake.last().target, "/v1/workers/counter?max_response=16M");

    // Bad flags: usage exit code, one line naming the flag, nothing sent.
    let before = fake.count();
    for (flag, value) in [
        ("--cpu-budget", "10"),
        ("--max-response", "1.5M"),
        ("--max-instances", "0"),
        ("--log-bytes", "lots"),
        ("--memory", "64Q"),
    ] {
        let out = fake.warren(&["limits", "counter", flag, value]);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let lines = stderr_lines(&out);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(&format!("warren: invalid {flag} \"{value}\"")),
            "{lines:?}"
        );
    }
    assert_eq!(fake.count(), before);

    // The daemon's refusals: one line, exit 1.
    let out = fake.warren(&["limits", "counter", "--memory", "1M"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr_lines(&out),
        ["warren: cannot change the limits of counter: memory: at least 4M (bad_request)"]
    );
    let out = fake.warren(&["limits", "shop"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr_lines(&out),
        [
            r#"warren: cannot read the limits of shop: worker "shop" does not exist (not_found); run `warren ls` to see the workers"#
        ]
    );
    let out = fake.warren(&["limits", "shop", "--pids", "4"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr_lines(&out)[0].starts_with("warren: cannot change the limits of shop: "),
        "{out:?}"
    );
}

#[test]
fn cli_deploy_sends_the_newer_limits() {
    let fake = FakeDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("counter");
    std::fs::write(&program, b"\x7fELF\x02\x01\x01 a program").unwrap();
    let out = fake.warren(&[
        "deploy",
        "counter",
        program.to_str().unwrap(),
        "--cpu-budget",
        "1500ms",
        "--max-response",
        "1M",
        "--max-instances",
        "4",
        "--log-bytes",
        "64K",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        fake.last().target,
        "/v1/workers/counter?cpu_budget=1500ms&max_response=1M&max_instances=4&log_bytes=64K"
    );
    let before = fake.count();
    let out = fake.warren(&[
        "deploy",
        "counter",
        program.to_str().unwrap(),
        "--max-instances",
        "-1",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(fake.count(), before);
}

#[test]
fn cli_usage_tables_and_json() {
    let fake = FakeDaemon::start();
    let out = fake.warren(&["usage"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(fake.last().target, "/v1/usage");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "WORKER   REQUESTS  CPU     WALL  ROWS R/W  BYTES IN/OUT  STARTS  KILLS                 STORAGE\n\
         counter  10        20.3ms  1.5s  4/9       0B/12B        2       3 (oom 1, timeout 2)  20K\n"
    );

    let out = fake.warren(&["usage", "counter", "--since", "24h"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(fake.last().target, "/v1/usage?worker=counter&since=24h");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].starts_with("counter "), "{text}");
    assert!(
        lines[2].starts_with(
            "  alice        7         0.3ms   51ms  4/9       0B/7B         1       0 "
        ),
        "{text}"
    );
    assert!(
        lines[3].starts_with("  chat/room 1  3         20ms    1.5s  0/0       0B/5B         1       3 (oom 1, timeout 2)  8K"),
        "{text}"
    );

    let out = fake.warren(&["usage", "--json", "--since", "1796396400"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{USAGE}\n"));
    assert_eq!(fake.last().target, "/v1/usage?since=1796396400");

    let out = fake.warren(&["usage", "shop"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr_lines(&out),
        [
            r#"warren: cannot read the usage: worker "shop" does not exist (not_found); run `warren ls` to see the workers"#
        ]
    );

    let before = fake.count();
    let out = fake.warren(&["usage", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let lines = stderr_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("warren: invalid --since \"yesterday\": "),
        "{lines:?}"
    );
    assert_eq!(fake.count(), before);
}

#[test]
fn cli_sql_tables_params_and_errors() {
    let fake = FakeDaemon::start();
    let out = fake.warren(&["sql", "counter", "alice", "SELECT * FROM items"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "id  title          data\n\
         1   milk           x'00ff'\n\
         2   eggs\\nand ham  NULL\n\
         (2 rows)\n"
    );
    let r = fake.last();
    assert_eq!(
        (r.method.as_str(), r.target.as_str()),
        ("POST", "/v1/workers/counter/objects/alice/sql")
    );
    let sent: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"sql": "SELECT * FROM items", "params": []})
    );

    // --param: integers and decimals as numbers, null as NULL, the rest as text.
    let out = fake.warren(&[
        "sql",
        "counter",
        "alice",
        "SELECT ?, ?, ?, ?, ?",
        "--param",
        "42",
        "--param",
        "-2.5",
        "--param",
        "null",
        "--param",
        "hello world",
        "--param",
        "007x",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let sent: serde_json::Value = serde_json::from_slice(&fake.last().body).unwrap();
    assert_eq!(
        sent["params"],
        serde_json::json!([42, -2.5, null, "hello world", "007x"])
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "p1  p2    p3    p4           p5\n42  -2.5  NULL  hello world  007x\n(1 row)\n"
    );

    // A statement without columns: how many rows it changed.
    let out = fake.warren(&["sql", "counter", "alice", "UPDATE items SET done = 1"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "(2 rows changed)\n");

    // --json: verbatim.
    let out = fake.warren(&["sql", "counter", "alice", "UPDATE x", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"columns\": [], \"rows\": [], \"rows_changed\": 2, \"last_insert_id\": 0}\n"
    );

    // A SQL error: the daemon's message on one line, exit 1, nothing on stdout.
    let out = fake.warren(&["sql", "counter", "alice", "SELECT * FROM nope"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(
        stderr_lines(&out),
        ["warren: SQL error 1: no such table: nope"]
    );

    // Unknown object or worker.
    let out = fake.warren(&["sql", "counter", "ghost", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr_lines(&out),
        [
            r#"warren: cannot run SQL on object "ghost" of counter: worker "counter" has no object "ghost" (not_found); run `warren objects counter` to see its objects"#
        ]
    );
    let out = fake.warren(&["sql", "shop", "alice", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr_lines(&out)[0].contains(r#"worker "shop" does not exist (not_found)"#),
        "{out:?}"
    );

    // Nothing to send: usage errors.
    let before = fake.count();
    for args in [
        &["sql", "counter", "alice", " "][..],
        &["sql", "counter", "", "SELECT 1"],
    ] {
        let out = fake.warren(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert_eq!(stderr_lines(&out).len(), 1, "{out:?}");
    }
    assert_eq!(fake.count(), before);
}

/// A one-answer "daemon" that answers every request with `status` and the JSON `body`.
fn answering_daemon(status: u16, body: &str) -> (tempfile::TempDir, PathBuf) {
    let reply = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    broken_daemon(Box::leak(reply.into_bytes().into_boxed_slice()))
}

#[test]
fn cli_doctor_reports_and_exits_by_health() {
    let fake = FakeDaemon::start();
    let out = fake.warren(&["doctor"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    assert_eq!(fake.last().target, "/v1/doctor");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "namespaces  ok       user, pid, mount, net, ipc, uts\n\
         landlock    ok       ABI 7\n\
         seccomp     ok       filter with user-notify\n\
         pool: 3 warm of 4\n\
         instances: 2\n\
         version: 0.1.0\n\
         state dir: /var/lib/warren\n"
    );
    let out = fake.warren(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{DOCTOR}\n")
    );

    // A missing layer or a failing pool: the report, one line on stderr, exit 1.
    let sick = DOCTOR
        .replace(
            r#""ok": true, "detail": "ABI 7""#,
            r#""ok": false, "detail": "not in this kernel""#,
        )
        .replace(
            r#""pool_error": null"#,
            r#""pool_error": "fork: out of memory""#,
        );
    let (_dir, socket) = answering_daemon(200, &sick);
    let out = warren_with(&socket, &["doctor"], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        text.contains("\nlandlock    MISSING  not in this kernel\n"),
        "{text}"
    );
    assert!(
        text.contains("\npool: 3 warm of 4 (error: fork: out of memory)\n"),
        "{text}"
    );
    assert_eq!(
        stderr_lines(&out),
        ["warren: warrend is not healthy: isolation layer missing: landlock; the husk pool failed: fork: out of memory"]
    );
    let out = warren_with(&socket, &["doctor", "--json"], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{sick}\n"));

    // Only the pool.
    let pool_only = DOCTOR.replace(r#""pool_error": null"#, r#""pool_error": "no cgroup""#);
    let (_dir, socket) = answering_daemon(200, &pool_only);
    let out = warren_with(&socket, &["doctor"], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr_lines(&out),
        ["warren: warrend is not healthy: the husk pool failed: no cgroup"]
    );

    // An answer that is not a doctor report.
    let (_dir, socket) = answering_daemon(200, r#"{"status": "ok"}"#);
    let out = warren_with(&socket, &["doctor"], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr_lines(&out)[0].starts_with("warren: unexpected answer from warrend"),
        "{out:?}"
    );
}

#[test]
fn cli_new_commands_without_a_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("warrend.sock");
    for args in [
        &["doctor"][..],
        &["doctor", "--json"],
        &["usage"],
        &["usage", "counter", "--since", "1h"],
        &["sql", "counter", "alice", "SELECT 1"],
        &["limits", "counter"],
        &["limits", "counter", "--pids", "8"],
    ] {
        let out = warren_with(&socket, args, None);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty());
        assert_eq!(
            stderr_lines(&out),
            [format!(
                "warren: cannot connect to {}: No such file or directory (is warrend running? set --socket or WARREN_SOCKET)",
                socket.display()
            )],
            "{args:?}"
        );
    }
}
