//! Sending this side's requests: straight out while there is an in-flight slot and room in
//! the write buffer, otherwise into the backlog, where each keeps its own expiry; the expiry of
//! awaited and queued requests and of the peer's running requests; a caller's cancellation.
//! What is awaited and queued is [`Outbound`](super::Outbound)'s; this part decides when
//! things are sent, settled or cancelled. Nothing here performs I/O.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tracing::{debug, warn};

use super::{import, Dialect, Host, Payload, Session, Submit};
use crate::{
    async_result::{ResultOwner, Shared},
    protocol::CallFrame,
    Error, Frame, Handle, Value,
};

impl<W> Session<W> {
    pub(super) fn has_room(&self) -> bool {
        self.outbound.in_flight() < self.config.max_in_flight && self.queued_bytes() <= self.config.max_write_buffer
    }

    /// Sends a request, or queues it behind `max_in_flight`.
    pub(crate) fn submit(&mut self, msg: Submit, host: &mut impl Host<Work = W>) {
        if !self.life.is_open() {
            let error = self.link.closed_error();
            if msg.one_way.is_some() {
                // Nobody waits for a one-way call's result: say it here.
                warn!(parent: &self.span, handle = %msg.handle, %error, "one-way call not sent: the connection is closing");
            }
            msg.completer.settle(Err(error));
            return;
        }
        if !self.outbound.has_queued() && self.has_room() {
            return self.start_request(msg, true, host);
        }
        // Waiting for a slot, it keeps its own expiry: the session must wake for it, and a new
        // expiry (or its caller's cancellation) must reach this connection.
        let expiry = msg.completer.shared.expiry();
        let shared = msg.completer.shared.clone();
        // One-way calls are bounded where they are made (`max_queued_notifications`): the
        // backlog never refuses one, which nobody would hear of.
        let limit = if msg.one_way.is_some() { usize::MAX } else { self.config.max_queued_requests };
        match self.outbound.queue(msg, limit) {
            Ok(()) => {
                shared.attach(self.link.clone());
                if let Some(at) = expiry {
                    self.arm_expiry(at, host);
                }
            }
            Err(msg) => {
                let limit = self.config.max_queued_requests;
                msg.completer.settle(Err(Error::LimitReached(format!(
                    "{limit} requests already queued on connection {}; raise max_queued_requests or wait",
                    self.link.id
                ))));
            }
        }
    }

    pub(super) fn drain_backlog(&mut self, host: &mut impl Host<Work = W>) {
        while self.life.is_open() && self.has_room() {
            let Some(msg) = self.outbound.next_queued() else { break };
            self.start_request(msg, false, host);
        }
    }

    /// Sends `msg`. `fresh`: it comes straight from its caller, not from the backlog.
    pub(super) fn start_request(&mut self, msg: Submit, fresh: bool, host: &mut impl Host<Work = W>) {
        let Submit { handle, args, completer, one_way } = msg;
        if handle == Handle::GetRoot && matches!(&args, Payload::Value(Value::Tuple(items)) if items.is_empty()) {
            // The peer announced its root in its Hello: no round trip needed.
            if let Some(root) = self.life.peer_root().cloned() {
                let proxy = import(&mut self.imports, &self.link, root.instance_id, || root, false);
                completer.settle(Ok(Value::Ref(proxy)));
                return;
            }
        }
        if let Some(slot) = one_way {
            let sent = self.write_request(None, handle, args, None);
            if let Err(e) = &sent {
                // Nobody waits for a notification's result: say it here.
                warn!(parent: &self.span, %handle, error = %e, "cannot send a notification");
            }
            // In the write buffer (or refused, said so and counted unsent): its room is free again.
            if sent.is_ok() {
                slot.written();
            } else {
                drop(slot);
            }
            completer.settle(sent.map(|()| Value::None));
            return;
        }
        let seq = self.outbound.next_seq();
        let owner: Arc<dyn ResultOwner> = self.link.clone();
        let Ok(registered) = completer.shared.register(seq, owner) else {
            // Cancelled before it was sent.
            return;
        };
        let expiry = registered.map(|(at, _)| at);
        let deadline = match registered {
            None => None,
            // Straight from the caller: it set its expiry a moment ago, so its whole timeout is
            // what it will wait (over by the hop to the connection, microseconds; the deadline
            // only lets the peer drop work early). Saves a clock read per call.
            Some((_, timeout)) if fresh && !timeout.is_zero() => Some(timeout),
            Some((at, timeout)) => {
                let now = host.now();
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
                    self.arm_expiry(at, host);
                }
            }
            Err(e) => {
                completer.settle(Err(e));
            }
        }
    }

    /// Writes a request (`seq` given) or a one-way notification (`seq` `None`).
    pub(super) fn write_request(
        &mut self,
        seq: Option<u64>,
        handle: Handle,
        args: Payload,
        deadline: Option<Duration>,
    ) -> Result<(), Error> {
        match (seq, args) {
            (Some(seq), Payload::Value(args)) => self.queue_frame(&Frame::Request { seq, handle, args, deadline }),
            (None, Payload::Value(args)) => self.queue_frame(&Frame::Notify { handle, args }),
            (seq, Payload::Call { target, tail }) => {
                let call = CallFrame { seq, handle, target: &target, tail: &tail, deadline };
                self.queue_with(|dialect, boxer, outbox, peer_max| dialect.encode_call(&call, boxer, outbox, peer_max))
            }
        }
    }

    /// Asks the host to wake no later than `at`, for a request's expiry or an inbound deadline.
    /// One wake-up serves them all: it is asked for the earliest expiry and never moved later,
    /// so a request settled in time costs nothing here; when it comes, [`wake`](Session::wake)
    /// looks at every one of them.
    pub(super) fn arm_expiry(&mut self, at: Instant, host: &mut impl Host<Work = W>) {
        if self.expiry_armed.is_some_and(|armed| armed <= at) {
            return;
        }
        self.expiry_armed = Some(at);
        host.wake_at(at);
    }

    /// Settles every request past its expiry with a timeout and tells the peer to cancel it
    /// (where the wire can), drops the inbound requests past their caller's deadline, then asks
    /// to wake at the earliest expiry left. Each run looks at the pending requests (at most
    /// `max_in_flight`) and the running inbound ones (at most `max_concurrent_requests`) once.
    pub(super) fn expire(&mut self, now: Instant, host: &mut impl Host<Work = W>) {
        let mut expired = Vec::new();
        let mut earliest = self.outbound.expire(now, &mut expired);
        for seq in expired.drain(..) {
            debug!(parent: &self.span, seq, "request expired; cancelling");
            if self.wire.cancel {
                let _ = self.queue_frame(&Frame::Cancel { seq });
            }
        }
        // Inbound requests past their caller's deadline: the work is dropped, no reply.
        let mut dropped = Vec::new();
        if let Some(at) = self.inbound.expire(now, &mut dropped) {
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
        for (seq, work) in dropped {
            host.abort(work);
            debug!(parent: &self.span, seq, "the caller's deadline passed; work dropped");
        }
        if let Some(at) = earliest {
            self.arm_expiry(at, host);
        }
        self.drain_backlog(host);
    }

    /// A result's expiry changed (the request is awaited or still queued).
    pub(super) fn reschedule(&mut self, shared: &Arc<Shared>, host: &mut impl Host<Work = W>) {
        if shared.seq().is_some_and(|seq| !self.outbound.awaits(seq)) {
            return;
        }
        if let Some(at) = shared.expiry() {
            self.arm_expiry(at, host);
        }
    }

    /// The caller dropped its result: forget the request and tell the peer (where the wire
    /// can).
    pub(super) fn cancel(&mut self, shared: &Arc<Shared>) {
        match shared.seq() {
            Some(seq) => {
                if let Some(completer) = self.outbound.take(seq) {
                    completer.settle(Err(Error::ConnectionClosed("cancelled".into())));
                    if self.life.is_open() && self.wire.cancel {
                        let _ = self.queue_frame(&Frame::Cancel { seq });
                    }
                }
            }
            None => self.outbound.forget_queued(shared),
        }
    }
}
