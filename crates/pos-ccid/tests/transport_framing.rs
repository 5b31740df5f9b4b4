//! Reading whole CCID messages from bulk IN transfers as a reader sends them: split across
//! packets, and with the zero-length packets some readers send (libccid's ZLP quirk rows:
//! Gemalto GemPC Twin and GemPC Key firmware 2.00, Dell keyboard 413c:2101; libccid
//! `src/ccid.c` ccid_open_hack_pre and `src/ccid_usb.c` WriteUSB, where it reads and drops
//! one before each command). The framed receive skips empty transfers, so those readers
//! need no step of their own: the quirk rows only name the behaviour.

use std::collections::VecDeque;
use std::time::Duration;

use pos_ccid::message::{Response, ResponseBody};
use pos_ccid::transport::receive_framed;
use pos_link::{Deadline, Link, LinkError, Pacing};

/// A bulk IN pipe that hands out the given transfers one per read (an empty one is a
/// zero-length packet), then times out.
struct Transfers(VecDeque<Vec<u8>>);

impl Link for Transfers {
    fn target(&self) -> &str {
        "test"
    }
    fn write_all(&mut self, _: &[u8], _: Deadline) -> Result<(), LinkError> {
        Ok(())
    }
    fn read_available(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<usize, LinkError> {
        let Some(mut t) = self.0.pop_front() else {
            return Err(LinkError::Timeout {
                target: "test".into(),
                operation: pos_link::Operation::Read,
                waited: deadline.waited(),
                done: 0,
            });
        };
        let n = t.len().min(buf.len());
        buf[..n].copy_from_slice(&t[..n]);
        if n < t.len() {
            self.0.push_front(t.split_off(n));
        }
        Ok(n)
    }
    fn flush(&mut self, _: Deadline) -> Result<(), LinkError> {
        Ok(())
    }
    fn discard_input(&mut self) -> Result<usize, LinkError> {
        Ok(0)
    }
    fn pacing(&self) -> Pacing {
        Pacing {
            max_chunk: 64,
            bytes_per_second: None,
        }
    }
}

/// A DataBlock carrying `data`, encoded.
fn data_block(data: &[u8]) -> Vec<u8> {
    let mut m = vec![0x80];
    m.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_le_bytes());
    m.extend_from_slice(&[0, 7, 0, 0, 0]);
    m.extend_from_slice(data);
    m
}

#[test]
fn zero_length_packets_before_and_inside_a_message_are_skipped() {
    let msg = data_block(&[0x90, 0x00]);
    let mut pipe = Transfers(VecDeque::from([
        Vec::new(),
        msg[..10].to_vec(),
        Vec::new(),
        msg[10..].to_vec(),
    ]));
    let got = receive_framed(&mut pipe, Deadline::after(Duration::from_millis(200))).unwrap();
    assert_eq!(got, msg);
    let reply = Response::decode(&got).unwrap();
    assert!(
        matches!(reply.body, ResponseBody::DataBlock { .. }),
        "{reply:?}"
    );
}

#[test]
fn a_message_split_over_64_byte_packets_is_read_whole() {
    let data: Vec<u8> = (0..=255).collect();
    let msg = data_block(&data);
    let pipe_packets: VecDeque<Vec<u8>> = msg.chunks(64).map(<[u8]>::to_vec).collect();
    let mut pipe = Transfers(pipe_packets);
    let got = receive_framed(&mut pipe, Deadline::after(Duration::from_millis(200))).unwrap();
    assert_eq!(got.len(), 10 + 256);
    assert_eq!(got, msg);
}

#[test]
fn a_message_cut_short_times_out_saying_how_much_came() {
    let msg = data_block(&[1, 2, 3, 4]);
    let mut pipe = Transfers(VecDeque::from([msg[..12].to_vec()]));
    match receive_framed(&mut pipe, Deadline::after(Duration::from_millis(50))) {
        Err(LinkError::Timeout { done, .. }) => assert_eq!(done, 2),
        other => panic!("expected a timeout, got {other:?}"),
    }
}
