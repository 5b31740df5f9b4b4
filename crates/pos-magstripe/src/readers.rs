//! Keyboard-wedge and TTL-head readers behind the `pos_hal` traits (feature `std`).
//!
//! * [`WedgeMsr`] turns the swipes of a [`SwipeSource`] (a grabbed [`EvdevWedge`], or a
//!   [`KeyDecoder`] over any [`KeySource`] of key events) into [`pos_hal::Swipe`]s with the
//!   per-track status of [`parse_ascii`]. [`open_evdev`] opens `evdev:` URIs.
//! * [`TtlMsr`] polls a [`TtlHead`] on three `embedded-hal` 1.0 input pins from the calling
//!   thread and delivers the head's track (the other two tracks are
//!   [`pos_hal::TrackStatus::NotSupported`]).
//!
//! Both publish [`pos_hal::DeviceEvent::Swiped`] with the track statuses only: track data is never
//! logged, never put in events and never shown by `Debug`.

use std::fmt;
use std::time::{Duration, Instant};

use embedded_hal::digital::InputPin;
use pos_hal::{
    DeviceInfo, DeviceState, Fault, FaultKind, HealthLevel, HealthReport, Sensitive, Subscription,
    Swipe,
};
use pos_link::{Address, Deadline, DeviceUri, LinkError, Operation};

use crate::core::{ReaderCore, wipe_string};
use crate::serial::MsrError;
use crate::ttl::{TrackResult, TtlError, TtlHead};
use crate::wedge::{EvdevWedge, KeyboardLayout, WedgeDecoder, WedgeSwipe};
use crate::{Track, parse_ascii};

/// A source of keyboard-wedge key events (`EV_KEY` only).
pub trait KeySource: Send {
    /// The next key event as `(KEY_* code, value)` (value 1 press, 0 release, 2
    /// autorepeat), waiting until `deadline` at most.
    ///
    /// Returns `Ok(None)` when no event came by `deadline`. Errors: `Disconnected` when the
    /// device went away; other link errors as they come.
    fn next_event(&mut self, deadline: Deadline) -> Result<Option<(u16, i32)>, LinkError>;
}

/// A source of whole wedge swipes (the typed text of one swipe).
pub trait SwipeSource: Send {
    /// Waits up to `timeout` for a swipe; a swipe under way at `timeout` is finished
    /// (bounded by the inter-key timeout).
    ///
    /// Errors: `Timeout` (kind [`FaultKind::Timeout`]) when no swipe came, `Disconnected`
    /// when the device went away.
    fn read_swipe(&mut self, timeout: Duration) -> Result<WedgeSwipe, LinkError>;
}

impl SwipeSource for EvdevWedge {
    fn read_swipe(&mut self, timeout: Duration) -> Result<WedgeSwipe, LinkError> {
        EvdevWedge::read_swipe(self, timeout)
    }
}

/// Turns the key events of a [`KeySource`] into swipes with a [`WedgeDecoder`] (in the
/// decoder's [`KeyboardLayout`]; a swipe ends on Enter or after the decoder's inter-key
/// timeout).
pub struct KeyDecoder<K> {
    keys: K,
    target: String,
    decoder: WedgeDecoder,
    origin: Instant,
    last_event: Option<Instant>,
}

impl<K> fmt::Debug for KeyDecoder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyDecoder")
            .field("target", &self.target)
            .field("decoder", &self.decoder)
            .finish_non_exhaustive()
    }
}

impl<K: KeySource> KeyDecoder<K> {
    /// Decodes `keys`, known as `target` in errors, with `decoder`.
    pub fn new(keys: K, target: &str, decoder: WedgeDecoder) -> Self {
        KeyDecoder {
            keys,
            target: target.to_string(),
            decoder,
            origin: Instant::now(),
            last_event: None,
        }
    }

    /// The key source.
    pub fn keys(&self) -> &K {
        &self.keys
    }
}

impl<K: KeySource> SwipeSource for KeyDecoder<K> {
    fn read_swipe(&mut self, timeout: Duration) -> Result<WedgeSwipe, LinkError> {
        let deadline = Deadline::after(timeout);
        loop {
            let now = Instant::now();
            let gap_end = self
                .last_event
                .filter(|_| self.decoder.in_swipe())
                .map(|t| t + self.decoder.timeout());
            if gap_end.is_some_and(|g| now > g) {
                if let Some(s) = self.decoder.flush() {
                    return Ok(s);
                }
            } else if gap_end.is_none() && deadline.passed() {
                return Err(LinkError::timeout(
                    &self.target,
                    Operation::Read,
                    deadline.waited(),
                    0,
                ));
            }
            let wait = match gap_end {
                Some(g) => {
                    Deadline::after(g.saturating_duration_since(now) + Duration::from_millis(1))
                }
                None => deadline,
            };
            if let Some((code, value)) = self.keys.next_event(wait)? {
                let at = Instant::now();
                self.last_event = Some(at);
                if let Some(s) = self
                    .decoder
                    .key(code, value, at.duration_since(self.origin))
                {
                    return Ok(s);
                }
            }
        }
    }
}

/// The `pos_hal` track of a parsed track (data only when it read).
fn hal_track(status: crate::TrackStatus, data: &str) -> pos_hal::Track {
    pos_hal::Track {
        status: status.into(),
        data: (status == crate::TrackStatus::Ok).then(|| Sensitive::new(data.as_bytes().to_vec())),
    }
}

/// A keyboard-wedge magstripe reader: swipes from a [`SwipeSource`], parsed with
/// [`parse_ascii`].
///
/// Typed text with no track in it (no `%`, `;` or `+`, e.g. someone pressing keys on a
/// combined keyboard) is ignored and logged (length only). A swipe whose tracks all failed
/// is [`MsrError::BadRead`]; no swipe in time is [`MsrError::Timeout`]; a lost device is
/// [`MsrError::Link`] of kind `Disconnected` (the reader then stays in
/// [`DeviceState::Error`]).
pub struct WedgeMsr<S> {
    source: S,
    core: ReaderCore,
}

impl<S> fmt::Debug for WedgeMsr<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WedgeMsr")
            .field("uri", &self.core.uri())
            .field("state", &self.core.state())
            .finish_non_exhaustive()
    }
}

impl<S: SwipeSource> WedgeMsr<S> {
    /// A reader on `source`, known as `uri` (for info, errors and events).
    pub fn new(source: S, uri: &str) -> Self {
        WedgeMsr {
            source,
            core: ReaderCore::new(uri),
        }
    }

    /// The swipe source.
    pub fn source(&self) -> &S {
        &self.source
    }

    fn failed(&mut self, e: LinkError, deadline: &Deadline) -> MsrError {
        match e.kind() {
            FaultKind::Timeout => self.core.timeout(deadline.waited()),
            _ => self.core.link_failed(e),
        }
    }

    /// The swipe in `s`, or `None` when it holds no track at all.
    fn to_swipe(&self, s: WedgeSwipe) -> Option<Swipe> {
        if s.unknown_keys > 0 || s.dropped > 0 {
            log::debug!(
                "{}: swipe had {} unknown keys, {} dropped characters",
                self.core.uri(),
                s.unknown_keys,
                s.dropped
            );
        }
        let tracks = parse_ascii(&s.text);
        let swipe = if tracks.iter().all(|t| t.status == crate::TrackStatus::Empty) {
            log::debug!(
                "{}: ignored {} typed characters with no track in them",
                self.core.uri(),
                s.text.len()
            );
            None
        } else {
            Some(Swipe {
                tracks: tracks.map(|t| hal_track(t.status, t.data)),
            })
        };
        wipe_string(s.text);
        swipe
    }

    fn wait_inner(&mut self, timeout: Duration) -> Result<Swipe, MsrError> {
        let deadline = Deadline::after(timeout);
        loop {
            let s = match self.source.read_swipe(deadline.remaining()) {
                Ok(s) => s,
                Err(e) => return Err(self.failed(e, &deadline)),
            };
            let len = s.text.len();
            let Some(swipe) = self.to_swipe(s) else {
                continue;
            };
            return self
                .core
                .swiped(swipe, &format!("{len} characters"))
                .map_err(|tracks| MsrError::BadRead { tracks });
        }
    }
}

core_reader_impls! {
    impl[S: SwipeSource] for WedgeMsr<S>;
    /// Internal: the device is open (no disconnection seen). External and Interactive are
    /// reported as skipped (wedge readers have no status request; a swipe needs a person).
    fn check_health(self, level) {
        self.core.health(
            level,
            "keyboard-wedge readers have no status request",
            |r| {
                self.core.link_check(r, "device_open", self.core.uri());
            },
        )
    }
    /// Waits for a typed swipe. Text with no track is skipped. Returns within `timeout`
    /// plus the inter-key timeout of a swipe already under way.
    fn wait_for_swipe;
}

/// Open a keyboard-wedge reader: `evdev:/dev/input/...?gap_ms=..&layout=..` (`gap_ms`:
/// inter-key timeout in ms, 1-10000, default 100; `layout`: the keyboard layout the reader
/// is set to type for, `us` (default), `de` or `fr`, see [`KeyboardLayout`]). The device is
/// grabbed exclusively while open.
///
/// Errors: [`MsrError::InvalidConfig`] for other schemes, a bad `gap_ms` or an unknown
/// `layout`;
/// [`MsrError::Link`] when the device does not open (`NotFound`, `PermissionDenied`,
/// `Busy` when another process holds the grab).
pub fn open_evdev(uri: &DeviceUri) -> Result<WedgeMsr<EvdevWedge>, MsrError> {
    if !matches!(uri.address(), Address::Evdev { .. }) {
        return Err(MsrError::InvalidConfig(format!(
            "{uri}: not a keyboard-wedge reader address (use evdev:/dev/input/...)"
        )));
    }
    let mut gap = crate::wedge::DEFAULT_INTER_KEY_TIMEOUT;
    let mut layout = KeyboardLayout::Us;
    for (k, v) in uri.options() {
        if k == "layout" {
            layout = v
                .parse()
                .map_err(|e: String| MsrError::InvalidConfig(format!("option layout: {e}")))?;
        } else if k == "gap_ms" {
            let ms: u64 = v
                .parse()
                .ok()
                .filter(|ms| (1..=10_000).contains(ms))
                .ok_or_else(|| {
                    MsrError::InvalidConfig(format!(
                        "option gap_ms={v:?}: expected milliseconds from 1 to 10000"
                    ))
                })?;
            gap = Duration::from_millis(ms);
        }
    }
    let wedge = EvdevWedge::open_with_layout(uri, gap, layout)?;
    Ok(WedgeMsr::new(wedge, &uri.to_string()))
}

/// Default time between two polls of a [`TtlMsr`]'s pins.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_micros(50);

/// Default extra time a swipe already under way at the caller's timeout gets to finish.
pub const DEFAULT_SWIPE_GRACE: Duration = Duration::from_millis(500);

/// Errors of a [`TtlMsr`].
#[derive(Debug)]
#[non_exhaustive]
pub enum TtlMsrError {
    /// No swipe in the time given (kind `Timeout`).
    Timeout {
        /// The reader's URI.
        target: String,
        /// How long was waited.
        waited: Duration,
    },
    /// A card was swiped but the track did not read (kind `BadRead`).
    BadRead {
        /// Status of tracks 1, 2 and 3.
        tracks: [pos_hal::TrackStatus; 3],
    },
    /// Reading a pin failed (kind `Io`); the swipe under way, if any, is lost.
    Pin {
        /// The reader's URI.
        target: String,
        /// Which pin and the `embedded-hal` error kind.
        error: TtlError,
    },
}

impl fmt::Display for TtlMsrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TtlMsrError::Timeout { target, waited } => {
                write!(f, "{target}: no swipe in {} ms", waited.as_millis())
            }
            TtlMsrError::BadRead { tracks } => write!(
                f,
                "bad swipe: tracks read {}, {}, {}",
                tracks[0].name(),
                tracks[1].name(),
                tracks[2].name()
            ),
            TtlMsrError::Pin { target, error } => write!(f, "{target}: {error}"),
        }
    }
}

impl std::error::Error for TtlMsrError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TtlMsrError::Pin { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl Fault for TtlMsrError {
    fn kind(&self) -> FaultKind {
        match self {
            TtlMsrError::Timeout { .. } => FaultKind::Timeout,
            TtlMsrError::BadRead { .. } => FaultKind::BadRead,
            TtlMsrError::Pin { .. } => FaultKind::Io,
        }
    }
}

/// A TTL magstripe head polled from the calling thread.
///
/// [`wait_for_swipe`](pos_hal::MagstripeReader::wait_for_swipe) calls [`TtlHead::poll`] in
/// a loop, sleeping [`poll_interval`](Self::poll_interval) between polls (zero: spin). The
/// interval must stay well under half the strobe period of the fastest swipe; the default
/// of 50 µs suits hand swipes of track 2 (75 bpi). Nothing watches the pins between calls,
/// so call `wait_for_swipe` in a loop (from a dedicated thread) to catch every swipe.
///
/// Any `embedded-hal` 1.0 `InputPin`s that are `Send` work. On Linux, with
/// `linux-embedded-hal` (feature `gpio_cdev`) in your own crate:
///
/// ```text
/// let mut chip = linux_embedded_hal::gpio_cdev::Chip::new("/dev/gpiochip0")?;
/// let input = |chip: &mut Chip, line| -> Result<CdevPin, _> {
///     let handle = chip.get_line(line)?.request(LineRequestFlags::INPUT, 1, "msr")?;
///     CdevPin::new(handle)
/// };
/// let head = TtlHead::new(input(&mut chip, 17)?, input(&mut chip, 27)?, input(&mut chip, 22)?);
/// let mut msr = TtlMsr::new(head, "gpio:/dev/gpiochip0?cp=17&strobe=27&data=22");
/// let swipe = msr.wait_for_swipe(Duration::from_secs(30))?;
/// ```
pub struct TtlMsr<CP, STB, DATA> {
    head: TtlHead<CP, STB, DATA>,
    core: ReaderCore,
    poll_interval: Duration,
    swipe_grace: Duration,
    last_pin_error: Option<TtlError>,
}

impl<CP, STB, DATA> fmt::Debug for TtlMsr<CP, STB, DATA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TtlMsr")
            .field("uri", &self.core.uri())
            .field("head", &self.head)
            .field("state", &self.core.state())
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl<CP, STB, DATA> TtlMsr<CP, STB, DATA>
where
    CP: InputPin,
    STB: InputPin,
    DATA: InputPin,
{
    /// A reader on `head`, known as `uri` (for info, errors and events), polling every
    /// [`DEFAULT_POLL_INTERVAL`].
    pub fn new(head: TtlHead<CP, STB, DATA>, uri: &str) -> Self {
        TtlMsr {
            head,
            core: ReaderCore::new(uri),
            poll_interval: DEFAULT_POLL_INTERVAL,
            swipe_grace: DEFAULT_SWIPE_GRACE,
            last_pin_error: None,
        }
    }

    /// Sets the time between polls (zero: spin without sleeping).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets how long a swipe under way at the caller's timeout may take to finish.
    pub fn with_swipe_grace(mut self, grace: Duration) -> Self {
        self.swipe_grace = grace;
        self
    }

    /// The time between polls.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// The head.
    pub fn head(&self) -> &TtlHead<CP, STB, DATA> {
        &self.head
    }

    /// The track the head reads (the one track a swipe can hold data for).
    pub fn track(&self) -> Track {
        self.head.track()
    }

    /// Gives the head back.
    pub fn into_head(self) -> TtlHead<CP, STB, DATA> {
        self.head
    }

    /// The swipe of one decoded track: the head's track as read, the others not supported.
    fn to_swipe(r: TrackResult) -> Swipe {
        let mut tracks = [
            pos_hal::Track::empty(pos_hal::TrackStatus::NotSupported),
            pos_hal::Track::empty(pos_hal::TrackStatus::NotSupported),
            pos_hal::Track::empty(pos_hal::TrackStatus::NotSupported),
        ];
        if let Some(slot) = tracks.get_mut(r.track.index()) {
            *slot = hal_track(r.status, r.data.as_str());
        }
        Swipe { tracks }
    }

    fn wait_inner(&mut self, timeout: Duration) -> Result<Swipe, TtlMsrError> {
        let deadline = Deadline::after(timeout);
        let hard = Deadline::after(timeout.saturating_add(self.swipe_grace));
        loop {
            match self.head.poll() {
                Ok(Some(r)) => {
                    self.last_pin_error = None;
                    let bits = r.bits;
                    let swipe = Self::to_swipe(r);
                    return self
                        .core
                        .swiped(swipe, &format!("{bits} bits"))
                        .map_err(|tracks| TtlMsrError::BadRead { tracks });
                }
                Ok(None) => self.last_pin_error = None,
                Err(error) => {
                    self.last_pin_error = Some(error);
                    self.core.fault(FaultKind::Io, error.to_string());
                    return Err(TtlMsrError::Pin {
                        target: self.core.uri().to_string(),
                        error,
                    });
                }
            }
            if deadline.passed() && (!self.head.is_reading() || hard.passed()) {
                return Err(TtlMsrError::Timeout {
                    target: self.core.uri().to_string(),
                    waited: deadline.waited(),
                });
            }
            if self.poll_interval.is_zero() {
                std::hint::spin_loop();
            } else {
                std::thread::sleep(self.poll_interval);
            }
        }
    }
}

impl<CP, STB, DATA> pos_hal::Device for TtlMsr<CP, STB, DATA>
where
    CP: InputPin + Send,
    STB: InputPin + Send,
    DATA: InputPin + Send,
{
    type Error = TtlMsrError;

    fn info(&self) -> DeviceInfo {
        self.core.info()
    }

    fn state(&self) -> DeviceState {
        self.core.state()
    }

    /// Internal: the last pin read succeeded. External and Interactive are reported as
    /// skipped (a head has no status request; a swipe needs a person).
    fn check_health(&mut self, level: HealthLevel) -> Result<HealthReport, TtlMsrError> {
        let uri = self.core.uri();
        Ok(self
            .core
            .health(level, "TTL heads have no status request", |r| {
                match self.last_pin_error {
                    Some(e) => r.fail("pins", FaultKind::Io, format!("{uri}: {e}")),
                    None => r.pass("pins", format!("{uri}: pins read")),
                };
            }))
    }

    fn subscribe(&mut self) -> Result<Subscription, TtlMsrError> {
        Ok(self.core.subscribe())
    }
}

impl<CP, STB, DATA> pos_hal::MagstripeReader for TtlMsr<CP, STB, DATA>
where
    CP: InputPin + Send,
    STB: InputPin + Send,
    DATA: InputPin + Send,
{
    /// Polls the head until a card has passed. A swipe under way at `timeout` gets the swipe
    /// grace (default 500 ms) to finish. Errors: `Timeout`, `BadRead` (the track did not
    /// read), `Io` (a pin read failed; see [`TtlMsrError::Pin`]).
    fn wait_for_swipe(&mut self, timeout: Duration) -> Result<Swipe, TtlMsrError> {
        self.core.busy();
        let r = self.wait_inner(timeout);
        self.core.end();
        r
    }
}
