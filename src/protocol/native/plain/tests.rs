//! The short cuts against the general route: the same bytes written, the same values read.

use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;
use serde::ser::{
    SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple, SerializeTupleStruct,
    SerializeTupleVariant, Serializer,
};

use super::{encode_call_tail, read_call, read_reply, CallTail, PlainRef, PlainReply};
use crate::protocol::{
    native::{
        consts::LARGE_BYTES,
        encode::{encode_call_frame, local_ref_box, CallFrame},
        limits::DecodeLimits,
    },
    Handle,
};
use crate::value::{BigInt, Value};
use crate::{
    protocol::{decode_frame, encode_frame, RefBoxer, WireRefs},
    value::{to_value, IdPack, RefLabel, SharedBytes, WireRef},
    Frame,
};
use bytes::Bytes;
use serde::Serialize;

/// A serde value of any shape of serde's data model, driven call by call.
#[derive(Clone, Debug)]
enum Shape {
    Bool(bool),
    I8(i8),
    I32(i32),
    I64(i64),
    I128(i128),
    U8(u8),
    U64(u64),
    U128(u128),
    F32(f32),
    F64(f64),
    Char(char),
    Str(String),
    Bytes(Vec<u8>),
    Shared(Vec<u8>),
    None,
    Some(Box<Shape>),
    Unit,
    UnitStruct,
    UnitVariant,
    Newtype(Box<Shape>),
    NewtypeVariant(Box<Shape>),
    Seq(Vec<Shape>),
    SeqUnknownLen(Vec<Shape>),
    Tuple(Vec<Shape>),
    TupleStruct(Vec<Shape>),
    TupleVariant(Vec<Shape>),
    Map(Vec<(Shape, Shape)>),
    Struct(Vec<Shape>),
    StructVariant(Vec<Shape>),
    /// A struct announcing one field more than it writes (a wrong `Serialize` impl).
    StructShort(Vec<Shape>),
    BigInt(i128),
    Ref(u64),
    /// The Python values: `netref::FrozenSet`, `Slice`, `Ellipsis`, `NotImplemented`.
    FrozenSet(Vec<Shape>),
    Slice(Box<[Shape; 3]>),
    Ellipsis,
    NotImplemented,
}

const FIELDS: [&str; 4] = ["a", "b", "c", "d"];

impl Serialize for Shape {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Shape::Bool(v) => s.serialize_bool(*v),
            Shape::I8(v) => s.serialize_i8(*v),
            Shape::I32(v) => s.serialize_i32(*v),
            Shape::I64(v) => s.serialize_i64(*v),
            Shape::I128(v) => s.serialize_i128(*v),
            Shape::U8(v) => s.serialize_u8(*v),
            Shape::U64(v) => s.serialize_u64(*v),
            Shape::U128(v) => s.serialize_u128(*v),
            Shape::F32(v) => s.serialize_f32(*v),
            Shape::F64(v) => s.serialize_f64(*v),
            Shape::Char(v) => s.serialize_char(*v),
            Shape::Str(v) => s.serialize_str(v),
            Shape::Bytes(v) => s.serialize_bytes(v),
            Shape::Shared(v) => SharedBytes::from(v.clone()).serialize(s),
            Shape::None => s.serialize_none(),
            Shape::Some(v) => s.serialize_some(v),
            Shape::Unit => s.serialize_unit(),
            Shape::UnitStruct => s.serialize_unit_struct("U"),
            Shape::UnitVariant => s.serialize_unit_variant("E", 1, "Var"),
            Shape::Newtype(v) => s.serialize_newtype_struct("N", v),
            Shape::NewtypeVariant(v) => s.serialize_newtype_variant("E", 2, "New", v),
            Shape::Seq(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Shape::SeqUnknownLen(items) => {
                let mut seq = s.serialize_seq(None)?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Shape::Tuple(items) => {
                let mut t = s.serialize_tuple(items.len())?;
                for i in items {
                    t.serialize_element(i)?;
                }
                t.end()
            }
            Shape::TupleStruct(items) => {
                let mut t = s.serialize_tuple_struct("T", items.len())?;
                for i in items {
                    t.serialize_field(i)?;
                }
                t.end()
            }
            Shape::TupleVariant(items) => {
                let mut t = s.serialize_tuple_variant("E", 3, "Tup", items.len())?;
                for i in items {
                    t.serialize_field(i)?;
                }
                t.end()
            }
            Shape::Map(pairs) => {
                let mut m = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            Shape::Struct(fields) => {
                let mut st = s.serialize_struct("S", fields.len())?;
                for (name, f) in FIELDS.iter().zip(fields) {
                    st.serialize_field(name, f)?;
                }
                st.end()
            }
            Shape::StructVariant(fields) => {
                let mut st = s.serialize_struct_variant("E", 4, "Rec", fields.len())?;
                for (name, f) in FIELDS.iter().zip(fields) {
                    st.serialize_field(name, f)?;
                }
                st.end()
            }
            Shape::StructShort(fields) => {
                let mut st = s.serialize_struct("S", fields.len() + 1)?;
                for (name, f) in FIELDS.iter().zip(fields) {
                    st.serialize_field(name, f)?;
                }
                st.end()
            }
            Shape::BigInt(v) => BigInt::from(*v).serialize(s),
            Shape::Ref(id) => crate::value::serialize_ref(&wire_ref(*id), s),
            Shape::FrozenSet(items) => crate::value::FrozenSet(items.clone()).serialize(s),
            Shape::Slice(parts) => {
                let [start, stop, step] = (**parts).clone();
                crate::value::Slice { start, stop, step }.serialize(s)
            }
            Shape::Ellipsis => crate::value::Ellipsis.serialize(s),
            Shape::NotImplemented => crate::value::NotImplemented.serialize(s),
        }
    }
}

/// A reference: the receiver's own object for even ids, the sender's for odd ones.
fn wire_ref(id: u64) -> WireRef {
    let label = if id.is_multiple_of(2) { RefLabel::Local } else { RefLabel::Remote };
    WireRef { label, id: IdPack { type_name: "t.T".into(), class_id: 1, instance_id: id } }
}

/// A reference the plain reader found, unboxed as the general decoder does with `WireRefs`.
fn unboxed(r: &PlainRef<'_>) -> Value<WireRef> {
    Value::Ref(WireRef { label: r.label, id: r.id.to_id_pack() })
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Shape::Bool),
        any::<i8>().prop_map(Shape::I8),
        any::<i32>().prop_map(Shape::I32),
        any::<i64>().prop_map(Shape::I64),
        any::<i128>().prop_map(Shape::I128),
        any::<u8>().prop_map(Shape::U8),
        any::<u64>().prop_map(Shape::U64),
        any::<u128>().prop_map(Shape::U128),
        any::<f32>().prop_map(Shape::F32),
        any::<f64>().prop_map(Shape::F64),
        any::<char>().prop_map(Shape::Char),
        ".{0,12}".prop_map(Shape::Str),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Shape::Bytes),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Shape::Shared),
        Just(Shape::None),
        Just(Shape::Unit),
        Just(Shape::UnitStruct),
        Just(Shape::UnitVariant),
        any::<i128>().prop_map(Shape::BigInt),
        any::<u64>().prop_map(Shape::Ref),
        Just(Shape::Ellipsis),
        Just(Shape::NotImplemented),
    ];
    leaf.prop_recursive(4, 48, 4, |inner| {
        let items = prop::collection::vec(inner.clone(), 0..4);
        prop_oneof![
            inner.clone().prop_map(|s| Shape::Some(Box::new(s))),
            inner.clone().prop_map(|s| Shape::Newtype(Box::new(s))),
            inner.clone().prop_map(|s| Shape::NewtypeVariant(Box::new(s))),
            items.clone().prop_map(Shape::Seq),
            items.clone().prop_map(Shape::SeqUnknownLen),
            items.clone().prop_map(Shape::Tuple),
            items.clone().prop_map(Shape::TupleStruct),
            items.clone().prop_map(Shape::TupleVariant),
            prop::collection::vec((inner.clone(), inner.clone()), 0..3).prop_map(Shape::Map),
            items.clone().prop_map(Shape::Struct),
            items.clone().prop_map(Shape::StructVariant),
            items.clone().prop_map(Shape::StructShort),
            items.prop_map(Shape::FrozenSet),
            (inner.clone(), inner.clone(), inner).prop_map(|(a, b, c)| Shape::Slice(Box::new([a, b, c]))),
        ]
    })
}

/// Whether the writer must take `shape` (nothing in it is left to the general route).
fn writable(shape: &Shape) -> bool {
    match shape {
        Shape::SeqUnknownLen(_) | Shape::StructShort(_) | Shape::BigInt(_) | Shape::Ref(_) => false,
        // The Python values are left to the general route.
        Shape::FrozenSet(_) | Shape::Slice(_) | Shape::Ellipsis | Shape::NotImplemented => false,
        Shape::Some(s) | Shape::Newtype(s) | Shape::NewtypeVariant(s) => writable(s),
        Shape::Seq(items)
        | Shape::Tuple(items)
        | Shape::TupleStruct(items)
        | Shape::TupleVariant(items)
        | Shape::Struct(items)
        | Shape::StructVariant(items) => items.iter().all(writable),
        Shape::Map(pairs) => pairs.iter().all(|(k, v)| writable(k) && writable(v)),
        _ => true,
    }
}

fn target() -> WireRef {
    WireRef { label: RefLabel::Local, id: IdPack { type_name: "demo.Calc".into(), class_id: 7, instance_id: 300 } }
}

/// A boxer that keeps the `LOCAL_REF` box of the references it was made with, as a netref
/// keeps its own ([`RefBoxer::boxed`]); it boxes every other reference as `WireRefs` does.
struct KeptRefs(Vec<(WireRef, Box<[u8]>)>);

impl KeptRefs {
    fn new(refs: &[WireRef]) -> Self {
        KeptRefs(refs.iter().map(|r| (r.clone(), local_ref_box(&r.id))).collect())
    }
}

impl RefBoxer<WireRef> for KeptRefs {
    fn box_ref<'r>(&self, r: &'r WireRef) -> Result<(RefLabel, std::borrow::Cow<'r, IdPack>), String> {
        WireRefs.box_ref(r)
    }

    fn boxed<'a>(&'a self, r: &'a WireRef) -> Option<&'a [u8]> {
        self.0.iter().find(|(kept, _)| kept == r).map(|(_, boxed)| &boxed[..])
    }
}

/// The general route: the request as `NetRef::call_method` (`name` given) or `NetRef::call`
/// builds it when it does not take the short cut.
fn general_request(seq: Option<u64>, name: Option<&str>, args: &Shape, deadline: Option<Duration>) -> Option<Vec<u8>> {
    let positional = match to_value::<WireRef, _>(args).ok()? {
        Value::Tuple(items) => items,
        Value::None => Vec::new(),
        other => vec![other],
    };
    let (handle, args) = match name {
        Some(name) => (
            Handle::CallAttr,
            vec![Value::Ref(target()), Value::Str(name.to_owned()), Value::Tuple(positional), Value::None],
        ),
        None => (Handle::Call, vec![Value::Ref(target()), Value::Tuple(positional), Value::None]),
    };
    let args = Value::Tuple(args);
    let frame = match seq {
        Some(seq) => Frame::Request { seq, handle, args, deadline },
        None => Frame::Notify { handle, args },
    };
    let mut dst = BytesMut::new();
    encode_frame(&frame, &WireRefs, &mut dst).ok()?;
    // A boxer that keeps the target's box gives the same bytes.
    let mut kept = BytesMut::new();
    encode_frame(&frame, &KeptRefs::new(&[target()]), &mut kept).unwrap();
    assert_eq!(kept, dst, "a kept box writes the boxer's bytes");
    Some(dst.to_vec())
}

/// The short cut, or `None` where it leaves the call to the general route.
fn short_request(seq: Option<u64>, name: Option<&str>, args: &Shape, deadline: Option<Duration>) -> Option<Vec<u8>> {
    let mut tail = CallTail::from_slice(&[0xAA]);
    if !encode_call_tail(name, args, &DecodeLimits::default(), &mut tail).unwrap() {
        assert_eq!(&tail[..], [0xAA], "a refused tail leaves the buffer as it was");
        return None;
    }
    let handle = if name.is_some() { Handle::CallAttr } else { Handle::Call };
    let mut dst = BytesMut::new();
    let call = CallFrame { seq, handle, target: &target(), tail: &tail[1..], deadline };
    encode_call_frame(&call, &WireRefs, &mut dst).unwrap();
    // A boxer that keeps the target's box gives the same bytes.
    let mut kept = BytesMut::new();
    encode_call_frame(&call, &KeptRefs::new(&[target()]), &mut kept).unwrap();
    assert_eq!(kept, dst, "the kept target box writes the boxer's bytes");
    Some(dst.to_vec())
}

fn decode(body: &[u8], limits: &DecodeLimits) -> Result<Frame<WireRef>, crate::ProtocolError> {
    decode_frame(&Bytes::copy_from_slice(body), limits, &WireRefs)
}

/// A call as both readers report it: seq, the target's `LOCAL_REF` class and instance ids,
/// `(name, positional)` (the name `None` for a CALL), deadline.
type CallParts = (Option<u64>, (u64, u64), Value<WireRef>, Option<u64>);

/// What the general decoder reads as `read_call` would report it.
fn as_call(frame: Frame<WireRef>) -> Option<CallParts> {
    let (seq, handle, args, deadline) = match frame {
        Frame::Request { seq, handle, args, deadline } => (Some(seq), handle, args, deadline),
        Frame::Notify { handle, args } => (None, handle, args, None),
        _ => return None,
    };
    let with_name = match handle {
        Handle::CallAttr => true,
        Handle::Call => false,
        _ => return None,
    };
    let Value::Tuple(mut items) = args else { return None };
    if items.len() != if with_name { 4 } else { 3 } {
        return None;
    }
    let kwargs = items.pop()?;
    let positional = items.pop()?;
    let name = if with_name { items.pop()? } else { Value::None };
    let Value::Ref(WireRef { label: RefLabel::Local, id }) = items.pop()? else { return None };
    let target = (id.class_id, id.instance_id);
    let deadline = deadline.map(|d| d.as_micros() as u64);
    matches!(kwargs, Value::None).then_some(())?;
    Some((seq, target, Value::Tuple(vec![name, positional]), deadline))
}

fn read_as_call(body: &[u8], limits: &DecodeLimits) -> Option<CallParts> {
    let body = Bytes::copy_from_slice(body);
    let mut call = read_call::<WireRef>(&body, limits)?;
    for r in &call.refs {
        assert_eq!(call.args[r.index], Value::None, "a reference's place holds None");
        call.args[r.index] = unboxed(r);
    }
    let target = (call.class_id, call.instance_id);
    Some((
        call.seq,
        target,
        Value::Tuple(vec![call.name.map_or(Value::None, |n| Value::Str(n.to_owned())), Value::Tuple(call.args)]),
        call.deadline_us,
    ))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The short cut writes the general route's bytes, and takes every call whose
    /// arguments hold nothing it leaves to that route.
    #[test]
    fn call_tails_are_the_general_bytes(
        args in shape(),
        name in prop::option::of("[a-z_]{0,10}"),
        seq in prop::option::of(any::<u64>()),
        deadline in prop::option::of(0u64..1 << 40),
    ) {
        let deadline = deadline.map(Duration::from_micros);
        let deadline = if seq.is_some() { deadline } else { None };
        let general = general_request(seq, name.as_deref(), &args, deadline);
        match short_request(seq, name.as_deref(), &args, deadline) {
            Some(short) => prop_assert_eq!(Some(short), general),
            None => prop_assert!(!writable(&args), "the writer refused {:?}", args),
        }
    }

    /// What the reader reads, the general decoder reads the same; and it reads every
    /// request the short cut writes.
    #[test]
    fn the_reader_agrees_with_the_general_decoder(
        args in shape(),
        seq in prop::option::of(any::<u64>()),
        deadline in prop::option::of(any::<u64>()),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        max_depth in 1usize..6,
        max_values in 1usize..40,
        callable in any::<bool>(),
    ) {
        let deadline = if seq.is_some() { deadline.map(Duration::from_micros) } else { None };
        // A CALLATTR, or a CALL (a callback: no name).
        let name = if callable { None } else { Some("add") };
        let Some(mut body) = general_request(seq, name, &args, deadline) else { return Ok(()) };
        let written_by_short_cut = short_request(seq, name, &args, deadline).is_some();
        let limits = DecodeLimits { max_depth, max_values };
        let general = decode(&body, &limits);
        if flips.is_empty() {
            if let Ok(frame) = &general {
                // Every argument plain or a reference: the reader must take it.
                let readable = match as_call(frame.clone()) {
                    Some((_, _, Value::Tuple(parts), _)) => match parts.get(1) {
                        Some(Value::Tuple(positional)) => {
                            positional.iter().all(|v| matches!(v, Value::Ref(_)) || !value_needs_boxing(v) && !has_py_values(v))
                        }
                        _ => false,
                    },
                    _ => false,
                };
                prop_assert!(readable || !written_by_short_cut, "the short cut wrote what the reader leaves");
                if readable {
                    prop_assert!(read_as_call(&body, &limits).is_some(), "call not read: {:?}", args);
                }
            }
        }
        for (at, byte) in flips {
            let i = at.index(body.len());
            body[i] ^= byte;
        }
        if let Some(read) = read_as_call(&body, &limits) {
            let general = decode(&body, &limits);
            prop_assert!(general.is_ok(), "read {:?}, but the general decoder says {:?}", read, general);
            prop_assert_eq!(Some(read), as_call(general.unwrap()));
        }
    }

    /// The short cut writes a call only when a decoder with the same limits reads it (the
    /// peer would close the connection over one it refuses), and refuses a call it could
    /// write only when that decoder would refuse it too.
    #[test]
    fn the_short_cut_keeps_within_the_limits(
        args in shape(),
        max_depth in 1usize..6,
        max_values in 0usize..40,
        callable in any::<bool>(),
    ) {
        let limits = DecodeLimits { max_depth, max_values };
        let name = if callable { None } else { Some("add") };
        let mut tail = CallTail::new();
        let written = encode_call_tail(name, &args, &limits, &mut tail);
        if written == Ok(true) {
            let handle = if callable { Handle::Call } else { Handle::CallAttr };
            let call = CallFrame { seq: Some(1), handle, target: &target(), tail: &tail, deadline: None };
            let mut dst = BytesMut::new();
            encode_call_frame(&call, &WireRefs, &mut dst).unwrap();
            let decoded = decode(&dst, &limits);
            prop_assert!(decoded.is_ok(), "wrote {:?}, which the decoder refuses: {:?}", args, decoded);
        } else if written.is_err() || writable(&args) {
            // Refused (whatever the arguments hold), or left to the general route though it
            // could have written them: the decoder must refuse the general route's bytes.
            prop_assert!(tail.is_empty(), "a refused tail leaves the buffer as it was");
            if let Some(general) = general_request(Some(1), name, &args, None) {
                prop_assert!(decode(&general, &limits).is_err(), "refused {:?} ({:?}), which the decoder reads", args, written);
            }
        }
    }

    /// A netref's kept `LOCAL_REF` box is what the general encoder writes for the reference.
    #[test]
    fn a_kept_target_box_is_the_general_bytes(
        type_name in ".{0,40}",
        class_id in any::<u64>(),
        instance_id in any::<u64>(),
    ) {
        let id = IdPack { type_name, class_id, instance_id };
        let mut dst = BytesMut::new();
        let frame = Frame::Reply { seq: 0, value: Value::Ref(WireRef { label: RefLabel::Local, id: id.clone() }) };
        encode_frame(&frame, &WireRefs, &mut dst).unwrap();
        // The reply's body: kind, seq, then the boxed reference.
        prop_assert_eq!(&dst[2..], &local_ref_box(&id)[..]);
    }

    /// Replies too.
    #[test]
    fn replies_read_as_the_general_decoder_reads_them(
        value in shape(),
        seq in any::<u64>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        max_values in 1usize..40,
    ) {
        let Ok(value) = to_value::<WireRef, _>(&value) else { return Ok(()) };
        let mut dst = BytesMut::new();
        if encode_frame(&Frame::Reply { seq, value }, &WireRefs, &mut dst).is_err() {
            return Ok(());
        }
        let mut body = dst.to_vec();
        let limits = DecodeLimits { max_depth: 3, max_values };
        // A flipped byte may make another valid reply (a boxed empty tuple, say), one the
        // reader rightly leaves to the general decoder: only an intact reply must be read.
        let intact = flips.is_empty();
        for (at, byte) in flips {
            let i = at.index(body.len());
            body[i] ^= byte;
        }
        let body = Bytes::copy_from_slice(&body);
        let read = read_reply::<WireRef>(&body, &limits).map(|(seq, value)| match value {
            PlainReply::Value(value) => (seq, value),
            PlainReply::Ref(r) => {
                assert_eq!(r.index, 0);
                (seq, unboxed(&r))
            }
        });
        let general = decode(&body, &limits);
        match (read, general) {
            (Some((seq, value)), Ok(frame)) => prop_assert_eq!(Frame::Reply { seq, value }, frame),
            (Some(read), Err(e)) => prop_assert!(false, "read {:?}, but the general decoder says {:?}", read, e),
            (None, Ok(Frame::Reply { value, .. })) if intact => prop_assert!(
                value_needs_boxing(&value) && !matches!(value, Value::Ref(_)) || has_py_values(&value),
                "reply not read: {:?}",
                value
            ),
            (None, _) => {}
        }
    }
}

/// Whether `value` holds a frozenset, slice, `Ellipsis` or `NotImplemented`: the reader leaves
/// those to the general decoder.
fn has_py_values(value: &Value<WireRef>) -> bool {
    match value {
        Value::FrozenSet(_) | Value::Slice(_) | Value::Ellipsis | Value::NotImplemented => true,
        Value::Tuple(items) | Value::List(items) => items.iter().any(has_py_values),
        Value::Map(pairs) => pairs.iter().any(|(k, v)| has_py_values(k) || has_py_values(v)),
        _ => false,
    }
}

fn value_needs_boxing(value: &Value<WireRef>) -> bool {
    match value {
        Value::Ref(_) => true,
        Value::Tuple(items) | Value::List(items) => items.iter().any(value_needs_boxing),
        Value::Map(pairs) => pairs.iter().any(|(k, v)| value_needs_boxing(k) || value_needs_boxing(v)),
        _ => false,
    }
}

#[test]
fn the_common_call_is_written_and_read() {
    let mut tail = CallTail::new();
    assert_eq!(encode_call_tail(Some("add"), &(1, 2), &DecodeLimits::default(), &mut tail), Ok(true));
    let mut dst = BytesMut::new();
    let deadline = Some(Duration::from_secs(30));
    let call = CallFrame { seq: Some(5), handle: Handle::CallAttr, target: &target(), tail: &tail, deadline };
    encode_call_frame(&call, &WireRefs, &mut dst).unwrap();
    let body = dst.freeze();
    let call = read_call::<WireRef>(&body, &DecodeLimits::default()).expect("read");
    assert_eq!(call.seq, Some(5));
    assert_eq!((call.class_id, call.instance_id), (7, 300));
    assert_eq!(call.name, Some("add"));
    assert_eq!(call.args, vec![Value::Int(1), Value::Int(2)]);
    assert_eq!(call.deadline_us, Some(30_000_000));
}

#[test]
fn a_callback_call_is_written_and_read() {
    let mut tail = CallTail::new();
    assert_eq!(encode_call_tail(None, &(4,), &DecodeLimits::default(), &mut tail), Ok(true));
    let mut dst = BytesMut::new();
    let frame = CallFrame { seq: Some(6), handle: Handle::Call, target: &target(), tail: &tail, deadline: None };
    encode_call_frame(&frame, &WireRefs, &mut dst).unwrap();
    let body = dst.freeze();
    let call = read_call::<WireRef>(&body, &DecodeLimits::default()).expect("read");
    assert_eq!(call.seq, Some(6));
    assert_eq!(call.name, None);
    assert_eq!(call.args, vec![Value::Int(4)]);
    // Only CALLATTR and CALL are pre-encoded.
    let mut dst = BytesMut::new();
    let refused = encode_call_frame(&CallFrame { handle: Handle::GetAttr, ..frame }, &WireRefs, &mut dst);
    assert!(refused.is_err());
}

#[test]
fn large_byte_strings_are_left_to_the_general_route() {
    let mut tail = CallTail::new();
    let large = (SharedBytes::from(vec![0u8; LARGE_BYTES]),);
    assert_eq!(encode_call_tail(Some("put"), &large, &DecodeLimits::default(), &mut tail), Ok(false));
    assert!(tail.is_empty());
    let small = (SharedBytes::from(vec![0u8; LARGE_BYTES - 1]),);
    assert_eq!(encode_call_tail(Some("put"), &small, &DecodeLimits::default(), &mut tail), Ok(true));
}

fn depth(max_depth: usize) -> DecodeLimits {
    DecodeLimits { max_depth, ..DecodeLimits::default() }
}

#[test]
fn values_past_the_depth_limit_are_left_to_the_general_route() {
    let mut tail = CallTail::new();
    // The tuple at depth 1, its items at 2, the inner tuple's items at 3.
    assert_eq!(encode_call_tail(Some("f"), &((1,),), &depth(3), &mut tail), Ok(true));
    assert_eq!(encode_call_tail(Some("f"), &(((1,),),), &depth(3), &mut tail), Ok(false));
    // A single argument sits one level deeper, in the tuple it is wrapped in.
    assert_eq!(encode_call_tail(Some("f"), &vec![1], &depth(3), &mut tail), Ok(true));
    assert_eq!(encode_call_tail(Some("f"), &vec![vec![1]], &depth(3), &mut tail), Ok(false));
}

#[test]
fn a_call_with_a_callback_argument_is_read() {
    // `call_me(callback, 4)`: the arguments go boxed item by item, the callback as the
    // sender's object (`REMOTE_REF`), 4 as a plain value.
    let callback = wire_ref(41);
    let positional = vec![Value::Ref(callback.clone()), Value::Int(4)];
    let args = Value::Tuple(vec![
        Value::Ref(target()),
        Value::Str("call_me".into()),
        Value::Tuple(positional.clone()),
        Value::None,
    ]);
    let mut dst = BytesMut::new();
    encode_frame(&Frame::Request { seq: 9, handle: Handle::CallAttr, args, deadline: None }, &WireRefs, &mut dst)
        .unwrap();
    let body = dst.freeze();
    let call = read_call::<WireRef>(&body, &DecodeLimits::default()).expect("read");
    assert_eq!(call.name, Some("call_me"));
    assert_eq!(call.args, vec![Value::None, Value::Int(4)]);
    assert_eq!(call.refs.len(), 1);
    assert_eq!((call.refs[0].index, call.refs[0].label), (0, RefLabel::Remote));
    assert_eq!(call.refs[0].id.to_id_pack(), callback.id);
    assert_eq!(
        read_as_call(&body, &DecodeLimits::default()),
        as_call(decode(&body, &DecodeLimits::default()).unwrap())
    );

    // A reference inside a container argument is left to the general decoder.
    let args = Value::Tuple(vec![
        Value::Ref(target()),
        Value::Str("call_me".into()),
        Value::Tuple(vec![Value::List(vec![Value::Ref(callback)]), Value::Int(4)]),
        Value::None,
    ]);
    let mut dst = BytesMut::new();
    encode_frame(&Frame::Request { seq: 9, handle: Handle::CallAttr, args, deadline: None }, &WireRefs, &mut dst)
        .unwrap();
    assert!(read_call::<WireRef>(&dst.freeze(), &DecodeLimits::default()).is_none());
}

#[test]
fn a_reply_holding_an_object_is_read() {
    let object = wire_ref(7);
    let mut dst = BytesMut::new();
    encode_frame(&Frame::Reply { seq: 3, value: Value::Ref(object.clone()) }, &WireRefs, &mut dst).unwrap();
    let body = dst.freeze();
    match read_reply::<WireRef>(&body, &DecodeLimits::default()) {
        Some((3, PlainReply::Ref(r))) => {
            assert_eq!((r.index, r.label), (0, RefLabel::Remote));
            assert_eq!(r.id.to_id_pack(), object.id);
        }
        other => panic!("read {other:?}"),
    }
}

#[test]
fn tails_past_the_inline_buffer_are_the_general_bytes() {
    // A long name and a long argument: the tail outgrows `CallTail`'s inline bytes.
    let name = "a_method_name_long_enough_to_fill_most_of_the_inline_buffer_alone_";
    let args = Shape::Tuple(vec![Shape::Str("x".repeat(300)), Shape::I64(-7)]);
    let mut tail = CallTail::new();
    assert_eq!(encode_call_tail(Some(name), &args, &DecodeLimits::default(), &mut tail), Ok(true));
    assert!(tail.spilled(), "the test must cover a tail on the heap");
    let short = short_request(Some(9), Some(name), &args, None);
    assert!(short.is_some());
    assert_eq!(short, general_request(Some(9), Some(name), &args, None));
    // A single (non-tuple) argument is wrapped after the fact: two bytes inserted in front.
    let single = Shape::Str("y".repeat(100));
    assert_eq!(short_request(None, None, &single, None), general_request(None, None, &single, None));
}
