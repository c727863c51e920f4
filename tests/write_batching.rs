//! Guards how a connection batches its writes: the replies to requests that arrive together go
//! out together, in one write per turn of the connection, whether they were answered while the
//! requests were read (synchronous methods) or later by futures that finish together (async
//! methods). One write per reply would cost a system call each, the main cost of pipelining.

mod common;

use std::{
    io,
    pin::Pin,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    task::{Context, Poll},
};

use futures::SinkExt;
use netref::{dev::FrameCodec, prelude::*, Frame, Handle, IdPack, RefLabel, WireRef};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio_util::codec::Framed;

use common::RawPeer;

/// A transport that counts the write calls that took bytes.
struct Counting {
    inner: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl AsyncRead for Counting {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counting {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A real connection serving `service` over a counting transport, the raw end after the
/// handshake, the root the connection announced in its Hello, and the count of writes so far.
async fn start(service: Service) -> (Peer, RawPeer, IdPack, Arc<AtomicUsize>) {
    let (a, b) = tokio::io::duplex(1 << 20);
    let writes = Arc::new(AtomicUsize::new(0));
    let peer = netref::connect_stream(Counting { inner: a, writes: writes.clone() }, service, Config::default());
    let mut raw = RawPeer { framed: Framed::new(b, FrameCodec::new()) };
    let root = raw.handshake().await.expect("a connection announces its root");
    (peer, raw, root, writes)
}

/// Sends `n` requests made by `request` in one write.
async fn send_together(raw: &mut RawPeer, n: u64, request: impl Fn(u64) -> Frame<WireRef>) {
    for seq in 0..n {
        raw.framed.feed(request(seq)).await.unwrap();
    }
    SinkExt::<Frame<WireRef>>::flush(&mut raw.framed).await.unwrap();
}

/// Reads `n` replies and checks that they answer requests `0..n`, each once, with the value
/// `seq`; `in_order`: in the order of the requests.
async fn expect_replies(raw: &mut RawPeer, n: u64, in_order: bool) {
    let mut seen = vec![false; n as usize];
    for i in 0..n {
        match raw.recv_skipping_releases().await {
            Frame::Reply { seq, value } => {
                assert!(seq < n && !seen[seq as usize], "reply {i} answers {seq}, unexpected or twice");
                seen[seq as usize] = true;
                if in_order {
                    assert_eq!(seq, i, "replies out of order");
                }
                assert_eq!(value, Value::Int(seq as i64));
            }
            other => panic!("expected a reply, got {other:?}"),
        }
    }
}

#[actix_rt::test]
async fn replies_to_requests_read_together_go_out_in_one_write() {
    let (_peer, mut raw, _root, writes) = start(Service::void()).await;
    let before = writes.load(Ordering::SeqCst);
    // 200 pings (fewer than a turn reads at most), all in the transport before the
    // connection reads any.
    send_together(&mut raw, 200, |seq| Frame::Request {
        seq,
        handle: Handle::Ping,
        args: Value::Tuple(vec![Value::Int(seq as i64)]),
        deadline: None,
    })
    .await;
    expect_replies(&mut raw, 200, true).await;
    let used = writes.load(Ordering::SeqCst) - before;
    assert!(used <= 3, "200 replies took {used} writes");
}

#[actix_rt::test]
async fn replies_of_futures_that_finish_together_go_out_in_one_write() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let started = Arc::new(AtomicUsize::new(0));
    let (g, s) = (gate.clone(), started.clone());
    let service = Service::shared(
        Object::builder("demo.Held")
            .async_method("wait", move |x: i64| {
                let (gate, started) = (g.clone(), s.clone());
                async move {
                    started.fetch_add(1, Ordering::SeqCst);
                    gate.acquire().await.unwrap().forget();
                    x
                }
            })
            .build(),
    );
    let (_peer, mut raw, root, writes) = start(service).await;
    send_together(&mut raw, 50, |seq| Frame::Request {
        seq,
        handle: Handle::CallAttr,
        args: Value::Tuple(vec![
            Value::Ref(WireRef { label: RefLabel::Local, id: root.clone() }),
            Value::from("wait"),
            Value::Tuple(vec![Value::Int(seq as i64)]),
            Value::None,
        ]),
        deadline: None,
    })
    .await;
    common::wait_until(std::time::Duration::from_secs(5), "all 50 calls wait", || {
        let started = started.clone();
        async move { started.load(Ordering::SeqCst) == 50 }
    })
    .await;
    let before = writes.load(Ordering::SeqCst);
    // Let them all finish at once: each reply is queued by its own future, outside the turn
    // that reads; they still leave together.
    gate.add_permits(50);
    expect_replies(&mut raw, 50, false).await;
    let used = writes.load(Ordering::SeqCst) - before;
    assert!(used <= 3, "50 replies took {used} writes");
}

/// The raw side's object `n`, as a reference it sends.
fn raw_object(n: u64) -> Value<WireRef> {
    Value::Ref(WireRef {
        label: RefLabel::Remote,
        id: IdPack { type_name: "raw.Thing".into(), class_id: 7, instance_id: n },
    })
}

/// Answers the next request with `value`; returns the request's handle.
async fn answer(raw: &mut RawPeer, value: Value<WireRef>) -> Handle {
    match raw.recv().await {
        Frame::Request { seq, handle, .. } => {
            raw.send(Frame::Reply { seq, value }).await;
            handle
        }
        other => panic!("expected a request, got {other:?}"),
    }
}

#[actix_rt::test]
async fn releases_leave_in_one_frame_with_the_requests_of_their_turn() {
    let (peer, mut raw, _root, writes) = start(Service::void()).await;
    let root = {
        let root = peer.root();
        let handle = answer(&mut raw, raw_object(1)).await;
        assert_eq!(handle, Handle::GetRoot);
        root.await.unwrap()
    };
    let things = {
        let call = root.call_method::<Vec<NetRef>>("things", ());
        answer(&mut raw, Value::List((10..20).map(raw_object).collect())).await;
        call.await.unwrap()
    };
    assert_eq!(things.len(), 10);
    let before = writes.load(Ordering::SeqCst);
    // Ten proxies dropped, then a call, with no wait in between: one turn of the connection
    // handles them all.
    drop(things);
    let call = root.call_method::<i64>("next", ());
    let mut released = Vec::new();
    let mut requests = 0;
    while released.len() < 10 || requests == 0 {
        match raw.recv().await {
            Frame::Release { refs } => {
                assert!(released.is_empty(), "the releases came in more than one frame: {refs:?} after {released:?}");
                released = refs;
            }
            Frame::Request { seq, handle: Handle::CallAttr, .. } => {
                requests += 1;
                raw.send(Frame::Reply { seq, value: Value::Int(5) }).await;
            }
            other => panic!("expected the releases and a call, got {other:?}"),
        }
    }
    released.sort_unstable();
    assert_eq!(released, (10..20).map(|id| (id, 1)).collect::<Vec<_>>());
    assert_eq!(writes.load(Ordering::SeqCst) - before, 1, "the releases and the call took more than one write");
    assert_eq!(call.await.unwrap(), 5);
}
