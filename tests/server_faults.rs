//! Guards the server against bad clients, at a scale CI can run: garbage bytes, an oversized
//! length prefix, a client that connects and sends nothing, a half-open client, and 2,000
//! connect/disconnect cycles — while a well-behaved client is served throughout, with no panic
//! and the connection count back to zero at the end.

mod common;

use std::{sync::Arc, time::Duration};

use common::calculator;
use netref::{prelude::*, Server};
use tokio::{io::AsyncWriteExt, net::TcpStream};

const T: Duration = Duration::from_secs(10);

async fn start() -> (Server, Peer, NetRef) {
    let config =
        Config::default().hello_timeout(Duration::from_millis(300)).peer_timeout(Some(Duration::from_millis(600)));
    let server = Server::builder(Service::shared(calculator(Arc::default())))
        .config(config)
        .bind_tcp("127.0.0.1:0")
        .await
        .unwrap();
    let good = netref::connect_tcp(server.local_addr().unwrap(), Service::void(), Config::default(), T).await.unwrap();
    let calc = good.root().await.unwrap();
    (server, good, calc)
}

async fn still_serving(calc: &NetRef, n: i64) {
    assert_eq!(calc.call_method::<i64>("add", (n, 1)).await.unwrap(), n + 1, "the good client stopped being served");
}

fn hello_bytes() -> Vec<u8> {
    use tokio_util::codec::Encoder;
    let mut buf = bytes::BytesMut::new();
    let hello: netref::Frame<netref::WireRef> =
        netref::Frame::Hello(netref::dev::Hello::new(netref::dev::Limits::default()));
    netref::dev::FrameCodec::new().encode(hello, &mut buf).unwrap();
    buf.to_vec()
}

async fn raw_client(server: &Server, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(server.local_addr().unwrap()).await.unwrap();
    if !bytes.is_empty() {
        s.write_all(bytes).await.unwrap();
    }
    s
}

/// Reads until the server closes the socket (or fails the test after `T`).
async fn server_hangs_up(mut s: TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 4096];
    tokio::time::timeout(T, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server should close a bad connection");
}

#[actix_rt::test]
async fn garbage_and_oversized_frames_close_only_that_connection() {
    let (server, good, calc) = start().await;
    let garbage = raw_client(&server, &[0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x99]).await;
    server_hangs_up(garbage).await;
    still_serving(&calc, 1).await;
    let oversized = raw_client(&server, &[0xff, 0xff, 0xff, 0xff]).await;
    server_hangs_up(oversized).await;
    still_serving(&calc, 2).await;
    // Random bytes of several sizes.
    let mut x: u32 = 0x1234_5678;
    for size in [1usize, 3, 64, 4096, 100_000] {
        let bytes: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let s = raw_client(&server, &bytes).await;
        server_hangs_up(s).await;
        still_serving(&calc, size as i64).await;
    }
    server.wait_connections(|n| n == 1).await;
    good.close().await;
    server.wait_connections(|n| n == 0).await;
    server.shutdown(T).await;
}

#[actix_rt::test]
async fn silent_and_half_open_clients_are_dropped() {
    let (server, good, calc) = start().await;
    // Connects and sends nothing: closed after the hello timeout.
    let silent = raw_client(&server, &[]).await;
    // Half-open: a valid length prefix, then only part of the body, then silence.
    let half = raw_client(&server, &[0, 0, 0, 50, 0, 1]).await;
    still_serving(&calc, 3).await;
    server_hangs_up(silent).await;
    server_hangs_up(half).await;
    still_serving(&calc, 4).await;
    server.wait_connections(|n| n == 1).await;
    good.close().await;
    server.wait_connections(|n| n == 0).await;
    server.shutdown(T).await;
}

#[actix_rt::test]
async fn two_thousand_connect_disconnect_cycles() {
    let (server, good, calc) = start().await;
    let addr = server.local_addr().unwrap();
    for i in 0..2000i64 {
        match i % 4 {
            // A full client: hello, a call, a graceful close.
            0 => {
                let c = netref::connect_tcp(addr, Service::void(), Config::default(), T).await.unwrap();
                let r = c.root().await.unwrap();
                assert_eq!(r.call_method::<i64>("add", (i, 0)).await.unwrap(), i);
                c.close().await;
            }
            // Connect and drop at once.
            1 => drop(TcpStream::connect(addr).await.unwrap()),
            // A client that says Hello and vanishes without closing (its process died).
            2 => drop(raw_client(&server, &hello_bytes()).await),
            // Reset: connect, write a partial header, drop.
            _ => drop(raw_client(&server, &[0, 0]).await),
        }
        if i % 100 == 0 {
            still_serving(&calc, i).await;
        }
    }
    still_serving(&calc, -1).await;
    server.wait_connections(|n| n <= 1).await;
    good.close().await;
    tokio::time::timeout(Duration::from_secs(30), server.wait_connections(|n| n == 0))
        .await
        .expect("connection count back to zero");
    assert!(server.accepted() >= 2001);
    server.shutdown(T).await;
}

/// A server that accepts but never says Hello: `connect_tcp` gives up at its timeout (one
/// timer covers connecting and the handshake) and closes the half-started connection.
#[actix_rt::test]
async fn connect_gives_up_on_a_server_that_never_says_hello() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = actix_rt::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        // Read until the client hangs up; never write.
        let mut sink = [0u8; 256];
        while tokio::io::AsyncReadExt::read(&mut s, &mut sink).await.is_ok_and(|n| n > 0) {}
    });
    let started = std::time::Instant::now();
    let limit = Duration::from_millis(300);
    let r = netref::connect_tcp(addr, Service::void(), Config::default(), limit).await;
    assert!(matches!(r, Err(netref::Error::Timeout(t)) if t == limit), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "gave up late: {:?}", started.elapsed());
    // The client closed its side: the silent server sees the end of the stream.
    tokio::time::timeout(Duration::from_secs(5), silent).await.expect("client hung up").unwrap();
}

/// Nothing listening: the error is the connect error, not a timeout.
#[actix_rt::test]
async fn connect_to_a_closed_port_fails_at_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let r = netref::connect_tcp(addr, Service::void(), Config::default(), Duration::from_secs(5)).await;
    assert!(matches!(r, Err(netref::Error::Io(_))), "{r:?}");
}
