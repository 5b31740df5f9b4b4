//! The card in QEMU's reader: our EMV virtual cards behind `ccid-card-passthru`, through
//! the VSCard client (`pos-vscard`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use pos_emv::profile_card::{Profile, ProfileCard};
use pos_emv::script_card::{Matching, ScriptedCard};
use pos_hal::VirtualCard;
use pos_vscard::CardClient;

/// How long to wait for QEMU's card socket and the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long QEMU may take to acknowledge an inserted or pulled card.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// A card that never answers its reset (no ATR).
struct MuteCard;

impl VirtualCard for MuteCard {
    fn power_on(&mut self) -> Option<Vec<u8>> {
        None
    }
    fn transmit(&mut self, _command: &[u8]) -> Option<Vec<u8>> {
        None
    }
}

/// Make the card `name` names: a `pos_emv` profile (`mastercard`, `visa`, ...),
/// `transcript:NAME` (the recorded session `NAME.apdu` under `transcripts`, replayed
/// leniently: GENERATE AC and INTERNAL AUTHENTICATE match on their header), or `mute`.
///
/// Errors: an unknown name or an unreadable transcript, in words.
pub fn make_card(name: &str, transcripts: &Path) -> Result<Box<dyn VirtualCard>, String> {
    if name == "mute" {
        return Ok(Box::new(MuteCard));
    }
    if let Some(t) = name.strip_prefix("transcript:") {
        if t.is_empty() || t.contains('/') || t.contains("..") {
            return Err(format!("bad transcript name {t:?}"));
        }
        let path = transcripts.join(format!("{t}.apdu"));
        let card = ScriptedCard::load(&path, Matching::Lenient)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        return Ok(Box::new(card));
    }
    let profile: Profile = name.parse().map_err(|e| format!("{e}"))?;
    Ok(Box::new(ProfileCard::new(profile)))
}

/// The card side of the rig.
#[derive(Debug)]
pub struct CardSide {
    socket: PathBuf,
    transcripts: PathBuf,
    client: Option<CardClient>,
    /// The card in the reader (by name), re-inserted when the reader is plugged back.
    inserted: Option<String>,
}

impl CardSide {
    /// Connect to QEMU's passthru socket (retrying while QEMU starts) and wait for the
    /// handshake; no card is inserted yet.
    ///
    /// Errors: the socket or the handshake failed within 10 s.
    pub fn connect(socket: &Path, transcripts: &Path) -> Result<CardSide, String> {
        let mut side = CardSide {
            socket: socket.to_path_buf(),
            transcripts: transcripts.to_path_buf(),
            client: None,
            inserted: None,
        };
        side.open()?;
        Ok(side)
    }

    fn open(&mut self) -> Result<(), String> {
        let client = CardClient::connect(&self.socket, CONNECT_TIMEOUT)
            .map_err(|e| format!("card socket: {e}"))?;
        client
            .wait_connected(CONNECT_TIMEOUT)
            .map_err(|e| format!("VSCard handshake: {e}"))?;
        self.client = Some(client);
        Ok(())
    }

    fn client(&self) -> Result<&CardClient, String> {
        self.client
            .as_ref()
            .ok_or_else(|| "the reader is unplugged".to_string())
    }

    /// Insert the card `name` names (see [`make_card`]).
    ///
    /// Errors: unknown card, reader unplugged, the client has stopped.
    pub fn insert(&mut self, name: &str) -> Result<(), String> {
        let card = make_card(name, &self.transcripts)?;
        // A new card starts unarmed: a pull armed for an earlier card that never fired must
        // not pull this one.
        self.client()?
            .remove_on_apdu(0)
            .map_err(|e| format!("disarm: {e}"))?;
        let rejected = self.client()?.stats().atr_rejected;
        self.client()?
            .insert(card)
            .map_err(|e| format!("insert: {e}"))?;
        // Whatever happens next, the card that was in the reader is gone.
        self.inserted = None;
        let stats = self.acknowledged("insert")?;
        if stats.atr_rejected > rejected {
            return Err(format!(
                "insert: QEMU refused the card's ATR ({})",
                stats.last_error.unwrap_or_default()
            ));
        }
        // Only a card QEMU took is put back when the reader is plugged in again.
        self.inserted = Some(name.to_string());
        Ok(())
    }

    /// Wait until the client carried out what was asked and QEMU acknowledged it: the
    /// guest is answered only once QEMU's reader has the card (or has lost it).
    fn acknowledged(&self, what: &str) -> Result<pos_vscard::Stats, String> {
        self.client()?
            .sync(ACK_TIMEOUT)
            .map_err(|e| format!("{what}: {e}"))
    }

    /// Pull the card.
    ///
    /// Errors: reader unplugged, the client has stopped.
    pub fn remove(&mut self) -> Result<(), String> {
        self.client()?
            .remove()
            .map_err(|e| format!("remove: {e}"))?;
        self.inserted = None;
        self.acknowledged("remove").map(drop)
    }

    /// Pull the card instead of answering the `n`-th APDU from now.
    ///
    /// Errors: reader unplugged, the client has stopped.
    pub fn remove_on_apdu(&mut self, n: u32) -> Result<(), String> {
        self.client()?
            .remove_on_apdu(n)
            .map_err(|e| format!("remove_on_apdu: {e}"))?;
        self.acknowledged("remove_on_apdu").map(drop)
    }

    /// `apdus=N removals=N`, or `unplugged`.
    pub fn stats(&self) -> String {
        match &self.client {
            Some(c) => {
                let s = c.stats();
                format!("apdus={} removals={}", s.apdus_received, s.removals)
            }
            None => "unplugged".into(),
        }
    }

    /// The reader is being unplugged: close the socket (QEMU's passthru device goes with
    /// the reader).
    pub fn disconnect(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = c.shutdown();
        }
    }

    /// The reader is plugged back: connect again and re-insert the card it held.
    ///
    /// Errors: as [`connect`](Self::connect) and [`insert`](Self::insert).
    pub fn reconnect(&mut self) -> Result<(), String> {
        self.disconnect();
        self.open()?;
        if let Some(name) = self.inserted.clone() {
            self.insert(&name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates/pos-emv/tests/data")
    }

    #[test]
    fn cards_are_made_by_name() {
        let mut mc = make_card("mastercard", &testdata()).unwrap_or_else(|e| panic!("{e}"));
        assert!(mc.power_on().is_some());
        let mut mute = make_card("mute", &testdata()).unwrap_or_else(|e| panic!("{e}"));
        assert!(mute.power_on().is_none());
        let mut t = make_card("transcript:contact-mastercard", &testdata())
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(t.power_on().is_some());
        assert!(make_card("nosuch", &testdata()).is_err());
        assert!(make_card("transcript:../x", &testdata()).is_err());
        assert!(make_card("transcript:missing", &testdata()).is_err());
    }
}
