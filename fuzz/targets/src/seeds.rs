//! The seed corpus: small, real inputs for each target, produced by netref's own encoders —
//! every native frame kind and value tag, and the RPyC frames of the real session recorded in
//! the RPyC reference (a stock rpyc 6.0.2 client and server), which these encoders reproduce
//! byte for byte. `cargo run -p netref-fuzz-targets --bin write-seeds` writes them to
//! `fuzz/corpus/<target>/seed-<name>`; the fuzzer grows its own corpus elsewhere.

use std::time::Duration;

use bytes::BytesMut;
use netref::{
    dev::{
        rpyc::{Brine, MsgType, RpycChannelCodec},
        Frame, FrameCodec, Handle, Hello, Limits, WireRefs, FEATURES,
    },
    BigInt, IdPack, RefLabel, RemoteError, Value, WireRef,
};

/// One seed: the target it is for, its file name (without the `seed-` prefix), its bytes.
#[derive(Debug)]
pub struct Seed {
    /// The target's name.
    pub target: &'static str,
    /// The file name, without the `seed-` prefix.
    pub name: &'static str,
    /// The input.
    pub bytes: Vec<u8>,
}

/// Every seed of every target.
pub fn seeds() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut add = |target, name, bytes: Vec<u8>| out.push(Seed { target, name, bytes });
    // Native frames: every kind, every value tag.
    let frames = native_frames();
    add("native_frame", "hello", native(&frames[..1]));
    add("native_frame", "requests", native(&frames[1..4]));
    add("native_frame", "values", native(&frames[4..5]));
    add("native_frame", "control", native(&frames[5..]));
    // After the Hello: what a peer sends next (references can only be guessed).
    add("native_session", "getroot-ping", native(&frames[1..3]));
    add("native_session", "call-cancel-release-close", native(&frames[3..]));
    add("native_session", "values-reply", native(&frames[4..5]));
    // The structured targets read choices, not a wire: a few shapes to start from.
    for target in ["native_structured", "rpyc_structured"] {
        add(target, "zeros", vec![0; 64]);
        add(target, "ramp", (0..=255).collect());
        add(target, "calls", [0u8, 0, 0, 0, 1, 3, b'x', 0].repeat(8));
    }
    // RPyC: the recorded session.
    let client: Vec<Vec<u8>> = rpyc_client_frames();
    let server: Vec<Vec<u8>> = rpyc_server_frames();
    add("rpyc_channel", "client-session", client.concat());
    add("rpyc_channel", "server-session", server.concat());
    add("rpyc_channel", "compressed-str", compressed_str_reply());
    add("rpyc_channel", "empty-and-legacy", [hex("00000000 00 0a"), hex("00000008 00 1251501153115102 0a")].concat());
    add("rpyc_session", "getroot-inspect", client[..2].concat());
    add("rpyc_session", "getattr-call-del", client[2..5].concat());
    add("rpyc_session", "callback-close", client[5..].concat());
    add("rpyc_session", "compressed", compressed_request());
    for (i, frame) in client.iter().chain(&server).enumerate().step_by(2) {
        // The payload alone: `u8 msg` then brine `(seq, args)`.
        let payload = frame[5..frame.len() - 1].to_vec();
        add("rpyc_brine", BRINE_NAMES[i / 2], payload);
    }
    add("rpyc_brine", "docstring", hex(BRINE_DOCSTRING));
    out
}

const BRINE_NAMES: [&str; 6] = ["getroot", "getattr", "del", "close", "root-reply", "exception"];

/// brine.py's own docstring example: every tag.
const BRINE_DOCSTRING: &str = "140e0b686557080c6c6c6f580216033930300003061840323333333333331b402a000000000000403233333333333319125152531a1255565705";

fn native(frames: &[Frame<WireRef>]) -> Vec<u8> {
    let codec = FrameCodec::new().with_peer_features(FEATURES);
    let mut out = BytesMut::new();
    for frame in frames {
        codec.encode_with(frame, &WireRefs, &mut out).expect("a seed frame encodes");
    }
    out.to_vec()
}

fn native_frames() -> Vec<Frame<WireRef>> {
    let root = IdPack { type_name: "fuzz.Root".into(), class_id: 1, instance_id: 2 };
    let target = Value::Ref(WireRef { label: RefLabel::Local, id: root.clone() });
    let mine = Value::Ref(WireRef {
        label: RefLabel::Remote,
        id: IdPack { type_name: "builtins.function".into(), class_id: 7, instance_id: 1000 },
    });
    let values = Value::Tuple(vec![
        Value::None,
        Value::Bool(true),
        Value::Int(-7),
        Value::BigInt(BigInt::from(1u128 << 100)),
        Value::Float(1.5),
        Value::Complex(2.0, -3.0),
        Value::Str("hé".into()),
        Value::Bytes(vec![0, 1, 2].into()),
        Value::List(vec![Value::Int(1), mine.clone()]),
        Value::Map(vec![(Value::Str("k".into()), Value::Int(2))]),
        Value::FrozenSet(vec![Value::Int(3)]),
        Value::Slice(Box::new([Value::Int(1), Value::None, Value::Int(2)])),
        Value::Ellipsis,
        Value::NotImplemented,
        target.clone(),
    ]);
    vec![
        Frame::Hello(Hello::new(Limits::default()).with_root(root)),
        Frame::Request { seq: 1, handle: Handle::GetRoot, args: Value::Tuple(vec![]), deadline: None },
        Frame::Request {
            seq: 2,
            handle: Handle::Ping,
            args: Value::Tuple(vec![Value::Str("hi".into())]),
            deadline: Some(Duration::from_millis(1500)),
        },
        Frame::Request {
            seq: 3,
            handle: Handle::CallAttr,
            args: Value::Tuple(vec![
                target.clone(),
                Value::Str("call_back".into()),
                Value::Tuple(vec![mine, Value::Int(4)]),
                Value::None,
            ]),
            deadline: None,
        },
        Frame::Reply { seq: 0, value: values },
        Frame::Exception { seq: 4, error: RemoteError::new("builtins.ValueError", "boom") },
        Frame::Cancel { seq: 3 },
        Frame::Release { refs: vec![(2, 1), (1000, 3)] },
        Frame::Notify {
            handle: Handle::CallAttr,
            args: Value::Tuple(vec![
                target,
                Value::Str("add".into()),
                Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
                Value::None,
            ]),
        },
        Frame::Close { reason: "bye".into() },
    ]
}

fn t<const N: usize>(items: [Brine; N]) -> Brine {
    Brine::tuple(items)
}

fn int(v: i64) -> Brine {
    Brine::Int(v)
}

fn id_pack(name: &str, class_id: i64, instance_id: i64) -> Brine {
    t([Brine::str(name), int(class_id), int(instance_id)])
}

/// The ids the RPyC reference's recorded session shows (CPython addresses of that run).
fn root() -> Brine {
    id_pack("__main__.CalcService", 94092615954304, 139705950939600)
}

fn method() -> Brine {
    id_pack("builtins.method", 139705970889408, 139705950942720)
}

fn lambda() -> Brine {
    id_pack("builtins.function", 139705952007552, 139705952111116)
}

const VALUE: i64 = 1;
const TUPLE: i64 = 2;
const LOCAL: i64 = 3;
const REMOTE: i64 = 4;

fn boxed(label: i64, value: Brine) -> Brine {
    t([int(label), value])
}

fn frame(msg: MsgType, seq: u64, args: Brine) -> Vec<u8> {
    let mut out = BytesMut::new();
    RpycChannelCodec::new().encode_message(msg, seq, &args, &mut out).expect("a seed message encodes");
    out.to_vec()
}

fn request(seq: u64, handler: i64, args: Brine) -> Vec<u8> {
    frame(MsgType::Request, seq, t([int(handler), args]))
}

/// The client's frames of the recorded session: GETROOT, INSPECT, GETATTR, CALL, DEL, the
/// reply to the server's callback, CLOSE.
fn rpyc_client_frames() -> Vec<Vec<u8>> {
    vec![
        request(0, 3, boxed(VALUE, t([]))),
        request(1, 16, boxed(VALUE, t([root()]))),
        request(2, 4, boxed(TUPLE, t([boxed(LOCAL, root()), boxed(VALUE, Brine::str("add"))]))),
        request(
            3,
            7,
            boxed(TUPLE, t([boxed(LOCAL, method()), boxed(VALUE, t([int(1), int(2)])), boxed(VALUE, t([]))])),
        ),
        request(4, 15, boxed(TUPLE, t([boxed(LOCAL, method()), boxed(VALUE, int(1))]))),
        frame(MsgType::Reply, 0, boxed(VALUE, int(40))),
        request(12, 2, boxed(VALUE, t([]))),
    ]
}

/// The server's frames of the recorded session: the root, a callback request, an exception.
fn rpyc_server_frames() -> Vec<Vec<u8>> {
    let vinegar = t([
        t([Brine::str("builtins"), Brine::str("ValueError")]),
        t([Brine::str("boom"), int(7)]),
        t([t([Brine::str("_remote_version"), Brine::str("6.0.2")])]),
        Brine::str("<traceback denied>"),
    ]);
    vec![
        frame(MsgType::Reply, 0, boxed(REMOTE, root())),
        request(0, 7, boxed(TUPLE, t([boxed(LOCAL, lambda()), boxed(VALUE, t([int(4)])), boxed(VALUE, t([]))]))),
        frame(MsgType::Reply, 3, boxed(VALUE, int(3))),
        frame(MsgType::Exception, 10, vinegar),
        frame(MsgType::Exception, 12, int(1)),
    ]
}

/// A 5000-character string reply, compressed as stock compresses payloads over 3000 bytes.
fn compressed_str_reply() -> Vec<u8> {
    compressed(MsgType::Reply, 9, boxed(VALUE, Brine::str("x".repeat(5000))))
}

/// A compressed PING request.
fn compressed_request() -> Vec<u8> {
    compressed(MsgType::Request, 1, t([int(1), boxed(VALUE, t([Brine::str("y".repeat(4000))]))]))
}

fn compressed(msg: MsgType, seq: u64, args: Brine) -> Vec<u8> {
    let mut out = BytesMut::new();
    RpycChannelCodec::new()
        .compress_above(Some(netref::dev::rpyc::STOCK_COMPRESSION_THRESHOLD))
        .encode_message(msg, seq, &args, &mut out)
        .expect("a seed message encodes");
    out.to_vec()
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex digits"))
        .collect()
}
