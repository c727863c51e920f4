//! Guards how a server names a peer that dies part way through a frame, on both wires (native
//! and RPyC), with a raw TCP client: after the connection worked (a whole frame read) the end
//! of the stream inside a frame is a lost connection (`Error::ConnectionClosed`), not a
//! protocol error; before any whole frame it stays a protocol error (the peer may not speak
//! the wire at all); and garbage is a protocol error whenever it comes.

use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use netref::{
    dev::{
        rpyc::{Brine, MsgType, RpycChannelCodec},
        FrameCodec, Handle, Hello, Limits,
    },
    prelude::*,
    Frame, ProtocolError,
};
use tokio::{io::AsyncWriteExt, net::TcpStream};
use tokio_util::codec::{Encoder, Framed};

const T: Duration = Duration::from_secs(5);

fn service() -> Service {
    Service::shared(Object::builder("test.Calc").method("add", |a: i64, b: i64| a + b).build())
}

async fn server(rpyc: bool) -> Server {
    let builder = Server::builder(service());
    let builder = if rpyc { builder.rpyc() } else { builder };
    builder.bind_tcp("127.0.0.1:0").await.unwrap()
}

/// The server's side of the one connection it has, once it is there.
async fn the_connection(server: &Server) -> Peer {
    tokio::time::timeout(T, async {
        loop {
            if let Some(peer) = server.peers().pop() {
                return peer;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the server lists the connection")
}

/// Why the server closed `peer`, once it has.
async fn close_reason(peer: &Peer) -> Error {
    tokio::time::timeout(T, peer.closed()).await.expect("the server ends the connection");
    peer.close_reason().expect("a closed connection has a reason")
}

/// A native client that has exchanged Hellos and one ping with the server.
async fn native_client_that_worked(server: &Server) -> Framed<TcpStream, FrameCodec> {
    let stream = TcpStream::connect(server.local_addr().unwrap()).await.unwrap();
    let mut framed = Framed::new(stream, FrameCodec::new());
    let first = tokio::time::timeout(T, framed.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(first, Frame::Hello(_)), "{first:?}");
    framed.send(Frame::Hello(Hello::new(Limits::default()))).await.unwrap();
    let args = Value::Tuple(vec![Value::Str("hi".into())]);
    framed.send(Frame::Request { seq: 1, handle: Handle::Ping, args, deadline: None }).await.unwrap();
    loop {
        match tokio::time::timeout(T, framed.next()).await.unwrap().unwrap().unwrap() {
            Frame::Reply { seq: 1, .. } => return framed,
            Frame::Release { .. } => {}
            other => panic!("expected the ping's reply, got {other:?}"),
        }
    }
}

/// The bytes of a native frame, whole.
fn native_frame(frame: Frame<netref::WireRef>) -> BytesMut {
    let mut out = BytesMut::new();
    FrameCodec::new().encode(frame, &mut out).unwrap();
    out
}

fn a_ping(seq: u64) -> Frame<netref::WireRef> {
    Frame::Request { seq, handle: Handle::Ping, args: Value::Tuple(vec![Value::Str("x".repeat(64))]), deadline: None }
}

/// Writes `bytes` and closes the socket.
async fn write_and_close(mut stream: TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    stream.shutdown().await.unwrap();
}

fn assert_lost_inside_a_frame(reason: &Error) {
    assert!(
        matches!(reason, Error::ConnectionClosed(m) if m.contains("lost") && m.contains("inside a frame")),
        "expected a lost connection, got: {reason:?}"
    );
}

#[actix_rt::test]
async fn native_a_peer_dying_inside_a_frame_after_it_worked_is_a_lost_connection() {
    let server = server(false).await;
    let framed = native_client_that_worked(&server).await;
    let peer = the_connection(&server).await;
    let frame = native_frame(a_ping(2));
    write_and_close(framed.into_inner(), &frame[..frame.len() / 2]).await;
    assert_lost_inside_a_frame(&close_reason(&peer).await);
    server.shutdown(Duration::from_secs(1)).await;
}

#[actix_rt::test]
async fn native_half_a_first_frame_is_a_protocol_error() {
    let server = server(false).await;
    let stream = TcpStream::connect(server.local_addr().unwrap()).await.unwrap();
    let peer = the_connection(&server).await;
    let hello = native_frame(Frame::Hello(Hello::new(Limits::default())));
    write_and_close(stream, &hello[..hello.len() / 2]).await;
    let reason = close_reason(&peer).await;
    assert!(matches!(reason, Error::Protocol(ProtocolError::TruncatedAtEof { .. })), "{reason:?}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[actix_rt::test]
async fn native_garbage_after_the_connection_worked_is_still_a_protocol_error() {
    let server = server(false).await;
    let framed = native_client_that_worked(&server).await;
    let peer = the_connection(&server).await;
    // A whole frame (length prefix 4) of a kind no version knows.
    let mut stream = framed.into_inner();
    stream.write_all(&[0, 0, 0, 4, 0xff, 0xff, 0xff, 0x7f]).await.unwrap();
    let reason = close_reason(&peer).await;
    assert!(matches!(reason, Error::Protocol(_)), "{reason:?}");
    server.shutdown(Duration::from_secs(1)).await;
}

/// An RPyC request frame: `(handler, (LABEL_TUPLE, args))`.
fn rpyc_request(seq: u64, handler: i64) -> BytesMut {
    let mut out = BytesMut::new();
    let args = Brine::tuple([Brine::Int(handler), Brine::tuple([Brine::Int(1), Brine::tuple([])])]);
    RpycChannelCodec::new().encode_message(MsgType::Request, seq, &args, &mut out).unwrap();
    out
}

/// An RPyC client that asked for the server's root (GETROOT, handler 3) and got its reply.
async fn rpyc_client_that_worked(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(server.local_addr().unwrap()).await.unwrap();
    let mut framed = Framed::new(stream, RpycChannelCodec::new());
    framed.get_mut().write_all(&rpyc_request(1, 3)).await.unwrap();
    let reply = tokio::time::timeout(T, framed.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(reply[0], MsgType::Reply.as_u8(), "GETROOT answered with a reply");
    framed.into_inner()
}

#[actix_rt::test]
async fn rpyc_a_peer_dying_inside_a_frame_after_it_worked_is_a_lost_connection() {
    let server = server(true).await;
    let stream = rpyc_client_that_worked(&server).await;
    let peer = the_connection(&server).await;
    let frame = rpyc_request(2, 3);
    write_and_close(stream, &frame[..frame.len() / 2]).await;
    assert_lost_inside_a_frame(&close_reason(&peer).await);
    server.shutdown(Duration::from_secs(1)).await;
}

#[actix_rt::test]
async fn rpyc_half_a_first_frame_is_a_protocol_error() {
    let server = server(true).await;
    let stream = TcpStream::connect(server.local_addr().unwrap()).await.unwrap();
    let peer = the_connection(&server).await;
    let frame = rpyc_request(1, 3);
    write_and_close(stream, &frame[..frame.len() / 2]).await;
    let reason = close_reason(&peer).await;
    assert!(matches!(reason, Error::Protocol(ProtocolError::TruncatedAtEof { .. })), "{reason:?}");
    server.shutdown(Duration::from_secs(1)).await;
}

#[actix_rt::test]
async fn rpyc_garbage_after_the_connection_worked_is_still_a_protocol_error() {
    let server = server(true).await;
    let mut stream = rpyc_client_that_worked(&server).await;
    let peer = the_connection(&server).await;
    // A whole channel frame (uncompressed) whose message type is no RPyC message.
    let mut frame = BytesMut::new();
    RpycChannelCodec::new().encode(&[0x7f_u8, 0, 0][..], &mut frame).unwrap();
    stream.write_all(&frame).await.unwrap();
    let reason = close_reason(&peer).await;
    assert!(matches!(reason, Error::Protocol(_)), "{reason:?}");
    server.shutdown(Duration::from_secs(1)).await;
}
