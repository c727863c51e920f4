//! Guards RPyC 6's wire: captured bytes from a real rpyc 6.0.2 session decode and re-encode
//! byte for byte; every brine tag loads; a peer's bytes never panic the decoder or make it
//! allocate past its limits (inflate bombs, 4 GiB headers, lying counts).

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};

use super::*;
use crate::{value::BigInt, ProtocolError};

/// Bytes from hex text; spaces and `|` (the reference's frame separators) are ignored.
pub(super) fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    assert_eq!(digits.len() % 2, 0, "odd hex digits in {text:?}");
    digits.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap()).collect()
}

fn load_default(bytes: &[u8]) -> Result<Brine, ProtocolError> {
    load(&Bytes::copy_from_slice(bytes), &BrineLimits::default())
}

fn dumped(value: &Brine) -> Vec<u8> {
    dump_to_bytes(value).unwrap().to_vec()
}

pub(super) fn int(v: i64) -> Brine {
    Brine::Int(v)
}

pub(super) fn big(text: &str) -> Brine {
    Brine::from(BigInt::parse(text).unwrap())
}

pub(super) fn t(items: impl IntoIterator<Item = Brine>) -> Brine {
    Brine::tuple(items)
}

pub(super) fn s(text: &str) -> Brine {
    Brine::str(text)
}

// ---------------------------------------------------------------------------------------------
// rpyc-reference §2.3: brine test vectors generated with rpyc 6.0.2
// ---------------------------------------------------------------------------------------------

/// Each §2.3 vector: the value, and its bytes both ways.
#[test]
fn brine_reference_vectors_load_and_dump_byte_for_byte() {
    let vectors: Vec<(Brine, Vec<u8>)> = vec![
        (Brine::None, hex("00")),
        (Brine::Bool(true), hex("03")),
        (Brine::Bool(false), hex("04")),
        (Brine::NotImplemented, hex("05")),
        (Brine::Ellipsis, hex("06")),
        (int(0), hex("50")),
        (int(1), hex("51")),
        (int(-1), hex("4f")),
        (int(-48), hex("20")),
        (int(159), hex("ef")),
        (int(-49), hex("16 03 2d3439")),
        (int(160), hex("16 03 313630")),
        (big("18446744073709551616"), hex("16 14 3138343436373434303733373039353531363136")),
        (Brine::Float(1.5), hex("18 3ff8000000000000")),
        (Brine::Float(-0.0), hex("18 8000000000000000")),
        (Brine::Complex { re: 2.0, im: 3.0 }, hex("1b 4000000000000000 4008000000000000")),
        (Brine::bytes(&b""[..]), hex("01")),
        (Brine::bytes(&b"a"[..]), hex("0a61")),
        (Brine::bytes(&b"ab"[..]), hex("0b6162")),
        (Brine::bytes(&b"abcd"[..]), hex("0d61626364")),
        (Brine::bytes(&b"abcde"[..]), hex("0e05 6162636465")),
        (Brine::bytes(vec![b'q'; 256]), [hex("0f 00000100"), vec![b'q'; 256]].concat()),
        (s(""), hex("08 01")),
        (s("a"), hex("08 0a61")),
        (s("hé"), hex("08 0c 68c3a9")),
        (t([]), hex("02")),
        (t([int(1)]), hex("10 51")),
        (t([int(1), int(2)]), hex("11 5152")),
        (t((1..=5).map(int)), hex("14 05 5152535455")),
        (t(vec![int(0); 300]), [hex("15 0000012c"), vec![0x50; 300]].concat()),
        (Brine::slice(int(1), Brine::None, int(2)), hex("19 12 51 00 52")),
        (Brine::FrozenSet(vec![int(7)]), hex("1a 10 57")),
        (t([t([int(1)]), t([s("x"), Brine::bytes(&b"y"[..])])]), hex("11 1051 11 080a78 0a79")),
    ];
    for (value, bytes) in vectors {
        assert_eq!(dumped(&value), bytes, "dump of {value:?}");
        assert_eq!(load_default(&bytes).unwrap(), value, "load of {:02x?}", bytes);
    }
}

/// The example in brine.py's own docstring (a py2-era `"he"` is `bytes` to py3).
#[test]
fn brine_docstring_example_loads_and_dumps() {
    let bytes = hex(
        "140e0b686557080c6c6c6f580216033930300003061840323333333333331b402a000000000000403233333333333319125152531a1255565705",
    );
    let value = t([
        Brine::bytes(&b"he"[..]),
        int(7),
        s("llo"),
        int(8),
        t([]),
        int(900),
        Brine::None,
        Brine::Bool(true),
        Brine::Ellipsis,
        Brine::Float(18.2),
        Brine::Complex { re: 13.0, im: 18.2 },
        Brine::slice(int(1), int(2), int(3)),
        Brine::FrozenSet(vec![int(5), int(6), int(7)]),
        Brine::NotImplemented,
    ]);
    assert_eq!(load_default(&bytes).unwrap(), value);
    assert_eq!(dumped(&value), bytes);
}

// ---------------------------------------------------------------------------------------------
// rpyc-reference §8.2: one real session, rpyc 6.0.2 client <-> 6.0.2 ThreadedServer
// ---------------------------------------------------------------------------------------------

const ROOT_ID_PACK: &str = "12 080e14 5f5f6d61696e5f5f2e43616c6353657276696365 \
     160e 3934303932363135393534333034 160f 313339373035393530393339363030";
const ADD_ID_PACK: &str = "12 080e0f 6275696c74696e732e6d6574686f64 \
     160f 313339373035393730383839343038 160f 313339373035393530393432373230";
/// The reference elides the ids of `call_me`'s method and of the client's lambda (`160f...`);
/// these are 15-digit stand-ins, so the frame lengths are the captured ones.
const CALL_ME_ID_PACK: &str = "12 080e0f 6275696c74696e732e6d6574686f64 \
     160f 313339373035393730383839343038 160f 313339373035393530393433303030";
const LAMBDA_ID_PACK: &str = "12 080e11 6275696c74696e732e66756e6374696f6e \
     160f 313339373035393532303037353532 160f 313339373035393532313131313136";

pub(super) fn id_pack(name: &str, class_id: i64, instance_id: i64) -> Brine {
    t([s(name), int(class_id), int(instance_id)])
}

pub(super) fn root() -> Brine {
    id_pack("__main__.CalcService", 94092615954304, 139705950939600)
}

pub(super) fn add_method() -> Brine {
    id_pack("builtins.method", 139705970889408, 139705950942720)
}

fn call_me_method() -> Brine {
    id_pack("builtins.method", 139705970889408, 139705950943000)
}

pub(super) fn lambda() -> Brine {
    id_pack("builtins.function", 139705952007552, 139705952111116)
}

pub(super) fn boxed(label: i64, value: Brine) -> Brine {
    t([int(label), value])
}

/// The session's frames with the messages they carry: `(frame hex, msg, seq, args)`.
pub(super) fn session() -> Vec<(String, MsgType, u64, Brine)> {
    use MsgType::*;
    let (value, tuple, local, remote) = (1, 2, 3, 4);
    let request = |handler: i64, args: Brine| t([int(handler), args]);
    let vinegar = t([
        t([s("builtins"), s("ValueError")]),
        t([s("boom"), int(7)]),
        t([
            t([s("add_note"), s("<built-in method add_note of ValueError object at 0x7f0c2a9b3d60>")]),
            t([s("_remote_version"), s("6.0.2")]),
        ]),
        s("<traceback denied>"),
    ]);
    vec![
        // c.root
        ("00000008 00 | 01 11 50 11 53 11 51 02 | 0a".into(), Request, 0, request(3, boxed(value, t([])))),
        (format!("0000003e 00 | 02 11 50 11 54 {ROOT_ID_PACK} | 0a"), Reply, 0, boxed(remote, root())),
        (format!("00000041 00 | 01 11 51 11 60 11 51 10 {ROOT_ID_PACK} | 0a"), Request, 1, request(16, boxed(value, t([root()])))),
        // root.add(1, 2)
        (
            format!("0000004a 00 | 01 11 52 11 54 11 52 11 11 53 {ROOT_ID_PACK} 11 51 080c 616464 | 0a"),
            Request,
            2,
            request(4, boxed(tuple, t([boxed(local, root()), boxed(value, s("add"))]))),
        ),
        (format!("0000003a 00 | 02 11 52 11 54 {ADD_ID_PACK} | 0a"), Reply, 2, boxed(remote, add_method())),
        (
            format!("00000047 00 | 01 11 53 11 57 11 52 12 11 53 {ADD_ID_PACK} 11 51 11 51 52 11 51 02 | 0a"),
            Request,
            3,
            request(
                7,
                boxed(tuple, t([boxed(local, add_method()), boxed(value, t([int(1), int(2)])), boxed(value, t([]))])),
            ),
        ),
        ("00000006 00 | 02 11 53 11 51 53 | 0a".into(), Reply, 3, boxed(value, int(3))),
        (
            format!("00000042 00 | 01 11 54 11 5f 11 52 11 11 53 {ADD_ID_PACK} 11 51 51 | 0a"),
            Request,
            4,
            request(15, boxed(tuple, t([boxed(local, add_method()), boxed(value, int(1))]))),
        ),
        ("00000006 00 | 02 11 54 11 51 00 | 0a".into(), Reply, 4, boxed(value, Brine::None)),
        // root.answer
        (
            format!("0000004e 00 | 01 11 55 11 54 11 52 11 11 53 {ROOT_ID_PACK} 11 51 080e06 616e73776572 | 0a"),
            Request,
            5,
            request(4, boxed(tuple, t([boxed(local, root()), boxed(value, s("answer"))]))),
        ),
        ("00000006 00 | 02 11 55 11 51 7a | 0a".into(), Reply, 5, boxed(value, int(42))),
        // root.call_me(lambda v: v*10, 4): a nested call back into the client
        (
            format!(
                "00000081 00 | 01 11 57 11 57 11 52 12 11 53 {CALL_ME_ID_PACK} 11 52 11 11 54 {LAMBDA_ID_PACK} \
                 11 51 54 11 51 02 | 0a"
            ),
            Request,
            7,
            request(
                7,
                boxed(
                    tuple,
                    t([
                        boxed(local, call_me_method()),
                        boxed(tuple, t([boxed(remote, lambda()), boxed(value, int(4))])),
                        boxed(value, t([])),
                    ]),
                ),
            ),
        ),
        (
            format!("00000048 00 | 01 11 50 11 57 11 52 12 11 53 {LAMBDA_ID_PACK} 11 51 10 54 11 51 02 | 0a"),
            Request,
            0,
            request(
                7,
                boxed(tuple, t([boxed(local, lambda()), boxed(value, t([int(4)])), boxed(value, t([]))])),
            ),
        ),
        ("00000006 00 | 02 11 50 11 51 78 | 0a".into(), Reply, 0, boxed(value, int(40))),
        ("00000006 00 | 02 11 57 11 51 79 | 0a".into(), Reply, 7, boxed(value, int(41))),
        (
            format!("00000044 00 | 01 11 51 11 5f 11 52 11 11 53 {LAMBDA_ID_PACK} 11 51 51 | 0a"),
            Request,
            1,
            request(15, boxed(tuple, t([boxed(local, lambda()), boxed(value, int(1))]))),
        ),
        ("00000006 00 | 02 11 51 11 51 00 | 0a".into(), Reply, 1, boxed(value, Brine::None)),
        // root.fail() with include_local_traceback=False
        (
            "000000a6 00 | 03 11 5a 13 11 080e08 6275696c74696e73 080e0a 56616c75654572726f72 \
             11 080d 626f6f6d 57 \
             11 11 080e08 6164645f6e6f7465 080e41 3c6275696c742d696e206d6574686f64206164645f6e6f7465206f662056616c75654572726f72206f626a6563742061742030783766306332613962336436303e \
             11 080e0f 5f72656d6f74655f76657273696f6e 080e05 362e302e32 \
             080e12 3c74726163656261636b2064656e6965643e | 0a"
                .into(),
            Exception,
            10,
            vinegar,
        ),
        // StopIteration at the end of a remote iterator
        ("00000004 00 | 03 11 5c 51 | 0a".into(), Exception, 12, int(1)),
        // c.close()
        ("00000008 00 | 01 11 5c 11 52 11 51 02 | 0a".into(), Request, 12, request(2, boxed(value, t([])))),
    ]
}

#[test]
fn every_session_frame_decodes_to_its_message_and_re_encodes_byte_for_byte() {
    let limits = BrineLimits::default();
    for (frame_hex, msg, seq, args) in session() {
        let frame = hex(&frame_hex);
        let mut codec = RpycChannelCodec::new();
        let mut src = BytesMut::from(&frame[..]);
        let payload = codec.decode(&mut src).unwrap().expect("a whole frame");
        assert!(src.is_empty(), "{frame_hex}: bytes left over");
        let decoded = decode_message(&payload, &limits).unwrap();
        assert_eq!(decoded, Message { msg, seq, args: args.clone() }, "{frame_hex}");

        let mut encoded = BytesMut::new();
        codec.encode_message(msg, seq, &args, &mut encoded).unwrap();
        assert_eq!(&encoded[..], &frame[..], "{frame_hex}: re-encoded");
        let mut payload_only = BytesMut::new();
        encode_message(msg, seq, &args, &mut payload_only).unwrap();
        assert_eq!(&payload_only[..], &payload[..], "{frame_hex}: payload re-encoded");
    }
}

/// The whole session fed to one decoder a byte at a time gives the same payloads as each frame
/// decoded alone.
#[test]
fn the_session_fed_a_byte_at_a_time_yields_the_same_payloads() {
    let frames: Vec<Vec<u8>> = session().iter().map(|(h, ..)| hex(h)).collect();
    let expected: Vec<Bytes> = frames.iter().map(|f| Bytes::copy_from_slice(&f[HEADER_LEN..f.len() - 1])).collect();
    let stream: Vec<u8> = frames.concat();
    let mut codec = RpycChannelCodec::new();
    let mut src = BytesMut::new();
    let mut got = Vec::new();
    for byte in stream {
        src.extend_from_slice(&[byte]);
        while let Some(payload) = codec.decode(&mut src).unwrap() {
            got.push(payload);
        }
    }
    assert_eq!(codec.decode_eof(&mut src).unwrap(), None);
    assert_eq!(got, expected);
}

/// The reference elides the captured compressed frame (`0000003d 01 | 78 01 ed d0 31 0d ...`,
/// a 5000-char str result, 61 bytes). This one is CPython's `zlib.compress(payload, 1)` (the
/// call stock's channel makes) of REPLY seq=11 `(VALUE, "x" * 5000)`: 61 bytes with the same
/// first six.
const COMPRESSED_REPLY: &str = "0000003d 01 | 7801edd0310d00200c00b0858b6f5950c68d11244c362af85a091d756acf8c587d3160c\
     0800103060c183060c0800103060c183060e0fbc00390bf29ca | 0a";

#[test]
fn a_compressed_frame_from_cpython_zlib_inflates_to_its_message() {
    let frame = hex(COMPRESSED_REPLY);
    assert_eq!(frame.len(), HEADER_LEN + 0x3d + 1);
    let mut src = BytesMut::from(&frame[..]);
    let payload = RpycChannelCodec::new().decode(&mut src).unwrap().unwrap();
    let args = boxed(1, s(&"x".repeat(5000)));
    assert_eq!(
        decode_message(&payload, &BrineLimits::default()).unwrap(),
        Message { msg: MsgType::Reply, seq: 11, args: args.clone() }
    );
    // Re-encoded uncompressed, the payload is the inflated one.
    let mut plain = BytesMut::new();
    RpycChannelCodec::new().encode_message(MsgType::Reply, 11, &args, &mut plain).unwrap();
    assert_eq!(&plain[..4], &(payload.len() as u32).to_be_bytes());
    assert_eq!(plain[4], 0);
    assert_eq!(&plain[HEADER_LEN..plain.len() - 1], &payload[..]);
    assert_eq!(plain[plain.len() - 1], TRAILER);
}

#[test]
fn compression_like_stock_is_off_by_default_and_round_trips_when_on() {
    let args = boxed(1, s(&"x".repeat(5000)));
    let mut plain = BytesMut::new();
    RpycChannelCodec::new().encode_message(MsgType::Reply, 11, &args, &mut plain).unwrap();
    assert_eq!(plain[4], 0, "never compresses by default");

    let mut codec = RpycChannelCodec::new().compress_above(Some(STOCK_COMPRESSION_THRESHOLD));
    let mut compressed = BytesMut::new();
    codec.encode_message(MsgType::Reply, 11, &args, &mut compressed).unwrap();
    assert_eq!(compressed[4], 1);
    assert_eq!(&compressed[HEADER_LEN..HEADER_LEN + 2], &[0x78, 0x01], "a zlib stream at level 1");
    assert!(compressed.len() < 200);
    assert_eq!(compressed[compressed.len() - 1], TRAILER);
    let payload = codec.decode(&mut compressed).unwrap().unwrap();
    assert_eq!(&payload[..], &plain[HEADER_LEN..plain.len() - 1]);

    // At the threshold itself stock does not compress (`len > 3000`).
    let mut at = BytesMut::new();
    codec.encode(&[7u8; STOCK_COMPRESSION_THRESHOLD][..], &mut at).unwrap();
    assert_eq!(at[4], 0);
}

/// The same GETROOT in rpyc 5.3.1's layout, and the thread-bound prefix: refused, each with an
/// error that names it.
#[test]
fn payloads_of_other_layouts_are_refused_by_name() {
    let limits = BrineLimits::default();
    let legacy = Bytes::from(hex("12 51 50 11 53 11 51 02"));
    assert_eq!(decode_message(&legacy, &limits), Err(ProtocolError::LegacyRpycPeer));
    assert!(ProtocolError::LegacyRpycPeer.to_string().contains("rpyc 5.x"));
    // It is valid brine all the same: (MSG_REQUEST, seq 0, (GETROOT, (VALUE, ()))).
    assert_eq!(load(&legacy, &limits).unwrap(), t([int(1), int(0), t([int(3), t([int(1), t([])])])]));
    let bound = Bytes::from(hex("00007fb5ea882b80 0000000000000000 01 11 50 11 53 11 51 02"));
    assert_eq!(decode_message(&bound, &limits), Err(ProtocolError::UnknownMessageType(0)));
    let nine = Bytes::from(hex("09 11 50 00"));
    assert_eq!(decode_message(&nine, &limits), Err(ProtocolError::UnknownMessageType(9)));
    assert!(ProtocolError::UnknownMessageType(9).to_string().contains("message type 9"));
}

#[test]
fn message_payloads_that_are_not_seq_and_args_are_malformed() {
    let limits = BrineLimits::default();
    for bad in ["", "01", "01 00", "01 10 50", "01 12 50 00 00", "01 11 4f 00", "01 11 0a61 00", "01 11 50"] {
        let payload = Bytes::from(hex(bad));
        assert!(
            matches!(decode_message(&payload, &limits), Err(ProtocolError::Malformed(_))),
            "{bad:?}: {:?}",
            decode_message(&payload, &limits)
        );
    }
    assert_eq!(decode_message(&Bytes::from(hex("01 11 50 00 00")), &limits), Err(ProtocolError::TrailingBytes(1)));
}

#[test]
fn int_text_at_the_i64_and_u64_boundaries_reads_exactly() {
    let read = |text: &str| Brine::int_from_decimal(text.as_bytes(), CPYTHON_MAX_INT_DIGITS).unwrap();
    assert_eq!(read("9223372036854775807"), Brine::Int(i64::MAX));
    assert_eq!(read("-9223372036854775808"), Brine::Int(i64::MIN));
    assert_eq!(read("9223372036854775808"), big("9223372036854775808"));
    assert_eq!(read("-9223372036854775809"), big("-9223372036854775809"));
    assert_eq!(read("18446744073709551615"), big("18446744073709551615"));
    assert_eq!(read("18446744073709551616"), big("18446744073709551616"));
    assert_eq!(read("99999999999999999999"), big("99999999999999999999"));
    assert_eq!(read("0"), Brine::Int(0));
    assert_eq!(read("-0"), Brine::Int(0));
    assert_eq!(read("007"), Brine::Int(7));
    for bad in ["", "-", "+", "1-", "--1", "1 2", "0x10", "1__0", "\u{663}"] {
        assert!(Brine::int_from_decimal(bad.as_bytes(), CPYTHON_MAX_INT_DIGITS).is_err(), "{bad:?}");
    }
    // The limit counts digits, not the sign.
    assert_eq!(Brine::int_from_decimal(b"-123", 3).unwrap(), Brine::Int(-123));
    assert!(Brine::int_from_decimal(b"1234", 3).is_err());
}

#[test]
fn seq_numbers_past_159_and_past_i64_use_int_text() {
    let limits = BrineLimits::default();
    for seq in [0, 159, 160, 1 << 40, i64::MAX as u64, 1 << 63, u64::MAX] {
        let mut payload = BytesMut::new();
        encode_message(MsgType::Reply, seq, &Brine::None, &mut payload).unwrap();
        let decoded = decode_message(&payload.freeze(), &limits).unwrap();
        assert_eq!((decoded.msg, decoded.seq, decoded.args), (MsgType::Reply, seq, Brine::None));
    }
    let mut payload = BytesMut::new();
    encode_message(MsgType::Request, 160, &Brine::None, &mut payload).unwrap();
    assert_eq!(&payload[..], &hex("01 11 16 03 313630 00")[..]);
    let past_u64 = Bytes::from(hex("02 11 16 14 3138343436373434303733373039353531363136 00"));
    assert!(matches!(decode_message(&past_u64, &limits), Err(ProtocolError::Malformed(_))));
}

// ---------------------------------------------------------------------------------------------
// Brine: every tag, long forms, boundaries, refusals
// ---------------------------------------------------------------------------------------------

#[test]
fn length_boundaries_pick_the_shortest_tag() {
    for (len, prefix) in [
        (0, hex("01")),
        (1, hex("0a")),
        (2, hex("0b")),
        (3, hex("0c")),
        (4, hex("0d")),
        (5, hex("0e 05")),
        (255, hex("0e ff")),
        (256, hex("0f 00000100")),
        (70000, hex("0f 00011170")),
    ] {
        let value = Brine::bytes(vec![0xab; len]);
        let bytes = dumped(&value);
        assert_eq!(&bytes[..prefix.len()], &prefix[..], "bytes of {len}");
        assert_eq!(bytes.len(), prefix.len() + len);
        assert_eq!(load_default(&bytes).unwrap(), value);
        let text = Brine::str("é".repeat(len / 2) + &"a".repeat(len % 2));
        assert_eq!(&dumped(&text)[1..prefix.len() + 1], &prefix[..], "str of {len} bytes");
        assert_eq!(load_default(&dumped(&text)).unwrap(), text);
    }
    for (n, prefix) in [
        (0, hex("02")),
        (1, hex("10")),
        (2, hex("11")),
        (3, hex("12")),
        (4, hex("13")),
        (5, hex("14 05")),
        (255, hex("14 ff")),
        (256, hex("15 00000100")),
    ] {
        let value = t(vec![Brine::None; n]);
        let bytes = dumped(&value);
        assert_eq!(&bytes[..prefix.len()], &prefix[..], "tuple of {n}");
        assert_eq!(load_default(&bytes).unwrap(), value);
        let set = Brine::FrozenSet(vec![Brine::Bool(true); n]);
        assert_eq!(&dumped(&set)[1..prefix.len() + 1], &prefix[..], "frozenset of {n}");
        assert_eq!(load_default(&dumped(&set)).unwrap(), set);
    }
    let digits_255 = "9".repeat(255);
    let digits_256 = "9".repeat(256);
    assert_eq!(&dumped(&big(&digits_255))[..2], &hex("16 ff")[..]);
    assert_eq!(&dumped(&big(&digits_256))[..5], &hex("17 00000100")[..]);
    assert_eq!(&dumped(&big(&format!("-{digits_255}")))[..5], &hex("17 00000100")[..]);
}

/// Every tag stock can write, including the long forms a canonical encoder never uses.
#[test]
fn every_tag_loads_including_non_canonical_long_forms() {
    let cases: Vec<(&str, Brine)> = vec![
        ("0e 01 61", Brine::bytes(&b"a"[..])),
        ("0f 00000001 61", Brine::bytes(&b"a"[..])),
        ("0e 00", Brine::bytes(&b""[..])),
        ("0c 616263", Brine::bytes(&b"abc"[..])),
        ("08 0f 00000002 6869", s("hi")),
        ("08 0d 68c3a961", s("héa")),
        ("12 51 52 53", t([int(1), int(2), int(3)])),
        ("13 51 52 53 54", t([int(1), int(2), int(3), int(4)])),
        ("14 03 51 52 53", t([int(1), int(2), int(3)])),
        ("15 00000003 51 52 53", t([int(1), int(2), int(3)])),
        ("14 00", t([])),
        ("15 00000000", t([])),
        ("16 01 35", int(5)),
        ("17 00000002 3432", int(42)),
        ("16 02 2d30", int(0)),
        ("16 06 20 2b 31 5f 32 0a", int(12)),
        ("16 05 3030303037", int(7)),
        ("19 14 03 00 00 00", Brine::slice(Brine::None, Brine::None, Brine::None)),
        ("19 15 00000003 51 52 53", Brine::slice(int(1), int(2), int(3))),
        ("1a 02", Brine::FrozenSet(vec![])),
        ("1a 14 02 51 51", Brine::FrozenSet(vec![int(1), int(1)])),
        ("18 7ff8000000000000", Brine::Float(f64::NAN)),
        ("1b 8000000000000000 7ff0000000000001", Brine::Complex { re: -0.0, im: f64::from_bits(0x7ff0000000000001) }),
    ];
    for (bytes, value) in cases {
        assert_eq!(load_default(&hex(bytes)).unwrap(), value, "{bytes}");
    }
    for tag in 0x20..=0xefu8 {
        assert_eq!(load_default(&[tag]).unwrap(), int(i64::from(tag) - 0x50));
    }
}

#[test]
fn unknown_tags_are_refused_by_number() {
    for tag in [0x07u8, 0x09, 0x1c, 0x1d, 0x1e, 0x1f, 0xf0, 0xfe, 0xff] {
        assert_eq!(load_default(&[tag]), Err(ProtocolError::UnknownValueTag(tag)));
        assert_eq!(load_default(&[0x10, tag]), Err(ProtocolError::UnknownValueTag(tag)));
    }
}

#[test]
fn malformed_brine_is_refused_without_panicking_or_allocating() {
    for bad in [
        "",
        "0a",
        "0e 05 6162",
        "0f 00",
        "0f ffffffff 61",
        "15 ffffffff 51",
        "14 05 51 52",
        "17 ffffffff 31",
        "16 00",
        "16 01 2d",
        "16 02 3161",
        "16 03 31 5f 5f",
        "16 02 5f 31",
        "16 04 30 78 31 30",
        "16 03 2d 2d 31",
        "18 3ff8",
        "1b 3ff8000000000000",
        "08 51",
        "08 10 0a61",
        "08 0b c328",
        "08 0c eda080",
        "19 11 51 52",
        "19 0c 515253",
        "19 13 51 52 53 54",
        "1a 0b 5152",
        "1a 51",
        "11 51",
    ] {
        let result = load_default(&hex(bad));
        assert!(matches!(result, Err(ProtocolError::Malformed(_))), "{bad:?}: {result:?}");
    }
    assert_eq!(load_default(&hex("51 51")), Err(ProtocolError::TrailingBytes(1)));
    assert_eq!(load_default(&hex("10 51 00 00 00")), Err(ProtocolError::TrailingBytes(3)));
}

#[test]
fn nesting_and_value_count_are_bounded() {
    let nested = |depth: usize| {
        let mut bytes = vec![0x10; depth];
        bytes.push(0x00);
        bytes
    };
    let limits = BrineLimits::default();
    let ok = load(&Bytes::from(nested(64)), &limits).unwrap();
    assert_eq!(ok.depth(), 64);
    assert_eq!(load(&Bytes::from(nested(65)), &limits), Err(ProtocolError::TooDeep { max: 64 }));
    // A slice's items and a frozenset's members are one level down as well.
    let tight = BrineLimits { max_depth: 1, ..limits };
    assert!(load(&Bytes::from(hex("19 12 10 00 00 00")), &tight).is_err());
    assert!(load(&Bytes::from(hex("19 12 00 00 00")), &tight).is_ok());
    assert!(load(&Bytes::from(hex("1a 10 1a 10 00")), &tight).is_err());

    let few = BrineLimits { max_values: 10, ..limits };
    let nine = Bytes::from([hex("14 08"), vec![0x50; 8]].concat());
    assert_eq!(load(&nine, &few).unwrap().count_values(), 9);
    let ten = Bytes::from([hex("14 09"), vec![0x50; 9]].concat());
    assert_eq!(load(&ten, &few).unwrap().count_values(), 10);
    let eleven = Bytes::from([hex("14 0a"), vec![0x50; 10]].concat());
    assert_eq!(load(&eleven, &few), Err(ProtocolError::TooManyValues { max: 10 }));
}

#[test]
fn big_ints_round_trip_exactly_up_to_cpythons_4300_digits() {
    let two_63 = "9223372036854775808";
    let two_64 = "18446744073709551616";
    let values = [
        int(0),
        int(1),
        int(-1),
        int(i64::MIN),
        int(i64::MAX),
        big(two_63),
        big(&format!("-{two_63}")),
        big(two_64),
        big(&format!("-{two_64}")),
        big(&format!("1{}", "0".repeat(845))),
        big(&format!("-{}", "7".repeat(846))),
        big(&format!("4{}", "2".repeat(4299))),
        big(&format!("-9{}", "1".repeat(4299))),
    ];
    for value in values {
        let bytes = dumped(&value);
        assert_eq!(load_default(&bytes).unwrap(), value);
        if let Brine::BigInt(b) = &value {
            assert_eq!(&bytes[bytes.len() - b.as_str().len()..], b.as_str().as_bytes(), "str(int) in ASCII");
        }
    }
    // -2^63 is i64::MIN: an Int, whichever way it was built.
    assert_eq!(big(&format!("-{two_63}")), int(i64::MIN));
    assert_eq!(load_default(&dumped(&Brine::BigInt(BigInt::parse("5").unwrap()))).unwrap(), int(5));
    assert_eq!(dumped(&Brine::BigInt(BigInt::parse("5").unwrap())), hex("55"));

    let digits_4301 = format!("1{}", "0".repeat(4300));
    let too_long = [hex("17 000010cd"), digits_4301.into_bytes()].concat();
    assert!(matches!(load_default(&too_long), Err(ProtocolError::Malformed(m)) if m.contains("4301 digits")));
    let lenient = BrineLimits { max_int_digits: 5000, ..BrineLimits::default() };
    assert!(load(&Bytes::from(too_long), &lenient).is_ok());
    // Leading zeros count as digits, as in CPython.
    let padded = [hex("17 000010cd"), "0".repeat(4300).into_bytes(), b"1".to_vec()].concat();
    assert!(load_default(&padded).is_err());
    // Underscores do not.
    let text = "1_".repeat(100) + &"1".repeat(4200);
    let underscored = [&[TAG_INT_L4][..], &(text.len() as u32).to_be_bytes(), text.as_bytes()].concat();
    let loaded = load_default(&underscored).unwrap();
    assert_eq!(loaded, big(&"1".repeat(4300)));
}

#[test]
fn python_types_stay_distinct() {
    assert_ne!(load_default(&hex("03")).unwrap(), load_default(&hex("51")).unwrap());
    assert_eq!(load_default(&hex("03")).unwrap(), Brine::Bool(true));
    assert_eq!(load_default(&hex("04")).unwrap(), Brine::Bool(false));
    assert_ne!(Brine::Bool(false), int(0));
    assert_ne!(s("a"), Brine::bytes(&b"a"[..]));
    assert_eq!(load_default(&hex("08 0a61")).unwrap(), s("a"));
    assert_eq!(load_default(&hex("0a61")).unwrap(), Brine::bytes(&b"a"[..]));
    assert_ne!(t([int(1)]), Brine::FrozenSet(vec![int(1)]));
    assert_ne!(Brine::Float(1.0), int(1));
    assert_ne!(Brine::None, Brine::Ellipsis);
    assert_ne!(Brine::Ellipsis, Brine::NotImplemented);

    let neg_zero = load_default(&dumped(&Brine::Float(-0.0))).unwrap();
    assert!(matches!(neg_zero, Brine::Float(v) if v.to_bits() == (-0.0f64).to_bits()));
    assert_ne!(neg_zero, Brine::Float(0.0));
    for bits in [0x7ff8000000000000u64, 0xfff8000000000001, 0x7ff0000000000001, 0x7ff4000000000000] {
        let bytes = dumped(&Brine::Float(f64::from_bits(bits)));
        assert_eq!(&bytes[1..], &bits.to_be_bytes());
        assert!(matches!(load_default(&bytes).unwrap(), Brine::Float(v) if v.to_bits() == bits));
    }
}

#[test]
fn byte_strings_are_slices_of_the_input() {
    let src = Bytes::from(hex("11 0e05 6162636465 08 0b 6869"));
    let value = load(&src, &BrineLimits::default()).unwrap();
    let Brine::Tuple(items) = value else { panic!("a tuple") };
    let Brine::Bytes(b) = &items[0] else { panic!("bytes") };
    assert_eq!(&b[..], b"abcde");
    assert_eq!(b.as_ptr(), src[3..].as_ptr(), "zero-copy");
}

// ---------------------------------------------------------------------------------------------
// Channel framing
// ---------------------------------------------------------------------------------------------

fn frame(flag: u8, payload: &[u8], trailer: u8) -> Vec<u8> {
    [&(payload.len() as u32).to_be_bytes()[..], &[flag], payload, &[trailer]].concat()
}

#[test]
fn the_trailer_is_not_checked_as_stock_does_not_check_it() {
    for trailer in [0x0a, 0x00, 0xff] {
        let mut src = BytesMut::from(&frame(0, b"\x02\x11\x50\x11\x51\x00", trailer)[..]);
        let payload = RpycChannelCodec::new().decode(&mut src).unwrap().unwrap();
        assert_eq!(&payload[..], b"\x02\x11\x50\x11\x51\x00");
        assert!(src.is_empty());
    }
    // Only the trailer missing: the frame waits for it.
    let whole = frame(0, b"\x01\x02", 0x0a);
    let mut src = BytesMut::from(&whole[..whole.len() - 1]);
    let mut codec = RpycChannelCodec::new();
    assert_eq!(codec.decode(&mut src).unwrap(), None);
    src.extend_from_slice(&[0x0a]);
    assert_eq!(codec.decode(&mut src).unwrap().as_deref(), Some(&b"\x01\x02"[..]));
}

#[test]
fn a_stream_that_ends_inside_a_frame_is_truncated_at_eof() {
    let whole = frame(0, &hex("01 11 50 11 53 11 51 02"), 0x0a);
    for cut in 1..whole.len() {
        let mut src = BytesMut::from(&whole[..cut]);
        let mut codec = RpycChannelCodec::new();
        assert_eq!(codec.decode(&mut src).unwrap(), None, "cut at {cut}");
        assert_eq!(codec.decode_eof(&mut src), Err(ProtocolError::TruncatedAtEof { buffered: cut }));
    }
    let mut empty = BytesMut::new();
    assert_eq!(RpycChannelCodec::new().decode_eof(&mut empty), Ok(None));
}

#[test]
fn a_4_gib_header_is_refused_before_any_allocation() {
    let mut src = BytesMut::with_capacity(16);
    src.extend_from_slice(&hex("ffffffff 00"));
    let capacity = src.capacity();
    assert_eq!(
        RpycChannelCodec::new().decode(&mut src),
        Err(ProtocolError::FrameTooLarge { len: u32::MAX as usize, max: 16 << 20 })
    );
    assert_eq!(src.capacity(), capacity);
    // Just past the limit is refused too, the limit itself waits for its bytes.
    let small = RpycChannelCodec::with_max_frame_len(100);
    let mut src = BytesMut::from(&hex("00000065 00")[..]);
    assert_eq!(small.clone().decode(&mut src), Err(ProtocolError::FrameTooLarge { len: 101, max: 100 }));
    let mut src = BytesMut::from(&hex("00000064 00")[..]);
    assert_eq!(small.clone().decode(&mut src), Ok(None));
}

#[test]
fn a_partial_frame_grows_the_buffer_only_with_the_bytes_that_arrive() {
    // With no limit to speak of, a 4 GiB header plus a few bytes holds no more than the
    // eager reserve.
    let mut codec = RpycChannelCodec::with_max_frame_len(usize::MAX);
    assert_eq!(codec.max_frame_len(), u32::MAX as usize);
    let mut src = BytesMut::from(&hex("fffffffe 00 01 11 50")[..]);
    assert_eq!(codec.decode(&mut src).unwrap(), None);
    assert!(src.capacity() <= 2 * (64 << 10), "capacity {}", src.capacity());
    // 100 KiB arrived: at most 16 times that is held.
    src.extend_from_slice(&vec![0; 100 << 10]);
    assert_eq!(codec.decode(&mut src).unwrap(), None);
    assert!(src.capacity() <= 2 * 16 * (101 << 10), "capacity {}", src.capacity());
}

#[test]
fn zero_length_frames_are_skipped_as_stock_skips_them() {
    let mut src = BytesMut::new();
    src.extend_from_slice(&frame(0, b"", 0x0a));
    src.extend_from_slice(&frame(1, &hex("7801030000000001"), 0x0a)); // zlib of b""
    src.extend_from_slice(&frame(0, b"\x02\x11\x50\x11\x51\x00", 0x0a));
    src.extend_from_slice(&frame(0, b"", 0x0a));
    let mut codec = RpycChannelCodec::new();
    assert_eq!(codec.decode(&mut src).unwrap().as_deref(), Some(&b"\x02\x11\x50\x11\x51\x00"[..]));
    assert_eq!(codec.decode(&mut src).unwrap(), None);
    assert!(src.is_empty());
    assert_eq!(codec.decode_eof(&mut src).unwrap(), None);
    // A compressed frame of zero bytes is not a zlib stream (stock's zlib.decompress(b"") fails).
    let mut src = BytesMut::from(&frame(1, b"", 0x0a)[..]);
    assert!(matches!(codec.decode(&mut src), Err(ProtocolError::Malformed(_))));
}

#[test]
fn corrupt_truncated_or_padded_zlib_streams_are_malformed() {
    let good = hex(COMPRESSED_REPLY)[HEADER_LEN..HEADER_LEN + 0x3d].to_vec();
    assert!(inflate_bounded(&good, 1 << 20).is_ok());
    let mut flipped = good.clone();
    flipped[2] ^= 0xff;
    let mut bad_checksum = good.clone();
    *bad_checksum.last_mut().unwrap() ^= 1;
    let padded = [good.clone(), vec![0]].concat();
    for (what, bad) in [
        ("flipped", flipped),
        ("checksum", bad_checksum),
        ("truncated", good[..good.len() - 5].to_vec()),
        ("header only", good[..2].to_vec()),
        ("padded", padded),
        ("not zlib", b"hello world".to_vec()),
    ] {
        let result = inflate_bounded(&bad, 1 << 20);
        assert!(matches!(result, Err(ProtocolError::Malformed(_))), "{what}: {result:?}");
        let mut src = BytesMut::from(&frame(1, &bad, 0x0a)[..]);
        assert!(matches!(RpycChannelCodec::new().decode(&mut src), Err(ProtocolError::Malformed(_))), "{what}");
    }
}

/// A zlib stream of `1 + 258 * repeats` zero bytes, written by hand (fixed Huffman codes: one
/// literal 0, then "length 258, distance 1" again and again), so that a test can hold a 100 MB
/// bomb without compressing 100 MB first.
fn zero_bomb(repeats: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u32,
        n: u32,
    }
    impl Bits {
        /// `count` bits of `value`, least significant first (deflate's header fields).
        fn put(&mut self, value: u32, count: u32) {
            for i in 0..count {
                self.acc |= ((value >> i) & 1) << self.n;
                self.n += 1;
                if self.n == 8 {
                    self.out.push(self.acc as u8);
                    self.acc = 0;
                    self.n = 0;
                }
            }
        }
        /// A Huffman code of `count` bits, most significant first.
        fn code(&mut self, code: u32, count: u32) {
            for i in (0..count).rev() {
                self.put((code >> i) & 1, 1);
            }
        }
    }
    let mut bits = Bits { out: vec![0x78, 0x01], acc: 0, n: 0 };
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // fixed Huffman
    bits.code(0x30, 8); // literal 0
    for _ in 0..repeats {
        bits.code(0xc5, 8); // length symbol 285: 258 bytes
        bits.code(0, 5); // distance code 0: distance 1
    }
    bits.code(0, 7); // end of block
    if bits.n > 0 {
        bits.out.push(bits.acc as u8);
    }
    let inflated = 1 + 258 * repeats as u64;
    let adler = (((inflated % 65521) as u32) << 16) | 1; // a = 1, b = n: all bytes are zero
    bits.out.extend_from_slice(&adler.to_be_bytes());
    bits.out
}

#[test]
fn the_hand_written_bomb_is_a_valid_zlib_stream() {
    let bomb = zero_bomb(1000);
    let inflated = inflate_bounded(&bomb, 1 << 20).unwrap();
    assert_eq!(inflated.len(), 258_001);
    assert!(inflated.iter().all(|&b| b == 0));
    // One byte under its size is already too large.
    assert_eq!(inflate_bounded(&bomb, 258_000), Err(ProtocolError::InflatedTooLarge { max: 258_000 }));
    assert_eq!(inflate_bounded(&bomb, 258_001).unwrap().len(), 258_001);
}

#[test]
fn an_inflate_bomb_is_refused_at_the_limit_not_allocated() {
    // 100 MB of zeros in ~630 KB, against the default 16 MiB limit.
    let repeats = 100_000_000 / 258;
    let bomb = zero_bomb(repeats);
    assert!(bomb.len() < 700_000);
    let mut src = BytesMut::from(&frame(1, &bomb, 0x0a)[..]);
    let mut codec = RpycChannelCodec::new();
    assert_eq!(codec.decode(&mut src), Err(ProtocolError::InflatedTooLarge { max: 16 << 20 }));
    // The inflater stops one byte past a small limit, too.
    assert_eq!(inflate_bounded(&bomb, 4096), Err(ProtocolError::InflatedTooLarge { max: 4096 }));
    assert_eq!(inflate_bounded(&bomb, 0), Err(ProtocolError::InflatedTooLarge { max: 0 }));
}

#[test]
fn an_encoded_payload_past_max_frame_len_is_refused_and_the_buffer_left_as_it_was() {
    let mut codec = RpycChannelCodec::with_max_frame_len(10);
    let mut dst = BytesMut::from(&b"kept"[..]);
    assert_eq!(codec.encode(&[0u8; 11][..], &mut dst), Err(ProtocolError::FrameTooLarge { len: 11, max: 10 }));
    assert_eq!(&dst[..], b"kept");
    codec.encode(&[0u8; 10][..], &mut dst).unwrap();
    assert_eq!(dst.len(), 4 + HEADER_LEN + 10 + 1);
    let mut dst = BytesMut::new();
    let long = Brine::bytes(vec![0u8; 20]);
    assert!(codec.encode_message(MsgType::Reply, 0, &long, &mut dst).is_err());
    assert!(dst.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

pub(super) fn big_int_text() -> impl Strategy<Value = String> {
    // 20 digits or more, the first non-zero: always beyond i64.
    ("-?", "[1-9][0-9]{19,40}|[1-9][0-9]{250,300}").prop_map(|(sign, digits)| format!("{sign}{digits}"))
}

fn leaf() -> impl Strategy<Value = Brine> {
    prop_oneof![
        Just(Brine::None),
        Just(Brine::Ellipsis),
        Just(Brine::NotImplemented),
        any::<bool>().prop_map(Brine::Bool),
        any::<i64>().prop_map(Brine::Int),
        (-60i64..180).prop_map(Brine::Int),
        big_int_text().prop_map(|text| Brine::BigInt(BigInt::parse(&text).unwrap())),
        any::<u64>().prop_map(|bits| Brine::Float(f64::from_bits(bits))),
        (any::<u64>(), any::<u64>())
            .prop_map(|(re, im)| Brine::Complex { re: f64::from_bits(re), im: f64::from_bits(im) }),
        ".{0,8}".prop_map(Brine::Str),
        ".{250,260}".prop_map(Brine::Str),
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|b| Brine::Bytes(b.into())),
        proptest::collection::vec(any::<u8>(), 250..300).prop_map(|b| Brine::Bytes(b.into())),
    ]
}

pub(super) fn brine() -> impl Strategy<Value = Brine> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Brine::Tuple),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Brine::FrozenSet),
            (inner.clone(), inner.clone(), inner).prop_map(|(a, b, c)| Brine::slice(a, b, c)),
        ]
    })
}

/// Bytes that look like brine often enough to get past the first tag: tags, small lengths and
/// immediate ints, with a dash of anything.
fn brine_like_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop_oneof![4 => 0u8..0x1c, 2 => 0x4eu8..0x56, 1 => any::<u8>()], 0..64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn load_of_dump_is_the_value_and_dump_is_a_fixpoint(value in brine()) {
        let bytes = dump_to_bytes(&value).unwrap();
        let loaded = load(&bytes, &BrineLimits::default()).unwrap();
        prop_assert_eq!(&loaded, &value);
        prop_assert_eq!(dump_to_bytes(&loaded).unwrap(), bytes);
    }

    #[test]
    fn a_value_within_the_limits_loads_and_one_past_them_does_not(value in brine()) {
        let bytes = dump_to_bytes(&value).unwrap();
        let (depth, count) = (value.depth(), value.count_values());
        let exact = BrineLimits { max_depth: depth, max_values: count, ..BrineLimits::default() };
        prop_assert_eq!(load(&bytes, &exact).unwrap(), value);
        if depth > 0 {
            let shallow = BrineLimits { max_depth: depth - 1, ..exact };
            prop_assert_eq!(load(&bytes, &shallow), Err(ProtocolError::TooDeep { max: depth - 1 }));
        }
        let fewer = BrineLimits { max_values: count - 1, ..exact };
        prop_assert_eq!(load(&bytes, &fewer), Err(ProtocolError::TooManyValues { max: count - 1 }));
    }

    #[test]
    fn a_message_round_trips_through_the_channel(
        msg in prop_oneof![Just(MsgType::Request), Just(MsgType::Reply), Just(MsgType::Exception)],
        seq in any::<u64>(),
        args in brine(),
        compress in any::<bool>(),
        chunk in 1usize..64,
    ) {
        let mut codec = RpycChannelCodec::new().compress_above(compress.then_some(16));
        let mut wire = BytesMut::new();
        codec.encode_message(msg, seq, &args, &mut wire).unwrap();
        let mut src = BytesMut::new();
        let mut payloads = Vec::new();
        for piece in wire.chunks(chunk) {
            src.extend_from_slice(piece);
            while let Some(payload) = codec.decode(&mut src).unwrap() {
                payloads.push(payload);
            }
        }
        prop_assert_eq!(payloads.len(), 1);
        prop_assert_eq!(
            decode_message(&payloads[0], &BrineLimits::default()).unwrap(),
            Message { msg, seq, args }
        );
    }

    #[test]
    fn int_text_as_stock_writes_it_reads_as_the_same_text_written_any_other_way(
        n in prop_oneof![any::<i128>(), any::<i64>().prop_map(i128::from), any::<u64>().prop_map(i128::from)],
        max_int_digits in 1usize..45,
    ) {
        // `str(n)` takes the canonical reader; leading zeros and spaces force Python's general
        // grammar. Both must give the same value, the same Int/BigInt split and the same limit
        // (which counts the two leading zeros too, as CPython's does).
        let canonical = n.to_string();
        let general = format!(" {}00{} ", if n < 0 { "-" } else { "+" }, n.unsigned_abs());
        let fast = Brine::int_from_decimal(canonical.as_bytes(), max_int_digits);
        let slow = Brine::int_from_decimal(general.as_bytes(), max_int_digits + 2);
        prop_assert_eq!(fast.is_ok(), slow.is_ok(), "{} vs {}", canonical, general);
        if let (Ok(fast), Ok(slow)) = (fast, slow) {
            prop_assert_eq!(&fast, &slow);
            match fast {
                Brine::Int(v) => prop_assert_eq!(i128::from(v), n),
                Brine::BigInt(b) => {
                    prop_assert!(i64::try_from(n).is_err());
                    prop_assert_eq!(b.as_str(), canonical.as_str());
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_pass_the_limits(bytes in brine_like_bytes(), max_depth in 0usize..6, max_values in 1usize..40) {
        let limits = BrineLimits { max_depth, max_values, max_int_digits: 50 };
        if let Ok(value) = load(&Bytes::from(bytes), &limits) {
            prop_assert!(value.depth() <= max_depth);
            prop_assert!(value.count_values() <= max_values);
        }
    }

    #[test]
    fn mutated_encodings_never_panic(value in brine(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<prop::sample::Index>()) {
        let mut bytes = dump_to_bytes(&value).unwrap().to_vec();
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let limits = BrineLimits::default();
        let _ = load(&Bytes::from(bytes.clone()), &limits);
        bytes.truncate(cut.index(bytes.len() + 1));
        let _ = load(&Bytes::from(bytes.clone()), &limits);
        let _ = decode_message(&Bytes::from(bytes), &limits);
    }

    #[test]
    fn arbitrary_streams_never_panic_the_channel_decoder(
        bytes in proptest::collection::vec(prop_oneof![3 => 0u8..3, 1 => any::<u8>()], 0..256),
        chunk in 1usize..32,
    ) {
        let mut codec = RpycChannelCodec::with_max_frame_len(1 << 10);
        let mut src = BytesMut::new();
        'feed: for piece in bytes.chunks(chunk) {
            src.extend_from_slice(piece);
            loop {
                match codec.decode(&mut src) {
                    Ok(Some(payload)) => prop_assert!(payload.len() <= 1 << 10),
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
            prop_assert!(src.capacity() <= 2 * (64 << 10));
        }
        let _ = codec.decode_eof(&mut src);
    }
}
