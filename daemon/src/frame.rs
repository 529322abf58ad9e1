//! The supervisor's side of the guest protocol (`docs/protocol.md`): reading frames from a
//! guest (strictly: any malformed frame is an error naming what was wrong) and writing the
//! supervisor's frames. The guest is untrusted: lengths are checked before anything is
//! allocated, and nothing it sends can make this code panic.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Protocol version spoken.
pub const VERSION: u16 = 1;
/// Default largest frame.
pub const MAX_FRAME: u32 = 16 << 20;

/// A SQL value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// NULL
    Null,
    /// INTEGER
    Integer(i64),
    /// REAL
    Real(f64),
    /// TEXT
    Text(String),
    /// BLOB
    Blob(Vec<u8>),
}

/// A frame sent by a guest.
#[derive(Debug, Clone, PartialEq)]
pub enum GuestFrame {
    /// handshake
    Hello {
        /// protocol version
        version: u16,
        /// free text
        agent: String,
    },
    /// the answer to a request
    Response {
        /// request id
        id: u64,
        /// HTTP status
        status: u16,
        /// headers
        headers: Vec<(String, Vec<u8>)>,
        /// body
        body: Vec<u8>,
    },
    /// one SQL statement
    Sql {
        /// request id
        id: u64,
        /// the statement
        statement: String,
        /// bound parameters
        params: Vec<Value>,
    },
    /// savepoint operation: 1 begin, 2 commit, 3 rollback
    Tx {
        /// request id
        id: u64,
        /// operation
        op: u8,
    },
    /// fatal error from the guest
    Error(String),
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// the guest closed the socket
    #[error("guest closed its socket")]
    Eof,
    /// I/O error on the socket
    #[error("guest socket: {0}")]
    Io(#[from] std::io::Error),
    /// the frame is malformed
    #[error("malformed frame: {0}")]
    Malformed(String),
}

struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], FrameError> {
        if self.b.len() < n {
            return Err(FrameError::Malformed(format!("truncated {what}")));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self, w: &str) -> Result<u8, FrameError> {
        Ok(self.take(1, w)?[0])
    }
    fn u16(&mut self, w: &str) -> Result<u16, FrameError> {
        Ok(u16::from_le_bytes(
            self.take(2, w)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self, w: &str) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(
            self.take(4, w)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self, w: &str) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(
            self.take(8, w)?.try_into().expect("8 bytes"),
        ))
    }
    fn bytes(&mut self, w: &str) -> Result<Vec<u8>, FrameError> {
        let n = self.u32(w)? as usize;
        Ok(self.take(n, w)?.to_vec())
    }
    fn str(&mut self, w: &str) -> Result<String, FrameError> {
        String::from_utf8(self.bytes(w)?)
            .map_err(|_| FrameError::Malformed(format!("{w} is not UTF-8")))
    }
    fn count(&mut self, w: &str, min_item: usize) -> Result<usize, FrameError> {
        let n = self.u32(w)? as usize;
        // every item takes at least `min_item` bytes: refuse counts the frame cannot hold
        if n.saturating_mul(min_item) > self.b.len() {
            return Err(FrameError::Malformed(format!(
                "{w} count {n} exceeds the frame"
            )));
        }
        Ok(n)
    }
    fn headers(&mut self) -> Result<Vec<(String, Vec<u8>)>, FrameError> {
        let n = self.count("headers", 8)?;
        (0..n)
            .map(|_| Ok((self.str("header name")?, self.bytes("header value")?)))
            .collect()
    }
    fn value(&mut self) -> Result<Value, FrameError> {
        Ok(match self.u8("value tag")? {
            0 => Value::Null,
            1 => Value::Integer(i64::from_le_bytes(
                self.take(8, "integer")?.try_into().expect("8 bytes"),
            )),
            2 => Value::Real(f64::from_le_bytes(
                self.take(8, "real")?.try_into().expect("8 bytes"),
            )),
            3 => Value::Text(self.str("text")?),
            4 => Value::Blob(self.bytes("blob")?),
            t => return Err(FrameError::Malformed(format!("unknown value tag {t}"))),
        })
    }
    fn end(&self) -> Result<(), FrameError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Malformed(format!(
                "{} trailing bytes",
                self.b.len()
            )))
        }
    }
}

/// Decode one guest frame (type byte + payload).
pub fn decode(frame: &[u8]) -> Result<GuestFrame, FrameError> {
    let mut c = Cursor { b: frame };
    let f = match c.u8("frame type")? {
        0x01 => GuestFrame::Hello {
            version: c.u16("version")?,
            agent: c.str("agent")?,
        },
        0x11 => GuestFrame::Response {
            id: c.u64("id")?,
            status: c.u16("status")?,
            headers: c.headers()?,
            body: c.bytes("body")?,
        },
        0x20 => {
            let id = c.u64("id")?;
            let statement = c.str("statement")?;
            let n = c.count("params", 1)?;
            let params = (0..n).map(|_| c.value()).collect::<Result<_, _>>()?;
            GuestFrame::Sql {
                id,
                statement,
                params,
            }
        }
        0x23 => GuestFrame::Tx {
            id: c.u64("id")?,
            op: c.u8("op")?,
        },
        0x7f => GuestFrame::Error(c.str("message")?),
        t => {
            return Err(FrameError::Malformed(format!(
                "unknown frame type 0x{t:02x}"
            )))
        }
    };
    c.end()?;
    Ok(f)
}

/// Read one frame from the guest, refusing frames above `max`.
pub async fn read<R: AsyncReadExt + Unpin>(r: &mut R, max: u32) -> Result<GuestFrame, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Eof),
        Err(e) => return Err(e.into()),
    }
    let n = u32::from_le_bytes(len);
    if n == 0 || n > max {
        return Err(FrameError::Malformed(format!(
            "frame length {n} outside 1..={max}"
        )));
    }
    let mut buf = vec![0u8; n as usize];
    r.read_exact(&mut buf).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FrameError::Eof
        } else {
            e.into()
        }
    })?;
    decode(&buf)
}

/// Builds one outgoing frame.
#[derive(Debug)]
pub struct Out(Vec<u8>);

impl Out {
    fn new(kind: u8) -> Self {
        Out(vec![0, 0, 0, 0, kind])
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(self, b: &[u8]) -> Self {
        let mut s = self.u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        s.0.extend_from_slice(b);
        s
    }
    fn value(mut self, v: &Value) -> Self {
        match v {
            Value::Null => self.0.push(0),
            Value::Integer(i) => {
                self.0.push(1);
                self.0.extend_from_slice(&i.to_le_bytes());
            }
            Value::Real(f) => {
                self.0.push(2);
                self.0.extend_from_slice(&f.to_le_bytes());
            }
            Value::Text(t) => {
                self.0.push(3);
                return self.bytes(t.as_bytes());
            }
            Value::Blob(b) => {
                self.0.push(4);
                return self.bytes(b);
            }
        }
        self
    }
    /// The finished frame, length prefix filled in.
    pub fn finish(mut self) -> Vec<u8> {
        let n = u32::try_from(self.0.len() - 4).unwrap_or(u32::MAX);
        self.0[..4].copy_from_slice(&n.to_le_bytes());
        self.0
    }

    /// `HELLO` from the supervisor.
    pub fn hello(max_frame: u32) -> Vec<u8> {
        Out::new(0x02).u16(VERSION).u32(max_frame).finish()
    }

    /// `REQUEST`.
    pub fn request(
        id: u64,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(String, Vec<u8>)],
        body: &[u8],
    ) -> Vec<u8> {
        let mut o = Out::new(0x10)
            .u64(id)
            .bytes(method.as_bytes())
            .bytes(path.as_bytes())
            .bytes(query.as_bytes())
            .u32(u32::try_from(headers.len()).unwrap_or(u32::MAX));
        for (k, v) in headers {
            o = o.bytes(k.as_bytes()).bytes(v);
        }
        o.bytes(body).finish()
    }

    /// `SQL_RESULT`.
    pub fn sql_result(
        columns: &[String],
        rows: &[Vec<Value>],
        rows_changed: u64,
        last_insert_id: i64,
    ) -> Vec<u8> {
        let mut o = Out::new(0x21).u32(u32::try_from(columns.len()).unwrap_or(u32::MAX));
        for c in columns {
            o = o.bytes(c.as_bytes());
        }
        o = o.u32(u32::try_from(rows.len()).unwrap_or(u32::MAX));
        for r in rows {
            for v in r {
                o = o.value(v);
            }
        }
        o.u64(rows_changed).i64(last_insert_id).finish()
    }

    /// `SQL_ERROR`.
    pub fn sql_error(code: u16, message: &str) -> Vec<u8> {
        Out::new(0x22).u16(code).bytes(message.as_bytes()).finish()
    }

    /// `ERROR`.
    pub fn error(message: &str) -> Vec<u8> {
        Out::new(0x7f).bytes(message.as_bytes()).finish()
    }
}

/// Write a finished frame.
pub async fn write<W: AsyncWriteExt + Unpin>(w: &mut W, frame: &[u8]) -> std::io::Result<()> {
    w.write_all(frame).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guest_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![kind];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_sql_with_every_value_type() {
        let mut p = Vec::new();
        p.extend_from_slice(&7u64.to_le_bytes());
        p.extend_from_slice(&8u32.to_le_bytes());
        p.extend_from_slice(b"SELECT ?");
        p.extend_from_slice(&5u32.to_le_bytes());
        p.push(0);
        p.push(1);
        p.extend_from_slice(&(-3i64).to_le_bytes());
        p.push(2);
        p.extend_from_slice(&1.5f64.to_le_bytes());
        p.push(3);
        p.extend_from_slice(&2u32.to_le_bytes());
        p.extend_from_slice(b"hi");
        p.push(4);
        p.extend_from_slice(&1u32.to_le_bytes());
        p.push(0xff);
        assert_eq!(
            decode(&guest_frame(0x20, &p)).unwrap(),
            GuestFrame::Sql {
                id: 7,
                statement: "SELECT ?".into(),
                params: vec![
                    Value::Null,
                    Value::Integer(-3),
                    Value::Real(1.5),
                    Value::Text("hi".into()),
                    Value::Blob(vec![0xff])
                ]
            }
        );
    }

    #[test]
    fn rejects_malformed_frames() {
        assert!(decode(&[]).is_err());
        assert!(decode(&[0x55]).is_err());
        assert!(decode(&guest_frame(0x01, &[1])).is_err()); // truncated version
        assert!(decode(&guest_frame(0x01, &[1, 0, 0, 0, 0, 0, 9])).is_err()); // trailing
        let mut bad_utf8 = vec![1, 0];
        bad_utf8.extend_from_slice(&2u32.to_le_bytes());
        bad_utf8.extend_from_slice(&[0xff, 0xfe]);
        assert!(decode(&guest_frame(0x01, &bad_utf8)).is_err());
        // a huge count that the frame cannot hold is refused before allocating
        let mut huge = 1u64.to_le_bytes().to_vec();
        huge.extend_from_slice(&200u16.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&guest_frame(0x11, &huge)).is_err());
        let mut tag = 1u64.to_le_bytes().to_vec();
        tag.extend_from_slice(&0u32.to_le_bytes());
        tag.extend_from_slice(&1u32.to_le_bytes());
        tag.push(9);
        assert!(decode(&guest_frame(0x20, &tag)).is_err());
    }

    #[tokio::test]
    async fn read_refuses_oversized_and_empty_frames() {
        let mut big: &[u8] = &(MAX_FRAME + 1).to_le_bytes();
        assert!(matches!(
            read(&mut big, MAX_FRAME).await,
            Err(FrameError::Malformed(_))
        ));
        let mut zero: &[u8] = &0u32.to_le_bytes();
        assert!(matches!(
            read(&mut zero, MAX_FRAME).await,
            Err(FrameError::Malformed(_))
        ));
        let mut eof: &[u8] = &[];
        assert!(matches!(
            read(&mut eof, MAX_FRAME).await,
            Err(FrameError::Eof)
        ));
    }

    #[test]
    fn outgoing_lengths_are_right() {
        let f = Out::hello(MAX_FRAME);
        assert_eq!(
            u32::from_le_bytes(f[..4].try_into().unwrap()) as usize,
            f.len() - 4
        );
        let r = Out::sql_result(&["a".into()], &[vec![Value::Integer(1)]], 0, 0);
        assert_eq!(
            u32::from_le_bytes(r[..4].try_into().unwrap()) as usize,
            r.len() - 4
        );
    }
}
