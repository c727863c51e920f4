//! Deterministic tests of the session without I/O: two sessions joined by byte buffers, a host
//! that records what it is asked and a clock the test moves. No actix system, no runtime, no
//! socket: each test says exactly which bytes go where and when time passes. Every behaviour
//! runs on the native dialect, the RPyC dialect and the sequenced test dialect (see
//! `dialect::sequenced`), which has no handshake, no cancel, releases as DEL requests and its
//! own framing.

use std::{
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};
use futures::{channel::oneshot, future::BoxFuture};

use super::{
    dialect::sequenced::Sequenced, AnyDialect, Dialect, Finish, Framer, Host, NativeDialect, Phase, RpycDialect,
    Session,
};
use crate::{
    config::Config,
    error::RemoteError,
    link::{ConnInfo, ConnShared, Control, Peer},
    object::Object,
    protocol::{FrameCodec, SPILL_PLAIN},
    service::Service,
    Error, Value,
};

mod behaviour;
mod liveness;
mod rpyc;

/// Which wire a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Native,
    Sequenced,
    Rpyc,
}

pub(super) const BOTH: [Kind; 3] = [Kind::Native, Kind::Sequenced, Kind::Rpyc];

fn dialect(kind: Kind, config: &Config) -> AnyDialect {
    match kind {
        Kind::Native => AnyDialect::Native(NativeDialect::new(
            FrameCodec::with_limits(config.max_frame_len, config.decode_limits),
            SPILL_PLAIN,
        )),
        Kind::Sequenced => AnyDialect::Other(Box::new(Sequenced::new(config.max_frame_len, config.decode_limits))),
        Kind::Rpyc => AnyDialect::Other(Box::new(RpycDialect::new(config.max_frame_len))),
    }
}

/// A method future the host was asked to run, with its id and what finishes it.
type Running = (u64, BoxFuture<'static, Result<Value, RemoteError>>, Finish);

/// A host that records what the session asks: the futures it should run, the work it aborted,
/// the wake-ups it wants, whether it was told to stop. Its clock moves only when the test says.
pub(super) struct FakeHost {
    pub(super) now: Instant,
    next_work: u64,
    pub(super) running: Vec<Running>,
    pub(super) aborted: Vec<u64>,
    pub(super) wakes: Vec<Instant>,
    pub(super) grace: Option<Duration>,
    pub(super) stopped: bool,
}

impl Host for FakeHost {
    type Work = u64;

    fn now(&mut self) -> Instant {
        self.now
    }

    fn run(&mut self, fut: BoxFuture<'static, Result<Value, RemoteError>>, finish: Finish) -> u64 {
        self.next_work += 1;
        self.running.push((self.next_work, fut, finish));
        self.next_work
    }

    fn abort(&mut self, work: u64) {
        self.running.retain(|(id, ..)| *id != work);
        self.aborted.push(work);
    }

    fn wake_at(&mut self, at: Instant) {
        self.wakes.push(at);
    }

    fn close_grace(&mut self, grace: Duration) {
        self.grace = Some(grace);
    }

    fn stop(&mut self) {
        self.stopped = true;
    }
}

/// One end: a session, its host, the read side of its dialect's framing, and its handles'
/// shared state.
pub(super) struct Side {
    pub(super) session: Session<u64>,
    pub(super) host: FakeHost,
    pub(super) link: Arc<ConnShared>,
    framer: Box<dyn Framer>,
    inbox: BytesMut,
    batch: Vec<Control>,
    dropped: Vec<(u64, u64)>,
}

impl Side {
    pub(super) fn new(kind: Kind, service: Service, config: Config, now: Instant) -> Side {
        let config = Arc::new(config);
        let dialect = dialect(kind, &config);
        // No actor: the session never sends to its actor.
        let link = Arc::new(ConnShared::new(0, (), config, ConnInfo::labelled("test"), dialect.call_encoding()));
        let root = service.root_for(&Peer::from_shared(link.clone()));
        let framer = dialect.framer();
        let session = Session::new(link.clone(), dialect, service, root, tracing::Span::none());
        let host = FakeHost {
            now,
            next_work: 0,
            running: Vec::new(),
            aborted: Vec::new(),
            wakes: Vec::new(),
            grace: None,
            stopped: false,
        };
        let mut side =
            Side { session, host, link, framer, inbox: BytesMut::new(), batch: Vec::new(), dropped: Vec::new() };
        side.session.start(&mut side.host);
        side
    }

    pub(super) fn peer(&self) -> Peer {
        Peer::from_shared(self.link.clone())
    }

    /// What a driver turn does besides reading: the handles' requests, then the end of turn.
    pub(super) fn turn(&mut self) {
        self.session.take_requests(&mut self.batch, &mut self.dropped, &mut self.host);
        self.session.end_turn(&mut self.host);
    }

    /// The bytes the session queued, taken out (as if written).
    pub(super) fn written(&mut self) -> Bytes {
        self.session.outbox().take().copy_to_bytes_all()
    }

    /// Feeds `bytes` as read off the transport: each complete body goes to the session.
    pub(super) fn read(&mut self, bytes: &[u8]) {
        self.inbox.extend_from_slice(bytes);
        loop {
            match self.framer.body(&mut self.inbox) {
                Ok(Some(body)) => self.session.receive(Ok(body), &mut self.host),
                Ok(None) => break,
                Err(e) => {
                    self.session.receive(Err(e), &mut self.host);
                    break;
                }
            }
            if self.session.phase() == Phase::Closed {
                break;
            }
        }
    }

    /// Polls every running method once; those finished go back to the session.
    pub(super) fn run_ready(&mut self) {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let mut still = Vec::new();
        for (id, mut fut, finish) in std::mem::take(&mut self.host.running) {
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(outcome) => self.session.finish(finish, outcome, &mut self.host),
                Poll::Pending => still.push((id, fut, finish)),
            }
        }
        still.append(&mut self.host.running);
        self.host.running = still;
    }

    /// Moves this side's clock by `by` and wakes the session if it asked to be woken by then.
    pub(super) fn advance(&mut self, by: Duration) {
        self.host.now += by;
        let now = self.host.now;
        if self.host.wakes.iter().any(|at| *at <= now) {
            self.host.wakes.retain(|at| *at > now);
            self.session.wake(&mut self.host);
        }
    }
}

/// Two sessions joined back to back.
pub(super) struct Pair {
    pub(super) a: Side,
    pub(super) b: Side,
}

impl Pair {
    /// `a` (the client) serves nothing; `b` serves `root`.
    pub(super) fn new(kind: Kind, root: Object, config: Config) -> Pair {
        let now = Instant::now();
        let a = Side::new(kind, Service::void(), config.clone(), now);
        let b = Side::new(kind, Service::shared(root), config, now);
        let mut pair = Pair { a, b };
        pair.pump();
        pair
    }

    /// Runs both sides until neither has anything more to say.
    pub(super) fn pump(&mut self) {
        for _ in 0..100 {
            self.a.turn();
            self.b.turn();
            self.a.run_ready();
            self.b.run_ready();
            self.a.turn();
            self.b.turn();
            let to_b = self.a.written();
            let to_a = self.b.written();
            if to_b.is_empty() && to_a.is_empty() {
                return;
            }
            self.b.read(&to_b);
            self.a.read(&to_a);
        }
        panic!("the sessions kept talking for 100 rounds");
    }

    /// Moves both clocks by `by`, waking each session that asked to be woken by then.
    pub(super) fn advance(&mut self, by: Duration) {
        self.a.advance(by);
        self.b.advance(by);
    }
}

/// A service root with an instant method, a method that returns a new object, and a method
/// that waits until the test releases it through `gate`.
pub(super) fn calculator(gate: Arc<Mutex<Vec<oneshot::Sender<i64>>>>) -> Object {
    Object::builder("test.Calc")
        .method("add", |a: i64, b: i64| a + b)
        .method("child", || Object::builder("test.Child").method("ping", || 1).build())
        .async_method("slow", move || {
            let (tx, rx) = oneshot::channel();
            gate.lock().unwrap().push(tx);
            async move { rx.await.unwrap_or(-1) }
        })
        .build()
}

trait CopyAll {
    fn copy_to_bytes_all(self) -> Bytes;
}

impl CopyAll for crate::protocol::Segments {
    fn copy_to_bytes_all(mut self) -> Bytes {
        use bytes::Buf;
        let n = self.remaining();
        self.copy_to_bytes(n)
    }
}

/// The outcome of a settled result, for assertions (`None` while pending).
pub(super) fn outcome<T: serde::de::DeserializeOwned>(r: &crate::AsyncResult<T>) -> Option<Result<T, Error>> {
    (r.ready() || r.expired()).then(|| r.value())
}
