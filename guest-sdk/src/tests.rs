//! End-to-end tests: the guest loop against a fake supervisor over `UnixStream::pair()`.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::Duration;

use crate::frame::{kind, read_frame, write_frame, Frame, ReadError, TxOp, DEFAULT_MAX_FRAME};
use crate::{
    serve_on, Ctx, Error, IntoResponse, Request, Response, Rows, SqlError, SqlErrorCode, Value,
    AGENT,
};

/// The supervisor's end of the socket.
struct Sup {
    sock: UnixStream,
}

impl Sup {
    fn send(&mut self, frame: &Frame) {
        write_frame(&mut self.sock, frame, u32::MAX).expect("supervisor send");
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).expect("supervisor send");
    }

    fn recv(&mut self) -> Frame {
        read_frame(&mut self.sock, u32::MAX)
            .expect("supervisor recv")
            .expect("the guest closed the connection")
    }

    /// Expects the guest to close. A guest that closes with bytes of ours unread (it
    /// refused a frame from its header) makes the kernel report a reset instead of EOF.
    fn expect_eof(&mut self) {
        match read_frame(&mut self.sock, u32::MAX) {
            Ok(None) => {}
            Err(ReadError::Io(e)) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("expected the guest to close, got {other:?}"),
        }
    }

    /// Expects the guest's `ERROR` frame and returns its message; then the guest closes.
    fn expect_error(&mut self) -> String {
        match self.recv() {
            Frame::Error { message } => {
                self.expect_eof();
                message
            }
            other => panic!("expected ERROR, got {other:?}"),
        }
    }

    fn handshake(&mut self, max_frame: u32) {
        assert_eq!(
            self.recv(),
            Frame::GuestHello {
                version: 1,
                agent: AGENT.into()
            }
        );
        self.send(&Frame::SupervisorHello {
            version: 1,
            max_frame,
        });
    }

    fn request(&mut self, id: u64, method: &str, path: &str, body: &[u8]) {
        self.send(&Frame::Request(Request {
            id,
            method: method.into(),
            path: path.into(),
            query: String::new(),
            headers: vec![("x-test".into(), b"1".to_vec())],
            body: body.to_vec(),
        }));
    }

    fn expect_response(&mut self, id: u64) -> Response {
        match self.recv() {
            Frame::Response { id: got, response } => {
                assert_eq!(got, id, "response id");
                response
            }
            other => panic!("expected RESPONSE, got {other:?}"),
        }
    }

    /// Answers `SQL`/`TX` frames of request `id` with `answer` until the `RESPONSE`.
    fn serve_sql(&mut self, id: u64, mut answer: impl FnMut(&Frame) -> Frame) -> Response {
        loop {
            match self.recv() {
                Frame::Response { id: got, response } => {
                    assert_eq!(got, id, "response id");
                    return response;
                }
                f @ (Frame::Sql { .. } | Frame::Tx { .. }) => {
                    let (Frame::Sql { id: got, .. } | Frame::Tx { id: got, .. }) = &f else {
                        unreachable!()
                    };
                    assert_eq!(*got, id, "SQL/TX id");
                    let reply = answer(&f);
                    self.send(&reply);
                }
                other => panic!("unexpected frame {other:?}"),
            }
        }
    }
}

/// Runs `handler` under `serve_on` against `supervisor` on another thread.
fn run<H, R>(handler: H, supervisor: impl FnOnce(&mut Sup) + Send + 'static) -> Result<(), Error>
where
    H: FnMut(&mut Ctx<'_>, Request) -> R,
    R: IntoResponse,
{
    let (guest, sup) = UnixStream::pair().expect("socketpair");
    for s in [&guest, &sup] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    let t = thread::spawn(move || supervisor(&mut Sup { sock: sup }));
    let result = serve_on(guest, handler);
    if let Err(panic) = t.join() {
        std::panic::resume_unwind(panic);
    }
    result
}

fn empty() -> Frame {
    Frame::SqlResult(Rows::default())
}

fn body(r: &Response) -> &str {
    std::str::from_utf8(&r.body).unwrap()
}

#[test]
fn hello_request_response_and_clean_eof() {
    let result = run(
        |_ctx, req: Request| {
            assert_eq!(req.header_str("x-test"), Some("1"));
            Response::text(200, format!("{} {} {}", req.id, req.method, req.path))
        },
        |sup| {
            sup.handshake(DEFAULT_MAX_FRAME);
            for id in [7, 8] {
                sup.request(id, "GET", "/", b"");
                let r = sup.expect_response(id);
                assert_eq!(r.status, 200);
                assert_eq!(body(&r), format!("{id} GET /"));
                assert_eq!(
                    r.headers,
                    vec![("content-type".into(), b"text/plain; charset=utf-8".to_vec())]
                );
            }
        },
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn eof_before_hello_is_a_clean_end() {
    let result = run(
        |_ctx, _req| -> Response { unreachable!() },
        |sup| {
            sup.recv();
        },
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn sql_round_trip() {
    let result = run(
        |ctx: &mut Ctx<'_>, _req| -> Result<Response, SqlError> {
            assert_eq!(ctx.request_id(), 3);
            let rows = ctx.sql(
                "SELECT ?, ?",
                params![42, Some("x"), None::<i64>, 1.5, b"\0\xff".as_slice()],
            )?;
            assert_eq!(rows.columns, ["a", "b"]);
            let n = rows.get(0, "a").and_then(Value::as_i64).unwrap();
            let changed = ctx.execute("UPDATE t SET a = 1", &[])?;
            Ok(Response::text(200, format!("{n} {changed}")))
        },
        |sup| {
            sup.handshake(DEFAULT_MAX_FRAME);
            sup.request(3, "GET", "/", b"");
            let mut calls = 0;
            let r = sup.serve_sql(3, |f| {
                calls += 1;
                match (calls, f) {
                    (
                        1,
                        Frame::Sql {
                            statement, params, ..
                        },
                    ) => {
                        assert_eq!(statement, "SELECT ?, ?");
                        assert_eq!(
                            params,
                            &[
                                Value::Integer(42),
                                Value::Text("x".into()),
                                Value::Null,
                                Value::Real(1.5),
                                Value::Blob(vec![0, 255])
                            ]
                        );
                        Frame::SqlResult(Rows {
                            columns: vec!["a".into(), "b".into()],
                            rows: vec![vec![Value::Integer(41), Value::Null]],
                            ..Rows::default()
                        })
                    }
                    (2, Frame::Sql { statement, .. }) => {
                        assert_eq!(statement, "UPDATE t SET a = 1");
                        Frame::SqlResult(Rows {
                            rows_changed: 5,
                            ..Rows::default()
                        })
                    }
                    other => panic!("unexpected {other:?}"),
                }
            });
            assert_eq!((r.status, body(&r)), (200, "41 5"));
        },
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn sql_errors_map_to_codes_and_a_returned_error_answers_500() {
    let result = run(
        |ctx: &mut Ctx<'_>, _req| -> Result<Response, SqlError> {
            for (expected, _) in [
                (SqlErrorCode::Failed, 1),
                (SqlErrorCode::Constraint, 2),
                (SqlErrorCode::NotAllowed, 3),
                (SqlErrorCode::Interrupted, 4),
                (SqlErrorCode::TooLarge, 5),
                (SqlErrorCode::QuotaExceeded, 6),
                (SqlErrorCode::Other, 7),
                (SqlErrorCode::Unknown(99), 99),
            ] {
                let e = ctx.sql("X", &[]).unwrap_err();
                assert_eq!(e.code, expected);
                assert_eq!(e.message, "nope");
            }
            ctx.sql("X", &[])?;
            unreachable!()
        },
        |sup| {
            sup.handshake(DEFAULT_MAX_FRAME);
            sup.request(1, "POST", "/", b"");
            let mut codes = [1, 2, 3, 4, 5, 6, 7, 99, 2].into_iter();
            let r = sup.serve_sql(1, |_| Frame::SqlError {
                code: codes.next().unwrap(),
                message: "nope".into(),
            });
            assert_eq!(r.status, 500);
            assert_eq!(body(&r), "storage error: SQL constraint violation: nope");
        },
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn transactions_send_begin_commit_rollback() {
    let result = run(
        |ctx: &mut Ctx<'_>, _req| {
            let ok: Result<i32, SqlError> = ctx.transaction(|ctx| {
                ctx.execute("A", &[])?;
                // Nested.
                ctx.transaction(|ctx| ctx.execute("B", &[]))?;
                Ok(1)
            });
            assert_eq!(ok, Ok(1));
            #[derive(Debug, PartialEq)]
            enum AppError {
                Sql(SqlError),
                Nope,
            }
            impl From<SqlError> for AppError {
                fn from(e: SqlError) -> Self {
                    AppError::Sql(e)
                }
            }
            let failed: Result<(), AppError> = ctx.transaction(|ctx| {
                ctx.execute("C", &[])?;
                Err(AppError::Nope)
            });
            assert_eq!(failed, Err(AppError::Nope));
            // A failing commit is rolled back and reported.
            let commit_fails: Result<(), SqlError> = ctx.transaction(|_| Ok(()));
            assert_eq!(commit_fails.unwrap_err().code, SqlErrorCode::Other);
            Response::new(204)
        },
        |sup| {
            sup.handshake(DEFAULT_MAX_FRAME);
            sup.request(5, "POST", "/", b"");
            let mut log = Vec::new();
            let r = sup.serve_sql(5, |f| {
                let entry = match f {
                    Frame::Sql { statement, .. } => statement.clone(),
                    Frame::Tx { op, .. } => format!("{op:?}"),
                    _ => unreachable!(),
                };
                log.push(entry);
                if log.len() == 11 {
                    // The third transaction's commit.
                    return Frame::SqlError {
                        code: 7,
                        message: "cannot release".into(),
                    };
                }
                empty()
            });
            assert_eq!(r.status, 204);
            assert_eq!(
                log,
                [
                    "Begin", "A", "Begin", "B", "Commit", "Commit", "Begin", "C", "Rollback",
                    "Begin", "Commit", "Rollback"
                ]
            );
        },
    );
    assert!(result.is_ok(), "{result:?}");
}

/// A fake `_warren_kv` table that understands exactly the statements the SDK sends,
/// and starts out not existing.
#[derive(Default)]
struct FakeKv {
    table: Option<BTreeMap<String, Vec<u8>>>,
    creates: usize,
}

impl FakeKv {
    fn answer(&mut self, frame: &Frame) -> Frame {
        let Frame::Sql {
            statement, params, ..
        } = frame
        else {
            panic!("unexpected {frame:?}")
        };
        let text = |i: usize| params[i].as_str().expect("TEXT param").to_owned();
        if statement.starts_with("CREATE TABLE IF NOT EXISTS _warren_kv") {
            assert!(statement.contains("WITHOUT ROWID"));
            self.creates += 1;
            self.table.get_or_insert_with(BTreeMap::new);
            return empty();
        }
        let Some(table) = self.table.as_mut() else {
            return Frame::SqlError {
                code: 1,
                message: "no such table: _warren_kv".into(),
            };
        };
        let rows = |pairs: Vec<(String, Vec<u8>)>, columns: &[&str]| {
            Frame::SqlResult(Rows {
                columns: columns.iter().map(|c| (*c).to_owned()).collect(),
                rows: pairs
                    .into_iter()
                    .map(|(k, v)| {
                        if columns.len() == 1 {
                            vec![Value::Blob(v)]
                        } else {
                            vec![Value::Text(k), Value::Blob(v)]
                        }
                    })
                    .collect(),
                ..Rows::default()
            })
        };
        let changed = |n: u64| {
            Frame::SqlResult(Rows {
                rows_changed: n,
                ..Rows::default()
            })
        };
        match statement.as_str() {
            "SELECT value FROM _warren_kv WHERE key = ?" => {
                let k = text(0);
                rows(
                    table.get(&k).map(|v| (k, v.clone())).into_iter().collect(),
                    &["value"],
                )
            }
            s if s.starts_with("INSERT INTO _warren_kv (key, value) VALUES (?, ?) ON CONFLICT") => {
                let value = params[1].as_bytes().expect("BLOB param").to_vec();
                assert!(matches!(params[1], Value::Blob(_)));
                table.insert(text(0), value);
                changed(1)
            }
            "DELETE FROM _warren_kv WHERE key = ?" => {
                changed(u64::from(table.remove(&text(0)).is_some()))
            }
            "SELECT key, value FROM _warren_kv WHERE key >= ? AND key < ? ORDER BY key" => {
                let (lo, hi) = (text(0), text(1));
                let found = table
                    .iter()
                    .filter(|(k, _)| k.as_bytes() >= lo.as_bytes() && k.as_bytes() < hi.as_bytes())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                rows(found, &["key", "value"])
            }
            "SELECT key, value FROM _warren_kv WHERE key >= ? ORDER BY key" => {
                let lo = text(0);
                let found = table
                    .iter()
                    .filter(|(k, _)| k.as_bytes() >= lo.as_bytes())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                rows(found, &["key", "value"])
            }
            other => panic!("unexpected statement {other:?}"),
        }
    }
}

#[test]
fn key_value_store() {
    let result = run(
        |ctx: &mut Ctx<'_>, _req| -> Result<Response, SqlError> {
            assert_eq!(ctx.kv_get("missing")?, None);
            ctx.kv_put("a%", b"1")?;
            ctx.kv_put("a_", "2")?;
            ctx.kv_put("ab", vec![3])?;
            ctx.kv_put("a", b"")?;
            ctx.kv_put("b", b"5")?;
            ctx.kv_put("ab", b"33")?;
            assert_eq!(ctx.kv_get("ab")?, Some(b"33".to_vec()));
            assert_eq!(ctx.kv_get("a")?, Some(Vec::new()));
            let keys = |list: Vec<(String, Vec<u8>)>| -> Vec<String> {
                list.into_iter().map(|(k, _)| k).collect()
            };
            assert_eq!(keys(ctx.kv_list("a%")?), ["a%"]);
            assert_eq!(keys(ctx.kv_list("a_")?), ["a_"]);
            assert_eq!(keys(ctx.kv_list("a")?), ["a", "a%", "a_", "ab"]);
            assert_eq!(keys(ctx.kv_list("")?), ["a", "a%", "a_", "ab", "b"]);
            assert_eq!(ctx.kv_list("ab")?, vec![("ab".to_owned(), b"33".to_vec())]);
            assert!(ctx.kv_delete("a%")?);
            assert!(!ctx.kv_delete("a%")?);
            assert_eq!(keys(ctx.kv_list("a")?), ["a", "a_", "ab"]);
            Ok(Response::text(200, "ok"))
        },
        |sup| {
            sup.handshake(DEFAULT_MAX_FRAME);
            sup.request(1, "POST", "/", b"");
            let mut kv = FakeKv::default();
            let r = sup.serve_sql(1, |f| kv.answer(f));
            assert_eq!((r.status, body(&r)), (200, "ok"));
            // The table was created once, on the first (failing) statement.
            assert_eq!(kv.creates, 1);
        },
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn unexpected_frame_outside_a_request_is_a_protocol_error() {
    let result = run(
        |_ctx, _req| -> Response { unreachable!() },
        |sup| {
            sup.handshake(DEFAULT_MAX_FRAME);
            sup.send(&empty());
            let message = sup.expect_error();
            assert!(
                message.contains("expected REQUEST, got SQL_RESULT"),
                "{message}"
            );
        },
    );
    assert!(matches!(result, Err(Error::Protocol(_))), "{result:?}");
}

#[test]
fn unsupported_version_is_refused() {
    let result = run(
        |_ctx, _req| -> Response { unreachable!() },
        |sup| {
            sup.recv();
            sup.send(&Frame::SupervisorHello {
                version: 2,
                max_frame: DEFAULT_MAX_FRAME,
            });
            let message = sup.expect_error();
            assert!(
                message.contains("unsupported protocol version 2"),
                "{message}"
            );
        },
    );
    assert!(matches!(result, Err(Error::Protocol(_))), "{result:?}");
}

#[test]
fn malformed_frames_are_reported() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![1, 0, 0, 0, 0x55], "unknown frame type 0x55"),
        (vec![0, 0, 0, 0], "frame length 0"),
        // ERROR with a str of invalid UTF-8.
        (
            vec![6, 0, 0, 0, kind::ERROR, 1, 0, 0, 0, 0xff],
            "not valid UTF-8",
        ),
        // REQUEST cut short.
        (vec![3, 0, 0, 0, kind::REQUEST, 1, 2], "ends inside a field"),
        // A frame above the announced max_frame (1000).
        (vec![0xe9, 0x03, 0, 0, kind::REQUEST], "exceeds max_frame"),
    ];
    for (bytes, expected) in cases {
        let result = run(
            |_ctx, _req| -> Response { unreachable!() },
            move |sup| {
                sup.handshake(1000);
                sup.send_raw(&bytes);
                let message = sup.expect_error();
                assert!(message.contains(expected), "{message:?} lacks {expected:?}");
            },
        );
        assert!(matches!(result, Err(Error::Protocol(_))), "{result:?}");
    }
}

#[test]
fn wrong_answer_during_sql_ends_the_request_without_a_response() {
    let result = run(
        |ctx: &mut Ctx<'_>, _req| {
            let e = ctx.sql("SELECT 1", &[]).unwrap_err();
            assert_eq!(e.code, SqlErrorCode::Disconnected);
            // Later calls fail at once, without touching the socket.
            let e = ctx.kv_get("x").unwrap_err();
            assert_eq!(e.code, SqlErrorCode::Disconnected);
            Response::text(200, "never sent")
        },
        |sup| {
            sup.handshake(DEFAULT_MAX_FRAME);
            sup.request(1, "GET", "/", b"");
            assert!(matches!(sup.recv(), Frame::Sql { .. }));
            sup.request(2, "GET", "/", b"");
            let message = sup.expect_error();
            assert!(
                message.contains("expected SQL_RESULT or SQL_ERROR after SQL, got REQUEST"),
                "{message}"
            );
        },
    );
    assert!(matches!(result, Err(Error::Protocol(_))), "{result:?}");
}

#[test]
fn supervisor_closing_mid_request_is_a_disconnect() {
    let result = run(
        |ctx: &mut Ctx<'_>, _req| {
            let e = ctx.sql("SELECT 1", &[]).unwrap_err();
            assert_eq!(e.code, SqlErrorCode::Disconnected);
            Response::new(200)
        },
        |sup| {
            sup.handshake(DEFAULT_MAX_FRAME);
            sup.request(9, "GET", "/", b"");
            assert!(matches!(sup.recv(), Frame::Sql { .. }));
        },
    );
    assert!(
        matches!(result, Err(Error::Disconnected { request: Some(9) })),
        "{result:?}"
    );
}

#[test]
fn supervisor_error_frame_ends_the_guest() {
    let result = run(
        |_ctx, _req| -> Response { unreachable!() },
        |sup| {
            sup.handshake(DEFAULT_MAX_FRAME);
            sup.send(&Frame::Error {
                message: "shutting down".into(),
            });
            sup.expect_eof();
        },
    );
    match result {
        Err(Error::Supervisor(m)) => assert_eq!(m, "shutting down"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn panicking_handler_answers_500_and_serving_goes_on() {
    let result = run(
        |_ctx, req: Request| {
            assert!(req.path != "/boom", "handler exploded on purpose");
            Response::text(200, "fine")
        },
        |sup| {
            sup.handshake(DEFAULT_MAX_FRAME);
            sup.request(1, "GET", "/boom", b"");
            assert_eq!(sup.expect_response(1).status, 500);
            sup.request(2, "GET", "/", b"");
            let r = sup.expect_response(2);
            assert_eq!((r.status, body(&r)), (200, "fine"));
        },
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn invalid_responses_become_500() {
    let result = run(
        |_ctx, req: Request| match req.path.as_str() {
            "/status" => Response::new(600),
            "/header" => Response::new(200).header("bad header", "x"),
            "/value" => Response::new(200).header("x", "a\nb"),
            _ => Response::new(201).header("X-Mixed-Case", "kept"),
        },
        |sup| {
            sup.handshake(DEFAULT_MAX_FRAME);
            for (id, path) in [(1, "/status"), (2, "/header"), (3, "/value")] {
                sup.request(id, "GET", path, b"");
                let r = sup.expect_response(id);
                assert_eq!(r.status, 500, "{path}");
                assert!(body(&r).starts_with("internal error: invalid response"));
            }
            sup.request(4, "GET", "/", b"");
            let r = sup.expect_response(4);
            assert_eq!(r.status, 201);
            assert_eq!(r.headers, vec![("x-mixed-case".into(), b"kept".to_vec())]);
        },
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn max_frame_is_respected_on_the_way_out() {
    let result = run(
        |ctx: &mut Ctx<'_>, req: Request| {
            if req.path == "/big-sql" {
                let e = ctx.sql("SELECT ?", params![vec![0u8; 500]]).unwrap_err();
                assert_eq!(e.code, SqlErrorCode::TooLarge);
                // The connection is still fine.
                ctx.sql("SELECT 1", &[]).unwrap();
                return Response::text(200, "ok");
            }
            Response::text(200, "x".repeat(500))
        },
        |sup| {
            sup.handshake(300);
            sup.request(1, "GET", "/big-response", b"");
            let r = sup.expect_response(1);
            assert_eq!(
                (r.status, body(&r)),
                (500, "internal error: response too large")
            );
            sup.request(2, "GET", "/big-sql", b"");
            match sup.recv() {
                Frame::Sql { statement, .. } => assert_eq!(statement, "SELECT 1"),
                other => panic!("{other:?}"),
            }
            sup.send(&empty());
            assert_eq!(sup.expect_response(2).status, 200);
        },
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn tx_answer_must_be_sql_result_or_sql_error() {
    let result = run(
        |ctx: &mut Ctx<'_>, _req| {
            assert_eq!(ctx.begin().unwrap_err().code, SqlErrorCode::Disconnected);
            Response::new(200)
        },
        |sup| {
            sup.handshake(DEFAULT_MAX_FRAME);
            sup.request(1, "GET", "/", b"");
            assert_eq!(
                sup.recv(),
                Frame::Tx {
                    id: 1,
                    op: TxOp::Begin
                }
            );
            sup.send(&Frame::SupervisorHello {
                version: 1,
                max_frame: 1,
            });
            let message = sup.expect_error();
            assert!(message.contains("after TX, got HELLO"), "{message}");
        },
    );
    assert!(matches!(result, Err(Error::Protocol(_))), "{result:?}");
}
