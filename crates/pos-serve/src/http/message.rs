//! Requests and answers: what a handler gets and gives back, and how an answer is written
//! (each write within its deadline).

use std::io::{self, Write};
use std::time::{Duration, Instant};

use serde_json::json;

use super::socket::{Conn, hung_up};
use crate::ApiError;

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Larger than the limit (not read).
    TooLarge,
    /// It did not arrive in time.
    Timeout,
    /// Broken framing or a read error.
    Broken(String),
}

/// A request, head and body read.
#[derive(Debug)]
pub(crate) struct Request {
    /// The method, as sent (methods are case-sensitive).
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    pub(super) headers: Vec<(String, String)>,
    /// The body (empty when none), or why it could not be read.
    pub body: Result<Vec<u8>, BodyError>,
}

impl Request {
    /// The first header field named `name` (any case), its value trimmed.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

pub(super) fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// A complete answer.
#[derive(Debug)]
pub(crate) struct Response {
    /// HTTP status.
    pub status: u16,
    /// Header fields (Content-Length and Connection are added).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// `body` pretty-printed as JSON.
    pub(crate) fn json(status: u16, body: &serde_json::Value) -> Response {
        let text = serde_json::to_string_pretty(body).unwrap_or_else(|_| "{}".into());
        Response {
            status,
            headers: vec![
                ("Content-Type", "application/json".into()),
                ("Cache-Control", "no-store".into()),
            ],
            body: text.into_bytes(),
        }
    }

    /// The API's error body; `503` answers say when to come back.
    pub(crate) fn error(e: &ApiError) -> Response {
        let mut r = Response::json(e.status, &json!({ "error": e }));
        if e.status == 503 {
            r.headers.push(("Retry-After", "1".into()));
        }
        r
    }

    /// Plain text of `content_type`.
    pub(crate) fn text(status: u16, content_type: &str, text: String) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: text.into_bytes(),
        }
    }
}

/// A streamed answer (server-sent events): the producer writes events through the sink.
pub(crate) type Producer = Box<dyn FnOnce(&mut EventSink<'_>) + Send>;

/// What a handler answers.
pub(crate) enum Answer {
    /// A complete answer.
    Full(Response),
    /// A `text/event-stream` that lasts until the producer returns or its client is gone.
    Stream(Producer),
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Write all of `data` before `deadline`.
pub(super) fn write_all_by(conn: &mut Conn, mut data: &[u8], deadline: Instant) -> io::Result<()> {
    while !data.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        conn.set_write_timeout(left)?;
        match conn.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

pub(super) fn write_response(
    conn: &mut Conn,
    r: &Response,
    head_only: bool,
    keep_alive: bool,
    deadline: Instant,
) -> io::Result<()> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    out.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&r.body);
    }
    write_all_by(conn, &bytes, deadline)
}

/// Where a stream's producer writes: each piece within the write timeout, or the client is
/// dropped.
pub(crate) struct EventSink<'a> {
    pub(super) conn: &'a mut Conn,
    pub(super) chunked: bool,
    pub(super) write_timeout: Duration,
    /// A write failed or timed out: nothing more is written.
    pub(super) failed: bool,
}

impl EventSink<'_> {
    pub(super) fn raw(&mut self, data: &[u8]) -> io::Result<()> {
        if self.failed {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        let r = write_all_by(self.conn, data, Instant::now() + self.write_timeout);
        self.failed = r.is_err();
        r
    }

    /// True once the client closed its side (or the connection failed): the stream can end
    /// without waiting for a write to fail.
    pub(crate) fn client_gone(&self) -> bool {
        self.failed || hung_up(self.conn.fd())
    }

    /// Send `text` (whole SSE blocks). An error means the client is gone or stopped reading
    /// for longer than the write timeout: end the stream.
    pub(crate) fn send(&mut self, text: &str) -> io::Result<()> {
        if self.chunked {
            let mut framed = format!("{:x}\r\n", text.len()).into_bytes();
            framed.extend_from_slice(text.as_bytes());
            framed.extend_from_slice(b"\r\n");
            self.raw(&framed)
        } else {
            self.raw(text.as_bytes())
        }
    }
}
