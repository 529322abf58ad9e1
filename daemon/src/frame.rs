//! The guest protocol's transport on the supervisor's side: reading and writing frames on a
//! guest socket asynchronously. The codec itself is `warren_guest::frame` — the same one the
//! guest SDK uses, so both sides cannot disagree. The guest is untrusted: a frame's length is
//! checked against the limit before anything is allocated, and decoding is strict.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
pub use warren_guest::frame::{Frame, TxOp};

/// Protocol version spoken.
pub const VERSION: u16 = 1;
/// Largest frame either side may send (announced in the supervisor's `HELLO`).
pub const MAX_FRAME: u32 = 16 << 20;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// the guest closed (or reset) its socket
    #[error("guest closed its socket")]
    Eof,
    /// I/O error on the socket
    #[error("guest socket: {0}")]
    Io(#[from] std::io::Error),
    /// the frame is malformed
    #[error("malformed frame: {0}")]
    Malformed(String),
}

fn closed(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
    )
}

/// Read one frame from the guest, refusing frames above `max`.
pub async fn read<R: AsyncReadExt + Unpin>(r: &mut R, max: u32) -> Result<Frame, FrameError> {
    let mut len = [0u8; 4];
    if let Err(e) = r.read_exact(&mut len).await {
        return Err(if closed(&e) {
            FrameError::Eof
        } else {
            e.into()
        });
    }
    let n = u32::from_le_bytes(len);
    if n == 0 || n > max {
        return Err(FrameError::Malformed(format!(
            "frame length {n} outside 1..={max}"
        )));
    }
    let mut buf = vec![0u8; usize::try_from(n).unwrap_or(usize::MAX)];
    if let Err(e) = r.read_exact(&mut buf).await {
        return Err(if closed(&e) {
            FrameError::Eof
        } else {
            e.into()
        });
    }
    Frame::decode(buf[0], &buf[1..]).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Write one frame. A frame that does not fit `MAX_FRAME` is an `InvalidData` error.
pub async fn write<W: AsyncWriteExt + Unpin>(w: &mut W, frame: &Frame) -> std::io::Result<()> {
    let bytes = frame
        .encode(MAX_FRAME)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    w.write_all(&bytes).await
}

/// The protocol's name of a frame, for messages.
pub fn name(f: &Frame) -> &'static str {
    warren_guest::frame::kind_name(f.kind()).unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_oversized_empty_and_garbage_frames_before_allocating() {
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
        let mut garbage: &[u8] = &[2, 0, 0, 0, 0x55, 0];
        assert!(matches!(
            read(&mut garbage, MAX_FRAME).await,
            Err(FrameError::Malformed(_))
        ));
        let mut truncated: &[u8] = &[9, 0, 0, 0, 0x01];
        assert!(matches!(
            read(&mut truncated, MAX_FRAME).await,
            Err(FrameError::Eof)
        ));
    }

    #[tokio::test]
    async fn round_trips_through_the_shared_codec() {
        let f = Frame::GuestHello {
            version: 1,
            agent: "test".into(),
        };
        let mut out = Vec::new();
        write(&mut out, &f).await.unwrap();
        let mut r: &[u8] = &out;
        assert_eq!(read(&mut r, MAX_FRAME).await.unwrap(), f);
    }
}
