//! The guest's side of the conversation: handshake, then requests one at a time.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{BorrowedFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::ctx::{Call, Channel, Ctx};
use crate::frame::{encode_sql, read_frame, Frame, ReadError, DEFAULT_MAX_FRAME, VERSION};
use crate::http::{Request, Response};
use crate::sql::{Rows, SqlError, SqlErrorCode};
use crate::GUEST_SOCKET_FD;

/// The `agent` this library announces in its `HELLO`.
pub const AGENT: &str = concat!("warren-guest/", env!("CARGO_PKG_VERSION"));

/// Why [`serve_on`] stopped.
#[derive(Debug)]
pub enum Error {
    /// Reading or writing the socket failed.
    Io(io::Error),
    /// The supervisor closed the connection (or reset it) in the middle of a request
    /// (`request` is its id), or during the handshake (`None`). The request's writes are
    /// rolled back; this is how a supervisor ends a guest that ran out of time.
    Disconnected {
        /// The request being handled, if any.
        request: Option<u64>,
    },
    /// The supervisor broke the protocol (a malformed frame, or one not allowed at that
    /// point). The guest sent an `ERROR` frame saying so.
    Protocol(String),
    /// The supervisor sent an `ERROR` frame.
    Supervisor(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "guest socket: {e}"),
            Error::Disconnected { request: Some(id) } => {
                write!(
                    f,
                    "the supervisor closed the connection during request {id}"
                )
            }
            Error::Disconnected { request: None } => {
                write!(f, "the supervisor closed the connection")
            }
            Error::Protocol(m) => write!(f, "protocol error: {m}"),
            Error::Supervisor(m) => write!(f, "the supervisor ended the conversation: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// What a handler may return: a [`Response`], or a `Result` whose both sides are
/// responses (or errors that become one), so a handler can use `?`.
pub trait IntoResponse {
    /// The response to send.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

impl IntoResponse for SqlError {
    /// `500` with the error as a text body (the request's writes are rolled back).
    fn into_response(self) -> Response {
        Response::text(500, format!("storage error: {self}"))
    }
}

/// Serves requests on fd 3 until the supervisor closes it, then exits the process.
///
/// Sends `HELLO`, then for each `REQUEST` calls `handler` with a [`Ctx`] and the
/// [`Request`] and sends what it returns as the `RESPONSE`. A handler that panics
/// answers `500` (the panic message goes to stderr, the guest's log); its writes are
/// rolled back.
///
/// Exit status: `0` when the supervisor closes the connection (between requests, or in
/// the middle of one, which it does to end a guest); `1` on a protocol error (after
/// sending an `ERROR` frame) or when the supervisor sends `ERROR`; `2` when fd 3 is not
/// open (the program was not started by `warrend`). The reason goes to stderr.
pub fn serve<F, R>(handler: F) -> !
where
    F: FnMut(&mut Ctx<'_>, Request) -> R,
    R: IntoResponse,
{
    let socket = match guest_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "warren-guest: fd {GUEST_SOCKET_FD} is not open ({e}): a guest must be \
                 started by warrend, which passes the guest socket as fd {GUEST_SOCKET_FD}"
            );
            std::process::exit(2)
        }
    };
    match serve_on(socket, handler) {
        Ok(()) => std::process::exit(0),
        Err(e @ Error::Disconnected { .. }) => {
            eprintln!("warren-guest: {e}");
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("warren-guest: {e}");
            std::process::exit(1)
        }
    }
}

/// Takes ownership of fd 3, after checking that it is open.
fn guest_socket() -> io::Result<UnixStream> {
    // SAFETY: `borrow_raw` needs fd 3 to stay open while the borrow lives; the borrow
    // lives only for the `dup` below, and nothing else in this process closes fd 3 (the
    // guest does not own it until `from_raw_fd` below). If fd 3 is not open at all the
    // `dup` fails with EBADF and nothing else happens.
    let probe = unsafe { BorrowedFd::borrow_raw(GUEST_SOCKET_FD) };
    drop(probe.try_clone_to_owned()?);
    // SAFETY: fd 3 is open (the `dup` above succeeded) and was handed to this program
    // for the guest protocol: nothing else in the process owns or closes it, so the
    // `UnixStream` may own it from here on.
    Ok(unsafe { UnixStream::from_raw_fd(GUEST_SOCKET_FD) })
}

/// [`serve`] on any transport: the handshake and request loop, without exiting.
///
/// Returns `Ok(())` when the supervisor closes the connection between requests (or
/// before the handshake). Useful to run a guest's handlers against a fake supervisor
/// in tests (see the crate's tests for one over `UnixStream::pair()`).
///
/// # Errors
///
/// See [`Error`].
pub fn serve_on<T, F, R>(transport: T, mut handler: F) -> Result<(), Error>
where
    T: Read + Write,
    F: FnMut(&mut Ctx<'_>, Request) -> R,
    R: IntoResponse,
{
    let mut conn = Conn {
        io: transport,
        max_frame: DEFAULT_MAX_FRAME,
        fault: None,
    };
    if !conn.hello()? {
        return Ok(());
    }
    while let Some(request) = conn.next_request()? {
        let id = request.id;
        let response = {
            let mut ctx = Ctx::new(&mut conn, id);
            match catch_unwind(AssertUnwindSafe(|| {
                handler(&mut ctx, request).into_response()
            })) {
                Ok(r) => r,
                Err(_) => Response::text(500, "internal error: the request handler panicked"),
            }
        };
        if let Some(fault) = conn.fault.take() {
            return Err(fault);
        }
        conn.respond(id, response)?;
    }
    Ok(())
}

struct Conn<T> {
    io: T,
    max_frame: u32,
    /// Set when the connection failed during a request: every later call fails with
    /// [`SqlErrorCode::Disconnected`] and the loop ends after the handler returns.
    fault: Option<Error>,
}

impl<T: Read + Write> Conn<T> {
    fn send(&mut self, frame: &Frame, request: Option<u64>) -> Result<(), Error> {
        let bytes = frame.encode(self.max_frame).map_err(|e| {
            Error::Io(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot send {}: {e}", frame.name()),
            ))
        })?;
        self.write(&bytes, request)
    }

    fn write(&mut self, bytes: &[u8], request: Option<u64>) -> Result<(), Error> {
        self.io
            .write_all(bytes)
            .and_then(|()| self.io.flush())
            .map_err(|e| io_error(e, request))
    }

    /// Reads one frame; a malformed one is a protocol error (reported to the supervisor).
    fn recv(&mut self, request: Option<u64>) -> Result<Option<Frame>, Error> {
        match read_frame(&mut self.io, self.max_frame) {
            Ok(frame) => Ok(frame),
            Err(ReadError::Frame(e)) => Err(self.fail(e.to_string())),
            Err(ReadError::Io(e)) => Err(io_error(e, request)),
        }
    }

    /// Tells the supervisor about a protocol error with an `ERROR` frame (best effort)
    /// and returns it as an [`Error`]; the caller then ends the conversation.
    fn fail(&mut self, message: String) -> Error {
        let mut text = message.clone();
        let room = usize::try_from(self.max_frame)
            .unwrap_or(usize::MAX)
            .saturating_sub(5);
        if text.len() > room {
            let mut end = room;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        // The conversation is over either way; a failed send changes nothing.
        let _ = self.send(&Frame::Error { message: text }, None);
        Error::Protocol(message)
    }

    /// Sends `HELLO` and reads the supervisor's. `Ok(false)`: closed before answering.
    fn hello(&mut self) -> Result<bool, Error> {
        self.send(
            &Frame::GuestHello {
                version: VERSION,
                agent: AGENT.to_owned(),
            },
            None,
        )?;
        match self.recv(None)? {
            None => Ok(false),
            Some(Frame::SupervisorHello { version, max_frame }) if version == VERSION => {
                self.max_frame = max_frame;
                Ok(true)
            }
            Some(Frame::SupervisorHello { version, .. }) => Err(self.fail(format!(
                "unsupported protocol version {version}: this guest speaks {VERSION}"
            ))),
            Some(Frame::Error { message }) => Err(Error::Supervisor(message)),
            Some(other) => Err(self.fail(format!(
                "expected the supervisor's HELLO, got {} (0x{:02x})",
                other.name(),
                other.kind()
            ))),
        }
    }

    /// The next request, or `None` when the supervisor closed the connection.
    fn next_request(&mut self) -> Result<Option<Request>, Error> {
        match self.recv(None)? {
            None => Ok(None),
            Some(Frame::Request(r)) => Ok(Some(r)),
            Some(Frame::Error { message }) => Err(Error::Supervisor(message)),
            Some(other) => Err(self.fail(format!(
                "expected REQUEST, got {} (0x{:02x}) outside a request",
                other.name(),
                other.kind()
            ))),
        }
    }

    /// Sends the `RESPONSE`; a response the supervisor would refuse (bad status or
    /// header, larger than `max_frame`) becomes a `500` saying why.
    fn respond(&mut self, id: u64, mut response: Response) -> Result<(), Error> {
        if let Err(why) = response.normalize() {
            eprintln!("warren-guest: request {id}: invalid response ({why}); answering 500");
            response = Response::text(500, format!("internal error: invalid response: {why}"));
        }
        let bytes = match (Frame::Response { id, response }).encode(self.max_frame) {
            Ok(bytes) => bytes,
            Err(e) => {
                eprintln!("warren-guest: request {id}: response not sent: {e}; answering 500");
                let short = Frame::Response {
                    id,
                    response: Response::text(500, "internal error: response too large"),
                };
                match short.encode(self.max_frame) {
                    Ok(bytes) => bytes,
                    Err(_) => {
                        let bare = Frame::Response {
                            id,
                            response: Response::new(500),
                        };
                        match bare.encode(self.max_frame) {
                            Ok(bytes) => bytes,
                            Err(e) => return Err(self.fail(format!("max_frame too small: {e}"))),
                        }
                    }
                }
            }
        };
        self.write(&bytes, Some(id))
    }
}

impl<T: Read + Write> Channel for Conn<T> {
    fn call(&mut self, request: u64, call: Call<'_>) -> Result<Rows, SqlError> {
        if let Some(fault) = &self.fault {
            return Err(SqlError::new(SqlErrorCode::Disconnected, fault.to_string()));
        }
        let (name, encoded) = match call {
            Call::Sql { statement, params } => (
                "SQL",
                encode_sql(request, statement, params, self.max_frame),
            ),
            Call::Tx(op) => ("TX", Frame::Tx { id: request, op }.encode(self.max_frame)),
        };
        let bytes = match encoded {
            Ok(bytes) => bytes,
            Err(e) => {
                return Err(SqlError::new(
                    SqlErrorCode::TooLarge,
                    format!("{name} not sent: {e}"),
                ))
            }
        };
        let answer = match self.write(&bytes, Some(request)) {
            Ok(()) => self.recv(Some(request)),
            Err(e) => Err(e),
        };
        let fault = match answer {
            Ok(Some(Frame::SqlResult(rows))) => return Ok(rows),
            Ok(Some(Frame::SqlError { code, message })) => {
                return Err(SqlError::new(SqlErrorCode::from_u16(code), message))
            }
            Ok(Some(Frame::Error { message })) => Error::Supervisor(message),
            Ok(Some(other)) => self.fail(format!(
                "expected SQL_RESULT or SQL_ERROR after {name}, got {} (0x{:02x})",
                other.name(),
                other.kind()
            )),
            Ok(None) => Error::Disconnected {
                request: Some(request),
            },
            Err(e) => e,
        };
        let message = fault.to_string();
        self.fault = Some(fault);
        Err(SqlError::new(SqlErrorCode::Disconnected, message))
    }
}

/// A closed or reset connection is the supervisor ending the guest, not a failure.
fn io_error(e: io::Error, request: Option<u64>) -> Error {
    match e.kind() {
        io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted => Error::Disconnected { request },
        _ => Error::Io(e),
    }
}
