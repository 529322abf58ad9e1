//! A test guest that misbehaves on request, for the daemon's integration tests. What it does
//! is chosen by the request path:
//!
//! | request | behaviour |
//! |---|---|
//! | `GET /count` | rows in table `t` |
//! | `POST /write` | insert a row, answer 200 |
//! | `POST /write-then-status?status=N` | insert a row, answer N |
//! | `POST /write-then-crash` | insert a row, then abort() before answering |
//! | `POST /write-then-garbage` | insert a row, then write garbage on fd 3 |
//! | `POST /sql` | run the body as one statement; answer `ok <changed>` or `error <code> <message>` |
//! | `GET /hang` | never answer |
//! | `POST /exec` | execve("/bin/sh") (a seccomp violation) |
//! | `POST /memory` | allocate and touch memory until killed |
//! | `GET /big?n=N` | answer N bytes |
//! | `GET /spin?ms=N` | burn N ms of CPU time, then answer |
//! | `GET /flood?lines=N` | print N lines on stdout (forever without `lines`), then answer |
//! | `GET /blobs` | rows in table `blobs` |
//! | `POST /fill?mb=N` | insert N MiB of blobs, 256 KiB per statement; answer the first SQL error or `filled` |

use std::io::Write;
use std::os::fd::FromRawFd;

use warren_guest::{serve, Ctx, Request, Response, SqlError};

const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS t (x INTEGER)"];

fn insert(ctx: &mut Ctx<'_>) -> Result<(), SqlError> {
    ctx.sql_with_schema(SCHEMA, "INSERT INTO t (x) VALUES (1)", &[])?;
    Ok(())
}

fn handle(ctx: &mut Ctx<'_>, req: Request) -> Result<Response, SqlError> {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/count") => {
            let rows = ctx.sql_with_schema(SCHEMA, "SELECT count(*) FROM t", &[])?;
            let n = rows.value().and_then(|v| v.as_i64()).unwrap_or(-1);
            Ok(Response::text(200, n.to_string()))
        }
        ("POST", "/write") => {
            insert(ctx)?;
            Ok(Response::text(200, "written"))
        }
        ("POST", "/write-then-status") => {
            insert(ctx)?;
            let status = req
                .query_param("status")
                .and_then(|s| s.parse().ok())
                .unwrap_or(500);
            Ok(Response::text(status, "written, then failed"))
        }
        ("POST", "/write-then-crash") => {
            insert(ctx)?;
            std::process::abort()
        }
        ("POST", "/write-then-garbage") => {
            insert(ctx)?;
            // SAFETY: fd 3 is the guest socket the supervisor gave this process; this handle
            // is leaked on purpose so the SDK's own handle stays valid.
            let mut sock = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(3) });
            let _ = sock.write_all(&[0xff, 0xff, 0xff, 0x7f, 0x99, 1, 2, 3]);
            let _ = sock.write_all(&[0x05, 0x00, 0x00, 0x00, 0x42, 0, 0, 0, 0]);
            std::thread::sleep(std::time::Duration::from_secs(30));
            Ok(Response::text(200, "unreachable"))
        }
        ("POST", "/sql") => {
            let statement = String::from_utf8_lossy(&req.body).into_owned();
            Ok(match ctx.sql(&statement, &[]) {
                Ok(rows) => Response::text(200, format!("ok {}", rows.rows_changed)),
                Err(e) => Response::text(
                    200,
                    format!("error {} {}", e.code.to_u16().unwrap_or(0), e.message),
                ),
            })
        }
        ("GET", "/hang") => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        ("POST", "/exec") => {
            let err = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg("true")
                .status();
            Ok(Response::text(200, format!("exec returned {err:?}")))
        }
        ("POST", "/memory") => {
            let mut hog: Vec<Vec<u8>> = Vec::new();
            loop {
                hog.push(vec![1u8; 16 << 20]);
            }
        }
        ("GET", "/spin") => {
            let ms: u64 = req
                .query_param("ms")
                .and_then(|s| s.parse().ok())
                .unwrap_or(100);
            // burn CPU time (not wall time: the machine may be busy)
            let start = cpu_time();
            let mut x = 0u64;
            while cpu_time().saturating_sub(start) < std::time::Duration::from_millis(ms) {
                for _ in 0..10_000 {
                    x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            Ok(Response::text(200, format!("spun {ms}ms")))
        }
        ("GET", "/flood") => {
            let lines: Option<u64> = req.query_param("lines").and_then(|s| s.parse().ok());
            let mut out = std::io::stdout().lock();
            let mut i = 0u64;
            while lines.is_none_or(|n| i < n) {
                let _ = writeln!(
                    out,
                    "flood line {i} ........................................................"
                );
                i += 1;
            }
            let _ = out.flush();
            Ok(Response::text(200, format!("printed {i} lines")))
        }
        ("POST", "/fill") => {
            let mb: u64 = req
                .query_param("mb")
                .and_then(|s| s.parse().ok())
                .unwrap_or(8);
            ctx.sql_with_schema(SCHEMA, "SELECT 1 FROM t LIMIT 1", &[])?;
            ctx.execute("CREATE TABLE IF NOT EXISTS blobs (b BLOB)", &[])?;
            for _ in 0..mb * 4 {
                if let Err(e) = ctx.execute("INSERT INTO blobs VALUES (randomblob(262144))", &[]) {
                    return Ok(Response::text(
                        200,
                        format!("error {} {}", e.code.to_u16().unwrap_or(0), e.message),
                    ));
                }
            }
            Ok(Response::text(200, "filled"))
        }
        ("GET", "/blobs") => {
            ctx.execute("CREATE TABLE IF NOT EXISTS blobs (b BLOB)", &[])?;
            let rows = ctx.sql("SELECT count(*) FROM blobs", &[])?;
            let n = rows.value().and_then(|v| v.as_i64()).unwrap_or(-1);
            Ok(Response::text(200, n.to_string()))
        }
        ("GET", "/big") => {
            let n = req
                .query_param("n")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0usize);
            Ok(Response::new(200).body(vec![b'x'; n]))
        }
        _ => Ok(Response::not_found()),
    }
}

/// CPU time this process has used.
fn cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which lives for the call.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

fn main() {
    serve(handle)
}
