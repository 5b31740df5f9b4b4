//! The card client against a fake QEMU side written with the same codec, over a real Unix
//! socket. Timeouts are only upper bounds on waiting; nothing asserts on timing.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pos_hal::{FaultKind, VirtualCard};
use pos_vscard::codec::{MAGIC, VERSION, error_code};
use pos_vscard::{
    Body, CardClient, ClientConfig, CloseReason, Decoder, Error, LinkState, Message, SilentPolicy,
    encode,
};

const WAIT: Duration = Duration::from_secs(10);
const ATR: [u8; 4] = [0x3B, 0x02, 0x14, 0x50];

/// QEMU's side of the chardev, played with the crate's own codec.
struct FakeQemu {
    stream: UnixStream,
    dec: Decoder,
}

impl FakeQemu {
    fn recv(&mut self) -> Message {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(m) = self.dec.pop().unwrap() {
                return m;
            }
            let n = self.stream.read(&mut buf).unwrap();
            assert!(n > 0, "client closed the socket");
            self.dec.push(&buf[..n]);
        }
    }

    /// Read until the client closes its side; return what came before.
    fn recv_until_eof(&mut self) -> Vec<Message> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            while let Some(m) = self.dec.pop().unwrap() {
                out.push(m);
            }
            let n = self.stream.read(&mut buf).unwrap();
            if n == 0 {
                return out;
            }
            self.dec.push(&buf[..n]);
        }
    }

    fn send(&mut self, m: Message) {
        self.stream.write_all(&encode(&m)).unwrap();
    }

    fn error(&mut self, reader_id: u32, code: u32) {
        self.send(Message::new(reader_id, Body::Error { code }));
    }

    /// Play QEMU's part of the handshake, checking the client's order.
    fn handshake(&mut self) {
        let init = self.recv();
        match init.body {
            Body::Init {
                magic,
                version,
                ref capabilities,
            } => {
                assert_eq!(magic, MAGIC);
                assert_eq!(version, VERSION);
                assert!(!capabilities.is_empty());
            }
            other => panic!("expected Init first, got {other:?}"),
        }
        // QEMU's answer to Init.
        self.send(Message::init());
        assert_eq!(self.recv().body, Body::ReaderRemove);
        assert!(matches!(self.recv().body, Body::ReaderAdd { .. }));
        self.error(0, error_code::SUCCESS); // answers ReaderRemove
        self.error(0, error_code::SUCCESS); // answers ReaderAdd: reader id 0
    }
}

struct Rig {
    _dir: tempfile::TempDir,
    client: CardClient,
    qemu: FakeQemu,
}

/// Insert `card` and play QEMU accepting its ATR.
fn insert_acked(r: &mut Rig, card: TestCard) {
    r.client.insert(Box::new(card)).unwrap();
    assert!(matches!(r.qemu.recv().body, Body::Atr(_)));
    r.qemu.error(0, error_code::SUCCESS);
}

fn rig_with(config: ClientConfig) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("CARD.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let client = CardClient::connect_with(&path, WAIT, config).unwrap();
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    Rig {
        _dir: dir,
        client,
        qemu: FakeQemu {
            stream,
            dec: Decoder::new(),
        },
    }
}

fn ready_rig(config: ClientConfig) -> Rig {
    let mut r = rig_with(config);
    r.qemu.handshake();
    r.client.wait_connected(WAIT).unwrap();
    r
}

/// Answers `cmd[1..] ++ 90 00`; silent for `DE AD`; records every command it sees.
struct TestCard {
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
    atr: Option<Vec<u8>>,
}

impl TestCard {
    fn new() -> (Self, Arc<Mutex<Vec<Vec<u8>>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        (
            TestCard {
                seen: Arc::clone(&seen),
                atr: Some(ATR.to_vec()),
            },
            seen,
        )
    }
}

impl VirtualCard for TestCard {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        self.atr.clone()
    }
    fn transmit(&mut self, command: &[u8]) -> Option<Vec<u8>> {
        self.seen.lock().unwrap().push(command.to_vec());
        if command == [0xDE, 0xAD] {
            return None;
        }
        let mut r = command.get(1..).unwrap_or(&[]).to_vec();
        r.extend_from_slice(&[0x90, 0x00]);
        Some(r)
    }
}

fn apdu(bytes: &[u8]) -> Message {
    Message::new(0, Body::Apdu(bytes.to_vec()))
}

#[test]
fn handshake_insert_apdu_silent_and_remove() {
    let mut r = ready_rig(ClientConfig::default());
    let s = r.client.stats();
    assert_eq!(s.state, LinkState::Ready);
    assert_eq!(s.reader_id, Some(0));

    let (card, seen) = TestCard::new();
    r.client.insert(Box::new(card)).unwrap();
    let m = r.qemu.recv();
    assert_eq!(m.reader_id, 0);
    assert_eq!(m.body, Body::Atr(ATR.to_vec()));
    r.qemu.error(0, error_code::SUCCESS);

    r.qemu.send(apdu(&[0x00, 0xA4, 0x04, 0x00]));
    assert_eq!(
        r.qemu.recv().body,
        Body::Apdu(vec![0xA4, 0x04, 0x00, 0x90, 0x00])
    );

    // A silent card: an Error message (general error) by default.
    r.qemu.send(apdu(&[0xDE, 0xAD]));
    assert_eq!(
        r.qemu.recv().body,
        Body::Error {
            code: error_code::GENERAL_ERROR
        }
    );

    r.client.remove().unwrap();
    assert_eq!(r.qemu.recv().body, Body::CardRemove);
    r.qemu.error(0, error_code::SUCCESS);

    let s = r
        .client
        .wait_until(WAIT, "removal", |s| s.removals == 1)
        .unwrap();
    assert_eq!(s.apdus_received, 2);
    assert_eq!(s.apdus_answered, 1);
    assert_eq!(s.apdus_failed, 1);
    assert_eq!(s.insertions, 1);
    assert!(!s.card_visible);
    assert_eq!(seen.lock().unwrap().len(), 2);
    r.client.shutdown().unwrap();
}

#[test]
fn remove_on_second_apdu_answers_the_first_then_pulls_the_card() {
    let mut r = ready_rig(ClientConfig::default());
    let (card, seen) = TestCard::new();
    insert_acked(&mut r, card);
    r.client.remove_on_apdu(2).unwrap();

    r.qemu.send(apdu(&[0x00, 0x01]));
    assert_eq!(r.qemu.recv().body, Body::Apdu(vec![0x01, 0x90, 0x00]));
    r.qemu.send(apdu(&[0x00, 0x02]));
    assert_eq!(r.qemu.recv().body, Body::CardRemove);
    r.qemu.error(0, error_code::SUCCESS);

    let s = r
        .client
        .wait_until(WAIT, "the pull", |s| s.removals == 1)
        .unwrap();
    assert_eq!(s.apdus_received, 2);
    assert_eq!(s.apdus_answered, 1);
    assert_eq!(s.apdus_unanswered, 1);
    // The card never saw the second command.
    assert_eq!(*seen.lock().unwrap(), vec![vec![0x00, 0x01]]);

    // An APDU crossing the CardRemove is not answered; the next message is the shutdown's
    // ReaderRemove (no card left, so no CardRemove).
    r.qemu.send(apdu(&[0x00, 0x03]));
    r.client
        .wait_until(WAIT, "the crossing APDU", |s| s.apdus_received == 3)
        .unwrap();
    r.client.shutdown().unwrap();
    let rest = r.qemu.recv_until_eof();
    assert_eq!(
        rest.into_iter().map(|m| m.body).collect::<Vec<_>>(),
        vec![Body::ReaderRemove]
    );
}

#[test]
fn insert_before_handshake_sends_atr_once_reader_is_added() {
    let mut r = rig_with(ClientConfig::default());
    let (card, _) = TestCard::new();
    r.client.insert(Box::new(card)).unwrap();
    r.qemu.handshake();
    assert_eq!(r.qemu.recv().body, Body::Atr(ATR.to_vec()));
    r.client.wait_connected(WAIT).unwrap();
    r.client.shutdown().unwrap();
}

#[test]
fn mute_card_sends_nothing_and_rejected_atr_is_counted() {
    let mut r = ready_rig(ClientConfig::default());
    let (mut mute, _) = TestCard::new();
    mute.atr = None;
    r.client.insert(Box::new(mute)).unwrap();
    r.client.remove().unwrap();
    // A 41-byte ATR: QEMU refuses it with a general error.
    let (mut long, _) = TestCard::new();
    long.atr = Some(vec![0x3B; 41]);
    r.client.insert(Box::new(long)).unwrap();
    // The first thing on the wire is the long ATR: the mute card produced no message.
    assert_eq!(r.qemu.recv().body, Body::Atr(vec![0x3B; 41]));
    r.qemu.error(0, error_code::GENERAL_ERROR);
    let s = r
        .client
        .wait_until(WAIT, "the refusal", |s| s.atr_rejected == 1)
        .unwrap();
    assert_eq!(s.insertions, 2);
    assert_eq!(s.mute_insertions, 1);
    assert_eq!(s.removals, 1);
    assert!(!s.card_visible);
    assert!(s.last_error.unwrap().contains("ATR"));
    r.client.shutdown().unwrap();
}

#[test]
fn silent_card_with_no_answer_policy_and_flush() {
    let mut r = ready_rig(ClientConfig {
        silent: SilentPolicy::NoAnswer,
        ..ClientConfig::default()
    });
    let (card, _) = TestCard::new();
    insert_acked(&mut r, card);
    r.qemu.send(apdu(&[0xDE, 0xAD]));
    r.qemu.send(Message::new(0, Body::Flush));
    // Nothing for the silent APDU: the next message is the FlushComplete.
    assert_eq!(r.qemu.recv().body, Body::FlushComplete);
    assert_eq!(r.client.stats().apdus_unanswered, 1);
    // Shutdown pulls the card and removes the reader, then closes the socket.
    r.client.shutdown().unwrap();
    let rest: Vec<Body> = r
        .qemu
        .recv_until_eof()
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(rest, vec![Body::CardRemove, Body::ReaderRemove]);
    assert_eq!(
        r.client.stats().state,
        LinkState::Closed(CloseReason::Shutdown)
    );
}

#[test]
fn qemu_closing_the_socket_is_reported() {
    let r = ready_rig(ClientConfig::default());
    let Rig { _dir, client, qemu } = r;
    drop(qemu);
    assert_eq!(client.wait_closed(WAIT).unwrap(), CloseReason::Eof);
    client.shutdown().unwrap();
    let (card, _) = TestCard::new();
    let e = client.insert(Box::new(card)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Closed {
                reason: CloseReason::Eof
            }
        ),
        "{e}"
    );
    assert_eq!(e.kind(), FaultKind::Disconnected);
}

#[test]
fn oversized_message_from_qemu_fails_the_link() {
    let mut r = ready_rig(ClientConfig::default());
    // A header announcing 1 MiB of APDU.
    let mut hdr = Vec::new();
    hdr.extend_from_slice(&7u32.to_be_bytes());
    hdr.extend_from_slice(&0u32.to_be_bytes());
    hdr.extend_from_slice(&(1u32 << 20).to_be_bytes());
    r.qemu.stream.write_all(&hdr).unwrap();
    match r.client.wait_closed(WAIT).unwrap() {
        CloseReason::Failed(m) => assert!(m.contains("cap"), "{m}"),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn bad_magic_fails_the_handshake() {
    let mut r = rig_with(ClientConfig::default());
    assert!(matches!(r.qemu.recv().body, Body::Init { .. }));
    r.qemu.send(Message::new(
        u32::MAX,
        Body::Init {
            magic: *b"XXXX",
            version: VERSION,
            capabilities: vec![0],
        },
    ));
    let e = r.client.wait_connected(WAIT).unwrap_err();
    assert!(matches!(e, Error::Handshake(_)), "{e}");
    assert_eq!(e.kind(), FaultKind::Protocol);
}

#[test]
fn refused_reader_fails_the_handshake() {
    let mut r = rig_with(ClientConfig::default());
    assert!(matches!(r.qemu.recv().body, Body::Init { .. }));
    r.qemu.send(Message::init());
    assert_eq!(r.qemu.recv().body, Body::ReaderRemove);
    assert!(matches!(r.qemu.recv().body, Body::ReaderAdd { .. }));
    r.qemu.error(0, error_code::SUCCESS);
    r.qemu.error(u32::MAX, error_code::CANNOT_ADD_MORE_READERS);
    let e = r.client.wait_connected(WAIT).unwrap_err();
    assert!(matches!(e, Error::Handshake(_)), "{e}");
}

#[test]
fn connect_timeout_names_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody-home.sock");
    let e = CardClient::connect(&path, Duration::from_millis(100)).unwrap_err();
    assert!(matches!(e, Error::ConnectTimeout { .. }), "{e}");
    assert_eq!(e.kind(), FaultKind::Timeout);
    assert!(e.to_string().contains("nobody-home.sock"), "{e}");
}

#[test]
fn connect_retries_until_the_socket_appears() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("late.sock");
    let p2 = path.clone();
    let t = std::thread::spawn(move || CardClient::connect(&p2, WAIT));
    // Whenever the client is already retrying or not, binding later must work.
    std::thread::sleep(Duration::from_millis(50));
    let listener = UnixListener::bind(&path).unwrap();
    let (stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let client = t.join().unwrap().unwrap();
    let mut q = FakeQemu {
        stream,
        dec: Decoder::new(),
    };
    q.handshake();
    client.wait_connected(WAIT).unwrap();
    client.shutdown().unwrap();
}

/// A short timeout for `sync` calls that are expected to time out (QEMU has not answered).
const SHORT: Duration = Duration::from_millis(100);

#[test]
fn sync_after_insert_waits_for_the_atr_answer() {
    let mut r = ready_rig(ClientConfig::default());
    let (card, _) = TestCard::new();
    r.client.insert(Box::new(card)).unwrap();
    assert_eq!(r.qemu.recv().body, Body::Atr(ATR.to_vec()));
    // The ATR is on the wire but QEMU has not answered it: not synced.
    let e = r.client.sync(SHORT).unwrap_err();
    match &e {
        Error::Timeout { what, .. } => assert!(what.contains("QEMU to acknowledge"), "{e}"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(e.kind(), FaultKind::Timeout);
    assert_eq!(r.client.stats().awaiting_answers, 1);
    r.qemu.error(0, error_code::SUCCESS);
    let s = r.client.sync(WAIT).unwrap();
    assert_eq!(s.awaiting_answers, 0);
    assert!(s.card_visible);
    assert_eq!(s.insertions, 1);
    assert_eq!(s.atr_rejected, 0);
    r.client.shutdown().unwrap();
}

#[test]
fn sync_after_remove_waits_for_the_card_remove_answer() {
    let mut r = ready_rig(ClientConfig::default());
    let (card, _) = TestCard::new();
    insert_acked(&mut r, card);
    r.client.sync(WAIT).unwrap();

    r.client.remove().unwrap();
    assert_eq!(r.qemu.recv().body, Body::CardRemove);
    assert!(matches!(
        r.client.sync(SHORT).unwrap_err(),
        Error::Timeout { .. }
    ));
    r.qemu.error(0, error_code::SUCCESS);
    let s = r.client.sync(WAIT).unwrap();
    assert_eq!(s.awaiting_answers, 0);
    assert_eq!(s.removals, 1);
    assert!(!s.card_visible);
    r.client.shutdown().unwrap();
}

#[test]
fn sync_before_the_handshake_waits_for_it_and_the_atr() {
    let mut r = rig_with(ClientConfig::default());
    let (card, _) = TestCard::new();
    r.client.insert(Box::new(card)).unwrap();
    // Our Init is unanswered: not synced.
    assert!(matches!(
        r.client.sync(SHORT).unwrap_err(),
        Error::Timeout { .. }
    ));
    r.qemu.handshake();
    assert_eq!(r.qemu.recv().body, Body::Atr(ATR.to_vec()));
    // Handshake done, ATR sent but not answered: still not synced.
    assert!(matches!(
        r.client.sync(SHORT).unwrap_err(),
        Error::Timeout { .. }
    ));
    r.qemu.error(0, error_code::SUCCESS);
    let s = r.client.sync(WAIT).unwrap();
    assert_eq!(s.state, LinkState::Ready);
    assert!(s.card_visible);
    assert_eq!(s.awaiting_answers, 0);
    r.client.shutdown().unwrap();
}

#[test]
fn sync_with_a_mute_card_returns_at_once() {
    let r = ready_rig(ClientConfig::default());
    let (mut mute, _) = TestCard::new();
    mute.atr = None;
    r.client.insert(Box::new(mute)).unwrap();
    // Nothing was sent, so nothing is awaited: the fake QEMU does not act at all.
    let s = r.client.sync(WAIT).unwrap();
    assert_eq!(s.mute_insertions, 1);
    assert_eq!(s.awaiting_answers, 0);
    r.client.remove().unwrap();
    let s = r.client.sync(WAIT).unwrap();
    assert_eq!(s.removals, 1);
    assert!(s.marks_done >= 2);
    r.client.shutdown().unwrap();
}

#[test]
fn sync_counts_marks_from_every_handle() {
    let r = ready_rig(ClientConfig::default());
    let other = r.client.clone();
    let a = r.client.sync(WAIT).unwrap();
    let b = other.sync(WAIT).unwrap();
    assert!(b.marks_done > a.marks_done, "{a:?} {b:?}");
    r.client.shutdown().unwrap();
}

#[test]
fn sync_on_a_closed_link_is_an_error() {
    let r = ready_rig(ClientConfig::default());
    drop(r.qemu);
    assert_eq!(r.client.wait_closed(WAIT).unwrap(), CloseReason::Eof);
    let e = r.client.sync(WAIT).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Closed {
                reason: CloseReason::Eof
            }
        ),
        "{e}"
    );
    assert_eq!(e.kind(), FaultKind::Disconnected);

    // And after shutdown.
    let r = ready_rig(ClientConfig::default());
    r.client.shutdown().unwrap();
    let e = r.client.sync(WAIT).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Closed {
                reason: CloseReason::Shutdown
            }
        ),
        "{e}"
    );
}

#[test]
fn default_write_timeout_is_five_seconds() {
    assert_eq!(
        ClientConfig::default().write_timeout,
        Duration::from_secs(5)
    );
}

/// A QEMU that stops reading: the client's answers pile up in the socket until a write
/// blocks; the write timeout then closes the link instead of blocking the worker forever.
///
/// The fake sends many large APDUs (and keeps reading nothing); the client's reader thread
/// drains them, and the worker answers each with an APDU of about the same size. A Unix
/// stream socket's send buffer (`net.core.wmem_default`, about 208 KiB on Linux) holds only a
/// few such answers, so a write soon blocks. 200 answers of 60 000 bytes is 12 MB, far more
/// than any plausible buffer.
#[test]
fn write_timeout_closes_the_link_when_qemu_stops_reading() {
    let mut r = ready_rig(ClientConfig {
        write_timeout: Duration::from_millis(200),
        ..ClientConfig::default()
    });
    let (card, _) = TestCard::new();
    insert_acked(&mut r, card);
    r.client.sync(WAIT).unwrap();

    // From here on the fake never reads.
    r.qemu.stream.set_write_timeout(Some(WAIT)).unwrap();
    let big = encode(&apdu(&vec![0x00; 60_000]));
    for _ in 0..200 {
        // Once the client has given up, its socket is shut down and writes fail.
        if r.qemu.stream.write_all(&big).is_err() {
            break;
        }
        if matches!(r.client.stats().state, LinkState::Closed(_)) {
            break;
        }
    }
    match r.client.wait_closed(WAIT).unwrap() {
        CloseReason::Failed(m) => assert!(m.contains("timed out"), "{m}"),
        other => panic!("unexpected {other:?}"),
    }
    let s = r.client.stats();
    assert!(s.last_error.unwrap().contains("write to QEMU timed out"));
    assert!(
        s.apdus_received > s.apdus_answered,
        "{:?}",
        s.apdus_answered
    );
}
