//! Readers that send the tracks as ASCII text (`%...?;...?;...?`).

use core::fmt;

use crate::{Track, TrackStatus};

/// One track of a reader's ASCII output.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TrackText<'a> {
    /// Which track.
    pub track: Track,
    /// How it read.
    pub status: TrackStatus,
    /// The characters between the sentinels (empty unless `status` is
    /// [`TrackStatus::Ok`]).
    pub data: &'a str,
}

impl<'a> TrackText<'a> {
    const fn empty(track: Track) -> Self {
        TrackText {
            track,
            status: TrackStatus::Empty,
            data: "",
        }
    }

    fn set(&mut self, content: &'a str) {
        let track = self.track;
        let bytes = content.as_bytes();
        self.data = "";
        self.status = if bytes == b"E" {
            // The reader's error token (`%E?`, `;E?`, `+E?`): unspecified read error.
            TrackStatus::Parity
        } else if bytes.len() > track.max_data() {
            TrackStatus::EndSentinel
        } else if bytes
            .iter()
            .any(|&c| !track.is_encodable(c) || c == track.start_sentinel())
        {
            TrackStatus::Parity
        } else {
            self.data = content;
            TrackStatus::Ok
        };
    }
}

impl fmt::Debug for TrackText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackText")
            .field("track", &self.track)
            .field("status", &self.status)
            .field("len", &self.data.len())
            .finish_non_exhaustive()
    }
}

/// Splits the ASCII output of a reader into its three tracks.
///
/// `%` starts track 1; the first `;` starts track 2 and a second `;` (or a `+`, which some
/// readers use) starts track 3; `?` ends a track. Missing tracks are
/// [`TrackStatus::Empty`]. A reader's error token (`%E?`, `;E?`, `+E?`) becomes
/// [`TrackStatus::Parity`] (the reader does not say which check failed; parity is the
/// per-character check). A track without its `?` is [`TrackStatus::EndSentinel`], one with a
/// character outside the track's set [`TrackStatus::Parity`]. Characters outside the tracks
/// (CR, LF, stray bytes) are ignored. Never panics.
pub fn parse_ascii(reader_output: &str) -> [TrackText<'_>; 3] {
    let mut tracks = [
        TrackText::empty(Track::One),
        TrackText::empty(Track::Two),
        TrackText::empty(Track::Three),
    ];
    let s = reader_output;
    let bytes = s.as_bytes();
    let mut seen_two = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let track = match b {
            b'%' => Track::One,
            b';' if !seen_two => {
                seen_two = true;
                Track::Two
            }
            b';' | b'+' => Track::Three,
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i + 1;
        let end = bytes
            .get(start..)
            .and_then(|rest| rest.iter().position(|&c| c == b'?'))
            .map(|p| start + p);
        let slot = &mut tracks[track.index()];
        match end {
            Some(end) => {
                slot.set(s.get(start..end).unwrap_or(""));
                i = end + 1;
            }
            None => {
                slot.status = TrackStatus::EndSentinel;
                slot.data = "";
                break;
            }
        }
    }
    tracks
}
