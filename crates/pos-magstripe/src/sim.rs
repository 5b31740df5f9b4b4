//! Virtual magstripe readers (feature `sim`).
//!
//! [`VirtualSerialMsr`] is a serial ASCII reader on the master side of a pseudo-terminal:
//! the driver opens the slave through the real [`pos_link::SerialLink`]. Each swipe goes
//! through the bit-level code: every track is encoded with [`crate::encode_bits`], faults
//! are applied to the bits (parity, LRC, reversed direction), and the reader sends what
//! [`crate::decode_bits`] makes of them: the text between sentinels, or the reader's error
//! token (`%E?`, `;E?`, `+E?`) for a track that did not decode.
//!
//! # `sim:msr` URIs
//!
//! `sim:msr?track2=4111111111111111=25121010000000000000&fault=lrc1`
//!
//! | option     | meaning                                                               | default |
//! |------------|-----------------------------------------------------------------------|---------|
//! | `track1`, `track2`, `track3` | track text between the sentinels; `none` for no track | a test Visa card on tracks 1 and 2 |
//! | `fault`    | comma-separated [`SwipeFault`] names: `partial`, `noise`, `reversed`, `parity1`..`parity3`, `lrc1`..`lrc3` | none |
//! | `every_ms` | the virtual reader swipes the card every this many ms, 10-600000      | 1000    |
//! | `prefix`, `suffix`, `gap_ms` | framing, as for `serial:` readers ([`crate::serial::Framing`]) | CR LF, 100 ms |
//!
//! Give track values percent-encoded where they hold `&` or `%`.

use std::io;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use pos_link::{Deadline, DeviceUri, Link, LinkError, PtyMaster, PtyPair, SerialLink};

use crate::serial::{Framing, MsrError, SerialMsr};
use crate::{Track, TrackBuf, TrackStatus, decode_bits, encode_bits};

/// Track 1 of the default `sim:msr` card (a test Visa number).
pub const DEFAULT_TRACK1: &str = "B4111111111111111^SIMULATED/CARD^25121010000000000000";
/// Track 2 of the default `sim:msr` card.
pub const DEFAULT_TRACK2: &str = "4111111111111111=25121010000000000000";

/// A fault injected into one swipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwipeFault {
    /// The swipe is cut short: the output stops in the middle of the last track sent, with
    /// no end sentinel and no suffix (the driver ends the frame at the gap).
    Partial,
    /// Garbage bytes (no sentinels, no framing) are sent first, followed by a pause longer
    /// than the gap, as from electrical noise between swipes.
    Noise,
    /// A data bit of the first character after the start sentinel of this track is flipped:
    /// the character fails odd parity and the reader sends the track's error token.
    Parity(Track),
    /// The LRC character of this track is changed (with its parity kept right): the reader
    /// sends the track's error token.
    Lrc(Track),
    /// The card is swiped backwards: every track's bits arrive reversed (readers decode
    /// this themselves, so the text still comes through).
    Reversed,
}

impl SwipeFault {
    /// Parse a fault name as used in `sim:msr?fault=...`.
    pub fn parse(name: &str) -> Option<Self> {
        let track = |d: &str| match d {
            "1" => Some(Track::One),
            "2" => Some(Track::Two),
            "3" => Some(Track::Three),
            _ => None,
        };
        match name {
            "partial" => Some(SwipeFault::Partial),
            "noise" => Some(SwipeFault::Noise),
            "reversed" => Some(SwipeFault::Reversed),
            _ => {
                if let Some(d) = name.strip_prefix("parity") {
                    track(d).map(SwipeFault::Parity)
                } else if let Some(d) = name.strip_prefix("lrc") {
                    track(d).map(SwipeFault::Lrc)
                } else {
                    None
                }
            }
        }
    }
}

/// One swipe: what is on the card and what goes wrong. `Debug` shows no track text.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SwipeSpec {
    /// Track texts (between the sentinels), tracks 1 to 3; `None`: the track is blank.
    pub tracks: [Option<String>; 3],
    /// Faults to inject.
    pub faults: Vec<SwipeFault>,
    /// Send the output in chunks of this many bytes with this pause between them
    /// (a slow reader or a busy USB-serial adapter); `None`: one write.
    pub chunks: Option<(usize, Duration)>,
}

impl std::fmt::Debug for SwipeSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lens = self.tracks.clone().map(|t| t.map(|s| s.len()));
        f.debug_struct("SwipeSpec")
            .field("track_lens", &lens)
            .field("faults", &self.faults)
            .field("chunks", &self.chunks)
            .finish()
    }
}

impl SwipeSpec {
    /// A swipe of a card with these tracks 1 and 2 (track 3 blank) and no fault.
    pub fn tracks12(track1: &str, track2: &str) -> Self {
        SwipeSpec {
            tracks: [Some(track1.to_string()), Some(track2.to_string()), None],
            ..Default::default()
        }
    }

    /// Add a fault.
    pub fn with_fault(mut self, fault: SwipeFault) -> Self {
        self.faults.push(fault);
        self
    }
}

/// What the reader makes of one track after the bit-level round trip: the text on `Ok`,
/// else the decode status.
fn read_track(track: Track, text: &str, faults: &[SwipeFault]) -> Result<TrackBuf, TrackStatus> {
    let mut bits = [0u8; 1024];
    let leading = 20;
    let Ok(n) = encode_bits(track, text, leading, &mut bits) else {
        // Text the track cannot hold: what a badly encoded card gives.
        return Err(TrackStatus::Parity);
    };
    let w = track.char_bits();
    let d = track.data_bits();
    for fault in faults {
        match *fault {
            SwipeFault::Parity(t) if t == track => {
                // First data character (or the end sentinel of an empty track).
                if let Some(b) = bits.get_mut(leading + w) {
                    *b ^= 1;
                }
            }
            SwipeFault::Lrc(t) if t == track => {
                // Flip the LRC's lowest data bit and its parity bit: parity stays odd.
                let lrc = n - w;
                for i in [lrc, lrc + d] {
                    if let Some(b) = bits.get_mut(i) {
                        *b ^= 1;
                    }
                }
            }
            _ => {}
        }
    }
    // Trailing padding, as a real head reads past the end of the data.
    let total = (n + 20).min(bits.len());
    let stream = bits.get_mut(..total).unwrap_or_default();
    if faults.contains(&SwipeFault::Reversed) {
        stream.reverse();
    }
    let mut out = TrackBuf::new();
    match decode_bits(track, stream, &mut out) {
        TrackStatus::Ok => Ok(out),
        s => Err(s),
    }
}

/// The reader's output for a swipe (without the Noise and Partial faults' effects on
/// timing): prefix, tracks, suffix. Partial cuts the output inside the last track.
fn reader_output(spec: &SwipeSpec, framing: &Framing) -> Vec<u8> {
    let mut out = framing.prefix.clone();
    let mut last_track_start = None;
    for track in Track::ALL {
        let Some(text) = spec.tracks.get(track.index()).and_then(Option::as_ref) else {
            continue;
        };
        let marker = match track {
            Track::One => b'%',
            Track::Two => b';',
            Track::Three => b'+',
        };
        last_track_start = Some(out.len());
        out.push(marker);
        match read_track(track, text, &spec.faults) {
            Ok(buf) => out.extend_from_slice(buf.as_bytes()),
            Err(_) => out.push(b'E'),
        }
        out.push(b'?');
    }
    if spec.faults.contains(&SwipeFault::Partial) {
        if let Some(start) = last_track_start {
            // Keep the marker and half of the track's characters; no end sentinel.
            let body = out.len().saturating_sub(start + 2);
            out.truncate(start + 1 + body / 2);
        }
        return out;
    }
    out.extend_from_slice(&framing.suffix);
    out
}

/// A virtual serial ASCII reader on a pseudo-terminal master.
///
/// Dropping it (or [`unplug`](Self::unplug)) closes the master: the driver sees the reader
/// disconnected.
#[derive(Debug)]
pub struct VirtualSerialMsr {
    master: Mutex<Option<PtyMaster>>,
    framing: Framing,
}

fn unplugged() -> LinkError {
    LinkError::disconnected(
        "sim:msr",
        pos_link::Operation::Write,
        "the virtual reader was unplugged",
    )
}

impl VirtualSerialMsr {
    /// A virtual reader with `framing` on a new pty; returns it and the slave's path.
    ///
    /// Errors: `Io` when no pty can be allocated.
    pub fn on_pty(framing: Framing) -> Result<(Self, String), LinkError> {
        let (master, slave) = PtyPair::open()?.into_parts();
        Ok((
            VirtualSerialMsr {
                master: Mutex::new(Some(master)),
                framing,
            },
            slave,
        ))
    }

    /// The framing it sends.
    pub fn framing(&self) -> &Framing {
        &self.framing
    }

    fn write(&self, bytes: &[u8]) -> Result<(), LinkError> {
        let mut guard = self.master.lock().unwrap_or_else(PoisonError::into_inner);
        let master = guard.as_mut().ok_or_else(unplugged)?;
        master.write_all(bytes, Deadline::after(Duration::from_secs(2)))
    }

    /// Send raw bytes as they are (tests of framing and noise).
    ///
    /// Errors: `Disconnected` after [`unplug`](Self::unplug); link errors.
    pub fn send_raw(&self, bytes: &[u8]) -> Result<(), LinkError> {
        self.write(bytes)
    }

    /// Swipe a card. Returns once every byte has been written (after the pauses of
    /// `spec.chunks` and of the `Noise` fault).
    ///
    /// Errors: `Disconnected` after [`unplug`](Self::unplug); link errors.
    pub fn swipe(&self, spec: &SwipeSpec) -> Result<(), LinkError> {
        if spec.faults.contains(&SwipeFault::Noise) {
            // Bytes no reader output holds as track markers: no `%`, `;`, `+` or `?`.
            self.write(b"\x00\x1b~#\x7f\xff!@")?;
            std::thread::sleep(self.framing.inter_char_timeout * 3);
        }
        let mut out = reader_output(spec, &self.framing);
        let result = match spec.chunks {
            Some((size, pause)) if size > 0 => {
                let mut r = Ok(());
                for (i, chunk) in out.chunks(size).enumerate() {
                    if i > 0 {
                        std::thread::sleep(pause);
                    }
                    r = self.write(chunk);
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
            _ => self.write(&out),
        };
        out.fill(0);
        std::hint::black_box(&mut out);
        result
    }

    /// Unplug the reader: the master side closes and the driver's reads fail with
    /// `Disconnected`.
    pub fn unplug(&self) {
        self.master
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

fn sim_spec(uri: &DeviceUri) -> Result<SwipeSpec, MsrError> {
    let mut spec = SwipeSpec::tracks12(DEFAULT_TRACK1, DEFAULT_TRACK2);
    for (i, key) in ["track1", "track2", "track3"].iter().enumerate() {
        if let Some(v) = uri.option(key)
            && let Some(slot) = spec.tracks.get_mut(i)
        {
            *slot = (v != "none").then(|| v.to_string());
        }
    }
    if let Some(list) = uri.option("fault") {
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let fault = SwipeFault::parse(name).ok_or_else(|| {
                MsrError::InvalidConfig(format!(
                    "option fault={name:?}: expected partial, noise, reversed, parity1-3 or lrc1-3"
                ))
            })?;
            spec.faults.push(fault);
        }
    }
    Ok(spec)
}

/// Open `sim:msr?...`: a [`VirtualSerialMsr`] on a pty, swiping the URI's card every
/// `every_ms`, and the driver on the slave through [`SerialLink`]. The returned driver keeps
/// the virtual reader alive ([`SerialMsr::simulator`] gives it, to swipe or unplug by hand).
///
/// Errors: [`MsrError::InvalidConfig`] for bad options, [`MsrError::Link`] when no pty.
pub fn open_uri(uri: &DeviceUri) -> Result<SerialMsr<Box<dyn Link>>, MsrError> {
    let framing = Framing::from_uri(uri)?;
    let spec = sim_spec(uri)?;
    let every = match uri.option("every_ms") {
        None => Duration::from_millis(1000),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|ms| (10..=600_000).contains(ms))
            .map(Duration::from_millis)
            .ok_or_else(|| {
                MsrError::InvalidConfig(format!(
                    "option every_ms={v:?}: expected milliseconds from 10 to 600000"
                ))
            })?,
    };
    let (sim, slave) = VirtualSerialMsr::on_pty(framing.clone())?;
    let link: Box<dyn Link> = Box::new(SerialLink::open(
        &slave,
        pos_link::SerialSettings::default(),
    )?);
    let sim = Arc::new(sim);
    let weak: Weak<VirtualSerialMsr> = Arc::downgrade(&sim);
    std::thread::Builder::new()
        .name("sim-msr".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                let Some(sim) = weak.upgrade() else { break };
                if sim.swipe(&spec).is_err() {
                    break;
                }
            }
        })
        .map_err(|e: io::Error| {
            MsrError::Link(pos_link::classify_io(
                e,
                "sim:msr",
                pos_link::Operation::Open,
                Duration::ZERO,
            ))
        })?;
    // The track options are card data: the name in info, events and logs leaves them out.
    let public: Vec<(String, String)> = uri
        .options()
        .iter()
        .filter(|(k, _)| !k.starts_with("track"))
        .cloned()
        .collect();
    let name = DeviceUri::new(uri.address().clone(), public)
        .map_or_else(|_| "sim:msr".to_string(), |u| u.to_string());
    Ok(SerialMsr::new(link, &name, framing).with_simulator(sim))
}
