//! The error type of the SDK, and the parsing of warrend's JSON error bodies.
//!
//! Every error the daemon itself produces has the body
//! `{"error": {"kind": "client", "code": "not_found", "message": "..."}}`; [`Error::from_response`]
//! turns such a body (or anything else that came back with an error status) into an [`Error`].

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The result type of the SDK.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to warrend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The control socket could not be reached (no daemon, wrong path, no permission).
    #[error(
        "cannot connect to {}: {} ({})",
        socket.display(),
        io_message(source),
        connect_hint(source)
    )]
    Connect {
        /// The socket path that was tried.
        socket: PathBuf,
        /// Why the connection failed.
        #[source]
        source: io::Error,
    },
    /// The daemon answered with one of its JSON errors.
    #[error("{message} ({code})")]
    Api {
        /// The HTTP status (400..=599).
        status: u16,
        /// Whose fault it is: `client`, `guest` or `server`.
        kind: String,
        /// The machine-readable code, e.g. `not_found`, `bad_name`, `guest_timeout`.
        code: String,
        /// The human-readable message.
        message: String,
    },
    /// The daemon answered something this client cannot read.
    #[error("unexpected answer from warrend: {0}")]
    Protocol(String),
    /// The connection failed after it was established (the daemon went away mid-request).
    #[error("{context}: {}", io_message(source))]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The caller passed something that cannot be sent (an empty name, a bad header, a bad limit).
    #[error("{0}")]
    InvalidArgument(String),
}

impl Error {
    /// The error for a non-success answer of the daemon: its JSON error body when there is one,
    /// otherwise a [`Error::Protocol`] that quotes the start of the body.
    pub fn from_response(status: u16, body: &[u8]) -> Error {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(ErrorBody { error }) => Error::Api {
                status,
                kind: error.kind,
                code: error.code,
                message: error.message,
            },
            Err(_) => Error::Protocol(format!(
                "HTTP {status} without a warren error body{}",
                quote_body(body)
            )),
        }
    }

    /// The error code (`not_found`, ...) when this is an [`Error::Api`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status when this is an [`Error::Api`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The JSON error body of the daemon: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error itself.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// `client`, `guest` or `server`.
    pub kind: String,
    /// `bad_request`, `bad_name`, `not_elf`, `forbidden`, `not_found`, `method_not_allowed`,
    /// `too_many_objects`, `too_large`, `guest_crashed`, `guest_timeout`, `guest_protocol`,
    /// `guest_killed`, `response_too_large`, `unavailable` or `internal`.
    pub code: String,
    /// A human-readable message.
    pub message: String,
}

/// An I/O error's message without the trailing `(os error N)` that `std` appends.
pub fn io_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_string(),
        _ => text,
    }
}

/// What to check when connecting to the control socket failed with `err`.
fn connect_hint(err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::PermissionDenied => {
            "warrend serves root, its own user and its group (default `warren`); check the socket's permissions"
        }
        io::ErrorKind::ConnectionRefused => {
            "nothing is listening there; is warrend running? check the socket path (WARREN_SOCKET)"
        }
        _ => "is warrend running? check the socket path (WARREN_SOCKET)",
    }
}

/// `: "<the first bytes of the body>"` for error messages, or nothing for an empty body.
fn quote_body(body: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let text = text.trim();
    if text.is_empty() {
        String::new()
    } else {
        let more = if body.len() > MAX { "..." } else { "" };
        format!(": {text:?}{more}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_daemons_error_body() {
        let body = br#"{"error": {"kind": "client", "code": "not_found", "message": "worker \"shop\" does not exist"}}"#;
        let err = Error::from_response(404, body);
        match &err {
            Error::Api {
                status,
                kind,
                code,
                message,
            } => {
                assert_eq!(*status, 404);
                assert_eq!(kind, "client");
                assert_eq!(code, "not_found");
                assert_eq!(message, "worker \"shop\" does not exist");
            }
            other => panic!("expected Api, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "worker \"shop\" does not exist (not_found)"
        );
        assert_eq!(err.code(), Some("not_found"));
        assert_eq!(err.status(), Some(404));
    }

    #[test]
    fn tolerates_extra_fields() {
        let body = br#"{"error": {"kind": "guest", "code": "guest_timeout", "message": "timed out", "extra": 1}, "x": 2}"#;
        assert_eq!(
            Error::from_response(504, body).code(),
            Some("guest_timeout")
        );
    }

    #[test]
    fn unreadable_error_bodies_are_protocol_errors() {
        for body in [
            &b"<html>oops</html>"[..],
            b"",
            br#"{"error": "just a string"}"#,
            br#"{"error": {"kind": "client"}}"#,
            b"\xff\xfe",
        ] {
            let err = Error::from_response(500, body);
            assert!(matches!(err, Error::Protocol(_)), "{body:?} gave {err:?}");
            assert!(err.to_string().contains("HTTP 500"), "{err}");
        }
        let long = vec![b'a'; 1000];
        let msg = Error::from_response(502, &long).to_string();
        assert!(msg.len() < 250 && msg.ends_with("..."), "{msg}");
    }

    #[test]
    fn connect_errors_say_what_to_check() {
        let err = Error::Connect {
            socket: "/run/warren/warrend.sock".into(),
            source: io::Error::from_raw_os_error(2),
        };
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "cannot connect to /run/warren/warrend.sock: No such file or directory ("
            ),
            "{msg}"
        );
        assert!(!msg.contains("os error"), "{msg}");
        assert!(msg.contains("is warrend running?"), "{msg}");
        let denied = Error::Connect {
            socket: "/s".into(),
            source: io::Error::from_raw_os_error(13),
        };
        assert!(denied.to_string().contains("permissions"), "{denied}");
    }
}
