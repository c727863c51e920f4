//! Values: the service's attributes, `add` and `echo` of every brine type as Rust values.

use std::collections::BTreeMap;

use netref::{kinds, prelude::*, BigInt, Ellipsis, FrozenSet, NotImplemented, Slice};

use crate::Checks;

/// A big int from its decimal text.
fn big(text: &str) -> Value {
    Value::BigInt(BigInt::parse(text).expect("canonical decimal text"))
}

pub(crate) async fn run(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    attributes(root, c).await?;
    add(root, c).await?;
    echo(root, c).await
}

async fn attributes(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    let contract: String = root.getattr("contract").await?;
    c.check_seen("contract is \"interop-1\"", contract == "interop-1", &contract);
    let answer: i64 = root.getattr("answer").await?;
    c.check_seen("answer is 42", answer == 42, answer);
    let exposed: i64 = root.getattr("exposed_answer").await?;
    c.check_seen("exposed_answer is 42", exposed == 42, exposed);
    c.check_raises("writing answer raises AttributeError", root.setattr("answer", 1).await, kinds::ATTRIBUTE_ERROR);
    c.check_raises("deleting answer raises AttributeError", root.delattr("answer").await, kinds::ATTRIBUTE_ERROR);
    c.check_raises(
        "an unknown name raises AttributeError",
        root.getattr::<Value>("nope").await,
        kinds::ATTRIBUTE_ERROR,
    );
    let first: i64 = root.getattr("counter").await?;
    let second: i64 = root.getattr("counter").await?;
    let third: i64 = root.getattr("counter").await?;
    c.check_seen("counter is strictly increasing", first < second && second < third, (first, second, third));
    Ok(())
}

async fn add(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    let sum: i64 = root.call_method("add", (1, 2)).await?;
    c.check_seen("add(1, 2) == 3", sum == 3, sum);
    // Ints past i64 are exact: 2**100 + 2**100, and i64::MAX + 1.
    let two_100 = big("1267650600228229401496703205376");
    let sum: Value = root.call_method("add", (two_100.clone(), two_100)).await?;
    c.check_seen("add(2**100, 2**100) == 2**101 exactly", sum == big("2535301200456458802993406410752"), &sum);
    let sum: Value = root.call_method("add", (i64::MAX, 1)).await?;
    c.check_seen("add(i64::MAX, 1) is exact (no wrapping)", sum == big("9223372036854775808"), &sum);
    let sum: f64 = root.call_method("add", (1.5, 2.25)).await?;
    c.check_seen("add(1.5, 2.25) == 3.75", sum == 3.75, sum);
    let sum: Value = root.call_method("add", (1, 0.5)).await?;
    c.check_seen("add(1, 0.5) is the float 1.5", sum == Value::Float(1.5), &sum);
    let s: String = root.call_method("add", ("ab", "cd")).await?;
    c.check_seen("add(\"ab\", \"cd\") == \"abcd\"", s == "abcd", &s);
    // Keyword arguments travel as RPyC's (name, value) pairs.
    let kwargs = BTreeMap::from([("a", big("1180591620717411303424")), ("b", Value::Int(1))]);
    let sum: Value = root.call_method_kw("add", (), kwargs).await?;
    c.check_seen("add(a=2**70, b=1) with keyword arguments", sum == big("1180591620717411303425"), &sum);
    c.check_raises(
        "add(1, \"a\") raises TypeError",
        root.call_method::<Value>("add", (1, "a")).await,
        kinds::TYPE_ERROR,
    );
    Ok(())
}

async fn echo(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    // Every brine type; `Value`'s equality tells the variants apart (a bool is not an int, str
    // is not bytes) and compares floats by their bits (-0.0 and NaN included).
    let digits_846 = format!("-{}", "9".repeat(846));
    let values: Vec<(&str, Value)> = vec![
        ("None", Value::None),
        ("True", Value::Bool(true)),
        ("False", Value::Bool(false)),
        ("0", Value::Int(0)),
        ("-1", Value::Int(-1)),
        ("an immediate int (159)", Value::Int(159)),
        ("i64::MIN", Value::Int(i64::MIN)),
        ("2**64", big("18446744073709551616")),
        ("an 846-digit int", big(&digits_846)),
        ("1.5", Value::Float(1.5)),
        ("-0.0", Value::Float(-0.0)),
        ("nan", Value::Float(f64::NAN)),
        ("complex(1, -2)", Value::Complex(1.0, -2.0)),
        ("str \"hé\"", Value::Str("hé".into())),
        ("empty str", Value::Str(String::new())),
        ("bytes b\"\\x00\\xff\"", Value::Bytes(vec![0, 255].into())),
        ("empty bytes", Value::Bytes(Default::default())),
        (
            "nested tuple (1, (2, 3))",
            Value::Tuple(vec![Value::Int(1), Value::Tuple(vec![Value::Int(2), Value::Int(3)])]),
        ),
        ("empty tuple", Value::Tuple(Vec::new())),
        ("tuple of 300 items", Value::Tuple((0..300).map(Value::Int).collect())),
        ("frozenset({4})", Value::FrozenSet(vec![Value::Int(4)])),
        ("empty frozenset", Value::FrozenSet(Vec::new())),
        ("slice(1, 2, 3)", Value::Slice(Box::new([Value::Int(1), Value::Int(2), Value::Int(3)]))),
        ("slice(None, 5, None)", Value::Slice(Box::new([Value::None, Value::Int(5), Value::None]))),
        ("Ellipsis", Value::Ellipsis),
        ("NotImplemented", Value::NotImplemented),
        // Over 3000 bytes: both sides send it zlib-compressed.
        ("a 4000-char str (compressed frames)", Value::Str("y".repeat(4000))),
        (
            "64 KiB of bytes (compressed frames)",
            Value::Bytes((0..65_536u32).map(|i| (i * 7 % 251) as u8).collect::<Vec<_>>().into()),
        ),
    ];
    for (what, value) in values {
        let back: Value = root.call_method("echo", (value.clone(),)).await?;
        c.check_seen(
            &format!("echo {what}"),
            back == value,
            if back.kind() == value.kind() { "same kind, other value" } else { back.kind() },
        );
    }

    // Typed Rust values for Python's own types go as those types and come back as them.
    let back: Value = root.call_method("echo", (FrozenSet(vec![4i64]),)).await?;
    c.check_seen("echo FrozenSet(vec![4]) is a frozenset", back == Value::FrozenSet(vec![Value::Int(4)]), &back);
    let slice = Slice { start: Some(1), stop: None, step: Some(-1) };
    let back: Slice = root.call_method("echo", (slice,)).await?;
    c.check_seen("echo Slice { 1, None, -1 } reads back as a Slice", back == slice, back);
    let back: Value = root.call_method("echo", (Ellipsis,)).await?;
    c.check_seen("echo netref::Ellipsis is Ellipsis", matches!(back, Value::Ellipsis), &back);
    let back: Value = root.call_method("echo", (NotImplemented,)).await?;
    c.check_seen("echo netref::NotImplemented is NotImplemented", matches!(back, Value::NotImplemented), &back);
    let back: (bool, i64, String, Vec<u8>) =
        root.call_method("echo", ((true, 7, "x", serde_bytes::ByteBuf::from(vec![1u8, 2])),)).await?;
    c.check_seen("echo a typed tuple (bool, i64, String, bytes)", back == (true, 7, "x".into(), vec![1, 2]), &back);

    // References: this side's object comes back as itself (RPyC's LOCAL_REF), the server's own
    // root as the same netref, inside a tuple too.
    let mine = Object::builder("builtins.object").build();
    let back: NetRef = root.call_method("echo", (NetRef::from(mine.clone()),)).await?;
    c.check("echo a client object: it comes back as itself", back.as_local().is_some_and(|o| o.same(&mine)));
    let back: (NetRef, i64, NetRef) =
        root.call_method("echo", ((NetRef::from(mine.clone()), 5, root.clone()),)).await?;
    let same = back.0.as_local().is_some_and(|o| o.same(&mine)) && back.1 == 5 && back.2 == *root;
    c.check("echo (client object, 5, root): each comes back as itself", same);
    Ok(())
}
