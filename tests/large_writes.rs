//! Guards the write path for large byte strings: they go to the transport from their own
//! buffer (not copied into the write buffer), in frame order, intact through partial writes,
//! over vectored and non-vectored transports alike; a frame that cannot be sent leaves nothing
//! behind and takes back the exports it counted; queued large strings count against
//! `max_write_buffer`.

mod common;

use std::{
    io::{self, IoSlice},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use common::{wait_until, RawPeer};
use netref::{prelude::*, Data, RemoteError, SharedBytes};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

/// What a [`Trickle`] transport saw.
#[derive(Default)]
struct WriteLog {
    /// Start addresses of every slice offered to a vectored write.
    slice_starts: Vec<usize>,
    vectored_calls: usize,
    plain_calls: usize,
}

/// A transport that takes at most a few bytes per write call (cycling through `steps`), makes
/// every fifth call wait, and says it supports vectored writes or not, as told.
struct Trickle {
    inner: DuplexStream,
    vectored: bool,
    steps: &'static [usize],
    calls: usize,
    log: Arc<Mutex<WriteLog>>,
}

/// Partial writes of every kind: single bytes, a few bytes, and sizes around buffer boundaries.
const TRICKLE: &[usize] = &[1, 3, 7, 64, 1000, 4093, 16 << 10, 100 << 10];
/// No limit per call.
const FREE: &[usize] = &[usize::MAX];

impl Trickle {
    fn new(inner: DuplexStream, vectored: bool, steps: &'static [usize]) -> (Trickle, Arc<Mutex<WriteLog>>) {
        let log = Arc::new(Mutex::new(WriteLog::default()));
        (Trickle { inner, vectored, steps, calls: 0, log: log.clone() }, log)
    }

    /// How many bytes this call may take, or `None` to make it wait.
    fn budget(&mut self, cx: &mut Context<'_>) -> Option<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(5) {
            cx.waker().wake_by_ref();
            return None;
        }
        Some(self.steps[self.calls % self.steps.len()])
    }
}

impl AsyncRead for Trickle {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Trickle {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.log.lock().unwrap().plain_calls += 1;
        let Some(budget) = self.budget(cx) else { return Poll::Pending };
        let n = budget.min(buf.len());
        Pin::new(&mut self.inner).poll_write(cx, &buf[..n])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        {
            let mut log = self.log.lock().unwrap();
            log.vectored_calls += 1;
            log.slice_starts.extend(bufs.iter().map(|b| b.as_ptr() as usize));
        }
        let Some(mut budget) = self.budget(cx) else { return Poll::Pending };
        // Pass on at most `budget` bytes, possibly across slices.
        let mut limited = Vec::new();
        for b in bufs {
            if budget == 0 {
                break;
            }
            let n = budget.min(b.len());
            limited.push(IoSlice::new(&b[..n]));
            budget -= n;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, &limited)
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What the server's `push` method received, in order.
type Received = Arc<Mutex<Vec<Value>>>;

fn service(received: Received) -> Service {
    Service::shared(
        Object::builder("demo.Sink")
            .method("echo", |v: Value| v)
            .method("echo_bytes", |b: SharedBytes| b)
            .method("push", move |v: Value| received.lock().unwrap().push(v))
            .try_method("fail_with", |v: Value| -> Result<(), RemoteError> {
                let mut e = RemoteError::new("demo.Error", "as asked");
                e.args = vec![to_data(v)];
                Err(e)
            })
            .build(),
    )
}

fn to_data(v: Value) -> Data {
    v.try_map_refs(&mut |_: NetRef| Err::<std::convert::Infallible, ()>(())).expect("no references")
}

/// `(server, client, client's write log, server's write log)` over trickling transports.
fn connect(vectored: bool, steps: &'static [usize], received: Received) -> (Peer, Peer, Arc<Mutex<WriteLog>>) {
    connect_with(vectored, steps, received, Config::default())
}

/// [`connect`] with the client's configuration.
fn connect_with(
    vectored: bool,
    steps: &'static [usize],
    received: Received,
    client_config: Config,
) -> (Peer, Peer, Arc<Mutex<WriteLog>>) {
    let (a, b) = tokio::io::duplex(64 << 10);
    let (a, _server_log) = Trickle::new(a, vectored, steps);
    let (b, client_log) = Trickle::new(b, vectored, steps);
    let server = netref::connect_stream(a, service(received), Config::default());
    let client = netref::connect_stream(b, Service::void(), client_config);
    (server, client, client_log)
}

/// A byte string of `len` bytes that differs from others of the same length by `seed`.
fn bytes(seed: u8, len: usize) -> Value {
    Value::Bytes((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<u8>>().into())
}

/// Frames mixing byte strings below, at and above both spill thresholds, with small values
/// between them.
fn mixed(seed: u8) -> Value {
    Value::Tuple(vec![
        bytes(seed, 100),
        Value::from("between"),
        bytes(seed, (16 << 10) - 1),
        bytes(seed, 16 << 10),
        Value::Int(i64::from(seed)),
        Value::List(vec![bytes(seed, 70 << 10), Value::None, bytes(seed, 3)]),
        Value::Map(vec![(bytes(seed, 20 << 10), bytes(seed.wrapping_add(1), 200 << 10))]),
    ])
}

async fn pipelined_echoes_come_back_intact(vectored: bool) {
    let (_server, client, log) = connect(vectored, TRICKLE, Received::default());
    let root = client.root().await.unwrap();
    let sent: Vec<Value> = (0..12u8).map(mixed).collect();
    // All calls are queued at once: most wait behind the write in flight.
    let calls: Vec<_> = sent.iter().map(|v| root.call_method::<Value>("echo", (v.clone(),))).collect();
    for (call, sent) in calls.into_iter().zip(&sent) {
        assert_eq!(&call.await.unwrap(), sent);
    }
    // Batches holding large strings go out with vectored writes where the transport has them
    // (batches of small frames only are one buffer, written plainly); never elsewhere.
    let log = log.lock().unwrap();
    let (v, p) = (log.vectored_calls, log.plain_calls);
    if vectored {
        assert!(v > 0, "vectored {v} plain {p}");
    } else {
        assert!(v == 0 && p > 0, "vectored {v} plain {p}");
    }
}

#[actix_rt::test]
async fn pipelined_echoes_come_back_intact_through_partial_vectored_writes() {
    pipelined_echoes_come_back_intact(true).await;
}

#[actix_rt::test]
async fn pipelined_echoes_come_back_intact_through_partial_plain_writes() {
    pipelined_echoes_come_back_intact(false).await;
}

async fn one_way_frames_keep_their_order(vectored: bool) {
    let received = Received::default();
    let (_server, client, _log) = connect(vectored, TRICKLE, received.clone());
    let root = client.root().await.unwrap();
    let sent: Vec<Value> =
        (0..40u8).map(|i| if i % 3 == 0 { bytes(i, 50 << 10) } else { bytes(i, usize::from(i) * 10) }).collect();
    for v in &sent {
        root.notify_method("push", (v.clone(),)).unwrap();
    }
    // A call after them all returns once the server has handled them (frames are handled in order).
    let echoed: Value = root.call_method("echo", (Value::<NetRef>::Int(1),)).await.unwrap();
    assert_eq!(echoed, Value::Int(1));
    assert_eq!(*received.lock().unwrap(), sent);
}

#[actix_rt::test]
async fn one_way_frames_with_large_strings_keep_their_order_vectored() {
    one_way_frames_keep_their_order(true).await;
}

#[actix_rt::test]
async fn one_way_frames_with_large_strings_keep_their_order_plain() {
    one_way_frames_keep_their_order(false).await;
}

#[actix_rt::test]
async fn large_strings_in_error_arguments_come_back_intact() {
    let (_server, client, _log) = connect(true, TRICKLE, Received::default());
    let root = client.root().await.unwrap();
    let payload = mixed(7);
    let err = root.call_method::<()>("fail_with", (payload.clone(),)).await.unwrap_err();
    let netref::Error::Remote(e) = err else { panic!("a remote error, got {err}") };
    assert_eq!(e.args, vec![to_data(payload)]);
}

#[actix_rt::test]
async fn a_large_string_is_written_from_its_own_buffer() {
    let (_server, client, log) = connect(true, FREE, Received::default());
    let payload = Bytes::from(vec![5u8; 256 << 10]);
    let echoed = client.ping(Value::Bytes(payload.clone())).await.unwrap();
    assert_eq!(echoed, Value::Bytes(payload.clone()));
    let log = log.lock().unwrap();
    assert!(
        log.slice_starts.contains(&(payload.as_ptr() as usize)),
        "the payload was copied before being written ({} slices offered)",
        log.slice_starts.len()
    );
}

#[actix_rt::test]
async fn a_frame_over_the_peers_limit_is_dropped_whole_and_its_exports_taken_back() {
    let (a, b) = tokio::io::duplex(1 << 20);
    let _server = netref::connect_stream(a, service(Received::default()), Config::default().max_frame_len(64 << 10));
    let client = netref::connect_stream(b, Service::void(), Config::default());
    let root = client.root().await.unwrap();
    let before = client.stats().await.unwrap();
    // An object (exported while the frame is encoded) and a string sent out of line.
    let object = Object::builder("demo.Thing").build();
    let big = bytes(1, 100 << 10);
    let err = root.call_method::<Value>("echo", ((object, big),)).await.unwrap_err();
    assert!(
        matches!(err, netref::Error::Protocol(netref::ProtocolError::FrameTooLarge { max, .. }) if max == 64 << 10),
        "{err}"
    );
    let after = client.stats().await.unwrap();
    assert_eq!(after.exports, before.exports, "the export counted for the dropped frame is taken back");
    assert_eq!(after.write_buffer, 0);
    // The connection lives on: nothing of the dropped frame reached the peer.
    let small = bytes(2, 40 << 10);
    assert_eq!(root.call_method::<Value>("echo", (small.clone(),)).await.unwrap(), small);
}

#[actix_rt::test]
async fn an_encode_error_after_a_large_string_leaves_nothing_queued() {
    let (_server, client, _log) = connect_with(true, TRICKLE, Received::default(), Config::default().max_exports(0));
    let root = client.root().await.unwrap();
    // An object past the export cap cannot be sent: the encoder fails after it set the large
    // string aside.
    let object = Object::builder("demo.Thing").build();
    let err = root.call_method::<Value>("echo", ((bytes(1, 100 << 10), object),)).await.unwrap_err();
    assert!(err.to_string().contains("export limit reached"), "{err}");
    assert_eq!(client.stats().await.unwrap().write_buffer, 0);
    // Had any of that frame been written, the peer would have read garbage and hung up.
    let payload = mixed(3);
    assert_eq!(root.call_method::<Value>("echo", (payload.clone(),)).await.unwrap(), payload);
}

#[actix_rt::test]
async fn queued_large_strings_count_against_the_write_buffer() {
    let bound = 1 << 20;
    let config = Config::default().max_write_buffer(bound).max_queued_requests(64).request_timeout(None);
    let (peer, mut raw) = RawPeer::start(Service::void(), config);
    raw.handshake().await;
    // From now on the raw side never reads; its pipe holds 1 MiB.
    let payload = Bytes::from(vec![7u8; 256 << 10]);
    let results: Vec<_> = (0..24).map(|_| peer.ping(Value::Bytes(payload.clone()))).collect();
    wait_until(Duration::from_secs(5), "requests queue behind the full write buffer", || async {
        peer.stats().await.unwrap().queued > 0
    })
    .await;
    let stats = peer.stats().await.unwrap();
    assert!(stats.write_buffer > bound, "queued strings are counted: {stats:?}");
    assert!(stats.write_buffer <= bound + payload.len() + 1024, "{stats:?}");
    drop(results);
}

#[actix_rt::test]
async fn shared_bytes_go_out_without_a_copy_and_come_back_intact() {
    let (_server, client, log) = connect(true, FREE, Received::default());
    let root = client.root().await.unwrap();
    let payload = Bytes::from((0..(1usize << 20)).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let back: SharedBytes = root.call_method("echo_bytes", (SharedBytes(payload.clone()),)).await.unwrap();
    assert_eq!(back.0, payload);
    assert!(
        log.lock().unwrap().slice_starts.contains(&(payload.as_ptr() as usize)),
        "the argument was copied on its way out"
    );
    // Through partial writes too.
    let (_server, client, _log) = connect(false, TRICKLE, Received::default());
    let root = client.root().await.unwrap();
    let back: SharedBytes = root.call_method("echo_bytes", (SharedBytes(payload.clone()),)).await.unwrap();
    assert_eq!(back.0, payload);
}
