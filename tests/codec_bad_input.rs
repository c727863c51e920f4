//! Guards the decoder against hostile bytes: random input never panics, oversized length
//! prefixes are refused before any allocation, truncated frames wait or fail at EOF, unknown
//! kinds/handles/labels/tags are typed errors, nesting and value counts are bounded (the Python
//! values' tags included), and a `Hello` from another protocol version names both versions.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use netref::{
    dev::{
        decode_frame, DecodeLimits, Frame, FrameCodec, Hello, Limits, WireRefs, FEATURES, PROTOCOL_VERSION,
        TAG_ELLIPSIS, TAG_FROZENSET, TAG_NONE, TAG_NOT_IMPLEMENTED, TAG_SLICE,
    },
    ProtocolError, Value, WireRef,
};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

fn decode_body(body: &[u8]) -> Result<Frame<WireRef>, ProtocolError> {
    decode_frame(&Bytes::copy_from_slice(body), &DecodeLimits::default(), &WireRefs)
}

fn framed(body: &[u8]) -> BytesMut {
    let mut buf = BytesMut::new();
    buf.put_u32(body.len() as u32);
    buf.extend_from_slice(body);
    buf
}

/// Drives a codec over `input` until it errors, needs more bytes, or the input is exhausted.
fn drain(codec: &mut FrameCodec, input: &[u8]) -> Result<usize, ProtocolError> {
    let mut buf = BytesMut::from(input);
    let mut frames = 0;
    while codec.decode(&mut buf)?.is_some() {
        frames += 1;
    }
    codec.decode_eof(&mut buf)?;
    Ok(frames)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_body(&body);
    }

    #[test]
    fn random_streams_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = drain(&mut FrameCodec::new(), &input);
    }

    #[test]
    fn mutated_valid_frames_never_panic(frame in common::strategies::frame(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut buf = BytesMut::new();
        FrameCodec::new().with_peer_features(FEATURES).encode(&frame, &mut buf).unwrap();
        let mut body = buf[4..].to_vec();
        if !body.is_empty() {
            for (at, byte) in flips {
                let i = at.index(body.len());
                body[i] ^= byte;
            }
        }
        let _ = decode_body(&body);
    }
}

#[test]
fn multi_megabyte_random_input_errors_without_panicking() {
    // A deterministic xorshift stream: no dependency on a random source.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for size in [1 << 20, 3 << 20, 8 << 20] {
        let data: Vec<u8> = (0..size).map(|_| next() as u8).collect();
        // As a raw stream: the first four bytes are almost surely an oversized length.
        let stream = drain(&mut FrameCodec::new(), &data);
        assert!(stream.is_err(), "random {size}-byte stream decoded: {stream:?}");
        // As a body behind a valid length prefix.
        let mut codec = FrameCodec::new();
        let result = drain(&mut codec, &framed(&data));
        assert!(result.is_err(), "random {size}-byte body decoded");
    }
}

#[test]
fn oversized_length_prefix_is_refused_before_allocating() {
    let mut codec = FrameCodec::with_limits(1024, DecodeLimits::default());
    let mut buf = BytesMut::new();
    buf.put_u32(u32::MAX);
    let err = codec.decode(&mut buf).unwrap_err();
    assert_eq!(err, ProtocolError::FrameTooLarge { len: u32::MAX as usize, max: 1024 });
    assert!(buf.capacity() < 4096, "decoder reserved {} bytes for a refused frame", buf.capacity());

    let mut buf = BytesMut::new();
    buf.put_u32(1025);
    assert!(matches!(codec.decode(&mut buf), Err(ProtocolError::FrameTooLarge { len: 1025, max: 1024 })));
}

#[test]
fn a_length_prefix_alone_does_not_reserve_the_frame() {
    // A peer announces a 1 MiB frame (and 53 bytes: just past a growth step) and sends a few
    // bytes: the buffer holds what it sent, not what it announced.
    let len = (1 << 20) + 53;
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    buf.put_u32(len as u32);
    buf.put_u8(3);
    assert_eq!(codec.decode_body(&mut buf).unwrap(), None);
    assert!(buf.capacity() <= 128 << 10, "4 bytes reserved {} bytes", buf.capacity());

    // As the frame arrives, the buffer grows with it (bounded by a multiple of what arrived),
    // to the whole frame once it has a good part of it (so no late step copies nearly the
    // whole frame), and the frame still comes out whole.
    let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut fed = 1;
    let mut body_out = None;
    while body_out.is_none() {
        let step = (buf.capacity() - buf.len()).clamp(1, len - fed);
        buf.extend_from_slice(&body[fed..fed + step]);
        fed += step;
        let before = buf.capacity();
        body_out = codec.decode_body(&mut buf).unwrap();
        if body_out.is_none() {
            let held = buf.capacity();
            assert!(held <= (32 * buf.len()).max(256 << 10), "{held} bytes held for {fed} received");
            if held > before {
                assert!(held >= 4 + len || 32 * buf.len() < len, "grew to {held} with {fed} of {len} received");
            }
            assert!(held > buf.len(), "room for more");
        }
    }
    let mut expected = body;
    expected[0] = 3;
    assert!(body_out.unwrap() == expected, "the frame arrives intact");
}

#[test]
fn encoder_refuses_frames_above_the_limit() {
    let mut codec = FrameCodec::with_limits(100, DecodeLimits::default());
    let mut buf = BytesMut::from(&b"keep"[..]);
    let frame: Frame<WireRef> = Frame::Reply { seq: 0, value: Value::Bytes(Bytes::from(vec![0; 200])) };
    assert!(matches!(codec.encode(&frame, &mut buf), Err(ProtocolError::FrameTooLarge { max: 100, .. })));
    assert_eq!(&buf[..], b"keep", "a refused frame must leave the buffer as it was");
}

#[test]
fn truncated_frame_waits_then_errors_at_eof() {
    let mut whole = BytesMut::new();
    FrameCodec::new().encode(Frame::Close { reason: "bye".into() }, &mut whole).unwrap();
    for cut in 1..whole.len() {
        let mut codec = FrameCodec::new();
        let mut buf = BytesMut::from(&whole[..cut]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None, "cut at {cut} should wait for more bytes");
        assert!(matches!(codec.decode_eof(&mut buf), Err(ProtocolError::TruncatedAtEof { .. })), "cut at {cut}");
    }
    // A clean end between frames is not an error.
    assert_eq!(FrameCodec::new().decode_eof(&mut BytesMut::new()).unwrap(), None);
}

#[test]
fn unknown_frame_kind_is_a_typed_error() {
    assert_eq!(decode_body(&[8]), Err(ProtocolError::UnknownFrameKind(8)));
    assert_eq!(decode_body(&[0x80, 0x01]), Err(ProtocolError::UnknownFrameKind(128)));
}

#[test]
fn unknown_handle_is_a_typed_error() {
    // Request: kind 1, seq 0, handle 21.
    let err = decode_body(&[1, 0, 21, 1, 0, 0]).unwrap_err();
    assert!(matches!(err, ProtocolError::UnknownHandle(h) if h.0 == 21), "{err:?}");
    assert!(err.to_string().contains("21"));
}

#[test]
fn unknown_label_and_tag_are_typed_errors() {
    // Reply: kind 2, seq 0, label 9.
    assert_eq!(decode_body(&[2, 0, 9]), Err(ProtocolError::UnknownLabel(9)));
    // Reply: kind 2, seq 0, LABEL_VALUE, tag 42.
    assert_eq!(decode_body(&[2, 0, 1, 42]), Err(ProtocolError::UnknownValueTag(42)));
    // Exception code 2 is neither a full error nor EXC_STOP_ITERATION.
    assert_eq!(decode_body(&[3, 0, 2]), Err(ProtocolError::UnknownExceptionCode(2)));
}

#[test]
fn trailing_bytes_are_an_error() {
    assert_eq!(decode_body(&[4, 7, 0]), Err(ProtocolError::TrailingBytes(1)));
}

#[test]
fn deep_nesting_is_bounded() {
    // Reply seq 0, LABEL_VALUE, then 100,000 nested one-element tuples: must not overflow the stack.
    let mut body = vec![2, 0, 1];
    for _ in 0..100_000 {
        body.extend_from_slice(&[8, 1]);
    }
    body.push(0);
    assert_eq!(decode_body(&body), Err(ProtocolError::TooDeep { max: DecodeLimits::default().max_depth }));
    // The boxed path is bounded too: nested LABEL_TUPLE.
    let mut body = vec![2, 0];
    for _ in 0..100_000 {
        body.extend_from_slice(&[2, 1]);
    }
    body.extend_from_slice(&[1, 0]);
    assert!(matches!(decode_body(&body), Err(ProtocolError::TooDeep { .. })));
}

#[test]
fn value_count_is_bounded() {
    let limits = DecodeLimits { max_depth: 64, max_values: 1000 };
    // A list announcing 2^40 items must fail on the count, not try to allocate.
    let body = [2, 0, 1, 9, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20];
    let err = decode_frame(&Bytes::copy_from_slice(&body), &limits, &WireRefs).unwrap_err();
    assert_eq!(err, ProtocolError::TooManyValues { max: 1000 });
    // 5,000 real one-byte values in a list of a valid frame: refused by the count.
    let mut body = vec![2, 0, 1, 9, 0x88, 0x27];
    body.extend(std::iter::repeat_n(0, 5000));
    let err = decode_frame(&Bytes::from(body), &limits, &WireRefs).unwrap_err();
    assert_eq!(err, ProtocolError::TooManyValues { max: 1000 });
}

#[test]
fn hello_with_another_version_names_both_versions() {
    let theirs = PROTOCOL_VERSION + 6;
    let hello: Frame<WireRef> =
        Frame::Hello(Hello { version: theirs, features: 0, limits: Limits::default(), root: None });
    let mut buf = BytesMut::new();
    FrameCodec::new().encode(&hello, &mut buf).unwrap();
    let Some(Frame::Hello(got)) = FrameCodec::new().decode(&mut buf).unwrap() else { panic!("not a hello") };
    let err = got.check_version().unwrap_err();
    assert_eq!(err, ProtocolError::VersionMismatch { ours: PROTOCOL_VERSION, theirs });
    let text = err.to_string();
    assert!(text.contains(&PROTOCOL_VERSION.to_string()) && text.contains(&theirs.to_string()), "{text}");
    assert!(Hello::new(Limits::default()).check_version().is_ok());
}

#[test]
fn invalid_utf8_and_bad_bigint_are_errors() {
    // Reply, LABEL_VALUE, TAG_STR, len 2, invalid UTF-8.
    assert!(matches!(decode_body(&[2, 0, 1, 6, 2, 0xff, 0xfe]), Err(ProtocolError::Malformed(_))));
    // Reply, LABEL_VALUE, TAG_BIGINT, "007".
    assert!(matches!(decode_body(&[2, 0, 1, 3, 3, b'0', b'0', b'7']), Err(ProtocolError::Malformed(_))));
}

#[test]
fn the_value_budget_counts_each_value_once() {
    let limits = DecodeLimits { max_depth: 64, max_values: 1000 };
    // A reply holding a plain list of 600 Nones: 601 values, within a budget of 1000.
    let mut body = vec![2, 0, 1, 9, 0xd8, 0x04];
    body.extend(std::iter::repeat_n(0, 600));
    let frame = decode_frame(&Bytes::from(body), &limits, &WireRefs).expect("600 values fit a budget of 1000");
    assert!(matches!(frame, Frame::Reply { value: Value::List(items), .. } if items.len() == 600));
}

#[test]
fn release_pairs_count_against_the_value_budget() {
    let limits = DecodeLimits { max_depth: 64, max_values: 1000 };
    // Release with 2,000 (id, count) pairs: 4,000 values.
    let mut body = vec![5, 0xd0, 0x0f];
    for i in 0..2000u32 {
        body.push((i % 100) as u8);
        body.push(1);
    }
    let err = decode_frame(&Bytes::from(body), &limits, &WireRefs).unwrap_err();
    assert_eq!(err, ProtocolError::TooManyValues { max: 1000 });
}

#[test]
fn the_encoder_finds_a_deep_value_behind_a_map_key_or_a_list() {
    let max = DecodeLimits::default().max_depth;
    let mut deep: Value<WireRef> = Value::None;
    for _ in 0..max {
        deep = Value::List(vec![Value::Int(1), deep]);
    }
    // At the limit so far; one more level under a map key passes it.
    let value = Value::Tuple(vec![Value::Int(0), Value::Map(vec![(Value::Int(1), Value::None), (deep, Value::None)])]);
    let frame: Frame<WireRef> = Frame::Reply { seq: 1, value };
    let err = FrameCodec::new().encode(&frame, &mut BytesMut::new()).unwrap_err();
    assert_eq!(err, ProtocolError::TooDeep { max });
}

/// A value nested far past the limit is refused without walking it to the bottom: the encoder
/// runs on a thread with a small stack. (The value is built and dropped on a thread with a
/// large one: dropping it recurses.)
#[test]
fn a_very_deep_value_is_refused_without_exhausting_the_stack() {
    let big = std::thread::Builder::new().stack_size(512 << 20);
    big.spawn(|| {
        let mut deep: Value<WireRef> = Value::None;
        for _ in 0..200_000 {
            deep = Value::Tuple(vec![deep]);
        }
        let frame: Frame<WireRef> = Frame::Reply { seq: 1, value: deep };
        let err = std::thread::scope(|s| {
            let small = std::thread::Builder::new().stack_size(256 << 10);
            small
                .spawn_scoped(s, || FrameCodec::new().encode_with(&frame, &WireRefs, &mut BytesMut::new()))
                .unwrap()
                .join()
        })
        .expect("the encoder returns");
        assert_eq!(err.unwrap_err(), ProtocolError::TooDeep { max: DecodeLimits::default().max_depth });
        drop(frame);
    })
    .unwrap()
    .join()
    .unwrap();
}

#[test]
fn the_encoder_refuses_exception_args_the_decoder_would_refuse() {
    let max = DecodeLimits::default().max_depth;
    let nest = |levels: usize| {
        let mut v: netref::Data = netref::Data::None;
        for _ in 0..levels {
            v = netref::Data::List(vec![v]);
        }
        v
    };
    // The args list is at depth 0, so an arg may nest `max - 1` more levels.
    let mut ok = netref::RemoteError::new("demo.Error", "deep");
    ok.args = vec![nest(max - 1)];
    let mut buf = BytesMut::new();
    FrameCodec::new().encode(Frame::<WireRef>::Exception { seq: 1, error: ok }, &mut buf).unwrap();
    assert!(FrameCodec::new().decode(&mut buf).unwrap().is_some(), "at the limit it decodes");
    let mut deep = netref::RemoteError::new("demo.Error", "deep");
    deep.args = vec![nest(max)];
    let err = FrameCodec::new().encode(Frame::<WireRef>::Exception { seq: 1, error: deep }, &mut BytesMut::new());
    assert_eq!(err.unwrap_err(), ProtocolError::TooDeep { max });
}

#[test]
fn the_encoder_refuses_values_the_decoder_would_refuse() {
    let mut deep: Value<WireRef> = Value::None;
    for _ in 0..(DecodeLimits::default().max_depth + 5) {
        deep = Value::Tuple(vec![deep]);
    }
    let frame: Frame<WireRef> = Frame::Reply { seq: 1, value: deep };
    let mut buf = BytesMut::from(&b"keep"[..]);
    let err = FrameCodec::new().encode(&frame, &mut buf).unwrap_err();
    assert_eq!(err, ProtocolError::TooDeep { max: DecodeLimits::default().max_depth });
    assert_eq!(&buf[..], b"keep");
    // Exactly at the limit it encodes and decodes.
    let mut ok: Value<WireRef> = Value::None;
    for _ in 0..DecodeLimits::default().max_depth {
        ok = Value::Tuple(vec![ok]);
    }
    let frame: Frame<WireRef> = Frame::Reply { seq: 1, value: ok };
    let mut buf = BytesMut::new();
    FrameCodec::new().encode(&frame, &mut buf).unwrap();
    assert_eq!(FrameCodec::new().decode(&mut buf).unwrap(), Some(frame));
}

/// A reply (seq 0) holding one plain value: `02 00 01` then `plain`.
fn reply_plain(plain: &[u8]) -> Vec<u8> {
    let mut body = vec![2, 0, 1];
    body.extend_from_slice(plain);
    body
}

#[test]
fn the_python_value_tags_decode_whatever_this_side_announced() {
    let decoded = decode_body(&reply_plain(&[TAG_FROZENSET, 2, 2, 2, TAG_NONE])).unwrap();
    assert_eq!(decoded, Frame::Reply { seq: 0, value: Value::FrozenSet(vec![Value::Int(1), Value::None]) });
    let decoded = decode_body(&reply_plain(&[TAG_SLICE, TAG_NONE, 2, 4, TAG_ELLIPSIS])).unwrap();
    assert_eq!(
        decoded,
        Frame::Reply { seq: 0, value: Value::Slice(Box::new([Value::None, Value::Int(2), Value::Ellipsis])) }
    );
    let decoded = decode_body(&reply_plain(&[TAG_NOT_IMPLEMENTED])).unwrap();
    assert_eq!(decoded, Frame::Reply { seq: 0, value: Value::NotImplemented });
}

#[test]
fn truncated_python_values_are_errors() {
    for plain in [
        &[TAG_FROZENSET][..],
        &[TAG_FROZENSET, 3, TAG_NONE, TAG_NONE],
        &[TAG_FROZENSET, 1, 2],
        &[TAG_SLICE],
        &[TAG_SLICE, TAG_NONE, TAG_NONE],
        &[TAG_SLICE, 2, 2, 2],
    ] {
        let err = decode_body(&reply_plain(plain)).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Malformed(ref m) if m.contains("ends early") || m.contains("end")),
            "{plain:?}: {err}"
        );
    }
    // Nothing follows Ellipsis or NotImplemented: a byte more is trailing.
    assert_eq!(decode_body(&reply_plain(&[TAG_ELLIPSIS, 0])), Err(ProtocolError::TrailingBytes(1)));
    assert_eq!(decode_body(&reply_plain(&[TAG_NOT_IMPLEMENTED, 0])), Err(ProtocolError::TrailingBytes(1)));
}

#[test]
fn python_values_nested_past_the_depth_limit_are_refused_without_exhausting_the_stack() {
    let max = DecodeLimits::default().max_depth;
    // 100,000 nested one-member frozensets.
    let mut plain = Vec::new();
    for _ in 0..100_000 {
        plain.extend_from_slice(&[TAG_FROZENSET, 1]);
    }
    plain.push(TAG_NONE);
    assert_eq!(decode_body(&reply_plain(&plain)), Err(ProtocolError::TooDeep { max }));
    // 100,000 slices nested in their start.
    let mut plain = vec![TAG_SLICE; 100_000];
    plain.push(TAG_NONE);
    assert_eq!(decode_body(&reply_plain(&plain)), Err(ProtocolError::TooDeep { max }));
    // Just within the limit: `max` frozensets around a None (the None at depth `max`).
    let mut plain = Vec::new();
    for _ in 0..max {
        plain.extend_from_slice(&[TAG_FROZENSET, 1]);
    }
    plain.push(TAG_NONE);
    assert!(decode_body(&reply_plain(&plain)).is_ok());
}

#[test]
fn python_values_count_against_the_value_budget() {
    let limits = DecodeLimits { max_depth: 64, max_values: 1000 };
    let decode = |plain: &[u8]| decode_frame(&Bytes::from(reply_plain(plain)), &limits, &WireRefs);
    // A frozenset announcing 2^40 members fails on the count, before any allocation.
    let err = decode(&[TAG_FROZENSET, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]).unwrap_err();
    assert_eq!(err, ProtocolError::TooManyValues { max: 1000 });
    // 2,000 real Ellipsis members: refused by the count.
    let mut plain = vec![TAG_FROZENSET, 0xd0, 0x0f];
    plain.extend(std::iter::repeat_n(TAG_ELLIPSIS, 2000));
    assert_eq!(decode(&plain).unwrap_err(), ProtocolError::TooManyValues { max: 1000 });
    // A slice is four values (itself and its three parts): 250 of them fill the budget.
    let slices = |n: u16| {
        let mut plain = vec![9];
        let mut n7 = n;
        while n7 >= 0x80 {
            plain.push((n7 as u8) | 0x80);
            n7 >>= 7;
        }
        plain.push(n7 as u8);
        for _ in 0..n {
            plain.extend_from_slice(&[TAG_SLICE, TAG_NONE, TAG_NONE, TAG_NONE]);
        }
        plain
    };
    // The list counts one: 249 slices are 997 values, 250 are 1001.
    assert!(decode(&slices(249)).is_ok());
    assert_eq!(decode(&slices(250)).unwrap_err(), ProtocolError::TooManyValues { max: 1000 });
}
