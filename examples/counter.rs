//! `counter`: the smallest useful Warren guest, and the one `DESIGN.md` fixes.
//!
//! | request           | answer                                         |
//! |-------------------|------------------------------------------------|
//! | `POST /increment` | `200`, the object's new count, e.g. `1`        |
//! | `GET /`           | `200`, the current count (`0` for a new object) |
//! | other method      | `405` with an `allow` header, short text body  |
//! | other path        | `404`, short text body                          |
//!
//! Counts are bodies of `text/plain; charset=utf-8`: the decimal number and nothing
//! else (no trailing newline). Each object's count lives in its own SQLite database, in
//! `counter(id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL)`, created on
//! the object's first request. An increment is one statement (`INSERT ... ON CONFLICT
//! DO UPDATE ... RETURNING`), so it is one round trip to the supervisor.
//!
//! Build: `cargo build --release --example counter` → `target/release/examples/counter`.
//! `examples/c/counter.c` is the same guest in C, from the protocol alone.

use warren_guest::{serve, Ctx, Request, Response, SqlError};

const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS counter \
     (id INTEGER PRIMARY KEY CHECK (id = 0), value INTEGER NOT NULL)"];

const INCREMENT: &str = "INSERT INTO counter (id, value) VALUES (0, 1) \
     ON CONFLICT (id) DO UPDATE SET value = value + 1 RETURNING value";

const CURRENT: &str = "SELECT value FROM counter WHERE id = 0";

fn handle(ctx: &mut Ctx<'_>, req: Request) -> Result<Response, SqlError> {
    match (req.path.as_str(), req.method.as_str()) {
        ("/increment", "POST") => {
            let rows = ctx.sql_with_schema(SCHEMA, INCREMENT, &[])?;
            match rows.value().and_then(|v| v.as_i64()) {
                Some(n) => Ok(count(n)),
                None => Ok(Response::text(500, "storage error: no count returned")),
            }
        }
        ("/", "GET") => {
            let rows = ctx.sql_with_schema(SCHEMA, CURRENT, &[])?;
            Ok(count(rows.value().and_then(|v| v.as_i64()).unwrap_or(0)))
        }
        ("/increment", _) => Ok(Response::method_not_allowed("POST")),
        ("/", _) => Ok(Response::method_not_allowed("GET")),
        _ => Ok(Response::not_found()),
    }
}

fn count(n: i64) -> Response {
    Response::text(200, n.to_string())
}

fn main() {
    serve(handle)
}
