//! Errors of the daemon, classified by whose fault they are: the client's (4xx), the guest's
//! (502/504) or ours (5xx). Every [`ApiError`] becomes a JSON body
//! `{"error": {"kind", "code", "message"}}` plus an `x-warren-error` header.

use hyper::StatusCode;

/// Whose fault an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// the request is wrong
    Client,
    /// the worker program misbehaved
    Guest,
    /// the daemon could not do it
    Server,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Client => "client",
            Kind::Guest => "guest",
            Kind::Server => "server",
        }
    }
}

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// HTTP status
    pub status: StatusCode,
    /// whose fault
    pub kind: Kind,
    /// stable machine-readable code (see docs/api.md)
    pub code: &'static str,
    /// one human line
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, kind: Kind, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            code,
            message: message.into(),
        }
    }

    /// 400 bad_request
    pub fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Kind::Client, "bad_request", m)
    }
    /// 400 bad_name
    pub fn bad_name(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Kind::Client, "bad_name", m)
    }
    /// 415 not_elf
    pub fn not_elf(m: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::Client,
            "not_elf",
            m,
        )
    }
    /// 403 forbidden
    pub fn forbidden(m: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, Kind::Client, "forbidden", m)
    }
    /// 404 not_found
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, Kind::Client, "not_found", m)
    }
    /// 405 method_not_allowed
    pub fn method_not_allowed(m: impl Into<String>) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            Kind::Client,
            "method_not_allowed",
            m,
        )
    }
    /// 413 too_large
    pub fn too_large(m: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, Kind::Client, "too_large", m)
    }
    /// 409 too_many_objects
    pub fn too_many_objects(m: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, Kind::Client, "too_many_objects", m)
    }
    /// 502 guest_crashed
    pub fn guest_crashed(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, Kind::Guest, "guest_crashed", m)
    }
    /// 502 guest_protocol
    pub fn guest_protocol(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, Kind::Guest, "guest_protocol", m)
    }
    /// 502 response_too_large
    pub fn response_too_large(m: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            Kind::Guest,
            "response_too_large",
            m,
        )
    }
    /// 502 guest_killed
    pub fn guest_killed(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, Kind::Guest, "guest_killed", m)
    }
    /// 504 guest_timeout
    pub fn guest_timeout(m: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, Kind::Guest, "guest_timeout", m)
    }
    /// 503 unavailable
    pub fn unavailable(m: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            Kind::Server,
            "unavailable",
            m,
        )
    }
    /// 500 internal
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            Kind::Server,
            "internal",
            m,
        )
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "error": {"kind": self.kind.as_str(), "code": self.code, "message": self.message}
        }))
        .unwrap_or_default()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(format!("state database: {e}"))
    }
}
