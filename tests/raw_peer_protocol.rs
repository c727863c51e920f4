//! Guards the connection against a misbehaving peer, driven frame by frame: a late reply is
//! dropped; a `LOCAL_REF` to an object never exported, a request before `Hello`, another
//! protocol version and garbage bytes each close only that connection with a clear error; a
//! `Release` for more than was sent is logged and frees the object once; requests after
//! `Close` fail with `ConnectionClosed`; a peer announcing frames under the minimum is refused
//! at the handshake, and at the minimum every call is answered.

mod common;

use std::{sync::Arc, time::Duration};

use common::{calculator, wait_until, RawPeer};
use netref::{
    dev::{Hello, Limits, MIN_MAX_FRAME_LEN, PROTOCOL_VERSION},
    prelude::*,
    Frame, Handle, IdPack, ProtocolError, RefLabel, WireRef,
};

fn calc_service() -> Service {
    Service::shared(calculator(Arc::default()))
}

#[actix_rt::test]
async fn late_reply_is_dropped() {
    let (peer, mut raw) = RawPeer::start(Service::void(), Config::default());
    raw.handshake().await;
    let result = peer.root();
    let Frame::Request { seq, handle: Handle::GetRoot, .. } = raw.recv().await else { panic!("expected GETROOT") };
    result.set_expiry(Some(Duration::from_millis(5)));
    wait_until(Duration::from_secs(5), "expired", || async { result.expired() }).await;
    assert!(matches!(raw.recv().await, Frame::Cancel { seq: s } if s == seq), "expiry sends Cancel");
    // The reply arrives late: it must be dropped, and the connection keeps working.
    raw.send(Frame::Reply { seq, value: Value::Int(1) }).await;
    let ping = peer.ping("after");
    let Frame::Request { seq: ping_seq, handle: Handle::Ping, args, .. } = raw.recv().await else {
        panic!("expected PING")
    };
    raw.send(Frame::Reply { seq: ping_seq, value: args }).await;
    assert_eq!(ping.await.unwrap(), Value::Tuple(vec![Value::Str("after".into())]));
    assert!(result.expired());
    assert_eq!(peer.stats().await.unwrap().pending, 0);
}

#[actix_rt::test]
async fn local_ref_never_exported_closes_with_an_error() {
    let (peer, mut raw) = RawPeer::start(calc_service(), Config::default());
    raw.handshake().await;
    let bogus = WireRef {
        label: RefLabel::Local,
        id: IdPack { type_name: "demo.Calculator".into(), class_id: 1, instance_id: 999_999 },
    };
    raw.send(Frame::Request {
        seq: 0,
        handle: Handle::Repr,
        args: Value::Tuple(vec![Value::Ref(bogus)]),
        deadline: None,
    })
    .await;
    raw.expect_bad_reference(&peer, 999_999).await;
}

#[actix_rt::test]
async fn request_before_hello_is_refused() {
    let (peer, mut raw) = RawPeer::start(calc_service(), Config::default());
    let _hello = raw.recv().await;
    raw.send(Frame::Request { seq: 0, handle: Handle::GetRoot, args: Value::Tuple(vec![]), deadline: None }).await;
    let reason = raw.expect_closed(&peer).await;
    assert!(matches!(reason, netref::Error::Protocol(ProtocolError::Unexpected(_))), "{reason}");
}

#[actix_rt::test]
async fn another_protocol_version_is_a_clear_error() {
    let (peer, mut raw) = RawPeer::start(calc_service(), Config::default());
    let pending = peer.ping("x");
    let _hello = raw.recv().await;
    raw.send(Frame::Hello(Hello { version: PROTOCOL_VERSION + 1, features: 0, limits: Limits::default(), root: None }))
        .await;
    // The real side explains itself in a Close frame before hanging up.
    let mut saw_close = false;
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut raw.framed)).await
    {
        if let Frame::Close { reason } = frame {
            assert!(
                reason.contains(&PROTOCOL_VERSION.to_string()) && reason.contains(&(PROTOCOL_VERSION + 1).to_string()),
                "{reason}"
            );
            saw_close = true;
        }
    }
    assert!(saw_close, "no Close frame naming the versions");
    let err = pending.await.unwrap_err();
    assert!(matches!(err, netref::Error::Protocol(ProtocolError::VersionMismatch { .. })), "{err}");
}

#[actix_rt::test]
async fn garbage_bytes_close_only_that_connection() {
    let (healthy_server, healthy_client) = netref::connect_pair(calc_service(), Service::void());
    let (peer, mut raw) = RawPeer::start(calc_service(), Config::default());
    raw.handshake().await;
    raw.send_raw(&[0, 0, 0, 3, 0xff, 0xff, 0xff]).await;
    raw.expect_closed(&peer).await;
    let calc = healthy_client.root().await.unwrap();
    assert_eq!(calc.call_method::<i64>("add", (1, 2)).await.unwrap(), 3);
    assert!(!healthy_server.is_closed());
}

#[actix_rt::test]
async fn oversized_frame_closes_the_connection() {
    let (peer, mut raw) = RawPeer::start(calc_service(), Config::default().max_frame_len(1024));
    raw.handshake().await;
    raw.send_raw(&[0x7f, 0xff, 0xff, 0xff]).await;
    let reason = raw.expect_closed(&peer).await;
    assert!(matches!(reason, netref::Error::Protocol(ProtocolError::FrameTooLarge { max: 1024, .. })), "{reason}");
}

#[actix_rt::test]
async fn over_release_is_logged_and_frees_once() {
    let (peer, mut raw) = RawPeer::start(calc_service(), Config::default());
    raw.handshake().await;
    raw.send(Frame::Request { seq: 0, handle: Handle::GetRoot, args: Value::Tuple(vec![]), deadline: None }).await;
    let Frame::Reply { value: Value::Ref(root), .. } = raw.recv().await else { panic!("root reply") };
    assert_eq!(root.label, RefLabel::Remote);
    let local_root = WireRef { label: RefLabel::Local, id: root.id.clone() };
    // make_counter returns a fresh exported object.
    let args = Value::Tuple(vec![
        Value::Ref(local_root.clone()),
        Value::Str("make_counter".into()),
        Value::Tuple(vec![Value::Int(1)]),
        Value::None,
    ]);
    raw.send(Frame::Request { seq: 1, handle: Handle::CallAttr, args, deadline: None }).await;
    let Frame::Reply { value: Value::Ref(counter), .. } = raw.recv().await else { panic!("counter reply") };
    assert_eq!(peer.stats().await.unwrap().unpinned_exports, 1);
    // Release it three times although it was sent once: freed once, connection lives on.
    raw.send(Frame::Release { refs: vec![(counter.id.instance_id, 3)] }).await;
    raw.send(Frame::Release { refs: vec![(counter.id.instance_id, 1)] }).await;
    wait_until(Duration::from_secs(5), "export freed", || async { peer.stats().await.unwrap().unpinned_exports == 0 })
        .await;
    // The pinned root survives any release.
    raw.send(Frame::Release { refs: vec![(root.id.instance_id, 10)] }).await;
    raw.send(Frame::Request {
        seq: 2,
        handle: Handle::Repr,
        args: Value::Tuple(vec![Value::Ref(local_root)]),
        deadline: None,
    })
    .await;
    let reply = raw.recv().await;
    assert!(matches!(&reply, Frame::Reply { seq: 2, value: Value::Str(s) } if s == "<demo.Calculator>"), "{reply:?}");
    assert!(!peer.is_closed());
}

#[actix_rt::test]
async fn requests_after_close_fail_with_connection_closed() {
    let (server, client) = netref::connect_pair(calc_service(), Service::void());
    let calc = client.root().await.unwrap();
    client.close().await;
    let err = client.ping("x").await.unwrap_err();
    assert!(matches!(err, netref::Error::ConnectionClosed(_)), "{err}");
    let err = calc.call_method::<i64>("add", (1, 2)).await.unwrap_err();
    assert!(matches!(err, netref::Error::ConnectionClosed(_)), "{err}");
    tokio::time::timeout(Duration::from_secs(5), server.closed()).await.unwrap();
}

#[actix_rt::test]
async fn a_seq_reused_while_its_request_runs_closes_the_connection() {
    // Otherwise a peer could run any number of requests under one seq, past
    // max_concurrent_requests (the cap counts running requests by seq).
    let counters = Arc::new(common::Counters::default());
    let (peer, mut raw) = RawPeer::start(Service::shared(calculator(counters.clone())), Config::default());
    raw.handshake().await;
    raw.send(Frame::Request { seq: 0, handle: Handle::GetRoot, args: Value::Tuple(vec![]), deadline: None }).await;
    let Frame::Reply { value: Value::Ref(root), .. } = raw.recv().await else { panic!("root reply") };
    let target = WireRef { label: RefLabel::Local, id: root.id };
    let slow = |seq| Frame::Request {
        seq,
        handle: Handle::CallAttr,
        args: Value::Tuple(vec![
            Value::Ref(target.clone()),
            Value::Str("slow".into()),
            Value::Tuple(vec![Value::Int(60_000)]),
            Value::None,
        ]),
        deadline: None,
    };
    raw.send(slow(1)).await;
    raw.send(slow(1)).await;
    let reason = raw.expect_closed(&peer).await.to_string();
    assert!(reason.contains("seq 1"), "{reason}");
}

/// Sets its flag when dropped.
struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[actix_rt::test]
async fn work_past_the_callers_deadline_is_dropped_without_a_reply() {
    let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = dropped.clone();
    let service = Service::shared(
        Object::builder("demo.Hang")
            .async_method("hang", move || {
                let guard = DropFlag(flag.clone());
                async move {
                    let _guard = guard;
                    futures::future::pending::<i64>().await
                }
            })
            .build(),
    );
    let (peer, mut raw) = RawPeer::start(service, Config::default());
    let Frame::Hello(hello) = raw.recv().await else { panic!("first frame must be Hello") };
    let root = hello.root.expect("the root is announced");
    raw.send(Frame::Hello(Hello::new(Limits::default()))).await;
    let args = Value::Tuple(vec![
        Value::Ref(WireRef { label: RefLabel::Local, id: root }),
        Value::Str("hang".into()),
        Value::Tuple(vec![]),
        Value::None,
    ]);
    raw.send(Frame::Request { seq: 1, handle: Handle::CallAttr, args, deadline: Some(Duration::from_millis(20)) })
        .await;
    wait_until(Duration::from_secs(5), "the work is dropped at the deadline", || async {
        dropped.load(std::sync::atomic::Ordering::SeqCst)
    })
    .await;
    assert_eq!(peer.stats().await.unwrap().inbound, 0, "the dropped work still counts as running");
    // No reply for it: the next frame answers the next request.
    let ping = Frame::Request { seq: 2, handle: Handle::Ping, args: Value::Tuple(vec![Value::Int(7)]), deadline: None };
    raw.send(ping).await;
    match raw.recv_skipping_releases().await {
        Frame::Reply { seq: 2, value } => assert_eq!(value, Value::Int(7)),
        other => panic!("expected the ping's reply, got {other:?}"),
    }
}

/// A peer that announces frames smaller than `MIN_MAX_FRAME_LEN` could not be sent even an
/// error reply: its calls would wait for their timeouts. The handshake refuses it instead, and
/// says why in a `Close` frame.
#[actix_rt::test]
async fn a_peer_that_takes_only_tiny_frames_is_refused_at_the_handshake() {
    let (peer, mut raw) = RawPeer::start(calc_service(), Config::default());
    let _hello = raw.recv().await;
    let limits = Limits { max_frame_len: 64, ..Limits::default() };
    raw.send(Frame::Hello(Hello { version: PROTOCOL_VERSION, features: 0, limits, root: None })).await;
    let mut close = None;
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_secs(5), futures::StreamExt::next(&mut raw.framed)).await
    {
        if let Frame::Close { reason } = frame {
            close = Some(reason);
        }
    }
    let close = close.expect("a Close frame saying why");
    assert!(close.contains("64") && close.contains(&MIN_MAX_FRAME_LEN.to_string()), "{close}");
    tokio::time::timeout(Duration::from_secs(5), peer.closed()).await.expect("the connection stops");
    let reason = peer.close_reason().expect("a reason");
    assert!(
        matches!(
            reason,
            netref::Error::Protocol(ProtocolError::PeerFramesTooSmall { announced: 64, min: MIN_MAX_FRAME_LEN })
        ),
        "{reason}"
    );
}

/// The smallest frame limit a peer may announce is enough for every error reply: a reply too
/// long for it, and an error with a message too long for it, reach the caller as the short
/// `ValueError` that says so, and the connection goes on.
#[actix_rt::test]
async fn at_the_smallest_frame_limit_every_call_is_answered() {
    let server = Service::shared(
        Object::builder("demo.Talker")
            .method("long_text", |n: usize| "x".repeat(n))
            .try_method("long_error", |n: usize| Err::<(), _>(RemoteError::new("builtins.RuntimeError", "e".repeat(n))))
            .build(),
    );
    let client_config = Config::default().max_frame_len(MIN_MAX_FRAME_LEN);
    let (_server, client) = netref::connect_pair_with(server, Config::default(), Service::void(), client_config);
    let root = client.root().await.unwrap();
    for method in ["long_text", "long_error"] {
        let err = root.call_method::<Value>(method, (5000,)).await.unwrap_err();
        let netref::Error::Remote(remote) = &err else { panic!("{method}: {err}") };
        assert_eq!(remote.kind, "builtins.ValueError", "{method}: {err}");
        assert!(remote.message.contains("could not be sent"), "{method}: {err}");
    }
    assert_eq!(root.call_method::<String>("long_text", (10,)).await.unwrap(), "x".repeat(10));
}

/// A configured frame limit below the minimum is raised to it (a connection could not even
/// exchange Hellos under a few dozen bytes).
#[actix_rt::test]
async fn a_frame_limit_below_the_minimum_is_raised_to_it() {
    let config = Config::default().max_frame_len(10);
    assert!(format!("{config:?}").contains(&format!("max_frame_len: {MIN_MAX_FRAME_LEN}")), "{config:?}");
    let (_server, client) = netref::connect_pair_with(calc_service(), config.clone(), Service::void(), config);
    let calc = client.root().await.unwrap();
    assert_eq!(calc.call_method::<i64>("add", (1, 2)).await.unwrap(), 3);
}
