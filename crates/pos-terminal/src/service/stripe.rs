//! Magnetic stripe: waiting for a swipe, and the online transaction with its track 2.

use super::*;

impl Terminal {
    /// Wait for a swipe: its track 2, or why there is none (never card data).
    pub(super) fn read_swipe(&mut self) -> Result<Result<Track2, String>, TerminalError> {
        let timeout = Duration::from_millis(self.config.card_timeout_ms);
        let Some(msr) = self.devices.msr.as_mut() else {
            return Ok(Err("the lane has no magnetic stripe reader".into()));
        };
        // Waited for in slices, so that a cancel is seen within one.
        let deadline = std::time::Instant::now() + timeout;
        let swipe = loop {
            if self.cancel.is_requested() {
                return Ok(Err(CANCELLED.into()));
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match msr.wait_for_swipe(left.min(SWIPE_SLICE)) {
                Ok(s) => break s,
                Err(e)
                    if e.kind() == FaultKind::Timeout && !left.is_zero() && left > SWIPE_SLICE => {}
                Err(e) => {
                    return Ok(Err(format!("no card swiped ({}: {e})", e.kind().name())));
                }
            }
        };
        let Some(data) = swipe.tracks[1]
            .data
            .as_ref()
            .filter(|_| swipe.tracks[1].status == pos_hal::TrackStatus::Ok)
        else {
            return Ok(Err(format!(
                "track 2 did not read ({}): swipe again",
                swipe.tracks[1].status.name()
            )));
        };
        let Some(t2) = Track2::parse(data.expose()) else {
            return Ok(Err("track 2 is not valid: swipe again".into()));
        };
        Ok(Ok(t2))
    }

    /// Magnetic stripe online transaction. Returns true when committed.
    pub(super) fn stripe(
        &mut self,
        cx: Ctx<'_, '_>,
        t2: Track2,
        entry: EntryMode,
    ) -> Result<bool, TerminalError> {
        let facts = CardFacts {
            pan_masked: Some(pos_hal::mask_pan(&String::from_utf8_lossy(t2.pan.expose()))),
            aid: None,
            label: None,
            card: CardData {
                pan: t2.pan.clone(),
                expiry: Some(t2.expiry.clone()),
                pan_sequence: None,
                track2: Some(t2.raw.clone()),
                entry_mode: entry,
                icc_data: None,
            },
        };
        let end = self.online(cx, facts, None, &mut || Ok(()))?;
        if let HostEnd::Approved { .. } = end {
            self.journal.transition(
                cx.id,
                State::Committed,
                "approved (magnetic stripe: no card step)",
                Changes::default(),
            )?;
            return Ok(true);
        }
        Ok(false)
    }
}

/// Track 2 as the online request needs it: the raw track, PAN, expiry (`YYMM`) and whether
/// the service code says the card has a chip. Parsed by pos-magstripe's ISO 7813 parser.
/// Never logged.
#[derive(Clone)]
pub(super) struct Track2 {
    raw: Sensitive,
    pan: Sensitive,
    expiry: String,
    chip_card: bool,
}

impl Track2 {
    /// From the reader's track 2 text: a PAN of 12 to 19 digits, an expiry and a service
    /// code are required to go online; `None` otherwise.
    pub(super) fn parse(data: &[u8]) -> Option<Track2> {
        let text = std::str::from_utf8(data).ok()?;
        let t = pos_magstripe::Track2Data::parse(text).ok()?;
        if !(12..=19).contains(&t.pan.len()) {
            return None;
        }
        let expiry = t.expiry?;
        let service = t.service_code?;
        Some(Track2 {
            raw: Sensitive::new(data.to_vec()),
            pan: Sensitive::new(t.pan.as_bytes().to_vec()),
            expiry: expiry.iter().map(|d| char::from(b'0' + d)).collect(),
            chip_card: service.chip_card(),
        })
    }

    /// The service code says the card has a chip (first digit 2 or 6).
    pub(super) fn is_chip_card(&self) -> bool {
        self.chip_card
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn track2_parsing() {
        let t = Track2::parse(b"4761739001010010=28122011143804489").unwrap();
        assert_eq!(t.pan.expose(), b"4761739001010010");
        assert_eq!(t.expiry, "2812");
        assert!(t.is_chip_card());
        let t = Track2::parse(b"4111111111111111=28121010000000000").unwrap();
        assert!(!t.is_chip_card());
        for bad in [
            &b""[..],
            b"=",
            b"41111=2812101",
            b"4111111111111111=28",
            b"411111111111111x=2812101",
        ] {
            assert!(Track2::parse(bad).is_none());
        }
    }
}
