//! Shared helpers for the integration tests: a demo service and a way to run each test over
//! both the in-memory transport and TCP on loopback.
#![allow(dead_code, unreachable_pub)]

#[cfg(feature = "tls")]
pub mod certs;
pub mod strategies;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use netref::{prelude::*, RemoteError};
use tokio::net::{TcpListener, TcpStream};

/// Which transport a test runs over.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Memory,
    Tcp,
}

/// Connects a server side (serving `server`) and a client side (serving `client`).
/// Returns `(server_peer, client_peer)`: `client_peer.root()` is the server's root.
pub async fn connect(
    t: Transport,
    server: Service,
    server_cfg: Config,
    client: Service,
    client_cfg: Config,
) -> (Peer, Peer) {
    match t {
        Transport::Memory => netref::connect_pair_with(server, server_cfg, client, client_cfg),
        Transport::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (accepted, connected) = tokio::join!(listener.accept(), TcpStream::connect(addr));
            let server_peer = netref::from_tcp(accepted.unwrap().0, server, server_cfg).unwrap();
            let client_peer = netref::from_tcp(connected.unwrap(), client, client_cfg).unwrap();
            (server_peer, client_peer)
        }
    }
}

/// [`connect`] with default configs and a void client service.
pub async fn connect_default(t: Transport, server: Service) -> (Peer, Peer) {
    connect(t, server, Config::default(), Service::void(), Config::default()).await
}

/// Runs an async test body once per transport, each in its own actix system.
#[macro_export]
macro_rules! over_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_rt::test]
            async fn memory() {
                super::$name($crate::common::Transport::Memory).await
            }
            #[actix_rt::test]
            async fn tcp() {
                super::$name($crate::common::Transport::Tcp).await
            }
        }
    )*};
}

/// Waits until `cond` holds, polling every few milliseconds, failing after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {limit:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Counters the demo service exposes to the test.
#[derive(Default)]
pub struct Counters {
    pub slow_started: AtomicUsize,
    pub slow_finished: AtomicUsize,
    pub exits: Mutex<Vec<Option<String>>>,
}

/// The demo calculator used across tests.
pub fn calculator(counters: Arc<Counters>) -> Object {
    let c1 = counters.clone();
    let c2 = counters.clone();
    Object::builder("demo.Calculator")
        .method("add", |a: i64, b: i64| a + b)
        .method("echo", |v: Value| v)
        .method("concat", |a: String, b: String| format!("{a}{b}"))
        .try_method("div", |a: i64, b: i64| {
            if b == 0 {
                Err(RemoteError::new("builtins.ZeroDivisionError", "division by zero"))
            } else {
                Ok(a / b)
            }
        })
        .method("boom", || -> i64 { panic!("the calculator exploded") })
        .try_async_method("call_me", |cb: NetRef, x: i64| async move {
            let r: i64 = cb.call((x,)).await?;
            Ok::<_, netref::Error>(r + 1)
        })
        .async_method("slow", move |ms: u64| {
            let c = c1.clone();
            async move {
                c.slow_started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                c.slow_finished.fetch_add(1, Ordering::SeqCst);
                ms
            }
        })
        .method("make_counter", |start: i64| counter_object(start))
        .method("identity", |r: NetRef| r)
        .attr("answer", 42)
        .field("memo", "hello")
        .property("pi", || 3.25)
        .internal_method("helper", || "internal")
        .internal_method("_secret", || "private")
        .iterable(|| 0..25i64)
        .context_manager(
            || "entered",
            move |err| {
                c2.exits.lock().unwrap().push(err.map(|e| e.kind));
                false
            },
        )
        .obtainable(|| vec![1, 2, 3])
        .repr(|| "<demo.Calculator>".to_owned())
        .display(|| "a calculator".to_owned())
        .hash_with(|| 1234)
        .instance_of("demo.Base")
        .build()
}

/// A small stateful object returned by reference.
pub fn counter_object(start: i64) -> Object {
    let value = Arc::new(Mutex::new(start));
    let v1 = value.clone();
    let v2 = value.clone();
    Object::builder("demo.Counter")
        .method("incr", move || {
            let mut v = v1.lock().unwrap();
            *v += 1;
            *v
        })
        .property("value", move || *v2.lock().unwrap())
        .build()
}

/// A hand-driven peer: the test reads and writes raw frames on one end of an in-memory pipe,
/// and a real connection runs on the other end.
pub struct RawPeer {
    pub framed: tokio_util::codec::Framed<tokio::io::DuplexStream, netref::dev::FrameCodec>,
}

impl RawPeer {
    /// Starts a real connection serving `service`, and returns it with the raw end.
    pub fn start(service: Service, config: Config) -> (Peer, RawPeer) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let peer = netref::connect_stream(a, service, config);
        (peer, RawPeer { framed: tokio_util::codec::Framed::new(b, netref::dev::FrameCodec::new()) })
    }

    /// Reads the next frame (panics after 5 s or at the end of the stream).
    pub async fn recv(&mut self) -> netref::Frame<netref::WireRef> {
        use futures::StreamExt;
        tokio::time::timeout(Duration::from_secs(5), self.framed.next())
            .await
            .expect("a frame within 5 s")
            .expect("the stream is open")
            .expect("a valid frame")
    }

    /// Reads frames until one that is not a Release (releases are batched and may come anytime).
    pub async fn recv_skipping_releases(&mut self) -> netref::Frame<netref::WireRef> {
        loop {
            let f = self.recv().await;
            if !matches!(f, netref::Frame::Release { .. }) {
                return f;
            }
        }
    }

    pub async fn send(&mut self, frame: netref::Frame<netref::WireRef>) {
        use futures::SinkExt;
        self.framed.send(frame).await.expect("write to the pipe");
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.framed.get_mut().write_all(bytes).await.expect("write to the pipe");
    }

    /// Reads the real side's `Hello` (panics if the first frame is anything else) and returns
    /// the root it announced. From then on the raw end may send what that `Hello` announced.
    pub async fn recv_hello(&mut self) -> Option<netref::IdPack> {
        match self.recv().await {
            netref::Frame::Hello(hello) => {
                self.framed.codec_mut().set_peer_features(hello.features);
                hello.root
            }
            other => panic!("first frame must be Hello, got {other:?}"),
        }
    }

    /// Exchanges Hellos; returns the root the real side announced.
    pub async fn handshake(&mut self) -> Option<netref::IdPack> {
        let root = self.recv_hello().await;
        self.send(netref::Frame::Hello(netref::dev::Hello::new(netref::dev::Limits::default()))).await;
        root
    }

    /// Asserts that the real side closes the pipe and that its connection `peer` stops, within
    /// 5 s each; returns why it closed.
    pub async fn expect_closed(&mut self, peer: &Peer) -> netref::Error {
        assert!(self.closed_within(Duration::from_secs(5)).await, "the connection should close");
        tokio::time::timeout(Duration::from_secs(5), peer.closed()).await.expect("the connection stops");
        peer.close_reason().expect("a closed connection has a reason")
    }

    /// Waits for the real side to close the connection for a bad reference naming the
    /// object `instance_id`.
    pub async fn expect_bad_reference(&mut self, peer: &Peer, instance_id: u64) {
        let reason = self.expect_closed(peer).await;
        assert!(
            matches!(&reason, netref::Error::Protocol(netref::ProtocolError::BadReference(m)) if m.contains(&instance_id.to_string())),
            "expected a bad reference to {instance_id}, got: {reason}"
        );
    }

    /// Whether the real side closed the pipe (reads to the end, skipping frames).
    pub async fn closed_within(&mut self, limit: Duration) -> bool {
        use futures::StreamExt;
        tokio::time::timeout(limit, async {
            loop {
                match self.framed.next().await {
                    None | Some(Err(_)) => return,
                    Some(Ok(_)) => {}
                }
            }
        })
        .await
        .is_ok()
    }
}
