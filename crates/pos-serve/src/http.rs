//! The HTTP/1.1 front of the local API: threads, no async runtime, a bound on everything a
//! client controls.
//!
//! One accept thread per listener (TCP or Unix socket) and one thread per connection. The
//! request head is parsed by `httparse` (a parser fuzzed and used by hyper); the rest is
//! small and strict:
//!
//! - **Head**: at most [`Limits::max_head`] bytes and [`MAX_HEADERS`] fields, complete within
//!   [`Limits::head_timeout`] of the connection (or of its first byte on a kept-alive one).
//!   Over the size: `431` (`414` when the request line alone is too long); too slow: `408`;
//!   malformed: `400`. The buffer never grows past the limit, so a flood of header bytes
//!   costs the service nothing but the read.
//! - **Body**: `Content-Length` or `chunked`, at most `max_body` bytes, within
//!   [`Limits::body_timeout`], read before the request takes a slot; a larger one is not
//!   read (the handler answers it, the connection closes).
//! - **Answers**: every write has a deadline ([`Limits::write_timeout`]); a client that does
//!   not read is cut off, it never holds a thread for long.
//! - **Admission**, once the head says what the request is ([`Class`]): `max_connections`
//!   general slots; a small reserve for `/healthz` and `/metrics` and another for the sale's
//!   own routes, so neither is starved by other traffic; event streams in a pool of their
//!   own. A request waits up to [`Limits::slot_wait`] for a slot, then gets `503` with
//!   `Retry-After`.
//! - **Connections**: at most [`Limits::max_open`] open. At the cap, the oldest connection
//!   that is idle or still sending its head is closed (`503` if it had sent part of a
//!   request) to make room, so slow or idle clients cannot lock others out.
//!
//! Every request whose head arrived gets an answer; only a client that goes away, stays
//! silent, or is evicted while idle is closed without one.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::ApiError;
use crate::metrics::Metrics;

/// Most header fields in one request head.
pub(crate) const MAX_HEADERS: usize = 64;
/// How long a closing connection is drained, so its client reads the answer before a reset.
const LINGER: Duration = Duration::from_secs(1);
/// At most this much is drained from a closing connection.
const LINGER_BYTES: usize = 256 * 1024;
/// Longest chunk-size or trailer line of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// The limits of one listener.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Most bytes in a request head (request line and header fields).
    pub max_head: usize,
    /// Most bytes in a request body.
    pub max_body: usize,
    /// The whole head must arrive within this, from the connection (or from the first byte
    /// of a later request on a kept-alive connection).
    pub head_timeout: Duration,
    /// A kept-alive connection with no new request for this long is closed.
    pub idle_timeout: Duration,
    /// The whole body must arrive within this, from the end of the head.
    pub body_timeout: Duration,
    /// Each answer (and each event of a stream) must be written within this.
    pub write_timeout: Duration,
    /// How long a request waits for a free slot before `503`.
    pub slot_wait: Duration,
    /// Requests handled at once, of any kind.
    pub general: usize,
    /// Extra slots only `/healthz` and `/metrics` may use.
    pub probe_reserve: usize,
    /// Extra slots only the sale's routes may use (start, get/await, cancel).
    pub sale_reserve: usize,
    /// Event streams open at once (a pool of their own).
    pub streams: usize,
    /// Connections open at once.
    pub max_open: usize,
}

impl Limits {
    /// The limits for `max_connections` (the `api.max_connections` setting).
    pub(crate) fn for_connections(max_connections: usize) -> Limits {
        let general = max_connections.max(1);
        let probe_reserve = 4;
        let sale_reserve = 8;
        Limits {
            max_head: 16 * 1024,
            max_body: 64 * 1024,
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(15),
            body_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            slot_wait: Duration::from_secs(5),
            general,
            probe_reserve,
            sale_reserve,
            streams: general,
            // Every slot holder, as many again waiting for a slot or reading a head.
            max_open: 2 * (2 * general + probe_reserve + sale_reserve),
        }
    }
}

/// What kind of request, for admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// `/healthz`, `/metrics`: may use the probe reserve.
    Probe,
    /// The sale's own routes: may use the sale reserve.
    Sale,
    /// Anything else.
    Normal,
    /// An event stream: the stream pool.
    Stream,
}

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
    headers: Vec<(String, String)>,
    /// The body (empty when none), or why it could not be read.
    pub body: Result<Vec<u8>, BodyError>,
}

impl Request {
    /// The first header field named `name` (any case), its value trimmed.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
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

/// Serves the requests of one listener.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The admission class of `method` on `path` (no query).
    fn class(&self, method: &str, path: &str) -> Class;
    /// Answer `req`. Runs on the connection's thread; may block (bounded by the handler).
    fn handle(&self, req: Request) -> Answer;
}

/// A connected client.
#[derive(Debug)]
pub(crate) enum Conn {
    /// Over TCP.
    Tcp(TcpStream),
    /// Over the Unix socket.
    Unix(UnixStream),
}

impl Conn {
    fn try_clone(&self) -> io::Result<Conn> {
        Ok(match self {
            Conn::Tcp(s) => Conn::Tcp(s.try_clone()?),
            Conn::Unix(s) => Conn::Unix(s.try_clone()?),
        })
    }

    fn set_read_timeout(&self, d: Duration) -> io::Result<()> {
        // A zero duration means "no timeout" to the OS: never pass one.
        let d = Some(d.max(Duration::from_millis(1)));
        match self {
            Conn::Tcp(s) => s.set_read_timeout(d),
            Conn::Unix(s) => s.set_read_timeout(d),
        }
    }

    fn set_write_timeout(&self, d: Duration) -> io::Result<()> {
        let d = Some(d.max(Duration::from_millis(1)));
        match self {
            Conn::Tcp(s) => s.set_write_timeout(d),
            Conn::Unix(s) => s.set_write_timeout(d),
        }
    }

    fn shutdown(&self, how: Shutdown) {
        // Fails only when the peer already closed: nothing to do then.
        let _ = match self {
            Conn::Tcp(s) => s.shutdown(how),
            Conn::Unix(s) => s.shutdown(how),
        };
    }

    fn fd(&self) -> RawFd {
        match self {
            Conn::Tcp(s) => s.as_raw_fd(),
            Conn::Unix(s) => s.as_raw_fd(),
        }
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Conn::Tcp(s) => s.set_nonblocking(on),
            Conn::Unix(s) => s.set_nonblocking(on),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.write(buf),
            Conn::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening socket.
#[derive(Debug)]
pub(crate) enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix socket.
    Unix(UnixListener),
}

impl Listener {
    fn accept(&self) -> io::Result<Conn> {
        let c = match self {
            Listener::Tcp(l) => Conn::Tcp(l.accept()?.0),
            Listener::Unix(l) => Conn::Unix(l.accept()?.0),
        };
        c.set_nonblocking(false)?;
        Ok(c)
    }

    fn fd(&self) -> RawFd {
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

/// Whether `fd` has a connection to accept, waiting at most `timeout`.
fn readable(fd: RawFd, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one valid pollfd that lives across the call, and nfds is 1.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    n > 0 && pfd.revents & libc::POLLIN != 0
}

/// Whether the peer of `fd` hung up (or the socket failed), without reading or waiting.
fn hung_up(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid pollfd that lives across the call, and nfds is 1.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// Where a connection is in its life, for eviction and stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for or reading a request head or body (idle kept-alive connections too).
    Head,
    /// A request is being handled or answered.
    Busy,
    /// An event stream.
    Stream,
}

struct Entry {
    id: u64,
    phase: Phase,
    since: Instant,
    handle: Conn,
    evicted: Arc<AtomicBool>,
}

#[derive(Default)]
struct Table {
    entries: Vec<Entry>,
    next_id: u64,
}

#[derive(Debug, Default, Clone, Copy)]
struct InUse {
    general: usize,
    probe: usize,
    sale: usize,
    stream: usize,
}

#[derive(Debug, Clone, Copy)]
enum Pool {
    General,
    Probe,
    Sale,
    Stream,
}

struct Slots {
    used: Mutex<InUse>,
    freed: Condvar,
}

struct Slot<'a> {
    slots: &'a Slots,
    pool: Pool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        {
            let mut u = self.slots.lock();
            let n = match self.pool {
                Pool::General => &mut u.general,
                Pool::Probe => &mut u.probe,
                Pool::Sale => &mut u.sale,
                Pool::Stream => &mut u.stream,
            };
            *n = n.saturating_sub(1);
        }
        self.slots.freed.notify_all();
    }
}

impl Slots {
    fn lock(&self) -> MutexGuard<'_, InUse> {
        self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(u: &mut InUse, l: &Limits, class: Class) -> Option<Pool> {
        match class {
            Class::Stream if u.stream < l.streams => {
                u.stream += 1;
                Some(Pool::Stream)
            }
            Class::Stream => None,
            _ if u.general < l.general => {
                u.general += 1;
                Some(Pool::General)
            }
            Class::Probe if u.probe < l.probe_reserve => {
                u.probe += 1;
                Some(Pool::Probe)
            }
            Class::Sale if u.sale < l.sale_reserve => {
                u.sale += 1;
                Some(Pool::Sale)
            }
            _ => None,
        }
    }

    /// A slot for `class`, waiting until `until` for one to come free.
    fn acquire(&self, l: &Limits, class: Class, until: Instant) -> Option<Slot<'_>> {
        let mut u = self.lock();
        loop {
            if let Some(pool) = Slots::take(&mut u, l, class) {
                return Some(Slot { slots: self, pool });
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            u = self
                .freed
                .wait_timeout(u, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

struct Shared {
    name: &'static str,
    limits: Limits,
    handler: Arc<dyn Handler>,
    metrics: Arc<Metrics>,
    stop: AtomicBool,
    table: Mutex<Table>,
    slots: Slots,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_phase(&self, id: u64, phase: Phase) {
        if let Some(e) = self.table().entries.iter_mut().find(|e| e.id == id) {
            e.phase = phase;
            e.since = Instant::now();
        }
    }

    /// Connections open and not being evicted.
    fn open(&self) -> usize {
        self.table()
            .entries
            .iter()
            .filter(|e| !e.evicted.load(Ordering::SeqCst))
            .count()
    }

    /// Close the connection that has waited longest for its head (idle or slow), to make
    /// room. False when every connection is busy.
    fn evict_oldest(&self) -> bool {
        let t = self.table();
        let victim = t
            .entries
            .iter()
            .filter(|e| e.phase == Phase::Head && !e.evicted.load(Ordering::SeqCst))
            .min_by_key(|e| e.since);
        match victim {
            Some(e) => {
                e.evicted.store(true, Ordering::SeqCst);
                // Its blocked read returns end-of-file; its thread answers and closes.
                e.handle.shutdown(Shutdown::Read);
                true
            }
            None => false,
        }
    }
}

/// A running listener.
pub(crate) struct Server {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Serve `listener` with `handler` within `limits`, on an accept thread named `name`.
    pub(crate) fn start(
        listener: Listener,
        name: &'static str,
        limits: Limits,
        handler: Arc<dyn Handler>,
        metrics: Arc<Metrics>,
    ) -> io::Result<Server> {
        match &listener {
            Listener::Tcp(l) => l.set_nonblocking(true)?,
            Listener::Unix(l) => l.set_nonblocking(true)?,
        }
        let shared = Arc::new(Shared {
            name,
            limits,
            handler,
            metrics,
            stop: AtomicBool::new(false),
            table: Mutex::new(Table::default()),
            slots: Slots {
                used: Mutex::new(InUse::default()),
                freed: Condvar::new(),
            },
        });
        let s = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || accept_loop(&listener, &s))?;
        Ok(Server {
            shared,
            accept: Some(accept),
        })
    }

    /// Stop accepting, close the connections that wait for a request, and let those with a
    /// request in hand finish (their handlers watch the service's own stop flag).
    pub(crate) fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for e in &self.shared.table().entries {
            if e.phase == Phase::Head {
                e.handle.shutdown(Shutdown::Both);
            }
        }
    }

    /// Connections still open.
    pub(crate) fn open_connections(&self) -> usize {
        self.shared.table().entries.len()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: &Listener, shared: &Arc<Shared>) {
    let fd = listener.fd();
    while !shared.stop.load(Ordering::SeqCst) {
        if !readable(fd, Duration::from_millis(250)) {
            continue;
        }
        if shared.open() >= shared.limits.max_open && !shared.evict_oldest() {
            // Every connection has a request in hand; those answer (or get 503) within
            // their bounds. New ones wait in the kernel's backlog meanwhile.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        }
        let conn = match listener.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                log::warn!("{}: accept: {e}", shared.name);
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        spawn_connection(shared, conn);
    }
}

fn spawn_connection(shared: &Arc<Shared>, conn: Conn) {
    let handle = match conn.try_clone() {
        Ok(h) => h,
        Err(e) => {
            log::warn!("{}: cannot keep a handle on a connection: {e}", shared.name);
            return;
        }
    };
    let evicted = Arc::new(AtomicBool::new(false));
    let id = {
        let mut t = shared.table();
        t.next_id += 1;
        let id = t.next_id;
        t.entries.push(Entry {
            id,
            phase: Phase::Head,
            since: Instant::now(),
            handle,
            evicted: Arc::clone(&evicted),
        });
        id
    };
    shared.metrics.api.connections.inc();
    let s = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("api-conn".into())
        .spawn(move || {
            // Leaves the table even if a handler panics.
            struct Leave<'a>(&'a Shared, u64);
            impl Drop for Leave<'_> {
                fn drop(&mut self) {
                    self.0.table().entries.retain(|e| e.id != self.1);
                    self.0.metrics.api.connections.dec();
                }
            }
            let _leave = Leave(&s, id);
            Connection {
                shared: &s,
                conn,
                id,
                evicted,
                buf: Vec::new(),
            }
            .serve();
        });
    if let Err(e) = spawned {
        log::error!("{}: cannot start a connection thread: {e}", shared.name);
        let gone = {
            let mut t = shared.table();
            let i = t.entries.iter().position(|e| e.id == id);
            i.map(|i| t.entries.swap_remove(i))
        };
        shared.metrics.api.connections.dec();
        if let Some(e) = gone {
            let mut c = e.handle;
            shared.metrics.api.refuse("overloaded");
            let r = Response::error(&ApiError::overloaded());
            let deadline = Instant::now() + Duration::from_secs(1);
            let _ = write_response(&mut c, &r, false, false, deadline);
            c.shutdown(Shutdown::Both);
        }
    }
}

/// How a request head ended.
#[derive(Debug)]
enum HeadEnd {
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
struct Head {
    method: String,
    target: String,
    minor: u8,
    headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
}

struct Connection<'a> {
    shared: &'a Shared,
    conn: Conn,
    id: u64,
    evicted: Arc<AtomicBool>,
    /// Bytes read and not yet used (at most a head, a body or a chunk, plus one read).
    buf: Vec<u8>,
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

    fn serve(mut self) {
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
fn write_all_by(conn: &mut Conn, mut data: &[u8], deadline: Instant) -> io::Result<()> {
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

fn write_response(
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
    conn: &'a mut Conn,
    chunked: bool,
    write_timeout: Duration,
    /// A write failed or timed out: nothing more is written.
    failed: bool,
}

impl EventSink<'_> {
    fn raw(&mut self, data: &[u8]) -> io::Result<()> {
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    #[derive(Default)]
    struct Echo {
        in_slow: std::sync::atomic::AtomicUsize,
        release: AtomicBool,
    }

    impl Handler for Echo {
        fn class(&self, _method: &str, path: &str) -> Class {
            match path {
                "/healthz" => Class::Probe,
                "/sale" => Class::Sale,
                "/events" => Class::Stream,
                _ => Class::Normal,
            }
        }

        fn handle(&self, req: Request) -> Answer {
            if req.target == "/events" {
                return Answer::Stream(Box::new(|sink| {
                    let _ = sink.send("data: one\n\n");
                }));
            }
            if req.target == "/slow" {
                self.in_slow.fetch_add(1, Ordering::SeqCst);
                let end = Instant::now() + Duration::from_secs(20);
                while !self.release.load(Ordering::SeqCst) && Instant::now() < end {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            let body = match &req.body {
                Ok(b) => String::from_utf8_lossy(b).into_owned(),
                Err(e) => format!("{e:?}"),
            };
            Answer::Full(Response::text(
                200,
                "text/plain",
                format!("{} {} [{body}]", req.method, req.target),
            ))
        }
    }

    fn server(limits: Limits) -> (Server, String) {
        let (s, addr, _) = server_with(limits);
        (s, addr)
    }

    fn server_with(limits: Limits) -> (Server, String, Arc<Echo>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let echo = Arc::new(Echo::default());
        let s = Server::start(
            Listener::Tcp(l),
            "test-http",
            limits,
            Arc::clone(&echo) as Arc<dyn Handler>,
            Arc::new(Metrics::new()),
        )
        .unwrap();
        (s, addr, echo)
    }

    fn fast() -> Limits {
        let mut l = Limits::for_connections(4);
        l.head_timeout = Duration::from_millis(300);
        l.idle_timeout = Duration::from_millis(300);
        l.body_timeout = Duration::from_millis(300);
        l.slot_wait = Duration::from_millis(100);
        l
    }

    fn exchange(addr: &str, bytes: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(bytes).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn pipelined_keep_alive_requests_with_length_and_chunked_bodies() {
        let (_s, addr) = server(fast());
        let out = exchange(
            &addr,
            b"\r\nPOST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST /b HTTP/1.1\r\n\
              Transfer-Encoding: chunked\r\n\r\n2;x=y\r\nde\r\n1\r\nf\r\n0\r\nT: v\r\n\r\n\
              GET /c HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        let answers: Vec<&str> = out
            .match_indices("HTTP/1.1 200 OK")
            .map(|(i, _)| &out[i..])
            .collect();
        assert_eq!(answers.len(), 3, "{out}");
        assert!(out.contains("POST /a [abc]"), "{out}");
        assert!(out.contains("POST /b [def]"), "{out}");
        assert!(out.contains("GET /c []"), "{out}");
        assert!(out.ends_with("GET /c []"), "closed after the last: {out}");
    }

    #[test]
    fn expect_continue_and_head_requests() {
        let (_s, addr) = server(fast());
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"POST /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
            .unwrap();
        let mut got = [0u8; 25];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"HTTP/1.1 100 Continue\r\n\r\n");
        s.write_all(b"hiHEAD /y HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut rest = String::new();
        let _ = s.read_to_string(&mut rest);
        assert!(rest.contains("POST /x [hi]"), "{rest}");
        // The HEAD answer has the length of the body it does not send.
        assert!(
            rest.ends_with("Content-Length: 10\r\nConnection: close\r\n\r\n"),
            "{rest}"
        );
    }

    #[test]
    fn bad_framing_too_large_heads_and_slow_heads_get_clear_answers() {
        let (_s, addr) = server(fast());
        for (req, status) in [
            (
                &b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
                "400",
            ),
            (b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "400"),
            (b"GET\0 / HTTP/1.1\r\n\r\n", "400"),
            (b"GET / HTTP/1.1\r\nHost", "408"),
        ] {
            let out = exchange(&addr, req);
            assert!(
                out.starts_with(&format!("HTTP/1.1 {status} ")),
                "{req:?}: {out}"
            );
        }
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(exchange(&addr, &many).starts_with("HTTP/1.1 431 "));
        let long_uri = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
        assert!(exchange(&addr, long_uri.as_bytes()).starts_with("HTTP/1.1 414 "));
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
        assert!(exchange(&addr, big.as_bytes()).starts_with("HTTP/1.1 431 "));
        let body = exchange(
            &addr,
            b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
        );
        assert!(body.contains("TooLarge"), "{body}");
        let slow = exchange(&addr, b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab");
        assert!(slow.contains("Timeout"), "{slow}");
        let chunk = exchange(
            &addr,
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        );
        assert!(chunk.contains("Broken"), "{chunk}");
    }

    #[test]
    fn at_the_slot_limit_the_reserves_still_serve_probes_and_sales() {
        let (_s, addr, echo) = server_with(fast());
        // Fill the four general slots with requests that wait until released.
        let slow: Vec<_> = (0..4)
            .map(|_| {
                let a = addr.clone();
                std::thread::spawn(move || {
                    exchange(&a, b"GET /slow HTTP/1.1\r\nConnection: close\r\n\r\n")
                })
            })
            .collect();
        let end = Instant::now() + Duration::from_secs(20);
        while echo.in_slow.load(Ordering::SeqCst) < 4 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        let other = exchange(&addr, b"GET /other HTTP/1.1\r\n\r\n");
        assert!(other.starts_with("HTTP/1.1 503 "), "{other}");
        assert!(other.contains("Retry-After: 1\r\n"), "{other}");
        let probe = exchange(&addr, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(probe.starts_with("HTTP/1.1 200 "), "{probe}");
        let sale = exchange(&addr, b"GET /sale HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(sale.starts_with("HTTP/1.1 200 "), "{sale}");
        echo.release.store(true, Ordering::SeqCst);
        for t in slow {
            assert!(t.join().unwrap().starts_with("HTTP/1.1 200 "));
        }
    }

    #[test]
    fn at_the_connection_cap_the_oldest_idle_connection_makes_room() {
        let mut limits = fast();
        limits.head_timeout = Duration::from_secs(30);
        limits.idle_timeout = Duration::from_secs(30);
        let max = limits.max_open;
        let (s, addr) = server(limits);
        let mut idle: Vec<TcpStream> = (0..max)
            .map(|_| TcpStream::connect(&addr).unwrap())
            .collect();
        idle[0].write_all(b"GET / HT").unwrap(); // part of a head
        let end = Instant::now() + Duration::from_secs(20);
        while s.open_connections() < max && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = exchange(&addr, b"GET /new HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
        // The oldest one, which had sent part of a head, was told why it was closed.
        idle[0]
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut told = String::new();
        let _ = idle[0].read_to_string(&mut told);
        assert!(told.starts_with("HTTP/1.1 503 "), "{told}");
    }

    /// Serve `input` on one connection (the client's side closed after it) and return
    /// everything the server wrote.
    fn serve_bytes(input: &[u8]) -> Vec<u8> {
        let shared = Shared {
            name: "test-bytes",
            limits: fast(),
            handler: Arc::new(Echo::default()),
            metrics: Arc::new(Metrics::new()),
            stop: AtomicBool::new(false),
            table: Mutex::new(Table::default()),
            slots: Slots {
                used: Mutex::new(InUse::default()),
                freed: Condvar::new(),
            },
        };
        let (server, mut client) = UnixStream::pair().unwrap();
        client.write_all(input).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        Connection {
            shared: &shared,
            conn: Conn::Unix(server),
            id: 1,
            evicted: Arc::new(AtomicBool::new(false)),
            buf: Vec::new(),
        }
        .serve();
        let mut out = Vec::new();
        client.read_to_end(&mut out).unwrap();
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Any bytes, HTTP-like or not: no panic, and whatever is written is whole answers.
        #[test]
        fn any_bytes_get_answers_or_a_close_never_a_panic(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "GET ", "POST ", "HEAD ", "/x", "/events", "/healthz?a=b", " HTTP/1.1",
                        " HTTP/1.0", "\r\n", "\n", "\r\n\r\n", "Content-Length: ",
                        "Transfer-Encoding: chunked", "Expect: 100-continue", "Connection: close",
                        "Connection: keep-alive", "0", "3", "10", "ffffffffffffffffff", ";ext",
                        ": ", "abc", " ", "\t",
                    ]).prop_map(|s| s.as_bytes().to_vec()),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..8),
                ],
                0..48,
            )
        ) {
            let input: Vec<u8> = parts.concat();
            let out = serve_bytes(&input);
            let text = String::from_utf8_lossy(&out);
            proptest::prop_assert!(
                out.is_empty() || text.starts_with("HTTP/1.1 "),
                "{:?} -> {:?}", String::from_utf8_lossy(&input), text
            );
        }
    }

    #[test]
    fn streams_are_chunked_and_end_with_the_last_chunk() {
        let (_s, addr) = server(fast());
        let out = exchange(&addr, b"GET /events HTTP/1.1\r\n\r\n");
        assert!(
            out.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream"),
            "{out}"
        );
        assert!(out.ends_with("b\r\ndata: one\n\n\r\n0\r\n\r\n"), "{out:?}");
    }
}
