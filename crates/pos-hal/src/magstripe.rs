//! Magnetic-stripe readers.

use std::time::Duration;

use crate::device::Device;
use crate::sensitive::Sensitive;

/// How one track read (UnifiedPOS reports these per track).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum TrackStatus {
    /// Read and checked (sentinels, parity, LRC where the reader reports them).
    Ok,
    /// Nothing on the track (or the card has no such track).
    Empty,
    /// Start sentinel missing or wrong.
    StartSentinel,
    /// End sentinel missing or wrong.
    EndSentinel,
    /// A character failed its parity check.
    Parity,
    /// The longitudinal redundancy check failed.
    Lrc,
    /// The reader does not read this track.
    NotSupported,
}

impl TrackStatus {
    /// Stable snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            TrackStatus::Ok => "ok",
            TrackStatus::Empty => "empty",
            TrackStatus::StartSentinel => "start_sentinel",
            TrackStatus::EndSentinel => "end_sentinel",
            TrackStatus::Parity => "parity",
            TrackStatus::Lrc => "lrc",
            TrackStatus::NotSupported => "not_supported",
        }
    }

    /// True for the error statuses (a track that was there but did not read).
    pub const fn is_error(self) -> bool {
        matches!(
            self,
            TrackStatus::StartSentinel
                | TrackStatus::EndSentinel
                | TrackStatus::Parity
                | TrackStatus::Lrc
        )
    }
}

/// One track of a swipe: its status and, when it read, its characters (without sentinels
/// and LRC, as ASCII).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    /// How it read.
    pub status: TrackStatus,
    /// The track's characters when `status` is `Ok` (may be partial for error statuses when
    /// the reader delivers them). Card data: never log it.
    pub data: Option<Sensitive>,
}

impl Track {
    /// A track with a status and no data.
    pub fn empty(status: TrackStatus) -> Self {
        Track { status, data: None }
    }
}

/// A swipe: tracks 1, 2 and 3 as read. Decoding the fields (PAN, name, expiry, service code)
/// is the magstripe driver crate's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swipe {
    /// Tracks 1, 2 and 3, in that order.
    pub tracks: [Track; 3],
}

impl Swipe {
    /// The status of each track.
    pub fn statuses(&self) -> [TrackStatus; 3] {
        [
            self.tracks[0].status,
            self.tracks[1].status,
            self.tracks[2].status,
        ]
    }

    /// True when at least one track read and none of the tracks that were present failed.
    pub fn is_clean(&self) -> bool {
        self.tracks.iter().any(|t| t.status == TrackStatus::Ok)
            && !self.tracks.iter().any(|t| t.status.is_error())
    }
}

/// A magnetic-stripe reader (serial, keyboard wedge, HID or a TTL head).
pub trait MagstripeReader: Device {
    /// Wait for the next swipe, up to `timeout`.
    ///
    /// A swipe where some tracks failed is still `Ok`: the caller decides from the per-track
    /// status (e.g. track 2 alone is enough for a sale).
    ///
    /// Errors: `Timeout` when no swipe came in `timeout`; `BadRead` when the reader reported
    /// a swipe with no usable track at all (e.g. `%E?` from serial readers); `Disconnected`
    /// when the reader went away while waiting. Returns within `timeout` plus the time to
    /// finish receiving a swipe already under way (bounded by the driver's inter-character
    /// timeout).
    fn wait_for_swipe(&mut self, timeout: Duration) -> Result<Swipe, Self::Error>;
}

forward_lent_and_boxed!(MagstripeReader {
    fn wait_for_swipe(&mut self, timeout: Duration) -> Result<Swipe, Self::Error> {
        (**self).wait_for_swipe(timeout)
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    fn track(status: TrackStatus) -> Track {
        Track {
            status,
            data: (status == TrackStatus::Ok)
                .then(|| Sensitive::new(b"4111111111111111=2512".to_vec())),
        }
    }

    #[test]
    fn clean_swipe_rules() {
        let ok = Swipe {
            tracks: [
                track(TrackStatus::Empty),
                track(TrackStatus::Ok),
                track(TrackStatus::Empty),
            ],
        };
        assert!(ok.is_clean());
        let lrc = Swipe {
            tracks: [
                track(TrackStatus::Lrc),
                track(TrackStatus::Ok),
                track(TrackStatus::Empty),
            ],
        };
        assert!(!lrc.is_clean());
        assert_eq!(lrc.statuses()[0].name(), "lrc");
        let nothing = Swipe {
            tracks: [
                track(TrackStatus::Empty),
                track(TrackStatus::Empty),
                track(TrackStatus::NotSupported),
            ],
        };
        assert!(!nothing.is_clean());
        // Debug output of a swipe never shows the track data.
        assert!(!format!("{ok:?}").contains("4111"));
    }
}
