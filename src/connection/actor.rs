//! The [`Connection`] actor: one per transport. It owns the pending table, the exports and
//! imports, the write buffer and the inbound requests in progress.
//!
//! It must never wait on the wire (no `ctx.wait`, no `AtomicResponse`): replies arrive on the
//! same stream as the peer's requests, and callbacks need both to flow while a call is pending.

use std::{
    cell::RefCell,
    panic::AssertUnwindSafe,
    pin::Pin,
    rc::Rc,
    sync::Arc,
    task::{Context as TaskContext, Poll, Waker},
    time::{Duration, Instant},
};

use actix::{
    fut::wrap_future, Actor, ActorContext, ActorFuture, ActorFutureExt, AsyncContext, Context, Handler, Message,
    MessageResult, SpawnHandle,
};
use bytes::{Buf, Bytes};
use futures::{FutureExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;
use tracing::{debug, error, trace, warn, Instrument};

use super::{
    alarm::Alarm,
    boxing::{import, Boxer, Imports, Unboxer},
    io::{Bodies, Gate, Gated, ReadWake, Writer, READ_BUFFER_MIN},
    next_connection_id,
    outbox::{Outbox, Segments, SPILL_PLAIN, SPILL_VECTORED},
    ConnInfo, ConnShared, Peer,
};
use crate::session::{ExportTable, Inbound, Lifecycle, Liveness, Outbound, Payload, Phase, SeqInUse, Submit, Tick};
use crate::{
    async_result::{ResultOwner, Shared},
    config::Config,
    error::{kinds, RemoteError},
    object::{dispatch, dispatch_call, dispatch_callable, MethodFuture, Object, Served},
    protocol::{
        read_call, read_reply, CallFrame, FrameCodec, Hello, Limits, PlainRef, PlainReply, RefUnboxer, KIND_NOTIFY,
        KIND_REPLY, KIND_REQUEST, ROOT_ALIAS,
    },
    service::Service,
    Error, Frame, Handle, NetRef, ProtocolError, RefLabel, Value,
};

pub(crate) type BoxRead = Box<dyn AsyncRead + Unpin>;
pub(crate) type BoxWrite = Box<dyn Writer>;

/// Counters of one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnStats {
    /// Objects exported to the peer (the pinned root included).
    pub exports: usize,
    /// Exported objects that are not pinned (what the peer's netrefs hold).
    pub unpinned_exports: usize,
    /// Live proxies for the peer's objects.
    pub imports: usize,
    /// Outbound requests awaiting a reply.
    pub pending: usize,
    /// Outbound requests queued behind `max_in_flight`.
    pub queued: usize,
    /// Inbound requests running.
    pub inbound: usize,
    /// Bytes queued for writing.
    pub write_buffer: usize,
    /// Outbound requests awaiting a reply that have an expiry.
    pub scheduled_expiries: usize,
}

/// The actor behind one connection. Users reach it through [`Peer`] and [`NetRef`]; its
/// request messages are in [`messages`](super::messages).
pub struct Connection {
    shared: Arc<ConnShared>,
    config: Arc<Config>,
    codec: FrameCodec,
    service: Service,
    root: Object,
    /// The handshake and the phases open → closing → closed.
    life: Lifecycle,
    /// When the peer's `Hello` is due, until it arrives. It comes due through the alarm
    /// (no runtime timer per connection); the handle is the runtime timer's when the alarm
    /// thread is not available.
    hello_deadline: Option<(Instant, Option<SpawnHandle>)>,
    exports: ExportTable,
    imports: Imports,
    /// This side's requests: numbering, replies awaited, the backlog, their expiry.
    outbound: Outbound,
    /// The earliest request expiry the timer is armed for; the runtime timer's handle when
    /// the alarm thread is not available.
    timer: Option<(Instant, Option<SpawnHandle>)>,
    /// Request expiries come due through this (see [`alarm`](super::alarm)).
    alarm: Alarm,
    /// The request queue's last batch, kept for its allocation.
    batch: Vec<Submit>,
    /// The request queue's last dropped proxies, kept for the allocation.
    dropped: Vec<(u64, u64)>,
    /// The peer's requests running here, by number.
    inbound: Inbound<SpawnHandle>,
    gate: Rc<Gate>,
    /// Encoded frames waiting for the writer.
    outbox: Outbox,
    /// Byte strings from this size on are written from their own buffer, not copied.
    spill_at: usize,
    /// The transport's write half; taken when the connection shuts it down.
    writer: Option<BoxWrite>,
    /// The write in progress: what the transport has not taken yet (it was busy).
    writing: Option<Segments>,
    /// The write in progress is written but not yet flushed.
    flush_due: bool,
    /// The [`Driver`] is running: frames queued now are written when it finishes its turn.
    deferring: bool,
    /// The actor task's waker, to run the [`Driver`] for frames queued outside it.
    waker: Option<Waker>,
    /// Whether a silent peer is lost, and what to send so it hears from this side (`None`
    /// without a `peer_timeout`); when its next tick is due.
    liveness: Option<Liveness>,
    tick_due: Option<Instant>,
    /// Reading stopped for back-pressure since the last tick (the gate is set where `self` is
    /// shared).
    gate_was_shut: std::cell::Cell<bool>,
    span: tracing::Span,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.shared.id)
            .field("phase", &self.life.phase())
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Starts a connection actor on the current arbiter over a split transport and returns its
    /// handle. Must run inside an actix system or a tokio `LocalSet`.
    ///
    /// The configuration is shared: accept loops hand every connection the same `Arc`.
    pub(crate) fn start(
        reader: BoxRead,
        writer: BoxWrite,
        service: Service,
        config: Arc<Config>,
        info: ConnInfo,
    ) -> Peer {
        let id = next_connection_id();
        let span = tracing::info_span!("netref.conn", conn = id, peer = %info.label);
        let mut started_peer = None;
        Connection::create(|ctx| {
            let shared = Arc::new(ConnShared::new(id, ctx.address(), config.clone(), info));
            let peer = Peer::from_shared(shared.clone());
            started_peer = Some(peer.clone());
            let root = service.root_for(&peer);
            let codec = FrameCodec::with_limits(config.max_frame_len, config.decode_limits);
            let gate = Rc::new(Gate::default());
            let frames = FramedRead::with_capacity(reader, Bodies::new(codec.clone()), READ_BUFFER_MIN);
            ctx.spawn(Driver { frames: Some(Gated { inner: frames, gate: gate.clone() }), read_wake: None });
            let mut exports = ExportTable::new(config.max_exports);
            exports.pin(&root);
            let spill_at = if writer.is_write_vectored() { SPILL_VECTORED } else { SPILL_PLAIN };
            let mut conn = Connection {
                shared,
                config: config.clone(),
                codec,
                service,
                root,
                life: Lifecycle::default(),
                hello_deadline: None,
                exports,
                imports: Imports::default(),
                outbound: Outbound::default(),
                timer: None,
                alarm: Alarm::default(),
                batch: Vec::new(),
                dropped: Vec::new(),
                inbound: Inbound::default(),
                gate,
                outbox: Outbox::default(),
                spill_at,
                writer: Some(writer),
                writing: None,
                flush_due: false,
                deferring: false,
                waker: None,
                liveness: config.peer_timeout.map(|t| Liveness::new(t, Instant::now())),
                tick_due: None,
                gate_was_shut: std::cell::Cell::new(false),
                span,
            };
            let limits = Limits {
                // What the codec takes (it caps the limit at the length prefix's range).
                max_frame_len: conn.codec.max_frame_len() as u64,
                max_concurrent_requests: config.max_concurrent_requests as u64,
            };
            let hello = Hello::new(limits).with_root(conn.root.id_pack());
            // Queued, not written yet: the driver writes it at the end of the actor's first
            // turn, so requests made before then (a client's early requests reach it through
            // its mailbox and request queue, which that turn handles first) share its write.
            if let Err(e) = conn.queue_frame(&Frame::Hello(hello)) {
                warn!(parent: &conn.span, error = %e, "cannot write Hello");
            }
            conn
        });
        // `create` runs the closure before it returns.
        started_peer.expect("Actor::create runs its closure synchronously")
    }

    fn queued_bytes(&self) -> usize {
        self.outbox.len() + self.writing.as_ref().map_or(0, Buf::remaining)
    }

    /// Encodes `frame` into the outbox and sees that it gets written (see
    /// [`kick_writer`](Connection::kick_writer)). On error nothing of the frame is queued and
    /// the exports it counted are taken back.
    fn write_frame(&mut self, frame: &Frame<NetRef>) -> Result<(), Error> {
        self.queue_frame(frame)?;
        self.kick_writer();
        Ok(())
    }

    /// Encodes `frame` into the outbox without starting a write (see
    /// [`write_frame`](Connection::write_frame)).
    fn queue_frame(&mut self, frame: &Frame<NetRef>) -> Result<(), Error> {
        let spill_at = self.spill_at;
        self.queue_with(|outbox, codec, boxer, peer_max| outbox.push_frame(codec, frame, boxer, spill_at, peer_max))
    }

    /// The largest frame the peer's `Hello` said it accepts, once it has arrived (at least
    /// `MIN_MAX_FRAME_LEN`: a `Hello` announcing less closes the connection).
    fn peer_max_frame_len(&self) -> Option<usize> {
        self.life.peer_max_frame_len()
    }

    /// Queues a frame with `push`, references boxed against this connection's exports and
    /// within the peer's frame limit (once its `Hello` has told it). On error nothing is
    /// queued and the exports the frame counted are taken back.
    fn queue_with(
        &mut self,
        push: impl FnOnce(&mut Outbox, &FrameCodec, &Boxer<'_>, Option<usize>) -> Result<(), ProtocolError>,
    ) -> Result<(), Error> {
        let peer_max = self.peer_max_frame_len();
        let boxer =
            Boxer { conn_id: self.shared.id, exports: RefCell::new(&mut self.exports), counted: RefCell::default() };
        if let Err(e) = push(&mut self.outbox, &self.codec, &boxer, peer_max) {
            boxer.roll_back();
            return Err(e.into());
        }
        if let Some(live) = &mut self.liveness {
            live.sent();
        }
        Ok(())
    }

    /// Sees that what was just queued gets written. Inside the [`Driver`]'s turn there is
    /// nothing to do: it writes when the turn's frames are all queued, in one write. Outside it
    /// (a message handler, a spawned future, a timer), the actor task is woken so the driver
    /// runs once more, after everything else this turn queues. While the transport is busy,
    /// its readiness wakes the driver anyway.
    fn kick_writer(&mut self) {
        if self.deferring || self.writing.is_some() || self.outbox.is_empty() {
            return;
        }
        if let Some(waker) = &self.waker {
            waker.wake_by_ref();
        }
        // No waker yet: the driver has not run its first turn, and will.
    }

    /// Writes what is queued until the transport is busy or nothing is left, then flushes;
    /// after each completed write, lets what waited for room go (which may queue more).
    fn write_out(&mut self, ctx: &mut Context<Self>, task: &mut TaskContext<'_>) {
        let mut progressed = false;
        loop {
            let last = self.closes_after_write();
            let Some(w) = self.writer.as_mut() else { return };
            let segments = match &mut self.writing {
                Some(segments) => segments,
                None if self.outbox.is_empty() && !self.flush_due => return,
                None if self.outbox.is_empty() => {
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
                    self.writing.insert(self.outbox.take())
                }
            };
            while segments.has_remaining() {
                match segments.poll_write(Pin::new(&mut *w), task) {
                    Poll::Pending => {
                        if progressed {
                            // The transport took part of it: what waits for room (reading,
                            // requests) may go on while it drains the rest.
                            self.update_gate();
                            self.drain_backlog(ctx);
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
            self.flush_due = true;
        }
    }

    fn write_failed(&mut self, e: std::io::Error, ctx: &mut Context<Self>) {
        self.writing = None;
        self.flush_due = false;
        self.fail(Error::ConnectionClosed(format!("the connection was lost: write failed: {e}")), ctx);
    }

    fn after_write(&mut self, ctx: &mut Context<Self>) {
        self.update_gate();
        self.drain_backlog(ctx);
        self.maybe_finish_close(ctx);
    }

    fn update_gate(&self) {
        let busy = self.inbound.is_full(self.config.max_concurrent_requests)
            || self.queued_bytes() > self.config.max_write_buffer
            || !self.life.reads_frames();
        if busy != self.gate.is_shut() {
            trace!(parent: &self.span, busy, "read gate");
        }
        self.gate.set_shut(busy);
        if busy {
            self.gate_was_shut.set(true);
        }
    }

    fn has_room(&self) -> bool {
        self.outbound.in_flight() < self.config.max_in_flight && self.queued_bytes() <= self.config.max_write_buffer
    }

    fn submit(&mut self, msg: Submit, ctx: &mut Context<Self>) {
        if !self.life.is_open() {
            msg.completer.settle(Err(self.shared.closed_error()));
            return;
        }
        if !self.outbound.has_queued() && self.has_room() {
            return self.start_request(msg, true, ctx);
        }
        // Waiting for a slot, it keeps its own expiry: the timer must come for it, and a new
        // expiry (or its caller's cancellation) must reach this connection.
        let expiry = msg.completer.shared.expiry();
        let shared = msg.completer.shared.clone();
        match self.outbound.queue(msg, self.config.max_queued_requests) {
            Ok(()) => {
                shared.attach(self.shared.clone());
                if let Some(at) = expiry {
                    self.arm_timer(at, ctx);
                }
            }
            Err(msg) => {
                let limit = self.config.max_queued_requests;
                msg.completer.settle(Err(Error::LimitReached(format!(
                    "{limit} requests already queued on connection {}; raise max_queued_requests or wait",
                    self.shared.id
                ))));
            }
        }
    }

    fn drain_backlog(&mut self, ctx: &mut Context<Self>) {
        while self.life.is_open() && self.has_room() {
            let Some(msg) = self.outbound.next_queued() else { break };
            self.start_request(msg, false, ctx);
        }
    }

    /// Sends `msg`. `fresh`: it comes straight from its caller, not from the backlog.
    fn start_request(&mut self, msg: Submit, fresh: bool, ctx: &mut Context<Self>) {
        let Submit { handle, args, completer, one_way } = msg;
        if handle == Handle::GetRoot && matches!(&args, Payload::Value(Value::Tuple(items)) if items.is_empty()) {
            // The peer announced its root in its Hello: no round trip needed.
            if let Some(root) = self.life.peer_root().cloned() {
                let proxy = import(&mut self.imports, &self.shared, root.instance_id, || root, false);
                completer.settle(Ok(Value::Ref(proxy)));
                return;
            }
            // Early requests and no Hello yet (`Peer::root` makes the alias itself; this is for
            // a `GetRoot` message sent to the actor directly).
            if !self.life.greeted() && self.config.early_requests {
                completer.settle(Ok(Value::Ref(NetRef::root_alias(self.shared.clone()))));
                return;
            }
        }
        if one_way {
            let sent = self.write_request(None, handle, args, None);
            if let Err(e) = &sent {
                // Nobody waits for a notification's result: say it here.
                warn!(parent: &self.span, %handle, error = %e, "cannot send a notification");
            }
            completer.settle(sent.map(|()| Value::None));
            return;
        }
        let seq = self.outbound.next_seq();
        let owner: Arc<dyn ResultOwner> = self.shared.clone();
        let Ok(registered) = completer.shared.register(seq, owner) else {
            // Cancelled before it was sent.
            return;
        };
        let expiry = registered.map(|(at, _)| at);
        let deadline = match registered {
            None => None,
            // Straight from the caller: it set its expiry a moment ago, so its whole timeout is
            // what it will wait (over by the mailbox hop, microseconds; the deadline only lets
            // the peer drop work early). Saves a clock read per call.
            Some((_, timeout)) if fresh && !timeout.is_zero() => Some(timeout),
            Some((at, timeout)) => {
                let now = Instant::now();
                if at <= now {
                    completer.settle(Err(Error::Timeout(timeout)));
                    return;
                }
                Some(at - now)
            }
        };
        match self.write_request(Some(seq), handle, args, deadline) {
            Ok(()) => {
                self.outbound.sent(seq, completer);
                if let Some(at) = expiry {
                    self.arm_timer(at, ctx);
                }
            }
            Err(e) => {
                completer.settle(Err(e));
            }
        }
    }

    /// Writes a request (`seq` given) or a one-way notification (`seq` `None`).
    fn write_request(
        &mut self,
        seq: Option<u64>,
        handle: Handle,
        args: Payload,
        deadline: Option<Duration>,
    ) -> Result<(), Error> {
        match (seq, args) {
            (Some(seq), Payload::Value(args)) => self.write_frame(&Frame::Request { seq, handle, args, deadline }),
            (None, Payload::Value(args)) => self.write_frame(&Frame::Notify { handle, args }),
            (seq, Payload::Call { target, tail }) => {
                self.queue_with(|outbox, codec, boxer, peer_max| {
                    let call = CallFrame { seq, handle, target: &target, tail: &tail, deadline };
                    outbox.push_call(codec, &call, boxer, peer_max)
                })?;
                self.kick_writer();
                Ok(())
            }
        }
    }

    /// Makes sure the expiry timer fires no later than `at`. One timer serves every pending
    /// request and every running inbound request with a deadline: it is armed at the earliest
    /// expiry it has been told of and never moved later, so a request settled in time costs
    /// nothing here (no sorted set to keep up to date); when the timer fires,
    /// [`expire`](Connection::expire) looks at every one of them.
    fn arm_timer(&mut self, at: Instant, ctx: &mut Context<Self>) {
        if let Some((armed, _)) = self.timer {
            if armed <= at {
                return;
            }
        }
        if let Some((_, Some(handle))) = self.timer.take() {
            ctx.cancel_future(handle);
        }
        // The alarm thread keeps expiries off the runtime's timer wheel, which costs every
        // park of the thread while a timer is registered (see `alarm`); the driver runs
        // `expire` when it fires.
        if self.alarm.set(at) {
            self.timer = Some((at, None));
            return;
        }
        let delay = at.saturating_duration_since(Instant::now());
        let handle = ctx.run_later(delay, |act, ctx| {
            act.timer = None;
            act.expire(ctx);
        });
        self.timer = Some((at, Some(handle)));
    }

    /// Settles every request past its expiry with a timeout and tells the peer to cancel it,
    /// drops the inbound requests past their caller's deadline, then arms the timer for the
    /// earliest expiry left. Runs when the timer fires: once per expiry that comes due, plus at
    /// most once per earliest expiry of a request settled in time; each run looks at the
    /// pending requests (at most `max_in_flight`) and the running inbound ones (at most
    /// `max_concurrent_requests`) once.
    fn expire(&mut self, ctx: &mut Context<Self>) {
        let now = Instant::now();
        let mut expired = Vec::new();
        let mut earliest = self.outbound.expire(now, &mut expired);
        for seq in expired.drain(..) {
            debug!(parent: &self.span, seq, "request expired; cancelling");
            let _ = self.write_frame(&Frame::Cancel { seq });
        }
        // Inbound requests past their caller's deadline: the work is dropped, no reply.
        let mut dropped = Vec::new();
        if let Some(at) = self.inbound.expire(now, &mut dropped) {
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
        if !dropped.is_empty() {
            for (seq, work) in dropped {
                ctx.cancel_future(work);
                debug!(parent: &self.span, seq, "the caller's deadline passed; work dropped");
            }
            self.update_gate();
            self.maybe_finish_close(ctx);
        }
        if let Some(at) = earliest {
            self.arm_timer(at, ctx);
        }
        self.drain_backlog(ctx);
    }

    /// Sends the `Release`s owed, in one frame. The driver calls it at the end of each turn
    /// (after the turn's frames and requests), so the releases of a turn share one frame and
    /// leave in the turn's write. Inlined into every turn: most turns owe nothing.
    #[inline(always)]
    fn send_releases(&mut self) {
        if !self.imports.owed.is_empty() {
            self.write_releases();
        }
    }

    fn write_releases(&mut self) {
        if self.life.is_open() {
            let refs = std::mem::take(&mut self.imports.owed);
            trace!(parent: &self.span, count = refs.len(), "sending releases");
            // Nearly always one frame; many proxies dropped in one turn go in several, each
            // within what a decoder with this side's limits takes (the peer would close the
            // connection over a frame past them).
            let chunk = release_chunk(&self.config, self.peer_max_frame_len());
            if refs.len() <= chunk {
                self.write_release_frame(refs);
            } else {
                for part in refs.chunks(chunk) {
                    self.write_release_frame(part.to_vec());
                }
            }
        }
    }

    fn write_release_frame(&mut self, refs: Vec<(u64, u64)>) {
        if let Err(e) = self.write_frame(&Frame::Release { refs }) {
            warn!(parent: &self.span, error = %e, "cannot send releases");
        }
    }

    fn on_frame(&mut self, frame: Frame<NetRef>, ctx: &mut Context<Self>) {
        if let Err(e) = self.life.check_before_hello(matches!(frame, Frame::Hello(_)), frame.kind()) {
            return self.fail(Error::Protocol(e), ctx);
        }
        match frame {
            Frame::Hello(hello) => {
                let (version, root, features) = match self.life.receive_hello(hello) {
                    Ok(hello) => (hello.version, hello.root.clone(), hello.features),
                    Err(e) => return self.fail(Error::Protocol(e), ctx),
                };
                debug!(parent: &self.span, version, "peer said hello");
                // The alarm's entry stays queued until due (it cannot be taken out of the
                // middle of the queue); it then finds no deadline here and does nothing.
                if let Some((_, Some(timer))) = self.hello_deadline.take() {
                    ctx.cancel_future(timer);
                }
                if let Some(root) = root {
                    self.shared.set_peer_root(root);
                }
                // From now on the encoder may send what the peer announced (until now: nothing
                // beyond version 1's baseline).
                self.codec.set_peer_features(features);
                self.shared.mark_greeted();
            }
            Frame::Request { seq, handle, args, deadline } => {
                self.serve(seq, handle, ObjectRequest::Items(request_items(args)), deadline, ctx)
            }
            Frame::Reply { seq, value } => self.settle(seq, Ok(value), ctx),
            Frame::Exception { seq, error } => self.settle(seq, Err(Error::Remote(error)), ctx),
            Frame::Notify { handle, args } => {
                self.serve_one_way(handle, ObjectRequest::Items(request_items(args)), ctx)
            }
            Frame::Cancel { seq } => {
                if let Some(work) = self.inbound.cancel(seq) {
                    debug!(parent: &self.span, seq, "peer cancelled a request");
                    ctx.cancel_future(work);
                    self.update_gate();
                    self.maybe_finish_close(ctx);
                }
            }
            Frame::Release { refs } => {
                for (id, count) in refs {
                    if let Err(e) = self.exports.release(id, count) {
                        warn!(parent: &self.span, "{e}");
                    }
                }
            }
            Frame::Close { reason } => {
                debug!(parent: &self.span, %reason, "peer is closing");
                self.life.peer_closes();
                // The peer failed its own calls when it closed: nobody waits for these replies.
                for work in self.inbound.take_all() {
                    ctx.cancel_future(work);
                }
                let grace = self.config.close_grace;
                let reason = Error::ConnectionClosed(format!("the peer closed the connection: {reason}"));
                self.begin_close(reason, false, grace, ctx);
            }
        }
    }

    fn settle(&mut self, seq: u64, outcome: Result<Value, Error>, ctx: &mut Context<Self>) {
        match self.outbound.take(seq) {
            Some(completer) => {
                completer.settle(outcome);
                self.drain_backlog(ctx);
                self.maybe_finish_close(ctx);
            }
            None => trace!(parent: &self.span, seq, "reply for no pending request (expired or cancelled); dropped"),
        }
    }

    /// Serves request `seq`: its items as the general decoder read them, or a CALLATTR or CALL
    /// read by the plain reader (which goes straight to the object). Only while the connection
    /// is open; a seq still running is a protocol error.
    fn serve(
        &mut self,
        seq: u64,
        handle: Handle,
        request: ObjectRequest<'_>,
        deadline: Option<Duration>,
        ctx: &mut Context<Self>,
    ) {
        if !self.life.is_open() {
            debug!(parent: &self.span, seq, %handle, "request after Close ignored");
            return;
        }
        if let Err(SeqInUse(seq)) = self.inbound.check_free(seq) {
            // Two running requests under one seq would share one slot of the concurrency cap
            // (and one Cancel): a peer could run any number of them. It is a protocol error.
            let e = ProtocolError::Unexpected(format!("request seq {seq} reused while that request is still running"));
            return self.fail(Error::Protocol(e), ctx);
        }
        let items = match request {
            ObjectRequest::Items(items) => items,
            call @ ObjectRequest::Call { .. } => return self.serve_object(seq, handle, call, deadline, ctx),
        };
        match handle {
            Handle::Ping => self.reply(seq, Ok(items.into_iter().next().unwrap_or(Value::None))),
            Handle::GetRoot => {
                let r = match items.first() {
                    None | Some(Value::None) => Ok(Value::Ref(NetRef::from(self.root.clone()))),
                    Some(Value::Str(name)) => match self.service.named(name) {
                        Some(object) => {
                            let object = object.clone();
                            self.exports.pin(&object);
                            Ok(Value::Ref(NetRef::from(object)))
                        }
                        None => {
                            let known: Vec<&str> = self.service.names().collect();
                            Err(RemoteError::new(
                                kinds::LOOKUP_ERROR,
                                format!("no export named '{name}' (exported: {})", known.join(", ")),
                            ))
                        }
                    },
                    Some(other) => Err(RemoteError::new(
                        kinds::TYPE_ERROR,
                        format!("an export name must be a string, not {}", other.kind()),
                    )),
                };
                self.reply(seq, r);
            }
            Handle::Close => {
                self.reply(seq, Ok(Value::None));
                let grace = self.config.close_grace;
                self.begin_close(Error::ConnectionClosed("the peer closed the connection".into()), false, grace, ctx);
            }
            Handle::Del => {
                let r = match (items.first(), items.get(1)) {
                    (Some(Value::Ref(r)), count) => {
                        let count = match count {
                            Some(Value::Int(n)) if *n > 0 => *n as u64,
                            _ => 1,
                        };
                        let id = r.id_pack().instance_id;
                        drop(items);
                        self.exports.release(id, count).map(|()| Value::None).map_err(|m| {
                            warn!(parent: &self.span, "{m}");
                            RemoteError::new(kinds::REFERENCE_ERROR, m)
                        })
                    }
                    _ => Err(RemoteError::new(kinds::TYPE_ERROR, "HANDLE_DEL needs (object, count)")),
                };
                self.reply(seq, r);
            }
            _ => self.serve_object(seq, handle, ObjectRequest::Items(items), deadline, ctx),
        }
    }

    fn serve_object(
        &mut self,
        seq: u64,
        handle: Handle,
        request: ObjectRequest<'_>,
        deadline: Option<Duration>,
        ctx: &mut Context<Self>,
    ) {
        // Timing is only logged at TRACE; skip the clock reads otherwise.
        let started = tracing::enabled!(tracing::Level::TRACE).then(Instant::now);
        // A span per request only when something listens for it: with tracing's `log` feature
        // on (a dependency may turn it on), even a disabled span formats its fields for `log`.
        let span = if tracing::enabled!(kind: tracing::metadata::Kind::SPAN, tracing::Level::DEBUG) {
            tracing::debug_span!(parent: &self.span, "netref.request", seq, handle = %handle, object = tracing::field::Empty)
        } else {
            tracing::Span::none()
        };
        let (object, outcome) = request.start(handle, &self.config.policy, &span);
        if !span.is_disabled() {
            span.record("object", tracing::field::display(&object));
        }
        // Most methods are synchronous: answer them without spawning.
        match outcome {
            Started::Done(r) => {
                trace!(parent: &span, elapsed = ?started.map(|t| t.elapsed()), ok = r.is_ok(), "served");
                self.reply(seq, r);
            }
            Started::Running(fut, long_poll) => {
                // The caller stops waiting at its deadline; past it the work is dropped without a
                // reply (the caller has its own Timeout and sent, or will send, a Cancel). The
                // expiry timer drops it (`expire`), as it expires outbound requests: no runtime
                // timer per request.
                let deadline = deadline.and_then(|limit| Instant::now().checked_add(limit));
                let fut = if span.is_disabled() { fut } else { fut.instrument(span.clone()).boxed() };
                let handle = ctx.spawn(wrap_future::<_, Self>(fut).map(move |r, act, ctx| {
                    if act.inbound.finish(seq) {
                        trace!(parent: &span, elapsed = ?started.map(|t| t.elapsed()), ok = r.is_ok(), "served");
                        act.reply(seq, r);
                        act.update_gate();
                        act.maybe_finish_close(ctx);
                    }
                }));
                self.inbound.start(seq, handle, long_poll, deadline);
                if let Some(at) = deadline {
                    self.arm_timer(at, ctx);
                }
                self.update_gate();
            }
        }
    }

    /// Serves a `Notify`: like a request, but the outcome is only logged. Dispatch happens now,
    /// in frame order, so one-way messages to an actor keep their order.
    fn serve_one_way(&mut self, handle: Handle, request: ObjectRequest<'_>, ctx: &mut Context<Self>) {
        // A one-way PING is a liveness frame: reading it was its whole purpose.
        if !self.life.is_open() || handle == Handle::Ping {
            return;
        }
        let span = self.span.clone();
        let (object, outcome) = request.start(handle, &self.config.policy, &span);
        match outcome {
            Started::Done(Ok(_)) => {}
            Started::Done(Err(e)) => debug!(parent: &span, %handle, %object, error = %e, "one-way request failed"),
            Started::Running(fut, _) => {
                self.inbound.start_one_way();
                self.update_gate();
                ctx.spawn(wrap_future::<_, Self>(fut).map(move |r, act, ctx| {
                    act.inbound.finish_one_way();
                    if let Err(e) = r {
                        debug!(parent: &span, %handle, %object, error = %e, "one-way request failed");
                    }
                    act.update_gate();
                    act.maybe_finish_close(ctx);
                }));
            }
        }
    }

    fn reply(&mut self, seq: u64, r: Result<Value, RemoteError>) {
        if self.life.is_closed() {
            return;
        }
        let frame = match r {
            Ok(value) => Frame::Reply { seq, value },
            Err(error) => Frame::Exception { seq, error },
        };
        if let Err(e) = self.write_frame(&frame) {
            warn!(parent: &self.span, seq, error = %e, "cannot send reply; sending the error instead");
            // Short enough for any peer's frames (at least `MIN_MAX_FRAME_LEN`), so the caller
            // always hears back.
            let mut message = format!("the reply could not be sent: {e}");
            truncate_at_char(&mut message, FALLBACK_MESSAGE_MAX);
            let error = RemoteError::new(kinds::VALUE_ERROR, message);
            if let Err(e) = self.write_frame(&Frame::Exception { seq, error }) {
                error!(parent: &self.span, seq, error = %e, "cannot send the error reply either: the caller waits for its timeout");
            }
        }
    }

    fn fail_all_pending(&mut self, error: &Error) {
        self.outbound.fail_all(error);
    }

    /// Graceful close: no new requests; replies already due and queued writes are flushed.
    fn begin_close(&mut self, reason: Error, send_close: bool, grace: Duration, ctx: &mut Context<Self>) {
        if !self.life.begin_close() {
            return;
        }
        self.shared.mark_closed(reason.clone());
        if self.life.peer_closing() {
            // The peer answers what it received before its Close: keep those; fail the rest.
            self.outbound.fail_queued(&reason);
        } else {
            self.fail_all_pending(&reason);
        }
        // Requests that wait for an event (a watch) would hold the close for its whole grace:
        // drop them; the peer sees them fail when the connection ends.
        for (seq, work) in self.inbound.take_long_polls() {
            debug!(parent: &self.span, seq, "closing: long poll dropped");
            ctx.cancel_future(work);
        }
        if send_close {
            let text = match reason {
                Error::ConnectionClosed(t) => t,
                other => other.to_string(),
            };
            let _ = self.write_frame(&Frame::Close { reason: text });
        }
        self.update_gate();
        self.maybe_finish_close(ctx);
        // The grace timer only when the close has to wait: after this turn's writes (the
        // `Close` frame's write was spawned above and usually completes at once). Registering
        // a timer can cost the runtime a wake-up, and most closes need none.
        after_this_turn(ctx, move |act, ctx| {
            if act.life.phase() != Phase::Closing {
                return;
            }
            ctx.run_later(grace, |act, ctx| {
                if act.life.phase() == Phase::Closing {
                    debug!(parent: &act.span, "close grace period over; stopping");
                    act.life.finish();
                    ctx.stop();
                }
            });
        });
    }

    /// The close waits for nothing but the writes queued: once they are out, the write side
    /// shuts down.
    fn closes_after_write(&self) -> bool {
        // With the peer closing too, its replies to what is pending are still awaited.
        self.life.closes_after_write(self.inbound.is_empty(), self.outbound.nothing_awaited())
    }

    fn maybe_finish_close(&mut self, ctx: &mut Context<Self>) {
        if !self.closes_after_write() || self.writing.is_some() || self.flush_due || !self.outbox.is_empty() {
            return;
        }
        self.life.finish();
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

    /// The peer's `Hello` did not come within `hello_timeout`: the connection fails.
    fn hello_overdue(&mut self, ctx: &mut Context<Self>) {
        if !self.life.greeted() && self.life.is_open() {
            let limit = self.config.hello_timeout;
            self.fail(
                Error::Protocol(ProtocolError::Unexpected(format!("no Hello from the peer within {limit:?}"))),
                ctx,
            );
        }
    }

    /// The alarm fired: for a request expiry, or for the `Hello` deadline.
    fn alarm_fired(&mut self, ctx: &mut Context<Self>) {
        if let Some((due, None)) = self.hello_deadline {
            if due <= Instant::now() {
                self.hello_deadline = None;
                self.hello_overdue(ctx);
            }
        }
        if self.tick_due.is_some_and(|due| due <= Instant::now()) {
            self.tick(ctx);
        }
        self.timer = None;
        self.expire(ctx);
    }

    /// Arms the next liveness tick, a third of `peer_timeout` from now, on the alarm (no runtime
    /// timer per connection); without a `peer_timeout` there are no ticks.
    fn schedule_tick(&mut self, ctx: &mut Context<Self>) {
        let Some(interval) = self.liveness.as_ref().map(Liveness::interval) else { return };
        let due = Instant::now() + interval;
        self.tick_due = Some(due);
        if !self.alarm.set(due) {
            ctx.run_later(interval, |act, ctx| act.tick(ctx));
        }
    }

    /// One liveness tick (see [`Liveness::tick`]): a silent peer is lost; otherwise a PING
    /// request or a one-way PING goes out directly, outside the in-flight caps and the backlog.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        self.tick_due = None;
        if !self.life.is_open() {
            return;
        }
        let reading_paused = self.gate_was_shut.take() || self.gate.is_shut();
        let Some(live) = &mut self.liveness else { return };
        if reading_paused {
            live.reading_paused();
        }
        let timeout = self.config.peer_timeout.unwrap_or_default();
        match live.tick(Instant::now()) {
            Tick::Lost { silent } => {
                let error = Error::ConnectionClosed(format!(
                    "peer lost: nothing received for {silent:?} (peer_timeout {timeout:?})"
                ));
                return self.fail(error, ctx);
            }
            Tick::Ping => self.send_liveness_ping(timeout),
            Tick::Notify => {
                let frame = Frame::Notify { handle: Handle::Ping, args: Value::Tuple(Vec::new()) };
                if let Err(e) = self.write_frame(&frame) {
                    debug!(parent: &self.span, error = %e, "cannot send a liveness frame");
                }
            }
            Tick::Quiet => {}
        }
        // The liveness frame just queued does not count as traffic (see `Liveness::tick`).
        if let Some(live) = &mut self.liveness {
            live.tick_sent_nothing();
        }
        self.schedule_tick(ctx);
    }

    /// A PING request the peer must answer, outside the in-flight caps and the backlog;
    /// nobody waits for its result (it expires with `peer_timeout`).
    fn send_liveness_ping(&mut self, limit: Duration) {
        let (result, completer) = crate::AsyncResult::<Value>::pending(Some(limit));
        result.detach();
        let seq = self.outbound.next_seq();
        let owner: Arc<dyn ResultOwner> = self.shared.clone();
        if completer.shared.register(seq, owner).is_err() {
            return;
        }
        let frame =
            Frame::Request { seq, handle: Handle::Ping, args: Value::Tuple(vec![Value::None]), deadline: Some(limit) };
        match self.write_frame(&frame) {
            Ok(()) => self.outbound.sent(seq, completer),
            Err(e) => debug!(parent: &self.span, error = %e, "cannot send a liveness ping"),
        }
    }

    /// Abrupt close: fail everything now, stop reading and serving; a protocol error is
    /// explained to the peer in a `Close` frame, flushed before the actor stops.
    fn fail(&mut self, error: Error, ctx: &mut Context<Self>) {
        let Some(was_open) = self.life.begin_failing() else { return };
        match &error {
            Error::ConnectionClosed(_) => debug!(parent: &self.span, %error, "connection closed"),
            _ => warn!(parent: &self.span, %error, "closing connection"),
        }
        self.shared.mark_closed(error.clone());
        self.fail_all_pending(&error);
        for work in self.inbound.take_all() {
            ctx.cancel_future(work);
        }
        self.update_gate();
        let act_grace = self.config.close_grace;
        let explain = was_open && matches!(error, Error::Protocol(_)) && self.writer.is_some();
        if explain {
            let _ = self.write_frame(&Frame::Close { reason: error.to_string() });
            ctx.run_later(act_grace, |act, ctx| {
                if !act.life.is_closed() {
                    act.life.finish();
                    ctx.stop();
                }
            });
            self.maybe_finish_close(ctx);
        } else {
            self.life.finish();
            ctx.stop();
        }
    }
}

/// The arguments of a request as a list (a tuple is the list; anything else is one argument).
fn request_items(args: Value) -> Vec<Value> {
    match args {
        Value::Tuple(items) => items,
        Value::None => Vec::new(),
        other => vec![other],
    }
}

/// The target of a request, named in logs and panic messages. Holding the object or netref
/// (an `Arc`) rather than a copy of its type name keeps the hot path free of allocations.
#[derive(Clone)]
enum Target {
    /// The request's first argument was not a reference.
    Nothing,
    /// The first argument, a netref.
    Ref(NetRef),
    /// An object of this side (a request read by the plain reader).
    Object(Object),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Target::Nothing => "",
            Target::Ref(r) => r.type_name(),
            Target::Object(o) => o.type_name(),
        })
    }
}

/// An object request to serve: its unboxed items (target first), or a CALLATTR (`name` given)
/// or CALL read by the plain reader, its target resolved.
enum ObjectRequest<'a> {
    Items(Vec<Value>),
    Call { object: Object, name: Option<&'a str>, args: Vec<Value> },
}

impl ObjectRequest<'_> {
    /// Dispatches the request and polls it once, with user code isolated (see
    /// [`start_isolated`]).
    fn start(self, handle: Handle, policy: &crate::object::AccessPolicy, span: &tracing::Span) -> (Target, Started) {
        match self {
            ObjectRequest::Items(items) => {
                let target = match items.first() {
                    Some(Value::Ref(r)) => Target::Ref(r.clone()),
                    _ => Target::Nothing,
                };
                start_isolated(target, span, || dispatch(handle, items, policy))
            }
            ObjectRequest::Call { object, name, args } => {
                let target = Target::Object(object.clone());
                start_isolated(target, span, || match name {
                    Some(name) => dispatch_call(&object, name, args, policy),
                    None => dispatch_callable(&object, args, policy),
                })
            }
        }
    }
}

/// Runs `f` on the actor later in this same turn, after the mailbox and the items already
/// spawned (actix polls them in that order): for work that should see what the turn did.
fn after_this_turn(ctx: &mut Context<Connection>, f: impl FnOnce(&mut Connection, &mut Context<Connection>) + 'static) {
    ctx.spawn(wrap_future::<_, Connection>(std::future::ready(())).map(move |(), act, ctx| f(act, ctx)));
}

/// How a dispatched request went on its first poll.
enum Started {
    /// It finished at once (most methods are synchronous): nothing to spawn or box.
    Done(Result<Value, RemoteError>),
    /// It is still running; the future is panic-isolated. `long_poll`: it waits for an event
    /// (a graceful close drops it rather than waiting for it).
    Running(futures::future::BoxFuture<'static, Result<Value, RemoteError>>, bool),
}

/// Dispatches a request on an exported object (`run`) and polls it once, with user code
/// isolated: a panic while the method starts or while its future runs becomes a `netref.Panic`
/// remote error. Returns the target (for logs) and how it went.
fn start_isolated(target: Target, span: &tracing::Span, run: impl FnOnce() -> Served) -> (Target, Started) {
    let (mut fut, long_poll): (MethodFuture, bool) = match std::panic::catch_unwind(AssertUnwindSafe(run)) {
        Ok(Served::Done(r)) => return (target, Started::Done(r)),
        Ok(Served::Later(fut)) => (fut, false),
        Ok(Served::LongPoll(fut)) => (fut, true),
        Err(panic) => {
            let error = panic_error(&target, panic);
            return (target, Started::Done(Err(error)));
        }
    };
    let mut cx = TaskContext::from_waker(futures::task::noop_waker_ref());
    let polled = span.in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))));
    let started = match polled {
        Ok(Poll::Ready(r)) => Started::Done(r),
        Err(panic) => Started::Done(Err(panic_error(&target, panic))),
        Ok(Poll::Pending) => {
            let for_panic = target.clone();
            let fut = AssertUnwindSafe(fut)
                .catch_unwind()
                .map(move |r| r.unwrap_or_else(|panic| Err(panic_error(&for_panic, panic))));
            Started::Running(fut.boxed(), long_poll)
        }
    };
    (target, started)
}

fn panic_error(object: &Target, panic: Box<dyn std::any::Any + Send>) -> RemoteError {
    let message = crate::error::panic_message(&*panic).to_owned();
    let traceback =
        crate::error::traceback_text(&format!("panic while serving a request on '{object}'"), kinds::PANIC, &message);
    RemoteError::new(kinds::PANIC, message).with_traceback(traceback)
}

impl Actor for Connection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // On the alarm, as request expiries are: a runtime timer costs the runtime on every
        // park while it is registered, and actix polls every spawned item of the context on
        // each wake-up (~1.4k instructions per connection and side, measured).
        let due = Instant::now() + self.config.hello_timeout;
        self.hello_deadline = if self.alarm.set(due) {
            Some((due, None))
        } else {
            let handle = ctx.run_later(self.config.hello_timeout, |act, ctx| {
                act.hello_deadline = None;
                act.hello_overdue(ctx);
            });
            Some((due, Some(handle)))
        };
        self.schedule_tick(ctx);
        let peer = Peer::from_shared(self.shared.clone());
        debug!(parent: &self.span, "connection started");
        self.service.connected(&peer);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.life.finish();
        // Usually the close already gave its reason, and nothing is left to fail: then no error
        // is built (each is a string or two on the heap, per connection).
        if !self.shared.is_closed() {
            self.shared.mark_closed(Error::ConnectionClosed("the connection stopped".into()));
        }
        if !self.outbound.is_idle() {
            let error = self.shared.closed_error();
            self.fail_all_pending(&error);
        }
        self.shared.close_requests();
        self.exports.clear();
        self.imports.clear();
        self.gate.set_shut(false);
        debug!(parent: &self.span, "connection stopped");
        self.service.disconnected(&Peer::from_shared(self.shared.clone()));
        self.shared.mark_stopped();
    }
}

impl Drop for Connection {
    /// An actor dropped without `stopped` (its arbiter or system was stopped) still ends its
    /// handles' waits: pending calls fail and `Peer::closed` resolves.
    fn drop(&mut self) {
        if !self.shared.is_stopped() {
            self.shared.mark_closed(Error::ConnectionClosed("the connection's runtime stopped".into()));
            let error = self.shared.closed_error();
            self.fail_all_pending(&error);
            self.shared.close_requests();
            self.shared.mark_stopped();
        }
    }
}

impl Connection {
    /// One frame body read off the transport (or the read's error).
    fn on_body(&mut self, item: Result<Bytes, ProtocolError>, ctx: &mut Context<Self>) {
        if !self.life.reads_frames() {
            return;
        }
        let body = match item {
            Ok(body) => body,
            Err(ProtocolError::Io { message, .. }) => {
                return self
                    .fail(Error::ConnectionClosed(format!("the connection was lost: read failed: {message}")), ctx)
            }
            Err(e) => return self.fail(Error::Protocol(e), ctx),
        };
        // No clock read per frame (measurable when pipelining): the tick turns this into time.
        if let Some(live) = &mut self.liveness {
            live.heard();
        }
        if self.life.greeted() && self.on_plain_body(&body, ctx) {
            self.update_gate();
            return;
        }
        let decoded = {
            let unboxer = Unboxer {
                shared: &self.shared,
                root: &self.root,
                exports: &self.exports,
                imports: RefCell::new(&mut self.imports),
            };
            self.codec.decode_body_with(&body, &unboxer)
        };
        match decoded {
            Ok(frame) => self.on_frame(frame, ctx),
            Err(e) => return self.fail(Error::Protocol(e), ctx),
        }
        self.update_gate();
    }

    /// Serves a method call or settles a reply that the plain reader can read (nearly every
    /// frame of a busy connection); `false` leaves `body` to the general decoder, which then
    /// does the same, or reports what is wrong with it.
    fn on_plain_body(&mut self, body: &Bytes, ctx: &mut Context<Self>) -> bool {
        let limits = *self.codec.limits();
        match body.first() {
            Some(&KIND_REPLY) => match read_reply::<NetRef>(body, &limits) {
                Some((seq, PlainReply::Value(value))) => {
                    self.settle(seq, Ok(value), ctx);
                    true
                }
                Some((seq, PlainReply::Ref(reference))) => {
                    let mut value = Value::None;
                    if !self.unbox_plain_refs(&[reference], std::slice::from_mut(&mut value)) {
                        return false;
                    }
                    self.settle(seq, Ok(value), ctx);
                    true
                }
                None => false,
            },
            Some(&(KIND_REQUEST | KIND_NOTIFY)) => {
                let Some(mut call) = read_call::<NetRef>(body, &limits) else { return false };
                // The target resolves as the unboxer resolves a `LOCAL_REF`; one it cannot
                // resolve is the general decoder's error to report.
                let object = if call.instance_id == ROOT_ALIAS && call.class_id == 0 {
                    self.root.clone()
                } else {
                    match self.exports.get(call.instance_id) {
                        Some(object) => object.clone(),
                        None => return false,
                    }
                };
                if !call.refs.is_empty() && !self.unbox_plain_refs(&call.refs, &mut call.args) {
                    return false;
                }
                let handle = if call.name.is_some() { Handle::CallAttr } else { Handle::Call };
                let request = ObjectRequest::Call { object, name: call.name, args: call.args };
                match call.seq {
                    Some(seq) => {
                        let deadline = call.deadline_us.map(Duration::from_micros);
                        self.serve(seq, handle, request, deadline, ctx);
                    }
                    None => self.serve_one_way(handle, request, ctx),
                }
                true
            }
            _ => false,
        }
    }

    /// Unboxes the references the plain reader found into their places in `values`, as the
    /// general decoder would: the `LOCAL_REF`s first, so that one this side never exported
    /// leaves the frame (`false`) before any `REMOTE_REF` has counted an import; then the
    /// `REMOTE_REF`s, which cannot fail.
    fn unbox_plain_refs(&mut self, refs: &[PlainRef<'_>], values: &mut [Value]) -> bool {
        let unboxer = Unboxer {
            shared: &self.shared,
            root: &self.root,
            exports: &self.exports,
            imports: RefCell::new(&mut self.imports),
        };
        for pass in [RefLabel::Local, RefLabel::Remote] {
            for r in refs.iter().filter(|r| r.label == pass) {
                match (unboxer.unbox_ref(r.label, r.id), values.get_mut(r.index)) {
                    (Ok(netref), Some(slot)) => *slot = Value::Ref(netref),
                    _ => {
                        debug_assert_eq!(pass, RefLabel::Local, "a REMOTE_REF unboxes, and its place exists");
                        return false;
                    }
                }
            }
        }
        true
    }

    /// The peer closed its side.
    fn on_read_end(&mut self, ctx: &mut Context<Self>) {
        match self.life.phase() {
            Phase::Open => self.fail(Error::ConnectionClosed("the peer closed the connection".into()), ctx),
            Phase::Closing => {
                // The peer is gone: nothing more can be flushed to it.
                self.life.finish();
                ctx.stop();
            }
            Phase::Closed => {}
        }
    }
}

/// Frames read per turn at most before the driver lets the other futures of the arbiter run.
/// The turn's replies go out in one write, so a larger budget means fewer writes for a
/// pipelining peer: pinned, 300,000 pipelined calls ran at ~830k/s with 64 and ~900k/s with
/// 256 (1024 gained nothing more). At about 1 µs a frame, a turn stays well under a
/// millisecond.
const READ_BUDGET: usize = 256;

/// Runs the connection's I/O, for the actor's life, as one future of its context: each turn it
/// handles the frames the transport has ready, then the requests callers queued (the request
/// queue wakes it, no mailbox message each), then writes everything those queued in one write.
///
/// One future rather than a stream, a pump and a write task each: actix polls every future of
/// a context on each wake-up, and a write task spawned per write cost an allocation and a
/// second pass over all of them.
struct Driver {
    /// The frame bodies; `None` once the peer has closed its side.
    frames: Option<Gated<FramedRead<BoxRead, Bodies>>>,
    /// What the frames are polled with (made on the first turn, and again if the task's waker
    /// changes): only turns after it was woken poll them.
    read_wake: Option<(Arc<ReadWake>, Waker)>,
}

impl ActorFuture<Connection> for Driver {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        act: &mut Connection,
        ctx: &mut Context<Connection>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        let this = self.get_mut();
        if !act.waker.as_ref().is_some_and(|w| w.will_wake(task.waker())) {
            act.waker = Some(task.waker().clone());
            act.alarm.register(task.waker());
        }
        if act.alarm.take_fired() {
            act.alarm_fired(ctx);
        }
        act.deferring = true;
        if !this.read_wake.as_ref().is_some_and(|(wake, _)| wake.wakes(task.waker())) {
            this.read_wake = None;
        }
        let (read_wake, read_waker) = &*this.read_wake.get_or_insert_with(|| ReadWake::new(task.waker()));
        // The transport, the gate and the budget below all wake the read side through
        // `read_waker`: a turn nothing of those woke has nothing to read.
        let mut read = 0;
        let mut read_task = TaskContext::from_waker(read_waker);
        while let Some(frames) = this.frames.as_mut().filter(|_| read > 0 || read_wake.take()) {
            if act.life.is_closed() {
                break;
            }
            match frames.poll_next_unpin(&mut read_task) {
                Poll::Pending => break,
                Poll::Ready(Some(item)) => {
                    act.on_body(item, ctx);
                    read += 1;
                    if read == READ_BUDGET {
                        // More may be ready: come back after the others had their turn.
                        read_waker.wake_by_ref();
                        break;
                    }
                }
                Poll::Ready(None) => {
                    this.frames = None;
                    act.on_read_end(ctx);
                }
            }
        }
        act.shared.request_signal.register(task.waker());
        if act.shared.requests_waiting() {
            act.drain_requests(ctx);
        }
        act.send_releases();
        act.write_out(ctx, task);
        act.deferring = false;
        Poll::Pending
    }
}

impl Connection {
    /// Submits every queued request, in order, then forgets the proxies dropped meanwhile
    /// (their `Release`s go out at the end of the driver's turn).
    fn drain_requests(&mut self, ctx: &mut Context<Self>) {
        let mut batch = std::mem::take(&mut self.batch);
        self.shared.take_requests(&mut batch, &mut self.dropped);
        for msg in batch.drain(..) {
            self.submit(msg, ctx);
        }
        // Keep the allocations for the next burst, but not huge ones on a connection gone quiet.
        batch.shrink_to(1024);
        self.batch = batch;
        if !self.dropped.is_empty() {
            for (instance_id, generation) in self.dropped.drain(..) {
                self.imports.dropped(instance_id, generation);
            }
            self.dropped.shrink_to(1024);
            if !self.deferring {
                // Outside the driver's turn (a message handler): no end of turn to wait for.
                self.send_releases();
            }
        }
    }
}

/// The most `(instance id, count)` pairs one `Release` frame holds: a decoder counts two values
/// per pair against `max_values`, and a pair takes up to 20 bytes of the frame's length (with a
/// few bytes for the frame's own fields), which must be within this side's `max_frame_len` and
/// the one the peer announced (`peer_max`); at most 65,536 in any case.
fn release_chunk(config: &Config, peer_max: Option<usize>) -> usize {
    let by_values = config.decode_limits.max_values / 2;
    let max_frame_len = peer_max.map_or(config.max_frame_len, |peer| peer.min(config.max_frame_len));
    let by_bytes = max_frame_len.saturating_sub(16) / 20;
    by_values.min(by_bytes).clamp(1, 1 << 16)
}

/// The longest message of the error sent in place of a reply that could not be sent: with
/// the frame's other fields it stays well within [`MIN_MAX_FRAME_LEN`].
const FALLBACK_MESSAGE_MAX: usize = 512;

/// Shortens `s` to at most `max` bytes, at a character boundary, marking the cut with `…`.
fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max - '…'.len_utf8();
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
}

/// A result's expiry changed.
pub(crate) struct Reschedule(pub(crate) Arc<Shared>);

impl Message for Reschedule {
    type Result = ();
}

impl Handler<Reschedule> for Connection {
    type Result = ();

    fn handle(&mut self, msg: Reschedule, ctx: &mut Self::Context) {
        self.drain_requests(ctx);
        // Awaited or still queued, a request's new expiry needs the timer.
        if msg.0.seq().is_some_and(|seq| !self.outbound.awaits(seq)) {
            return;
        }
        if let Some(at) = msg.0.expiry() {
            self.arm_timer(at, ctx);
        }
    }
}

/// The caller dropped its result: forget the request and tell the peer.
pub(crate) struct CancelOutbound(pub(crate) Arc<Shared>);

impl Message for CancelOutbound {
    type Result = ();
}

impl Handler<CancelOutbound> for Connection {
    type Result = ();

    fn handle(&mut self, msg: CancelOutbound, ctx: &mut Self::Context) {
        self.drain_requests(ctx);
        match msg.0.seq() {
            Some(seq) => {
                if let Some(completer) = self.outbound.take(seq) {
                    completer.settle(Err(Error::ConnectionClosed("cancelled".into())));
                    if self.life.is_open() {
                        let _ = self.write_frame(&Frame::Cancel { seq });
                    }
                    self.drain_backlog(ctx);
                }
            }
            None => self.outbound.forget_queued(&msg.0),
        }
    }
}

/// Close the connection gracefully.
pub(crate) struct CloseNow {
    pub(crate) reason: String,
    pub(crate) grace: Duration,
}

impl Message for CloseNow {
    type Result = ();
}

impl Handler<CloseNow> for Connection {
    type Result = ();

    fn handle(&mut self, msg: CloseNow, ctx: &mut Self::Context) {
        self.drain_requests(ctx);
        self.begin_close(Error::ConnectionClosed(msg.reason), true, msg.grace, ctx);
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
        MessageResult(ConnStats {
            exports: self.exports.len(),
            unpinned_exports: self.exports.unpinned(),
            imports: self.imports.len(),
            pending: self.outbound.in_flight(),
            queued: self.outbound.queued(),
            inbound: self.inbound.len(),
            write_buffer: self.queued_bytes(),
            scheduled_expiries: self.outbound.scheduled_expiries(),
        })
    }
}

impl Connection {
    /// Submits a request from a public request message and returns its future.
    pub(crate) fn submit_message(
        &mut self,
        handle: Handle,
        args: Value,
        ctx: &mut Context<Self>,
    ) -> crate::AsyncResult<Value> {
        // Requests queued by netrefs before this message was sent go first.
        self.drain_requests(ctx);
        let (result, completer) = crate::AsyncResult::pending(self.config.request_timeout);
        self.submit(Submit { handle, args: Payload::Value(args), completer, one_way: false }, ctx);
        result
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, io, pin::Pin, rc::Rc, sync::Arc, task::Poll};

    use tokio::io::{AsyncWrite, DuplexStream, WriteHalf};

    use super::{ConnInfo, Connection, Writer};
    use crate::{config::Config, service::Service};

    #[derive(Debug, PartialEq)]
    enum Event {
        Write,
        Hold,
        Shutdown,
    }

    /// A write half that records what the connection asks of it.
    struct Recording {
        inner: WriteHalf<DuplexStream>,
        events: Rc<RefCell<Vec<Event>>>,
    }

    impl AsyncWrite for Recording {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write(cx, buf);
            if matches!(r, Poll::Ready(Ok(_))) {
                self.events.borrow_mut().push(Event::Write);
            }
            r
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<io::Result<()>> {
            let r = Pin::new(&mut self.inner).poll_shutdown(cx);
            if r.is_ready() {
                self.events.borrow_mut().push(Event::Shutdown);
            }
            r
        }
    }

    impl Writer for Recording {
        fn hold_for_shutdown(&mut self) {
            self.events.borrow_mut().push(Event::Hold);
        }
    }

    /// A graceful close asks the transport to hold the `Close` frame for the shutdown, and
    /// only then: the frames before it are written as usual.
    #[actix_rt::test]
    async fn the_close_frame_is_held_for_the_shutdown() {
        let (left, right) = tokio::io::duplex(64 << 10);
        let (lr, lw) = tokio::io::split(left);
        let events = Rc::new(RefCell::new(Vec::new()));
        let writer = Recording { inner: lw, events: events.clone() };
        let config = Arc::new(Config::default());
        let a = Connection::start(Box::new(lr), Box::new(writer), Service::void(), config.clone(), ConnInfo::default());
        let b = crate::transport::start_stream(right, Service::void(), config, ConnInfo::default());
        a.ready().await.unwrap();
        b.ready().await.unwrap();
        assert!(!events.borrow().contains(&Event::Hold), "held before the close: {:?}", events.borrow());
        a.close().await;
        b.closed().await;
        let events = events.borrow();
        let hold = events.iter().position(|e| *e == Event::Hold).expect("the close asked to hold");
        assert_eq!(&events[hold..], [Event::Hold, Event::Write, Event::Shutdown], "all events: {events:?}");
    }
}
