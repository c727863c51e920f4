//! Guards the meaning of RPyC's brine trees (`values`): the captured rpyc 6.0.2 session's
//! requests, replies and exceptions decode to netref's values and re-encode byte for byte;
//! every by-value kind and every reference round-trips through bytes; malformed trees are
//! errors, never panics.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::{
    tests::{big, big_int_text, boxed, brine, hex, id_pack, int, root, s, session, t},
    values::*,
    *,
};
use crate::{
    kinds,
    protocol::{Handle, IdPackRef, RefBoxer, RefUnboxer, UnknownHandle, WireRefs},
    value::{BigInt, Data, IdPack, RefLabel, Value, WireRef},
    ProtocolError, RemoteError,
};

type V = Value<WireRef>;

fn wire_ref(label: RefLabel, name: &str, class_id: u64, instance_id: u64) -> V {
    Value::Ref(WireRef { label, id: IdPack { type_name: name.into(), class_id, instance_id } })
}

fn to_bytes(brine: &Brine) -> Bytes {
    dump_to_bytes(brine).unwrap()
}

fn reload(brine: &Brine) -> Brine {
    load(&to_bytes(brine), &BrineLimits::default()).unwrap()
}

/// The payload of a captured frame: without the 5-byte header and the trailer.
fn payload_of(frame_hex: &str) -> Vec<u8> {
    let bytes = hex(frame_hex);
    bytes[5..bytes.len() - 1].to_vec()
}

// ---------------------------------------------------------------------------------------------
// rpyc-reference §8.2
// ---------------------------------------------------------------------------------------------

#[test]
fn every_session_request_and_reply_unboxes_and_reboxes_to_the_captured_bytes() {
    let mut checked = 0;
    for (frame, msg, seq, args) in session() {
        let rebuilt = match msg {
            MsgType::Request => {
                let (handle, values) = decode_request(args.clone(), &WireRefs).unwrap();
                encode_request(handle, &values, &WireRefs).unwrap()
            }
            MsgType::Reply => encode_reply(&decode_reply(args.clone(), &WireRefs).unwrap(), &WireRefs).unwrap(),
            MsgType::Exception => continue,
        };
        assert_eq!(rebuilt, args, "frame {frame}");
        let mut payload = BytesMut::new();
        encode_message(msg, seq, &rebuilt, &mut payload).unwrap();
        assert_eq!(payload.to_vec(), payload_of(&frame), "frame {frame}");
        checked += 1;
    }
    assert_eq!(checked, 18);
}

#[test]
fn the_session_requests_unbox_to_handles_and_references() {
    let root_id = ("__main__.CalcService", 94092615954304, 139705950939600);
    let method_id = ("builtins.method", 139705970889408, 139705950942720);
    let by_seq = |want: u64, want_msg: MsgType| {
        session().into_iter().find(|(_, msg, seq, _)| *seq == want && *msg == want_msg).unwrap().3
    };
    // c.root: GETROOT with no arguments; the reply is the server's root, REMOTE_REF.
    assert_eq!(decode_request(by_seq(0, MsgType::Request), &WireRefs).unwrap(), (Handle::GetRoot, vec![]));
    assert_eq!(
        decode_reply(by_seq(0, MsgType::Reply), &WireRefs).unwrap(),
        wire_ref(RefLabel::Remote, root_id.0, root_id.1, root_id.2)
    );
    // INSPECT sends the id_pack by value.
    assert_eq!(
        decode_request(by_seq(1, MsgType::Request), &WireRefs).unwrap(),
        (
            Handle::Inspect,
            vec![Value::Tuple(vec![root_id.0.into(), Value::Int(94092615954304), Value::Int(139705950939600)])]
        )
    );
    // root.add: GETATTR on the root (LOCAL_REF, it is the receiver's), then CALL (1, 2).
    assert_eq!(
        decode_request(by_seq(2, MsgType::Request), &WireRefs).unwrap(),
        (Handle::GetAttr, vec![wire_ref(RefLabel::Local, root_id.0, root_id.1, root_id.2), "add".into()])
    );
    assert_eq!(
        decode_request(by_seq(3, MsgType::Request), &WireRefs).unwrap(),
        (
            Handle::Call,
            vec![
                wire_ref(RefLabel::Local, method_id.0, method_id.1, method_id.2),
                Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
                Value::Tuple(vec![]),
            ]
        )
    );
    assert_eq!(decode_reply(by_seq(3, MsgType::Reply), &WireRefs).unwrap(), Value::Int(3));
    // DEL(method, 1), answered None.
    let (handle, args) = decode_request(by_seq(4, MsgType::Request), &WireRefs).unwrap();
    assert_eq!((handle, args[1].clone()), (Handle::Del, Value::Int(1)));
    assert_eq!(decode_reply(by_seq(4, MsgType::Reply), &WireRefs).unwrap(), Value::None);
    // call_me(lambda, 4): the client's lambda travels as REMOTE_REF inside a boxed tuple.
    let (handle, args) = decode_request(by_seq(7, MsgType::Request), &WireRefs).unwrap();
    assert_eq!(handle, Handle::Call);
    let lambda_ref = wire_ref(RefLabel::Remote, "builtins.function", 139705952007552, 139705952111116);
    assert_eq!(args[1], Value::Tuple(vec![lambda_ref, Value::Int(4)]));
    // c.close()
    assert_eq!(decode_request(by_seq(12, MsgType::Request), &WireRefs).unwrap(), (Handle::Close, vec![]));
}

#[test]
fn the_fail_exception_decodes_to_a_value_error_with_its_traceback() {
    let (_, _, _, vinegar) =
        session().into_iter().find(|(_, msg, seq, _)| *msg == MsgType::Exception && *seq == 10).unwrap();
    let error = decode_exception(vinegar).unwrap();
    assert_eq!(error.kind, "builtins.ValueError");
    assert_eq!(error.message, "('boom', 7)");
    assert_eq!(error.args, vec![Data::Str("boom".into()), Data::Int(7)]);
    assert_eq!(error.traceback, "<traceback denied>");
    assert!(!error.is_stop_iteration());

    // Encoded again as stock would accept it: builtins module, no attrs, a traceback that ends
    // with Python's last line.
    let encoded = encode_exception(&error);
    let items = encoded.as_tuple().unwrap();
    assert_eq!(items[0], t([s("builtins"), s("ValueError")]));
    assert_eq!(items[1], t([s("boom"), int(7)]));
    assert_eq!(items[2], t([]));
    let tb = items[3].as_str().unwrap();
    assert!(tb.starts_with("<traceback denied>"), "{tb:?}");
    assert!(tb.ends_with("\nValueError: ('boom', 7)"), "{tb:?}");
    let again = decode_exception(reload(&encoded)).unwrap();
    assert_eq!(
        (again.kind.as_str(), again.message.as_str(), &again.args),
        ("builtins.ValueError", "('boom', 7)", &error.args)
    );
}

#[test]
fn stop_iteration_is_the_bare_int_one_both_ways() {
    let (_, _, _, args) =
        session().into_iter().find(|(_, msg, seq, _)| *msg == MsgType::Exception && *seq == 12).unwrap();
    assert_eq!(args, int(1));
    assert!(decode_exception(args).unwrap().is_stop_iteration());
    assert_eq!(encode_exception(&RemoteError::stop_iteration()), int(1));
    let mut payload = BytesMut::new();
    encode_message(MsgType::Exception, 12, &encode_exception(&RemoteError::stop_iteration()), &mut payload).unwrap();
    assert_eq!(payload.to_vec(), payload_of("00000004 00 | 03 11 5c 51 | 0a"));
}

// ---------------------------------------------------------------------------------------------
// Vinegar from netref's side
// ---------------------------------------------------------------------------------------------

#[test]
fn a_netref_error_encodes_with_its_message_as_the_single_arg_and_a_python_traceback() {
    let encoded = encode_exception(&RemoteError::new("builtins.KeyError", "'x'"));
    let items = encoded.as_tuple().unwrap();
    assert_eq!(items[0], t([s("builtins"), s("KeyError")]));
    assert_eq!(items[1], t([s("'x'")]));
    let tb = items[3].as_str().unwrap();
    assert!(tb.starts_with("Traceback (most recent call last):\n"), "{tb:?}");
    assert!(tb.ends_with("\nKeyError: 'x'"), "{tb:?}");

    // An existing traceback that already ends right is kept as it is.
    let kept =
        RemoteError::new("builtins.ValueError", "bad").with_traceback("Traceback ...\n  here\nValueError: bad\n");
    assert_eq!(encode_exception(&kept).as_tuple().unwrap()[3], s("Traceback ...\n  here\nValueError: bad\n"));

    // No message: no args, the last line is the bare type name.
    let bare = encode_exception(&RemoteError::new("builtins.RuntimeError", ""));
    assert_eq!(bare.as_tuple().unwrap()[1], t([]));
    assert!(bare.as_tuple().unwrap()[3].as_str().unwrap().ends_with("\nRuntimeError"));

    // A non-builtin kind keeps its module and shows it in the last line, as Python does; a kind
    // without a dot is a builtin.
    let panic = encode_exception(&RemoteError::new("netref.Panic", "oops"));
    assert_eq!(panic.as_tuple().unwrap()[0], t([s("netref"), s("Panic")]));
    assert!(panic.as_tuple().unwrap()[3].as_str().unwrap().ends_with("\nnetref.Panic: oops"));
    let dotless = encode_exception(&RemoteError::new("OSError", "x"));
    assert_eq!(dotless.as_tuple().unwrap()[0], t([s("builtins"), s("OSError")]));

    // Args brine cannot dump travel as their repr, as stock sends them.
    let mut with_list = RemoteError::new("builtins.ValueError", "ignored");
    with_list.args = vec![Data::List(vec![Data::Int(1), Data::Str("a".into())]), Data::Int(2)];
    let items = encode_exception(&with_list);
    assert_eq!(items.as_tuple().unwrap()[1], t([s("[1, 'a']"), int(2)]));
    assert!(items.as_tuple().unwrap()[3].as_str().unwrap().ends_with("ValueError: ([1, 'a'], 2)"));
}

#[test]
fn vinegar_of_the_wrong_shape_is_malformed() {
    let good = |tb: Brine| t([t([s("builtins"), s("ValueError")]), t([]), t([]), tb]);
    assert!(decode_exception(good(s("tb"))).is_ok());
    for bad in [
        good(Brine::None),
        t([t([s("builtins"), s("ValueError")]), t([]), t([])]),
        t([s("builtins.ValueError"), t([]), t([]), s("tb")]),
        t([t([s("builtins"), int(3)]), t([]), t([]), s("tb")]),
        t([t([s("builtins"), s("ValueError")]), s("args"), t([]), s("tb")]),
        t([t([s("builtins"), s("ValueError")]), t([]), Brine::None, s("tb")]),
        Brine::Float(1.0),
        Brine::Bool(true),
        int(-1),
    ] {
        assert!(matches!(decode_exception(bad.clone()), Err(ProtocolError::Malformed(_))), "{bad:?}");
    }
    assert_eq!(decode_exception(int(2)), Err(ProtocolError::UnknownExceptionCode(2)));
    let legacy = decode_exception(s("old style")).unwrap();
    assert_eq!((legacy.kind.as_str(), legacy.message.as_str()), ("builtins.Exception", "old style"));
}

// ---------------------------------------------------------------------------------------------
// References and ids
// ---------------------------------------------------------------------------------------------

#[test]
fn references_box_by_label_and_ids_beyond_i64_round_trip() {
    for (label, byte) in [(RefLabel::Local, 3), (RefLabel::Remote, 4)] {
        for (class_id, instance_id) in [(0, 0), (1, 160), (94092615954304, 139705950939600), (u64::MAX, 1 << 63)] {
            let value = wire_ref(label, "demo.Thing", class_id, instance_id);
            let boxed_ref = box_value(&value, &WireRefs).unwrap();
            assert_eq!(boxed_ref, boxed(byte, t([s("demo.Thing"), Brine::from(class_id), Brine::from(instance_id)])));
            assert_eq!(unbox(reload(&boxed_ref), &WireRefs).unwrap(), value);
        }
    }
    // u64::MAX on the wire is an INT_L1 decimal.
    let bytes = to_bytes(&id_pack_to_brine(&IdPack { type_name: "m.T".into(), class_id: u64::MAX, instance_id: 0 }));
    assert_eq!(&bytes[..], &hex("12 08 0c 6d2e54 16 14 3138343436373434303733373039353531363135 50")[..]);
}

#[test]
fn ids_outside_u64_are_refused_by_name() {
    for (class_id, instance_id) in
        [(big("18446744073709551616"), int(1)), (int(1), int(-1)), (int(1), big("-99999999999999999999"))]
    {
        let pack = t([s("m.T"), class_id, instance_id]);
        let err = unbox(boxed(4, pack.clone()), &WireRefs).unwrap_err();
        assert!(matches!(&err, ProtocolError::Malformed(m) if m.contains("beyond u64")), "{err}");
        assert!(id_pack_from_brine(&pack).is_err());
    }
    assert_eq!(
        id_pack_from_brine(&t([s("m.T"), big("18446744073709551615"), int(0)])).unwrap(),
        IdPack { type_name: "m.T".into(), class_id: u64::MAX, instance_id: 0 }
    );
}

#[test]
fn tuples_holding_references_box_item_by_item_and_plain_ones_by_value() {
    let r = wire_ref(RefLabel::Remote, "builtins.function", 7, 8);
    let value: V =
        Value::Tuple(vec![Value::Int(1), Value::Tuple(vec![r.clone(), "x".into()]), Value::Tuple(vec![Value::Int(2)])]);
    let fn_pack = id_pack("builtins.function", 7, 8);
    assert_eq!(
        box_value(&value, &WireRefs).unwrap(),
        boxed(2, t([boxed(1, int(1)), boxed(2, t([boxed(4, fn_pack), boxed(1, s("x"))])), boxed(1, t([int(2)]))]))
    );
    assert_eq!(unbox(reload(&box_value(&value, &WireRefs).unwrap()), &WireRefs).unwrap(), value);
    let plain: V = Value::Tuple(vec![Value::Int(1), Value::Tuple(vec!["x".into()])]);
    assert_eq!(box_value(&plain, &WireRefs).unwrap(), boxed(1, t([int(1), t([s("x")])])));
}

/// A boxer that exports lists and maps as `builtins.list` / `builtins.dict` objects, the hook a
/// connection fills in.
struct Exporting;

impl RefBoxer<WireRef> for Exporting {
    fn box_ref<'r>(&self, r: &'r WireRef) -> Result<(RefLabel, Cow<'r, IdPack>), String> {
        WireRefs.box_ref(r)
    }
}

impl RpycBoxer<WireRef> for Exporting {
    fn box_list(&self, items: &[V]) -> Result<Brine, ProtocolError> {
        let id = IdPack { type_name: "builtins.list".into(), class_id: 1, instance_id: items.len() as u64 + 100 };
        Ok(box_ref_label(RefLabel::Remote, &id))
    }
}

#[test]
fn lists_and_maps_are_refused_by_default_and_go_through_the_hook() {
    let list: V = Value::List(vec![Value::Int(1)]);
    let map: V = Value::Map(vec![("k".into(), Value::Int(1))]);
    for value in [&list, &map, &Value::Tuple(vec![Value::Int(0), list.clone()])] {
        let err = box_value(value, &WireRefs).unwrap_err();
        assert!(matches!(&err, ProtocolError::BadReference(m) if m.contains("by reference")), "{err}");
    }
    let in_tuple = box_value(&Value::Tuple(vec![Value::Int(0), list.clone()]), &Exporting).unwrap();
    assert_eq!(in_tuple, boxed(2, t([boxed(1, int(0)), boxed(4, id_pack("builtins.list", 1, 101))])));
    assert!(matches!(box_value(&map, &Exporting), Err(ProtocolError::BadReference(m)) if m.contains("dict")));
    // A frozenset or slice can only travel by value.
    let r = wire_ref(RefLabel::Local, "m.T", 1, 2);
    for value in [
        Value::FrozenSet(vec![r.clone()]),
        Value::Slice(Box::new([Value::None, r, Value::None])),
        Value::FrozenSet(vec![list]),
    ] {
        assert!(matches!(box_value(&value, &Exporting), Err(ProtocolError::BadReference(_))), "{value:?}");
    }
}

/// An unboxer that knows no local object.
struct NoLocals;

impl RefUnboxer for NoLocals {
    type Ref = WireRef;

    fn unbox_ref(&self, label: RefLabel, id: IdPackRef<'_>) -> Result<WireRef, String> {
        match label {
            RefLabel::Local => Err(format!("no local object {}", id.instance_id)),
            RefLabel::Remote => WireRefs.unbox_ref(label, id),
        }
    }
}

#[test]
fn malformed_boxes_are_errors_never_panics() {
    let malformed = |b: Brine| match unbox(b.clone(), &WireRefs) {
        Err(ProtocolError::Malformed(m)) => m,
        other => panic!("{b:?} gave {other:?}"),
    };
    assert!(malformed(int(1)).contains("2-tuple"));
    assert!(malformed(t([int(1)])).contains("a tuple of 1 items"));
    assert!(malformed(t([int(1), int(2), int(3)])).contains("a tuple of 3 items"));
    assert!(malformed(t([s("1"), int(2)])).contains("label must be an int, found str"));
    assert!(malformed(t([Brine::Bool(true), int(2)])).contains("found bool"));
    assert!(malformed(t([int(300), int(2)])).contains("300"));
    assert!(malformed(t([int(-1), int(2)])).contains("-1"));
    assert!(malformed(t([big("99999999999999999999"), int(2)])).contains("99999999999999999999 is not a LABEL_*"));
    assert!(malformed(boxed(2, s("not a tuple"))).contains("LABEL_TUPLE"));
    assert!(malformed(boxed(2, t([int(5)]))).contains("2-tuple"));
    for pack in [
        t([s("m.T"), int(1)]),
        t([s("m.T"), int(1), int(2), int(3)]),
        t([Brine::bytes(&b"m.T"[..]), int(1), int(2)]),
        t([s("m.T"), Brine::Float(1.0), int(2)]),
        t([s("m.T"), int(1), Brine::Bool(true)]),
        s("m.T"),
    ] {
        assert!(malformed(boxed(3, pack.clone())).contains("id_pack"), "{pack:?}");
    }
    assert_eq!(unbox(t([int(5), int(2)]), &WireRefs), Err(ProtocolError::UnknownLabel(5)));
    assert_eq!(unbox(t([int(0), int(2)]), &WireRefs), Err(ProtocolError::UnknownLabel(0)));
    // The unboxer refusing a reference.
    assert_eq!(
        unbox(boxed(3, id_pack("m.T", 1, 2)), &NoLocals),
        Err(ProtocolError::BadReference("no local object 2".into()))
    );
    assert!(unbox(boxed(4, id_pack("m.T", 1, 2)), &NoLocals).is_ok());
}

#[test]
fn unknown_handlers_and_malformed_requests_are_answered_with_exceptions() {
    let err = decode_request(t([int(99), boxed(1, t([]))]), &WireRefs).unwrap_err();
    assert_eq!(err, ProtocolError::UnknownHandle(UnknownHandle(99)));
    let reply = request_refusal(&err);
    assert_eq!((reply.kind.as_str(), reply.message.as_str()), ("builtins.KeyError", "99"));
    assert!(reply.traceback.ends_with("KeyError: 99"), "{}", reply.traceback);
    let vinegar = encode_exception(&reply);
    assert_eq!(vinegar.as_tuple().unwrap()[0], t([s("builtins"), s("KeyError")]));

    for bad in [
        t([int(1000), boxed(1, t([]))]),
        t([big("-99999999999999999999"), boxed(1, t([]))]),
        t([s("3"), boxed(1, t([]))]),
        t([int(3)]),
        int(3),
        t([int(3), boxed(1, int(5))]),
        t([int(3), t([int(1)])]),
    ] {
        let err = decode_request(bad.clone(), &WireRefs).unwrap_err();
        assert!(matches!(err, ProtocolError::Malformed(_)), "{bad:?}: {err:?}");
        assert_eq!(request_refusal(&err).kind, "builtins.ValueError");
    }
    let stale = decode_request(t([int(4), boxed(2, t([boxed(3, root()), boxed(1, s("x"))]))]), &NoLocals).unwrap_err();
    assert_eq!(request_refusal(&stale).kind, "builtins.KeyError");
}

// ---------------------------------------------------------------------------------------------
// Python's repr (what exception messages show)
// ---------------------------------------------------------------------------------------------

#[test]
fn repr_matches_cpython_for_the_brine_types() {
    let cases: Vec<(V, &str)> = vec![
        (Value::None, "None"),
        (Value::Bool(true), "True"),
        (Value::Int(-7), "-7"),
        (Value::BigInt(BigInt::parse("18446744073709551616").unwrap()), "18446744073709551616"),
        (Value::Float(0.1), "0.1"),
        (Value::Float(100.0), "100.0"),
        (Value::Float(-0.0), "-0.0"),
        (Value::Float(1e16), "1e+16"),
        (Value::Float(1.5e-5), "1.5e-05"),
        (Value::Float(123456789012345.6), "123456789012345.6"),
        (Value::Float(f64::NAN), "nan"),
        (Value::Float(f64::NEG_INFINITY), "-inf"),
        (Value::Complex(2.0, 3.0), "(2+3j)"),
        (Value::Complex(0.0, 3.0), "3j"),
        (Value::Complex(1.5, -0.5), "(1.5-0.5j)"),
        ("hé".into(), "'hé'"),
        ("it's".into(), "\"it's\""),
        ("a'b\"c\n\\\x01".into(), "'a\\'b\"c\\n\\\\\\x01'"),
        (Value::Bytes(Bytes::from_static(b"a\x00'\xff")), "b\"a\\x00'\\xff\""),
        (Value::Tuple(vec![Value::Int(1)]), "(1,)"),
        (Value::Tuple(vec![]), "()"),
        (Value::FrozenSet(vec![Value::Int(7)]), "frozenset({7})"),
        (Value::FrozenSet(vec![]), "frozenset()"),
        (Value::Slice(Box::new([Value::Int(1), Value::None, Value::Int(2)])), "slice(1, None, 2)"),
        (Value::Ellipsis, "Ellipsis"),
        (Value::NotImplemented, "NotImplemented"),
        (Value::Map(vec![("k".into(), Value::List(vec![]))]), "{'k': []}"),
    ];
    for (value, want) in cases {
        assert_eq!(python_repr(&value), want, "{value:?}");
    }
    assert_eq!(python_str_of_args::<WireRef>(&["boom".into()]), "boom");
    assert_eq!(python_str_of_args::<WireRef>(&[Value::Int(7)]), "7");
    assert_eq!(python_str_of_args::<WireRef>(&[]), "");
    // CPython's KeyError shows its one argument's repr.
    assert_eq!(python_str_of_exception::<WireRef>(kinds::KEY_ERROR, &["zz".into()]), "'zz'");
    assert_eq!(python_str_of_exception::<WireRef>(kinds::KEY_ERROR, &["a".into(), "b".into()]), "('a', 'b')");
    assert_eq!(python_str_of_exception::<WireRef>(kinds::VALUE_ERROR, &["zz".into()]), "zz");
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

fn reference() -> impl Strategy<Value = V> {
    (any::<bool>(), "[a-z_]{1,8}\\.[A-Za-z]{1,8}", any::<u64>(), any::<u64>())
        .prop_map(|(local, name, c, i)| wire_ref(if local { RefLabel::Local } else { RefLabel::Remote }, &name, c, i))
}

/// Values with references: plain brine leaves and references, in tuples.
fn value_with_refs() -> impl Strategy<Value = V> {
    prop_oneof![brine().prop_map(brine_to_value), reference()]
        .prop_recursive(3, 32, 6, |inner| proptest::collection::vec(inner, 0..6).prop_map(Value::Tuple))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn plain_values_box_as_one_value_and_round_trip_exactly(b in brine()) {
        let value: V = brine_to_value(b.clone());
        prop_assert_eq!(value_to_brine(&value), Some(b.clone()));
        let boxed_value = box_value(&value, &WireRefs).unwrap();
        prop_assert_eq!(&boxed_value, &boxed(1, b));
        prop_assert_eq!(unbox(reload(&boxed_value), &WireRefs).unwrap(), value);
    }

    #[test]
    fn values_with_references_round_trip_through_bytes(value in value_with_refs()) {
        let boxed_value = box_value(&value, &WireRefs).unwrap();
        let label = boxed_value.as_tuple().unwrap()[0].as_i64().unwrap();
        prop_assert_eq!(label == 1, !value.has_refs());
        prop_assert_eq!(unbox(reload(&boxed_value), &WireRefs).unwrap(), value.clone());
        if let Value::Tuple(items) = &value {
            let request = encode_request(Handle::Call, items, &WireRefs).unwrap();
            prop_assert_eq!(decode_request(reload(&request), &WireRefs).unwrap(), (Handle::Call, items.clone()));
        }
    }

    #[test]
    fn big_int_ids_beyond_i64_round_trip(c in (1u64 << 63).., i in any::<u64>()) {
        let value = wire_ref(RefLabel::Remote, "m.T", c, i);
        prop_assert_eq!(unbox(reload(&box_value(&value, &WireRefs).unwrap()), &WireRefs).unwrap(), value);
    }

    #[test]
    fn exception_args_round_trip(args in proptest::collection::vec(brine(), 0..4), name in "[A-Z][a-z]{1,8}Error", tb in ".{0,20}") {
        let mut error = RemoteError::new(format!("builtins.{name}"), "m").with_traceback(tb);
        error.args = args.into_iter().map(brine_to_value).collect();
        if error.args.is_empty() { error.message.clear(); }
        let decoded = decode_exception(reload(&encode_exception(&error))).unwrap();
        prop_assert_eq!(&decoded.kind, &error.kind);
        prop_assert_eq!(&decoded.args, &error.args);
        prop_assert_eq!(&decoded.message, &python_str_of_exception(&error.kind, &error.args));
        prop_assert!(!decoded.traceback.is_empty());
        prop_assert!(decoded.traceback.ends_with(&decoded.message));
    }

    #[test]
    fn arbitrary_trees_never_panic(b in brine(), big_text in big_int_text()) {
        let _ = unbox(b.clone(), &WireRefs);
        let _ = unbox(t([int(3), b.clone()]), &WireRefs);
        let _ = unbox(t([int(2), b.clone()]), &WireRefs);
        let _ = decode_request(b.clone(), &WireRefs);
        let _ = decode_request(t([int(7), b.clone()]), &WireRefs);
        let _ = decode_exception(b.clone());
        let _ = id_pack_from_brine(&t([s("m.T"), big(&big_text), b]));
    }
}
