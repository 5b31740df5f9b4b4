//! The one reader of the printer's reply stream: [`ReplyReader`] splits it into
//! [`Reply`]s by their fixed bits.

use super::*;

/// One reply from the printer, as [`ReplyReader`] split it from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A DLE EOT reply (`0xx1xx10`); parse it with [`parse_real_time`] for the request
    /// outstanding (replies come in request order).
    RealTime(u8),
    /// An Automatic Status Back block (fixed bits checked); parse with [`parse_asb`].
    Asb([u8; 4]),
    /// A GS ( H process-ID reply `37 22 d1 d2 d3 d4 00` (four bytes in 0x20..=0x7E): the
    /// job with this ID has been processed (printed).
    ProcessId([u8; 4]),
    /// Any other `37 identifier data 00` reply (GS ( E and such, or a malformed process-ID
    /// reply, which never counts as a confirmation).
    Extended {
        /// The byte after the header.
        identifier: u8,
        /// The bytes between the identifier and the NUL.
        data: Vec<u8>,
    },
    /// A GS I printer information A reply `3D identifier data 00`.
    InfoA {
        /// The byte after the header (the n of the GS I that asked).
        identifier: u8,
        /// The bytes between the identifier and the NUL.
        data: Vec<u8>,
    },
    /// A GS I n = 65..69 block `5F data 00`: the data, without header and NUL.
    Block(Vec<u8>),
    /// The one-byte reply to GS I n = 1..3 (`0xx0xxxx`), read as such only while one is
    /// expected ([`ReplyReader::expect_id_byte`]).
    IdByte(u8),
    /// XON (`0x11`) or XOFF (`0x13`) from a serial printer using software flow control.
    FlowControl(u8),
    /// A byte that starts no reply, or starts one that broke (an ASB block with a byte
    /// that lacks `0xx0xxxx`, a NUL-terminated reply longer than [`MAX_FRAME_LEN`]). The
    /// reader goes on with the byte after it.
    Garbage(u8),
    /// The caller let more than [`MAX_PENDING`] bytes pile up; this many of the oldest were
    /// dropped unread. Replies may have been lost.
    Overrun {
        /// How many bytes were dropped.
        dropped: usize,
    },
}

impl Reply {
    /// A stable snake_case name of the reply's kind, for errors and logs.
    pub const fn kind_name(&self) -> &'static str {
        match self {
            Reply::RealTime(_) => "real_time",
            Reply::Asb(_) => "asb",
            Reply::ProcessId(_) => "process_id",
            Reply::Extended { .. } => "extended",
            Reply::InfoA { .. } => "info_a",
            Reply::Block(_) => "block",
            Reply::IdByte(_) => "id_byte",
            Reply::FlowControl(_) => "flow_control",
            Reply::Garbage(_) => "garbage",
            Reply::Overrun { .. } => "overrun",
        }
    }

    /// The reply's bytes as they came on the wire (the virtual printer sends replies with
    /// this; [`Reply::Overrun`] has none).
    pub fn to_bytes(&self) -> Vec<u8> {
        let framed = |header: u8, identifier: Option<u8>, data: &[u8]| {
            let mut bytes = vec![header];
            bytes.extend(identifier);
            bytes.extend_from_slice(data);
            bytes.push(0x00);
            bytes
        };
        match self {
            Reply::RealTime(b) | Reply::IdByte(b) | Reply::FlowControl(b) | Reply::Garbage(b) => {
                vec![*b]
            }
            Reply::Asb(block) => block.to_vec(),
            Reply::ProcessId(id) => framed(EXTENDED_HEADER, Some(PROCESS_ID_IDENTIFIER), id),
            Reply::Extended { identifier, data } => {
                framed(EXTENDED_HEADER, Some(*identifier), data)
            }
            Reply::InfoA { identifier, data } => framed(INFO_A_HEADER, Some(*identifier), data),
            Reply::Block(data) => framed(BLOCK_HEADER, None, data),
            Reply::Overrun { .. } => Vec::new(),
        }
    }
}

/// The outcome of looking at the front of the buffer.
enum Step {
    /// A reply of this many bytes is complete.
    Done(Reply, usize),
    /// XON/XOFF at this index inside a reply that is still being framed.
    Flow(usize),
    /// The reply at the front needs more bytes.
    NeedMore,
    /// The reply at the front cannot be completed: its first byte is garbage.
    Broken,
}

/// The one reader of a printer's reply stream: feed it bytes as they arrive, take replies
/// out in order.
///
/// # Rules
///
/// - Replies are told apart by their fixed bits (see the [module docs](super)); the reader
///   does not need to know what was asked, except for one thing:
/// - **ID bytes.** A GS I n = 1..3 reply is one byte `0xx0xxxx`, which only ASB bytes 2-4
///   share (never a status byte, an ASB first byte or a header: those have bit 4 set). The
///   driver calls [`expect_id_byte`](Self::expect_id_byte) before sending such a GS I; while
///   one is expected, the next `0xx0xxxx` byte that is not inside an ASB block is the ID
///   byte. With none expected such a byte is [`Reply::Garbage`] (an orphan ASB tail or an
///   unasked-for GS r reply). Expectations count up, so several GS I can be outstanding;
///   [`cancel_id_expectations`](Self::cancel_id_expectations) drops them after a timeout.
/// - **ASB.** A `0xx1xx00` byte starts an ASB block; the reader waits for three more
///   `0xx0xxxx` bytes. XON/XOFF inside it are reported first and skipped, as the reference
///   says. Any other byte breaks it: the first byte is reported as [`Reply::Garbage`] and
///   reading resumes with the byte after it (so a real-time byte that arrived in the gap is
///   still found).
/// - **Header-to-NUL replies** (`0x37`, `0x5F`, `0x3D`) run to the first NUL. XON/XOFF inside
///   are reported first and skipped. With no NUL within [`MAX_FRAME_LEN`] bytes (or no
///   identifier after `0x37`/`0x3D`), the header is [`Reply::Garbage`] and reading resumes
///   after it. A `37 22` reply is a [`Reply::ProcessId`] only with exactly four bytes in
///   0x20..=0x7E; otherwise it is [`Reply::Extended`], never a confirmation.
/// - The reader never waits on its own: a partial reply stays buffered until more bytes
///   come. When the link stays quiet past the reply timeout, [`flush`](Self::flush) reports
///   what is left.
/// - Chunking does not matter: the same bytes give the same replies however they are split
///   across [`push`](Self::push) calls (as long as the expectations are set before the
///   bytes are read out).
/// - Memory is bounded by [`MAX_PENDING`]; no input makes it panic.
///
/// Printers send each reply whole (the reference allows only XOFF inside an ASB block). Were
/// a status byte ever interleaved into a header-to-NUL reply, it would be read as that
/// reply's data: the status request would time out and a process-ID reply would fail its
/// four-byte check, so the worst case is "unknown", never a false confirmation.
#[derive(Debug, Clone, Default)]
pub struct ReplyReader {
    pending: VecDeque<u8>,
    ids_expected: usize,
    dropped: usize,
}

impl ReplyReader {
    /// An empty reader expecting no ID byte.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add bytes read from the printer. When more than [`MAX_PENDING`] bytes are unread,
    /// the oldest are dropped and the next reply is a [`Reply::Overrun`].
    pub fn push(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if self.pending.len() >= MAX_PENDING {
                self.pending.pop_front();
                self.dropped = self.dropped.saturating_add(1);
            }
            self.pending.push_back(byte);
        }
    }

    /// Expect one more GS I n = 1..3 ID byte. Call before sending the request.
    pub fn expect_id_byte(&mut self) {
        self.ids_expected = self.ids_expected.saturating_add(1);
    }

    /// How many ID bytes are still expected.
    pub fn id_bytes_expected(&self) -> usize {
        self.ids_expected
    }

    /// Stop expecting ID bytes (after a GS I went unanswered).
    pub fn cancel_id_expectations(&mut self) {
        self.ids_expected = 0;
    }

    /// How many bytes are buffered and not yet returned as replies (a partial reply).
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The next complete reply, or `None` when the buffered bytes do not finish one yet.
    pub fn next_reply(&mut self) -> Option<Reply> {
        if self.dropped > 0 {
            let dropped = std::mem::take(&mut self.dropped);
            return Some(Reply::Overrun { dropped });
        }
        match self.step() {
            Step::Done(reply, len) => {
                self.pending.drain(..len.min(self.pending.len()));
                if matches!(reply, Reply::IdByte(_)) {
                    self.ids_expected = self.ids_expected.saturating_sub(1);
                }
                Some(reply)
            }
            Step::Flow(index) => self.pending.remove(index).map(Reply::FlowControl),
            Step::NeedMore => None,
            Step::Broken => self.pending.pop_front().map(Reply::Garbage),
        }
    }

    /// Every reply complete so far, in order.
    pub fn drain_replies(&mut self) -> Vec<Reply> {
        std::iter::from_fn(|| self.next_reply()).collect()
    }

    /// The link went quiet: nothing more will complete the buffered partial reply. Returns
    /// every complete reply, then the partial one's first byte as [`Reply::Garbage`] and
    /// whatever the bytes after it make (repeatedly), leaving the reader empty.
    pub fn flush(&mut self) -> Vec<Reply> {
        let mut replies = Vec::new();
        while !self.pending.is_empty() || self.dropped > 0 {
            match self.next_reply() {
                Some(reply) => replies.push(reply),
                None => replies.extend(self.pending.pop_front().map(Reply::Garbage)),
            }
        }
        replies
    }

    fn step(&self) -> Step {
        let Some(&first) = self.pending.front() else {
            return Step::NeedMore;
        };
        match first {
            XON | XOFF => Step::Done(Reply::FlowControl(first), 1),
            EXTENDED_HEADER | BLOCK_HEADER | INFO_A_HEADER => self.step_framed(first),
            b if is_real_time_byte(b) => Step::Done(Reply::RealTime(b), 1),
            b if is_asb_first_byte(b) => self.step_asb(b),
            b if is_id_byte(b) && self.ids_expected > 0 => Step::Done(Reply::IdByte(b), 1),
            b => Step::Done(Reply::Garbage(b), 1),
        }
    }

    fn step_asb(&self, first: u8) -> Step {
        let mut block = [first, 0, 0, 0];
        let mut filled = 1;
        for (index, &byte) in self.pending.iter().enumerate().skip(1) {
            if byte == XON || byte == XOFF {
                return Step::Flow(index);
            }
            if !is_asb_rest_byte(byte) {
                return Step::Broken;
            }
            if let Some(slot) = block.get_mut(filled) {
                *slot = byte;
            }
            filled += 1;
            if filled == block.len() {
                return Step::Done(Reply::Asb(block), index + 1);
            }
        }
        Step::NeedMore
    }

    fn step_framed(&self, header: u8) -> Step {
        let mut end = None;
        for (index, &byte) in self.pending.iter().enumerate().skip(1) {
            if index >= MAX_FRAME_LEN {
                return Step::Broken;
            }
            if byte == XON || byte == XOFF {
                return Step::Flow(index);
            }
            if byte == 0x00 {
                end = Some(index);
                break;
            }
        }
        let Some(end) = end else {
            return Step::NeedMore;
        };
        // Bytes 1..end, no XON/XOFF among them (they were taken out first).
        let body: Vec<u8> = self.pending.range(1..end).copied().collect();
        let reply = if header == BLOCK_HEADER {
            Reply::Block(body)
        } else {
            let Some((&identifier, data)) = body.split_first() else {
                // `37 00` / `3D 00`: no identifier.
                return Step::Broken;
            };
            let data = data.to_vec();
            if header == INFO_A_HEADER {
                Reply::InfoA { identifier, data }
            } else {
                match <[u8; 4]>::try_from(data.as_slice()) {
                    Ok(id)
                        if identifier == PROCESS_ID_IDENTIFIER && check_process_id(id).is_ok() =>
                    {
                        Reply::ProcessId(id)
                    }
                    _ => Reply::Extended { identifier, data },
                }
            }
        };
        Step::Done(reply, end + 1)
    }
}
