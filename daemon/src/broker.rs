//! The storage broker: one SQLite database per object, opened by the supervisor with sqlx
//! (WAL, `synchronous=FULL`), and the only way a guest reaches storage.
//!
//! Each request runs in one `BEGIN IMMEDIATE` transaction, committed before the response
//! leaves or rolled back. Guest statements run under guards set on the raw handle:
//!
//! * an authorizer (installed only while a guest statement is prepared; guest statements are
//!   never cached) that refuses `ATTACH`/`DETACH`, transaction and savepoint statements,
//!   virtual tables, `load_extension`, and every `PRAGMA` but a few read-only schema queries;
//! * `SQLITE_LIMIT_ATTACHED = 0`, defensive mode, untrusted schema, extension loading off;
//! * a progress handler that interrupts a statement past its deadline;
//! * `max_page_count` from the worker's storage quota;
//! * bounds on rows and bytes per result.
//!
//! Runaway statements run on sqlx's per-connection thread, never on the async runtime.

use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Column, Connection, Either, Executor, Row, SqliteConnection, ValueRef};

use warren_guest::{Rows, Value};

/// Statement time limit.
pub const STATEMENT_TIME: Duration = Duration::from_secs(1);
/// Rows per result.
pub const MAX_ROWS: usize = 100_000;
/// Bytes per result.
pub const MAX_RESULT_BYTES: usize = 8 << 20;

/// A failed guest statement: the protocol's `SQL_ERROR` code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlFailure {
    /// protocol code (docs/protocol.md)
    pub code: u16,
    /// message for the guest
    pub message: String,
}

impl SqlFailure {
    fn new(code: u16, message: impl Into<String>) -> Self {
        SqlFailure {
            code,
            message: message.into(),
        }
    }
}

/// A successful guest statement: the protocol's `SQL_RESULT`.
pub type SqlOutput = Rows;

struct Deadline {
    base: Instant,
    /// nanoseconds after `base`; 0 = none
    at: AtomicU64,
}

/// One object's open database.
pub struct ObjectDb {
    conn: SqliteConnection,
    deadline: Arc<Deadline>,
    savepoints: u32,
    /// the storage quota was hit: the request must roll back whatever it says
    pub poisoned: bool,
}

impl std::fmt::Debug for ObjectDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectDb")
            .field("savepoints", &self.savepoints)
            .finish()
    }
}

/// Errors opening or driving a database (the daemon's problem, not the guest's).
#[derive(Debug, thiserror::Error)]
#[error("object database {path}: {source}")]
pub struct BrokerError {
    path: String,
    #[source]
    source: sqlx::Error,
}

const SQLITE_LIMIT_LENGTH: i32 = 0;
const SQLITE_LIMIT_SQL_LENGTH: i32 = 1;
const SQLITE_LIMIT_ATTACHED: i32 = 7;

impl ObjectDb {
    /// Open (creating) the database at `path` with a quota of `storage` bytes.
    pub async fn open(path: &Path, storage: u64) -> Result<Self, BrokerError> {
        let err = |source| BrokerError {
            path: path.display().to_string(),
            source,
        };
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .statement_cache_capacity(32);
        let mut conn = SqliteConnection::connect_with(&opts).await.map_err(err)?;
        let pages = (storage / 4096).max(16);
        sqlx::query(&format!("PRAGMA max_page_count = {pages}"))
            .execute(&mut conn)
            .await
            .map_err(err)?;
        let deadline = Arc::new(Deadline {
            base: Instant::now(),
            at: AtomicU64::new(0),
        });
        {
            let mut h = conn.lock_handle().await.map_err(err)?;
            let db = h.as_raw_handle().as_ptr();
            // SAFETY: `db` is the live handle sqlx just opened; we hold its lock, so no other
            // thread uses it. sqlite3_limit and sqlite3_db_config only change settings.
            unsafe {
                libsqlite3_sys::sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
                libsqlite3_sys::sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 16 << 20);
                libsqlite3_sys::sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 1 << 20);
                let off: libc::c_int = 0;
                let on: libc::c_int = 1;
                libsqlite3_sys::sqlite3_db_config(
                    db,
                    libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION,
                    off,
                    std::ptr::null_mut::<libc::c_int>(),
                );
                libsqlite3_sys::sqlite3_db_config(
                    db,
                    libsqlite3_sys::SQLITE_DBCONFIG_DEFENSIVE,
                    on,
                    std::ptr::null_mut::<libc::c_int>(),
                );
                libsqlite3_sys::sqlite3_db_config(
                    db,
                    libsqlite3_sys::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
                    off,
                    std::ptr::null_mut::<libc::c_int>(),
                );
            }
            let d = Arc::clone(&deadline);
            h.set_progress_handler(1000, move || {
                let at = d.at.load(Ordering::Relaxed);
                at == 0 || d.base.elapsed().as_nanos() < u128::from(at)
            });
        }
        Ok(ObjectDb {
            conn,
            deadline,
            savepoints: 0,
            poisoned: false,
        })
    }

    /// Start the request's transaction.
    pub async fn begin(&mut self) -> Result<(), sqlx::Error> {
        self.savepoints = 0;
        self.poisoned = false;
        sqlx::query("BEGIN IMMEDIATE")
            .persistent(false)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
    }

    /// Commit the request's transaction (open savepoints are released by it).
    pub async fn commit(&mut self) -> Result<(), sqlx::Error> {
        self.savepoints = 0;
        sqlx::query("COMMIT")
            .persistent(false)
            .execute(&mut self.conn)
            .await
            .map(|_| ())
    }

    /// Roll the request's transaction back (a no-op if SQLite already did).
    pub async fn rollback(&mut self) -> Result<(), sqlx::Error> {
        self.savepoints = 0;
        if self.in_transaction().await {
            sqlx::query("ROLLBACK")
                .persistent(false)
                .execute(&mut self.conn)
                .await?;
        }
        Ok(())
    }

    async fn in_transaction(&mut self) -> bool {
        match self.conn.lock_handle().await {
            Ok(mut h) => {
                let db = h.as_raw_handle().as_ptr();
                // SAFETY: we hold the handle's lock; get_autocommit only reads a flag.
                (unsafe { libsqlite3_sys::sqlite3_get_autocommit(db) }) == 0
            }
            Err(_) => false,
        }
    }

    /// A guest savepoint operation (1 begin, 2 commit, 3 rollback).
    pub async fn tx(&mut self, op: u8) -> Result<(), SqlFailure> {
        let n = self.savepoints;
        let statements: Vec<String> = match op {
            1 => vec![format!("SAVEPOINT warren_{}", n + 1)],
            2 | 3 if n == 0 => return Err(SqlFailure::new(1, "no open transaction to end")),
            2 => vec![format!("RELEASE warren_{n}")],
            3 => vec![
                format!("ROLLBACK TO warren_{n}"),
                format!("RELEASE warren_{n}"),
            ],
            other => return Err(SqlFailure::new(1, format!("unknown TX op {other}"))),
        };
        for s in statements {
            let r = sqlx::query(&s)
                .persistent(false)
                .execute(&mut self.conn)
                .await;
            if let Err(e) = r {
                return Err(classify(e, &mut self.poisoned));
            }
        }
        self.savepoints = if op == 1 { n + 1 } else { n - 1 };
        Ok(())
    }

    /// Run one guest statement with its parameters.
    pub async fn run(
        &mut self,
        statement: &str,
        params: &[Value],
    ) -> Result<SqlOutput, SqlFailure> {
        let (columns, wanted) = self.check_statement(statement).await?;
        if usize::try_from(wanted).ok() != Some(params.len()) {
            return Err(SqlFailure::new(
                1,
                format!(
                    "the statement has {wanted} parameters but {} were given",
                    params.len()
                ),
            ));
        }
        let at = self.deadline.base.elapsed() + STATEMENT_TIME;
        self.deadline.at.store(
            u64::try_from(at.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        let result = self.execute(statement, params).await;
        self.deadline.at.store(0, Ordering::Relaxed);
        result.map(|mut rows| {
            // a query that returned no rows still names its columns
            if rows.columns.is_empty() {
                rows.columns = columns;
            }
            rows
        })
    }

    async fn execute(
        &mut self,
        statement: &str,
        params: &[Value],
    ) -> Result<SqlOutput, SqlFailure> {
        let mut q = sqlx::query(statement).persistent(false);
        for p in params {
            q = match p {
                Value::Null => q.bind(None::<i64>),
                Value::Integer(i) => q.bind(*i),
                Value::Real(f) => q.bind(*f),
                Value::Text(t) => q.bind(t.clone()),
                Value::Blob(b) => q.bind(b.clone()),
            };
        }
        let mut out = SqlOutput::default();
        let mut bytes = 0usize;
        let mut poisoned = false;
        let result = {
            let mut stream: futures_util::stream::BoxStream<
                '_,
                Result<
                    Either<sqlx::sqlite::SqliteQueryResult, sqlx::sqlite::SqliteRow>,
                    sqlx::Error,
                >,
            > = (&mut self.conn).fetch_many(q);
            loop {
                match stream.try_next().await {
                    Ok(None) => break Ok(()),
                    Ok(Some(Either::Left(done))) => {
                        out.rows_changed += done.rows_affected();
                        out.last_insert_id = done.last_insert_rowid();
                    }
                    Ok(Some(Either::Right(row))) => {
                        if out.columns.is_empty() {
                            out.columns =
                                row.columns().iter().map(|c| c.name().to_string()).collect();
                        }
                        let mut values = Vec::with_capacity(row.len());
                        for i in 0..row.len() {
                            let v = decode(&row, i);
                            bytes += match &v {
                                Value::Text(t) => t.len(),
                                Value::Blob(b) => b.len(),
                                _ => 8,
                            };
                            values.push(v);
                        }
                        out.rows.push(values);
                        if out.rows.len() > MAX_ROWS || bytes > MAX_RESULT_BYTES {
                            break Err(SqlFailure::new(
                                5,
                                format!(
                                    "result too large (limits: {MAX_ROWS} rows, {MAX_RESULT_BYTES} bytes)"
                                ),
                            ));
                        }
                    }
                    Err(e) => break Err(classify(e, &mut poisoned)),
                }
            }
        };
        self.poisoned |= poisoned;
        result.map(|()| out)
    }

    /// Prepare the statement once under the authorizer: refuses what guests may not do and
    /// more than one statement per call. Returns the statement's column names and how many
    /// parameters it takes.
    async fn check_statement(&mut self, statement: &str) -> Result<(Vec<String>, i32), SqlFailure> {
        let c =
            CString::new(statement).map_err(|_| SqlFailure::new(1, "statement contains NUL"))?;
        let mut h = self
            .conn
            .lock_handle()
            .await
            .map_err(|e| SqlFailure::new(7, e.to_string()))?;
        let db = h.as_raw_handle().as_ptr();
        let mut stmt: *mut libsqlite3_sys::sqlite3_stmt = std::ptr::null_mut();
        let mut tail: *const libc::c_char = std::ptr::null();
        // SAFETY: we hold the handle's lock; the authorizer is a plain function with no user
        // data, and it is removed again before the lock is released.
        let rc = unsafe {
            libsqlite3_sys::sqlite3_set_authorizer(
                db,
                Some(guest_authorizer),
                std::ptr::null_mut(),
            );
            let rc = libsqlite3_sys::sqlite3_prepare_v2(db, c.as_ptr(), -1, &mut stmt, &mut tail);
            libsqlite3_sys::sqlite3_set_authorizer(db, None, std::ptr::null_mut());
            rc
        };
        let message = || {
            // SAFETY: errmsg returns a NUL-terminated string owned by the connection, valid
            // until the next call on it; we copy it at once.
            unsafe { std::ffi::CStr::from_ptr(libsqlite3_sys::sqlite3_errmsg(db)) }
                .to_string_lossy()
                .into_owned()
        };
        if rc != libsqlite3_sys::SQLITE_OK {
            let m = message();
            // SQLite reports some authorizer denials (functions) as plain SQLITE_ERROR
            let code = if rc == libsqlite3_sys::SQLITE_AUTH || m.starts_with("not authorized") {
                3
            } else {
                1
            };
            return Err(SqlFailure::new(
                code,
                if code == 3 {
                    format!("not allowed: {m} (ATTACH, transactions (use TX frames), pragmas that change settings, load_extension and virtual tables are refused)")
                } else {
                    m
                },
            ));
        }
        let mut columns = Vec::new();
        let mut wanted_params = 0;
        if !stmt.is_null() {
            // SAFETY: `stmt` is a live prepared statement of this connection.
            wanted_params = unsafe { libsqlite3_sys::sqlite3_bind_parameter_count(stmt) };
            // SAFETY: `stmt` is a live prepared statement of this connection, finalized below.
            let n = unsafe { libsqlite3_sys::sqlite3_column_count(stmt) };
            for i in 0..n {
                // SAFETY: `i` is below the column count; the name is a NUL-terminated string
                // owned by the statement, copied before the statement is finalized.
                let name = unsafe { libsqlite3_sys::sqlite3_column_name(stmt, i) };
                if !name.is_null() {
                    // SAFETY: as above.
                    columns.push(
                        unsafe { std::ffi::CStr::from_ptr(name) }
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        // SAFETY: `stmt` came from prepare_v2 on this connection (or is NULL, which finalize
        // accepts); `tail` points into `c`, which is alive.
        let rest = unsafe {
            libsqlite3_sys::sqlite3_finalize(stmt);
            std::ffi::CStr::from_ptr(tail)
        };
        if stmt.is_null() {
            return Err(SqlFailure::new(1, "empty statement"));
        }
        let rest = rest.to_string_lossy();
        if !only_trivia(&rest) {
            return Err(SqlFailure::new(
                1,
                "one statement per SQL frame (found more after the first)",
            ));
        }
        Ok((columns, wanted_params))
    }
}

/// The storage of one request: the object's database, opened and put in a transaction only
/// when the guest first uses it, so a request that touches no data costs no database work.
#[derive(Debug)]
pub struct RequestStore<'a> {
    db: &'a mut Option<ObjectDb>,
    path: &'a Path,
    quota: u64,
    begun: bool,
    /// rows the guest's statements returned
    pub rows_read: u64,
    /// rows the guest's statements changed
    pub rows_written: u64,
    /// the quota was hit during this request
    pub quota_hit: bool,
    observer: Option<(&'a str, &'a crate::metrics::Metrics)>,
}

impl<'a> RequestStore<'a> {
    /// The store of a request to the object whose database is (or will be) `db` at `path`.
    pub fn new(db: &'a mut Option<ObjectDb>, path: &'a Path, quota: u64) -> Self {
        RequestStore {
            db,
            path,
            quota,
            begun: false,
            rows_read: 0,
            rows_written: 0,
            quota_hit: false,
            observer: None,
        }
    }

    /// Record every statement in `metrics` under `worker`.
    pub fn observe(&mut self, worker: &'a str, metrics: &'a crate::metrics::Metrics) {
        self.observer = Some((worker, metrics));
    }

    async fn ready(&mut self) -> Result<&mut ObjectDb, SqlFailure> {
        if self.db.is_none() {
            let db = ObjectDb::open(self.path, self.quota).await.map_err(|e| {
                tracing::error!("{e}");
                SqlFailure::new(7, "the object's database cannot be opened")
            })?;
            *self.db = Some(db);
        }
        let db = self.db.as_mut().expect("opened above");
        if !self.begun {
            db.begin().await.map_err(|e| {
                tracing::error!("begin: {e}");
                SqlFailure::new(7, "the object's database cannot start a transaction")
            })?;
            self.begun = true;
        }
        Ok(db)
    }

    /// Run a guest statement.
    pub async fn run(&mut self, statement: &str, params: &[Value]) -> Result<Rows, SqlFailure> {
        let t0 = Instant::now();
        let r = self.ready().await?.run(statement, params).await;
        if let Some((w, m)) = &self.observer {
            m.sql(w, r.is_ok(), t0.elapsed());
            if matches!(&r, Err(f) if f.code == 6) {
                m.reject(crate::metrics::LimitKind::StorageQuota);
            }
        }
        match &r {
            Ok(rows) => {
                self.rows_read += u64::try_from(rows.rows.len()).unwrap_or(u64::MAX);
                self.rows_written += rows.rows_changed;
            }
            Err(f) if f.code == 6 => self.quota_hit = true,
            Err(_) => {}
        }
        r
    }

    /// A guest savepoint operation.
    pub async fn tx(&mut self, op: u8) -> Result<(), SqlFailure> {
        self.ready().await?.tx(op).await
    }

    /// End the request: commit when `commit` (and the quota was not hit), else roll back.
    /// Returns whether anything was committed.
    pub async fn finish(self, commit: bool) -> Result<bool, sqlx::Error> {
        if !self.begun {
            return Ok(false);
        }
        let db = self.db.as_mut().expect("begun implies open");
        if commit && !db.poisoned {
            if let Err(e) = db.commit().await {
                let _ = db.rollback().await;
                return Err(e);
            }
            Ok(true)
        } else {
            db.rollback().await?;
            Ok(false)
        }
    }
}

/// Whether `s` holds only whitespace, `;` and comments.
fn only_trivia(s: &str) -> bool {
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map(|(_, t)| t).unwrap_or("");
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map(|(_, t)| t).unwrap_or("");
        } else {
            return rest.is_empty();
        }
    }
}

fn classify(e: sqlx::Error, poisoned: &mut bool) -> SqlFailure {
    if let sqlx::Error::Database(d) = &e {
        let code: i32 = d.code().and_then(|c| c.parse().ok()).unwrap_or(1);
        let message = d.message().to_string();
        return match code & 0xff {
            19 => SqlFailure::new(2, message),
            23 => SqlFailure::new(3, format!("not allowed: {message}")),
            9 => SqlFailure::new(
                4,
                format!(
                    "interrupted: statement ran longer than {}s",
                    STATEMENT_TIME.as_secs()
                ),
            ),
            13 => {
                *poisoned = true;
                SqlFailure::new(6, "storage quota exceeded: the request's writes are undone")
            }
            _ => SqlFailure::new(1, message),
        };
    }
    SqlFailure::new(7, e.to_string())
}

fn decode(row: &sqlx::sqlite::SqliteRow, i: usize) -> Value {
    let Ok(raw) = row.try_get_raw(i) else {
        return Value::Null;
    };
    if raw.is_null() {
        return Value::Null;
    }
    let ty = raw.type_info().to_string();
    match ty.as_str() {
        "INTEGER" | "BOOLEAN" => row.try_get::<i64, _>(i).map(Value::Integer),
        "REAL" => row.try_get::<f64, _>(i).map(Value::Real),
        "TEXT" => row.try_get::<String, _>(i).map(Value::Text),
        _ => row.try_get::<Vec<u8>, _>(i).map(Value::Blob),
    }
    .unwrap_or(Value::Null)
}

const SQLITE_DENY: libc::c_int = 1;
const SQLITE_OK: libc::c_int = 0;

/// Pragmas a guest may run (read-only schema queries).
const ALLOWED_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "table_list",
    "user_version",
];

extern "C" fn guest_authorizer(
    _data: *mut libc::c_void,
    action: libc::c_int,
    a1: *const libc::c_char,
    a2: *const libc::c_char,
    _db: *const libc::c_char,
    _trigger: *const libc::c_char,
) -> libc::c_int {
    let text = |p: *const libc::c_char| -> Option<String> {
        if p.is_null() {
            None
        } else {
            // SAFETY: SQLite passes NUL-terminated strings valid for the callback's duration.
            Some(
                unsafe { std::ffi::CStr::from_ptr(p) }
                    .to_string_lossy()
                    .to_lowercase(),
            )
        }
    };
    match action {
        // transaction, attach, detach, create/drop vtable, savepoint
        22 | 24 | 25 | 29 | 30 | 32 => SQLITE_DENY,
        // PRAGMA: name in a1, argument in a2
        19 => {
            let name = text(a1).unwrap_or_default();
            let arg = text(a2);
            let allowed = ALLOWED_PRAGMAS.contains(&name.as_str())
                && (name != "user_version" || arg.is_none());
            if allowed {
                SQLITE_OK
            } else {
                SQLITE_DENY
            }
        }
        // FUNCTION: name in a2
        31 => {
            if text(a2).as_deref() == Some("load_extension") {
                SQLITE_DENY
            } else {
                SQLITE_OK
            }
        }
        _ => SQLITE_OK,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivia() {
        assert!(only_trivia(""));
        assert!(only_trivia(" ;\n -- done\n /* x */ ;"));
        assert!(!only_trivia("; DELETE FROM t"));
        assert!(!only_trivia("/* x */ SELECT 1"));
    }

    async fn db() -> (tempfile::TempDir, ObjectDb) {
        let t = tempfile::tempdir().unwrap();
        let db = ObjectDb::open(&t.path().join("o.db"), 1 << 20)
            .await
            .unwrap();
        (t, db)
    }

    #[tokio::test]
    async fn runs_statements_with_typed_values() {
        let (_t, mut db) = db().await;
        db.begin().await.unwrap();
        db.run("CREATE TABLE t (a INTEGER, b REAL, c TEXT, d BLOB)", &[])
            .await
            .unwrap();
        let r = db
            .run(
                "INSERT INTO t VALUES (?, ?, ?, ?)",
                &[
                    Value::Integer(1),
                    Value::Real(2.5),
                    Value::Text("x".into()),
                    Value::Blob(vec![0, 1]),
                ],
            )
            .await
            .unwrap();
        assert_eq!(r.rows_changed, 1);
        assert_eq!(r.last_insert_id, 1);
        let r = db
            .run("SELECT a, b, c, d, NULL AS e FROM t", &[])
            .await
            .unwrap();
        assert_eq!(r.columns, ["a", "b", "c", "d", "e"]);
        assert_eq!(
            r.rows,
            vec![vec![
                Value::Integer(1),
                Value::Real(2.5),
                Value::Text("x".into()),
                Value::Blob(vec![0, 1]),
                Value::Null
            ]]
        );
        db.commit().await.unwrap();
    }

    #[tokio::test]
    async fn refuses_what_guests_may_not_do() {
        let (t, mut db) = db().await;
        db.begin().await.unwrap();
        let other = t.path().join("other.db");
        for (sql, code) in [
            (format!("ATTACH DATABASE '{}' AS x", other.display()), 3),
            ("COMMIT".to_string(), 3),
            ("BEGIN".to_string(), 3),
            ("SAVEPOINT s".to_string(), 3),
            ("PRAGMA journal_mode = DELETE".to_string(), 3),
            ("PRAGMA synchronous = OFF".to_string(), 3),
            ("PRAGMA max_page_count = 1000000".to_string(), 3),
            ("PRAGMA user_version = 5".to_string(), 3),
            ("SELECT load_extension('/tmp/x.so')".to_string(), 3),
            ("CREATE VIRTUAL TABLE v USING fts5(x)".to_string(), 3),
            (format!("VACUUM INTO '{}'", other.display()), 1),
            ("SELECT 1; SELECT 2".to_string(), 1),
            ("SELEC 1".to_string(), 1),
        ] {
            let e = db.run(&sql, &[]).await.unwrap_err();
            assert_eq!(e.code, code, "{sql}: {e:?}");
        }
        assert!(!other.exists(), "no other file was created");
        db.run("PRAGMA table_info('sqlite_master')", &[])
            .await
            .unwrap();
        db.run("PRAGMA user_version", &[]).await.unwrap();
        db.rollback().await.unwrap();
    }

    #[tokio::test]
    async fn runaway_statement_is_interrupted() {
        let (_t, mut db) = db().await;
        db.begin().await.unwrap();
        let t0 = Instant::now();
        let e = db
            .run(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
                &[],
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, 4, "{e:?}");
        assert!(t0.elapsed() < Duration::from_secs(30));
        // the connection is still usable
        db.run("SELECT 1", &[]).await.unwrap();
        db.rollback().await.unwrap();
    }

    #[tokio::test]
    async fn quota_poisons_the_request() {
        let (_t, mut db) = db().await;
        db.begin().await.unwrap();
        db.run("CREATE TABLE t (b BLOB)", &[]).await.unwrap();
        let e = db
            .run("INSERT INTO t VALUES (randomblob(4 * 1024 * 1024))", &[])
            .await
            .unwrap_err();
        assert_eq!(e.code, 6, "{e:?}");
        assert!(db.poisoned);
        db.rollback().await.unwrap();
    }

    #[tokio::test]
    async fn savepoints_nest() {
        let (_t, mut db) = db().await;
        db.begin().await.unwrap();
        db.run("CREATE TABLE t (a)", &[]).await.unwrap();
        db.tx(1).await.unwrap();
        db.run("INSERT INTO t VALUES (1)", &[]).await.unwrap();
        db.tx(3).await.unwrap();
        db.tx(1).await.unwrap();
        db.run("INSERT INTO t VALUES (2)", &[]).await.unwrap();
        db.tx(2).await.unwrap();
        assert_eq!(db.tx(2).await.unwrap_err().code, 1);
        let r = db.run("SELECT a FROM t", &[]).await.unwrap();
        assert_eq!(r.rows, vec![vec![Value::Integer(2)]]);
        db.commit().await.unwrap();
    }
}
