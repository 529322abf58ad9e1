//! [`Ctx`]: what a handler uses to reach its object's database during one request.

use std::fmt;

use crate::frame::TxOp;
use crate::sql::{Rows, SqlError, SqlErrorCode, Value};

/// What a handler sends: a `SQL` or a `TX` frame, borrowed.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Call<'a> {
    Sql {
        statement: &'a str,
        params: &'a [Value],
    },
    Tx(TxOp),
}

/// The connection as a request handler sees it: one SQL or `TX` frame out, one answer in.
pub(crate) trait Channel {
    /// Sends `call` for request `request` and waits for its answer.
    fn call(&mut self, request: u64, call: Call<'_>) -> Result<Rows, SqlError>;
}

/// Schema of the key-value table, created on first use.
const KV_SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS _warren_kv \
     (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"];

/// The per-request handle: SQL on this object's database, savepoints, and a small
/// key-value store.
///
/// Everything runs inside the request's transaction, which the supervisor opens before
/// the request and commits only if the response's status is below 400: answer with a
/// 4xx or 5xx status and none of the request's writes are kept.
///
/// Calls are synchronous: each sends one frame on fd 3 and waits for the answer.
pub struct Ctx<'a> {
    channel: &'a mut dyn Channel,
    request_id: u64,
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("request_id", &self.request_id)
            .finish_non_exhaustive()
    }
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(channel: &'a mut dyn Channel, request_id: u64) -> Self {
        Ctx {
            channel,
            request_id,
        }
    }

    /// The id of the request being handled.
    pub fn request_id(&self) -> u64 {
        self.request_id
    }

    /// Runs one SQL statement with `params` bound to its `?` placeholders in order.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut warren_guest::Ctx<'_>) -> Result<(), warren_guest::SqlError> {
    /// use warren_guest::params;
    /// let rows = ctx.sql("SELECT title FROM items WHERE done = ? AND id > ?", params![false, 10])?;
    /// for row in rows.iter() {
    ///     println!("{}", row.get_str("title").unwrap_or(""));
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The supervisor's `SQL_ERROR` as a [`SqlError`] (see [`SqlErrorCode`]);
    /// [`SqlErrorCode::TooLarge`] without asking the supervisor when the statement and
    /// its parameters do not fit in one frame; [`SqlErrorCode::Disconnected`] when the
    /// connection is gone (the request is lost; the guest ends after the handler).
    pub fn sql(&mut self, statement: &str, params: &[Value]) -> Result<Rows, SqlError> {
        self.channel
            .call(self.request_id, Call::Sql { statement, params })
    }

    /// Runs one statement and returns how many rows it inserted, updated or deleted.
    ///
    /// # Errors
    ///
    /// As [`Ctx::sql`].
    pub fn execute(&mut self, statement: &str, params: &[Value]) -> Result<u64, SqlError> {
        Ok(self.sql(statement, params)?.rows_changed)
    }

    /// Runs `statement`, creating the schema first if needed: when the statement fails
    /// with [`SqlErrorCode::Failed`] (e.g. "no such table" on the object's first
    /// request), runs the `schema` statements, which must be idempotent
    /// (`CREATE TABLE IF NOT EXISTS ...`), and retries the statement once.
    ///
    /// Once the schema exists this costs nothing extra. The retry is safe because a
    /// failed statement leaves no effects.
    ///
    /// ```no_run
    /// # fn f(ctx: &mut warren_guest::Ctx<'_>) -> Result<(), warren_guest::SqlError> {
    /// const SCHEMA: &[&str] = &["CREATE TABLE IF NOT EXISTS hits (n INTEGER NOT NULL)"];
    /// let rows = ctx.sql_with_schema(SCHEMA, "SELECT count(*) FROM hits", &[])?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Ctx::sql`]: a failing schema statement's error, or the retried statement's.
    pub fn sql_with_schema(
        &mut self,
        schema: &[&str],
        statement: &str,
        params: &[Value],
    ) -> Result<Rows, SqlError> {
        match self.sql(statement, params) {
            Err(e) if e.code == SqlErrorCode::Failed => {
                for s in schema {
                    self.sql(s, &[])?;
                }
                self.sql(statement, params)
            }
            other => other,
        }
    }

    fn tx(&mut self, op: TxOp) -> Result<(), SqlError> {
        self.channel.call(self.request_id, Call::Tx(op)).map(drop)
    }

    /// Opens a savepoint inside the request's transaction (`TX begin`). Prefer
    /// [`Ctx::transaction`], which always closes it.
    ///
    /// # Errors
    ///
    /// As [`Ctx::sql`].
    pub fn begin(&mut self) -> Result<(), SqlError> {
        self.tx(TxOp::Begin)
    }

    /// Releases the innermost savepoint, keeping its writes in the request's
    /// transaction (`TX commit`).
    ///
    /// # Errors
    ///
    /// As [`Ctx::sql`]; also when no savepoint is open.
    pub fn commit(&mut self) -> Result<(), SqlError> {
        self.tx(TxOp::Commit)
    }

    /// Undoes the writes since the innermost savepoint and releases it (`TX rollback`).
    ///
    /// # Errors
    ///
    /// As [`Ctx::sql`]; also when no savepoint is open.
    pub fn rollback(&mut self) -> Result<(), SqlError> {
        self.tx(TxOp::Rollback)
    }

    /// Runs `f` inside a savepoint: its writes are kept (in the request's transaction)
    /// if it returns `Ok`, and undone if it returns `Err`. Transactions nest.
    ///
    /// The request's own transaction still decides in the end: a response status of
    /// 400 or more undoes everything, committed savepoints included.
    ///
    /// ```no_run
    /// # use warren_guest::{params, Ctx, SqlError};
    /// # fn f(ctx: &mut Ctx<'_>) -> Result<(), SqlError> {
    /// ctx.transaction(|ctx| {
    ///     ctx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = ?", params![1])?;
    ///     ctx.execute("UPDATE accounts SET balance = balance + 10 WHERE id = ?", params![2])?;
    ///     Ok::<_, SqlError>(())
    /// })
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// `f`'s error (after rolling back), or the error of opening or releasing the
    /// savepoint.
    pub fn transaction<T, E, F>(&mut self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Ctx<'a>) -> Result<T, E>,
        E: From<SqlError>,
    {
        self.begin()?;
        match f(self) {
            Ok(value) => match self.commit() {
                Ok(()) => Ok(value),
                Err(e) => {
                    self.rollback_after_failure();
                    Err(e.into())
                }
            },
            Err(e) => {
                self.rollback_after_failure();
                Err(e)
            }
        }
    }

    fn rollback_after_failure(&mut self) {
        if let Err(e) = self.rollback() {
            // The caller's own error is the one worth returning; this one goes to the log.
            eprintln!(
                "warren-guest: request {}: rolling back a failed transaction: {e}",
                self.request_id
            );
        }
    }

    /// The value stored under `key` in the object's key-value store.
    ///
    /// The store is the table `_warren_kv(key TEXT PRIMARY KEY, value BLOB NOT NULL)`,
    /// created on first use; it is ordinary SQL, inside the request's transaction.
    ///
    /// # Errors
    ///
    /// As [`Ctx::sql`].
    pub fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, SqlError> {
        let rows = self.sql_with_schema(
            KV_SCHEMA,
            "SELECT value FROM _warren_kv WHERE key = ?",
            &[Value::from(key)],
        )?;
        Ok(rows
            .rows
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next())
            .and_then(Value::into_bytes))
    }

    /// Stores `value` under `key`, replacing any previous value.
    ///
    /// # Errors
    ///
    /// As [`Ctx::sql`].
    pub fn kv_put(&mut self, key: &str, value: impl AsRef<[u8]>) -> Result<(), SqlError> {
        self.sql_with_schema(
            KV_SCHEMA,
            "INSERT INTO _warren_kv (key, value) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[Value::from(key), Value::from(value.as_ref())],
        )
        .map(drop)
    }

    /// Deletes `key`; returns whether it existed.
    ///
    /// # Errors
    ///
    /// As [`Ctx::sql`].
    pub fn kv_delete(&mut self, key: &str) -> Result<bool, SqlError> {
        let rows = self.sql_with_schema(
            KV_SCHEMA,
            "DELETE FROM _warren_kv WHERE key = ?",
            &[Value::from(key)],
        )?;
        Ok(rows.rows_changed > 0)
    }

    /// Every key starting with `prefix` (exactly: `%` and `_` are not wildcards) and
    /// its value, in key order (by UTF-8 bytes). An empty prefix lists everything.
    ///
    /// # Errors
    ///
    /// As [`Ctx::sql`].
    pub fn kv_list(&mut self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, SqlError> {
        // A range scan on the primary key: every string with the prefix sorts in
        // [prefix, successor), and nothing else does.
        let rows = match prefix_successor(prefix) {
            Some(end) => self.sql_with_schema(
                KV_SCHEMA,
                "SELECT key, value FROM _warren_kv WHERE key >= ? AND key < ? ORDER BY key",
                &[Value::from(prefix), Value::from(end)],
            )?,
            None => self.sql_with_schema(
                KV_SCHEMA,
                "SELECT key, value FROM _warren_kv WHERE key >= ? ORDER BY key",
                &[Value::from(prefix)],
            )?,
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows.rows {
            let mut values = row.into_iter();
            match (values.next(), values.next()) {
                (Some(Value::Text(key)), Some(value)) => {
                    // A value written through kv_put is a BLOB; tolerate TEXT written by
                    // hand, and skip anything else rather than invent bytes.
                    if let Some(bytes) = value.into_bytes() {
                        out.push((key, bytes));
                    }
                }
                _ => continue,
            }
        }
        Ok(out)
    }
}

/// The smallest string greater than every string starting with `prefix`, under SQLite's
/// BINARY collation (byte order of UTF-8, which is code point order): `prefix` with its
/// last character replaced by the next one. `None` when there is no such string (an
/// empty prefix, or one made only of U+10FFFF).
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{d7ff}' => Some('\u{e000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn successor_bounds_exactly_the_prefixed_strings() {
        assert_eq!(prefix_successor(""), None);
        assert_eq!(prefix_successor("a"), Some("b".into()));
        assert_eq!(prefix_successor("user:"), Some("user;".into()));
        assert_eq!(prefix_successor("a%"), Some("a&".into()));
        assert_eq!(prefix_successor("a\u{d7ff}"), Some("a\u{e000}".into()));
        assert_eq!(prefix_successor("a\u{10ffff}"), Some("b".into()));
        assert_eq!(prefix_successor("\u{10ffff}\u{10ffff}"), None);
        assert_eq!(prefix_successor("é"), Some("ê".into()));

        let keys = [
            "",
            "a",
            "a%",
            "a%b",
            "a_",
            "a\u{7f}",
            "a\u{80}",
            "a\u{10ffff}",
            "ab",
            "b",
            "é",
            "a\u{d7ff}",
            "a\u{e000}",
            "\u{10ffff}",
        ];
        for prefix in keys {
            let end = prefix_successor(prefix);
            for key in keys {
                let in_range = key.as_bytes() >= prefix.as_bytes()
                    && !matches!(&end, Some(e) if key.as_bytes() >= e.as_bytes());
                assert_eq!(
                    in_range,
                    key.starts_with(prefix),
                    "prefix {prefix:?} key {key:?}"
                );
            }
        }
    }
}
