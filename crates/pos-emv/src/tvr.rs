//! Terminal Verification Results (`95`) and Transaction Status Information (`9B`), bit-exact
//! as EMV Book 3 Annex C5 and C6 define them.
//!
//! Each flag's value places it where it sits in the 5-byte (TVR) or 2-byte (TSI) field:
//! byte 1 is the most significant, bit 8 the high bit of its byte, so
//! [`Tvr::to_bytes`] is just the big-endian value.

bitflags::bitflags! {
    /// Terminal Verification Results, tag `95` (5 bytes).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Tvr: u64 {
        // Byte 1
        /// Offline data authentication was not performed.
        const ODA_NOT_PERFORMED = 0x80 << 32;
        /// SDA failed.
        const SDA_FAILED = 0x40 << 32;
        /// ICC data missing.
        const ICC_DATA_MISSING = 0x20 << 32;
        /// Card appears on terminal exception file.
        const CARD_ON_EXCEPTION_FILE = 0x10 << 32;
        /// DDA failed.
        const DDA_FAILED = 0x08 << 32;
        /// CDA failed.
        const CDA_FAILED = 0x04 << 32;
        /// SDA selected.
        const SDA_SELECTED = 0x02 << 32;
        // Byte 2
        /// ICC and terminal have different application versions.
        const DIFFERENT_APPLICATION_VERSIONS = 0x80 << 24;
        /// Expired application.
        const EXPIRED_APPLICATION = 0x40 << 24;
        /// Application not yet effective.
        const APPLICATION_NOT_YET_EFFECTIVE = 0x20 << 24;
        /// Requested service not allowed for card product.
        const SERVICE_NOT_ALLOWED = 0x10 << 24;
        /// New card.
        const NEW_CARD = 0x08 << 24;
        // Byte 3
        /// Cardholder verification was not successful.
        const CARDHOLDER_VERIFICATION_FAILED = 0x80 << 16;
        /// Unrecognised CVM.
        const UNRECOGNISED_CVM = 0x40 << 16;
        /// PIN Try Limit exceeded.
        const PIN_TRY_LIMIT_EXCEEDED = 0x20 << 16;
        /// PIN entry required and PIN pad not present or not working.
        const PIN_PAD_NOT_PRESENT = 0x10 << 16;
        /// PIN entry required, PIN pad present, but PIN was not entered.
        const PIN_NOT_ENTERED = 0x08 << 16;
        /// Online PIN entered.
        const ONLINE_PIN_ENTERED = 0x04 << 16;
        // Byte 4
        /// Transaction exceeds floor limit.
        const FLOOR_LIMIT_EXCEEDED = 0x80 << 8;
        /// Lower consecutive offline limit exceeded.
        const LOWER_OFFLINE_LIMIT_EXCEEDED = 0x40 << 8;
        /// Upper consecutive offline limit exceeded.
        const UPPER_OFFLINE_LIMIT_EXCEEDED = 0x20 << 8;
        /// Transaction selected randomly for online processing.
        const RANDOMLY_SELECTED_ONLINE = 0x10 << 8;
        /// Merchant forced transaction online.
        const MERCHANT_FORCED_ONLINE = 0x08 << 8;
        // Byte 5
        /// Default TDOL used.
        const DEFAULT_TDOL_USED = 0x80;
        /// Issuer authentication failed.
        const ISSUER_AUTHENTICATION_FAILED = 0x40;
        /// Script processing failed before final GENERATE AC.
        const SCRIPT_FAILED_BEFORE_FINAL_GAC = 0x20;
        /// Script processing failed after final GENERATE AC.
        const SCRIPT_FAILED_AFTER_FINAL_GAC = 0x10;
    }
}

impl Tvr {
    /// The 5 bytes of tag `95`.
    pub fn to_bytes(self) -> [u8; 5] {
        let b = self.bits().to_be_bytes();
        [b[3], b[4], b[5], b[6], b[7]]
    }

    /// From the 5 bytes of tag `95` (RFU bits are kept).
    pub fn from_bytes(bytes: [u8; 5]) -> Self {
        let mut b = [0u8; 8];
        b[3..].copy_from_slice(&bytes);
        Tvr::from_bits_retain(u64::from_be_bytes(b))
    }

    /// True when any bit set here is also set in `mask` (a TAC or IAC as 5 bytes): the
    /// comparison terminal action analysis makes.
    pub fn matches_any(self, mask: [u8; 5]) -> bool {
        self.intersects(Tvr::from_bytes(mask))
    }
}

bitflags::bitflags! {
    /// Transaction Status Information, tag `9B` (2 bytes).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Tsi: u16 {
        /// Offline data authentication was performed.
        const ODA_PERFORMED = 0x80 << 8;
        /// Cardholder verification was performed.
        const CARDHOLDER_VERIFICATION_PERFORMED = 0x40 << 8;
        /// Card risk management was performed.
        const CARD_RISK_MANAGEMENT_PERFORMED = 0x20 << 8;
        /// Issuer authentication was performed.
        const ISSUER_AUTHENTICATION_PERFORMED = 0x10 << 8;
        /// Terminal risk management was performed.
        const TERMINAL_RISK_MANAGEMENT_PERFORMED = 0x08 << 8;
        /// Script processing was performed.
        const SCRIPT_PROCESSING_PERFORMED = 0x04 << 8;
    }
}

impl Tsi {
    /// The 2 bytes of tag `9B`.
    pub fn to_bytes(self) -> [u8; 2] {
        self.bits().to_be_bytes()
    }

    /// From the 2 bytes of tag `9B`.
    pub fn from_bytes(bytes: [u8; 2]) -> Self {
        Tsi::from_bits_retain(u16::from_be_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_sit_where_emv_book_3_puts_them() {
        assert_eq!(Tvr::ODA_NOT_PERFORMED.to_bytes(), [0x80, 0, 0, 0, 0]);
        assert_eq!(Tvr::SDA_SELECTED.to_bytes(), [0x02, 0, 0, 0, 0]);
        assert_eq!(Tvr::EXPIRED_APPLICATION.to_bytes(), [0, 0x40, 0, 0, 0]);
        assert_eq!(Tvr::UNRECOGNISED_CVM.to_bytes(), [0, 0, 0x40, 0, 0]);
        assert_eq!(Tvr::FLOOR_LIMIT_EXCEEDED.to_bytes(), [0, 0, 0, 0x80, 0]);
        assert_eq!(
            Tvr::SCRIPT_FAILED_AFTER_FINAL_GAC.to_bytes(),
            [0, 0, 0, 0, 0x10]
        );
        assert_eq!(Tsi::ODA_PERFORMED.to_bytes(), [0x80, 0x00]);
        assert_eq!(Tsi::SCRIPT_PROCESSING_PERFORMED.to_bytes(), [0x04, 0x00]);
    }

    #[test]
    fn round_trips_and_tac_matching() {
        let tvr = Tvr::ODA_NOT_PERFORMED | Tvr::FLOOR_LIMIT_EXCEEDED;
        assert_eq!(Tvr::from_bytes(tvr.to_bytes()), tvr);
        assert_eq!(
            Tvr::from_bytes([0xFF; 5]).to_bytes(),
            [0xFF; 5],
            "RFU bits kept"
        );
        // A TAC-denial of 00 00 00 80 00 (floor limit) matches; one of 40 00 00 00 00 does not.
        assert!(tvr.matches_any([0, 0, 0, 0x80, 0]));
        assert!(!tvr.matches_any([0x40, 0, 0, 0, 0]));
        let tsi = Tsi::ODA_PERFORMED | Tsi::TERMINAL_RISK_MANAGEMENT_PERFORMED;
        assert_eq!(tsi.to_bytes(), [0x88, 0x00]);
        assert_eq!(Tsi::from_bytes([0x88, 0x00]), tsi);
    }
}
