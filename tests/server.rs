//! Guards the server: TCP over IPv4 and IPv6 and Unix sockets; worker arbiters; shared and
//! per-connection services; `max_connections`; the authenticator and credentials; graceful
//! shutdown that loses no reply due before the deadline; one-shot mode; heartbeats declaring a
//! silent peer lost.

mod common;

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use common::{calculator, wait_until, RawPeer};
use netref::{prelude::*, Server};

const T: Duration = Duration::from_secs(5);

fn threads_service() -> Service {
    Service::per_connection(|_| {
        Object::builder("demo.Where").method("thread", || format!("{:?}", std::thread::current().id())).build()
    })
}

#[actix_rt::test]
async fn serves_tcp_v4_and_v6() {
    for addr in ["127.0.0.1:0", "[::1]:0"] {
        let server = match Server::builder(Service::shared(calculator(Arc::default()))).bind_tcp(addr).await {
            Ok(s) => s,
            Err(e) if addr.starts_with('[') => {
                eprintln!("IPv6 loopback unavailable here ({e}); skipping the v6 half");
                continue;
            }
            Err(e) => panic!("{e}"),
        };
        let client =
            netref::connect_tcp(server.local_addr().unwrap(), Service::void(), Config::default(), T).await.unwrap();
        let calc = client.root().await.unwrap();
        assert_eq!(calc.call_method::<i64>("add", (1, 2)).await.unwrap(), 3);
        client.close().await;
        server.shutdown(T).await;
        assert_eq!(server.connections(), 0);
    }
}

#[actix_rt::test]
async fn serves_unix_sockets() {
    let dir = std::env::temp_dir().join(format!("netref-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("calc.sock");
    let _ = std::fs::remove_file(&path);
    let server = Server::builder(Service::shared(calculator(Arc::default()))).bind_unix(&path).await.unwrap();
    let client = netref::connect_unix(&path, Service::void(), Config::default(), T).await.unwrap();
    let calc = client.root().await.unwrap();
    assert_eq!(calc.call_method::<i64>("add", (20, 22)).await.unwrap(), 42);
    client.close().await;
    server.shutdown(T).await;
    assert!(!path.exists(), "the socket file is removed on shutdown");
    let _ = std::fs::remove_dir_all(&dir);
}

#[actix_rt::test]
async fn workers_spread_connections_across_arbiters() {
    let server = Server::builder(threads_service()).workers(2).bind_tcp("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let mut threads = HashSet::new();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let client = netref::connect_tcp(addr, Service::void(), Config::default(), T).await.unwrap();
        let root = client.root().await.unwrap();
        threads.insert(root.call_method::<String>("thread", ()).await.unwrap());
        clients.push(client);
    }
    let here = format!("{:?}", std::thread::current().id());
    assert_eq!(threads.len(), 2, "4 connections on 2 workers: {threads:?}");
    assert!(!threads.contains(&here), "connections must run on the workers, not the accepting thread");
    for c in &clients {
        c.close().await;
    }
    server.shutdown(T).await;
}

#[actix_rt::test]
async fn shared_and_per_connection_services() {
    let shared = Server::builder(Service::shared(calculator(Arc::default()))).bind_tcp("127.0.0.1:0").await.unwrap();
    let per =
        Server::builder(Service::per_connection(|_| calculator(Arc::default()))).bind_tcp("127.0.0.1:0").await.unwrap();
    let mut ids = Vec::new();
    for server in [&shared, &per] {
        let a = netref::connect_tcp(server.local_addr().unwrap(), Service::void(), Config::default(), T).await.unwrap();
        let b = netref::connect_tcp(server.local_addr().unwrap(), Service::void(), Config::default(), T).await.unwrap();
        let (ra, rb) = (a.root().await.unwrap(), b.root().await.unwrap());
        ids.push((ra.id_pack().instance_id, rb.id_pack().instance_id));
        a.close().await;
        b.close().await;
    }
    assert_eq!(ids[0].0, ids[0].1, "a shared service has one root");
    assert_ne!(ids[1].0, ids[1].1, "a per-connection service has a root per connection");
    shared.shutdown(T).await;
    per.shutdown(T).await;
}

#[actix_rt::test]
async fn max_connections_refuses_the_excess() {
    let server = Server::builder(Service::shared(calculator(Arc::default())))
        .max_connections(2)
        .bind_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let a = netref::connect_tcp(addr, Service::void(), Config::default(), T).await.unwrap();
    let b = netref::connect_tcp(addr, Service::void(), Config::default(), T).await.unwrap();
    a.root().await.unwrap();
    b.root().await.unwrap();
    // The excess connection is closed at once: connecting (which waits for the handshake) fails.
    let err = netref::connect_tcp(addr, Service::void(), Config::default(), T).await.unwrap_err();
    assert!(matches!(err, netref::Error::ConnectionClosed(_)), "{err}");
    assert_eq!(server.refused(), 1);
    a.close().await;
    server.wait_connections(|n| n == 1).await;
    let d = netref::connect_tcp(addr, Service::void(), Config::default(), T).await.unwrap();
    assert_eq!(d.root().await.unwrap().call_method::<i64>("add", (1, 1)).await.unwrap(), 2);
    server.shutdown(T).await;
}

#[derive(Debug)]
struct Token(String);

#[actix_rt::test]
async fn authenticator_runs_first_and_sets_credentials() {
    let seen = Arc::new(AtomicUsize::new(0));
    let s1 = seen.clone();
    let service = Service::per_connection(|peer| {
        let who = peer.credentials::<Token>().map(|t| t.0.clone()).unwrap_or_default();
        Object::builder("demo.Whoami").method("whoami", move || who.clone()).build()
    });
    let server = Server::builder(service)
        .authenticator(move |info| {
            let n = s1.fetch_add(1, Ordering::SeqCst);
            if n == 1 {
                return Err("second connection refused by the test".into());
            }
            let addr = info.peer_addr.clone().unwrap_or_default();
            Ok(Some(Arc::new(Token(format!("user@{addr}"))) as Arc<dyn std::any::Any + Send + Sync>))
        })
        .bind_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let ok = netref::connect_tcp(addr, Service::void(), Config::default(), T).await.unwrap();
    let who: String = ok.root().await.unwrap().call_method("whoami", ()).await.unwrap();
    assert!(who.starts_with("user@127.0.0.1:"), "{who}");
    let refused = netref::connect_tcp(addr, Service::void(), Config::default(), T).await;
    assert!(refused.is_err(), "a refused connection must not complete its handshake");
    assert_eq!(server.refused(), 1);
    server.shutdown(T).await;
}

/// User code runs when a connection starts (the authenticator, a per-connection root
/// factory); without workers it runs in the accept loop itself. A panic there refuses that
/// connection only: it is counted as refused, leaves no connection counted, and the next
/// connection is served.
#[actix_rt::test]
async fn a_panic_while_starting_a_connection_refuses_only_that_connection() {
    for workers in [0, 1] {
        let roots = Arc::new(AtomicUsize::new(0));
        let logins = Arc::new(AtomicUsize::new(0));
        let (r, l) = (roots.clone(), logins.clone());
        let service = Service::per_connection(move |_| {
            if r.fetch_add(1, Ordering::SeqCst) == 0 {
                panic!("the test's root factory fails once");
            }
            calculator(Arc::default())
        });
        let server = Server::builder(service)
            .workers(workers)
            .authenticator(move |_| {
                if l.fetch_add(1, Ordering::SeqCst) == 1 {
                    panic!("the test's authenticator fails once");
                }
                Ok(None)
            })
            .bind_tcp("127.0.0.1:0")
            .await
            .unwrap();
        let addr = server.local_addr().unwrap();
        // The first connection's root factory panics, the second one's authenticator.
        for n in 1..=2 {
            let refused = netref::connect_tcp(addr, Service::void(), Config::default(), T).await;
            assert!(refused.is_err(), "workers({workers}): connection {n} must be refused");
            // On a worker the refusal is counted after the socket is dropped (which is what
            // the client saw): wait for the count rather than read it at once.
            wait_until(T, "the refusal is counted", || async { server.refused() >= n }).await;
            assert_eq!(server.refused(), n, "workers({workers})");
        }
        server.wait_connections(|n| n == 0).await;
        let ok = netref::connect_tcp(addr, Service::void(), Config::default(), T).await.unwrap();
        assert_eq!(ok.root().await.unwrap().call_method::<i64>("add", (2, 3)).await.unwrap(), 5, "workers({workers})");
        assert_eq!(server.connections(), 1);
        ok.close().await;
        server.wait_connections(|n| n == 0).await;
        server.shutdown(T).await;
    }
}

/// `serve_tcp` starts connections in its accept loop: a panicking root factory refuses that
/// connection, and the loop goes on.
#[actix_rt::test]
async fn serve_tcp_survives_a_panicking_root_factory() {
    let roots = Arc::new(AtomicUsize::new(0));
    let r = roots.clone();
    let service = Service::per_connection(move |_| {
        if r.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("the test's root factory fails once");
        }
        calculator(Arc::default())
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = actix_rt::spawn(netref::serve_tcp(listener, service, Config::default(), None));
    let refused = netref::connect_tcp(addr, Service::void(), Config::default(), T).await;
    assert!(refused.is_err(), "the connection whose root factory panicked must be refused");
    let ok = netref::connect_tcp(addr, Service::void(), Config::default(), T).await.unwrap();
    assert_eq!(ok.root().await.unwrap().call_method::<i64>("add", (2, 3)).await.unwrap(), 5);
    assert!(!server.is_finished());
    ok.close().await;
    server.abort();
}

#[actix_rt::test]
async fn shutdown_lets_calls_in_flight_finish() {
    let counters = Arc::new(common::Counters::default());
    let server = Server::builder(Service::shared(calculator(counters.clone())))
        .workers(1)
        .bind_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let client =
        netref::connect_tcp(server.local_addr().unwrap(), Service::void(), Config::default(), T).await.unwrap();
    let calc = client.root().await.unwrap();
    let results: Vec<_> = (0..10).map(|_| calc.call_method::<u64>("slow", (150u64,))).collect();
    wait_until(T, "all calls started", || async { counters.slow_started.load(Ordering::SeqCst) == 10 }).await;
    server.shutdown(Duration::from_secs(3)).await;
    for r in results {
        assert_eq!(r.await.unwrap(), 150, "a reply due before the deadline was lost");
    }
    assert_eq!(server.connections(), 0);
    assert!(!server.is_accepting());
    let late = netref::connect_tcp(
        server.local_addr().unwrap(),
        Service::void(),
        Config::default(),
        Duration::from_millis(500),
    )
    .await;
    if let Ok(peer) = late {
        assert!(peer.root().await.is_err(), "a stopped server must not serve");
    }
}

#[actix_rt::test]
async fn one_shot_serves_one_connection() {
    let server =
        Server::builder(Service::shared(calculator(Arc::default()))).one_shot().bind_tcp("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let client = netref::connect_tcp(addr, Service::void(), Config::default(), T).await.unwrap();
    assert_eq!(client.root().await.unwrap().call_method::<i64>("add", (2, 2)).await.unwrap(), 4);
    wait_until(T, "stops accepting", || async { !server.is_accepting() }).await;
    client.close().await;
    tokio::time::timeout(T, server.stopped()).await.expect("a one-shot server stops after its connection");
    assert_eq!(server.accepted(), 1);
}

#[actix_rt::test]
async fn heartbeat_declares_a_silent_peer_lost() {
    let config = Config::default().peer_timeout(Some(Duration::from_millis(60)));
    let (peer, mut raw) = RawPeer::start(Service::void(), config);
    raw.handshake().await;
    // The raw side reads the pings but never answers.
    let ping = raw.recv().await;
    assert!(matches!(ping, netref::Frame::Request { handle: netref::Handle::Ping, .. }), "{ping:?}");
    tokio::time::timeout(T, peer.closed()).await.expect("a silent peer is declared lost");
    let reason = peer.close_reason().unwrap().to_string();
    assert!(reason.contains("peer lost"), "{reason}");
}

#[actix_rt::test]
async fn heartbeat_keeps_an_answering_peer() {
    let config = Config::default().peer_timeout(Some(Duration::from_millis(300)));
    let (server, client) =
        netref::connect_pair_with(Service::shared(calculator(Arc::default())), config.clone(), Service::void(), config);
    let calc = client.root().await.unwrap();
    // Idle for many heartbeat intervals, waiting on the server's own clock: still connected.
    let started = tokio::time::Instant::now();
    wait_until(T, "ten liveness intervals pass", || async { started.elapsed() > Duration::from_millis(1000) }).await;
    assert!(!server.is_closed() && !client.is_closed(), "{:?} / {:?}", server.close_reason(), client.close_reason());
    assert_eq!(calc.call_method::<i64>("add", (1, 2)).await.unwrap(), 3);
}

#[actix_rt::test]
async fn connecting_to_another_protocol_version_fails_at_connect() {
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::Encoder;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fake = actix_rt::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = bytes::BytesMut::new();
        let hello: netref::Frame<netref::WireRef> = netref::Frame::Hello(netref::dev::Hello {
            version: netref::dev::PROTOCOL_VERSION + 1,
            features: 0,
            limits: netref::dev::Limits::default(),
            root: None,
        });
        netref::dev::FrameCodec::new().encode(hello, &mut buf).unwrap();
        s.write_all(&buf).await.unwrap();
        // Keep the socket open until the client hangs up.
        let mut sink = [0u8; 256];
        while tokio::io::AsyncReadExt::read(&mut s, &mut sink).await.is_ok_and(|n| n > 0) {}
    });
    let err = netref::connect_tcp(addr, Service::void(), Config::default(), T).await.unwrap_err();
    assert!(matches!(err, netref::Error::Protocol(netref::ProtocolError::VersionMismatch { .. })), "{err}");
    tokio::time::timeout(T, fake).await.unwrap().unwrap();
}
