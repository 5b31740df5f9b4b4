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
//!
//! This file has the limits, the listener's accept loop and its connection threads;
//! `connection` reads each request (head, body) and answers it, `admission` keeps the
//! connection table and the request slots, `message` the request and answer types and how
//! an answer is written, `socket` the TCP and Unix sockets.

mod admission;
mod connection;
mod message;
mod socket;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::ApiError;
use crate::metrics::Metrics;

use admission::{Entry, InUse, Phase, Slots, Table};
use connection::Connection;
use message::write_response;
pub(crate) use message::{Answer, BodyError, EventSink, Request, Response};
pub(crate) use socket::Listener;
use socket::{Conn, readable};

/// Most header fields in one request head.
pub(crate) const MAX_HEADERS: usize = 64;

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

/// Serves the requests of one listener.
pub(crate) trait Handler: Send + Sync + 'static {
    /// The admission class of `method` on `path` (no query).
    fn class(&self, method: &str, path: &str) -> Class;
    /// Answer `req`. Runs on the connection's thread; may block (bounded by the handler).
    fn handle(&self, req: Request) -> Answer;
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
