//! The two encoders against each other and against the decoder: the same bytes, the same
//! refusals.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::{direct::put_varint, encode_frame_serde, encode_value_frame, Spill};
use crate::{
    error::RemoteError,
    protocol::{
        native::{boxing::WireRefs, decode::decode_frame, limits::DecodeLimits},
        Handle, Hello, Limits, FEATURE_PY_VALUES,
    },
    value::{BigInt, IdPack, RefLabel, Value, WireRef},
    Frame, ProtocolError,
};

/// Values with references, scalars of every kind and byte strings that are shared (so
/// the spilling path is taken too).
fn value() -> impl Strategy<Value = Value<WireRef>> {
    let id = (".{0,12}", any::<u64>(), any::<u64>()).prop_map(|(type_name, class_id, instance_id)| IdPack {
        type_name,
        class_id,
        instance_id,
    });
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        "-?[1-9][0-9]{19,30}".prop_map(|t| Value::BigInt(BigInt::parse(&t).unwrap())),
        any::<f64>().prop_map(Value::Float),
        (any::<f64>(), any::<f64>()).prop_map(|(a, b)| Value::Complex(a, b)),
        ".{0,40}".prop_map(Value::Str),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|v| {
            let b = Bytes::from(v);
            // Held twice (the other handle is leaked, a few KiB per run): a string long
            // enough is spilled.
            std::mem::forget(b.clone());
            Value::Bytes(b)
        }),
        (any::<bool>(), id).prop_map(|(local, id)| Value::Ref(WireRef {
            label: if local { RefLabel::Local } else { RefLabel::Remote },
            id
        })),
        Just(Value::Ellipsis),
        Just(Value::NotImplemented),
    ];
    leaf.prop_recursive(5, 64, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Tuple),
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::List),
            prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            // Frozensets and slices carry plain values only.
            prop::collection::vec(inner.clone().prop_map(plain), 0..4).prop_map(Value::FrozenSet),
            (inner.clone(), inner.clone(), inner).prop_map(|(a, b, c)| Value::Slice(Box::new([
                plain(a),
                plain(b),
                plain(c)
            ]))),
        ]
    })
}

/// `v` with every reference replaced by `None`.
fn plain(v: Value<WireRef>) -> Value<WireRef> {
    let items = |items: Vec<Value<WireRef>>| items.into_iter().map(plain).collect();
    match v {
        Value::Ref(_) => Value::None,
        Value::Tuple(i) => Value::Tuple(items(i)),
        Value::List(i) => Value::List(items(i)),
        Value::FrozenSet(i) => Value::FrozenSet(items(i)),
        Value::Map(pairs) => Value::Map(pairs.into_iter().map(|(k, v)| (plain(k), plain(v))).collect()),
        Value::Slice(parts) => Value::Slice(Box::new((*parts).map(plain))),
        other => other,
    }
}

fn frame() -> impl Strategy<Value = Frame<WireRef>> {
    let handle = prop::sample::select(vec![Handle::CallAttr, Handle::GetAttr, Handle::Ping, Handle::Call]);
    prop_oneof![
        (any::<u64>(), handle.clone(), value(), prop::option::of(any::<u64>())).prop_map(
            |(seq, handle, args, deadline)| Frame::Request {
                seq,
                handle,
                args,
                deadline: deadline.map(Duration::from_micros)
            }
        ),
        (any::<u64>(), value()).prop_map(|(seq, value)| Frame::Reply { seq, value }),
        prop::collection::vec((any::<u64>(), any::<u64>()), 0..20).prop_map(|refs| Frame::Release { refs }),
        (handle, value()).prop_map(|(handle, args)| Frame::Notify { handle, args }),
        (
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            prop::option::of((".{0,12}", any::<u64>(), any::<u64>()))
        )
            .prop_map(|(version, features, max_frame_len, max_concurrent_requests, root)| {
                Frame::Hello(Hello {
                    version,
                    features,
                    limits: Limits { max_frame_len, max_concurrent_requests },
                    root: root.map(|(type_name, class_id, instance_id)| IdPack { type_name, class_id, instance_id }),
                })
            }),
    ]
}

const UNLIMITED: DecodeLimits = DecodeLimits { max_depth: usize::MAX, max_values: usize::MAX };

/// Both encoders on one frame: bytes (with the spilled strings where they go) or error.
fn both(frame: &Frame<WireRef>, threshold: usize, limits: DecodeLimits) -> [Result<Vec<u8>, ProtocolError>; 2] {
    let run = |direct: bool| {
        let mut dst = BytesMut::from(&b"pre"[..]);
        let spill = Spill::with_limits(threshold, limits);
        let r = if direct {
            encode_value_frame(frame, &WireRefs, &mut dst, &spill)
        } else {
            encode_frame_serde(frame, &WireRefs, &mut dst, &spill)
        };
        r.map(|()| {
            let mut out = Vec::new();
            let mut at = 0;
            for (offset, b) in spill.into_strings() {
                out.extend_from_slice(&dst[at..offset]);
                out.extend_from_slice(&b);
                at = offset;
            }
            out.extend_from_slice(&dst[at..]);
            out
        })
    };
    [run(true), run(false)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_direct_encoder_writes_the_serde_bytes(f in frame(), threshold in prop::sample::select(vec![0usize, 16, usize::MAX])) {
        let [direct, serde] = both(&f, threshold, UNLIMITED);
        prop_assert_eq!(direct.as_ref().unwrap(), serde.as_ref().unwrap());
    }

    #[test]
    fn both_encoders_refuse_the_same_depth(f in frame(), max_depth in 0usize..4) {
        let [direct, serde] = both(&f, usize::MAX, DecodeLimits { max_depth, max_values: usize::MAX });
        match (&direct, &serde) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(ProtocolError::TooDeep { max: a }), Err(ProtocolError::TooDeep { max: b })) => prop_assert_eq!(a, b),
            _ => prop_assert!(false, "direct {:?} vs serde {:?}", direct, serde),
        }
    }

    /// The encoders refuse a frame exactly when a decoder with the same limits would (the
    /// peer would close the connection over it): what they write, it reads, and what they
    /// refuse, it refuses. (Which limit is reported first may differ: the decoder checks a
    /// container's announced length before reading its items.)
    #[test]
    fn the_encoders_refuse_what_the_decoder_refuses(f in frame(), max_depth in 0usize..5, max_values in 0usize..30) {
        let limits = DecodeLimits { max_depth, max_values };
        let [direct, serde] = both(&f, usize::MAX, limits);
        prop_assert_eq!(&direct, &serde);
        let [Ok(unlimited), _] = both(&f, usize::MAX, UNLIMITED) else { unreachable!("any frame encodes without limits") };
        // `both` writes after a three-byte prefix.
        let decoded = decode_frame(&Bytes::copy_from_slice(&unlimited[3..]), &limits, &WireRefs);
        match (&direct, &decoded) {
            (Ok(_), Ok(_)) => {}
            (Err(ProtocolError::TooDeep { .. } | ProtocolError::TooManyValues { .. }), Err(ProtocolError::TooDeep { .. } | ProtocolError::TooManyValues { .. })) => {}
            _ => prop_assert!(false, "encoder {:?} vs decoder {:?}", direct, decoded),
        }
    }
}

#[test]
fn both_encoders_refuse_python_values_the_peer_did_not_announce() {
    let refs = |v: Value<WireRef>| Value::Tuple(vec![Value::Int(1), v]);
    let values = [
        (Value::FrozenSet(vec![Value::Int(1)]), "frozenset"),
        (Value::Slice(Box::new([Value::None, Value::Int(2), Value::None])), "slice"),
        (Value::Ellipsis, "Ellipsis"),
        (Value::NotImplemented, "NotImplemented"),
    ];
    for (value, what) in values {
        for frame in [
            Frame::Reply { seq: 1, value: value.clone() },
            Frame::Request { seq: 2, handle: Handle::Call, args: refs(value.clone()), deadline: None },
            Frame::Exception {
                seq: 3,
                error: RemoteError {
                    kind: "k".into(),
                    message: "m".into(),
                    args: vec![value.clone().try_map_refs(&mut |_| Err(())).unwrap()],
                    traceback: String::new(),
                },
            },
        ] {
            let run = |direct: bool, features: u64| {
                let mut dst = BytesMut::new();
                let spill = Spill::new(usize::MAX).for_peer(features);
                if direct && !matches!(frame, Frame::Exception { .. }) {
                    encode_value_frame(&frame, &WireRefs, &mut dst, &spill)
                } else {
                    encode_frame_serde(&frame, &WireRefs, &mut dst, &spill)
                }
                .map(|()| dst.to_vec())
            };
            let expected = ProtocolError::PeerLacksFeature { feature: "py-values", what };
            assert_eq!(run(true, 0), Err(expected.clone()));
            assert_eq!(run(false, 0), Err(expected.clone()));
            assert_eq!(
                expected.to_string(),
                format!("the peer does not accept {what} values (it did not announce feature py-values)")
            );
            let sent = run(true, FEATURE_PY_VALUES).unwrap();
            assert_eq!(run(false, FEATURE_PY_VALUES).unwrap(), sent);
            let decoded = decode_frame(&Bytes::from(sent), &DecodeLimits::default(), &WireRefs).unwrap();
            assert_eq!(decoded, frame);
        }
    }
}

#[test]
fn a_reference_inside_a_frozenset_or_slice_is_refused_by_both_encoders() {
    let r = Value::Ref(WireRef {
        label: RefLabel::Remote,
        id: IdPack { type_name: "t.T".into(), class_id: 1, instance_id: 2 },
    });
    for value in [
        Value::FrozenSet(vec![r.clone()]),
        Value::List(vec![Value::Slice(Box::new([Value::None, r.clone(), Value::None]))]),
    ] {
        let [direct, serde] = both(&Frame::Reply { seq: 1, value }, usize::MAX, UNLIMITED);
        assert!(
            matches!(&direct, Err(ProtocolError::BadReference(m)) if m.contains("frozenset or slice")),
            "{direct:?}"
        );
        assert_eq!(direct, serde);
    }
}

#[test]
fn varints_are_leb128() {
    for (v, bytes) in [(0u64, &[0u8][..]), (127, &[0x7f]), (128, &[0x80, 0x01]), (300, &[0xac, 0x02])] {
        let mut dst = BytesMut::new();
        put_varint(&mut dst, v);
        assert_eq!(&dst[..], bytes, "{v}");
    }
    let mut dst = BytesMut::new();
    put_varint(&mut dst, u64::MAX);
    assert_eq!(dst.len(), 10);
}
