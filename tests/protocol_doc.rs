//! Guards PROTOCOL.md against drifting from the code: every hex example in it is rebuilt here as
//! a `Frame`, encoded with `FrameCodec` and compared byte for byte, and the document's bytes
//! decode back to that same frame; an example without an entry here, an entry without an
//! example, a frame kind without an example and a constant missing from the document's tables
//! all fail.

use std::{collections::BTreeMap, time::Duration};

use bytes::{Bytes, BytesMut};
use netref::{
    dev::{
        feature_name, Frame, FrameCodec, Hello, Limits, EXC_STOP_ITERATION, FEATURES, FEATURE_PY_VALUES, LABEL_LIST,
        LABEL_LOCAL_REF, LABEL_MAP, LABEL_REMOTE_REF, LABEL_TUPLE, LABEL_VALUE, MSG_EXCEPTION, MSG_REPLY, MSG_REQUEST,
        TAG_BIGINT, TAG_BOOL, TAG_BYTES, TAG_COMPLEX, TAG_ELLIPSIS, TAG_FLOAT, TAG_FROZENSET, TAG_INT, TAG_LIST,
        TAG_MAP, TAG_NONE, TAG_NOT_IMPLEMENTED, TAG_SLICE, TAG_STR, TAG_TUPLE,
    },
    BigInt, Handle, IdPack, RefLabel, RemoteError, Value, WireRef,
};
use tokio_util::codec::{Decoder, Encoder};

const DOC: &str = include_str!("../PROTOCOL.md");

/// One fenced example: ```` ```hex frame=NAME ```` … ```` ``` ````.
struct Example {
    name: String,
    /// 1-based line of the opening fence, for messages.
    line: usize,
    bytes: Vec<u8>,
}

/// Every ```` ```hex ```` block of the document. Each must carry a `frame=NAME` marker and hold
/// only hex digits and whitespace.
fn examples(doc: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut lines = doc.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let Some(info) = line.trim().strip_prefix("```hex") else { continue };
        let name = info
            .split_whitespace()
            .find_map(|attr| attr.strip_prefix("frame="))
            .unwrap_or_else(|| panic!("PROTOCOL.md line {}: a hex block without a frame=NAME marker", i + 1))
            .to_owned();
        let mut digits = String::new();
        loop {
            let (_, body) = lines.next().unwrap_or_else(|| panic!("PROTOCOL.md line {}: unclosed hex block", i + 1));
            if body.trim() == "```" {
                break;
            }
            digits.extend(body.chars().filter(|c| !c.is_whitespace()));
        }
        out.push(Example { name, line: i + 1, bytes: parse_hex(&digits, i + 1) });
    }
    out
}

fn parse_hex(digits: &str, line: usize) -> Vec<u8> {
    assert!(digits.len().is_multiple_of(2), "PROTOCOL.md line {line}: odd number of hex digits");
    digits
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ascii");
            u8::from_str_radix(pair, 16).unwrap_or_else(|_| panic!("PROTOCOL.md line {line}: {pair:?} is not hex"))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}

fn id(type_name: &str, class_id: u64, instance_id: u64) -> IdPack {
    IdPack { type_name: type_name.into(), class_id, instance_id }
}

fn local(id: IdPack) -> Value<WireRef> {
    Value::Ref(WireRef { label: RefLabel::Local, id })
}

fn remote(id: IdPack) -> Value<WireRef> {
    Value::Ref(WireRef { label: RefLabel::Remote, id })
}

fn calculator() -> IdPack {
    id("demo.Calculator", 1, 7)
}

fn request(seq: u64, handle: Handle, args: Vec<Value<WireRef>>, deadline: Option<Duration>) -> Frame<WireRef> {
    Frame::Request { seq, handle, args: Value::Tuple(args), deadline }
}

/// The frame each example of the document must encode, by marker.
fn table() -> BTreeMap<&'static str, Frame<WireRef>> {
    let big = BigInt::parse("18446744073709551616").expect("canonical");
    BTreeMap::from([
        ("hello", Frame::Hello(Hello::new(Limits::default()))),
        ("hello-root", Frame::Hello(Hello::new(Limits::default()).with_root(calculator()))),
        ("request-ping", request(1, Handle::Ping, vec![Value::Str("hi".into())], None)),
        ("request-getattr", request(2, Handle::GetAttr, vec![local(calculator()), Value::Str("total".into())], None)),
        (
            "request-callattr-add",
            request(
                3,
                Handle::CallAttr,
                vec![
                    local(calculator()),
                    Value::Str("add".into()),
                    Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
                    Value::None,
                ],
                None,
            ),
        ),
        (
            "request-repr-deadline",
            request(4, Handle::Repr, vec![local(calculator())], Some(Duration::from_millis(250))),
        ),
        ("request-getroot", request(0, Handle::GetRoot, vec![], None)),
        ("reply-int", Frame::Reply { seq: 3, value: Value::Int(3) }),
        ("reply-remote-ref", Frame::Reply { seq: 0, value: remote(calculator()) }),
        ("reply-bytes", Frame::Reply { seq: 5, value: Value::Bytes(Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])) }),
        (
            "reply-map-with-ref",
            Frame::Reply {
                seq: 6,
                value: Value::Map(vec![(
                    Value::Str("c".into()),
                    Value::List(vec![remote(id("demo.Counter", 2, 9)), Value::None]),
                )]),
            },
        ),
        (
            "reply-every-tag",
            Frame::Reply {
                seq: 7,
                value: Value::Tuple(vec![
                    Value::None,
                    Value::Bool(true),
                    Value::Int(-2),
                    Value::BigInt(big),
                    Value::Float(1.5),
                    Value::Complex(0.0, -1.0),
                    Value::Str("é".into()),
                    Value::Bytes(Bytes::from_static(&[0xff])),
                    Value::List(vec![]),
                    Value::Map(vec![(Value::Str("k".into()), Value::Int(0))]),
                ]),
            },
        ),
        (
            "exception-error",
            Frame::Exception {
                seq: 8,
                error: RemoteError {
                    kind: "builtins.ValueError".into(),
                    message: "negative".into(),
                    args: vec![Value::Int(-1)],
                    traceback: "at sqrt".into(),
                },
            },
        ),
        ("reply-frozenset", Frame::Reply { seq: 10, value: Value::FrozenSet(vec![Value::Int(1), Value::Int(2)]) }),
        (
            "reply-slice",
            Frame::Reply { seq: 11, value: Value::Slice(Box::new([Value::Int(1), Value::None, Value::Int(-1)])) },
        ),
        ("reply-ellipsis", Frame::Reply { seq: 12, value: Value::Ellipsis }),
        ("reply-not-implemented", Frame::Reply { seq: 13, value: Value::NotImplemented }),
        ("exception-stop-iteration", Frame::Exception { seq: 9, error: RemoteError::stop_iteration() }),
        ("cancel", Frame::Cancel { seq: 4 }),
        ("release", Frame::Release { refs: vec![(9, 1), (300, 2)] }),
        ("close", Frame::Close { reason: "bye".into() }),
        (
            "notify-callattr-add",
            Frame::Notify {
                handle: Handle::CallAttr,
                args: Value::Tuple(vec![
                    local(calculator()),
                    Value::Str("add".into()),
                    Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
                    Value::None,
                ]),
            },
        ),
    ])
}

/// The examples are between two peers of this build: each announced every feature it knows.
fn codec() -> FrameCodec {
    FrameCodec::new().with_peer_features(FEATURES)
}

#[test]
fn every_example_is_what_the_codec_writes_and_reads() {
    let table = table();
    let examples = examples(DOC);
    assert!(!examples.is_empty(), "PROTOCOL.md has no ```hex frame=NAME blocks");
    let mut failures = Vec::new();
    for ex in &examples {
        let Some(frame) = table.get(ex.name.as_str()) else {
            failures.push(format!("line {}: example `{}` has no entry in tests/protocol_doc.rs", ex.line, ex.name));
            continue;
        };
        let mut encoded = BytesMut::new();
        codec().encode(frame, &mut encoded).expect("the table's frames encode");
        if encoded[..] != ex.bytes[..] {
            failures.push(format!(
                "line {}: `{}` differs from the encoder\n  document: {}\n  encoder:  {}",
                ex.line,
                ex.name,
                hex(&ex.bytes),
                hex(&encoded)
            ));
            continue;
        }
        let mut wire = BytesMut::from(&ex.bytes[..]);
        match FrameCodec::new().decode(&mut wire) {
            Ok(Some(decoded)) if decoded == *frame && wire.is_empty() => {}
            other => failures.push(format!(
                "line {}: `{}` decodes to {other:?} with {} bytes left, expected {frame:?}",
                ex.line,
                ex.name,
                wire.len()
            )),
        }
    }
    assert!(failures.is_empty(), "PROTOCOL.md drifted from the code:\n{}", failures.join("\n"));
}

#[test]
fn every_table_entry_has_exactly_one_example() {
    let examples = examples(DOC);
    for name in table().keys() {
        let n = examples.iter().filter(|ex| ex.name == *name).count();
        assert_eq!(n, 1, "PROTOCOL.md should hold exactly one ```hex frame={name} block, found {n}");
    }
}

/// The frame kind (postcard variant index) and name of `frame`. `Frame` is `#[non_exhaustive]`,
/// so a kind added to it reaches the last arm: add it here (and to [`FRAME_KINDS`]), with a row in
/// the document's frame table and an example.
fn kind_of(frame: &Frame<WireRef>) -> (u8, &'static str) {
    match frame {
        Frame::Hello(_) => (0, "Hello"),
        Frame::Request { .. } => (1, "Request"),
        Frame::Reply { .. } => (2, "Reply"),
        Frame::Exception { .. } => (3, "Exception"),
        Frame::Cancel { .. } => (4, "Cancel"),
        Frame::Release { .. } => (5, "Release"),
        Frame::Close { .. } => (6, "Close"),
        Frame::Notify { .. } => (7, "Notify"),
        other => panic!("frame kind `{}` is missing from this test and from PROTOCOL.md", other.kind()),
    }
}

/// How many frame kinds `kind_of` knows.
const FRAME_KINDS: u8 = 8;

#[test]
fn every_frame_kind_has_a_row_and_an_example() {
    let table = table();
    for (name, frame) in &table {
        let (kind, kind_name) = kind_of(frame);
        assert_eq!(kind_name, frame.kind(), "kind_of disagrees with Frame::kind for `{name}`");
        let mut encoded = BytesMut::new();
        codec().encode(frame, &mut encoded).expect("the table's frames encode");
        assert_eq!(encoded[4], kind, "`{name}`: the body should start with frame kind {kind}");
    }
    for kind in 0..FRAME_KINDS {
        let Some(frame) = table.values().find(|f| kind_of(f).0 == kind) else {
            panic!("PROTOCOL.md has no example of frame kind {kind}")
        };
        assert_row(kind, kind_of(frame).1);
    }
}

/// The document's constant tables hold rows starting `| NUMBER | `NAME` |`.
fn assert_row(number: impl std::fmt::Display, name: &str) {
    let row = format!("| {number} | `{name}` |");
    assert!(DOC.contains(&row), "PROTOCOL.md has no table row starting {row:?}");
}

/// Every feature bit the code defines, with its constant's name.
const FEATURE_BITS: &[(u64, &str)] = &[(FEATURE_PY_VALUES, "FEATURE_PY_VALUES")];

#[test]
fn constant_tables_match_the_code() {
    for h in Handle::ALL {
        assert_row(h as u8, h.name());
    }
    for (n, name) in [(MSG_REQUEST, "MSG_REQUEST"), (MSG_REPLY, "MSG_REPLY"), (MSG_EXCEPTION, "MSG_EXCEPTION")] {
        assert_row(n, name);
    }
    for (n, name) in [
        (LABEL_VALUE, "LABEL_VALUE"),
        (LABEL_TUPLE, "LABEL_TUPLE"),
        (LABEL_LOCAL_REF, "LABEL_LOCAL_REF"),
        (LABEL_REMOTE_REF, "LABEL_REMOTE_REF"),
        (LABEL_LIST, "LABEL_LIST"),
        (LABEL_MAP, "LABEL_MAP"),
    ] {
        assert_row(n, name);
    }
    for (n, name) in [
        (TAG_NONE, "TAG_NONE"),
        (TAG_BOOL, "TAG_BOOL"),
        (TAG_INT, "TAG_INT"),
        (TAG_BIGINT, "TAG_BIGINT"),
        (TAG_FLOAT, "TAG_FLOAT"),
        (TAG_COMPLEX, "TAG_COMPLEX"),
        (TAG_STR, "TAG_STR"),
        (TAG_BYTES, "TAG_BYTES"),
        (TAG_TUPLE, "TAG_TUPLE"),
        (TAG_LIST, "TAG_LIST"),
        (TAG_MAP, "TAG_MAP"),
        (TAG_FROZENSET, "TAG_FROZENSET"),
        (TAG_SLICE, "TAG_SLICE"),
        (TAG_ELLIPSIS, "TAG_ELLIPSIS"),
        (TAG_NOT_IMPLEMENTED, "TAG_NOT_IMPLEMENTED"),
    ] {
        assert_row(n, name);
    }
    // The feature bits: `| bit | value | constant | name |`, and every bit of `FEATURES` listed.
    let mut listed = 0;
    for &(bit, name) in FEATURE_BITS {
        let row = format!("| {} | `{:#x}` | `{name}` | `{}` |", bit.trailing_zeros(), bit, feature_name(bit));
        assert!(DOC.contains(&row), "PROTOCOL.md has no feature row starting {row:?}");
        listed |= bit;
    }
    assert_eq!(listed, FEATURES, "every feature bit this build announces has a row in PROTOCOL.md §15");
    assert_row(EXC_STOP_ITERATION, "EXC_STOP_ITERATION");
}
