//! The root announced in `Hello`: `Peer::root()` answers from it without a `GETROOT` round
//! trip, the proxy made from it owes no `Release` (the root is pinned, the send not counted),
//! and a later counted receipt of the same object is released exactly once.

mod common;

use std::time::Duration;

use common::RawPeer;
use netref::{
    dev::{Hello, Limits},
    prelude::*,
    Frame, Handle, IdPack, RefLabel, WireRef,
};

fn raw_root() -> IdPack {
    IdPack { type_name: "demo.Remote".into(), class_id: 3, instance_id: 42 }
}

/// Reads the client's Hello and answers with one announcing `raw_root()`.
async fn handshake_with_root(raw: &mut RawPeer) {
    assert!(raw.recv_hello().await.is_some(), "a connection announces its own root");
    raw.send(Frame::Hello(Hello::new(Limits::default()).with_root(raw_root()))).await;
}

/// Answers one request of kind `handle` with `value`, returning its arguments.
async fn answer(raw: &mut RawPeer, handle: Handle, value: Value<WireRef>) -> Value<WireRef> {
    let frame = raw.recv().await;
    let Frame::Request { seq, handle: h, args, .. } = frame else { panic!("expected a request, got {frame:?}") };
    assert_eq!(h, handle, "unexpected request kind");
    raw.send(Frame::Reply { seq, value }).await;
    args
}

#[actix_rt::test]
async fn root_from_hello_needs_no_round_trip() {
    let (peer, mut raw) = RawPeer::start(Service::void(), Config::default());
    handshake_with_root(&mut raw).await;
    tokio::time::timeout(Duration::from_secs(5), peer.ready()).await.unwrap().unwrap();

    // No frame is sent for the root: the next frame the raw side sees is the call on it.
    let root = tokio::time::timeout(Duration::from_secs(5), peer.root()).await.unwrap().unwrap();
    assert_eq!(root.type_name(), "demo.Remote");
    let call = root.call_method::<i64>("add", (1, 2));
    let args = answer(&mut raw, Handle::CallAttr, Value::Int(3)).await;
    assert_eq!(call.await.unwrap(), 3);
    let Value::Tuple(items) = args else { panic!("CALLATTR args are a tuple") };
    assert_eq!(items[0], Value::Ref(WireRef { label: RefLabel::Local, id: raw_root() }), "the call targets the root");

    // Asking again gives the same proxy.
    let again = peer.root().await.unwrap();
    assert_eq!(again, root);

    // Dropping it owes nothing: the frames up to two later pings are the pings alone.
    drop((root, again));
    for i in 0..2 {
        let ping = peer.ping(i);
        let frame = raw.recv().await;
        let Frame::Request { seq, handle: Handle::Ping, args, .. } = frame else {
            panic!("expected only PING after dropping the root, got {frame:?}")
        };
        raw.send(Frame::Reply { seq, value: args }).await;
        ping.await.unwrap();
    }
}

#[actix_rt::test]
async fn a_counted_receipt_of_the_root_is_released_once() {
    let (peer, mut raw) = RawPeer::start(Service::void(), Config::default());
    handshake_with_root(&mut raw).await;
    peer.ready().await.unwrap();
    let root = peer.root().await.unwrap();

    // The peer now sends its root inside a reply: that send is counted.
    let call = root.call_method::<NetRef>("me", ());
    answer(&mut raw, Handle::CallAttr, Value::Ref(WireRef { label: RefLabel::Remote, id: raw_root() })).await;
    let me = call.await.unwrap();
    assert_eq!(me, root, "one proxy per remote object");
    drop((me, root));
    let frame = raw.recv().await;
    assert_eq!(frame, Frame::Release { refs: vec![(42, 1)] }, "exactly the counted receipt is released");
}

#[actix_rt::test]
async fn without_a_root_in_hello_root_asks_with_getroot() {
    let (peer, mut raw) = RawPeer::start(Service::void(), Config::default());
    raw.handshake().await; // a Hello with no root
    peer.ready().await.unwrap();
    let root = peer.root();
    answer(&mut raw, Handle::GetRoot, Value::Ref(WireRef { label: RefLabel::Remote, id: raw_root() })).await;
    assert_eq!(root.await.unwrap().type_name(), "demo.Remote");
}

#[actix_rt::test]
async fn a_real_pair_reaches_the_root_and_named_exports() {
    let service = Service::shared(common::calculator(Default::default())).export("counter", common::counter_object(0));
    let (client, _server) = netref::connect_pair(Service::void(), service);
    client.ready().await.unwrap();
    let calc = client.root().await.unwrap();
    assert_eq!(calc.call_method::<i64>("add", (20, 22)).await.unwrap(), 42);
    let counter = client.lookup("counter").await.unwrap();
    assert_eq!(counter.call_method::<i64>("incr", ()).await.unwrap(), 1);
}

#[actix_rt::test]
async fn void_services_announce_one_shared_root() {
    let (_a, mut raw_a) = RawPeer::start(Service::void(), Config::default());
    let (_b, mut raw_b) = RawPeer::start(Service::void(), Config::default());
    let root_a = raw_a.recv_hello().await.expect("a void service announces its root");
    let root_b = raw_b.recv_hello().await.expect("a void service announces its root");
    assert_eq!(root_a.type_name, "netref.VoidService");
    // Made once per process: the same object, not one built per connection.
    assert_eq!(root_a, root_b);
}
