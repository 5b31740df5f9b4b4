//! Serial magnetic-stripe readers that send the tracks as ASCII text over a byte link.
//!
//! Such a reader sends one frame per swipe: an optional prefix, the tracks
//! (`%...?;...?;...?`, with `%E?` / `;E?` / `+E?` for a track that did not read) and a
//! suffix (usually CR LF). [`SerialMsr`] reads frames through any [`pos_link::Link`], ends a
//! frame at the suffix or when the line goes quiet for [`Framing::inter_char_timeout`], and
//! turns it into a [`pos_hal::Swipe`].
//!
//! Frames that hold no track at all (no `%`, `;` or `+`: line noise, a stray CR LF) are
//! ignored and logged (length only); they never become a swipe or an error. A frame whose
//! tracks are all bad is [`MsrError::BadRead`]. Track data is never logged and never put in
//! events: logs and [`pos_hal::DeviceEvent::Swiped`] carry lengths and statuses only.
//!
//! URI options (besides the serial line settings of `pos-link`):
//!
//! | option   | values                                   | default |
//! |----------|------------------------------------------|---------|
//! | `prefix` | hex bytes, e.g. `02` (STX)               | none    |
//! | `suffix` | `crlf`, `cr`, `lf`, `none`, or hex bytes | `crlf`  |
//! | `gap_ms` | inter-character timeout in ms, 1-10000   | 100     |

use std::fmt;
use std::time::Duration;

use pos_hal::{Fault, FaultKind, Sensitive, Swipe};
use pos_link::{Address, Deadline, DeviceUri, Link, LinkError};

use crate::core::{ReaderCore, wipe};
use crate::parse_ascii;

/// Longest frame kept before it is handed to the parser even without a suffix (a reader
/// that streams garbage cannot make the buffer grow without bound).
const MAX_FRAME: usize = 1024;

/// How a reader delimits a swipe on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Framing {
    /// Bytes the reader sends before the tracks (e.g. STX); empty for none.
    pub prefix: Vec<u8>,
    /// Bytes that end a swipe (e.g. `b"\r\n"` or `b"\r"`); empty: only the gap ends a swipe.
    pub suffix: Vec<u8>,
    /// A swipe under way ends when no byte comes for this long (the suffix may be missing
    /// or lost).
    pub inter_char_timeout: Duration,
}

impl Default for Framing {
    /// No prefix, CR LF suffix, 100 ms gap.
    fn default() -> Self {
        Framing {
            prefix: Vec::new(),
            suffix: b"\r\n".to_vec(),
            inter_char_timeout: Duration::from_millis(100),
        }
    }
}

fn parse_hex(v: &str) -> Option<Vec<u8>> {
    let v = v.trim();
    if v.is_empty() || v.len() % 2 != 0 {
        return None;
    }
    (0..v.len())
        .step_by(2)
        .map(|i| v.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

impl Framing {
    /// Read the framing from URI options (`prefix`, `suffix`, `gap_ms`; see the module
    /// docs); other options are ignored.
    ///
    /// Errors: [`MsrError::InvalidConfig`] naming the first bad option.
    pub fn from_options(options: &[(String, String)]) -> Result<Self, MsrError> {
        let mut f = Framing::default();
        let bad = |k: &str, v: &str, what: &str| {
            MsrError::InvalidConfig(format!("option {k}={v:?}: expected {what}"))
        };
        for (k, v) in options {
            match k.as_str() {
                "prefix" => {
                    f.prefix = if v == "none" {
                        Vec::new()
                    } else {
                        parse_hex(v).ok_or_else(|| bad(k, v, "hex bytes such as 02, or none"))?
                    }
                }
                "suffix" => {
                    f.suffix = match v.as_str() {
                        "crlf" => b"\r\n".to_vec(),
                        "cr" => b"\r".to_vec(),
                        "lf" => b"\n".to_vec(),
                        "none" => Vec::new(),
                        _ => parse_hex(v)
                            .ok_or_else(|| bad(k, v, "crlf, cr, lf, none or hex bytes"))?,
                    }
                }
                "gap_ms" => {
                    let ms: u64 = v
                        .parse()
                        .ok()
                        .filter(|ms| (1..=10_000).contains(ms))
                        .ok_or_else(|| bad(k, v, "milliseconds from 1 to 10000"))?;
                    f.inter_char_timeout = Duration::from_millis(ms);
                }
                _ => {}
            }
        }
        Ok(f)
    }

    /// The framing of a URI's options.
    ///
    /// Errors: as [`from_options`](Self::from_options).
    pub fn from_uri(uri: &DeviceUri) -> Result<Self, MsrError> {
        Self::from_options(uri.options())
    }
}

/// Errors of the serial magstripe reader.
#[derive(Debug)]
#[non_exhaustive]
pub enum MsrError {
    /// No swipe in the time given.
    Timeout {
        /// The reader's URI.
        target: String,
        /// How long was waited.
        waited: Duration,
    },
    /// A swipe came but no track read (e.g. `%E?;E?`).
    BadRead {
        /// Status of tracks 1, 2 and 3.
        tracks: [pos_hal::TrackStatus; 3],
    },
    /// The link failed (unplugged: kind `Disconnected`; else as the link error says).
    Link(LinkError),
    /// Bad URI or framing option, or a URI this driver does not open.
    InvalidConfig(String),
}

impl fmt::Display for MsrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MsrError::Timeout { target, waited } => {
                write!(f, "{target}: no swipe in {} ms", waited.as_millis())
            }
            MsrError::BadRead { tracks } => write!(
                f,
                "bad swipe: tracks read {}, {}, {}",
                tracks[0].name(),
                tracks[1].name(),
                tracks[2].name()
            ),
            MsrError::Link(e) => write!(f, "magstripe reader link: {e}"),
            MsrError::InvalidConfig(s) => write!(f, "magstripe reader configuration: {s}"),
        }
    }
}

impl std::error::Error for MsrError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MsrError::Link(e) => Some(e),
            _ => None,
        }
    }
}

impl From<LinkError> for MsrError {
    fn from(e: LinkError) -> Self {
        MsrError::Link(e)
    }
}

impl Fault for MsrError {
    fn kind(&self) -> FaultKind {
        match self {
            MsrError::Timeout { .. } => FaultKind::Timeout,
            MsrError::BadRead { .. } => FaultKind::BadRead,
            MsrError::Link(e) => e.kind(),
            MsrError::InvalidConfig(_) => FaultKind::InvalidInput,
        }
    }
}

/// A serial ASCII magstripe reader on a [`Link`].
pub struct SerialMsr<L: Link> {
    link: L,
    core: ReaderCore,
    framing: Framing,
    /// Bytes received but not yet part of a finished frame (may hold card data: wiped).
    pending: Vec<u8>,
    #[cfg(feature = "sim")]
    simulator: Option<std::sync::Arc<crate::sim::VirtualSerialMsr>>,
}

impl<L: Link> fmt::Debug for SerialMsr<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialMsr")
            .field("uri", &self.core.uri())
            .field("framing", &self.framing)
            .field("state", &self.core.state())
            .field("pending_len", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl<L: Link> Drop for SerialMsr<L> {
    fn drop(&mut self) {
        wipe(&mut self.pending);
    }
}

/// Where the end of a frame is in `buf`: `(frame_end, consumed)`.
fn find_suffix(buf: &[u8], suffix: &[u8]) -> Option<(usize, usize)> {
    if suffix.is_empty() {
        return None;
    }
    buf.windows(suffix.len())
        .position(|w| w == suffix)
        .map(|p| (p, p + suffix.len()))
}

impl<L: Link> SerialMsr<L> {
    /// A reader on `link`, known as `uri` (for info and events), with `framing`.
    pub fn new(link: L, uri: &str, framing: Framing) -> Self {
        SerialMsr {
            link,
            core: ReaderCore::new(uri),
            framing,
            pending: Vec::new(),
            #[cfg(feature = "sim")]
            simulator: None,
        }
    }

    /// The framing in use.
    pub fn framing(&self) -> &Framing {
        &self.framing
    }

    /// Keep a virtual reader alive as long as this driver (for `sim:msr` URIs).
    #[cfg(feature = "sim")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
    pub fn with_simulator(mut self, sim: std::sync::Arc<crate::sim::VirtualSerialMsr>) -> Self {
        self.simulator = Some(sim);
        self
    }

    /// The virtual reader behind a `sim:msr` URI, to swipe cards from tests.
    #[cfg(feature = "sim")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sim")))]
    pub fn simulator(&self) -> Option<&std::sync::Arc<crate::sim::VirtualSerialMsr>> {
        self.simulator.as_ref()
    }

    /// Take one frame out of `pending`: up to the suffix, or everything when `all`.
    fn take_frame(&mut self, all: bool) -> Option<Vec<u8>> {
        let (end, consumed) = match find_suffix(&self.pending, &self.framing.suffix) {
            Some(found) => found,
            None if all || self.pending.len() >= MAX_FRAME => {
                (self.pending.len(), self.pending.len())
            }
            None => return None,
        };
        let mut frame: Vec<u8> = self.pending.get(..end).unwrap_or_default().to_vec();
        let rest: Vec<u8> = self.pending.get(consumed..).unwrap_or_default().to_vec();
        wipe(&mut self.pending);
        self.pending = rest;
        // Strip the prefix (and anything before it) when the reader sent one.
        let prefix = &self.framing.prefix;
        if !prefix.is_empty()
            && let Some(p) = frame
                .windows(prefix.len())
                .position(|w| w == prefix.as_slice())
        {
            let body = frame.get(p + prefix.len()..).unwrap_or_default().to_vec();
            wipe(&mut frame);
            frame = body;
        }
        Some(frame)
    }

    /// Parse a frame: `None` for a frame with no track at all (noise).
    fn frame_to_swipe(&self, mut frame: Vec<u8>) -> Option<Swipe> {
        // Non-ASCII bytes become DEL, which no track can hold: a track containing one reads
        // as a parity error, and byte positions stay as received.
        let mut text: Vec<u8> = frame
            .iter()
            .map(|&b| if b.is_ascii() { b } else { 0x7f })
            .collect();
        wipe(&mut frame);
        let swipe = match std::str::from_utf8(&text) {
            Ok(s) => {
                let tracks = parse_ascii(s);
                if tracks.iter().all(|t| t.status == crate::TrackStatus::Empty) {
                    None
                } else {
                    Some(Swipe {
                        tracks: tracks.map(|t| pos_hal::Track {
                            status: t.status.into(),
                            data: (t.status == crate::TrackStatus::Ok)
                                .then(|| Sensitive::new(t.data.as_bytes().to_vec())),
                        }),
                    })
                }
            }
            Err(_) => None,
        };
        if swipe.is_none() {
            log::debug!(
                "{}: ignored a {}-byte frame with no track in it (line noise)",
                self.core.uri(),
                text.len()
            );
        }
        wipe(&mut text);
        swipe
    }

    fn wait_inner(&mut self, timeout: Duration) -> Result<Swipe, MsrError> {
        let deadline = Deadline::after(timeout);
        let gap = self.framing.inter_char_timeout;
        let mut buf = [0u8; 256];
        loop {
            let mut frame = self.take_frame(false);
            if frame.is_none() {
                // A swipe under way gets the gap to finish, even past the caller's deadline.
                let read_deadline = if self.pending.is_empty() {
                    deadline
                } else {
                    Deadline::after(gap)
                };
                match self.link.read_available(&mut buf, read_deadline) {
                    Ok(n) => {
                        self.pending
                            .extend_from_slice(buf.get(..n).unwrap_or_default());
                        wipe(&mut buf);
                        continue;
                    }
                    Err(e) if e.kind() == FaultKind::Timeout => {
                        if self.pending.is_empty() {
                            return Err(self.core.timeout(deadline.waited()));
                        }
                        frame = self.take_frame(true);
                    }
                    Err(e) => return Err(self.core.link_failed(e)),
                }
            }
            let Some(frame) = frame else { continue };
            let len = frame.len();
            if let Some(swipe) = self.frame_to_swipe(frame) {
                return self
                    .core
                    .swiped(swipe, &format!("{len} bytes"))
                    .map_err(|tracks| MsrError::BadRead { tracks });
            }
            if deadline.passed() && self.pending.is_empty() {
                return Err(self.core.timeout(deadline.waited()));
            }
        }
    }
}

core_reader_impls! {
    impl[L: Link] for SerialMsr<L>;
    /// Internal: the link is open (no disconnection seen). External and Interactive add
    /// nothing yet: ASCII readers have no status request, and a swipe check would need a
    /// person; they are reported as skipped.
    fn check_health(self, level) {
        let target = self.link.target();
        self.core
            .health(level, "serial ASCII readers have no status request", |r| {
                self.core.link_check(r, "link_open", target);
            })
    }
    /// Reads frames until one holds a track. Noise frames are skipped. Timeout: `timeout`
    /// plus at most the inter-character gap per byte of a swipe already under way.
    fn wait_for_swipe;
}

/// Open a serial ASCII reader: `serial:PATH?baud=..&prefix=..&suffix=..&gap_ms=..`, or
/// (feature `sim`) a virtual reader `sim:msr?...` (see the `sim` module).
///
/// Errors: [`MsrError::InvalidConfig`] for other schemes or bad options (and for `sim:msr`
/// in a build without the `sim` feature, naming it), [`MsrError::Link`] when the port does
/// not open.
pub fn open(uri: &DeviceUri) -> Result<SerialMsr<Box<dyn Link>>, MsrError> {
    match uri.address() {
        Address::Serial { .. } => {
            let framing = Framing::from_uri(uri)?;
            let link: Box<dyn Link> = Box::new(pos_link::SerialLink::open_uri(uri)?);
            Ok(SerialMsr::new(link, &uri.to_string(), framing))
        }
        #[cfg(feature = "sim")]
        Address::Sim { kind } if kind == "msr" => crate::sim::open_uri(uri),
        #[cfg(not(feature = "sim"))]
        Address::Sim { kind } if kind == "msr" => Err(MsrError::InvalidConfig(format!(
            "{uri}: this build has no virtual magstripe reader (enable the `sim` feature of \
             pos-magstripe)"
        ))),
        _ => Err(MsrError::InvalidConfig(format!(
            "{uri}: not a serial magstripe reader address (use serial:PATH or sim:msr)"
        ))),
    }
}
