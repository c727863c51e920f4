//! Guards the kernel's part of peer loss: every TCP socket netref connects or accepts carries
//! TCP keepalive and `TCP_USER_TIMEOUT` matched to the connection's `peer_timeout`, read back
//! with getsockopt from the live sockets of both ends of a connection (the connected and the
//! accepted socket, through `from_tcp`, the path `connect` and the accept loop take too).
#![cfg(any(target_os = "linux", target_os = "android"))]

use std::time::Duration;

use netref::prelude::*;
use socket2::SockRef;
use tokio::net::{TcpListener, TcpStream};

/// What the kernel was told for one socket.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    nodelay: bool,
    keepalive: bool,
    idle: Duration,
    interval: Duration,
    probes: u32,
    user_timeout: Option<Duration>,
}

fn options(socket: &std::net::TcpStream) -> Options {
    let s = SockRef::from(socket);
    Options {
        nodelay: s.tcp_nodelay().unwrap(),
        keepalive: s.keepalive().unwrap(),
        idle: s.tcp_keepalive_time().unwrap(),
        interval: s.tcp_keepalive_interval().unwrap(),
        probes: s.tcp_keepalive_retries().unwrap(),
        user_timeout: s.tcp_user_timeout().unwrap(),
    }
}

/// A tokio socket handed to netref, and a second descriptor of the same socket kept to read its
/// options.
fn split_off_a_probe(stream: TcpStream) -> (TcpStream, std::net::TcpStream) {
    let std = stream.into_std().unwrap();
    let probe = std.try_clone().unwrap();
    (TcpStream::from_std(std).unwrap(), probe)
}

/// A connection over loopback TCP whose both ends run `config`; the probes of the client's
/// (connected) and the server's (accepted) sockets.
async fn connection(config: Config) -> (Peer, Peer, std::net::TcpStream, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let connecting = TcpStream::connect(listener.local_addr().unwrap());
    let (client, accepted) = tokio::join!(connecting, listener.accept());
    let (client, client_probe) = split_off_a_probe(client.unwrap());
    let (accepted, server_probe) = split_off_a_probe(accepted.unwrap().0);
    let calc = Object::builder("test.Calc").method("add", |a: i64, b: i64| a + b).build();
    let server = netref::from_tcp(accepted, Service::shared(calc), config.clone()).unwrap();
    let client = netref::from_tcp(client, Service::void(), config).unwrap();
    let root = client.root().await.unwrap();
    assert_eq!(root.call_method::<i64>("add", (1, 2)).await.unwrap(), 3, "the connection works");
    (server, client, server_probe, client_probe)
}

fn expected(idle: u64, probes: u32, user_timeout: Duration) -> Options {
    let every = Duration::from_secs(idle);
    Options { nodelay: true, keepalive: true, idle: every, interval: every, probes, user_timeout: Some(user_timeout) }
}

#[actix_rt::test]
async fn both_ends_get_keepalive_and_a_user_timeout_matching_the_default_peer_timeout() {
    let (server, client, server_probe, client_probe) = connection(Config::default()).await;
    let want = expected(5, 2, Duration::from_secs(15));
    assert_eq!(options(&client_probe), want, "the connected socket");
    assert_eq!(options(&server_probe), want, "the accepted socket");
    client.close().await;
    tokio::time::timeout(Duration::from_secs(5), server.closed()).await.expect("the server's end closes too");
}

#[actix_rt::test]
async fn a_shorter_peer_timeout_shortens_the_kernels_limits_too() {
    let (_server, client, server_probe, client_probe) =
        connection(Config::default().peer_timeout(Some(Duration::from_secs(3)))).await;
    let want = expected(1, 2, Duration::from_secs(3));
    assert_eq!(options(&client_probe), want);
    assert_eq!(options(&server_probe), want);
    client.close().await;
}

#[actix_rt::test]
async fn without_a_peer_timeout_the_kernel_still_finds_a_vanished_host_in_two_minutes() {
    let (_server, client, server_probe, client_probe) = connection(Config::default().peer_timeout(None)).await;
    let want = Options { interval: Duration::from_secs(10), ..expected(60, 6, Duration::from_secs(120)) };
    assert_eq!(options(&client_probe), want);
    assert_eq!(options(&server_probe), want);
    client.close().await;
}
