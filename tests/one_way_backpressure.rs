//! Guards bounded one-way traffic: on a connection whose peer stops reading, `notify_method` and
//! `ActorRef::do_send` fail at once with `Error::Backpressure` (naming the limit and its
//! setting) once a bounded amount is buffered — the write buffer, then
//! `max_queued_notifications` calls — and never before the write buffer is full; their
//! `_when_ready` forms wait for room and complete once the peer reads again; every accepted call
//! reaches the peer, in order; a wait ends with the connection's error if it closes; a
//! connection that closes with accepted calls unwritten counts them (`Peer::unsent_one_way`).

mod common;

use std::time::Duration;

use actix::prelude::*;
use common::RawPeer;
use futures::{FutureExt, StreamExt};
use netref::{
    dev::{Hello, Limits},
    prelude::*,
    ActorRef, Frame, IdPack, RemoteActor, RemoteMessage,
};
use serde::{Deserialize, Serialize};

const T: Duration = Duration::from_secs(10);
const WRITE_BUFFER: usize = 64 << 10;
const QUEUED: usize = 32;
const PAYLOAD: usize = 4 << 10;
/// What the in-memory pipe of `RawPeer` holds unread.
const PIPE: usize = 1 << 20;

struct Log;

impl Actor for Log {
    type Context = Context<Self>;
}

impl RemoteActor for Log {
    const NAME: &'static str = "test.Log";
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
struct Write(u64, String);

impl RemoteMessage for Write {
    const NAME: &'static str = "log.Write";
}

impl Handler<Write> for Log {
    type Result = ();
    fn handle(&mut self, _: Write, _: &mut Context<Self>) {}
}

/// A connection to a raw peer that greeted it (announcing a `test.Log` root) and from then on
/// reads nothing; the netref to that root.
async fn connection_to_a_peer_that_stopped_reading() -> (Peer, RawPeer, NetRef) {
    let config = Config::default()
        .max_write_buffer(WRITE_BUFFER)
        .max_queued_notifications(QUEUED)
        // The raw peer answers no liveness ping: only the test decides when this ends.
        .peer_timeout(None);
    let (peer, mut raw) = RawPeer::start(Service::void(), config);
    raw.recv_hello().await;
    let root = IdPack { type_name: Log::NAME.into(), class_id: 1, instance_id: 1 };
    raw.send(Frame::Hello(Hello::new(Limits::default()).with_root(root))).await;
    let root = peer.root().await.unwrap();
    (peer, raw, root)
}

/// Makes one-way calls with `send` (the call number given) until one is refused, letting the
/// connection write between them; returns how many were accepted and the refusal.
async fn send_until_refused(mut send: impl FnMut(u64) -> Result<(), Error>) -> (u64, Error) {
    let most = (PIPE + WRITE_BUFFER) / PAYLOAD + QUEUED + 64;
    for n in 0..most as u64 {
        if let Err(e) = send(n) {
            return (n, e);
        }
        // Let the connection take and write what was queued, as a peer that reads would.
        tokio::task::yield_now().await;
    }
    panic!("{most} one-way calls accepted by a peer that reads nothing: the buffering is unbounded");
}

fn assert_backpressure(e: &Error) {
    assert!(
        matches!(e, Error::Backpressure(m) if m.contains("max_queued_notifications") && m.contains(&QUEUED.to_string())),
        "expected back-pressure naming its setting, got: {e}"
    );
}

/// The call numbers of the `Notify` frames the raw peer reads, up to `count` of them.
async fn read_notifications(
    raw: &mut RawPeer,
    count: u64,
    number: impl Fn(&Value<netref::WireRef>) -> u64,
) -> Vec<u64> {
    let mut numbers = Vec::new();
    while (numbers.len() as u64) < count {
        let frame = tokio::time::timeout(T, raw.framed.next()).await.expect("frames").expect("open").expect("valid");
        if let Frame::Notify { args, .. } = frame {
            numbers.push(number(&args));
        }
    }
    numbers
}

/// The number in a `notify_method("write", (text, n))` frame:
/// `(target, "write", (text, n), kwargs)`.
fn method_call_number(args: &Value<netref::WireRef>) -> u64 {
    let Value::Tuple(items) = args else { panic!("{args:?}") };
    let Value::Tuple(call_args) = &items[2] else { panic!("{args:?}") };
    match call_args[1] {
        Value::Int(n) => n as u64,
        ref other => panic!("{other:?}"),
    }
}

#[actix_rt::test]
async fn notify_method_refuses_at_once_when_the_connection_is_full_and_its_waiting_form_gets_through() {
    let (peer, mut raw, root) = connection_to_a_peer_that_stopped_reading().await;
    let text = "x".repeat(PAYLOAD);
    let (accepted, refusal) = send_until_refused(|n| root.notify_method("write", (text.as_str(), n))).await;
    assert_backpressure(&refusal);
    // Refused only once the pipe and the write buffer were full and the queue behind them too.
    let full = (PIPE + WRITE_BUFFER) / (PAYLOAD + 256);
    assert!(accepted as usize >= full, "refused after {accepted} calls, before the buffers were full");
    let stats = peer.stats().await.unwrap();
    assert!(stats.write_buffer <= WRITE_BUFFER + PAYLOAD + 1024, "write buffer grew to {}", stats.write_buffer);

    // The waiting form waits while the peer reads nothing...
    let mut waiting = root.notify_method_when_ready("write", (text.as_str(), accepted));
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!((&mut waiting).now_or_never().is_none(), "room appeared with a peer that reads nothing");
    // ...and gets through once it reads again; nothing accepted was dropped, the order held.
    let (sent, numbers) =
        tokio::join!(tokio::time::timeout(T, waiting), read_notifications(&mut raw, accepted + 1, method_call_number));
    sent.expect("room within the limit").expect("the waiting call is accepted");
    assert_eq!(numbers, (0..=accepted).collect::<Vec<_>>());
    peer.close().await;
    assert_eq!(peer.unsent_one_way(), 0, "every accepted call was written");
}

#[actix_rt::test]
async fn do_send_refuses_at_once_when_the_connection_is_full_and_its_waiting_form_gets_through() {
    let (peer, mut raw, root) = connection_to_a_peer_that_stopped_reading().await;
    let log: ActorRef<Log> = ActorRef::from_netref(root).unwrap();
    let text = "y".repeat(PAYLOAD);
    let (accepted, refusal) = send_until_refused(|n| log.do_send(Write(n, text.clone()))).await;
    assert_backpressure(&refusal);
    let waiting = log.do_send_when_ready(Write(accepted, text.clone()));
    let (sent, numbers) =
        tokio::join!(tokio::time::timeout(T, waiting), read_notifications(&mut raw, accepted + 1, |_| 0));
    sent.expect("room within the limit").expect("the waiting message is accepted");
    assert_eq!(numbers.len() as u64, accepted + 1, "every accepted message reached the peer");
    peer.close().await;
}

#[actix_rt::test]
async fn a_caller_waiting_for_room_gets_the_error_of_a_connection_that_closes() {
    let (peer, _raw, root) = connection_to_a_peer_that_stopped_reading().await;
    let text = "z".repeat(PAYLOAD);
    let (_, refusal) = send_until_refused(|n| root.notify_method("write", (text.as_str(), n))).await;
    assert_backpressure(&refusal);
    let waiting = root.notify_method_when_ready("write", (text.as_str(), 0));
    peer.start_close("the test gives up");
    let err = tokio::time::timeout(T, waiting).await.expect("the wait ends with the connection").unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed(_)), "{err}");
}

#[actix_rt::test]
async fn a_connection_that_closes_with_accepted_calls_unwritten_counts_them() {
    let (peer, _raw, root) = connection_to_a_peer_that_stopped_reading().await;
    let text = "u".repeat(PAYLOAD);
    let (_, refusal) = send_until_refused(|n| root.notify_method("write", (text.as_str(), n))).await;
    assert_backpressure(&refusal);
    assert_eq!(peer.unsent_one_way(), 0, "nothing is lost while the connection is up");
    tokio::time::timeout(T, peer.close_within("the test gives up", Duration::ZERO)).await.expect("closed");
    assert_eq!(peer.unsent_one_way(), QUEUED as u64, "the full one-way queue was never written");
}
