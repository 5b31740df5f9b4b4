//! Bulk messages: real frames from public reader logs, frames derived from the CCID spec
//! (rev 1.1, chapter 6), errors, reply matching, and properties (round trips for every
//! message, no panic on arbitrary bytes).

use pos_ccid::message::{
    self, CodecError, CommandStatus, Header, IccStatus, PowerSelect, ProtocolParams, ReplyMatch,
    Request, RequestBody, Response, ResponseBody, SlotError, SlotStatusByte,
};
use pos_hal::{Fault, FaultKind};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).expect("test hex")
}

// ---------------------------------------------------------------- requests

#[test]
fn icc_power_on_slot0_seq0_automatic() {
    let r = Request {
        slot: 0,
        seq: 0,
        body: RequestBody::IccPowerOn {
            power: PowerSelect::Automatic,
        },
    };
    assert_eq!(r.encode(), hex("62 00 00 00 00 00 00 00 00 00"));
    assert_eq!(Request::decode(&r.encode()), Ok(r));
}

#[test]
fn icc_power_on_5v_from_a_libccid_log() {
    // pcscd/libccid log, Gemalto IDBridge CT40 (08e6:3437), LudovicRousseau/PCSC issue #71:
    // "-> 000000 62 00 00 00 00 00 1A 01 00 00": bPowerSelect 01 (5 V) at offset 7.
    let bytes = hex("62 00 00 00 00 00 1A 01 00 00");
    let r = Request::decode(&bytes).expect("IccPowerOn");
    assert_eq!(
        r,
        Request {
            slot: 0,
            seq: 0x1A,
            body: RequestBody::IccPowerOn {
                power: PowerSelect::V5
            }
        }
    );
    assert_eq!(r.encode(), bytes);
    for (power, byte) in [
        (PowerSelect::V5, 1),
        (PowerSelect::V3, 2),
        (PowerSelect::V1_8, 3),
    ] {
        let e = Request {
            slot: 1,
            seq: 2,
            body: RequestBody::IccPowerOn { power },
        }
        .encode();
        assert_eq!(e[7], byte);
        assert_eq!(e[5], 1);
        assert_eq!(e[6], 2);
    }
}

#[test]
fn get_slot_status_from_a_libccid_log() {
    // ACR122U (072f:2200) log in LudovicRousseau/pyscard issue #18:
    // "-> 000000 65 00 00 00 00 00 04 00 00 00".
    let bytes = hex("65 00 00 00 00 00 04 00 00 00");
    let r = Request::decode(&bytes).expect("GetSlotStatus");
    assert_eq!(
        r,
        Request {
            slot: 0,
            seq: 4,
            body: RequestBody::GetSlotStatus
        }
    );
    assert_eq!(r.encode(), bytes);
}

#[test]
fn xfr_block_from_a_libccid_log() {
    // LudovicRousseau/CCID PR #67: SELECT by path, 9 bytes, bSeq 0x2D.
    let bytes = hex("6F 09 00 00 00 00 2D 00 00 00 00 A4 09 04 04 3F 00 D0 03");
    let r = Request::decode(&bytes).expect("XfrBlock");
    assert_eq!(
        r,
        Request {
            slot: 0,
            seq: 0x2D,
            body: RequestBody::XfrBlock {
                bwi: 0,
                level: 0,
                data: hex("00 A4 09 04 04 3F 00 D0 03")
            }
        }
    );
    assert_eq!(r.encode(), bytes);
    assert_eq!(message::message_length(&bytes), Some(19));
}

#[test]
fn xfr_block_carries_bwi_and_level_little_endian() {
    let r = Request {
        slot: 0,
        seq: 9,
        body: RequestBody::XfrBlock {
            bwi: 3,
            level: message::CHAIN_EMPTY_MORE,
            data: vec![],
        },
    };
    assert_eq!(r.encode(), hex("6F 00 00 00 00 00 09 03 10 00"));
}

#[test]
fn set_parameters_t1_and_t0() {
    let r = Request {
        slot: 0,
        seq: 3,
        body: RequestBody::SetParameters {
            params: ProtocolParams::default_t1(),
        },
    };
    assert_eq!(
        r.encode(),
        hex("61 07 00 00 00 00 03 01 00 00 11 10 00 4D 00 20 00")
    );
    assert_eq!(Request::decode(&r.encode()), Ok(r));
    let r = Request {
        slot: 0,
        seq: 4,
        body: RequestBody::SetParameters {
            params: ProtocolParams::T0 {
                findex_dindex: 0x96,
                tcckst: 0x00,
                guard_time: 0x02,
                waiting_integer: 0x0A,
                clock_stop: 0x00,
            },
        },
    };
    assert_eq!(
        r.encode(),
        hex("61 05 00 00 00 00 04 00 00 00 96 00 02 0A 00")
    );
    assert_eq!(Request::decode(&r.encode()), Ok(r));
}

#[test]
fn abort_message_and_class_request_value() {
    let r = Request {
        slot: 1,
        seq: 0x42,
        body: RequestBody::Abort,
    };
    assert_eq!(r.encode(), hex("72 00 00 00 00 01 42 00 00 00"));
    assert_eq!(message::abort_value(1, 0x42), 0x4201);
    assert_eq!(message::parse_abort_value(0x4201), (1, 0x42));
    assert_eq!(message::ABORT_REQUEST, 0x01);
    assert_eq!(message::GET_CLOCK_FREQUENCIES_REQUEST, 0x02);
    assert_eq!(message::GET_DATA_RATES_REQUEST, 0x03);
}

#[test]
fn set_data_rate_and_clock_is_khz_and_bps() {
    let r = Request {
        slot: 0,
        seq: 1,
        body: RequestBody::SetDataRateAndClock {
            clock_khz: 4000,
            rate_bps: 10752,
        },
    };
    assert_eq!(
        r.encode(),
        hex("73 08 00 00 00 00 01 00 00 00 A0 0F 00 00 00 2A 00 00")
    );
    assert_eq!(Request::decode(&r.encode()), Ok(r));
}

#[test]
fn clock_and_rate_lists() {
    let bytes = hex("A0 0F 00 00 40 1F 00 00 E0 2E 00 00 FF");
    assert_eq!(message::parse_u32_list(&bytes), vec![4000, 8000, 12000]);
    assert_eq!(
        message::encode_u32_list(&[4000, 8000, 12000]),
        bytes[..12].to_vec()
    );
}

#[test]
fn unmodelled_types_decode_as_other() {
    let bytes = hex("70 02 00 00 00 00 05 01 02 03 AA BB");
    let r = Request::decode(&bytes).expect("Other");
    assert_eq!(
        r,
        Request {
            slot: 0,
            seq: 5,
            body: RequestBody::Other {
                message_type: 0x70,
                specific: [1, 2, 3],
                data: vec![0xAA, 0xBB]
            }
        }
    );
    assert_eq!(r.encode(), bytes);
    assert_eq!(r.response_type(), message::RDR_TO_PC_SLOT_STATUS);
}

#[test]
fn malformed_requests_name_the_field_and_offset() {
    // GetSlotStatus must not carry data: dwLength (offset 1) is wrong.
    let err = Request::decode(&hex("65 01 00 00 00 00 04 00 00 00 AA")).expect_err("dwLength");
    assert!(
        matches!(err, CodecError::BadLength { length: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("offset 1"), "{err}");
    assert_eq!(err.slot_error(), Some(SlotError::BadParameter(1)));
    assert_eq!(err.kind(), FaultKind::Protocol);

    // bPowerSelect 4 does not exist: offset 7.
    let err = Request::decode(&hex("62 00 00 00 00 00 01 04 00 00")).expect_err("bPowerSelect");
    assert!(err.to_string().contains("bPowerSelect"), "{err}");
    assert!(err.to_string().contains("offset 7"), "{err}");
    assert_eq!(err.slot_error(), Some(SlotError::BadParameter(7)));

    // bProtocolNum 2 is not T=0 or T=1.
    let err = Request::decode(&hex("61 05 00 00 00 00 01 02 00 00 11 00 00 0A 00"))
        .expect_err("bProtocolNum");
    assert_eq!(err.slot_error(), Some(SlotError::BadParameter(7)));

    // T=1 with the 5 bytes of a T=0 structure.
    let err = Request::decode(&hex("61 05 00 00 00 00 01 01 00 00 11 00 00 0A 00"))
        .expect_err("T=1 length");
    assert!(
        matches!(err, CodecError::BadLength { length: 5, .. }),
        "{err:?}"
    );

    // dwLength says 9, only 2 bytes follow.
    let err = Request::decode(&hex("6F 09 00 00 00 00 2D 00 00 00 00 A4")).expect_err("short");
    assert_eq!(
        err,
        CodecError::Truncated {
            message: "XfrBlock",
            needed: 19,
            got: 12
        }
    );
    assert!(err.to_string().contains("offset 12"), "{err}");

    // A command transfer holds exactly one message.
    let err = Request::decode(&hex("65 00 00 00 00 00 04 00 00 00 00")).expect_err("trailing");
    assert!(matches!(
        err,
        CodecError::TrailingBytes {
            expected: 10,
            extra: 1,
            ..
        }
    ));

    // Half a header: no slot or seq to answer to.
    let err = Request::decode(&hex("65 00 00")).expect_err("half header");
    assert_eq!(err.slot_error(), None);
    assert_eq!(Header::parse(&hex("65 00 00")), Err(err));
}

#[test]
fn header_lets_a_reader_answer_a_malformed_command() {
    let bytes = hex("62 00 00 00 00 00 33 09 00 00");
    let h = Header::parse(&bytes).expect("header");
    assert_eq!((h.message_type, h.slot, h.seq), (0x62, 0, 0x33));
    assert_eq!(h.to_bytes().to_vec(), bytes);
    let e = Request::decode(&bytes).expect_err("bad power select");
    let reply = Response {
        slot: h.slot,
        seq: h.seq,
        status: SlotStatusByte::failed(IccStatus::PresentInactive),
        error: e.slot_error().expect("answerable").code(),
        body: ResponseBody::DataBlock {
            chain: 0,
            data: vec![],
        },
    };
    assert_eq!(reply.encode(), hex("80 00 00 00 00 00 33 41 07 00"));
}

// --------------------------------------------------------------- responses

#[test]
fn slot_status_no_card() {
    // Spec-derived: SlotStatus, slot 0, seq 0, bStatus 0x02 (no ICC, processed), bError 0,
    // clock running.
    let bytes = hex("81 00 00 00 00 00 00 02 00 00");
    let r = Response::decode(&bytes).expect("SlotStatus");
    assert_eq!(
        r,
        Response {
            slot: 0,
            seq: 0,
            status: SlotStatusByte(0x02),
            error: 0,
            body: ResponseBody::SlotStatus {
                clock_status: message::CLOCK_RUNNING
            }
        }
    );
    assert_eq!(r.status.icc(), IccStatus::Absent);
    assert_eq!(r.status.command(), CommandStatus::Processed);
    assert!(!r.status.card_present());
    assert_eq!(r.slot_error(), None);
    assert_eq!(r.fault_kind(), None);
    assert_eq!(r.encode(), bytes);
}

#[test]
fn slot_status_no_card_with_junk_berror_from_a_libccid_log() {
    // ACR122U, LudovicRousseau/pyscard issue #18: "<- 000000 81 00 00 00 00 00 04 02 81 00".
    // bError 0x81 with bmCommandStatus 0 means nothing.
    let r = Response::decode(&hex("81 00 00 00 00 00 04 02 81 00")).expect("SlotStatus");
    assert_eq!(r.seq, 4);
    assert_eq!(r.status.icc(), IccStatus::Absent);
    assert_eq!(r.error, 0x81);
    assert_eq!(r.slot_error(), None);
    let request = Request {
        slot: 0,
        seq: 4,
        body: RequestBody::GetSlotStatus,
    };
    assert!(request.match_reply(&r) == ReplyMatch::Reply);
}

#[test]
fn power_on_without_card_is_icc_mute_with_no_icc() {
    // QEMU's usb-ccid answers IccPowerOn without a card with an empty DataBlock,
    // bmCommandStatus 1 (failed) | bmICCStatus 2 (no ICC) = 0x42 and bError ICC_MUTE (0xFE)
    // (hw/usb/dev-smartcard-reader.c: ccid_report_error_failed(s, ERROR_ICC_MUTE), then
    // ccid_write_data_block_atr).
    let bytes = hex("80 00 00 00 00 00 05 42 FE 00");
    let r = Response::decode(&bytes).expect("DataBlock");
    assert_eq!(r.status, SlotStatusByte::failed(IccStatus::Absent));
    assert_eq!(r.status.command(), CommandStatus::Failed);
    assert_eq!(r.slot_error(), Some(SlotError::IccMute));
    assert_eq!(r.slot_error().map(SlotError::name), Some("ICC_MUTE"));
    assert_eq!(r.fault_kind(), Some(FaultKind::CardAbsent));
    assert_eq!(r.encode(), bytes);

    // The same error with a card present: the card is mute.
    let r = Response::decode(&hex("80 00 00 00 00 00 05 41 FE 00")).expect("DataBlock");
    assert_eq!(r.status.icc(), IccStatus::PresentInactive);
    assert_eq!(r.fault_kind(), Some(FaultKind::CardMute));
}

#[test]
fn data_block_with_an_atr_from_a_libccid_log() {
    // Gemalto IDBridge CT40, LudovicRousseau/PCSC issue #71: the reply to the IccPowerOn
    // above, a 20-byte (0x14) ATR.
    let bytes = hex("80 14 00 00 00 00 1A 00 00 00 \
         3B FA 18 00 00 81 31 FE 45 4A 54 61 78 43 6F 72 65 56 31 B2");
    assert_eq!(message::message_length(&bytes[..10]), Some(30));
    let r = Response::decode(&bytes).expect("DataBlock");
    assert_eq!(r.seq, 0x1A);
    assert_eq!(r.status, SlotStatusByte::ok(IccStatus::PresentActive));
    assert_eq!(
        r.payload(),
        hex("3B FA 18 00 00 81 31 FE 45 4A 54 61 78 43 6F 72 65 56 31 B2").as_slice()
    );
    let request = Request {
        slot: 0,
        seq: 0x1A,
        body: RequestBody::IccPowerOn {
            power: PowerSelect::V5,
        },
    };
    assert_eq!(request.match_reply(&r), ReplyMatch::Reply);
    assert_eq!(r.encode(), bytes);
}

#[test]
fn data_block_with_trailing_padding_from_a_libccid_log() {
    // LudovicRousseau/CCID PR #67: "80 02 00 00 00 00 2D 00 00 00 61 27" followed by zeros
    // the reader sent past dwLength. The reply is the 2 bytes dwLength says.
    let mut bytes = hex("80 02 00 00 00 00 2D 00 00 00 61 27");
    bytes.extend_from_slice(&[0; 20]);
    let r = Response::decode(&bytes).expect("DataBlock");
    assert_eq!(r.payload(), &[0x61, 0x27]);
    assert_eq!(r.seq, 0x2D);
}

#[test]
fn time_extension_data_block() {
    // Spec-derived: bmCommandStatus 2 (time extension), card active: bStatus 0x80; bError
    // is the BWT multiplier (2).
    let bytes = hex("80 00 00 00 00 00 07 80 02 00");
    let r = Response::decode(&bytes).expect("DataBlock");
    assert_eq!(r.status.command(), CommandStatus::TimeExtension);
    assert_eq!(r.status.icc(), IccStatus::PresentActive);
    assert!(r.is_time_extension());
    assert_eq!(r.time_extension_multiplier(), Some(2));
    assert_eq!(r.slot_error(), None, "bError is a multiplier, not an error");
    assert_eq!(r.fault_kind(), None);
    assert_eq!(
        SlotStatusByte::time_extension(IccStatus::PresentActive),
        SlotStatusByte(0x80)
    );
    assert_eq!(r.encode(), bytes);
}

#[test]
fn parameters_replies() {
    let r = Response {
        slot: 0,
        seq: 0x0B,
        status: SlotStatusByte::ok(IccStatus::PresentActive),
        error: 0,
        body: ResponseBody::Parameters {
            params: Some(ProtocolParams::T1 {
                findex_dindex: 0x11,
                tcckst: 0x10,
                guard_time: 0xFE,
                bwi_cwi: 0x55,
                clock_stop: 0x03,
                ifsc: 0xFE,
                nad: 0x00,
            }),
        },
    };
    let bytes = hex("82 07 00 00 00 00 0B 00 00 01 11 10 FE 55 03 FE 00");
    assert_eq!(r.encode(), bytes);
    assert_eq!(Response::decode(&bytes), Ok(r));

    // A failed SetParameters with no structure.
    let r = Response::decode(&hex("82 00 00 00 00 00 0C 41 07 00")).expect("Parameters");
    assert!(matches!(r.body, ResponseBody::Parameters { params: None }));
    assert_eq!(r.slot_error(), Some(SlotError::BadParameter(7)));

    // Older QEMU builds send dwLength 0 with the structure after the header: the
    // structure is not part of the message.
    let r = Response::decode(&hex("82 00 00 00 00 00 0D 00 00 00 11 00 00 0A 00 00 00"))
        .expect("Parameters");
    assert!(matches!(r.body, ResponseBody::Parameters { params: None }));

    // T=1 announced, T=0 length: malformed.
    let err = Response::decode(&hex("82 05 00 00 00 00 0D 00 00 01 11 10 00 4D 00"))
        .expect_err("short T=1 structure");
    assert!(
        matches!(err, CodecError::BadLength { length: 5, .. }),
        "{err:?}"
    );
}

#[test]
fn escape_and_data_rate_replies() {
    let r = Response {
        slot: 0,
        seq: 1,
        status: SlotStatusByte::ok(IccStatus::Absent),
        error: 0,
        body: ResponseBody::Escape {
            data: vec![0x41, 0x43, 0x52],
        },
    };
    assert_eq!(r.encode(), hex("83 03 00 00 00 00 01 02 00 00 41 43 52"));
    assert_eq!(Response::decode(&r.encode()), Ok(r));

    let r = Response {
        slot: 0,
        seq: 2,
        status: SlotStatusByte::ok(IccStatus::PresentActive),
        error: 0,
        body: ResponseBody::DataRateAndClock {
            clock_khz: 4000,
            rate_bps: 9600,
        },
    };
    assert_eq!(
        r.encode(),
        hex("84 08 00 00 00 00 02 00 00 00 A0 0F 00 00 80 25 00 00")
    );
    assert_eq!(Response::decode(&r.encode()), Ok(r));

    // A failed one without data reads as zeros.
    let r = Response::decode(&hex("84 00 00 00 00 00 03 41 00 00")).expect("DataRateAndClock");
    assert_eq!(
        r.body,
        ResponseBody::DataRateAndClock {
            clock_khz: 0,
            rate_bps: 0
        }
    );
    assert_eq!(r.slot_error(), Some(SlotError::NotSupported));
}

#[test]
fn malformed_responses_name_the_offset() {
    let err = Response::decode(&hex("80 05 00 00 00 00 01 00 00 00 3B")).expect_err("short");
    assert_eq!(
        err,
        CodecError::Truncated {
            message: "DataBlock",
            needed: 15,
            got: 11
        }
    );
    let err = Response::decode(&hex("62 00 00 00 00 00 01 00 00 00")).expect_err("a command");
    assert_eq!(
        err,
        CodecError::UnknownMessageType {
            direction: "bulk-in",
            message_type: 0x62
        }
    );
    assert!(err.to_string().contains("0x62 at offset 0"), "{err}");
    let err = Response::decode(&[]).expect_err("empty");
    assert!(err.to_string().contains("CCID header"), "{err}");
}

#[test]
fn replies_are_matched_by_slot_seq_and_type() {
    let req = Request {
        slot: 0,
        seq: 7,
        body: RequestBody::XfrBlock {
            bwi: 0,
            level: 0,
            data: vec![0x00, 0xB2, 0x01, 0x0C, 0x00],
        },
    };
    let reply = |seq, slot| Response {
        slot,
        seq,
        status: SlotStatusByte(0),
        error: 0,
        body: ResponseBody::DataBlock {
            chain: 0,
            data: vec![0x90, 0x00],
        },
    };
    assert_eq!(req.match_reply(&reply(7, 0)), ReplyMatch::Reply);
    assert_eq!(req.match_reply(&reply(6, 0)), ReplyMatch::Stale);
    assert_eq!(req.match_reply(&reply(7, 1)), ReplyMatch::Stale);
    let refusal = Response {
        slot: 0,
        seq: 7,
        status: SlotStatusByte::failed(IccStatus::PresentActive),
        error: 0,
        body: ResponseBody::SlotStatus { clock_status: 0 },
    };
    assert_eq!(req.match_reply(&refusal), ReplyMatch::WrongType);
    assert_eq!(
        message::response_type_for(message::PC_TO_RDR_GET_PARAMETERS),
        message::RDR_TO_PC_PARAMETERS
    );
    assert_eq!(
        Request {
            slot: 0,
            seq: 0,
            body: RequestBody::Escape { data: vec![] }
        }
        .response_type(),
        message::RDR_TO_PC_ESCAPE
    );
}

#[test]
fn message_length_needs_the_whole_header() {
    let full = hex("80 14 00 00 00 00 1A 00 00 00");
    for n in 0..10 {
        assert_eq!(message::message_length(&full[..n]), None, "{n} bytes");
    }
    assert_eq!(message::message_length(&full), Some(30));
    assert_eq!(
        message::message_length(&hex("80 00 01 00 00 00 00 00 00 00")),
        Some(10 + 256)
    );
    // dwLength from a device can be absurd: no overflow, and a driver compares it with
    // dwMaxCCIDMessageLength.
    let huge = message::message_length(&hex("80 FF FF FF FF 00 00 00 00 00")).expect("len");
    assert!(huge >= 10);
}

#[test]
fn status_byte_decodes_every_value() {
    for b in 0..=255u8 {
        let s = SlotStatusByte(b);
        assert_eq!(s.icc().code(), b & 0x03);
        assert_eq!(s.command().code(), b >> 6);
        assert_eq!(
            SlotStatusByte::new(s.icc(), s.command()).0,
            b & 0xC3,
            "RFU bits 2-5 are not set by new()"
        );
    }
    assert_eq!(SlotStatusByte(0x42).icc(), IccStatus::Absent);
    assert_eq!(SlotStatusByte(0x42).command(), CommandStatus::Failed);
    assert_eq!(SlotStatusByte(0x03).icc(), IccStatus::Reserved);
    assert_eq!(SlotStatusByte(0xC0).command(), CommandStatus::Reserved);
    assert_eq!(
        SlotStatusByte(0x41).to_string(),
        "0x41 (card present and inactive, command failed)"
    );
}

#[test]
fn slot_errors_have_the_spec_names() {
    for (code, name) in [
        (0xFF, "CMD_ABORTED"),
        (0xFE, "ICC_MUTE"),
        (0xFD, "XFR_PARITY_ERROR"),
        (0xFC, "XFR_OVERRUN"),
        (0xFB, "HW_ERROR"),
        (0xF8, "BAD_ATR_TS"),
        (0xF7, "BAD_ATR_TCK"),
        (0xF6, "ICC_PROTOCOL_NOT_SUPPORTED"),
        (0xF5, "ICC_CLASS_NOT_SUPPORTED"),
        (0xF4, "PROCEDURE_BYTE_CONFLICT"),
        (0xF3, "DEACTIVATED_PROTOCOL"),
        (0xF2, "BUSY_WITH_AUTO_SEQUENCE"),
        (0xF0, "PIN_TIMEOUT"),
        (0xEF, "PIN_CANCELLED"),
        (0xE0, "CMD_SLOT_BUSY"),
        (0x00, "CMD_NOT_SUPPORTED"),
        (0x05, "BAD_PARAMETER"),
        (0x7F, "BAD_PARAMETER"),
        (0x80, "UNKNOWN"),
        (0xF1, "UNKNOWN"),
    ] {
        let e = SlotError::from_code(code);
        assert_eq!(e.name(), name, "{code:#04x}");
        assert_eq!(e.code(), code);
        assert!(!e.description().is_empty());
        assert!(e.to_string().starts_with(name));
    }
    assert_eq!(SlotError::from_code(0x05), SlotError::BadParameter(5));
    assert!(SlotError::BadParameter(5).description().contains("slot"));
    assert_eq!(SlotError::IccMute.kind(), FaultKind::CardMute);
    assert_eq!(SlotError::HwError.fault_kind(), FaultKind::Unrecoverable);
    assert_eq!(SlotError::CmdSlotBusy.fault_kind(), FaultKind::Busy);
    assert_eq!(
        SlotError::IccClassNotSupported.fault_kind(),
        FaultKind::CardUnsupported
    );
    for b in 0..=255u8 {
        assert_eq!(SlotError::from_code(b).code(), b);
    }
}

#[test]
fn debug_output_never_shows_payload_bytes() {
    let pan_apdu = hex("80 A8 00 00 0A 54 13 33 00 89 60 00 44 00 00");
    let r = Request {
        slot: 0,
        seq: 1,
        body: RequestBody::XfrBlock {
            bwi: 0,
            level: 0,
            data: pan_apdu.clone(),
        },
    };
    let s = format!("{r:?}");
    assert!(s.contains("<15 bytes>"), "{s}");
    assert!(!s.contains("84"), "{s}");
    let resp = Response {
        slot: 0,
        seq: 1,
        status: SlotStatusByte(0),
        error: 0,
        body: ResponseBody::DataBlock {
            chain: 0,
            data: pan_apdu,
        },
    };
    let s = format!("{resp:?}");
    assert!(s.contains("<15 bytes>") && !s.contains("137"), "{s}");
}

// -------------------------------------------------------------- properties

fn params() -> impl Strategy<Value = ProtocolParams> {
    prop_oneof![
        any::<[u8; 5]>().prop_map(|b| ProtocolParams::T0 {
            findex_dindex: b[0],
            tcckst: b[1],
            guard_time: b[2],
            waiting_integer: b[3],
            clock_stop: b[4],
        }),
        any::<[u8; 7]>().prop_map(|b| ProtocolParams::T1 {
            findex_dindex: b[0],
            tcckst: b[1],
            guard_time: b[2],
            bwi_cwi: b[3],
            clock_stop: b[4],
            ifsc: b[5],
            nad: b[6],
        }),
    ]
}

fn power() -> impl Strategy<Value = PowerSelect> {
    prop_oneof![
        Just(PowerSelect::Automatic),
        Just(PowerSelect::V5),
        Just(PowerSelect::V3),
        Just(PowerSelect::V1_8),
    ]
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..300)
}

const MODELLED_REQUESTS: [u8; 14] = [
    0x62, 0x63, 0x65, 0x6F, 0x6C, 0x6D, 0x61, 0x6B, 0x6E, 0x6A, 0x69, 0x71, 0x72, 0x73,
];

fn request() -> impl Strategy<Value = Request> {
    let body =
        prop_oneof![
            power().prop_map(|power| RequestBody::IccPowerOn { power }),
            Just(RequestBody::IccPowerOff),
            Just(RequestBody::GetSlotStatus),
            (any::<u8>(), any::<u16>(), payload())
                .prop_map(|(bwi, level, data)| RequestBody::XfrBlock { bwi, level, data }),
            Just(RequestBody::GetParameters),
            Just(RequestBody::ResetParameters),
            params().prop_map(|params| RequestBody::SetParameters { params }),
            payload().prop_map(|data| RequestBody::Escape { data }),
            any::<u8>().prop_map(|command| RequestBody::IccClock { command }),
            any::<[u8; 3]>().prop_map(|b| RequestBody::T0Apdu {
                changes: b[0],
                class_get_response: b[1],
                class_envelope: b[2],
            }),
            (any::<u8>(), any::<u16>(), payload())
                .prop_map(|(bwi, level, data)| RequestBody::Secure { bwi, level, data }),
            any::<u8>().prop_map(|function| RequestBody::Mechanical { function }),
            Just(RequestBody::Abort),
            (any::<u32>(), any::<u32>()).prop_map(|(clock_khz, rate_bps)| {
                RequestBody::SetDataRateAndClock {
                    clock_khz,
                    rate_bps,
                }
            }),
            (
                any::<u8>().prop_filter("not a modelled type", |t| !MODELLED_REQUESTS.contains(t)),
                any::<[u8; 3]>(),
                payload()
            )
                .prop_map(|(message_type, specific, data)| RequestBody::Other {
                    message_type,
                    specific,
                    data
                }),
        ];
    (any::<u8>(), any::<u8>(), body).prop_map(|(slot, seq, body)| Request { slot, seq, body })
}

fn status() -> impl Strategy<Value = SlotStatusByte> + Clone {
    any::<u8>().prop_map(SlotStatusByte)
}

fn response() -> impl Strategy<Value = Response> {
    let body = prop_oneof![
        (any::<u8>(), payload()).prop_map(|(chain, data)| ResponseBody::DataBlock { chain, data }),
        any::<u8>().prop_map(|clock_status| ResponseBody::SlotStatus { clock_status }),
        proptest::option::of(params()).prop_map(|params| ResponseBody::Parameters { params }),
        payload().prop_map(|data| ResponseBody::Escape { data }),
        (any::<u32>(), any::<u32>()).prop_map(|(clock_khz, rate_bps)| {
            ResponseBody::DataRateAndClock {
                clock_khz,
                rate_bps,
            }
        }),
    ];
    (any::<u8>(), any::<u8>(), status(), any::<u8>(), body).prop_map(
        |(slot, seq, status, error, body)| Response {
            slot,
            seq,
            status,
            error,
            body,
        },
    )
}

proptest! {
    #[test]
    fn every_request_round_trips(r in request()) {
        let bytes = r.encode();
        prop_assert_eq!(message::message_length(&bytes), Some(bytes.len()));
        prop_assert_eq!(bytes[0], r.message_type());
        prop_assert_eq!(bytes[5], r.slot);
        prop_assert_eq!(bytes[6], r.seq);
        prop_assert_eq!(r.payload(), bytes[10..].to_vec());
        prop_assert_eq!(Request::decode(&bytes), Ok(r));
    }

    #[test]
    fn every_response_round_trips(r in response()) {
        let bytes = r.encode();
        prop_assert_eq!(message::message_length(&bytes), Some(bytes.len()));
        prop_assert_eq!(bytes[7], r.status.0);
        prop_assert_eq!(bytes[8], r.error);
        prop_assert_eq!(Response::decode(&bytes), Ok(r.clone()));
        // Padding after the message does not change it.
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0; 7]);
        prop_assert_eq!(Response::decode(&padded), Ok(r));
    }

    #[test]
    fn a_reply_built_from_a_request_matches_it(r in request(), st in status(), err in any::<u8>()) {
        let body = match r.response_type() {
            message::RDR_TO_PC_DATA_BLOCK => ResponseBody::DataBlock { chain: 0, data: vec![] },
            message::RDR_TO_PC_PARAMETERS => ResponseBody::Parameters { params: None },
            message::RDR_TO_PC_ESCAPE => ResponseBody::Escape { data: vec![] },
            message::RDR_TO_PC_DATA_RATE_AND_CLOCK => ResponseBody::DataRateAndClock {
                clock_khz: 0, rate_bps: 0,
            },
            _ => ResponseBody::SlotStatus { clock_status: 0 },
        };
        let reply = Response { slot: r.slot, seq: r.seq, status: st, error: err, body };
        prop_assert_eq!(r.match_reply(&reply), ReplyMatch::Reply);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
        let _ = Header::parse(&bytes);
        let _ = message::message_length(&bytes);
        if let Err(e) = Request::decode(&bytes) {
            let _ = e.slot_error();
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn decoders_never_panic_on_plausible_headers(
        ty in prop_oneof![
            proptest::sample::select(MODELLED_REQUESTS.to_vec()),
            0x80u8..=0x84,
            any::<u8>(),
        ],
        len in 0u32..40,
        slot in any::<u8>(),
        seq in any::<u8>(),
        specific in any::<[u8; 3]>(),
        body in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        let mut bytes = vec![ty];
        bytes.extend_from_slice(&len.to_le_bytes());
        bytes.extend_from_slice(&[slot, seq]);
        bytes.extend_from_slice(&specific);
        bytes.extend_from_slice(&body);
        match Request::decode(&bytes) {
            Ok(r) => {
                prop_assert_eq!(r.slot, slot);
                prop_assert_eq!(r.seq, seq);
            }
            Err(e) => prop_assert!(e.slot_error().is_some()),
        }
        if let Ok(r) = Response::decode(&bytes) {
            prop_assert_eq!(r.slot, slot);
            prop_assert_eq!(r.seq, seq);
            prop_assert_eq!(r.status.0, specific[0]);
            // What decodes re-encodes to something that decodes the same.
            prop_assert_eq!(Response::decode(&r.encode()), Ok(r));
        }
    }
}
