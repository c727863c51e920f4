//! Guards the serde bridge: `from_value(to_value(x)) == x` for nested serde types, lossless
//! `Value` round trips (references, tuples vs lists, bytes, big ints, complex numbers, map order),
//! references inside user structs, typed error messages, no leaked references, and bytes that
//! travel as one byte string.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use netref::{
    dev::{deserialize_ref, serialize_ref, to_value},
    from_value, BigInt, ConvertError, Value,
};
use proptest::prelude::*;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_bytes::ByteBuf;

/// A stand-in for `NetRef`: travels by reference.
#[derive(Clone, Debug, PartialEq)]
struct TestRef {
    id: u32,
}

impl Serialize for TestRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_ref(self, s)
    }
}

impl<'de> Deserialize<'de> for TestRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_ref(d)
    }
}

/// Another reference type, to provoke type mismatches.
#[derive(Clone, Debug, PartialEq)]
struct OtherRef;

impl Serialize for OtherRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_ref(self, s)
    }
}

impl<'de> Deserialize<'de> for OtherRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_ref(d)
    }
}

type V = Value<TestRef>;

fn round_trip<T: Serialize + serde::de::DeserializeOwned>(x: &T) -> Result<T, ConvertError> {
    let v: V = to_value(x)?;
    from_value(v)
}

// ---------------------------------------------------------------------------------------------
// Typed round trips

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Marker;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Meters(f32);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Pair(u8, i64);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    Other,
    Newtype(i32),
    MaybeNewtype(Option<u16>),
    Tuple(u8, String),
    Struct { x: f64, name: String },
    Nested(Box<Shape>),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    big: i128,
    ubig: u128,
    small: i8,
    flag: bool,
    ch: char,
    name: String,
    maybe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    skipped: Option<u8>,
    list: Vec<Option<(u8, String)>>,
    map: HashMap<String, Vec<i32>>,
    keyed: HashMap<(u8, bool), String>,
    btree: BTreeMap<u32, Shape>,
    tuple: (i16, bool, String),
    bytes: ByteBuf,
    shared: Bytes,
    shapes: Vec<Shape>,
    unit: (),
    marker: Marker,
    meters: Meters,
    pair: Pair,
    ratio: f64,
}

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("NaN never equals itself", |x| !x.is_nan())
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        Just(Shape::Unit),
        Just(Shape::Other),
        any::<i32>().prop_map(Shape::Newtype),
        any::<Option<u16>>().prop_map(Shape::MaybeNewtype),
        (any::<u8>(), ".{0,8}").prop_map(|(a, b)| Shape::Tuple(a, b)),
        (finite(), "[a-z]{0,8}").prop_map(|(x, name)| Shape::Struct { x, name }),
    ];
    leaf.prop_recursive(3, 8, 1, |inner| inner.prop_map(|s| Shape::Nested(Box::new(s))))
}

prop_compose! {
    fn record()(
        id in any::<u64>(),
        big in any::<i128>(),
        ubig in any::<u128>(),
        small in any::<i8>(),
        flag in any::<bool>(),
        ch in any::<char>(),
        name in ".{0,16}",
        maybe in proptest::option::of(".{0,8}"),
        skipped in any::<Option<u8>>(),
        list in proptest::collection::vec(proptest::option::of((any::<u8>(), ".{0,6}")), 0..6),
        map in proptest::collection::hash_map("[a-z]{0,6}", proptest::collection::vec(any::<i32>(), 0..4), 0..4),
        keyed in proptest::collection::hash_map((any::<u8>(), any::<bool>()), ".{0,4}", 0..4),
        btree in proptest::collection::btree_map(any::<u32>(), shape(), 0..4),
        tuple in (any::<i16>(), any::<bool>(), ".{0,6}"),
        bytes in proptest::collection::vec(any::<u8>(), 0..64),
        shared in proptest::collection::vec(any::<u8>(), 0..64),
        shapes in proptest::collection::vec(shape(), 0..4),
        meters in any::<f32>().prop_filter("not NaN", |x| !x.is_nan()),
        pair in (any::<u8>(), any::<i64>()),
        ratio in finite(),
    ) -> Record {
        Record {
            id, big, ubig, small, flag, ch, name, maybe, skipped, list, map, keyed, btree, tuple,
            bytes: ByteBuf::from(bytes),
            shared: Bytes::from(shared),
            shapes,
            unit: (),
            marker: Marker,
            meters: Meters(meters),
            pair: Pair(pair.0, pair.1),
            ratio,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Values with references

fn big_int() -> impl Strategy<Value = BigInt> {
    prop_oneof![
        any::<i128>().prop_map(BigInt::from),
        any::<u128>().prop_map(BigInt::from),
        "-?[1-9][0-9]{0,60}".prop_map(|s| BigInt::parse(&s).unwrap()),
    ]
}

fn value() -> BoxedStrategy<V> {
    let leaf = prop_oneof![
        Just(Value::None),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        big_int().prop_map(Value::BigInt),
        any::<f64>().prop_map(Value::Float),
        (any::<f64>(), any::<f64>()).prop_map(|(re, im)| Value::Complex(re, im)),
        ".{0,12}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..32).prop_map(|b| Value::Bytes(Bytes::from(b))),
        any::<u32>().prop_map(|id| Value::Ref(TestRef { id })),
        Just(Value::Ellipsis),
        Just(Value::NotImplemented),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Tuple),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            proptest::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
            // (A `Value` may hold references anywhere; it is the native wire that refuses them
            // inside a frozenset or slice.)
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::FrozenSet),
            (inner.clone(), inner.clone(), inner).prop_map(|(a, b, c)| Value::Slice(Box::new([a, b, c]))),
        ]
    })
    .boxed()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct WithRefs {
    target: TestRef,
    maybe: Option<TestRef>,
    many: Vec<TestRef>,
    by_name: BTreeMap<String, TestRef>,
    payload: V,
    values: Vec<V>,
    keyed: Vec<(V, Option<V>)>,
    shape: Shape,
}

prop_compose! {
    fn with_refs()(
        target in any::<u32>(),
        maybe in any::<Option<u32>>(),
        many in proptest::collection::vec(any::<u32>(), 0..4),
        by_name in proptest::collection::btree_map("[a-z]{0,4}", any::<u32>(), 0..4),
        payload in value(),
        values in proptest::collection::vec(value(), 0..3),
        // `Some(Value::None)` reads back as `None`: keep the option's content non-None.
        keyed in proptest::collection::vec(
            (value(), proptest::option::of(value().prop_filter("not None", |v| *v != Value::None))),
            0..3,
        ),
        shape in shape(),
    ) -> WithRefs {
        WithRefs {
            target: TestRef { id: target },
            maybe: maybe.map(|id| TestRef { id }),
            many: many.into_iter().map(|id| TestRef { id }).collect(),
            by_name: by_name.into_iter().map(|(k, id)| (k, TestRef { id })).collect(),
            payload,
            values,
            keyed,
            shape,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn typed_values_round_trip(r in record()) {
        prop_assert_eq!(round_trip(&r)?, r);
    }

    #[test]
    fn nested_collections_round_trip(x in proptest::collection::vec(proptest::option::of((any::<u8>(), ".{0,8}")), 0..8)) {
        prop_assert_eq!(round_trip(&x)?, x);
    }

    #[test]
    fn integers_round_trip_at_every_width(a in any::<u64>(), b in any::<i128>(), c in any::<u128>(), d in any::<i64>()) {
        prop_assert_eq!(round_trip(&(a, b, c, d))?, (a, b, c, d));
        // And the shape: `Int` when it fits in i64, `BigInt` otherwise.
        let v: V = to_value(&a)?;
        prop_assert_eq!(matches!(v, Value::Int(_)), i64::try_from(a).is_ok());
        let v: V = to_value(&b)?;
        prop_assert_eq!(matches!(v, Value::Int(_)), i64::try_from(b).is_ok());
    }

    #[test]
    fn enums_round_trip(s in proptest::collection::vec(shape(), 0..6)) {
        prop_assert_eq!(round_trip(&s)?, s);
    }

    #[test]
    fn python_values_round_trip_typed(
        members in proptest::collection::vec((any::<i32>(), ".{0,6}"), 0..8),
        bounds in (any::<Option<i64>>(), any::<Option<i64>>(), any::<Option<i64>>()),
    ) {
        let set = netref::FrozenSet(members.clone());
        let v: V = to_value(&set)?;
        prop_assert_eq!(v.kind(), "frozenset");
        prop_assert_eq!(from_value::<netref::FrozenSet<(i32, String)>>(v.clone())?, set);
        // As any sequence or set.
        prop_assert_eq!(from_value::<Vec<(i32, String)>>(v.clone())?, members.clone());
        prop_assert_eq!(
            from_value::<std::collections::BTreeSet<(i32, String)>>(v.clone())?,
            members.iter().cloned().collect::<std::collections::BTreeSet<_>>()
        );
        prop_assert_eq!(
            from_value::<std::collections::HashSet<(i32, String)>>(v)?,
            members.iter().cloned().collect::<std::collections::HashSet<_>>()
        );
        let slice = netref::Slice { start: bounds.0, stop: bounds.1, step: bounds.2 };
        let v: V = to_value(&slice)?;
        prop_assert_eq!(v.kind(), "slice");
        prop_assert_eq!(round_trip(&slice)?, slice);
        prop_assert_eq!(from_value::<(Option<i64>, Option<i64>, Option<i64>)>(v)?, bounds);
    }

    #[test]
    fn values_convert_to_themselves(v in value()) {
        prop_assert_eq!(to_value::<TestRef, _>(&v)?, v.clone());
        prop_assert_eq!(from_value::<V>(v.clone())?, v);
    }

    #[test]
    fn values_nested_in_serde_types_stay_lossless(v in value(), n in any::<u8>()) {
        let nested = (n, vec![v.clone()], Some(v.clone()));
        let converted: V = to_value(&nested)?;
        prop_assert_eq!(
            &converted,
            &Value::Tuple(vec![Value::Int(n.into()), Value::List(vec![v.clone()]), v.clone()])
        );
        let back: (u8, Vec<V>, Option<V>) = from_value(converted)?;
        // `Some(Value::None)` is indistinguishable from `None`.
        let expected_opt = if v == Value::None { None } else { Some(v.clone()) };
        prop_assert_eq!(back, (n, vec![v], expected_opt));
    }

    #[test]
    fn references_round_trip_inside_structs(w in with_refs()) {
        let v: V = to_value(&w)?;
        prop_assert!(v.has_refs());
        // The nested `Value` field arrives intact inside the converted struct.
        let Value::Map(pairs) = &v else { panic!("a struct converts to a map") };
        let payload = pairs.iter().find(|(k, _)| *k == Value::from("payload")).map(|(_, p)| p);
        prop_assert_eq!(payload, Some(&w.payload));
        prop_assert_eq!(from_value::<WithRefs>(v)?, w);
    }
}

// ---------------------------------------------------------------------------------------------
// Fixed cases

#[test]
fn a_mebibyte_of_bytes_is_one_byte_string() {
    let buf = ByteBuf::from(vec![0xA5u8; 1 << 20]);
    let v: V = to_value(&buf).unwrap();
    match &v {
        Value::Bytes(b) => assert_eq!(b.len(), 1 << 20),
        other => panic!("expected one Bytes, got {}", other.kind()),
    }
    let shared: V = to_value(&Bytes::from(vec![1u8; 1 << 20])).unwrap();
    assert!(matches!(&shared, Value::Bytes(b) if b.len() == 1 << 20));
    let back: ByteBuf = from_value(v).unwrap();
    assert_eq!(back, buf);
}

#[test]
fn tuples_and_lists_stay_apart() {
    let v: V = to_value(&((1u8, 2u8), vec![1u8, 2u8])).unwrap();
    let items = vec![Value::Int(1), Value::Int(2)];
    assert_eq!(v, Value::Tuple(vec![Value::Tuple(items.clone()), Value::List(items)]));
}

#[test]
fn map_order_is_kept() {
    let v: V = Value::Map(vec![(Value::from("b"), Value::Int(1)), (Value::from("a"), Value::Int(2))]);
    assert_eq!(to_value::<TestRef, _>(&v).unwrap(), v);
    assert_eq!(from_value::<V>(v.clone()).unwrap(), v);
}

#[test]
fn errors_name_expected_and_found() {
    let msg = |e: ConvertError| e.to_string();
    assert_eq!(msg(from_value::<i64>(V::from("x")).unwrap_err()), "invalid type: string \"x\", expected i64");
    assert_eq!(msg(from_value::<String>(V::Int(7)).unwrap_err()), "invalid type: integer `7`, expected a string");
    assert_eq!(
        msg(from_value::<i64>(V::Ref(TestRef { id: 1 })).unwrap_err()),
        "invalid type: object reference, expected i64"
    );
    assert_eq!(
        msg(from_value::<TestRef>(V::from("x")).unwrap_err()),
        "invalid type: string \"x\", expected an object reference"
    );
    assert_eq!(msg(from_value::<Shape>(V::List(vec![])).unwrap_err()), "invalid type: list, expected enum Shape");
    assert_eq!(
        msg(from_value::<Marker>(V::Int(1)).unwrap_err()),
        "invalid type: integer `1`, expected unit struct Marker"
    );
    let e = msg(from_value::<Record>(V::Map(vec![])).unwrap_err());
    assert!(e.contains("missing field"), "{e}");

    // References of the wrong type are named both ways.
    let e = msg(to_value::<OtherRef, _>(&TestRef { id: 1 }).unwrap_err());
    assert!(e.contains("TestRef") && e.contains("OtherRef"), "{e}");
    let e = msg(from_value::<OtherRef>(V::Ref(TestRef { id: 1 })).unwrap_err());
    assert!(e.contains("TestRef") && e.contains("OtherRef"), "{e}");
}

/// A reference whose clones are counted: a parked clone that is never taken would show.
#[derive(Clone, Debug)]
struct Tracked(#[allow(dead_code)] Arc<()>); // held only to be counted

impl Serialize for Tracked {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_ref(self, s)
    }
}

impl<'de> Deserialize<'de> for Tracked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        deserialize_ref(d)
    }
}

#[test]
fn references_never_leak_on_error_paths() {
    let life = Arc::new(());
    let tracked = Tracked(life.clone());

    // Serializing into a Value with another reference type fails and drops the parked clone.
    assert!(to_value::<OtherRef, _>(&tracked).is_err());
    assert_eq!(Arc::strong_count(&life), 2);

    // A struct that fails after reading a reference drops it.
    let v: Value<Tracked> = Value::Tuple(vec![Value::Ref(tracked.clone()), Value::from("not an int")]);
    assert!(from_value::<(Tracked, i64)>(v).is_err());
    assert_eq!(Arc::strong_count(&life), 2);

    // A reference of the wrong type is dropped.
    assert!(from_value::<OtherRef>(Value::Ref(tracked.clone())).is_err());
    assert_eq!(Arc::strong_count(&life), 2);

    // Asking for data where a reference is drops it.
    assert!(from_value::<Vec<String>>(Value::List(vec![Value::Ref(tracked.clone())])).is_err());
    assert_eq!(Arc::strong_count(&life), 2);

    // A Value<Tracked> read as a Value<TestRef> fails on the reference and drops it.
    let v: Value<Tracked> = Value::List(vec![Value::Int(1), Value::Ref(tracked.clone())]);
    assert!(from_value::<V>(v).is_err());
    assert_eq!(Arc::strong_count(&life), 2);

    // And the happy path hands over exactly the clones it was given.
    let v: Value<Tracked> = to_value(&vec![tracked.clone(), tracked.clone()]).unwrap();
    assert_eq!(Arc::strong_count(&life), 4);
    drop(v);
    assert_eq!(Arc::strong_count(&life), 2);
}

#[test]
fn a_value_with_another_reference_type_converts_its_plain_data() {
    // No references inside: the contents convert, Tuple/List and BigInt/Complex included.
    let v: Value<OtherRef> = Value::Tuple(vec![
        Value::List(vec![Value::Int(1)]),
        Value::BigInt(BigInt::from(u128::MAX)),
        Value::Complex(1.0, 2.0),
    ]);
    let expected: V = Value::Tuple(vec![
        Value::List(vec![Value::Int(1)]),
        Value::BigInt(BigInt::from(u128::MAX)),
        Value::Complex(1.0, 2.0),
    ]);
    assert_eq!(to_value::<TestRef, _>(&v).unwrap(), expected);
}

#[test]
fn python_values_convert_as_documented() {
    use netref::{Ellipsis, FrozenSet, NotImplemented, Slice};
    // Produced by the typed newtypes, also nested in other types.
    let v: V = to_value(&(
        FrozenSet(vec![2u8, 1]),
        Slice { start: None, stop: Some(3), step: None },
        Ellipsis,
        NotImplemented,
    ))
    .unwrap();
    assert_eq!(
        v,
        Value::Tuple(vec![
            Value::FrozenSet(vec![Value::Int(2), Value::Int(1)]),
            Value::Slice(Box::new([Value::None, Value::Int(3), Value::None])),
            Value::Ellipsis,
            Value::NotImplemented,
        ])
    );
    assert_eq!(
        from_value::<(FrozenSet<u8>, Slice, Ellipsis, NotImplemented)>(v).unwrap(),
        (FrozenSet(vec![2, 1]), Slice { start: None, stop: Some(3), step: None }, Ellipsis, NotImplemented)
    );
    // A slice of any values.
    let s = Slice { start: "a".to_owned(), stop: "b".to_owned(), step: "c".to_owned() };
    assert_eq!(round_trip(&s).unwrap(), s);
    // Ellipsis and NotImplemented read as unit.
    from_value::<()>(V::Ellipsis).unwrap();
    from_value::<()>(V::NotImplemented).unwrap();
    // The typed newtypes read only from their own variant.
    let err = |e: ConvertError| e.to_string();
    assert_eq!(
        err(from_value::<FrozenSet<u8>>(V::List(vec![])).unwrap_err()),
        "invalid type: list, expected a frozenset"
    );
    assert_eq!(
        err(from_value::<Slice>(V::Tuple(vec![V::None, V::None, V::None])).unwrap_err()),
        "invalid type: tuple, expected a slice"
    );
    assert_eq!(err(from_value::<Ellipsis>(V::None).unwrap_err()), "invalid type: unit value, expected Ellipsis");
    assert_eq!(
        err(from_value::<NotImplemented>(V::Ellipsis).unwrap_err()),
        "invalid type: Ellipsis, expected NotImplemented"
    );
    assert_eq!(err(from_value::<i64>(V::FrozenSet(vec![])).unwrap_err()), "invalid type: sequence, expected i64");
    // Kinds.
    let kinds: Vec<&str> =
        [V::FrozenSet(vec![]), V::Slice(Box::new([V::None, V::None, V::None])), V::Ellipsis, V::NotImplemented]
            .iter()
            .map(Value::kind)
            .collect();
    assert_eq!(kinds, ["frozenset", "slice", "ellipsis", "notimplemented"]);
    // References inside are found and mapped.
    let with_ref: V = Value::Slice(Box::new([V::None, V::Ref(TestRef { id: 1 }), V::None]));
    assert!(with_ref.has_refs());
    assert!(V::FrozenSet(vec![V::Ref(TestRef { id: 2 })]).has_refs());
    assert!(!V::FrozenSet(vec![V::Int(1)]).has_refs());
    let mapped: Value<u32> = with_ref.try_map_refs(&mut |r| Ok::<_, ()>(r.id)).unwrap();
    assert_eq!(mapped, Value::Slice(Box::new([Value::None, Value::Ref(1), Value::None])));
    // Equality is order-sensitive.
    assert_ne!(V::FrozenSet(vec![V::Int(1), V::Int(2)]), V::FrozenSet(vec![V::Int(2), V::Int(1)]));
    assert_ne!(V::FrozenSet(vec![]), V::List(vec![]));
    assert_ne!(V::Ellipsis, V::NotImplemented);
}

#[test]
fn other_serializers_see_the_plain_shape_of_python_values() {
    use netref::{Ellipsis, FrozenSet, NotImplemented, Slice};
    let set = postcard::to_allocvec(&FrozenSet(vec![1u8, 2])).unwrap();
    assert_eq!(set, postcard::to_allocvec(&vec![1u8, 2]).unwrap());
    assert_eq!(postcard::from_bytes::<FrozenSet<u8>>(&set).unwrap(), FrozenSet(vec![1, 2]));
    let slice = Slice { start: Some(1i64), stop: None, step: Some(2) };
    let bytes = postcard::to_allocvec(&slice).unwrap();
    assert_eq!(bytes, postcard::to_allocvec(&(Some(1i64), None::<i64>, Some(2i64))).unwrap());
    assert_eq!(postcard::from_bytes::<Slice>(&bytes).unwrap(), slice);
    assert!(postcard::to_allocvec(&(Ellipsis, NotImplemented)).unwrap().is_empty());
    assert_eq!(postcard::from_bytes::<(Ellipsis, NotImplemented)>(&[]).unwrap(), (Ellipsis, NotImplemented));
}

#[test]
fn python_values_with_another_reference_type_convert_losslessly() {
    let v: Value<OtherRef> = Value::List(vec![
        Value::FrozenSet(vec![Value::Int(1)]),
        Value::Slice(Box::new([Value::None, Value::Str("x".into()), Value::None])),
        Value::Ellipsis,
        Value::NotImplemented,
    ]);
    let expected: V = Value::List(vec![
        Value::FrozenSet(vec![Value::Int(1)]),
        Value::Slice(Box::new([Value::None, Value::Str("x".into()), Value::None])),
        Value::Ellipsis,
        Value::NotImplemented,
    ]);
    assert_eq!(to_value::<TestRef, _>(&v).unwrap(), expected);
}
