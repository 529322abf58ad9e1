//! `warren-guest`: the library a worker program links to talk to its supervisor.
//!
//! A guest is one program serving one *object*. `warrend` starts it with fd 3 connected
//! to the supervisor and speaks the guest protocol (`docs/protocol.md`) over it: HTTP
//! requests come in, responses go out, and in between the guest reaches its object's
//! SQLite database with SQL frames. This crate is that protocol, synchronously, with no
//! dependencies and no threads: a guest is single-threaded from its object's view.
//!
//! ```no_run
//! use warren_guest::{params, serve, Ctx, Request, Response, SqlError};
//!
//! const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS visits (who TEXT NOT NULL)"];
//!
//! fn handle(ctx: &mut Ctx<'_>, req: Request) -> Result<Response, SqlError> {
//!     match (req.method.as_str(), req.path.as_str()) {
//!         ("POST", "/visit") => {
//!             let who = req.query_param("who").unwrap_or_else(|| "anonymous".into());
//!             ctx.sql_with_schema(SCHEMA, "INSERT INTO visits (who) VALUES (?)", params![who])?;
//!             Ok(Response::text(201, "noted"))
//!         }
//!         ("GET", "/") => {
//!             let rows = ctx.sql_with_schema(SCHEMA, "SELECT count(*) FROM visits", &[])?;
//!             let n = rows.value().and_then(|v| v.as_i64()).unwrap_or(0);
//!             Ok(Response::text(200, n.to_string()))
//!         }
//!         _ => Ok(Response::not_found()),
//!     }
//! }
//!
//! fn main() {
//!     serve(handle)
//! }
//! ```
//!
//! * [`serve`] does the handshake and loops over requests until the supervisor closes
//!   fd 3, then exits; [`serve_on`] is the same loop over any `Read + Write`, for tests.
//! * A handler gets a [`Ctx`] and a [`Request`] and returns a [`Response`] (or a
//!   `Result` of responses and [`SqlError`]s: an error becomes a `500`).
//! * [`Ctx::sql`] runs one statement; [`Ctx::transaction`] nests savepoints;
//!   [`Ctx::kv_get`]/[`Ctx::kv_put`]/[`Ctx::kv_delete`]/[`Ctx::kv_list`] are a key-value
//!   store on top of SQL.
//! * Every request runs in one transaction the supervisor commits only when the response
//!   status is below 400: answer 4xx/5xx and the request leaves no writes.
//! * The guest keeps no state between requests outside its database: the supervisor
//!   may end it whenever it is idle.
//!
//! [`frame`] is the wire codec, usable on its own (a supervisor or a test can use it).

mod ctx;
pub mod frame;
mod http;
mod serve;
mod sql;

pub use ctx::Ctx;
pub use http::{Request, Response};
pub use serve::{serve, serve_on, Error, IntoResponse, AGENT};
pub use sql::{Row, Rows, SqlError, SqlErrorCode, Value};

/// The file descriptor a guest's supervisor socket is always placed on.
pub const GUEST_SOCKET_FD: i32 = 3;

/// Statement parameters: `params![a, b]` is `&[Value::from(a), Value::from(b)]`.
///
/// ```
/// use warren_guest::{params, Value};
/// let p: &[Value] = params![1, "two", 3.0, None::<i64>, b"\x04"];
/// assert_eq!(p[1], Value::Text("two".into()));
/// assert_eq!(p[3], Value::Null);
/// ```
#[macro_export]
macro_rules! params {
    () => {
        &[] as &[$crate::Value]
    };
    ($($value:expr),+ $(,)?) => {
        &[$($crate::Value::from($value)),+] as &[$crate::Value]
    };
}

#[cfg(test)]
mod tests;
