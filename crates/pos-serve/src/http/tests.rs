//! The HTTP front on its own, with an echo handler: framing, limits, admission, eviction, any
//! bytes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;

use proptest::strategy::Strategy;

use super::*;

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
