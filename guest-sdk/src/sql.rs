//! SQL values, results and errors.

use std::fmt;

/// One SQLite value: a statement parameter or a result cell.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `NULL`.
    #[default]
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Blob(Vec<u8>),
}

impl Value {
    /// Whether this is `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The integer, if this is an `INTEGER`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The number, if this is a `REAL` or an `INTEGER` (converted, possibly rounding
    /// integers beyond 2^53).
    #[allow(clippy::cast_precision_loss)]
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Real(r) => Some(*r),
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// `INTEGER` as a boolean (SQLite's convention: 0 is false, anything else true).
    pub fn as_bool(&self) -> Option<bool> {
        self.as_i64().map(|i| i != 0)
    }

    /// The text, if this is `TEXT`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is a `BLOB` or `TEXT`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Blob(b) => Some(b),
            Value::Text(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The bytes, if this is a `BLOB` or `TEXT`, without copying.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Value::Blob(b) => Some(b),
            Value::Text(s) => Some(s.into_bytes()),
            _ => None,
        }
    }

    /// The text, if this is `TEXT`, without copying.
    pub fn into_string(self) -> Option<String> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The SQLite type name: `NULL`, `INTEGER`, `REAL`, `TEXT` or `BLOB`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Integer(_) => "INTEGER",
            Value::Real(_) => "REAL",
            Value::Text(_) => "TEXT",
            Value::Blob(_) => "BLOB",
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Integer(i64::from(v))
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Integer(i64::from(v))
    }
}

impl From<bool> for Value {
    /// `true` is `1`, `false` is `0` (SQLite has no boolean type).
    fn from(v: bool) -> Self {
        Value::Integer(i64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}

impl<const N: usize> From<&[u8; N]> for Value {
    fn from(v: &[u8; N]) -> Self {
        Value::Blob(v.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is `NULL`.
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// The result of one statement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// The rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
    /// Rows inserted, updated or deleted by the statement (SQLite's `changes()`).
    pub rows_changed: u64,
    /// SQLite's `last_insert_rowid()` after the statement: meaningful after an `INSERT`
    /// into a rowid table.
    pub last_insert_id: i64,
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Index of the column named `name` (exact match first, then ASCII case-insensitive).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name).or_else(|| {
            self.columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))
        })
    }

    /// Row `index`.
    pub fn row(&self, index: usize) -> Option<Row<'_>> {
        self.rows.get(index).map(|values| Row {
            columns: &self.columns,
            values,
        })
    }

    /// The first row.
    pub fn first(&self) -> Option<Row<'_>> {
        self.row(0)
    }

    /// The value of column `column` in row `row`.
    pub fn get(&self, row: usize, column: &str) -> Option<&Value> {
        let c = self.column_index(column)?;
        self.rows.get(row)?.get(c)
    }

    /// The first column of the first row: the answer of `SELECT count(*) ...`.
    pub fn value(&self) -> Option<&Value> {
        self.rows.first()?.first()
    }

    /// The rows, as [`Row`] views.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row {
            columns: &self.columns,
            values,
        })
    }
}

/// One row of [`Rows`], with access by column name.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl<'a> Row<'a> {
    /// The value of the column named `name` (exact match first, then ASCII
    /// case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        let i = self.columns.iter().position(|c| c == name).or_else(|| {
            self.columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))
        })?;
        self.values.get(i)
    }

    /// The value of column `index`.
    pub fn at(&self, index: usize) -> Option<&'a Value> {
        self.values.get(index)
    }

    /// All values, in column order.
    pub fn values(&self) -> &'a [Value] {
        self.values
    }

    /// The column names.
    pub fn columns(&self) -> &'a [String] {
        self.columns
    }

    /// Column `name` as an integer.
    pub fn get_i64(&self, name: &str) -> Option<i64> {
        self.get(name)?.as_i64()
    }

    /// Column `name` as a float (integers converted).
    pub fn get_f64(&self, name: &str) -> Option<f64> {
        self.get(name)?.as_f64()
    }

    /// Column `name` as text.
    pub fn get_str(&self, name: &str) -> Option<&'a str> {
        self.get(name)?.as_str()
    }

    /// Column `name` as bytes (`BLOB` or `TEXT`).
    pub fn get_bytes(&self, name: &str) -> Option<&'a [u8]> {
        self.get(name)?.as_bytes()
    }
}

/// What kind of failure a [`SqlError`] is: the `SQL_ERROR` codes of the protocol, plus
/// two this library raises itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SqlErrorCode {
    /// 1: the statement failed to prepare or run (syntax, no such table, type mismatch).
    Failed,
    /// 2: a constraint was violated (UNIQUE, NOT NULL, CHECK, FOREIGN KEY).
    Constraint,
    /// 3: not allowed (`ATTACH`, `BEGIN`, `VACUUM`, most `PRAGMA`s, ...).
    NotAllowed,
    /// 4: the statement ran longer than the per-statement time limit.
    Interrupted,
    /// 5: too large: the result exceeded the row or byte limit — or, raised by this
    /// library without asking the supervisor, the statement and its parameters do not
    /// fit in one frame (`max_frame`).
    TooLarge,
    /// 6: the storage quota was exceeded; the write was undone.
    QuotaExceeded,
    /// 7: any other failure.
    Other,
    /// A code this library does not know (a newer supervisor).
    Unknown(u16),
    /// Raised by this library: the connection to the supervisor is gone or broke the
    /// protocol. The request cannot be answered any more; whatever the handler returns
    /// is dropped and the guest ends.
    Disconnected,
}

impl SqlErrorCode {
    /// The code of a `SQL_ERROR` frame.
    pub fn from_u16(code: u16) -> SqlErrorCode {
        match code {
            1 => SqlErrorCode::Failed,
            2 => SqlErrorCode::Constraint,
            3 => SqlErrorCode::NotAllowed,
            4 => SqlErrorCode::Interrupted,
            5 => SqlErrorCode::TooLarge,
            6 => SqlErrorCode::QuotaExceeded,
            7 => SqlErrorCode::Other,
            c => SqlErrorCode::Unknown(c),
        }
    }

    /// The wire code, or `None` for [`SqlErrorCode::Disconnected`], which never travels.
    pub fn to_u16(self) -> Option<u16> {
        Some(match self {
            SqlErrorCode::Failed => 1,
            SqlErrorCode::Constraint => 2,
            SqlErrorCode::NotAllowed => 3,
            SqlErrorCode::Interrupted => 4,
            SqlErrorCode::TooLarge => 5,
            SqlErrorCode::QuotaExceeded => 6,
            SqlErrorCode::Other => 7,
            SqlErrorCode::Unknown(c) => c,
            SqlErrorCode::Disconnected => return None,
        })
    }
}

impl fmt::Display for SqlErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlErrorCode::Failed => f.write_str("failed"),
            SqlErrorCode::Constraint => f.write_str("constraint violation"),
            SqlErrorCode::NotAllowed => f.write_str("not allowed"),
            SqlErrorCode::Interrupted => f.write_str("interrupted (time limit)"),
            SqlErrorCode::TooLarge => f.write_str("too large"),
            SqlErrorCode::QuotaExceeded => f.write_str("storage quota exceeded"),
            SqlErrorCode::Other => f.write_str("error"),
            SqlErrorCode::Unknown(c) => write!(f, "error code {c}"),
            SqlErrorCode::Disconnected => f.write_str("disconnected from the supervisor"),
        }
    }
}

/// A failed SQL statement or `TX` operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    /// What kind of failure.
    pub code: SqlErrorCode,
    /// The supervisor's (or this library's) message.
    pub message: String,
}

impl SqlError {
    /// A new error.
    pub fn new(code: SqlErrorCode, message: impl Into<String>) -> Self {
        SqlError {
            code,
            message: message.into(),
        }
    }

    /// Whether this is a constraint violation (a duplicate key, say).
    pub fn is_constraint(&self) -> bool {
        self.code == SqlErrorCode::Constraint
    }
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SQL {}: {}", self.code, self.message)
    }
}

impl std::error::Error for SqlError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(Value::from(5i32), Value::Integer(5));
        assert_eq!(Value::from(5u32), Value::Integer(5));
        assert_eq!(Value::from(-5i64), Value::Integer(-5));
        assert_eq!(Value::from(true), Value::Integer(1));
        assert_eq!(Value::from(0.5), Value::Real(0.5));
        assert_eq!(Value::from("a"), Value::Text("a".into()));
        assert_eq!(Value::from(&"a".to_string()), Value::Text("a".into()));
        assert_eq!(Value::from(b"ab"), Value::Blob(b"ab".to_vec()));
        assert_eq!(Value::from(&b"ab"[..]), Value::Blob(b"ab".to_vec()));
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(Value::from(Some("x")), Value::Text("x".into()));
        assert_eq!(Value::Integer(2).as_f64(), Some(2.0));
        assert_eq!(Value::Text("x".into()).as_bytes(), Some(&b"x"[..]));
        assert_eq!(Value::Blob(vec![1]).as_str(), None);
    }

    #[test]
    fn rows_access() {
        let rows = Rows {
            columns: vec!["id".into(), "Name".into()],
            rows: vec![
                vec![Value::Integer(1), Value::Text("a".into())],
                vec![Value::Integer(2), Value::Null],
            ],
            ..Rows::default()
        };
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.value(), Some(&Value::Integer(1)));
        assert_eq!(rows.get(1, "id"), Some(&Value::Integer(2)));
        assert_eq!(rows.get(0, "name"), Some(&Value::Text("a".into())));
        assert_eq!(rows.get(0, "nope"), None);
        let ids: Vec<i64> = rows.iter().filter_map(|r| r.get_i64("id")).collect();
        assert_eq!(ids, [1, 2]);
        assert_eq!(rows.first().unwrap().get_str("Name"), Some("a"));
        assert!(rows.row(1).unwrap().get("Name").unwrap().is_null());
    }

    #[test]
    fn codes() {
        for c in 1..=7 {
            assert_eq!(SqlErrorCode::from_u16(c).to_u16(), Some(c));
        }
        assert_eq!(SqlErrorCode::from_u16(42), SqlErrorCode::Unknown(42));
        assert_eq!(SqlErrorCode::Disconnected.to_u16(), None);
        let e = SqlError::new(SqlErrorCode::Constraint, "UNIQUE constraint failed: t.k");
        assert!(e.is_constraint());
        assert_eq!(
            e.to_string(),
            "SQL constraint violation: UNIQUE constraint failed: t.k"
        );
    }
}
