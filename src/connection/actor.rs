//! The [`Connection`] actor: the I/O around one [`Session`]. It reads frame bodies off the
//! transport and hands them to the session, hands it the requests its handles queued and the
//! time when a deadline comes due, writes what the session queued (coalesced: one write per
//! turn), runs the method futures the session gives it, and stops when the session says so.
//! The protocol — what is pending, exported, running, due — is the session's.
//!
//! It must never wait on the wire (no `ctx.wait`, no `AtomicResponse`): replies arrive on the
//! same stream as the peer's requests, and callbacks need both to flow while a call is pending.

use std::{
    pin::Pin,
    rc::Rc,
    sync::Arc,
    task::{Context as TaskContext, Poll, Waker},
    time::{Duration, Instant},
};

use actix::{
    fut::wrap_future, Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, MessageResult,
    SpawnHandle,
};
use bytes::Buf;
use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;
use tracing::{debug, trace};

use super::{
    alarm::Alarm,
    io::{poll_write_segments, Bodies, Gate, Gated, Writer, READ_BUFFER_MIN},
};
use crate::{
    config::{Config, Wire},
    error::RemoteError,
    link::{next_connection_id, ConnInfo, ConnShared, ConnStats, Control, Payload, Peer, Submit},
    protocol::{FrameCodec, Segments, SPILL_PLAIN, SPILL_VECTORED},
    service::Service,
    session::{AnyDialect, Dialect, Finish, Host, NativeDialect, Phase, RpycDialect, Session},
    Handle, Value,
};

pub(crate) type BoxRead = Box<dyn AsyncRead + Unpin>;
pub(crate) type BoxWrite = Box<dyn Writer>;

/// Makes a connection's dialect (other than the native one) from its settings and whether its
/// transport writes vectored.
pub(crate) type MakeDialect = Box<dyn FnOnce(&Config, bool) -> Box<dyn Dialect>>;

/// Which wire a connection speaks (see `session::dialect`).
pub(crate) enum DialectChoice {
    /// The native wire.
    Native,
    /// Another dialect.
    Custom(MakeDialect),
}

/// The actor behind one connection. Users reach it through [`Peer`] and
/// [`NetRef`](crate::NetRef); its request messages are in [`messages`](super::messages).
pub struct Connection {
    session: Session<SpawnHandle>,
    link: Arc<ConnShared>,
    service: Service,
    gate: Rc<Gate>,
    /// The transport's write half; taken when the connection shuts it down.
    writer: Option<BoxWrite>,
    /// The write in progress: what the transport has not taken yet (it was busy).
    writing: Option<Segments>,
    /// The write in progress is written but not yet flushed.
    flush_due: bool,
    /// The [`Driver`] is running: what is queued now is written when it finishes its turn.
    deferring: bool,
    /// The actor task's waker, to run the [`Driver`] for frames queued outside it.
    waker: Option<Waker>,
    /// Deadlines the session asked for come due through this (see [`alarm`](super::alarm)).
    alarm: Alarm,
    /// A close's grace period, armed at the end of the turn if the close is not over by then.
    grace: Option<Duration>,
    /// The request queue's last batch and dropped proxies, kept for their allocations.
    batch: Vec<Control>,
    dropped: Vec<(u64, u64)>,
    span: tracing::Span,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("id", &self.link.id).field("session", &self.session).finish_non_exhaustive()
    }
}

/// The session's view of the actor (see [`Host`]).
struct Shell<'a> {
    ctx: &'a mut Context<Connection>,
    alarm: &'a Alarm,
    grace: &'a mut Option<Duration>,
}

impl Host for Shell<'_> {
    type Work = SpawnHandle;

    fn now(&mut self) -> Instant {
        Instant::now()
    }

    fn run(&mut self, fut: BoxFuture<'static, Result<Value, RemoteError>>, finish: Finish) -> SpawnHandle {
        self.ctx.spawn(wrap_future::<_, Connection>(fut).map(move |outcome, act, ctx| {
            act.with_session(ctx, |session, host| session.finish(finish, outcome, host));
            act.after_turn(ctx);
        }))
    }

    fn abort(&mut self, work: SpawnHandle) {
        self.ctx.cancel_future(work);
    }

    fn wake_at(&mut self, at: Instant) {
        // The alarm thread keeps deadlines off the runtime's timer wheel, which costs every
        // park of the thread while a timer is registered (see `alarm`).
        if !self.alarm.set(at) {
            let delay = at.saturating_duration_since(Instant::now());
            self.ctx.run_later(delay, |act, ctx| {
                act.with_session(ctx, |session, host| session.wake(host));
                act.after_turn(ctx);
            });
        }
    }

    fn close_grace(&mut self, grace: Duration) {
        *self.grace = Some(grace);
    }

    fn stop(&mut self) {
        self.ctx.stop();
    }
}

impl Connection {
    /// Starts a connection actor speaking the native wire on the current arbiter over a split
    /// transport and returns its handle. Must run inside an actix system or a tokio `LocalSet`.
    ///
    /// The configuration is shared: accept loops hand every connection the same `Arc`.
    pub(crate) fn start(
        reader: BoxRead,
        writer: BoxWrite,
        service: Service,
        config: Arc<Config>,
        info: ConnInfo,
    ) -> Peer {
        let dialect = match config.wire {
            Wire::Native => DialectChoice::Native,
            Wire::Rpyc => DialectChoice::Custom(Box::new(|config: &Config, _vectored: bool| {
                Box::new(RpycDialect::new(config.max_frame_len)) as Box<dyn Dialect>
            })),
        };
        Connection::start_with(reader, writer, service, config, info, dialect)
    }

    /// [`start`](Connection::start) with the wire `dialect`.
    pub(crate) fn start_with(
        reader: BoxRead,
        writer: BoxWrite,
        service: Service,
        config: Arc<Config>,
        info: ConnInfo,
        dialect: DialectChoice,
    ) -> Peer {
        let id = next_connection_id();
        let span = tracing::info_span!("netref.conn", conn = id, peer = %info.label);
        let vectored = writer.is_write_vectored();
        let dialect = match dialect {
            DialectChoice::Native => {
                let spill_at = if vectored { SPILL_VECTORED } else { SPILL_PLAIN };
                let codec = FrameCodec::with_limits(config.max_frame_len, config.decode_limits);
                AnyDialect::Native(NativeDialect::new(codec, spill_at))
            }
            DialectChoice::Custom(make) => AnyDialect::Other(make(&config, vectored)),
        };
        let mut started_peer = None;
        Connection::create(|ctx| {
            let link = Arc::new(ConnShared::new(id, ctx.address(), config, info, dialect.call_encoding()));
            let peer = Peer::from_shared(link.clone());
            started_peer = Some(peer.clone());
            let root = service.root_for(&peer);
            let gate = Rc::new(Gate::default());
            let frames = FramedRead::with_capacity(reader, Bodies::new(dialect.framer()), READ_BUFFER_MIN);
            ctx.spawn(Driver::new(Gated { inner: frames, gate: gate.clone() }));
            Connection {
                session: Session::new(link.clone(), dialect, service.clone(), root, span.clone()),
                link,
                service,
                gate,
                writer: Some(writer),
                writing: None,
                flush_due: false,
                deferring: false,
                waker: None,
                alarm: Alarm::default(),
                grace: None,
                batch: Vec::new(),
                dropped: Vec::new(),
                span,
            }
        });
        // `create` runs the closure before it returns.
        started_peer.expect("Actor::create runs its closure synchronously")
    }

    /// Calls `f` with the session and the actor as its host.
    fn with_session<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut Session<SpawnHandle>, &mut Shell<'_>) -> R,
    ) -> R {
        let mut shell = Shell { ctx, alarm: &self.alarm, grace: &mut self.grace };
        f(&mut self.session, &mut shell)
    }

    /// What every entry into the session outside the [`Driver`] ends with: the end of the
    /// session's turn, the read gate, and a wake-up of the driver if there is something to
    /// write (it writes everything this turn queued in one write).
    fn after_turn(&mut self, ctx: &mut Context<Self>) {
        self.with_session(ctx, |session, host| session.end_turn(host));
        self.update_gate();
        if !self.deferring && self.writing.is_none() && (!self.session.outbox().is_empty() || self.grace.is_some()) {
            if let Some(waker) = &self.waker {
                waker.wake_by_ref();
            }
            // No waker yet: the driver has not run its first turn, and will.
        }
        self.maybe_shut_down(ctx);
    }

    fn update_gate(&mut self) {
        let paused = self.session.reads_paused();
        if paused != self.gate.is_shut() {
            trace!(parent: &self.span, paused, "read gate");
        }
        self.gate.set_shut(paused);
    }

    /// Writes what is queued until the transport is busy or nothing is left, then flushes;
    /// after each completed write, lets what waited for room go (which may queue more).
    fn write_out(&mut self, ctx: &mut Context<Self>, task: &mut TaskContext<'_>) {
        let mut progressed = false;
        loop {
            let last = self.session.closes_after_write();
            let Some(w) = self.writer.as_mut() else { return };
            let segments = match &mut self.writing {
                Some(segments) => segments,
                None if self.session.outbox().is_empty() && !self.flush_due => return,
                None if self.session.outbox().is_empty() => {
                    match Pin::new(&mut *w).poll_flush(task) {
                        Poll::Pending => return,
                        Poll::Ready(Err(e)) => return self.write_failed(e, ctx),
                        Poll::Ready(Ok(())) => {}
                    }
                    self.flush_due = false;
                    self.after_write(ctx);
                    continue;
                }
                None => {
                    if last {
                        w.hold_for_shutdown();
                    }
                    self.writing.insert(self.session.outbox().take())
                }
            };
            while segments.has_remaining() {
                match poll_write_segments(segments, Pin::new(&mut *w), task) {
                    Poll::Pending => {
                        self.session.set_writer_backlog(segments.remaining());
                        if progressed {
                            // The transport took part of it: what waits for room (reading,
                            // requests) may go on while it drains the rest.
                            self.with_session(ctx, |session, host| session.end_turn(host));
                            self.update_gate();
                        }
                        return;
                    }
                    Poll::Ready(Ok(0)) => {
                        let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                        return self.write_failed(e, ctx);
                    }
                    Poll::Ready(Ok(_)) => progressed = true,
                    Poll::Ready(Err(e)) => return self.write_failed(e, ctx),
                }
            }
            self.writing = None;
            self.session.set_writer_backlog(0);
            self.flush_due = true;
        }
    }

    fn write_failed(&mut self, e: std::io::Error, ctx: &mut Context<Self>) {
        self.writing = None;
        self.flush_due = false;
        self.session.set_writer_backlog(0);
        self.with_session(ctx, |session, host| session.write_failed(&e, host));
    }

    fn after_write(&mut self, ctx: &mut Context<Self>) {
        self.with_session(ctx, |session, host| session.end_turn(host));
        self.update_gate();
        self.maybe_shut_down(ctx);
    }

    /// Once the close waits for nothing but writes and they are out, the write side shuts
    /// down and the actor stops.
    #[inline(always)]
    fn maybe_shut_down(&mut self, ctx: &mut Context<Self>) {
        if self.session.phase() == Phase::Closing && self.writing.is_none() && !self.flush_due {
            self.shut_down_if_due(ctx);
        }
    }

    fn shut_down_if_due(&mut self, ctx: &mut Context<Self>) {
        if !self.session.shutdown_due() {
            return;
        }
        self.session.shut_down();
        let Some(mut w) = self.writer.take() else {
            return ctx.stop();
        };
        // A TCP shutdown completes at once (one system call): try it here, and spawn a future
        // for the rest only if the transport has more to do (TLS sends its close_notify).
        // Polled with a no-op waker: if it is pending, the spawned future polls it again with
        // the task's own, which then registers.
        let mut cx = TaskContext::from_waker(futures::task::noop_waker_ref());
        if Pin::new(&mut w).poll_shutdown(&mut cx).is_ready() {
            return ctx.stop();
        }
        ctx.spawn(wrap_future::<_, Self>(async move { w.shutdown().await }).map(|_, _, ctx| ctx.stop()));
    }

    /// A close that is not over at the end of its turn gets its grace timer: registering a
    /// timer can cost the runtime a wake-up, and most closes need none.
    fn arm_grace(&mut self, ctx: &mut Context<Self>) {
        if let Some(grace) = self.grace.take() {
            if self.session.phase() == Phase::Closing {
                ctx.run_later(grace, |act, ctx| {
                    act.with_session(ctx, |session, host| session.grace_over(host));
                });
            }
        }
    }

    /// Hands the session the requests the handles queued, in order.
    fn drain_requests(&mut self, ctx: &mut Context<Self>) {
        let mut batch = std::mem::take(&mut self.batch);
        let mut dropped = std::mem::take(&mut self.dropped);
        self.with_session(ctx, |session, host| session.take_requests(&mut batch, &mut dropped, host));
        self.batch = batch;
        self.dropped = dropped;
    }

    /// Submits a request from a public request message and returns its future. It takes the
    /// same way in as every request (the queue), behind the requests queued before it.
    pub(crate) fn submit_message(
        &mut self,
        handle: Handle,
        args: Value,
        ctx: &mut Context<Self>,
    ) -> crate::AsyncResult<Value> {
        let (result, completer) = crate::AsyncResult::pending(self.link.config.request_timeout);
        self.link.enqueue(Submit { handle, args: Payload::Value(args), completer, one_way: None });
        self.drain_requests(ctx);
        self.after_turn(ctx);
        result
    }
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // The `Hello` is queued, not written yet: the driver writes it at the end of the
        // actor's first turn, so requests made before then (a client's early requests reach it
        // through its request queue, which that turn handles first) share its write.
        self.with_session(ctx, |session, host| session.start(host));
        debug!(parent: &self.span, dialect = self.session.dialect_name(), "connection started");
        self.service.connected(&Peer::from_shared(self.link.clone()));
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.session.stopped();
        self.gate.set_shut(false);
        debug!(parent: &self.span, "connection stopped");
        self.service.disconnected(&Peer::from_shared(self.link.clone()));
        self.link.mark_stopped();
    }
}

impl Drop for Connection {
    /// An actor dropped without `stopped` (its arbiter or system was stopped) still ends its
    /// handles' waits: pending calls fail and `Peer::closed` resolves.
    fn drop(&mut self) {
        if !self.link.is_stopped() {
            self.session.abandoned();
            self.link.mark_stopped();
        }
    }
}

/// Read the connection's counters.
pub(crate) struct GetStats;

impl Message for GetStats {
    type Result = ConnStats;
}

impl Handler<GetStats> for Connection {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _: GetStats, ctx: &mut Self::Context) -> Self::Result {
        self.drain_requests(ctx);
        self.after_turn(ctx);
        MessageResult(self.session.stats())
    }
}

mod driver;

use driver::Driver;
#[cfg(test)]
mod tests;
