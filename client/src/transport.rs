//! One HTTP/1.1 exchange over a fresh connection to the control socket.

use std::error::Error as _;
use std::io;
use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, HOST};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use crate::error::{Error, Result};

/// Connects to `socket`, sends one request and reads the whole answer.
pub(crate) async fn exchange(
    socket: &Path,
    method: Method,
    target: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, HeaderMap, Bytes)> {
    let mut answer = open(socket, method, target, headers, body).await?;
    let body = (&mut answer.body)
        .collect()
        .await
        .map_err(|e| transport_error(socket, &e))?
        .to_bytes();
    Ok((answer.status, std::mem::take(&mut answer.headers), body))
}

/// An answer whose body is still arriving. Dropping it closes the connection.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Incoming,
    /// Drives the connection; aborted on drop.
    driver: tokio::task::JoinHandle<()>,
}

impl Drop for Answer {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Connects to `socket`, sends one request and reads the answer's head; the body is read by
/// the caller, frame by frame.
pub(crate) async fn open(
    socket: &Path,
    method: Method,
    target: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Answer> {
    let mut request = Request::builder()
        .method(method)
        .uri(target)
        .body(Full::new(body))
        .map_err(|e| {
            Error::InvalidArgument(format!("cannot build a request for {target:?}: {e}"))
        })?;
    *request.headers_mut() = headers;
    if !request.headers().contains_key(HOST) {
        request
            .headers_mut()
            .insert(HOST, HeaderValue::from_static("warren"));
    }

    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| Error::Connect {
            socket: socket.to_path_buf(),
            source,
        })?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| transport_error(socket, &e))?;
    // The connection future runs until the answer is read and `sender` is dropped; its own
    // error, if any, also fails `send_request` or the body, which is where it is reported.
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });

    match sender.send_request(request).await {
        Ok(response) => {
            let (parts, body) = response.into_parts();
            Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
                driver,
            })
        }
        Err(e) => {
            driver.abort();
            Err(transport_error(socket, &e))
        }
    }
}

/// Turns a hyper error after connecting into an [`Error`].
pub(crate) fn transport_error(socket: &Path, err: &hyper::Error) -> Error {
    let context = format!("the connection to warrend at {} failed", socket.display());
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return Error::Io {
                context,
                source: io::Error::new(io.kind(), io.to_string()),
            };
        }
        source = cause.source();
    }
    if err.is_incomplete_message() || err.is_canceled() || err.is_closed() {
        return Error::Io {
            context: format!(
                "warrend at {} closed the connection before answering (see its logs)",
                socket.display()
            ),
            source: io::Error::new(io::ErrorKind::UnexpectedEof, err.to_string()),
        };
    }
    Error::Protocol(err.to_string())
}
