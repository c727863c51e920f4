//! The protocol state of one connection, kept apart from its I/O: a [`Session`] takes frame
//! bodies, requests and the time, and gives back bytes to write and work to run.
//!
//! The connection actor (`connection`) is the I/O around it, as Cap'n Proto's `twoparty` is
//! around its `rpc`: it reads bodies off the transport and hands them to
//! [`Session::receive`], hands it the requests its handles queued ([`Session::take_requests`])
//! and the time when a deadline it asked for comes due ([`Session::wake`]), writes what the
//! session queued in its [`Outbox`], and runs the method futures the session gives it through
//! its [`Host`]. This module must never touch a socket, a timer, a waker, an actix or tokio
//! type or the clock: every `now` comes from the host, so the session is tested by feeding it
//! bytes and instants of the test's choosing (`tests`).
//!
//! Parts: [`outbound`] — this side's requests (numbering, the replies awaited, the backlog
//! waiting for an in-flight slot, and their expiry); [`inbound`] — the peer's requests running
//! here (the table by number, the concurrency cap, deadlines, cancellation); [`liveness`] —
//! when a silent peer is lost and what to send so the peer hears from this side;
//! [`references`] and [`boxing`] — the counted exports and imports, the releases owed, and
//! references boxed to and from the wire; [`lifecycle`] — the handshake and the phases
//! open → closing → closed; [`dialect`] — the seam to a wire format; [`serve`] — serving the
//! peer's requests; [`close`] — graceful and abrupt ends.

use std::{
    cell::RefCell,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use futures::future::BoxFuture;
use tracing::{debug, trace, warn};

mod boxing;
mod close;
mod dialect;
mod inbound;
mod lifecycle;
mod liveness;
mod outbound;
mod references;
mod release;
mod send;
mod serve;
#[cfg(test)]
mod tests;

pub(crate) use boxing::{import, Boxer, Imports, Unboxer};
#[cfg(test)]
pub(crate) use dialect::sequenced::Sequenced;
pub(crate) use dialect::{AnyDialect, Dialect, Framer, Incoming, NativeDialect, Releases, RpycDialect, WireTraits};
pub(crate) use inbound::{Inbound, SeqInUse};
pub(crate) use lifecycle::{Lifecycle, Phase};
pub(crate) use liveness::Liveness;
pub(crate) use outbound::Outbound;
pub(crate) use references::{ExportTable, ImportCache};
pub(crate) use serve::Finish;

use crate::{
    config::Config,
    error::RemoteError,
    link::{ConnShared, Control, Payload, Submit},
    object::Object,
    protocol::{Hello, Limits, Outbox},
    service::Service,
    Error, Frame, Handle, NetRef, ProtocolError, Value,
};

/// What a session asks of the I/O around it.
pub(crate) trait Host {
    /// A running method future, as the host can stop it.
    type Work;

    /// The current time. Read only where a deadline needs it.
    fn now(&mut self) -> Instant;

    /// Runs a method future that did not finish on its first poll; when it finishes, the host
    /// hands its outcome to [`Session::finish`] with `finish`.
    fn run(&mut self, fut: BoxFuture<'static, Result<Value, RemoteError>>, finish: Finish) -> Self::Work;

    /// Stops running `work`; its outcome is never handed back.
    fn abort(&mut self, work: Self::Work);

    /// Calls [`Session::wake`] no later than `at`.
    fn wake_at(&mut self, at: Instant);

    /// A graceful close started: unless it is over by then, the connection stops `grace` from
    /// now. (The host may wait for the end of its turn before it arms anything: most closes
    /// finish within it.)
    fn close_grace(&mut self, grace: Duration);

    /// Stops the connection now: nothing more is written or read.
    fn stop(&mut self);
}

/// The protocol state machine of one connection.
pub(crate) struct Session<W> {
    link: Arc<ConnShared>,
    config: Arc<Config>,
    dialect: AnyDialect,
    wire: WireTraits,
    service: Service,
    root: Object,
    life: Lifecycle,
    /// When the peer's `Hello` is due, until it arrives.
    hello_due: Option<Instant>,
    exports: ExportTable,
    imports: Imports,
    outbound: Outbound,
    inbound: Inbound<W>,
    /// Encoded frames for the host to write.
    outbox: Outbox,
    /// Bytes the host took from the outbox and has not written yet.
    writer_backlog: usize,
    liveness: Option<Liveness>,
    tick_due: Option<Instant>,
    /// Reading stopped for back-pressure since the last tick.
    reads_were_paused: bool,
    /// The earliest request expiry the host was asked to wake for.
    expiry_armed: Option<Instant>,
    /// The connection failed on something the peer sent (more of it may be on its way).
    failed_on_peer_bytes: bool,
    /// A whole frame has been read: the connection worked, so a stream ending inside a later
    /// frame is a lost connection, not a peer speaking something else.
    read_a_frame: bool,
    span: tracing::Span,
}

impl<W> std::fmt::Debug for Session<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("conn", &self.link.id)
            .field("dialect", &self.dialect.name())
            .field("phase", &self.life.phase())
            .finish_non_exhaustive()
    }
}

impl<W> Session<W> {
    /// A session for the connection `link`, speaking `dialect`, serving `service` (whose root
    /// for this connection is `root`). Nothing is sent until [`start`](Session::start).
    pub(crate) fn new(
        link: Arc<ConnShared>,
        dialect: AnyDialect,
        service: Service,
        root: Object,
        span: tracing::Span,
    ) -> Self {
        let config = link.config.clone();
        let wire = dialect.traits();
        let mut exports = ExportTable::new(config.max_exports);
        exports.pin(&root);
        let life = if wire.handshake { Lifecycle::default() } else { Lifecycle::without_handshake() };
        Session {
            link,
            config,
            dialect,
            wire,
            service,
            root,
            life,
            hello_due: None,
            exports,
            imports: Imports::default(),
            outbound: Outbound::default(),
            inbound: Inbound::default(),
            outbox: Outbox::default(),
            writer_backlog: 0,
            liveness: None,
            tick_due: None,
            reads_were_paused: false,
            expiry_armed: None,
            failed_on_peer_bytes: false,
            read_a_frame: false,
            span,
        }
    }

    /// Opens the session: queues this side's `Hello` (with a handshake) and asks for the
    /// `Hello` deadline and the first liveness tick. A wire without a handshake is ready now.
    pub(crate) fn start(&mut self, host: &mut impl Host<Work = W>) {
        let now = host.now();
        self.liveness = self.config.peer_timeout.map(|t| Liveness::new(t, now));
        if self.wire.handshake {
            let limits = Limits {
                max_frame_len: self.dialect.max_frame_len() as u64,
                max_concurrent_requests: self.config.max_concurrent_requests as u64,
            };
            let hello = Hello::new(limits).with_root(self.root.id_pack());
            if let Err(e) = self.queue_frame(&Frame::Hello(hello)) {
                warn!(parent: &self.span, error = %e, "cannot write Hello");
            }
            let due = now + self.config.hello_timeout;
            self.hello_due = Some(due);
            host.wake_at(due);
        } else {
            self.link.mark_greeted();
        }
        self.schedule_tick(now, host);
    }

    /// The wire's traits and name (for the host's logs and tests).
    pub(crate) fn dialect_name(&self) -> &'static str {
        self.dialect.name()
    }

    /// Whether the connection failed on something the peer sent (a protocol error): the host
    /// may keep reading, and discarding, what the peer still sends before it drops the socket.
    #[inline]
    pub(crate) fn failed_on_peer_bytes(&self) -> bool {
        self.failed_on_peer_bytes
    }

    /// The session's phase.
    #[inline]
    pub(crate) fn phase(&self) -> Phase {
        self.life.phase()
    }

    /// The encoded frames waiting for the host.
    pub(crate) fn outbox(&mut self) -> &mut Outbox {
        &mut self.outbox
    }

    /// Tells the session how many bytes the host took from the outbox and has not written
    /// yet (they count against `max_write_buffer`).
    pub(crate) fn set_writer_backlog(&mut self, bytes: usize) {
        self.writer_backlog = bytes;
    }

    fn queued_bytes(&self) -> usize {
        self.outbox.len() + self.writer_backlog
    }

    /// Whether the host should stop reading for now (back-pressure: too much running or
    /// queued for writing, or the connection no longer reads).
    #[inline]
    pub(crate) fn reads_paused(&mut self) -> bool {
        let paused = self.inbound.is_full(self.config.max_concurrent_requests)
            || self.queued_bytes() > self.config.max_write_buffer
            || !self.life.reads_frames();
        self.reads_were_paused |= paused;
        paused
    }

    /// Whether the close waits for nothing but the host's writes: once the outbox is written,
    /// the host shuts the transport down and calls [`closed`](Session::closed).
    #[inline]
    pub(crate) fn shutdown_due(&self) -> bool {
        self.life.phase() == Phase::Closing && self.outbox.is_empty() && self.closes_after_write()
    }

    /// Whether the close waits only for what is queued for writing: closing, nothing of the
    /// peer's running here, and — when the peer closes too — no reply of its awaited.
    #[inline]
    pub(crate) fn closes_after_write(&self) -> bool {
        self.life.phase() == Phase::Closing
            && self.life.closes_after_write(self.inbound.is_empty(), self.outbound.nothing_awaited())
    }

    /// One frame body the host read (or the read's error).
    #[inline]
    pub(crate) fn receive(&mut self, item: Result<Bytes, ProtocolError>, host: &mut impl Host<Work = W>) {
        if !self.life.reads_frames() {
            return;
        }
        let body = match item {
            Ok(body) => body,
            Err(ProtocolError::Io { message, .. }) => {
                let e = Error::ConnectionClosed(format!("the connection was lost: read failed: {message}"));
                return self.fail(e, host);
            }
            // The peer (or the path to it) died part way through a frame on a connection that
            // worked: lost, like a reset. Before any whole frame it stays a protocol error: a
            // peer that never sent one frame of this wire may not speak it at all.
            Err(ProtocolError::TruncatedAtEof { buffered }) if self.read_a_frame => {
                let e = Error::ConnectionClosed(format!(
                    "the connection was lost: the stream ended inside a frame ({buffered} bytes of it received)"
                ));
                return self.fail(e, host);
            }
            Err(e) => return self.fail(Error::Protocol(e), host),
        };
        self.read_a_frame = true;
        // No clock read per frame (measurable when pipelining): the tick turns this into time.
        if let Some(live) = &mut self.liveness {
            live.heard();
        }
        let greeted = self.life.greeted();
        let decoded = {
            let unboxer = Unboxer {
                shared: &self.link,
                root: &self.root,
                exports: &self.exports,
                imports: RefCell::new(&mut self.imports),
            };
            self.dialect.decode(&body, &unboxer, greeted)
        };
        match decoded {
            Ok(Incoming::Reply { seq, value }) => self.settle(seq, Ok(value)),
            Ok(Incoming::Frame(frame)) => self.on_frame(frame, host),
            Ok(Incoming::Call { seq, object, name, args, deadline }) => {
                let handle = if name.is_some() { Handle::CallAttr } else { Handle::Call };
                let request = serve::ObjectRequest::Call { object, name, args };
                match seq {
                    Some(seq) => self.serve(seq, handle, request, deadline, host),
                    None => self.serve_one_way(handle, request, host),
                }
            }
            Ok(Incoming::Refuse { seq, error }) => self.refuse(seq, error),
            Err(e) => self.fail(Error::Protocol(e), host),
        }
    }

    pub(super) fn on_frame(&mut self, frame: Frame<NetRef>, host: &mut impl Host<Work = W>) {
        if let Err(e) = self.life.check_before_hello(matches!(frame, Frame::Hello(_)), frame.kind()) {
            return self.fail(Error::Protocol(e), host);
        }
        match frame {
            Frame::Hello(hello) => {
                let (version, root, features) = match self.life.receive_hello(hello) {
                    Ok(hello) => (hello.version, hello.root.clone(), hello.features),
                    Err(e) => return self.fail(Error::Protocol(e), host),
                };
                debug!(parent: &self.span, version, "peer said hello");
                self.hello_due = None;
                if let Some(root) = root {
                    let instance_id = root.instance_id;
                    self.link.set_peer_root(root);
                    // A root alias handed out before now becomes the root's proxy.
                    if let Some(alias) = self.link.live_root_alias() {
                        self.imports.adopt(instance_id, &alias, crate::netref::ALIAS_GENERATION);
                    }
                }
                // From now on the encoder may send what the peer announced.
                self.dialect.set_peer_features(features);
                self.link.mark_greeted();
            }
            Frame::Request { seq, handle, args, deadline } => {
                self.serve(seq, handle, serve::ObjectRequest::Items(request_items(args)), deadline, host)
            }
            Frame::Reply { seq, value } => self.settle(seq, Ok(value)),
            Frame::Exception { seq, error } => self.settle(seq, Err(Error::Remote(error))),
            Frame::Notify { handle, args } => {
                self.serve_one_way(handle, serve::ObjectRequest::Items(request_items(args)), host)
            }
            Frame::Cancel { seq } => {
                if let Some(work) = self.inbound.cancel(seq) {
                    debug!(parent: &self.span, seq, "peer cancelled a request");
                    host.abort(work);
                }
            }
            Frame::Release { refs } => {
                for (id, count) in refs {
                    if let Err(e) = self.exports.release(id, count) {
                        warn!(parent: &self.span, "{e}");
                    }
                }
            }
            Frame::Close { reason } => self.peer_closed(reason, host),
        }
    }

    /// A reply (or exception) for request `seq`.
    pub(super) fn settle(&mut self, seq: u64, outcome: Result<Value, Error>) {
        match self.outbound.take(seq) {
            Some(completer) => {
                completer.settle(outcome);
            }
            None => trace!(parent: &self.span, seq, "reply for no pending request (expired or cancelled); dropped"),
        }
    }

    /// Takes the requests the connection's handles queued, in order, and the proxies they
    /// dropped (whose releases go out at [`end_turn`](Session::end_turn)).
    pub(crate) fn take_requests(
        &mut self,
        batch: &mut Vec<Control>,
        dropped: &mut Vec<(u64, u64)>,
        host: &mut impl Host<Work = W>,
    ) {
        self.link.take_requests(batch, dropped);
        for control in batch.drain(..) {
            match control {
                Control::Submit(msg) => self.submit(msg, host),
                Control::Reschedule(shared) => self.reschedule(&shared, host),
                Control::Cancel(shared) => self.cancel(&shared),
                Control::Close { reason, grace } => {
                    self.begin_close(Error::ConnectionClosed(reason), true, grace, host)
                }
            }
        }
        // Keep the allocations for the next burst, but not huge ones on a connection gone quiet.
        batch.shrink_to(1024);
        if !dropped.is_empty() {
            for (instance_id, generation) in dropped.drain(..) {
                self.imports.dropped(instance_id, generation);
            }
            dropped.shrink_to(1024);
        }
    }

    /// The end of the host's turn: the releases owed go out, in as few frames as the wire
    /// allows (a turn's dropped proxies share one frame), and requests waiting for room go.
    #[inline(always)]
    pub(crate) fn end_turn(&mut self, host: &mut impl Host<Work = W>) {
        if !self.imports.owed.is_empty() {
            self.send_releases(host);
        }
        if self.outbound.has_queued() {
            self.drain_backlog(host);
        }
    }

    /// Encodes `frame` into the outbox. On error nothing of the frame is queued and the
    /// exports it counted are taken back.
    pub(super) fn queue_frame(&mut self, frame: &Frame<NetRef>) -> Result<(), Error> {
        self.queue_with(|dialect, boxer, outbox, peer_max| dialect.encode(frame, boxer, outbox, peer_max))
    }

    /// Queues a frame with `push`, references boxed against this connection's exports and
    /// within the peer's frame limit (once its `Hello` has told it). On error nothing is
    /// queued and the exports the frame counted are taken back.
    pub(super) fn queue_with(
        &mut self,
        push: impl FnOnce(&mut AnyDialect, &Boxer<'_>, &mut Outbox, Option<usize>) -> Result<(), ProtocolError>,
    ) -> Result<(), Error> {
        let peer_max = self.life.peer_max_frame_len();
        let boxer =
            Boxer { conn_id: self.link.id, exports: RefCell::new(&mut self.exports), counted: RefCell::default() };
        if let Err(e) = push(&mut self.dialect, &boxer, &mut self.outbox, peer_max) {
            boxer.roll_back();
            return Err(e.into());
        }
        if let Some(live) = &mut self.liveness {
            live.sent();
        }
        Ok(())
    }

    /// A deadline the session asked for may have come: the `Hello`'s, a liveness tick, request
    /// expiries.
    pub(crate) fn wake(&mut self, host: &mut impl Host<Work = W>) {
        let now = host.now();
        if self.hello_due.is_some_and(|due| due <= now) {
            self.hello_due = None;
            if !self.life.greeted() && self.life.is_open() {
                let limit = self.config.hello_timeout;
                let e = ProtocolError::Unexpected(format!("no Hello from the peer within {limit:?}"));
                return self.fail(Error::Protocol(e), host);
            }
        }
        if self.tick_due.is_some_and(|due| due <= now) {
            self.tick(now, host);
        }
        if self.expiry_armed.is_some_and(|at| at <= now) {
            self.expiry_armed = None;
            self.expire(now, host);
        }
    }

    /// The connection's counters.
    pub(crate) fn stats(&self) -> crate::ConnStats {
        crate::ConnStats {
            exports: self.exports.len(),
            unpinned_exports: self.exports.unpinned(),
            imports: self.imports.len(),
            pending: self.outbound.in_flight(),
            queued: self.outbound.queued(),
            inbound: self.inbound.len(),
            write_buffer: self.queued_bytes(),
            scheduled_expiries: self.outbound.scheduled_expiries(),
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
