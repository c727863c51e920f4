//! What netref's fuzz targets (the repository's `fuzz/` directory) need from inside the crate,
//! behind the `fuzzing` feature: `SessionHarness`, one connection's protocol session driven
//! with bytes and a fake clock, as the connection actor drives it but without I/O.
//!
//! Not part of netref's API: hidden from the docs, changed whenever the session changes, and
//! compiled only for fuzzing and the replay of its corpus. A program never needs it. Like the
//! session it drives, it must never touch a socket, a timer, an actix or tokio runtime or the
//! real clock: every instant is the harness's own.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::{Buf, Bytes, BytesMut};
use futures::future::BoxFuture;

use crate::{
    config::{Config, Wire},
    error::RemoteError,
    link::{ConnInfo, ConnShared, Control},
    protocol::{FrameCodec, SPILL_PLAIN},
    session::{AnyDialect, Dialect, Finish, Framer, Host, NativeDialect, Phase, RpycDialect, Session},
    ConnStats, Peer, Service, Value,
};

/// A method future the host runs, with the id the session knows it by and what finishes it.
type Running = (u64, BoxFuture<'static, Result<Value, RemoteError>>, Finish);

/// The host around the session: runs method futures by polling them when the harness says,
/// keeps the wake-ups the session asks for, and moves its clock only when told.
struct FakeHost {
    now: Instant,
    next_work: u64,
    running: Vec<Running>,
    wakes: Vec<Instant>,
    grace_until: Option<Instant>,
    stopped: bool,
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
    }

    fn wake_at(&mut self, at: Instant) {
        self.wakes.push(at);
    }

    fn close_grace(&mut self, grace: Duration) {
        self.grace_until = Some(self.now + grace);
    }

    fn stop(&mut self) {
        self.stopped = true;
    }
}

/// How [`SessionHarness::read`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadOutcome {
    /// Every complete frame was handed to the session; the rest waits for more bytes.
    Consumed {
        /// How many frame bodies the session got.
        frames: usize,
    },
    /// The framing refused the bytes (a length over the limit, a zlib stream that does not
    /// inflate): the session was told and must not stay open.
    FramingError {
        /// The framing's error, as text.
        error: String,
    },
    /// The session stopped reading (it is closing or closed) before all bytes were handed over.
    Stopped,
}

/// One side of a connection (the serving side, with `service`), its session driven by the
/// caller: [`read`](SessionHarness::read) the peer's bytes,
/// [`turn`](SessionHarness::turn) to run what the connection's driver runs after reading,
/// [`advance`](SessionHarness::advance) the clock, [`written`](SessionHarness::written) to take
/// what the session wrote.
pub struct SessionHarness {
    session: Session<u64>,
    host: FakeHost,
    link: Arc<ConnShared>,
    framer: Box<dyn Framer>,
    inbox: BytesMut,
    batch: Vec<Control>,
    dropped: Vec<(u64, u64)>,
}

impl std::fmt::Debug for SessionHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHarness").field("session", &self.session).finish_non_exhaustive()
    }
}

impl SessionHarness {
    /// A started session speaking `config`'s wire and serving `service`: with the native wire,
    /// its `Hello` is already in [`written`](SessionHarness::written).
    pub fn new(config: Config, service: Service) -> SessionHarness {
        let config = Arc::new(config);
        // As the connection builds it (`Connection::start`), for a writer without vectored writes.
        let dialect = match config.wire {
            Wire::Native => AnyDialect::Native(NativeDialect::new(
                FrameCodec::with_limits(config.max_frame_len, config.decode_limits),
                SPILL_PLAIN,
            )),
            Wire::Rpyc => AnyDialect::Other(Box::new(RpycDialect::new(config.max_frame_len))),
        };
        let link = Arc::new(ConnShared::new(0, (), config, ConnInfo::labelled("fuzz"), dialect.call_encoding()));
        let root = service.root_for(&Peer::from_shared(link.clone()));
        let framer = dialect.framer();
        let session = Session::new(link.clone(), dialect, service, root, tracing::Span::none());
        let host = FakeHost {
            now: Instant::now(),
            next_work: 0,
            running: Vec::new(),
            wakes: Vec::new(),
            grace_until: None,
            stopped: false,
        };
        let mut harness = SessionHarness {
            session,
            host,
            link,
            framer,
            inbox: BytesMut::new(),
            batch: Vec::new(),
            dropped: Vec::new(),
        };
        harness.session.start(&mut harness.host);
        harness
    }

    /// This side's handle on the connection, to make calls to the peer.
    pub fn peer(&self) -> Peer {
        Peer::from_shared(self.link.clone())
    }

    /// Hands `bytes`, as read off the transport, to the framing, and each complete frame body
    /// to the session, until the bytes are used up or the session stops reading.
    pub fn read(&mut self, bytes: &[u8]) -> ReadOutcome {
        self.inbox.extend_from_slice(bytes);
        let mut frames = 0;
        loop {
            if self.session.phase() == Phase::Closed || self.host.stopped {
                return ReadOutcome::Stopped;
            }
            match self.framer.body(&mut self.inbox) {
                Ok(Some(body)) => {
                    frames += 1;
                    self.session.receive(Ok(body), &mut self.host);
                }
                Ok(None) => return ReadOutcome::Consumed { frames },
                Err(e) => {
                    let error = e.to_string();
                    self.session.receive(Err(e), &mut self.host);
                    return ReadOutcome::FramingError { error };
                }
            }
        }
    }

    /// The peer closed its side of the transport.
    pub fn read_end(&mut self) {
        self.session.read_end(&mut self.host);
    }

    /// What the connection's driver does after reading: polls each running method once (those
    /// finished go back to the session), takes the handles' requests, ends the turn, and shuts
    /// the connection down once a close has nothing left to wait for.
    pub fn turn(&mut self) {
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        for (id, mut fut, finish) in std::mem::take(&mut self.host.running) {
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(outcome) => self.session.finish(finish, outcome, &mut self.host),
                Poll::Pending => self.host.running.push((id, fut, finish)),
            }
        }
        self.session.take_requests(&mut self.batch, &mut self.dropped, &mut self.host);
        self.session.end_turn(&mut self.host);
        if self.session.shutdown_due() {
            self.session.shut_down();
            self.host.stopped = true;
        }
    }

    /// Moves the clock by `by`: the session is woken if it asked to be by then, and a close
    /// whose grace ran out stops.
    pub fn advance(&mut self, by: Duration) {
        self.host.now += by;
        let now = self.host.now;
        if self.host.wakes.iter().any(|at| *at <= now) {
            self.host.wakes.retain(|at| *at > now);
            self.session.wake(&mut self.host);
        }
        if self.host.grace_until.is_some_and(|at| at <= now) {
            self.host.grace_until = None;
            self.session.grace_over(&mut self.host);
        }
    }

    /// The bytes the session queued for writing since the last call, taken out (as written).
    pub fn written(&mut self) -> Bytes {
        let mut segments = self.session.outbox().take();
        let n = segments.remaining();
        segments.copy_to_bytes(n)
    }

    /// Requests flow both ways: the session neither closes nor has closed.
    pub fn is_open(&self) -> bool {
        self.session.phase() == Phase::Open
    }

    /// The session reads and writes nothing more, or its host was told to stop.
    pub fn is_stopped(&self) -> bool {
        self.session.phase() == Phase::Closed || self.host.stopped
    }

    /// The most objects the session may export at once (its `max_exports`, the root aside).
    pub fn max_exports(&self) -> usize {
        self.link.config.max_exports
    }

    /// How many method futures the host is running.
    pub fn running(&self) -> usize {
        self.host.running.len()
    }

    /// The connection's counters.
    pub fn stats(&self) -> ConnStats {
        self.session.stats()
    }

    /// Ends the connection as its actor does when it stops: pending calls fail, tables empty.
    pub fn stop(&mut self) {
        self.session.stopped();
        self.host.running.clear();
    }
}
