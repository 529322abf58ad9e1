//! The frame codec of the guest protocol, version 1 (`docs/protocol.md`).
//!
//! A frame on the wire is `length: u32 LE`, `type: u8`, then `length - 1` payload bytes.
//! [`Frame::encode`] produces a whole frame (length prefix included); [`Frame::decode`]
//! parses one frame's type and payload, strictly: a payload shorter or longer than its
//! fields, an unknown frame type, value tag or `TX` op, invalid UTF-8 in a `str`, or a
//! `SQL_RESULT` claiming rows without columns is a [`FrameError`]. [`read_frame`] and
//! [`write_frame`] move frames over any blocking [`Read`]/[`Write`], enforcing
//! `max_frame`.
//!
//! The codec knows both directions (it decodes a guest's `HELLO` as readily as a
//! supervisor's), so a supervisor or a test can use it as well as a guest; deciding
//! which frame is allowed when is the job of the conversation, not of the codec.
//!
//! `max_frame` bounds the frame's `length` field (the type byte plus the payload); the
//! four length bytes themselves are not counted.

use std::fmt;
use std::io::{self, Read, Write};

use crate::http::{Request, Response};
use crate::sql::{Rows, Value};

/// The protocol version this crate speaks.
pub const VERSION: u16 = 1;

/// The `max_frame` assumed until the supervisor's `HELLO` announces one (16 MiB), which
/// is also the protocol's default.
pub const DEFAULT_MAX_FRAME: u32 = 16 * 1024 * 1024;

/// Frame type bytes.
pub mod kind {
    /// `HELLO`, guest → supervisor.
    pub const HELLO_GUEST: u8 = 0x01;
    /// `HELLO`, supervisor → guest.
    pub const HELLO_SUPERVISOR: u8 = 0x02;
    /// `REQUEST`, supervisor → guest.
    pub const REQUEST: u8 = 0x10;
    /// `RESPONSE`, guest → supervisor.
    pub const RESPONSE: u8 = 0x11;
    /// `SQL`, guest → supervisor.
    pub const SQL: u8 = 0x20;
    /// `SQL_RESULT`, supervisor → guest.
    pub const SQL_RESULT: u8 = 0x21;
    /// `SQL_ERROR`, supervisor → guest.
    pub const SQL_ERROR: u8 = 0x22;
    /// `TX`, guest → supervisor.
    pub const TX: u8 = 0x23;
    /// `ERROR`, either direction.
    pub const ERROR: u8 = 0x7f;
}

/// Tags of the `value` encoding.
mod tag {
    pub const NULL: u8 = 0;
    pub const INTEGER: u8 = 1;
    pub const REAL: u8 = 2;
    pub const TEXT: u8 = 3;
    pub const BLOB: u8 = 4;
}

/// The operation of a `TX` frame: savepoints inside the request's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxOp {
    /// `1`: open a savepoint.
    Begin,
    /// `2`: release the innermost savepoint.
    Commit,
    /// `3`: roll back to the innermost savepoint and release it.
    Rollback,
}

impl TxOp {
    /// The wire byte.
    pub fn to_u8(self) -> u8 {
        match self {
            TxOp::Begin => 1,
            TxOp::Commit => 2,
            TxOp::Rollback => 3,
        }
    }

    /// Parses the wire byte.
    pub fn from_u8(op: u8) -> Option<TxOp> {
        match op {
            1 => Some(TxOp::Begin),
            2 => Some(TxOp::Commit),
            3 => Some(TxOp::Rollback),
            _ => None,
        }
    }
}

/// One frame of the guest protocol.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `0x01`: the guest's greeting.
    GuestHello {
        /// Protocol version (1).
        version: u16,
        /// Free text naming the guest's implementation.
        agent: String,
    },
    /// `0x02`: the supervisor's greeting.
    SupervisorHello {
        /// Protocol version the supervisor will speak (1).
        version: u16,
        /// Largest frame `length` either side may send.
        max_frame: u32,
    },
    /// `0x10`: one request for the guest to answer.
    Request(Request),
    /// `0x11`: the guest's answer to request `id`.
    Response {
        /// The request's id.
        id: u64,
        /// Status, headers and body.
        response: Response,
    },
    /// `0x20`: one SQL statement on behalf of request `id`.
    Sql {
        /// The request's id.
        id: u64,
        /// One statement.
        statement: String,
        /// Parameters bound to `?`, `?NNN` in order.
        params: Vec<Value>,
    },
    /// `0x21`: a statement's result (or a `TX` success, with no columns and no rows).
    SqlResult(Rows),
    /// `0x22`: a statement failed.
    SqlError {
        /// The error code (1-7 in protocol version 1).
        code: u16,
        /// What went wrong.
        message: String,
    },
    /// `0x23`: a savepoint operation on behalf of request `id`.
    Tx {
        /// The request's id.
        id: u64,
        /// What to do.
        op: TxOp,
    },
    /// `0x7f`: a fatal error; the sender closes the connection after it.
    Error {
        /// What went wrong.
        message: String,
    },
}

/// A frame that cannot be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length field is 0: a frame has at least its type byte.
    EmptyFrame,
    /// The frame's `length` (type byte + payload) exceeds `max_frame`.
    TooLarge {
        /// The frame's `length`.
        length: u64,
        /// The limit in force.
        max_frame: u32,
    },
    /// The type byte is not a frame type of protocol version 1.
    UnknownType(u8),
    /// The payload ends inside a field.
    Truncated {
        /// The frame being decoded.
        frame: &'static str,
    },
    /// The payload has bytes after its last field.
    TrailingBytes {
        /// The frame being decoded.
        frame: &'static str,
        /// How many bytes are left over.
        extra: usize,
    },
    /// A `value` has an unknown tag.
    UnknownValueTag {
        /// The frame being decoded.
        frame: &'static str,
        /// The tag.
        tag: u8,
    },
    /// A `TX` frame has an unknown op.
    UnknownTxOp(u8),
    /// A `str` field is not valid UTF-8.
    InvalidUtf8 {
        /// The frame being decoded.
        frame: &'static str,
    },
    /// A [`Rows`] to encode has a row whose width differs from its column count.
    RowWidth {
        /// Number of columns.
        columns: usize,
        /// Number of values in the offending row.
        values: usize,
    },
    /// A `SQL_RESULT` has rows but no columns.
    RowsWithoutColumns {
        /// The claimed row count.
        row_count: u32,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::EmptyFrame => write!(f, "frame length 0 (it must count the type byte)"),
            FrameError::TooLarge { length, max_frame } => {
                write!(
                    f,
                    "frame of {length} bytes exceeds max_frame ({max_frame} bytes)"
                )
            }
            FrameError::UnknownType(t) => write!(f, "unknown frame type 0x{t:02x}"),
            FrameError::Truncated { frame } => {
                write!(f, "malformed {frame}: payload ends inside a field")
            }
            FrameError::TrailingBytes { frame, extra } => {
                write!(f, "malformed {frame}: {extra} bytes after the last field")
            }
            FrameError::UnknownValueTag { frame, tag } => {
                write!(f, "malformed {frame}: unknown value tag {tag}")
            }
            FrameError::UnknownTxOp(op) => write!(f, "malformed TX: unknown op {op}"),
            FrameError::InvalidUtf8 { frame } => {
                write!(f, "malformed {frame}: a str field is not valid UTF-8")
            }
            FrameError::RowWidth { columns, values } => {
                write!(
                    f,
                    "cannot encode SQL_RESULT: a row has {values} values for {columns} columns"
                )
            }
            FrameError::RowsWithoutColumns { row_count } => {
                write!(f, "malformed SQL_RESULT: {row_count} rows but no columns")
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Why [`read_frame`] failed.
#[derive(Debug)]
pub enum ReadError {
    /// The transport failed, or ended inside a frame (`UnexpectedEof`).
    Io(io::Error),
    /// The frame arrived whole but is malformed or too large.
    Frame(FrameError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                write!(f, "connection closed inside a frame")
            }
            ReadError::Io(e) => write!(f, "read failed: {e}"),
            ReadError::Frame(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io(e) => Some(e),
            ReadError::Frame(e) => Some(e),
        }
    }
}

impl From<FrameError> for ReadError {
    fn from(e: FrameError) -> Self {
        ReadError::Frame(e)
    }
}

impl Frame {
    /// The frame's type byte.
    pub fn kind(&self) -> u8 {
        match self {
            Frame::GuestHello { .. } => kind::HELLO_GUEST,
            Frame::SupervisorHello { .. } => kind::HELLO_SUPERVISOR,
            Frame::Request(_) => kind::REQUEST,
            Frame::Response { .. } => kind::RESPONSE,
            Frame::Sql { .. } => kind::SQL,
            Frame::SqlResult(_) => kind::SQL_RESULT,
            Frame::SqlError { .. } => kind::SQL_ERROR,
            Frame::Tx { .. } => kind::TX,
            Frame::Error { .. } => kind::ERROR,
        }
    }

    /// The protocol's name of the frame, for messages (`"SQL_RESULT"`).
    pub fn name(&self) -> &'static str {
        kind_name(self.kind()).unwrap_or("?")
    }

    /// Encodes the whole frame, length prefix included.
    ///
    /// # Errors
    ///
    /// [`FrameError::TooLarge`] when the frame's `length` would exceed `max_frame` (or a
    /// field does not fit its `u32` length).
    pub fn encode(&self, max_frame: u32) -> Result<Vec<u8>, FrameError> {
        let mut e = Encoder::new(self.kind(), 64);
        match self {
            Frame::GuestHello { version, agent } => {
                e.u16(*version);
                e.str(agent)?;
            }
            Frame::SupervisorHello { version, max_frame } => {
                e.u16(*version);
                e.u32(*max_frame);
            }
            Frame::Request(r) => {
                e.u64(r.id);
                e.str(&r.method)?;
                e.str(&r.path)?;
                e.str(&r.query)?;
                e.headers(&r.headers)?;
                e.bytes(&r.body)?;
            }
            Frame::Response { id, response } => {
                e.u64(*id);
                e.u16(response.status);
                e.headers(&response.headers)?;
                e.bytes(&response.body)?;
            }
            Frame::Sql {
                id,
                statement,
                params,
            } => e.sql(*id, statement, params)?,
            Frame::SqlResult(rows) => {
                e.count(rows.columns.len())?;
                for c in &rows.columns {
                    e.str(c)?;
                }
                e.count(rows.rows.len())?;
                for row in &rows.rows {
                    // A row must have exactly one value per column, or the frame would
                    // decode differently from what was meant.
                    if row.len() != rows.columns.len() {
                        return Err(FrameError::RowWidth {
                            columns: rows.columns.len(),
                            values: row.len(),
                        });
                    }
                    for v in row {
                        e.value(v)?;
                    }
                }
                e.u64(rows.rows_changed);
                e.i64(rows.last_insert_id);
            }
            Frame::SqlError { code, message } => {
                e.u16(*code);
                e.str(message)?;
            }
            Frame::Tx { id, op } => {
                e.u64(*id);
                e.u8(op.to_u8());
            }
            Frame::Error { message } => e.str(message)?,
        }
        e.finish(max_frame)
    }

    /// Decodes one frame from its type byte and payload (the bytes after the type).
    ///
    /// # Errors
    ///
    /// A [`FrameError`] naming what is malformed.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Frame, FrameError> {
        let name = kind_name(kind).ok_or(FrameError::UnknownType(kind))?;
        let mut d = Decoder {
            buf: payload,
            frame: name,
        };
        let frame = match kind {
            kind::HELLO_GUEST => Frame::GuestHello {
                version: d.u16()?,
                agent: d.str()?,
            },
            kind::HELLO_SUPERVISOR => Frame::SupervisorHello {
                version: d.u16()?,
                max_frame: d.u32()?,
            },
            kind::REQUEST => Frame::Request(Request {
                id: d.u64()?,
                method: d.str()?,
                path: d.str()?,
                query: d.str()?,
                headers: d.headers()?,
                body: d.bytes()?.to_vec(),
            }),
            kind::RESPONSE => Frame::Response {
                id: d.u64()?,
                response: Response {
                    status: d.u16()?,
                    headers: d.headers()?,
                    body: d.bytes()?.to_vec(),
                },
            },
            kind::SQL => {
                let id = d.u64()?;
                let statement = d.str()?;
                let n = d.u32()?;
                let mut params = Vec::with_capacity(d.capacity(n, 1));
                for _ in 0..n {
                    params.push(d.value()?);
                }
                Frame::Sql {
                    id,
                    statement,
                    params,
                }
            }
            kind::SQL_RESULT => Frame::SqlResult(d.rows()?),
            kind::SQL_ERROR => Frame::SqlError {
                code: d.u16()?,
                message: d.str()?,
            },
            kind::TX => {
                let id = d.u64()?;
                let op = d.u8()?;
                Frame::Tx {
                    id,
                    op: TxOp::from_u8(op).ok_or(FrameError::UnknownTxOp(op))?,
                }
            }
            kind::ERROR => Frame::Error { message: d.str()? },
            _ => return Err(FrameError::UnknownType(kind)),
        };
        if !d.buf.is_empty() {
            return Err(FrameError::TrailingBytes {
                frame: name,
                extra: d.buf.len(),
            });
        }
        Ok(frame)
    }
}

/// The protocol's name of frame type `kind`, or `None` if it is not one.
pub fn kind_name(kind: u8) -> Option<&'static str> {
    Some(match kind {
        kind::HELLO_GUEST | kind::HELLO_SUPERVISOR => "HELLO",
        kind::REQUEST => "REQUEST",
        kind::RESPONSE => "RESPONSE",
        kind::SQL => "SQL",
        kind::SQL_RESULT => "SQL_RESULT",
        kind::SQL_ERROR => "SQL_ERROR",
        kind::TX => "TX",
        kind::ERROR => "ERROR",
        _ => return None,
    })
}

/// Reads one frame.
///
/// Returns `Ok(None)` when the stream ends cleanly between frames. The length is checked
/// against `max_frame` before the payload is read (or allocated).
///
/// # Errors
///
/// [`ReadError::Io`] on a transport error or an end inside a frame; [`ReadError::Frame`]
/// on a frame that is too large or malformed.
pub fn read_frame<R: Read + ?Sized>(r: &mut R, max_frame: u32) -> Result<Option<Frame>, ReadError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < header.len() {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(ReadError::Io(io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    let length = u32::from_le_bytes(header);
    if length == 0 {
        return Err(FrameError::EmptyFrame.into());
    }
    if length > max_frame {
        return Err(FrameError::TooLarge {
            length: u64::from(length),
            max_frame,
        }
        .into());
    }
    let length = usize::try_from(length).map_err(|_| FrameError::TooLarge {
        length: u64::from(length),
        max_frame,
    })?;
    let mut data = vec![0u8; length];
    r.read_exact(&mut data).map_err(ReadError::Io)?;
    Ok(Some(Frame::decode(data[0], &data[1..])?))
}

/// Encodes `frame` and writes it with one `write_all`.
///
/// # Errors
///
/// `InvalidInput` (carrying the [`FrameError`]) when the frame exceeds `max_frame`, or
/// the transport's error.
pub fn write_frame<W: Write + ?Sized>(w: &mut W, frame: &Frame, max_frame: u32) -> io::Result<()> {
    let bytes = frame
        .encode(max_frame)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    w.write_all(&bytes)?;
    w.flush()
}

/// Encodes a `SQL` frame from borrowed parts (what [`Frame::encode`] does for
/// [`Frame::Sql`], without first copying the statement and parameters into a `Frame`).
///
/// # Errors
///
/// As [`Frame::encode`].
pub fn encode_sql(
    id: u64,
    statement: &str,
    params: &[Value],
    max_frame: u32,
) -> Result<Vec<u8>, FrameError> {
    let mut e = Encoder::new(kind::SQL, 32 + statement.len());
    e.sql(id, statement, params)?;
    e.finish(max_frame)
}

struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    fn new(kind: u8, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(&[0, 0, 0, 0, kind]);
        Encoder { buf }
    }
    /// Fills in the length prefix, checking it against `max_frame`.
    fn finish(mut self, max_frame: u32) -> Result<Vec<u8>, FrameError> {
        let length = self.buf.len() - 4;
        let too_large = || FrameError::TooLarge {
            length: u64::try_from(length).unwrap_or(u64::MAX),
            max_frame,
        };
        let length32 = u32::try_from(length).map_err(|_| too_large())?;
        if length32 > max_frame {
            return Err(too_large());
        }
        self.buf[..4].copy_from_slice(&length32.to_le_bytes());
        Ok(self.buf)
    }
    fn sql(&mut self, id: u64, statement: &str, params: &[Value]) -> Result<(), FrameError> {
        self.u64(id);
        self.str(statement)?;
        self.count(params.len())?;
        for v in params {
            self.value(v)?;
        }
        Ok(())
    }
    fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    fn count(&mut self, n: usize) -> Result<(), FrameError> {
        let n = u32::try_from(n).map_err(|_| FrameError::TooLarge {
            length: u64::try_from(n).unwrap_or(u64::MAX),
            max_frame: u32::MAX,
        })?;
        self.u32(n);
        Ok(())
    }
    fn bytes(&mut self, b: &[u8]) -> Result<(), FrameError> {
        self.count(b.len())?;
        self.buf.extend_from_slice(b);
        Ok(())
    }
    fn str(&mut self, s: &str) -> Result<(), FrameError> {
        self.bytes(s.as_bytes())
    }
    fn headers(&mut self, headers: &[(String, Vec<u8>)]) -> Result<(), FrameError> {
        self.count(headers.len())?;
        for (name, value) in headers {
            self.str(name)?;
            self.bytes(value)?;
        }
        Ok(())
    }
    fn value(&mut self, v: &Value) -> Result<(), FrameError> {
        match v {
            Value::Null => self.u8(tag::NULL),
            Value::Integer(i) => {
                self.u8(tag::INTEGER);
                self.i64(*i);
            }
            Value::Real(r) => {
                self.u8(tag::REAL);
                self.u64(r.to_bits());
            }
            Value::Text(s) => {
                self.u8(tag::TEXT);
                self.str(s)?;
            }
            Value::Blob(b) => {
                self.u8(tag::BLOB);
                self.bytes(b)?;
            }
        }
        Ok(())
    }
}

struct Decoder<'a> {
    buf: &'a [u8],
    frame: &'static str,
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.buf.len() < n {
            return Err(FrameError::Truncated { frame: self.frame });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FrameError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn i64(&mut self) -> Result<i64, FrameError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    fn len(&mut self) -> Result<usize, FrameError> {
        let n = self.u32()?;
        usize::try_from(n).map_err(|_| FrameError::Truncated { frame: self.frame })
    }
    fn bytes(&mut self) -> Result<&'a [u8], FrameError> {
        let n = self.len()?;
        self.take(n)
    }
    fn str(&mut self) -> Result<String, FrameError> {
        let b = self.bytes()?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(FrameError::InvalidUtf8 { frame: self.frame }),
        }
    }
    /// A capacity for `count` elements of at least `min_size` bytes each that the rest
    /// of the payload can actually hold: a lying count never allocates much.
    fn capacity(&self, count: u32, min_size: usize) -> usize {
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        count.min(self.buf.len() / min_size.max(1))
    }
    fn headers(&mut self) -> Result<Vec<(String, Vec<u8>)>, FrameError> {
        let n = self.u32()?;
        let mut headers = Vec::with_capacity(self.capacity(n, 8));
        for _ in 0..n {
            let name = self.str()?;
            let value = self.bytes()?.to_vec();
            headers.push((name, value));
        }
        Ok(headers)
    }
    fn value(&mut self) -> Result<Value, FrameError> {
        Ok(match self.u8()? {
            tag::NULL => Value::Null,
            tag::INTEGER => Value::Integer(self.i64()?),
            tag::REAL => Value::Real(f64::from_bits(self.u64()?)),
            tag::TEXT => Value::Text(self.str()?),
            tag::BLOB => Value::Blob(self.bytes()?.to_vec()),
            t => {
                return Err(FrameError::UnknownValueTag {
                    frame: self.frame,
                    tag: t,
                })
            }
        })
    }
    fn rows(&mut self) -> Result<Rows, FrameError> {
        let ncols = self.u32()?;
        let mut columns = Vec::with_capacity(self.capacity(ncols, 4));
        for _ in 0..ncols {
            columns.push(self.str()?);
        }
        let row_count = self.u32()?;
        if columns.is_empty() && row_count != 0 {
            return Err(FrameError::RowsWithoutColumns { row_count });
        }
        // Every value is at least its tag byte: reject an impossible count before
        // allocating for it.
        let values = u64::from(row_count) * u64::from(ncols);
        if values > u64::try_from(self.buf.len()).unwrap_or(u64::MAX) {
            return Err(FrameError::Truncated { frame: self.frame });
        }
        let mut rows = Vec::with_capacity(self.capacity(row_count, 1));
        for _ in 0..row_count {
            let mut row = Vec::with_capacity(columns.len());
            for _ in 0..ncols {
                row.push(self.value()?);
            }
            rows.push(row);
        }
        Ok(Rows {
            columns,
            rows,
            rows_changed: self.u64()?,
            last_insert_id: self.i64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: Frame) {
        let bytes = frame.encode(DEFAULT_MAX_FRAME).expect("encodes");
        let length = u32::from_le_bytes(bytes[..4].try_into().unwrap());
        assert_eq!(usize::try_from(length).unwrap(), bytes.len() - 4);
        let back = Frame::decode(bytes[4], &bytes[5..]).expect("decodes");
        assert_eq!(back, frame);
        let mut cursor = io::Cursor::new(bytes);
        let read = read_frame(&mut cursor, DEFAULT_MAX_FRAME).unwrap().unwrap();
        assert_eq!(read, frame);
        assert!(read_frame(&mut cursor, DEFAULT_MAX_FRAME)
            .unwrap()
            .is_none());
    }

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::GuestHello {
                version: 1,
                agent: "c-guest/1".into(),
            },
            Frame::SupervisorHello {
                version: 1,
                max_frame: DEFAULT_MAX_FRAME,
            },
            Frame::Request(Request {
                id: 7,
                method: "POST".into(),
                path: "/a/b".into(),
                query: "x=1&y=%20".into(),
                headers: vec![
                    ("content-type".into(), b"text/plain".to_vec()),
                    ("x-bin".into(), vec![0, 255, 10]),
                ],
                body: b"hello\0world".to_vec(),
            }),
            Frame::Response {
                id: u64::MAX,
                response: Response::text(201, "créé"),
            },
            Frame::Sql {
                id: 3,
                statement: "SELECT ?, ?, ?, ?, ?".into(),
                params: vec![
                    Value::Null,
                    Value::Integer(i64::MIN),
                    Value::Real(-1.5e300),
                    Value::Text("ünïcode".into()),
                    Value::Blob(vec![0, 1, 2, 255]),
                ],
            },
            Frame::SqlResult(Rows {
                columns: vec!["a".into(), "b".into()],
                rows: vec![
                    vec![Value::Integer(1), Value::Text("x".into())],
                    vec![Value::Null, Value::Blob(vec![])],
                ],
                rows_changed: 2,
                last_insert_id: -1,
            }),
            Frame::SqlResult(Rows::default()),
            Frame::SqlError {
                code: 2,
                message: "UNIQUE constraint failed".into(),
            },
            Frame::Tx {
                id: 9,
                op: TxOp::Begin,
            },
            Frame::Tx {
                id: 9,
                op: TxOp::Commit,
            },
            Frame::Tx {
                id: 9,
                op: TxOp::Rollback,
            },
            Frame::Error {
                message: "bye".into(),
            },
        ]
    }

    #[test]
    fn every_frame_round_trips() {
        for frame in all_frames() {
            round_trip(frame);
        }
    }

    #[test]
    fn matches_the_example_in_the_protocol_doc() {
        let hello = Frame::GuestHello {
            version: 1,
            agent: "c-guest/1".into(),
        };
        let mut expected = vec![0x10, 0, 0, 0, 0x01, 0x01, 0x00, 0x09, 0, 0, 0];
        expected.extend_from_slice(b"c-guest/1");
        assert_eq!(hello.encode(DEFAULT_MAX_FRAME).unwrap(), expected);

        let sup = [0x07, 0, 0, 0, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01];
        assert_eq!(
            Frame::decode(sup[4], &sup[5..]).unwrap(),
            Frame::SupervisorHello {
                version: 1,
                max_frame: 16 * 1024 * 1024
            }
        );

        let mut payload = vec![7, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0];
        payload.extend_from_slice(b"GET");
        payload.extend_from_slice(&[1, 0, 0, 0, b'/', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let Frame::Request(req) = Frame::decode(0x10, &payload).unwrap() else {
            panic!("not a request")
        };
        assert_eq!(
            (req.id, req.method.as_str(), req.path.as_str()),
            (7, "GET", "/")
        );
        assert!(req.query.is_empty() && req.headers.is_empty() && req.body.is_empty());

        let resp = Frame::Response {
            id: 7,
            response: Response::new(200).body("hello"),
        };
        let mut expected = vec![0x18, 0, 0, 0, 0x11, 7, 0, 0, 0, 0, 0, 0, 0, 0xc8, 0];
        expected.extend_from_slice(&[0, 0, 0, 0, 5, 0, 0, 0]);
        expected.extend_from_slice(b"hello");
        assert_eq!(resp.encode(DEFAULT_MAX_FRAME).unwrap(), expected);
    }

    #[test]
    fn encode_sql_matches_frame_encode() {
        let params = [Value::Integer(1), Value::Text("x".into()), Value::Null];
        let frame = Frame::Sql {
            id: 42,
            statement: "SELECT ?, ?, ?".into(),
            params: params.to_vec(),
        };
        assert_eq!(
            encode_sql(42, "SELECT ?, ?, ?", &params, DEFAULT_MAX_FRAME),
            frame.encode(DEFAULT_MAX_FRAME)
        );
        assert!(matches!(
            encode_sql(42, "SELECT ?, ?, ?", &params, 20),
            Err(FrameError::TooLarge { max_frame: 20, .. })
        ));
    }

    #[test]
    fn nan_round_trips_bit_for_bit() {
        let nan = f64::from_bits(0x7ff8_0000_dead_beef);
        let frame = Frame::Sql {
            id: 1,
            statement: String::new(),
            params: vec![Value::Real(nan)],
        };
        let bytes = frame.encode(DEFAULT_MAX_FRAME).unwrap();
        let Frame::Sql { params, .. } = Frame::decode(bytes[4], &bytes[5..]).unwrap() else {
            panic!()
        };
        let Value::Real(back) = params[0] else {
            panic!()
        };
        assert_eq!(back.to_bits(), nan.to_bits());
    }

    #[test]
    fn every_truncation_and_extension_is_rejected() {
        for frame in all_frames() {
            let bytes = frame.encode(DEFAULT_MAX_FRAME).unwrap();
            let (kind, payload) = (bytes[4], &bytes[5..]);
            for cut in 0..payload.len() {
                let err = Frame::decode(kind, &payload[..cut]).unwrap_err();
                assert!(
                    matches!(
                        err,
                        FrameError::Truncated { .. } | FrameError::TrailingBytes { .. }
                    ),
                    "{} cut at {cut}: {err}",
                    frame.name()
                );
            }
            let mut longer = payload.to_vec();
            longer.push(0);
            assert_eq!(
                Frame::decode(kind, &longer).unwrap_err(),
                FrameError::TrailingBytes {
                    frame: frame.name(),
                    extra: 1
                }
            );
        }
    }

    #[test]
    fn unknown_type_tag_and_op_are_rejected() {
        for t in [0x00, 0x03, 0x12, 0x24, 0x7e, 0x80, 0xff] {
            assert_eq!(Frame::decode(t, &[]), Err(FrameError::UnknownType(t)));
        }
        let mut sql = vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 5];
        assert_eq!(
            Frame::decode(kind::SQL, &sql),
            Err(FrameError::UnknownValueTag {
                frame: "SQL",
                tag: 5
            })
        );
        sql[16] = 0;
        assert!(Frame::decode(kind::SQL, &sql).is_ok());
        for op in [0, 4, 255] {
            let tx = [1, 0, 0, 0, 0, 0, 0, 0, op];
            assert_eq!(
                Frame::decode(kind::TX, &tx),
                Err(FrameError::UnknownTxOp(op))
            );
        }
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        for bad in [
            &[0xffu8][..],
            &[0xc0, 0x80],
            &[0xed, 0xa0, 0x80],
            &[b'a', 0xe2, 0x82],
        ] {
            let mut payload = u32::try_from(bad.len()).unwrap().to_le_bytes().to_vec();
            payload.extend_from_slice(bad);
            assert_eq!(
                Frame::decode(kind::ERROR, &payload),
                Err(FrameError::InvalidUtf8 { frame: "ERROR" })
            );
        }
        // Header values and blobs are bytes, not str.
        let frame = Frame::Request(Request {
            id: 1,
            method: "GET".into(),
            path: "/".into(),
            query: String::new(),
            headers: vec![("x".into(), vec![0xff])],
            body: vec![0xff],
        });
        round_trip(frame);
    }

    #[test]
    fn sql_result_counts_are_checked() {
        // No columns but one row.
        let mut p = vec![0, 0, 0, 0, 1, 0, 0, 0];
        p.extend_from_slice(&[0; 16]);
        assert_eq!(
            Frame::decode(kind::SQL_RESULT, &p),
            Err(FrameError::RowsWithoutColumns { row_count: 1 })
        );
        // One column, u32::MAX rows: rejected before allocating.
        let mut p = vec![1, 0, 0, 0, 1, 0, 0, 0, b'a', 0xff, 0xff, 0xff, 0xff];
        p.extend_from_slice(&[0; 16]);
        assert_eq!(
            Frame::decode(kind::SQL_RESULT, &p),
            Err(FrameError::Truncated {
                frame: "SQL_RESULT"
            })
        );
        // Huge header and param counts do not allocate either.
        let p = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            Frame::decode(kind::SQL, &p),
            Err(FrameError::Truncated { frame: "SQL" })
        );
        // A row with the wrong width cannot be encoded.
        let bad = Frame::SqlResult(Rows {
            columns: vec!["a".into()],
            rows: vec![vec![]],
            ..Rows::default()
        });
        assert!(bad.encode(DEFAULT_MAX_FRAME).is_err());
    }

    #[test]
    fn frame_size_limits() {
        let frame = Frame::Error {
            message: "x".repeat(100),
        };
        // length = 1 type + 4 len + 100
        assert!(frame.encode(105).is_ok());
        assert_eq!(
            frame.encode(104),
            Err(FrameError::TooLarge {
                length: 105,
                max_frame: 104
            })
        );
        let bytes = frame.encode(105).unwrap();
        let err = read_frame(&mut io::Cursor::new(&bytes), 104).unwrap_err();
        assert!(matches!(
            err,
            ReadError::Frame(FrameError::TooLarge {
                length: 105,
                max_frame: 104
            })
        ));
        // A huge announced length is refused before anything is allocated or read.
        let huge = [0xff, 0xff, 0xff, 0xff, kind::ERROR];
        assert!(matches!(
            read_frame(&mut io::Cursor::new(&huge), DEFAULT_MAX_FRAME),
            Err(ReadError::Frame(FrameError::TooLarge { .. }))
        ));
        assert!(matches!(
            read_frame(&mut io::Cursor::new(&[0, 0, 0, 0]), DEFAULT_MAX_FRAME),
            Err(ReadError::Frame(FrameError::EmptyFrame))
        ));
    }

    #[test]
    fn eof_inside_a_frame_is_an_error_eof_between_frames_is_not() {
        let bytes = Frame::Error {
            message: "x".into(),
        }
        .encode(DEFAULT_MAX_FRAME)
        .unwrap();
        for cut in 1..bytes.len() {
            let err =
                read_frame(&mut io::Cursor::new(&bytes[..cut]), DEFAULT_MAX_FRAME).unwrap_err();
            assert!(
                matches!(&err, ReadError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof),
                "cut {cut}: {err}"
            );
        }
        assert!(read_frame(&mut io::Cursor::new(&[]), DEFAULT_MAX_FRAME)
            .unwrap()
            .is_none());
    }

    #[test]
    fn reads_across_short_reads() {
        /// Returns one byte per read call.
        struct Trickle(io::Cursor<Vec<u8>>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(1);
                self.0.read(&mut buf[..n])
            }
        }
        let frames = all_frames();
        let mut bytes = Vec::new();
        for f in &frames {
            bytes.extend(f.encode(DEFAULT_MAX_FRAME).unwrap());
        }
        let mut r = Trickle(io::Cursor::new(bytes));
        for f in &frames {
            assert_eq!(&read_frame(&mut r, DEFAULT_MAX_FRAME).unwrap().unwrap(), f);
        }
        assert!(read_frame(&mut r, DEFAULT_MAX_FRAME).unwrap().is_none());
    }
}
