//! proptest strategies for values and frames.

use std::time::Duration;

use bytes::Bytes;
use netref::{
    dev::{Frame, Hello, Limits},
    BigInt, Data, Handle, IdPack, RefLabel, RemoteError, Value, WireRef,
};
use proptest::prelude::*;

pub fn id_pack() -> impl Strategy<Value = IdPack> {
    ("[a-z]{1,8}\\.[A-Z][a-z]{0,8}", any::<u64>(), any::<u64>()).prop_map(|(type_name, class_id, instance_id)| IdPack {
        type_name,
        class_id,
        instance_id,
    })
}

pub fn wire_ref() -> impl Strategy<Value = WireRef> {
    (prop_oneof![Just(RefLabel::Local), Just(RefLabel::Remote)], id_pack())
        .prop_map(|(label, id)| WireRef { label, id })
}

pub fn big_int() -> impl Strategy<Value = BigInt> {
    prop_oneof![any::<i128>().prop_map(BigInt::from), "-?[1-9][0-9]{0,60}".prop_map(|s| BigInt::parse(&s).unwrap()),]
}

fn scalar<R: Clone + std::fmt::Debug + 'static>() -> impl Strategy<Value = Value<R>> {
    prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        big_int().prop_map(Value::BigInt),
        any::<f64>().prop_map(Value::Float),
        (any::<f64>(), any::<f64>()).prop_map(|(a, b)| Value::Complex(a, b)),
        ".{0,20}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|v| Value::Bytes(Bytes::from(v))),
    ]
}

/// The Python values (frozenset, slice, `Ellipsis`, `NotImplemented`): plain data only.
pub fn py_value<R: Clone + std::fmt::Debug + 'static>() -> BoxedStrategy<Value<R>> {
    let plain = nest(scalar().boxed(), false);
    prop_oneof![
        Just(Value::Ellipsis),
        Just(Value::NotImplemented),
        proptest::collection::vec(plain.clone(), 0..5).prop_map(Value::FrozenSet),
        (plain.clone(), plain.clone(), plain).prop_map(|(a, b, c)| Value::Slice(Box::new([a, b, c]))),
    ]
    .boxed()
}

/// `leaf` nested in tuples, lists and maps, and (`py`) in the Python values, which hold plain
/// data only.
fn nest<R: Clone + std::fmt::Debug + 'static>(leaf: BoxedStrategy<Value<R>>, py: bool) -> BoxedStrategy<Value<R>> {
    let leaf = if py { prop_oneof![6 => leaf, 1 => py_value()].boxed() } else { leaf };
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
        ]
    })
    .boxed()
}

/// Plain data, no references (the Python values included).
pub fn data() -> BoxedStrategy<Data> {
    nest(scalar().boxed(), true)
}

/// Values with wire references anywhere inside.
pub fn wire_value() -> BoxedStrategy<Value<WireRef>> {
    nest(prop_oneof![4 => scalar(), 1 => wire_ref().prop_map(Value::Ref)].boxed(), true)
}

pub fn handle() -> impl Strategy<Value = Handle> {
    (1u8..=20).prop_map(|n| Handle::try_from(n).unwrap())
}

pub fn remote_error() -> impl Strategy<Value = RemoteError> {
    prop_oneof![
        Just(RemoteError::stop_iteration()),
        ("[a-z]{1,8}\\.[A-Za-z]{1,12}", ".{0,30}", proptest::collection::vec(data(), 0..3), ".{0,60}")
            .prop_map(|(kind, message, args, traceback)| RemoteError { kind, message, args, traceback }),
    ]
}

pub fn frame() -> impl Strategy<Value = Frame<WireRef>> {
    prop_oneof![
        (any::<u32>(), any::<u64>(), any::<u64>(), any::<u64>(), proptest::option::of(id_pack())).prop_map(
            |(version, features, a, b, root)| Frame::Hello(Hello {
                version,
                features,
                limits: Limits { max_frame_len: a, max_concurrent_requests: b },
                root
            })
        ),
        (any::<u64>(), handle(), wire_value(), proptest::option::of(0u64..u64::MAX / 2)).prop_map(
            |(seq, handle, args, deadline)| Frame::Request {
                seq,
                handle,
                args,
                deadline: deadline.map(Duration::from_micros)
            }
        ),
        (any::<u64>(), wire_value()).prop_map(|(seq, value)| Frame::Reply { seq, value }),
        (any::<u64>(), remote_error()).prop_map(|(seq, error)| Frame::Exception { seq, error }),
        any::<u64>().prop_map(|seq| Frame::Cancel { seq }),
        proptest::collection::vec((any::<u64>(), any::<u64>()), 0..8).prop_map(|refs| Frame::Release { refs }),
        ".{0,40}".prop_map(|reason| Frame::Close { reason }),
    ]
}
