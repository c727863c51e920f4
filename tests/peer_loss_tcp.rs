//! Guards peer loss over real TCP sockets, on each side of a connection: a server whose client
//! went silent (socket open, nothing sent or read) declares it lost within `peer_timeout`,
//! frees what it exported to it and runs `on_disconnect`; a client whose server went silent
//! fails its pending call with the loss and closes. (The default, 15 s, is checked on the fake
//! clock in the session's tests.)

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures::{SinkExt, StreamExt};
use netref::{
    dev::{FrameCodec, Hello, Limits},
    prelude::*,
    Frame, Handle, IdPack, RefLabel, WireRef,
};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

const PEER_TIMEOUT: Duration = Duration::from_millis(300);
/// Far above `PEER_TIMEOUT`, for a loaded machine; a loss never noticed fails it all the same.
const BOUND: Duration = Duration::from_secs(5);

/// Sets its flag when dropped: held by an exported object, it tells when the export is freed.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn config() -> Config {
    Config::default().peer_timeout(Some(PEER_TIMEOUT))
}

async fn next_frame(framed: &mut Framed<TcpStream, FrameCodec>) -> Frame<WireRef> {
    tokio::time::timeout(BOUND, framed.next()).await.expect("a frame").expect("open").expect("valid")
}

#[actix_rt::test]
async fn a_server_whose_client_went_silent_frees_its_exports_and_runs_on_disconnect() {
    let freed = Arc::new(AtomicBool::new(false));
    let flag = freed.clone();
    let root = Object::builder("test.Calc")
        .method("child", move || {
            let guard = DropFlag(flag.clone());
            Object::builder("test.Child").method("ping", move || guard.0.load(Ordering::SeqCst)).build()
        })
        .build();
    let (disconnected_tx, mut disconnected) = tokio::sync::mpsc::unbounded_channel();
    let service = Service::shared(root).on_disconnect(move |_| {
        let _ = disconnected_tx.send(Instant::now());
    });
    let server = Server::builder(service).config(config()).bind_tcp("127.0.0.1:0").await.unwrap();

    // A raw client: Hellos, then one call that makes the server export an object to it.
    let stream = TcpStream::connect(server.local_addr().unwrap()).await.unwrap();
    let mut client = Framed::new(stream, FrameCodec::new());
    let Frame::Hello(hello) = next_frame(&mut client).await else { panic!("the server's Hello first") };
    let root = WireRef { label: RefLabel::Local, id: hello.root.expect("the server announces its root") };
    client.send(Frame::Hello(Hello::new(Limits::default()))).await.unwrap();
    let args = Value::Tuple(vec![Value::Ref(root), Value::Str("child".into()), Value::Tuple(vec![]), Value::None]);
    client.send(Frame::Request { seq: 1, handle: Handle::CallAttr, args, deadline: None }).await.unwrap();
    loop {
        match next_frame(&mut client).await {
            Frame::Reply { seq: 1, value: Value::Ref(_) } => break,
            Frame::Request { .. } | Frame::Notify { .. } => {} // the server's liveness frames
            other => panic!("expected the child, got {other:?}"),
        }
    }
    // From now on the client neither reads nor writes; its socket stays open.
    let silent_since = Instant::now();
    let at = tokio::time::timeout(BOUND, disconnected.recv()).await.expect("on_disconnect runs").unwrap();
    let detected = at - silent_since;
    assert!(detected < BOUND, "declared lost after {detected:?}");
    assert!(detected >= PEER_TIMEOUT / 2, "declared lost after only {detected:?}: not by liveness");
    assert!(freed.load(Ordering::SeqCst), "the export to the lost client is freed");
    tokio::time::timeout(BOUND, server.wait_connections(|n| n == 0)).await.expect("the connection is gone");
    drop(client);
    server.shutdown(Duration::from_secs(1)).await;
}

#[actix_rt::test]
async fn a_client_whose_server_went_silent_fails_its_pending_call_and_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A raw server: it greets, then neither reads nor writes, its socket open.
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut server = Framed::new(stream, FrameCodec::new());
        let root = IdPack { type_name: "test.Calc".into(), class_id: 1, instance_id: 1 };
        server.send(Frame::Hello(Hello::new(Limits::default()).with_root(root))).await.unwrap();
        server
    });
    let client = netref::connect(addr.to_string().as_str()).config(config()).await.unwrap();
    let _silent_server = server.await.unwrap();
    let root = client.root().await.unwrap();
    let started = Instant::now();
    let err = tokio::time::timeout(BOUND, root.call_method::<i64>("add", (1, 2)))
        .await
        .expect("the call ends with the loss")
        .unwrap_err();
    assert!(matches!(&err, Error::ConnectionClosed(m) if m.contains("peer lost")), "{err}");
    assert!(started.elapsed() < BOUND);
    tokio::time::timeout(BOUND, client.closed()).await.expect("the client's connection closes");
    assert!(client.is_closed());
}
