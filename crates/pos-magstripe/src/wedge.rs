//! Keyboard-wedge USB readers through Linux evdev (feature `std`).
//!
//! A keyboard-wedge reader types the swipe (`%B...?;...?`) as key presses. Two parts:
//!
//! * [`WedgeDecoder`] turns Linux key codes (`KEY_*` from `linux/input-event-codes.h`) with
//!   press/release values into characters through the [`KeyboardLayout`] the reader is set
//!   to type for (US by default; German and French too). It never consults the system
//!   keymap: the characters are the ones the reader meant, whatever layout the host's
//!   console or desktop has. Swipes end on Enter or after an inter-key gap longer than the
//!   timeout.
//! * [`EvdevWedge`] opens `evdev:/dev/input/...`, grabs the device exclusively (`EVIOCGRAB`,
//!   so the swipe never types into the POS application), reads `struct input_event` records
//!   with `poll(2)` deadlines and returns the swipe text for
//!   [`parse_ascii`](crate::parse_ascii). The grab is released on drop.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use pos_link::{Address, Deadline, DeviceUri, LinkError, Operation, classify_io};

/// `KEY_ENTER`.
pub const KEY_ENTER: u16 = 28;
/// `KEY_KPENTER`.
pub const KEY_KPENTER: u16 = 96;
/// `KEY_LEFTSHIFT`.
pub const KEY_LEFTSHIFT: u16 = 42;
/// `KEY_RIGHTSHIFT`.
pub const KEY_RIGHTSHIFT: u16 = 54;
/// `KEY_CAPSLOCK` (ignored: wedge readers send shift for capitals).
pub const KEY_CAPSLOCK: u16 = 58;

/// Default inter-key timeout: a gap longer than this ends a swipe.
pub const DEFAULT_INTER_KEY_TIMEOUT: Duration = Duration::from_millis(100);

/// Most characters one swipe may have (three tracks are at most 79 + 40 + 107 plus a
/// few framing characters); further keys are dropped and counted.
pub const MAX_SWIPE_CHARS: usize = 512;

/// The fixed US table: key code -> (unshifted, shifted).
const fn us_chars(code: u16) -> Option<(u8, u8)> {
    Some(match code {
        2 => (b'1', b'!'),
        3 => (b'2', b'@'),
        4 => (b'3', b'#'),
        5 => (b'4', b'$'),
        6 => (b'5', b'%'),
        7 => (b'6', b'^'),
        8 => (b'7', b'&'),
        9 => (b'8', b'*'),
        10 => (b'9', b'('),
        11 => (b'0', b')'),
        12 => (b'-', b'_'),
        13 => (b'=', b'+'),
        16 => (b'q', b'Q'),
        17 => (b'w', b'W'),
        18 => (b'e', b'E'),
        19 => (b'r', b'R'),
        20 => (b't', b'T'),
        21 => (b'y', b'Y'),
        22 => (b'u', b'U'),
        23 => (b'i', b'I'),
        24 => (b'o', b'O'),
        25 => (b'p', b'P'),
        26 => (b'[', b'{'),
        27 => (b']', b'}'),
        30 => (b'a', b'A'),
        31 => (b's', b'S'),
        32 => (b'd', b'D'),
        33 => (b'f', b'F'),
        34 => (b'g', b'G'),
        35 => (b'h', b'H'),
        36 => (b'j', b'J'),
        37 => (b'k', b'K'),
        38 => (b'l', b'L'),
        39 => (b';', b':'),
        40 => (b'\'', b'"'),
        41 => (b'`', b'~'),
        43 => (b'\\', b'|'),
        44 => (b'z', b'Z'),
        45 => (b'x', b'X'),
        46 => (b'c', b'C'),
        47 => (b'v', b'V'),
        48 => (b'b', b'B'),
        49 => (b'n', b'N'),
        50 => (b'm', b'M'),
        51 => (b',', b'<'),
        52 => (b'.', b'>'),
        53 => (b'/', b'?'),
        57 => (b' ', b' '),
        // Keypad (NumLock state ignored: readers that use it send digits).
        55 => (b'*', b'*'),
        71 => (b'7', b'7'),
        72 => (b'8', b'8'),
        73 => (b'9', b'9'),
        74 => (b'-', b'-'),
        75 => (b'4', b'4'),
        76 => (b'5', b'5'),
        77 => (b'6', b'6'),
        78 => (b'+', b'+'),
        79 => (b'1', b'1'),
        80 => (b'2', b'2'),
        81 => (b'3', b'3'),
        82 => (b'0', b'0'),
        83 => (b'.', b'.'),
        98 => (b'/', b'/'),
        _ => return None,
    })
}

/// The character a US keyboard types for `code` with or without shift (the fixed table the
/// decoder uses); `None` for keys that type nothing.
pub fn us_char(code: u16, shift: bool) -> Option<char> {
    us_chars(code).map(|(n, s)| char::from(if shift { s } else { n }))
}

/// The key (main block, not keypad) and shift state that types `c` on a US keyboard.
pub fn us_key_for(c: char) -> Option<(u16, bool)> {
    let b = u8::try_from(c).ok()?;
    (1u16..=57).find_map(|code| {
        let (n, s) = us_chars(code)?;
        if b == n {
            Some((code, false))
        } else if b == s {
            Some((code, true))
        } else {
            None
        }
    })
}

/// One swipe as typed by the reader. `Debug` does not show the text (card data).
#[derive(Clone, PartialEq, Eq)]
pub struct WedgeSwipe {
    /// The characters, e.g. `%B...?;...?` (Enter not included). Card data: never log it.
    pub text: String,
    /// Key presses with no character in the layout (ignored).
    pub unknown_keys: usize,
    /// Characters dropped because the swipe was longer than [`MAX_SWIPE_CHARS`].
    pub dropped: usize,
}

impl fmt::Debug for WedgeSwipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WedgeSwipe")
            .field("len", &self.text.len())
            .field("unknown_keys", &self.unknown_keys)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// Decodes key events into swipes through a [`KeyboardLayout`] (US unless
/// [`with_layout`](Self::with_layout) says otherwise).
#[derive(Clone)]
pub struct WedgeDecoder {
    timeout: Duration,
    layout: KeyboardLayout,
    text: String,
    unknown: usize,
    dropped: usize,
    left_shift: bool,
    right_shift: bool,
    altgr: bool,
    /// A dead key's accent waiting for the next key.
    dead: Option<char>,
    last_key: Option<Duration>,
}

impl fmt::Debug for WedgeDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WedgeDecoder")
            .field("timeout", &self.timeout)
            .field("layout", &self.layout)
            .field("pending", &self.text.len())
            .finish_non_exhaustive()
    }
}

impl Default for WedgeDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_INTER_KEY_TIMEOUT)
    }
}

impl WedgeDecoder {
    /// A decoder ending swipes on Enter or after an inter-key gap longer than `timeout`.
    pub fn new(timeout: Duration) -> Self {
        WedgeDecoder {
            timeout,
            layout: KeyboardLayout::Us,
            text: String::new(),
            unknown: 0,
            dropped: 0,
            left_shift: false,
            right_shift: false,
            altgr: false,
            dead: None,
            last_key: None,
        }
    }

    /// The same decoder reading keys as a reader set to `layout` types them.
    pub fn with_layout(mut self, layout: KeyboardLayout) -> Self {
        self.layout = layout;
        self
    }

    /// The layout keys are read with.
    pub fn layout(&self) -> KeyboardLayout {
        self.layout
    }

    /// The inter-key timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// True while a swipe has started and not ended.
    pub fn in_swipe(&self) -> bool {
        !self.text.is_empty() || self.unknown > 0 || self.dead.is_some()
    }

    fn push(&mut self, c: char) {
        if self.text.len() + c.len_utf8() <= MAX_SWIPE_CHARS {
            self.text.push(c);
        } else {
            self.dropped = self.dropped.saturating_add(1);
        }
    }

    /// Feeds one key event: `code` is a `KEY_*` number, `value` 1 press, 0 release, 2
    /// autorepeat (ignored); `at` is the event time on any monotonic clock.
    ///
    /// Returns a finished swipe when this event ends one: Enter ends the swipe it typed; an
    /// event arriving more than the timeout after the previous event first ends the
    /// previous swipe (and then starts a new one). Never panics.
    pub fn key(&mut self, code: u16, value: i32, at: Duration) -> Option<WedgeSwipe> {
        let mut done = None;
        let gap_expired = self
            .last_key
            .is_some_and(|last| at.saturating_sub(last) > self.timeout);
        if gap_expired {
            done = self.flush();
        }
        // Any event (press, release, shift) counts as activity of the reader.
        self.last_key = Some(at);
        match (code, value) {
            (KEY_LEFTSHIFT, v) => self.left_shift = v != 0,
            (KEY_RIGHTSHIFT, v) => self.right_shift = v != 0,
            (KEY_RIGHTALT, v) => self.altgr = v != 0,
            (_, 1) => {
                if code == KEY_ENTER || code == KEY_KPENTER {
                    // Enter after a timeout flush has nothing left to end.
                    let ended = self.flush();
                    return done.or(ended);
                }
                if code == KEY_CAPSLOCK {
                    return done;
                }
                let shift = self.left_shift || self.right_shift;
                match self.layout.sym(code, shift, self.altgr) {
                    // A second dead key: the first one's accent stands alone.
                    Some(KeySym::Dead(accent)) => {
                        if let Some(first) = self.dead.replace(accent) {
                            self.push(first);
                        }
                    }
                    // Dead key then Space: the accent alone (how a reader types `^` on a
                    // layout where it is dead). Dead key then another key: the accent,
                    // then that key's character (no composition: a composed letter is not
                    // a track character anyway).
                    Some(KeySym::Char(c)) => match self.dead.take() {
                        Some(accent) if c == ' ' => self.push(accent),
                        Some(accent) => {
                            self.push(accent);
                            self.push(c);
                        }
                        None => self.push(c),
                    },
                    None => self.unknown = self.unknown.saturating_add(1),
                }
            }
            _ => {}
        }
        done
    }

    /// True if a swipe is pending and no key came for longer than the timeout before `now`
    /// (same clock as the `at` of [`key`](Self::key)).
    pub fn idle_expired(&self, now: Duration) -> bool {
        self.in_swipe()
            && self
                .last_key
                .is_some_and(|last| now.saturating_sub(last) > self.timeout)
    }

    /// Ends the pending swipe, if any (e.g. when the inter-key timeout passed with no key).
    pub fn flush(&mut self) -> Option<WedgeSwipe> {
        if !self.in_swipe() {
            return None;
        }
        if let Some(accent) = self.dead.take() {
            self.push(accent);
        }
        let swipe = WedgeSwipe {
            text: std::mem::take(&mut self.text),
            unknown_keys: self.unknown,
            dropped: self.dropped,
        };
        self.unknown = 0;
        self.dropped = 0;
        Some(swipe)
    }
}

// ---------------------------------------------------------------------------------------
// Keyboard layouts
// ---------------------------------------------------------------------------------------

/// `KEY_RIGHTALT`: AltGr on the European layouts.
pub const KEY_RIGHTALT: u16 = 100;
/// `KEY_SPACE`.
pub const KEY_SPACE: u16 = 57;

/// What a key types at one level of a [`KeyboardLayout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySym {
    /// The character.
    Char(char),
    /// A dead key: the accent waits for the next key; followed by Space it types the accent
    /// itself (how a wedge reader set to such a layout types `^`).
    Dead(char),
}

/// The keyboard layout a keyboard-wedge reader is set to type for.
///
/// A wedge reader sends key positions (USB HID usages, which Linux reports as `KEY_*`
/// codes named after the US key caps), not characters. Readers are set to the layout of
/// the host they are sold for (MagTek, ID TECH and others document a "keyboard language"
/// setting): one set to German sends the key at the US `Y` position for `z` and Shift+`7`
/// for `/`, because that is what a German keymap turns those keys into. The decoder must
/// use the same layout as the reader, whatever keymap the system itself has (the events
/// are read before any keymap).
///
/// Tables: [`Us`](Self::Us) as the US key caps; [`De`](Self::De) the German T1 layout
/// (DIN 2137-1, Linux/xkb `de`); [`Fr`](Self::Fr) the French AZERTY layout (Linux/xkb
/// `fr`, not the 2019 AFNOR one). Main block only (plus the keypad, the same on all three);
/// AltGr levels of the European layouts are included for the ASCII characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum KeyboardLayout {
    /// US QWERTY (the default).
    #[default]
    Us,
    /// German QWERTZ.
    De,
    /// French AZERTY.
    Fr,
}

use KeySym::{Char as C, Dead as D};

/// One key of a European table: (code, plain, shifted, AltGr).
type KeyRow = (u16, Option<KeySym>, Option<KeySym>, Option<KeySym>);

/// German T1 (DIN 2137-1), as xkb's `de` layout: the keys that differ from the US caps or
/// have an AltGr level; the others (letters, digits) type what the US cap shows.
const DE_KEYS: &[KeyRow] = &[
    (2, Some(C('1')), Some(C('!')), None),
    (3, Some(C('2')), Some(C('"')), Some(C('²'))),
    (4, Some(C('3')), Some(C('§')), Some(C('³'))),
    (5, Some(C('4')), Some(C('$')), None),
    (6, Some(C('5')), Some(C('%')), None),
    (7, Some(C('6')), Some(C('&')), None),
    (8, Some(C('7')), Some(C('/')), Some(C('{'))),
    (9, Some(C('8')), Some(C('(')), Some(C('['))),
    (10, Some(C('9')), Some(C(')')), Some(C(']'))),
    (11, Some(C('0')), Some(C('=')), Some(C('}'))),
    (12, Some(C('ß')), Some(C('?')), Some(C('\\'))),
    (13, Some(D('´')), Some(D('`')), None),
    (16, Some(C('q')), Some(C('Q')), Some(C('@'))),
    (18, Some(C('e')), Some(C('E')), Some(C('€'))),
    (21, Some(C('z')), Some(C('Z')), None),
    (26, Some(C('ü')), Some(C('Ü')), None),
    (27, Some(C('+')), Some(C('*')), Some(D('~'))),
    (39, Some(C('ö')), Some(C('Ö')), None),
    (40, Some(C('ä')), Some(C('Ä')), None),
    (41, Some(D('^')), Some(C('°')), None),
    (43, Some(C('#')), Some(C('\'')), None),
    (44, Some(C('y')), Some(C('Y')), None),
    (50, Some(C('m')), Some(C('M')), Some(C('µ'))),
    (51, Some(C(',')), Some(C(';')), None),
    (52, Some(C('.')), Some(C(':')), None),
    (53, Some(C('-')), Some(C('_')), None),
    // KEY_102ND, the key left of Y that US keyboards lack.
    (86, Some(C('<')), Some(C('>')), Some(C('|'))),
];

/// French AZERTY, as xkb's `fr` layout: digits are shifted, letters A/Q, Z/W and M move.
const FR_KEYS: &[KeyRow] = &[
    (2, Some(C('&')), Some(C('1')), None),
    (3, Some(C('é')), Some(C('2')), Some(C('~'))),
    (4, Some(C('"')), Some(C('3')), Some(C('#'))),
    (5, Some(C('\'')), Some(C('4')), Some(C('{'))),
    (6, Some(C('(')), Some(C('5')), Some(C('['))),
    (7, Some(C('-')), Some(C('6')), Some(C('|'))),
    (8, Some(C('è')), Some(C('7')), Some(C('`'))),
    (9, Some(C('_')), Some(C('8')), Some(C('\\'))),
    (10, Some(C('ç')), Some(C('9')), Some(C('^'))),
    (11, Some(C('à')), Some(C('0')), Some(C('@'))),
    (12, Some(C(')')), Some(C('°')), Some(C(']'))),
    (13, Some(C('=')), Some(C('+')), Some(C('}'))),
    (16, Some(C('a')), Some(C('A')), None),
    (17, Some(C('z')), Some(C('Z')), None),
    (18, Some(C('e')), Some(C('E')), Some(C('€'))),
    (26, Some(D('^')), Some(D('¨')), None),
    (27, Some(C('$')), Some(C('£')), Some(C('¤'))),
    (30, Some(C('q')), Some(C('Q')), None),
    (39, Some(C('m')), Some(C('M')), None),
    (40, Some(C('ù')), Some(C('%')), None),
    (41, Some(C('²')), None, None),
    (43, Some(C('*')), Some(C('µ')), None),
    (44, Some(C('w')), Some(C('W')), None),
    (50, Some(C(',')), Some(C('?')), None),
    (51, Some(C(';')), Some(C('.')), None),
    (52, Some(C(':')), Some(C('/')), None),
    (53, Some(C('!')), Some(C('§')), None),
    (86, Some(C('<')), Some(C('>')), None),
];

impl KeyboardLayout {
    /// Every layout.
    pub const ALL: [KeyboardLayout; 3] =
        [KeyboardLayout::Us, KeyboardLayout::De, KeyboardLayout::Fr];

    /// The name used in URIs and configuration (`us`, `de`, `fr`: the xkb layout names).
    pub const fn name(self) -> &'static str {
        match self {
            KeyboardLayout::Us => "us",
            KeyboardLayout::De => "de",
            KeyboardLayout::Fr => "fr",
        }
    }

    /// The layout named `name` (`us`, `de`, `fr`, any case); `None` for others.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name.trim()))
    }

    fn table(self) -> &'static [KeyRow] {
        match self {
            KeyboardLayout::Us => &[],
            KeyboardLayout::De => DE_KEYS,
            KeyboardLayout::Fr => FR_KEYS,
        }
    }

    /// What key `code` types with or without Shift and AltGr; `None` for keys that type
    /// nothing (in this layout at that level). The US layout has no AltGr level: AltGr is
    /// ignored there, as before layouts existed.
    pub fn sym(self, code: u16, shift: bool, altgr: bool) -> Option<KeySym> {
        if self == KeyboardLayout::Us {
            return us_char(code, shift).map(KeySym::Char);
        }
        if let Some(&(_, plain, shifted, alt)) = self.table().iter().find(|r| r.0 == code) {
            return match (altgr, shift) {
                (true, _) => alt,
                (false, true) => shifted,
                (false, false) => plain,
            };
        }
        if altgr {
            return None;
        }
        // Keys the table does not list type what the US cap shows (letters, digits, space,
        // keypad); punctuation differs and is all listed, so US punctuation is not taken.
        let c = us_char(code, shift)?;
        (c.is_ascii_alphanumeric()
            || c == ' '
            || (71..=83).contains(&code)
            || code == 55
            || code == 98)
            .then_some(KeySym::Char(c))
    }

    /// The keys a reader set to this layout presses to type `c`: one `(code, shift,
    /// altgr)` stroke, or two when `c` is a dead key's accent (the dead key, then Space).
    /// `None` when the layout cannot type `c` (main block only, no keypad).
    pub fn strokes_for(self, c: char) -> Option<Vec<(u16, bool, bool)>> {
        let mut dead = None;
        for code in 1u16..=86 {
            if (58..=85).contains(&code) {
                continue;
            }
            for (shift, altgr) in [(false, false), (true, false), (false, true)] {
                match self.sym(code, shift, altgr) {
                    Some(KeySym::Char(x)) if x == c => return Some(vec![(code, shift, altgr)]),
                    Some(KeySym::Dead(x)) if x == c && dead.is_none() => {
                        dead = Some((code, shift, altgr));
                    }
                    _ => {}
                }
            }
        }
        dead.map(|d| vec![d, (KEY_SPACE, false, false)])
    }
}

impl fmt::Display for KeyboardLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KeyboardLayout {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| {
            format!(
                "unknown keyboard layout {s:?} (known: {})",
                Self::ALL.map(Self::name).join(", ")
            )
        })
    }
}

/// The key events (`(code, value)`, 1 press, 0 release) a wedge reader set to `layout`
/// sends for `text` (Shift and AltGr wrapped around their key), with Enter at the end if
/// `enter` is set. Characters the layout cannot type are skipped.
pub fn layout_key_events(layout: KeyboardLayout, text: &str, enter: bool) -> Vec<(u16, i32)> {
    let mut events = Vec::new();
    for c in text.chars() {
        for (code, shift, altgr) in layout.strokes_for(c).unwrap_or_default() {
            if shift {
                events.push((KEY_LEFTSHIFT, 1));
            }
            if altgr {
                events.push((KEY_RIGHTALT, 1));
            }
            events.push((code, 1));
            events.push((code, 0));
            if altgr {
                events.push((KEY_RIGHTALT, 0));
            }
            if shift {
                events.push((KEY_LEFTSHIFT, 0));
            }
        }
    }
    if enter {
        events.push((KEY_ENTER, 1));
        events.push((KEY_ENTER, 0));
    }
    events
}

/// `EVIOCGRAB` = `_IOW('E', 0x90, int)`.
const EVIOCGRAB: u32 =
    (1 << 30) | ((std::mem::size_of::<libc::c_int>() as u32) << 16) | (0x45 << 8) | 0x90;

/// `EV_KEY`.
const EV_KEY: u16 = 1;

const EVENT_SIZE: usize = std::mem::size_of::<libc::input_event>();

/// A keyboard-wedge reader on a Linux event device, grabbed exclusively.
pub struct EvdevWedge {
    file: File,
    target: String,
    decoder: WedgeDecoder,
    /// When the last key event was read (for the inter-key timeout on silence).
    last_read: Option<Instant>,
    /// Clock origin for the decoder's timestamps.
    origin: Instant,
    partial: Vec<u8>,
    /// Swipes finished in a batch of events but not yet returned.
    ready: VecDeque<WedgeSwipe>,
}

impl fmt::Debug for EvdevWedge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EvdevWedge")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl EvdevWedge {
    /// Opens and grabs the `evdev:` device at `uri` with the default inter-key timeout.
    ///
    /// Errors: `Unsupported` (kind `InvalidInput`) for other schemes; `NotFound` for a
    /// missing node; `PermissionDenied` with the udev hint; `Busy` if another process holds
    /// the grab.
    pub fn open(uri: &DeviceUri) -> Result<Self, LinkError> {
        Self::open_with(uri, DEFAULT_INTER_KEY_TIMEOUT)
    }

    /// As [`open`](Self::open) with an inter-key timeout.
    pub fn open_with(uri: &DeviceUri, inter_key_timeout: Duration) -> Result<Self, LinkError> {
        Self::open_with_layout(uri, inter_key_timeout, KeyboardLayout::Us)
    }

    /// As [`open_with`](Self::open_with), reading keys as a reader set to `layout` types
    /// them.
    pub fn open_with_layout(
        uri: &DeviceUri,
        inter_key_timeout: Duration,
        layout: KeyboardLayout,
    ) -> Result<Self, LinkError> {
        let Address::Evdev { path } = uri.address() else {
            return Err(LinkError::Unsupported {
                target: uri.to_string(),
                detail: "a keyboard-wedge reader needs an evdev: URI".into(),
            });
        };
        let target = uri.to_string();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| classify_io(e, path, Operation::Open, Duration::ZERO))?;
        // SAFETY: EVIOCGRAB takes an int by value; the fd is open for the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), EVIOCGRAB as _, 1 as libc::c_int) };
        if rc != 0 {
            return Err(classify_io(
                io::Error::last_os_error(),
                path,
                Operation::Configure,
                Duration::ZERO,
            ));
        }
        Ok(EvdevWedge {
            file,
            target,
            decoder: WedgeDecoder::new(inter_key_timeout).with_layout(layout),
            last_read: None,
            origin: Instant::now(),
            partial: Vec::new(),
            ready: VecDeque::new(),
        })
    }

    /// Waits up to `timeout` for a swipe and returns it (pass `text` to
    /// [`parse_ascii`](crate::parse_ascii)).
    ///
    /// A swipe ends on Enter or after the inter-key timeout; a swipe under way when
    /// `timeout` passes is still finished (bounded by the inter-key timeout). Errors:
    /// `Timeout`, `Disconnected` (device unplugged: `ENODEV` or end of file).
    pub fn read_swipe(&mut self, timeout: Duration) -> Result<WedgeSwipe, LinkError> {
        let deadline = Deadline::after(timeout);
        loop {
            if let Some(s) = self.ready.pop_front() {
                return Ok(s);
            }
            let key_deadline = self
                .last_read
                .filter(|_| self.decoder.in_swipe())
                .map(|t| t + self.decoder.timeout());
            let now = Instant::now();
            if key_deadline.is_some_and(|kd| now > kd) {
                if let Some(s) = self.decoder.flush() {
                    return Ok(s);
                }
            } else if key_deadline.is_none() && deadline.passed() {
                return Err(LinkError::timeout(
                    &self.target,
                    Operation::Read,
                    deadline.waited(),
                    0,
                ));
            }
            let wait = match key_deadline {
                Some(kd) => kd.saturating_duration_since(now) + Duration::from_millis(1),
                None => deadline.remaining(),
            };
            if !self.wait_readable(wait)? {
                continue;
            }
            self.read_events()?;
        }
    }

    fn wait_readable(&self, wait: Duration) -> Result<bool, LinkError> {
        // Whole milliseconds, at most a minute.
        let ms = wait.as_millis().min(60_000) as i64;
        let timeout = Timespec {
            tv_sec: ms / 1000,
            tv_nsec: (ms % 1000 * 1_000_000) as _,
        };
        let mut fds = [PollFd::new(&self.file, PollFlags::IN)];
        let rc = match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(rc) => rc,
            Err(Errno::INTR) => return Ok(false),
            Err(errno) => {
                return Err(classify_io(
                    errno.into(),
                    &self.target,
                    Operation::Read,
                    wait,
                ));
            }
        };
        let revents = fds[0].revents();
        let hung_up = revents.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL);
        if rc > 0 && hung_up && !revents.contains(PollFlags::IN) {
            return Err(LinkError::disconnected(
                &self.target,
                Operation::Read,
                "input device hung up",
            ));
        }
        Ok(rc > 0)
    }

    fn read_events(&mut self) -> Result<(), LinkError> {
        let mut buf = [0u8; EVENT_SIZE * 64];
        let n = match self.file.read(&mut buf) {
            Ok(0) => {
                return Err(LinkError::disconnected(
                    &self.target,
                    Operation::Read,
                    "end of input device",
                ));
            }
            Ok(n) => n,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                return Ok(());
            }
            Err(e) => {
                return Err(classify_io(
                    e,
                    &self.target,
                    Operation::Read,
                    Duration::ZERO,
                ));
            }
        };
        self.partial.extend_from_slice(buf.get(..n).unwrap_or(&[]));
        let whole = self.partial.len() / EVENT_SIZE * EVENT_SIZE;
        let events: Vec<u8> = self.partial.drain(..whole).collect();
        for ev in events.chunks_exact(EVENT_SIZE) {
            // struct input_event { struct timeval time; __u16 type; __u16 code; __s32 value; }
            let tail = EVENT_SIZE - 8;
            let field = |o: usize, len: usize| ev.get(tail + o..tail + o + len);
            let (Some(ty), Some(code), Some(value)) = (field(0, 2), field(2, 2), field(4, 4))
            else {
                continue;
            };
            let ty = u16::from_ne_bytes([ty[0], ty[1]]);
            if ty != EV_KEY {
                continue;
            }
            let code = u16::from_ne_bytes([code[0], code[1]]);
            let value = i32::from_ne_bytes([value[0], value[1], value[2], value[3]]);
            let now = Instant::now();
            self.last_read = Some(now);
            let at = now.duration_since(self.origin);
            if let Some(s) = self.decoder.key(code, value, at) {
                self.ready.push_back(s);
            }
        }
        Ok(())
    }
}

impl Drop for EvdevWedge {
    fn drop(&mut self) {
        // SAFETY: the fd is still open; releasing the grab (closing would release it too).
        unsafe {
            libc::ioctl(self.file.as_raw_fd(), EVIOCGRAB as _, 0 as libc::c_int);
        }
    }
}
