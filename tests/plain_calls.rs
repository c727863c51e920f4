//! Guards the call path's short cut end to end: a method call with plain arguments (encoded at
//! the call site, read without a `Value` tree on the other side) gives exactly what the general
//! route gives — results, remote errors, refusals — and a call in the short cut's shape that
//! the short cut cannot serve (a target never exported, a call before `Hello`) fails as the
//! general route fails it. References passed as arguments or returned as a reply's value are
//! read there too, and counted once.

mod common;

use std::{sync::Arc, time::Duration};

use common::{calculator, RawPeer};
use netref::{prelude::*, Frame, Handle, IdPack, ProtocolError, RefLabel, WireRef};

async fn both<T>(
    root: &NetRef,
    method: &str,
    plain: impl serde::Serialize,
    values: Vec<Value>,
) -> [Result<T, String>; 2]
where
    T: serde::de::DeserializeOwned,
{
    let short = root.call_method::<T>(method, plain).await.map_err(|e| e.to_string());
    // A `Value` keeps the caller off the short cut; a `Value::Tuple` as the arguments is
    // sent as its items.
    let long = root.call_method::<T>(method, Value::Tuple(values)).await.map_err(|e| e.to_string());
    [short, long]
}

async fn check_routes(t: common::Transport) {
    let (_server, client) = common::connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let root = client.root().await.unwrap();

    let [a, b] = both::<i64>(&root, "add", (1, 2), vec![Value::Int(1), Value::Int(2)]).await;
    assert_eq!(a, Ok(3));
    assert_eq!(a, b);
    let [a, b] = both::<String>(&root, "concat", ("ab", "cd"), vec![Value::from("ab"), Value::from("cd")]).await;
    assert_eq!(a, Ok("abcd".to_owned()));
    assert_eq!(a, b);
    // Remote errors, argument errors, a panic, a missing or refused member: the same text.
    let [a, b] = both::<i64>(&root, "div", (1, 0), vec![Value::Int(1), Value::Int(0)]).await;
    assert!(a.as_ref().unwrap_err().contains("division by zero"), "{a:?}");
    assert_eq!(a, b);
    let [a, b] = both::<i64>(&root, "add", (1,), vec![Value::Int(1)]).await;
    assert!(a.as_ref().unwrap_err().contains("takes 2 arguments"), "{a:?}");
    assert_eq!(a, b);
    let [a, b] = both::<i64>(&root, "add", ("x", 2), vec![Value::from("x"), Value::Int(2)]).await;
    assert!(a.as_ref().unwrap_err().contains("argument 1"), "{a:?}");
    assert_eq!(a, b);
    let [a, b] = both::<i64>(&root, "boom", (), vec![]).await;
    assert!(a.as_ref().unwrap_err().contains("exploded"), "{a:?}");
    assert_eq!(a, b);
    let [a, b] = both::<i64>(&root, "nope", (), vec![]).await;
    assert!(a.as_ref().unwrap_err().contains("nope"), "{a:?}");
    assert_eq!(a, b);
    let [a, b] = both::<i64>(&root, "__dict__", (), vec![]).await;
    assert!(a.as_ref().unwrap_err().contains("AccessPolicy::safe_attrs"), "{a:?}");
    assert_eq!(a, b);
    // A `Value` argument goes the general route and still arrives whole.
    let echoed: Value = root.call_method("echo", (Value::<NetRef>::Int(7),)).await.unwrap();
    assert_eq!(echoed, Value::Int(7));
    // One-way calls take the short cut too, in order with calls.
    root.notify_method("add", (1, 2)).unwrap();
    assert_eq!(root.call_method::<i64>("add", (2, 2)).await.unwrap(), 4);
}

over_both_transports!(check_routes);

/// `NetRef::call` (CALL: a callback, a function) takes the short cut too, with the same results
/// and error texts as the general route.
async fn check_callable_routes(t: common::Transport) {
    let root = Object::builder("demo.Maker")
        .method("times", || NetRef::from(Object::function(|a: i64, b: i64| a * b)))
        .method("failing", || NetRef::from(Object::function(|| -> i64 { panic!("the function exploded") })))
        .method("inert", || NetRef::from(Object::builder("demo.Inert").build()))
        .build();
    let (_server, client) = common::connect_default(t, Service::shared(root)).await;
    let root = client.root().await.unwrap();
    async fn both(f: &NetRef, plain: impl serde::Serialize, values: Vec<Value>) -> [Result<i64, String>; 2] {
        let short = f.call::<i64>(plain).await.map_err(|e| e.to_string());
        let long = f.call::<i64>(Value::Tuple(values)).await.map_err(|e| e.to_string());
        [short, long]
    }
    let times: NetRef = root.call_method("times", ()).await.unwrap();
    let [a, b] = both(&times, (6, 7), vec![Value::Int(6), Value::Int(7)]).await;
    assert_eq!(a, Ok(42));
    assert_eq!(a, b);
    let [a, b] = both(&times, (6,), vec![Value::Int(6)]).await;
    assert!(a.as_ref().unwrap_err().contains("takes 2 arguments"), "{a:?}");
    assert_eq!(a, b);
    let failing: NetRef = root.call_method("failing", ()).await.unwrap();
    let [a, b] = both(&failing, (), vec![]).await;
    assert!(a.as_ref().unwrap_err().contains("exploded"), "{a:?}");
    assert_eq!(a, b);
    let inert: NetRef = root.call_method("inert", ()).await.unwrap();
    let [a, b] = both(&inert, (), vec![]).await;
    assert!(a.as_ref().unwrap_err().contains("not callable"), "{a:?}");
    assert_eq!(a, b);
}

over_both_transports!(check_callable_routes);

/// A call in the short cut's shape, as `call_method` writes it, on `target`.
fn plain_call(seq: u64, target: IdPack) -> Frame<WireRef> {
    Frame::Request {
        seq,
        handle: Handle::CallAttr,
        args: Value::Tuple(vec![
            Value::Ref(WireRef { label: RefLabel::Local, id: target }),
            Value::from("add"),
            Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
            Value::None,
        ]),
        deadline: Some(Duration::from_secs(30)),
    }
}

#[actix_rt::test]
async fn a_plain_call_on_an_object_never_exported_closes_with_a_bad_reference() {
    let (peer, mut raw) = RawPeer::start(Service::shared(calculator(Arc::default())), Config::default());
    raw.handshake().await;
    raw.send(plain_call(0, IdPack { type_name: "demo.Calculator".into(), class_id: 1, instance_id: 999_999 })).await;
    raw.expect_bad_reference(&peer, 999_999).await;
}

#[actix_rt::test]
async fn a_plain_call_before_hello_is_refused() {
    let (peer, mut raw) = RawPeer::start(Service::shared(calculator(Arc::default())), Config::default());
    let root = raw.recv_hello().await.expect("the root is announced");
    raw.send(plain_call(0, root)).await;
    let reason = raw.expect_closed(&peer).await;
    assert!(matches!(reason, netref::Error::Protocol(ProtocolError::Unexpected(_))), "{reason}");
}

#[actix_rt::test]
async fn a_plain_call_on_the_root_is_answered() {
    let (_peer, mut raw) = RawPeer::start(Service::shared(calculator(Arc::default())), Config::default());
    let root = raw.handshake().await.expect("the root is announced");
    raw.send(plain_call(5, root)).await;
    match raw.recv_skipping_releases().await {
        Frame::Reply { seq, value } => assert_eq!((seq, value), (5, Value::Int(3))),
        other => panic!("expected the reply, got {other:?}"),
    }
}

/// An object whose `kinds` names the types of the two objects it is given, and drops them.
fn kinds_service() -> Service {
    Service::shared(
        Object::builder("demo.Root")
            .method("kinds", |a: NetRef, b: NetRef, x: i64| format!("{} {} {x}", a.type_name(), b.type_name()))
            .build(),
    )
}

fn wire_ref(label: RefLabel, type_name: &str, instance_id: u64) -> WireRef {
    WireRef { label, id: IdPack { type_name: type_name.into(), class_id: 3, instance_id } }
}

/// `root.kinds(a, b, 4)` as a peer writes it when `a` and `b` are references: the arguments
/// boxed item by item.
fn call_with_refs(seq: u64, root: &IdPack, a: WireRef, b: WireRef) -> Frame<WireRef> {
    Frame::Request {
        seq,
        handle: Handle::CallAttr,
        args: Value::Tuple(vec![
            Value::Ref(WireRef { label: RefLabel::Local, id: root.clone() }),
            Value::from("kinds"),
            Value::Tuple(vec![Value::Ref(a), Value::Ref(b), Value::Int(4)]),
            Value::None,
        ]),
        deadline: None,
    }
}

/// References among a call's arguments are read by the plain reader and unboxed once the
/// whole frame is read: a `REMOTE_REF` passed twice is counted twice, not more (the `Release`
/// says so), and a `LOCAL_REF` is the receiver's own object.
#[actix_rt::test]
async fn references_among_the_arguments_are_counted_once() {
    let (_peer, mut raw) = RawPeer::start(kinds_service(), Config::default());
    let root = raw.handshake().await.expect("the root is announced");
    let callback = wire_ref(RefLabel::Remote, "demo.Callback", 41);
    raw.send(call_with_refs(1, &root, callback.clone(), callback)).await;
    let mut released = Vec::new();
    let mut reply = None;
    while reply.is_none() || released.is_empty() {
        match raw.recv().await {
            Frame::Reply { seq, value } => reply = Some((seq, value)),
            Frame::Release { refs } => released.extend(refs),
            other => panic!("expected the reply and a release, got {other:?}"),
        }
    }
    assert_eq!(reply, Some((1, Value::from("demo.Callback demo.Callback 4"))));
    assert_eq!(released, vec![(41, 2)], "two receipts, two released");
    // The receiver's own object, by `LOCAL_REF`.
    let own = WireRef { label: RefLabel::Local, id: root.clone() };
    raw.send(call_with_refs(2, &root, own, wire_ref(RefLabel::Remote, "demo.Other", 43))).await;
    match raw.recv_skipping_releases().await {
        Frame::Reply { seq, value } => assert_eq!((seq, value), (2, Value::from("demo.Root demo.Other 4"))),
        other => panic!("expected the reply, got {other:?}"),
    }
}

/// A `LOCAL_REF` argument to an object never exported closes the connection with the general
/// decoder's `BadReference`, also when a `REMOTE_REF` comes before it.
#[actix_rt::test]
async fn a_bad_reference_among_the_arguments_closes_with_a_bad_reference() {
    let (peer, mut raw) = RawPeer::start(kinds_service(), Config::default());
    let root = raw.handshake().await.expect("the root is announced");
    let a = wire_ref(RefLabel::Remote, "demo.Callback", 41);
    let b = wire_ref(RefLabel::Local, "demo.Gone", 999_999);
    raw.send(call_with_refs(1, &root, a, b)).await;
    raw.expect_bad_reference(&peer, 999_999).await;
}

/// A reply holding an object (here the root, twice) is read by the plain reader and counted
/// once per reply.
#[actix_rt::test]
async fn objects_in_replies_are_counted_once() {
    let (peer, mut raw) = RawPeer::start(Service::void(), Config::default());
    raw.handshake().await;
    let thing = wire_ref(RefLabel::Remote, "demo.Thing", 5);
    let mut got = Vec::new();
    for _ in 0..2 {
        let root = peer.root();
        let Frame::Request { seq, handle: Handle::GetRoot, .. } = raw.recv().await else { panic!("expected GETROOT") };
        raw.send(Frame::Reply { seq, value: Value::Ref(thing.clone()) }).await;
        got.push(root.await.unwrap());
    }
    assert_eq!(got[0].type_name(), "demo.Thing");
    drop(got);
    match raw.recv().await {
        Frame::Release { refs } => assert_eq!(refs, vec![(5, 2)], "two receipts, two released"),
        other => panic!("expected a release, got {other:?}"),
    }
}
