//! Clients that write before their connection is accepted: the `Hello` and the first calls
//! (early requests) are already waiting when the server starts the connection. Checks that
//! everything around that works: several frames in one read, a long first frame, later
//! requests, a client gone before the accept.

mod common;

use std::{io::Write, sync::Arc, time::Duration};

use bytes::BytesMut;
use common::calculator;
use futures::StreamExt;
use netref::{
    dev::{FrameCodec, Hello, Limits, ROOT_ALIAS},
    prelude::*,
    Frame, Handle, IdPack, RefLabel, Server, WireRef,
};
use tokio_util::codec::{Encoder, FramedRead};

const T: Duration = Duration::from_secs(5);

fn alias() -> WireRef {
    WireRef { label: RefLabel::Local, id: IdPack { type_name: String::new(), class_id: 0, instance_id: ROOT_ALIAS } }
}

fn call(seq: u64, method: &str, args: Vec<Value<WireRef>>) -> Frame<WireRef> {
    Frame::Request {
        seq,
        handle: Handle::CallAttr,
        args: Value::Tuple(vec![Value::Ref(alias()), Value::Str(method.into()), Value::Tuple(args), Value::None]),
        deadline: None,
    }
}

fn encode(frames: &[Frame<WireRef>]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    for f in frames {
        FrameCodec::new().encode(f.clone(), &mut buf).unwrap();
    }
    buf.to_vec()
}

fn hello() -> Frame<WireRef> {
    Frame::Hello(Hello::new(Limits::default()))
}

/// Connects with a blocking socket (the kernel completes it from the listen backlog, before
/// any accept) and writes `bytes` at once.
fn connect_and_write(addr: std::net::SocketAddr, bytes: &[u8]) -> std::net::TcpStream {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(bytes).unwrap();
    s
}

type Frames = FramedRead<tokio::net::TcpStream, FrameCodec>;

fn frames(s: std::net::TcpStream) -> Frames {
    s.set_nonblocking(true).unwrap();
    FramedRead::new(tokio::net::TcpStream::from_std(s).unwrap(), FrameCodec::new())
}

async fn next(frames: &mut Frames) -> Frame<WireRef> {
    tokio::time::timeout(T, frames.next()).await.expect("a frame in time").expect("open").expect("valid")
}

async fn reply_of(frames: &mut Frames, seq: u64) -> Value<WireRef> {
    match next(frames).await {
        Frame::Reply { seq: s, value } if s == seq => value,
        other => panic!("expected the reply to {seq}, got {other:?}"),
    }
}

/// Hello and two calls in one write; later a third call on the same socket.
async fn hello_and_calls_written_before_the_accept(addr: std::net::SocketAddr) {
    let s = connect_and_write(
        addr,
        &encode(&[
            hello(),
            call(1, "add", vec![Value::Int(2), Value::Int(3)]),
            call(2, "concat", vec![Value::Str("a".into()), Value::Str("b".into())]),
        ]),
    );
    let mut writer = s.try_clone().unwrap();
    let mut rx = frames(s);
    assert!(matches!(next(&mut rx).await, Frame::Hello(_)), "the server's Hello comes first");
    assert_eq!(reply_of(&mut rx, 1).await, Value::Int(5));
    assert_eq!(reply_of(&mut rx, 2).await, Value::Str("ab".into()));
    // A later call on the same socket.
    writer.write_all(&encode(&[call(3, "add", vec![Value::Int(20), Value::Int(22)])])).unwrap();
    assert_eq!(reply_of(&mut rx, 3).await, Value::Int(42));
}

#[actix_rt::test]
async fn serve_tcp_serves_what_came_before_the_accept() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Spawned, not yet run: the client below connects and writes before the accept.
    actix_rt::spawn(netref::serve_tcp(listener, Service::shared(calculator(Arc::default())), Config::default(), None));
    hello_and_calls_written_before_the_accept(addr).await;
}

#[actix_rt::test]
async fn server_serves_what_came_before_the_accept() {
    let server = Server::builder(Service::shared(calculator(Arc::default()))).bind_tcp("127.0.0.1:0").await.unwrap();
    hello_and_calls_written_before_the_accept(server.local_addr().unwrap()).await;
    server.shutdown(T).await;
}

/// A first request longer than the connection's first read buffer.
#[actix_rt::test]
async fn a_long_first_frame_is_served() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    actix_rt::spawn(netref::serve_tcp(listener, Service::shared(calculator(Arc::default())), Config::default(), None));
    let long = "x".repeat(5000);
    let s = connect_and_write(addr, &encode(&[hello(), call(1, "echo", vec![Value::Str(long.clone())])]));
    let mut rx = frames(s);
    assert!(matches!(next(&mut rx).await, Frame::Hello(_)));
    assert_eq!(reply_of(&mut rx, 1).await, Value::Str(long));
}

/// A client that connects, writes half a Hello and leaves: the connection ends with a
/// truncation error, and the server goes on serving the next client.
#[actix_rt::test]
async fn a_client_gone_before_the_accept_leaves_the_server_serving() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    actix_rt::spawn(netref::serve_tcp(listener, Service::shared(calculator(Arc::default())), Config::default(), None));
    let bytes = encode(&[hello()]);
    drop(connect_and_write(addr, &bytes[..bytes.len() / 2]));
    drop(std::net::TcpStream::connect(addr).unwrap());
    let peer = netref::connect_tcp(addr, Service::void(), Config::default(), T).await.unwrap();
    let sum: i64 = peer.root().await.unwrap().call_method("add", (1, 2)).await.unwrap();
    assert_eq!(sum, 3);
}
