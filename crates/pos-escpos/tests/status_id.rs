//! GS I identification and GS ( H process-ID requests and replies.

use pos_escpos::status::{
    IdRequest, PrinterId, Reply, ReplyReader, StatusError, block_reply, gs_i, job_id,
    process_id_reply, process_id_request,
};
use pos_hal::{Fault, FaultKind};
use proptest::prelude::*;

#[test]
fn status_job_id_is_four_ascii_digits() {
    assert_eq!(job_id(0), *b"0000");
    assert_eq!(job_id(7), *b"0007");
    assert_eq!(job_id(42), *b"0042");
    assert_eq!(job_id(9999), *b"9999");
    assert_eq!(job_id(10_000), *b"0000");
    assert_eq!(job_id(12_345), *b"2345");
    assert_eq!(job_id(u32::MAX), *b"7295");
}

#[test]
fn status_process_id_request_bytes() {
    // GS ( H pL pH fn m d1..d4 with pL = 6, pH = 0, fn = 48, m = 48.
    assert_eq!(
        process_id_request(*b"0042"),
        Ok(vec![
            0x1D, 0x28, 0x48, 0x06, 0x00, 0x30, 0x30, 0x30, 0x30, 0x34, 0x32
        ])
    );
    assert_eq!(
        process_id_reply(*b"0042"),
        Ok(vec![0x37, 0x22, 0x30, 0x30, 0x34, 0x32, 0x00])
    );
    // The reference allows 0x20..=0x7E in each byte.
    assert!(process_id_request(*b" ~AZ").is_ok());
    for bad in [
        [0x00, 0x30, 0x30, 0x30],
        [0x30, 0x30, 0x30, 0x7F],
        [0x30, 0x1F, 0x30, 0x30],
        [0xFF; 4],
    ] {
        let err = process_id_request(bad).expect_err("out of range");
        assert_eq!(err, StatusError::InvalidProcessId { id: bad });
        assert_eq!(err.kind(), FaultKind::InvalidInput);
        assert!(process_id_reply(bad).is_err());
    }
}

#[test]
fn status_process_id_reply_reads_back_as_a_confirmation() {
    let mut reader = ReplyReader::new();
    reader.push(&process_id_reply(job_id(1234)).unwrap());
    assert_eq!(reader.next_reply(), Some(Reply::ProcessId(*b"1234")));
    assert_eq!(reader.next_reply(), None);
    assert_eq!(reader.pending_len(), 0);
}

#[test]
fn status_gs_i_request_bytes() {
    assert_eq!(gs_i(1), [0x1D, 0x49, 0x01]);
    assert_eq!(IdRequest::ModelId.bytes(), [0x1D, 0x49, 0x01]);
    assert_eq!(IdRequest::TypeId.bytes(), [0x1D, 0x49, 0x02]);
    assert_eq!(IdRequest::RomVersion.bytes(), [0x1D, 0x49, 0x03]);
    assert_eq!(IdRequest::Firmware.bytes(), [0x1D, 0x49, 0x41]);
    assert_eq!(IdRequest::Maker.bytes(), [0x1D, 0x49, 0x42]);
    assert_eq!(IdRequest::Model.bytes(), [0x1D, 0x49, 0x43]);
    assert_eq!(IdRequest::Serial.bytes(), [0x1D, 0x49, 0x44]);
    assert_eq!(IdRequest::Fonts.bytes(), [0x1D, 0x49, 0x45]);
    for request in IdRequest::ALL {
        assert_eq!(IdRequest::from_n(request.n()), Some(request));
        assert_eq!(request.is_single_byte(), request.n() <= 3);
    }
    assert_eq!(IdRequest::from_n(49), Some(IdRequest::ModelId));
    assert_eq!(IdRequest::from_n(50), Some(IdRequest::TypeId));
    assert_eq!(IdRequest::from_n(51), Some(IdRequest::RomVersion));
    assert_eq!(IdRequest::from_n(4), None);
    assert_eq!(IdRequest::from_n(70), None);
}

#[test]
fn status_gs_i_replies_of_a_tm_t20iii() {
    // The values the emupos emulator sends for its TM-T20III profile.
    let mut id = PrinterId::default();
    id.apply(IdRequest::ModelId, &Reply::IdByte(0x63)).unwrap();
    id.apply(IdRequest::TypeId, &Reply::IdByte(0x02)).unwrap();
    id.apply(IdRequest::Firmware, &Reply::Block(Vec::new()))
        .unwrap();
    id.apply(IdRequest::Maker, &Reply::Block(b"EPSON".to_vec()))
        .unwrap();
    id.apply(IdRequest::Model, &Reply::Block(b"TM-T20III".to_vec()))
        .unwrap();
    id.apply(IdRequest::Serial, &Reply::Block(Vec::new()))
        .unwrap();
    assert_eq!(
        id,
        PrinterId {
            model_id: Some(0x63),
            type_id: Some(0x02),
            autocutter: Some(true),
            rom_version: None,
            firmware: None,
            maker: Some("EPSON".into()),
            model: Some("TM-T20III".into()),
            serial: None,
            fonts: None,
        }
    );
}

#[test]
fn status_gs_i_type_id_bits() {
    let mut id = PrinterId::default();
    id.apply(IdRequest::TypeId, &Reply::IdByte(0x00)).unwrap();
    assert_eq!(id.autocutter, Some(false));
    // bit 0 multi-byte, bit 2 customer display: still no cutter.
    id.apply(IdRequest::TypeId, &Reply::IdByte(0x05)).unwrap();
    assert_eq!((id.type_id, id.autocutter), (Some(0x05), Some(false)));
    id.apply(IdRequest::TypeId, &Reply::IdByte(0x03)).unwrap();
    assert_eq!((id.type_id, id.autocutter), (Some(0x03), Some(true)));
    id.apply(IdRequest::RomVersion, &Reply::IdByte(0x41))
        .unwrap();
    assert_eq!(id.rom_version, Some(0x41));
}

#[test]
fn status_gs_i_wrong_replies_are_rejected() {
    let mut id = PrinterId::default();
    let err = id
        .apply(IdRequest::ModelId, &Reply::RealTime(0x12))
        .expect_err("a status byte is not an ID");
    assert!(matches!(
        err,
        StatusError::WrongReply {
            got: "real_time",
            ..
        }
    ));
    assert_eq!(err.kind(), FaultKind::Protocol);
    let err = id
        .apply(IdRequest::Maker, &Reply::IdByte(0x20))
        .expect_err("an ID byte is not a block");
    assert!(matches!(
        err,
        StatusError::WrongReply { got: "id_byte", .. }
    ));
    // An ID byte must have bit 4 and bit 7 clear.
    let err = id
        .apply(IdRequest::ModelId, &Reply::IdByte(0x12))
        .expect_err("fixed bits");
    assert!(matches!(
        err,
        StatusError::FixedBits {
            byte: 0x12,
            expected_pattern: "0xx0xxxx",
            ..
        }
    ));
    assert_eq!(
        id,
        PrinterId::default(),
        "nothing recorded from rejected replies"
    );
}

#[test]
fn status_gs_i_block_text_is_cleaned() {
    let mut id = PrinterId::default();
    id.apply(
        IdRequest::Firmware,
        &Reply::Block(b" 1.00 ESC/POS ".to_vec()),
    )
    .unwrap();
    assert_eq!(id.firmware.as_deref(), Some("1.00 ESC/POS"));
    id.apply(IdRequest::Serial, &Reply::Block(vec![b'A', 0xFF, b'B']))
        .unwrap();
    assert_eq!(id.serial.as_deref(), Some("A\u{FFFD}B"));
}

#[test]
fn status_gs_i_sim_replies() {
    let id = PrinterId {
        model_id: Some(0x63),
        autocutter: Some(true),
        maker: Some("EPSON".into()),
        model: Some("TM-T20III".into()),
        ..PrinterId::default()
    };
    assert_eq!(id.reply_to(IdRequest::ModelId), Ok(Some(vec![0x63])));
    assert_eq!(id.reply_to(IdRequest::TypeId), Ok(Some(vec![0x02])));
    assert_eq!(id.reply_to(IdRequest::RomVersion), Ok(None));
    assert_eq!(
        id.reply_to(IdRequest::Maker),
        Ok(Some(vec![0x5F, b'E', b'P', b'S', b'O', b'N', 0x00]))
    );
    assert_eq!(id.reply_to(IdRequest::Firmware), Ok(Some(vec![0x5F, 0x00])));
    let bad = PrinterId {
        model_id: Some(0x93),
        ..PrinterId::default()
    };
    let err = bad
        .reply_to(IdRequest::ModelId)
        .expect_err("bit 4 and 7 set");
    assert_eq!(err.kind(), FaultKind::InvalidInput);
    assert_eq!(
        block_reply("caf\u{e9}\0"),
        vec![0x5F, b'c', b'a', b'f', b'?', b'?', 0x00]
    );
    assert_eq!(block_reply(&"x".repeat(1000)).len(), 256);
}

#[test]
fn status_gs_i_round_trip_through_the_reader() {
    let id = PrinterId {
        model_id: Some(0x20),
        type_id: Some(0x03),
        autocutter: Some(true),
        rom_version: Some(0x0F),
        firmware: Some("1.00 ESC/POS".into()),
        maker: Some("EPSON".into()),
        model: Some("TM-T88VI".into()),
        serial: Some("X5S0123456".into()),
        fonts: Some("ANK".into()),
    };
    let mut reader = ReplyReader::new();
    let mut back = PrinterId::default();
    for request in IdRequest::ALL {
        if request.is_single_byte() {
            reader.expect_id_byte();
        }
        let Some(bytes) = id.reply_to(request).unwrap() else {
            panic!("{request:?} has a value")
        };
        // A real-time status byte arrives in between: it must not disturb anything.
        reader.push(&[0x12]);
        reader.push(&bytes);
        assert_eq!(reader.next_reply(), Some(Reply::RealTime(0x12)));
        let reply = reader.next_reply().unwrap();
        back.apply(request, &reply).unwrap();
        assert_eq!(reader.next_reply(), None);
    }
    assert_eq!(back, id);
    assert_eq!(reader.id_bytes_expected(), 0);
}

#[test]
fn status_printer_id_serializes() {
    let id = PrinterId {
        model_id: Some(0x63),
        maker: Some("EPSON".into()),
        ..PrinterId::default()
    };
    let json = serde_json::to_string(&id).unwrap();
    assert!(json.contains("\"maker\":\"EPSON\""), "{json}");
    assert_eq!(serde_json::from_str::<PrinterId>(&json).unwrap(), id);
}

proptest! {
    #[test]
    fn status_process_id_round_trip(counter in any::<u32>()) {
        let id = job_id(counter);
        prop_assert!(id.iter().all(u8::is_ascii_digit));
        let request = process_id_request(id).unwrap();
        prop_assert_eq!(request.len(), 11);
        prop_assert_eq!(&request[7..], &id[..]);
        let mut reader = ReplyReader::new();
        reader.push(&process_id_reply(id).unwrap());
        prop_assert_eq!(reader.next_reply(), Some(Reply::ProcessId(id)));
    }

    #[test]
    fn status_id_byte_replies_round_trip(value in 0u8..=255) {
        let id = PrinterId { model_id: Some(value), ..PrinterId::default() };
        let valid = value & 0x90 == 0;
        match id.reply_to(IdRequest::ModelId) {
            Ok(Some(bytes)) => {
                prop_assert!(valid);
                let mut reader = ReplyReader::new();
                reader.expect_id_byte();
                reader.push(&bytes);
                let reply = reader.next_reply();
                prop_assert_eq!(&reply, &Some(Reply::IdByte(value)));
                let mut back = PrinterId::default();
                if let Some(reply) = reply {
                    back.apply(IdRequest::ModelId, &reply).unwrap();
                }
                prop_assert_eq!(back.model_id, Some(value));
            }
            Ok(None) => prop_assert!(false, "value was set"),
            Err(_) => prop_assert!(!valid),
        }
    }
}
