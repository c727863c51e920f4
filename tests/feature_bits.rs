//! Guards the `Hello` feature bits: the Python values (frozenset, slice, `Ellipsis`,
//! `NotImplemented`) echo with their exact type between two netref peers, and are never sent to a
//! peer that did not announce `FEATURE_PY_VALUES` (nor before its `Hello`): a reply becomes a
//! short exception, a call fails locally, nothing of it is written, and the connection goes on.

mod common;

use std::sync::Arc;

use common::{calculator, RawPeer};
use netref::{
    dev::{Hello, Limits, FEATURES, FEATURE_PY_VALUES, PROTOCOL_VERSION},
    prelude::*,
    Ellipsis, Frame, FrozenSet, Handle, IdPack, NotImplemented, ProtocolError, RefLabel, Slice, WireRef,
};

type W = netref::Value<WireRef>;

/// The four Python values, plain and nested.
fn py_values<R>() -> Vec<netref::Value<R>> {
    use netref::Value as V;
    vec![
        V::FrozenSet(vec![V::Int(3), V::Str("a".into()), V::Tuple(vec![V::None])]),
        V::FrozenSet(vec![]),
        V::Slice(Box::new([V::Int(1), V::None, V::Int(-2)])),
        V::Slice(Box::new([V::Str("a".into()), V::Float(0.5), V::FrozenSet(vec![V::Int(1)])])),
        V::Ellipsis,
        V::NotImplemented,
        V::List(vec![V::Ellipsis, V::Map(vec![(V::NotImplemented, V::FrozenSet(vec![V::Bool(true)]))])]),
    ]
}

#[actix_rt::test]
async fn a_netref_pair_echoes_every_python_value_with_its_type() {
    let (_server, client) = netref::connect_pair(Service::shared(calculator(Arc::default())), Service::void());
    let calc = client.root().await.unwrap();
    for v in py_values::<NetRef>() {
        let echoed: Value = calc.call_method("echo", (v.clone(),)).await.unwrap();
        assert_eq!(echoed, v);
        assert_eq!(echoed.kind(), v.kind());
    }
    // Typed, both ways.
    let set: FrozenSet<i64> = calc.call_method("echo", (FrozenSet(vec![3, 1, 2]),)).await.unwrap();
    assert_eq!(set, FrozenSet(vec![3, 1, 2]));
    let as_value: Value = calc.call_method("echo", (FrozenSet(vec![3, 1, 2]),)).await.unwrap();
    assert!(matches!(as_value, Value::FrozenSet(_)), "{as_value:?}");
    let s = Slice { start: Some(1), stop: None, step: Some(2) };
    assert_eq!(calc.call_method::<Slice>("echo", (s,)).await.unwrap(), s);
    assert_eq!(calc.call_method::<Ellipsis>("echo", (Ellipsis,)).await.unwrap(), Ellipsis);
    assert_eq!(calc.call_method::<NotImplemented>("echo", (NotImplemented,)).await.unwrap(), NotImplemented);
}

/// An object whose methods return the Python values.
fn py_service() -> Service {
    Service::shared(
        Object::builder("demo.Py")
            .method("frozen", || FrozenSet(vec![1i64, 2]))
            .method("slice", || Slice { start: Some(0i64), stop: Some(5), step: None })
            .method("ellipsis", || Ellipsis)
            .method("not_implemented", || NotImplemented)
            .method("add", |a: i64, b: i64| a + b)
            .build(),
    )
}

fn call(seq: u64, target: &IdPack, name: &str, args: Vec<W>) -> Frame<WireRef> {
    let target = W::Ref(WireRef { label: RefLabel::Local, id: target.clone() });
    Frame::Request {
        seq,
        handle: Handle::CallAttr,
        args: W::Tuple(vec![target, W::Str(name.into()), W::Tuple(args), W::None]),
        deadline: None,
    }
}

fn hello(features: u64, root: Option<IdPack>) -> Frame<WireRef> {
    Frame::Hello(Hello { version: PROTOCOL_VERSION, features, limits: Limits::default(), root })
}

#[actix_rt::test]
async fn replies_a_peer_did_not_announce_become_an_exception_and_the_connection_goes_on() {
    let (peer, mut raw) = RawPeer::start(py_service(), Config::default());
    let root = raw.recv_hello().await.expect("the root is announced");
    raw.send(hello(0, None)).await;
    for (seq, (name, what)) in
        [("frozen", "frozenset"), ("slice", "slice"), ("ellipsis", "Ellipsis"), ("not_implemented", "NotImplemented")]
            .into_iter()
            .enumerate()
    {
        let seq = seq as u64;
        raw.send(call(seq, &root, name, vec![])).await;
        match raw.recv_skipping_releases().await {
            Frame::Exception { seq: s, error } => {
                assert_eq!(s, seq);
                assert_eq!(error.kind, "builtins.ValueError");
                let expected =
                    format!("the peer does not accept {what} values (it did not announce feature py-values)");
                assert!(error.message.contains(&expected), "{}", error.message);
            }
            other => panic!("expected an exception for `{name}`, got {other:?}"),
        }
        // The connection goes on.
        raw.send(call(100 + seq, &root, "add", vec![W::Int(1), W::Int(2)])).await;
        assert_eq!(raw.recv_skipping_releases().await, Frame::Reply { seq: 100 + seq, value: W::Int(3) });
    }
    assert!(!peer.is_closed());
}

#[actix_rt::test]
async fn replies_go_to_a_peer_that_announced_the_feature() {
    let (_peer, mut raw) = RawPeer::start(py_service(), Config::default());
    let root = raw.recv_hello().await.expect("the root is announced");
    raw.send(hello(FEATURE_PY_VALUES, None)).await;
    let expected = [
        ("frozen", W::FrozenSet(vec![W::Int(1), W::Int(2)])),
        ("slice", W::Slice(Box::new([W::Int(0), W::Int(5), W::None]))),
        ("ellipsis", W::Ellipsis),
        ("not_implemented", W::NotImplemented),
    ];
    for (seq, (name, value)) in expected.into_iter().enumerate() {
        let seq = seq as u64;
        raw.send(call(seq, &root, name, vec![])).await;
        assert_eq!(raw.recv_skipping_releases().await, Frame::Reply { seq, value });
    }
}

/// The raw peer's object, announced as its root.
fn raw_root() -> IdPack {
    IdPack { type_name: "raw.Thing".into(), class_id: 1, instance_id: 5 }
}

fn lacks(e: &netref::Error, what: &str) -> bool {
    matches!(e, netref::Error::Protocol(ProtocolError::PeerLacksFeature { feature: "py-values", what: w }) if *w == what)
}

#[actix_rt::test]
async fn calls_to_a_peer_that_did_not_announce_the_feature_fail_locally_and_send_nothing() {
    let (peer, mut raw) = RawPeer::start(Service::void(), Config::default());
    raw.recv_hello().await;
    raw.send(hello(0, Some(raw_root()))).await;
    let thing = peer.root().await.unwrap();
    let args: [(&str, Value); 4] = [
        ("frozenset", Value::FrozenSet(vec![Value::Int(1)])),
        ("slice", Value::Slice(Box::new([Value::None, Value::None, Value::Int(1)]))),
        ("Ellipsis", Value::Ellipsis),
        ("NotImplemented", Value::List(vec![Value::NotImplemented])),
    ];
    for (what, arg) in args {
        let err = thing.call_method::<Value>("f", (arg,)).await.unwrap_err();
        assert!(lacks(&err, what), "{err}");
        assert_eq!(
            err.to_string(),
            format!("protocol error: the peer does not accept {what} values (it did not announce feature py-values)")
        );
    }
    let err = thing.call_method::<Value>("f", (FrozenSet(vec!["x"]),)).await.unwrap_err();
    assert!(lacks(&err, "frozenset"), "{err}");
    // Nothing was written for them: the next frame is the next call.
    let pending = thing.call_method::<i64>("g", (7,));
    match raw.recv_skipping_releases().await {
        Frame::Request { seq, handle: Handle::CallAttr, args: W::Tuple(items), .. } => {
            assert_eq!(items[1], W::Str("g".into()));
            raw.send(Frame::Reply { seq, value: W::Int(8) }).await;
        }
        other => panic!("expected the call of g, got {other:?}"),
    }
    assert_eq!(pending.await.unwrap(), 8);
    assert!(!peer.is_closed());
}

#[actix_rt::test]
async fn calls_carry_python_values_to_a_peer_that_announced_the_feature() {
    let (peer, mut raw) = RawPeer::start(Service::void(), Config::default());
    raw.recv_hello().await;
    raw.send(hello(FEATURES, Some(raw_root()))).await;
    let thing = peer.root().await.unwrap();
    for arg in py_values::<NetRef>() {
        let pending = thing.call_method::<Value>("f", (arg.clone(),));
        match raw.recv_skipping_releases().await {
            Frame::Request { seq, handle: Handle::CallAttr, args: W::Tuple(items), .. } => {
                let expected = arg.clone().try_map_refs(&mut |_| Err(())).unwrap();
                assert_eq!(items[2], W::Tuple(vec![expected]));
                raw.send(Frame::Reply { seq, value: W::Ellipsis }).await;
            }
            other => panic!("expected the call, got {other:?}"),
        }
        assert_eq!(pending.await.unwrap(), Value::Ellipsis);
    }
}

#[actix_rt::test]
async fn before_the_peers_hello_nothing_beyond_version_1_is_sent() {
    let (peer, mut raw) = RawPeer::start(Service::void(), Config::default().early_requests(true));
    // The root alias, before the raw peer's Hello.
    let thing = peer.root().await.unwrap();
    let err = thing.call_method::<Value>("f", (Ellipsis,)).await.unwrap_err();
    assert!(lacks(&err, "Ellipsis"), "{err}");
    raw.recv_hello().await;
    raw.send(hello(FEATURES, None)).await;
    // Once the raw peer's ping is answered, its Hello has been read.
    raw.send(Frame::Request { seq: 0, handle: Handle::Ping, args: W::Tuple(vec![W::Str("x".into())]), deadline: None })
        .await;
    assert!(matches!(raw.recv_skipping_releases().await, Frame::Reply { seq: 0, .. }));
    let pending = thing.call_method::<Value>("f", (Ellipsis,));
    match raw.recv_skipping_releases().await {
        Frame::Request { seq, args: W::Tuple(items), .. } => {
            assert_eq!(items[2], W::Tuple(vec![W::Ellipsis]));
            raw.send(Frame::Reply { seq, value: W::None }).await;
        }
        other => panic!("expected the call, got {other:?}"),
    }
    assert_eq!(pending.await.unwrap(), Value::None);
}
