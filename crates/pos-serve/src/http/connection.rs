//! One connection: its requests read (head by `httparse`, body by length or chunks, each
//! within its limits), admitted, handled and answered, then a closing that lets the client
//! read the answer.

use std::io::{self, Read};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::message::{
    BodyError, EventSink, Request, Response, header, write_all_by, write_response,
};
use super::socket::Conn;
use super::{Answer, Limits, MAX_HEADERS, Phase, Shared};
use crate::ApiError;

/// How long a closing connection is drained, so its client reads the answer before a reset.
const LINGER: Duration = Duration::from_secs(1);

/// At most this much is drained from a closing connection.
const LINGER_BYTES: usize = 256 * 1024;

/// Longest chunk-size or trailer line of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// How a request head ended.
#[derive(Debug)]
pub(super) enum HeadEnd {
    /// The peer closed, or sent nothing before the idle limit: close quietly.
    Quiet,
    /// Too slow (408), after part of a head.
    Timeout,
    /// Too large: 431, or 414 for the request line alone.
    TooLarge { uri: bool },
    /// Malformed: 400.
    Bad(String),
    /// Evicted to make room, after part of a head: 503.
    Evicted,
}

#[derive(Debug)]
pub(super) struct Head {
    method: String,
    target: String,
    minor: u8,
    headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Length(u64),
    Chunked,
}

pub(super) struct Connection<'a> {
    pub(super) shared: &'a Shared,
    pub(super) conn: Conn,
    pub(super) id: u64,
    pub(super) evicted: Arc<AtomicBool>,
    /// Bytes read and not yet used (at most a head, a body or a chunk, plus one read).
    pub(super) buf: Vec<u8>,
}

/// Where the end of a head may be (a blank line), searching from `from`.
fn blank_line(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < buf.len() {
        if buf[i] == b'\n' {
            if buf[i + 1] == b'\n' {
                return Some(i + 2);
            }
            if buf[i + 1] == b'\r' && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

fn refusal(status: u16, kind: &'static str, message: String) -> ApiError {
    ApiError {
        status,
        kind,
        message,
        current: None,
    }
}

impl Connection<'_> {
    fn limits(&self) -> &Limits {
        &self.shared.limits
    }

    /// Read more bytes (at most `want`) before `deadline`. `Ok(0)`: end of file.
    fn fill(&mut self, want: usize, deadline: Instant) -> io::Result<usize> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            self.conn.set_read_timeout(left)?;
            let old = self.buf.len();
            self.buf.resize(old + want.clamp(1, 16 * 1024), 0);
            let r = self.conn.read(&mut self.buf[old..]);
            self.buf.truncate(old + *r.as_ref().unwrap_or(&0));
            match r {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }

    pub(super) fn serve(mut self) {
        let mut first = true;
        loop {
            if self.shared.stop.load(Ordering::SeqCst) {
                break;
            }
            if !first {
                // (A new connection is in this phase since it was accepted.)
                self.shared.set_phase(self.id, Phase::Head);
            }
            let head = match self.read_head(first) {
                Ok(h) => h,
                Err(end) => {
                    self.refuse_head(end);
                    break;
                }
            };
            first = false;
            match self.exchange(head) {
                Ok(true) => {}
                Ok(false) | Err(_) => break,
            }
        }
        self.close();
    }

    /// Answer a head that did not come through, then the connection closes.
    fn refuse_head(&mut self, end: HeadEnd) {
        let api = &self.shared.metrics.api;
        let l = self.limits();
        let e = match end {
            HeadEnd::Quiet => return,
            HeadEnd::Timeout => {
                api.refuse("head_timeout");
                refusal(
                    408,
                    "request_timeout",
                    format!(
                        "the request head did not arrive within {} s",
                        l.head_timeout.as_secs()
                    ),
                )
            }
            HeadEnd::TooLarge { uri } => {
                api.refuse("too_large");
                let what = if uri {
                    "the request line"
                } else {
                    "the request head"
                };
                refusal(
                    if uri { 414 } else { 431 },
                    "too_large",
                    format!(
                        "{what} is larger than {} bytes or has more than {MAX_HEADERS} header fields",
                        l.max_head
                    ),
                )
            }
            HeadEnd::Bad(why) => {
                api.refuse("bad_request");
                ApiError::bad_request(format!("malformed request head: {why}"))
            }
            HeadEnd::Evicted => {
                api.refuse("evicted");
                ApiError::overloaded()
            }
        };
        let deadline = Instant::now() + l.write_timeout;
        let _ = write_response(&mut self.conn, &Response::error(&e), false, false, deadline);
    }

    fn read_head(&mut self, first: bool) -> Result<Head, HeadEnd> {
        let l = self.limits().clone();
        let start = Instant::now();
        let mut deadline = start
            + if first {
                l.head_timeout
            } else {
                l.idle_timeout
            };
        let mut got_any = !self.buf.is_empty();
        if got_any && !first {
            deadline = start + l.head_timeout;
        }
        let mut scan = 0;
        loop {
            while let Some(end) = blank_line(&self.buf, scan) {
                match parse_head(&self.buf[..end]) {
                    Ok(Some((head, used))) => {
                        self.buf.drain(..used);
                        return Ok(head);
                    }
                    // Blank lines before the request line: look further.
                    Ok(None) => scan = end - 1,
                    Err(e) => return Err(e),
                }
            }
            scan = self.buf.len().saturating_sub(2);
            if self.buf.len() >= l.max_head {
                let uri = !self.buf[..l.max_head].contains(&b'\n');
                return Err(HeadEnd::TooLarge { uri });
            }
            let want = l.max_head - self.buf.len();
            match self.fill(want.min(4096), deadline) {
                Ok(0) if self.evicted.load(Ordering::SeqCst) && got_any => {
                    return Err(HeadEnd::Evicted);
                }
                Ok(0) => return Err(HeadEnd::Quiet),
                Ok(_) => {
                    if !got_any {
                        got_any = true;
                        if !first {
                            deadline = Instant::now() + l.head_timeout;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                    return Err(if got_any {
                        HeadEnd::Timeout
                    } else {
                        HeadEnd::Quiet
                    });
                }
                Err(_) => return Err(HeadEnd::Quiet),
            }
        }
    }

    /// One request: admission, body, handler, answer. `Ok(true)`: the connection may carry
    /// another request.
    fn exchange(&mut self, head: Head) -> io::Result<bool> {
        let l = self.limits().clone();
        let path = head.target.split('?').next().unwrap_or("");
        let class = self.shared.handler.class(&head.method, path);
        let head_only = head.method == "HEAD";
        let framing = match framing(&head) {
            Ok(f) => f,
            Err(msg) => {
                self.shared.metrics.api.refuse("bad_request");
                let r = Response::error(&ApiError::bad_request(msg));
                write_response(
                    &mut self.conn,
                    &r,
                    head_only,
                    false,
                    Instant::now() + l.write_timeout,
                )?;
                return Ok(false);
            }
        };
        // The body is read before a slot is taken, still in the head phase (so a client that
        // sends it slowly holds no slot and can be evicted like a slow head).
        let body = self.read_body(&head, framing);
        let shared = self.shared;
        shared.set_phase(self.id, Phase::Busy);
        let evicted = self.evicted.load(Ordering::SeqCst);
        let slot = if evicted {
            None
        } else {
            shared
                .slots
                .acquire(&l, class, Instant::now() + l.slot_wait)
        };
        let Some(slot) = slot else {
            shared
                .metrics
                .api
                .refuse(if evicted { "evicted" } else { "overloaded" });
            let r = Response::error(&ApiError::overloaded());
            write_response(
                &mut self.conn,
                &r,
                head_only,
                false,
                Instant::now() + l.write_timeout,
            )?;
            return Ok(false);
        };
        let mut keep_alive = body.is_ok() && wants_keep_alive(&head);
        let req = Request {
            method: head.method,
            target: head.target,
            headers: head.headers,
            body,
        };
        match shared.handler.handle(req) {
            Answer::Full(r) => {
                if shared.stop.load(Ordering::SeqCst) {
                    keep_alive = false;
                }
                write_response(
                    &mut self.conn,
                    &r,
                    head_only,
                    keep_alive,
                    Instant::now() + l.write_timeout,
                )?;
                drop(slot);
                Ok(keep_alive)
            }
            Answer::Stream(producer) => {
                shared.set_phase(self.id, Phase::Stream);
                shared.metrics.api.event_streams.inc();
                let chunked = head.minor >= 1;
                let mut sink = EventSink {
                    conn: &mut self.conn,
                    chunked,
                    write_timeout: l.write_timeout,
                    failed: false,
                };
                let te = if chunked {
                    "Transfer-Encoding: chunked\r\n"
                } else {
                    ""
                };
                let start = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n\
                     {te}X-Accel-Buffering: no\r\nConnection: close\r\n\r\n"
                );
                if sink.raw(start.as_bytes()).is_ok() {
                    producer(&mut sink);
                    if chunked && !sink.failed {
                        // The end of the chunked body: the client sees the stream end.
                        let _ = sink.raw(b"0\r\n\r\n");
                    }
                }
                shared.metrics.api.event_streams.dec();
                drop(slot);
                Ok(false)
            }
        }
    }

    fn read_body(&mut self, head: &Head, framing: Framing) -> Result<Vec<u8>, BodyError> {
        let l = self.limits().clone();
        let deadline = Instant::now() + l.body_timeout;
        let limit = l.max_body as u64;
        let expect = head.minor >= 1
            && header(&head.headers, "expect")
                .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        match framing {
            Framing::Length(0) => Ok(Vec::new()),
            Framing::Length(n) if n > limit => Err(BodyError::TooLarge),
            Framing::Length(n) => {
                // Bounded by `limit` just above.
                let n = usize::try_from(n).map_err(|_| BodyError::TooLarge)?;
                if expect && self.buf.len() < n {
                    self.continue_100(deadline)?;
                }
                while self.buf.len() < n {
                    self.fill_body(n - self.buf.len(), deadline)?;
                }
                Ok(self.buf.drain(..n).collect())
            }
            Framing::Chunked => {
                if expect && self.buf.is_empty() {
                    self.continue_100(deadline)?;
                }
                self.read_chunked(l.max_body, deadline)
            }
        }
    }

    fn continue_100(&mut self, deadline: Instant) -> Result<(), BodyError> {
        write_all_by(&mut self.conn, b"HTTP/1.1 100 Continue\r\n\r\n", deadline)
            .map_err(|e| BodyError::Broken(e.to_string()))
    }

    fn fill_body(&mut self, want: usize, deadline: Instant) -> Result<(), BodyError> {
        match self.fill(want, deadline) {
            Ok(0) => Err(BodyError::Broken(
                "the client closed before the whole body".into(),
            )),
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(BodyError::Timeout),
            Err(e) => Err(BodyError::Broken(e.to_string())),
        }
    }

    /// One line of chunked framing (without its line end).
    fn chunk_line(&mut self, deadline: Instant) -> Result<String, BodyError> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line);
                return Ok(text.trim_end_matches(['\r', '\n']).to_string());
            }
            if self.buf.len() >= MAX_CHUNK_LINE {
                return Err(BodyError::Broken("a chunk-size line is too long".into()));
            }
            self.fill_body(MAX_CHUNK_LINE - self.buf.len(), deadline)?;
        }
    }

    fn read_chunked(&mut self, limit: usize, deadline: Instant) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::new();
        loop {
            let line = self.chunk_line(deadline)?;
            let size = line.split(';').next().unwrap_or("").trim();
            let size = (size.len() <= 16)
                .then(|| u64::from_str_radix(size, 16).ok())
                .flatten()
                .ok_or_else(|| BodyError::Broken(format!("bad chunk size {size:?}")))?;
            if size == 0 {
                // Trailer fields, up to a blank line; bounded like a head.
                let mut trailers = 0;
                loop {
                    let t = self.chunk_line(deadline)?;
                    if t.is_empty() {
                        return Ok(out);
                    }
                    trailers += t.len();
                    if trailers > self.limits().max_head {
                        return Err(BodyError::TooLarge);
                    }
                }
            }
            let size = usize::try_from(size).map_err(|_| BodyError::TooLarge)?;
            if out.len().saturating_add(size) > limit {
                return Err(BodyError::TooLarge);
            }
            while self.buf.len() < size + 2 {
                self.fill_body(size + 2 - self.buf.len(), deadline)?;
            }
            out.extend(self.buf.drain(..size));
            let end: Vec<u8> = self.buf.drain(..2).collect();
            if end != b"\r\n" {
                return Err(BodyError::Broken("a chunk does not end with CRLF".into()));
            }
        }
    }

    /// Close so that the client reads the answer: no more writes, then drain what it still
    /// sends for a moment (closing with unread bytes would reset the connection and could
    /// destroy the answer before the client read it).
    fn close(mut self) {
        self.conn.shutdown(Shutdown::Write);
        let deadline = Instant::now() + LINGER;
        let mut drained = 0;
        let mut scratch = [0u8; 8192];
        while drained < LINGER_BYTES {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.conn.set_read_timeout(left).is_err() {
                break;
            }
            match self.conn.read(&mut scratch) {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    }
}

/// Parse a head that ends at the end of `bytes`. `Ok(None)`: only blank lines so far.
fn parse_head(bytes: &[u8]) -> Result<Option<(Head, usize)>, HeadEnd> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    match req.parse(bytes) {
        Ok(httparse::Status::Complete(used)) => {
            let head = Head {
                method: req.method.unwrap_or("").to_string(),
                target: req.path.unwrap_or("").to_string(),
                minor: req.version.unwrap_or(1),
                headers: req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect(),
            };
            Ok(Some((head, used)))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(HeadEnd::TooLarge { uri: false }),
        Err(e) => Err(HeadEnd::Bad(e.to_string())),
    }
}

fn framing(head: &Head) -> Result<Framing, String> {
    let te: Vec<&str> = head
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
        .map(|(_, v)| v.trim())
        .collect();
    let cl: Vec<&str> = head
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim())
        .collect();
    if !te.is_empty() {
        if !cl.is_empty() {
            return Err("both Content-Length and Transfer-Encoding: send one".into());
        }
        if te.len() == 1 && te[0].eq_ignore_ascii_case("chunked") && head.minor >= 1 {
            return Ok(Framing::Chunked);
        }
        return Err(format!(
            "Transfer-Encoding {:?} is not supported: send Content-Length or chunked",
            te.join(", ")
        ));
    }
    let mut length = None;
    for v in cl {
        let n = (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<u64>().ok())
            .flatten()
            .ok_or_else(|| format!("Content-Length {v:?} is not a number"))?;
        if length.is_some_and(|l| l != n) {
            return Err("Content-Length given twice with different values".into());
        }
        length = Some(n);
    }
    Ok(Framing::Length(length.unwrap_or(0)))
}

fn wants_keep_alive(head: &Head) -> bool {
    let conn = header(&head.headers, "connection").unwrap_or("");
    let has = |word: &str| conn.split(',').any(|t| t.trim().eq_ignore_ascii_case(word));
    if head.minor >= 1 {
        !has("close")
    } else {
        has("keep-alive")
    }
}
