//! Guards the wire encoding: every `Frame` (with nested values and references anywhere) encodes
//! and decodes to itself, byte strings decode without a copy, and frames split at any point
//! reassemble.

mod common;

use bytes::{Bytes, BytesMut};
use common::strategies;
use netref::{
    dev::{Frame, FrameCodec, FEATURES},
    Value, WireRef,
};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

/// Encodes for a peer that announced every feature this build knows (the Python values).
fn encode(frame: &Frame<WireRef>) -> BytesMut {
    let mut buf = BytesMut::new();
    FrameCodec::new().with_peer_features(FEATURES).encode(frame, &mut buf).expect("encodes");
    buf
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_frame_round_trips(frame in strategies::frame()) {
        let mut buf = encode(&frame);
        let decoded = FrameCodec::new().decode(&mut buf).expect("decodes").expect("complete");
        prop_assert_eq!(decoded, frame);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn frames_split_anywhere_reassemble(frames in proptest::collection::vec(strategies::frame(), 1..5), cut in any::<prop::sample::Index>()) {
        let mut wire = BytesMut::new();
        for f in &frames {
            wire.extend_from_slice(&encode(f));
        }
        let cut = cut.index(wire.len() + 1);
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::from(&wire[..cut]);
        let mut out = Vec::new();
        while let Some(f) = codec.decode(&mut buf).expect("first half decodes") {
            out.push(f);
        }
        buf.extend_from_slice(&wire[cut..]);
        while let Some(f) = codec.decode(&mut buf).expect("second half decodes") {
            out.push(f);
        }
        prop_assert_eq!(out, frames);
    }
}

#[test]
fn decoded_bytes_share_the_frame_buffer() {
    let payload = Bytes::from(vec![0xAB; 1 << 20]);
    let frame: Frame<WireRef> = Frame::Reply { seq: 1, value: Value::Bytes(payload.clone()) };
    let mut buf = encode(&frame);
    let frame_start = buf.as_ptr() as usize;
    let frame_end = frame_start + buf.len();
    let decoded = FrameCodec::new().decode(&mut buf).unwrap().unwrap();
    let Frame::Reply { value: Value::Bytes(b), .. } = decoded else { panic!("not a bytes reply: {decoded:?}") };
    assert_eq!(b, payload);
    let at = b.as_ptr() as usize;
    assert!(at >= frame_start && at + b.len() <= frame_end, "payload was copied out of the frame buffer");
}

#[test]
fn a_1mib_bytes_value_costs_only_a_few_bytes_of_overhead() {
    let frame: Frame<WireRef> = Frame::Reply { seq: 1, value: Value::Bytes(Bytes::from(vec![7u8; 1 << 20])) };
    let len = encode(&frame).len();
    assert!(len < (1 << 20) + 16, "1 MiB of bytes encoded as {len} bytes: not one byte string");
}
