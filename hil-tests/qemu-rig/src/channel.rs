//! The printer channel: the bytes of the guest's USB printer gadget, carried both ways
//! between QEMU's third serial port (a Unix socket here, `/dev/ttyS2` in the guest, where
//! `rig-guest` relays `/dev/g_printer0`) and emupos's raw TCP printer port.
//!
//! The host end is a plain byte pipe: whatever the guest's USB host side printed goes to
//! emupos unchanged, and whatever emupos answers (DLE EOT status bytes, Automatic Status
//! Back, GS I identity) goes back unchanged. Two extras, both for the scenarios:
//! - [`Channel::connect`] (re)connects the emupos side: a fresh printer connection for each
//!   case, so nothing a case left behind (held data, ASB enabled) reaches the next one;
//! - [`Channel::trigger_after`] runs an action (setting an emupos fault) after the next `n`
//!   bytes from the guest: the bytes before it reach emupos before the fault, the rest
//!   after, so "paper out mid-job" happens at a known point of the job.
//!
//! Bytes from the guest while no emupos is connected are counted and dropped.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// How long a write to either side may take before the bytes are given up (a wedged peer
/// must not stall the other direction).
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What runs when a trigger fires; its error is kept for [`Channel::take_trigger_error`].
pub type Action = Box<dyn FnOnce() -> Result<(), String> + Send>;

struct Trigger {
    left: u64,
    action: Action,
}

#[derive(Default)]
struct Shared {
    emupos: Option<TcpStream>,
    trigger: Option<Trigger>,
    trigger_error: Option<String>,
    /// Bytes from the guest, in all.
    from_guest: u64,
    /// Bytes from the guest dropped because no emupos was connected.
    dropped: u64,
    /// Bytes from emupos to the guest, in all.
    to_guest: u64,
}

/// The host end of the printer channel. Cheap to share: the pipe threads hold clones.
#[derive(Clone)]
pub struct Channel {
    shared: Arc<Mutex<Shared>>,
    /// The guest side (QEMU's socket), for emupos's replies.
    guest: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counters of a channel, for steps and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Bytes from the guest, in all.
    pub from_guest: u64,
    /// Bytes from the guest dropped (no emupos connected).
    pub dropped: u64,
    /// Bytes from emupos to the guest.
    pub to_guest: u64,
}

impl Channel {
    /// Start piping: `reader` and `writer` are the guest side (two handles of QEMU's
    /// socket). A thread reads the guest side until it closes.
    pub fn start(
        reader: impl Read + Send + 'static,
        writer: impl Write + Send + 'static,
    ) -> Channel {
        let channel = Channel {
            shared: Arc::new(Mutex::new(Shared::default())),
            guest: Arc::new(Mutex::new(Box::new(writer))),
        };
        let c = channel.clone();
        std::thread::spawn(move || c.carry_from_guest(reader));
        channel
    }

    fn carry_from_guest(&self, mut reader: impl Read) {
        let mut buf = [0u8; 4096];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut data = buf.get(..n).unwrap_or_default();
            let mut s = lock(&self.shared);
            s.from_guest += n as u64;
            // A trigger inside this piece: the bytes before it, the action, then the rest.
            let fire = s
                .trigger
                .as_ref()
                .is_some_and(|t| t.left <= data.len() as u64);
            if fire {
                if let Some(t) = s.trigger.take() {
                    let cut = usize::try_from(t.left)
                        .unwrap_or(data.len())
                        .min(data.len());
                    let (before, after) = data.split_at(cut);
                    forward(&mut s, before);
                    if let Err(e) = (t.action)() {
                        log::warn!("printer channel: the trigger's action failed: {e}");
                        s.trigger_error = Some(e);
                    }
                    data = after;
                }
            } else if let Some(t) = s.trigger.as_mut() {
                t.left -= data.len() as u64;
            }
            forward(&mut s, data);
        }
    }

    /// Connect the emupos side to `addr` (its raw TCP printer port), closing the previous
    /// connection. A thread carries emupos's bytes to the guest until the connection ends.
    ///
    /// Errors: the connection cannot be made (in words).
    pub fn connect(&self, addr: SocketAddr) -> Result<(), String> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|e| format!("connecting to emupos at {addr}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
        let reader = stream
            .try_clone()
            .map_err(|e| format!("emupos connection: {e}"))?;
        if let Some(old) = lock(&self.shared).emupos.replace(stream) {
            let _ = old.shutdown(Shutdown::Both);
        }
        let c = self.clone();
        std::thread::spawn(move || c.carry_to_guest(reader));
        Ok(())
    }

    /// Close the emupos side (bytes from the guest are dropped until the next connect).
    pub fn disconnect(&self) {
        if let Some(old) = lock(&self.shared).emupos.take() {
            let _ = old.shutdown(Shutdown::Both);
        }
    }

    fn carry_to_guest(&self, mut reader: TcpStream) {
        let mut buf = [0u8; 4096];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let data = buf.get(..n).unwrap_or_default();
            if let Err(e) = lock(&self.guest).write_all(data) {
                log::warn!("printer channel: {n} byte(s) from emupos not delivered: {e}");
                continue;
            }
            lock(&self.shared).to_guest += n as u64;
        }
    }

    /// Run `action` once `bytes` more bytes came from the guest (replacing a pending
    /// trigger). With `bytes` 0 it runs before the next byte is forwarded.
    pub fn trigger_after(&self, bytes: u64, action: Action) {
        let mut s = lock(&self.shared);
        s.trigger_error = None;
        s.trigger = Some(Trigger {
            left: bytes,
            action,
        });
    }

    /// Drop a pending trigger; whether there was one.
    pub fn cancel_trigger(&self) -> bool {
        lock(&self.shared).trigger.take().is_some()
    }

    /// Whether a trigger is still waiting for its bytes.
    pub fn trigger_pending(&self) -> bool {
        lock(&self.shared).trigger.is_some()
    }

    /// The error of the last trigger's action, if it failed (taken).
    pub fn take_trigger_error(&self) -> Option<String> {
        lock(&self.shared).trigger_error.take()
    }

    /// The byte counters.
    pub fn counters(&self) -> Counters {
        let s = lock(&self.shared);
        Counters {
            from_guest: s.from_guest,
            dropped: s.dropped,
            to_guest: s.to_guest,
        }
    }
}

fn forward(s: &mut Shared, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let ok = match s.emupos.as_mut() {
        Some(tcp) => match tcp.write_all(data) {
            Ok(()) => true,
            Err(e) => {
                log::warn!("printer channel: writing to emupos failed: {e}; disconnected");
                s.emupos = None;
                false
            }
        },
        None => false,
    };
    if !ok {
        s.dropped += data.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::net::UnixStream;
    use std::sync::mpsc;
    use std::time::Instant;

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(5), "timed out: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn read_n(s: &mut impl Read, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        s.read_exact(&mut v).unwrap();
        v
    }

    /// The guest's socket (QEMU's side) and emupos (a TCP listener) with a channel between.
    fn rig() -> (Channel, UnixStream, TcpListener) {
        let (qemu, host) = UnixStream::pair().unwrap();
        qemu.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let channel = Channel::start(host.try_clone().unwrap(), host);
        let emupos = TcpListener::bind("127.0.0.1:0").unwrap();
        (channel, qemu, emupos)
    }

    #[test]
    fn bytes_go_both_ways_unchanged() {
        let (channel, mut guest, emupos) = rig();
        channel.connect(emupos.local_addr().unwrap()).unwrap();
        let (mut printer, _) = emupos.accept().unwrap();
        printer
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // DLE EOT 1 out, a status byte back; every byte value passes.
        guest.write_all(&[0x10, 0x04, 0x01]).unwrap();
        assert_eq!(read_n(&mut printer, 3), [0x10, 0x04, 0x01]);
        printer.write_all(&[0x16]).unwrap();
        assert_eq!(read_n(&mut guest, 1), [0x16]);
        let all: Vec<u8> = (0..=255u8).collect();
        guest.write_all(&all).unwrap();
        assert_eq!(read_n(&mut printer, 256), all);
        printer.write_all(&all).unwrap();
        assert_eq!(read_n(&mut guest, 256), all);
        wait_until("counters", || {
            channel.counters()
                == Counters {
                    from_guest: 259,
                    dropped: 0,
                    to_guest: 257,
                }
        });
    }

    #[test]
    fn a_trigger_fires_between_the_right_bytes() {
        let (channel, mut guest, emupos) = rig();
        channel.connect(emupos.local_addr().unwrap()).unwrap();
        let (mut printer, _) = emupos.accept().unwrap();
        printer
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // The action records how many bytes emupos had received when it ran.
        let seen = Arc::new(Mutex::new(Vec::<u8>::new()));
        let (fired_tx, fired_rx) = mpsc::channel();
        channel.trigger_after(
            5,
            Box::new(move || {
                fired_tx.send(()).unwrap();
                Ok(())
            }),
        );
        assert!(channel.trigger_pending());
        guest.write_all(b"abc").unwrap();
        lock(&seen).extend(read_n(&mut printer, 3));
        assert!(fired_rx.try_recv().is_err(), "fired after 3 of 5 bytes");
        guest.write_all(b"defgh").unwrap();
        fired_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        lock(&seen).extend(read_n(&mut printer, 5));
        assert_eq!(lock(&seen).as_slice(), b"abcdefgh");
        assert!(!channel.trigger_pending());
        assert_eq!(channel.take_trigger_error(), None);

        // A failing action is kept; a cancelled one never runs.
        channel.trigger_after(0, Box::new(|| Err("emupos said no".into())));
        guest.write_all(b"x").unwrap();
        assert_eq!(read_n(&mut printer, 1), b"x");
        wait_until("the error", || !channel.trigger_pending());
        assert_eq!(
            channel.take_trigger_error().as_deref(),
            Some("emupos said no")
        );
        channel.trigger_after(
            1,
            Box::new(|| -> Result<(), String> { panic!("a cancelled trigger ran") }),
        );
        assert!(channel.cancel_trigger());
        assert!(!channel.cancel_trigger());
        guest.write_all(b"yz").unwrap();
        assert_eq!(read_n(&mut printer, 2), b"yz");
    }

    #[test]
    fn a_reconnect_is_a_fresh_connection_and_no_emupos_drops_bytes() {
        let (channel, mut guest, emupos) = rig();
        guest.write_all(b"lost").unwrap();
        wait_until("dropped", || channel.counters().dropped == 4);
        channel.connect(emupos.local_addr().unwrap()).unwrap();
        let (mut first, _) = emupos.accept().unwrap();
        channel.connect(emupos.local_addr().unwrap()).unwrap();
        let (mut second, _) = emupos.accept().unwrap();
        second
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // The first connection was closed by the reconnect.
        let mut rest = Vec::new();
        first
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(first.read_to_end(&mut rest).unwrap(), 0);
        guest.write_all(b"new").unwrap();
        assert_eq!(read_n(&mut second, 3), b"new");
        second.write_all(b"ok").unwrap();
        assert_eq!(read_n(&mut guest, 2), b"ok");
        channel.disconnect();
        guest.write_all(b"gone").unwrap();
        wait_until("dropped again", || channel.counters().dropped == 8);
        // Nothing unreachable refuses quietly: a closed port is an error in words.
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert!(channel.connect(closed).unwrap_err().contains("emupos"));
    }
}
