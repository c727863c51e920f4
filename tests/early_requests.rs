//! Early requests (`Config::early_requests`): `connect_*` returns without waiting for the
//! server's `Hello`, `Peer::root()` answers at once with a root alias (a `LOCAL_REF` with
//! instance id `ROOT_ALIAS`), and the first call goes out right behind the client's `Hello`.
//! Also the serving side of the alias, driven by a hand-written client.

mod common;

use std::{sync::Arc, time::Duration};

use common::{calculator, wait_until, Counters, RawPeer};
use netref::{
    dev::{Hello, Limits, ROOT_ALIAS},
    prelude::*,
    Frame, Handle, IdPack, RefLabel, WireRef,
};

const T: Duration = Duration::from_secs(5);

fn early() -> Config {
    Config::default().early_requests(true)
}

/// The alias as a hand-written client sends it: instance `ROOT_ALIAS`, no type.
fn alias_ref() -> WireRef {
    WireRef { label: RefLabel::Local, id: IdPack { type_name: String::new(), class_id: 0, instance_id: ROOT_ALIAS } }
}

fn call(seq: u64, target: WireRef, method: &str, args: Vec<Value<WireRef>>) -> Frame<WireRef> {
    Frame::Request {
        seq,
        handle: Handle::CallAttr,
        args: Value::Tuple(vec![Value::Ref(target), Value::Str(method.into()), Value::Tuple(args), Value::None]),
        deadline: None,
    }
}

async fn serve_calculator() -> (std::net::SocketAddr, Arc<Counters>) {
    let counters = Arc::new(Counters::default());
    let service = Service::shared(calculator(counters.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    actix_rt::spawn(netref::serve_tcp(listener, service, Config::default(), None));
    (addr, counters)
}

#[actix_rt::test]
async fn the_first_call_goes_out_before_the_hello_arrives() {
    let (addr, _) = serve_calculator().await;
    let peer = netref::connect_tcp(addr, Service::void(), early(), T).await.unwrap();
    // Nothing has run on the connection yet: the server's Hello cannot have been read.
    let alias = peer.root().await.unwrap();
    assert!(alias.is_root_alias(), "{alias:?}");
    assert_eq!(alias.type_name(), "", "the root's type is not known before the Hello");
    let sum: i64 = alias.call_method("add", (1, 2)).await.unwrap();
    assert_eq!(sum, 3);

    // The Hello has arrived by now (it came before the reply): the alias is the root.
    peer.ready().await.unwrap();
    assert_eq!(alias.type_name(), "demo.Calculator");
    assert_ne!(alias.id_pack().instance_id, ROOT_ALIAS, "the alias has the root's identity");
    assert!(format!("{alias:?}").contains("demo.Calculator root alias"), "{alias:?}");

    // Later, root() gives the same netref, and the root received in a reply is it too.
    let root = peer.root().await.unwrap();
    assert_eq!(root, alias, "one netref for the root");
    assert_eq!(root.id_pack(), alias.id_pack());
    let same: NetRef = alias.call_method("identity", (alias.clone(),)).await.unwrap();
    assert_eq!(same, root, "the alias sent as an argument reaches the root itself");
    assert!(same.is_root_alias(), "the root received is the adopted alias: {same:?}");
    drop((same, root, alias));
    peer.close().await;
}

#[actix_rt::test]
async fn the_alias_owes_no_release_and_needs_no_round_trip() {
    let (peer, mut raw) = RawPeer::start(Service::void(), early());
    let alias = peer.root().await.unwrap();
    let sum = alias.call_method::<i64>("add", (1, 2));
    // The raw side has sent nothing yet, and the call is already on its way.
    raw.recv_hello().await;
    let request = raw.recv().await;
    let Frame::Request { seq, handle: Handle::CallAttr, args: Value::Tuple(items), .. } = request else {
        panic!("expected the call, got {request:?}")
    };
    assert_eq!(items[0], Value::Ref(alias_ref()), "the call targets the root alias");
    let root = IdPack { type_name: "demo.Remote".into(), class_id: 3, instance_id: 42 };
    raw.send(Frame::Hello(Hello::new(Limits::default()).with_root(root))).await;
    raw.send(Frame::Reply { seq, value: Value::Int(3) }).await;
    assert_eq!(tokio::time::timeout(T, sum).await.unwrap().unwrap(), 3);
    assert_eq!(alias.type_name(), "demo.Remote");

    // Dropping the alias owes nothing: the next frame is the ping alone.
    drop(alias);
    let ping = peer.ping(7);
    let frame = raw.recv().await;
    let Frame::Request { seq, handle: Handle::Ping, .. } = frame else { panic!("expected the ping, got {frame:?}") };
    raw.send(Frame::Reply { seq, value: Value::Int(7) }).await;
    tokio::time::timeout(T, ping).await.unwrap().unwrap();
}

#[actix_rt::test]
async fn a_version_mismatch_fails_the_early_call() {
    let (peer, mut raw) = RawPeer::start(Service::void(), early());
    let sum = peer.root().await.unwrap().call_method::<i64>("add", (1, 2));
    assert!(matches!(raw.recv().await, Frame::Hello(_)));
    let mut hello = Hello::new(Limits::default());
    hello.version += 1;
    raw.send(Frame::Hello(hello)).await;
    let err = tokio::time::timeout(T, sum).await.expect("the call fails, it does not hang").unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");
    assert!(peer.is_closed());
}

#[actix_rt::test]
async fn a_silent_peer_fails_the_early_call_after_the_hello_timeout() {
    let (peer, mut raw) = RawPeer::start(Service::void(), early().hello_timeout(Duration::from_millis(200)));
    let sum = peer.root().await.unwrap().call_method::<i64>("add", (1, 2));
    assert!(matches!(raw.recv().await, Frame::Hello(_)));
    let err = tokio::time::timeout(T, sum).await.expect("the call fails, it does not hang").unwrap_err();
    assert!(err.to_string().contains("Hello"), "{err}");
}

#[actix_rt::test]
async fn without_early_requests_root_waits_for_the_hello() {
    let (peer, mut raw) = RawPeer::start(Service::void(), Config::default());
    let root = peer.root();
    assert!(matches!(raw.recv().await, Frame::Hello(_)));
    // No Hello from the raw side yet: root() asks with GETROOT, as before.
    let frame = raw.recv().await;
    let Frame::Request { seq, handle: Handle::GetRoot, .. } = frame else { panic!("expected GETROOT, got {frame:?}") };
    raw.send(Frame::Hello(Hello::new(Limits::default()))).await;
    let id = IdPack { type_name: "demo.Remote".into(), class_id: 3, instance_id: 42 };
    raw.send(Frame::Reply { seq, value: Value::Ref(WireRef { label: RefLabel::Remote, id }) }).await;
    let root = tokio::time::timeout(T, root).await.unwrap().unwrap();
    assert!(!root.is_root_alias());
    assert_eq!(root.type_name(), "demo.Remote");
}

/// The serving side: any client may address the root by the alias, with or without having
/// read the server's Hello, and the alias costs no export.
#[actix_rt::test]
async fn a_server_resolves_the_alias_to_its_root() {
    let counters = Arc::new(Counters::default());
    let (peer, mut raw) = RawPeer::start(Service::shared(calculator(counters)), Config::default());
    raw.send(Frame::Hello(Hello::new(Limits::default()))).await;
    raw.send(call(1, alias_ref(), "add", vec![Value::Int(2), Value::Int(5)])).await;
    assert!(matches!(raw.recv().await, Frame::Hello(_)));
    let reply = raw.recv().await;
    assert!(matches!(reply, Frame::Reply { seq: 1, value: Value::Int(7) }), "{reply:?}");

    // Sent as an argument, the alias unboxes to the root object itself.
    raw.send(call(2, alias_ref(), "identity", vec![Value::Ref(alias_ref())])).await;
    let reply = raw.recv().await;
    let Frame::Reply { seq: 2, value: Value::Ref(back) } = reply else { panic!("identity reply: {reply:?}") };
    assert_eq!(back.label, RefLabel::Remote);
    assert_eq!(back.id.type_name, "demo.Calculator");
    assert_ne!(back.id.instance_id, ROOT_ALIAS, "the server names its root by its real id");
    wait_until(T, "no unpinned export for the root", || async { peer.stats().await.unwrap().unpinned_exports == 0 })
        .await;
}

/// Instance id 0 with a class id is RPyC's way to name a class, not the alias: netref exports
/// no classes, so it is a reference to nothing, which closes the connection.
#[actix_rt::test]
async fn instance_zero_with_a_class_id_is_not_the_alias() {
    let (peer, mut raw) = RawPeer::start(Service::shared(calculator(Arc::new(Counters::default()))), Config::default());
    raw.send(Frame::Hello(Hello::new(Limits::default()))).await;
    assert!(matches!(raw.recv().await, Frame::Hello(_)));
    let class_ref = WireRef {
        label: RefLabel::Local,
        id: IdPack { type_name: "demo.Calculator".into(), class_id: 5, instance_id: ROOT_ALIAS },
    };
    raw.send(call(1, class_ref, "add", vec![Value::Int(1), Value::Int(2)])).await;
    assert!(raw.closed_within(T).await, "a reference to nothing closes the connection");
    tokio::time::timeout(T, peer.closed()).await.unwrap();
}

/// A method name that is not a string is the caller's error (a `TypeError` reply), not the
/// connection's.
#[actix_rt::test]
async fn a_method_name_that_is_not_a_string_is_a_type_error() {
    let (_peer, mut raw) =
        RawPeer::start(Service::shared(calculator(Arc::new(Counters::default()))), Config::default());
    raw.send(Frame::Hello(Hello::new(Limits::default()))).await;
    assert!(matches!(raw.recv().await, Frame::Hello(_)));
    for (seq, name) in [(1, Value::Int(7)), (2, Value::None)] {
        let args = Value::Tuple(vec![Value::Ref(alias_ref()), name, Value::Tuple(vec![]), Value::None]);
        raw.send(Frame::Request { seq, handle: Handle::CallAttr, args, deadline: None }).await;
        let Frame::Exception { seq: s, error } = raw.recv().await else { panic!("an exception") };
        assert_eq!(s, seq);
        assert_eq!(error.kind, "builtins.TypeError");
        assert!(error.message.starts_with("method name must be a string"), "{}", error.message);
    }
    // The connection goes on.
    raw.send(call(3, alias_ref(), "add", vec![Value::Int(1), Value::Int(1)])).await;
    assert!(matches!(raw.recv().await, Frame::Reply { seq: 3, value: Value::Int(2) }));
}
