//! Status word meanings and categories (ISO/IEC 7816-4 5.6, EMV Book 1 and 3).

use pos_emv::sw::{self, SwCategory};

#[test]
fn meanings_of_the_status_words_emv_uses() {
    let table: &[(u8, u8, &str)] = &[
        (0x90, 0x00, "success"),
        (
            0x62,
            0x83,
            "selected file deactivated (EMV: the application is blocked)",
        ),
        (0x62, 0x81, "part of the returned data may be corrupted"),
        (
            0x62,
            0x82,
            "end of file or record reached before reading Le bytes",
        ),
        (0x63, 0x00, "verification or issuer authentication failed"),
        (0x64, 0x00, "execution error: memory unchanged"),
        (0x65, 0x81, "memory failure"),
        (0x67, 0x00, "wrong length"),
        (0x68, 0x81, "logical channel not supported"),
        (0x68, 0x82, "secure messaging not supported"),
        (0x69, 0x81, "command incompatible with file structure"),
        (0x69, 0x82, "security status not satisfied"),
        (
            0x69,
            0x83,
            "authentication method blocked (EMV: PIN try limit exceeded)",
        ),
        (0x69, 0x84, "reference data not usable"),
        (0x69, 0x85, "conditions of use not satisfied"),
        (0x69, 0x86, "command not allowed (no current EF)"),
        (0x6A, 0x80, "incorrect parameters in the command data field"),
        (
            0x6A,
            0x81,
            "function not supported (EMV: card or application blocked)",
        ),
        (0x6A, 0x82, "file or application not found"),
        (0x6A, 0x83, "record not found"),
        (0x6A, 0x84, "not enough memory space"),
        (0x6A, 0x85, "Lc inconsistent with TLV structure"),
        (0x6A, 0x86, "incorrect parameters P1-P2"),
        (0x6A, 0x87, "Lc inconsistent with P1-P2"),
        (0x6A, 0x88, "referenced data not found"),
        (0x6B, 0x00, "wrong parameters P1-P2"),
        (0x6D, 0x00, "instruction not supported"),
        (0x6E, 0x00, "class not supported"),
        (0x6F, 0x00, "no precise diagnosis"),
    ];
    for (sw1, sw2, part) in table {
        let m = sw::meaning(*sw1, *sw2);
        assert!(m.contains(part), "{sw1:02X}{sw2:02X}: {m:?} lacks {part:?}");
    }
}

#[test]
fn meanings_with_a_number_in_them() {
    assert_eq!(
        sw::meaning(0x61, 0x1E),
        "success: 30 bytes of response data available (fetch with GET RESPONSE)"
    );
    assert!(sw::meaning(0x61, 0x00).contains("256"));
    assert_eq!(
        sw::meaning(0x6C, 0x1C),
        "wrong Le: the card has exactly 28 bytes (resend with that Le)"
    );
    assert!(sw::meaning(0x6C, 0x00).contains("256"));
    assert_eq!(
        sw::meaning(0x63, 0xC2),
        "warning: counter is 2 (EMV VERIFY: wrong PIN, 2 tries left)"
    );
    assert!(sw::meaning(0x63, 0xC0).contains("0 tries left"));
    assert!(sw::meaning(0x9F, 0x10).contains("16 bytes"));
}

#[test]
fn unknown_values_get_their_group() {
    assert_eq!(sw::meaning(0x62, 0x55), "warning: memory unchanged");
    assert_eq!(sw::meaning(0x69, 0x99), "command not allowed");
    assert_eq!(sw::meaning(0x6A, 0x99), "wrong parameters P1-P2");
    assert_eq!(
        sw::meaning(0x93, 0x03),
        "proprietary status (application specific)"
    );
    assert_eq!(sw::meaning(0x12, 0x34), "unknown status word");
    assert_eq!(
        sw::describe(0x6A, 0x82),
        "6A82 (file or application not found)"
    );
}

#[test]
fn categories() {
    use SwCategory::*;
    let table = [
        (0x90, 0x00, Success),
        (0x61, 0x10, Success),
        (0x62, 0x83, Warning),
        (0x63, 0x00, Warning),
        (0x63, 0xC1, Warning),
        (0x64, 0x00, ExecutionError),
        (0x65, 0x81, ExecutionError),
        (0x66, 0x00, ExecutionError),
        (0x67, 0x00, CheckingError),
        (0x68, 0x82, CheckingError),
        (0x69, 0x85, CheckingError),
        (0x6A, 0x82, CheckingError),
        (0x6B, 0x00, CheckingError),
        (0x6C, 0x10, CheckingError),
        (0x6D, 0x00, CheckingError),
        (0x6E, 0x00, CheckingError),
        (0x6F, 0x00, CheckingError),
        (0x90, 0x01, Unknown),
        (0x9F, 0x10, Unknown),
        (0x00, 0x00, Unknown),
    ];
    for (sw1, sw2, cat) in table {
        assert_eq!(sw::category(sw1, sw2), cat, "{sw1:02X}{sw2:02X}");
    }
}
