//! The bound on one-way traffic (`Notify` frames: `NetRef::notify_method`, `ActorRef::do_send`)
//! of one connection: how many one-way calls may wait between their caller and the connection's
//! write buffer, counted where the call is made so that a full connection refuses the next one
//! at once ([`Error::Backpressure`]) instead of queueing without end, and wakes the callers
//! waiting for room ([`ConnShared::notify_when_ready`]).
//!
//! A call holds a [`OneWaySlot`] from the moment it is accepted until the connection has
//! written its frame into the write buffer (or failed it, or closed): the slot's drop gives the
//! room back, whatever path the call took, and counts the call as never written unless it was
//! (the connection closed first, or its frame failed to encode). It must never drop an
//! accepted call without counting it, and never
//! block: a caller waits only in the `_when_ready` form, by `.await`.

use std::{
    future::Future,
    sync::{atomic::Ordering, Arc},
};

use super::{ConnShared, Payload, Submit};
use crate::{async_result::AsyncResult, Error, Handle, Value};

/// One one-way call's room in its connection, given back when dropped. Dropped without
/// [`written`](OneWaySlot::written), its call counts as never written
/// ([`Peer::unsent_one_way`](crate::Peer::unsent_one_way)).
pub(crate) struct OneWaySlot {
    link: Arc<ConnShared>,
}

impl OneWaySlot {
    /// Its call's frame is in the write buffer: counts it written and gives the room back.
    pub(crate) fn written(self) {
        self.link.one_way_written.fetch_add(1, Ordering::AcqRel);
    }
}

impl Drop for OneWaySlot {
    fn drop(&mut self) {
        let before = self.link.one_way_queued.fetch_sub(1, Ordering::AcqRel);
        // Whoever waits found the connection full after registering for a wake-up: the first
        // slot given back after that sees it full, and wakes them.
        if before >= self.link.config.max_queued_notifications {
            self.link.one_way_room.notify_waiters();
        }
    }
}

impl ConnShared {
    /// A slot for one more one-way call, if the connection has room.
    fn reserve_one_way(self: &Arc<Self>) -> Option<OneWaySlot> {
        let limit = self.config.max_queued_notifications;
        self.one_way_queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < limit).then_some(n + 1))
            .ok()
            .map(|_| {
                self.one_way_accepted.fetch_add(1, Ordering::AcqRel);
                OneWaySlot { link: self.clone() }
            })
    }

    /// One-way calls accepted and neither written nor waiting any more: those the connection
    /// dropped (see `Peer::unsent_one_way`).
    pub(crate) fn unsent_one_way(&self) -> u64 {
        let waiting = self.one_way_queued.load(Ordering::Acquire) as u64;
        let written = self.one_way_written.load(Ordering::Acquire);
        self.one_way_accepted.load(Ordering::Acquire).saturating_sub(written).saturating_sub(waiting)
    }

    /// The error of a one-way call refused for want of room.
    fn backpressure_error(&self) -> Error {
        Error::Backpressure(format!(
            "{} one-way calls already wait to be written on connection {} (the peer reads slower than they are \
             made); nothing was sent: await notify_method_when_ready / do_send_when_ready, retry later, or raise \
             Config::max_queued_notifications",
            self.config.max_queued_notifications, self.id
        ))
    }

    /// Sends a one-way request (`Notify`): no reply, no pending entry. Fails if the connection
    /// is closed, or at once with [`Error::Backpressure`] if it is full (see
    /// [`Config::max_queued_notifications`](crate::Config::max_queued_notifications));
    /// ordered with every other request of this connection.
    pub(crate) fn notify_payload(self: &Arc<Self>, handle: Handle, args: Payload) -> Result<(), Error> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let slot = self.reserve_one_way().ok_or_else(|| self.backpressure_error())?;
        self.enqueue_one_way(handle, args, slot);
        Ok(())
    }

    /// [`notify_payload`](ConnShared::notify_payload) that waits for room instead of failing
    /// with back-pressure; fails only if the connection closes first.
    pub(crate) fn notify_when_ready(
        self: &Arc<Self>,
        handle: Handle,
        args: Payload,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let link = self.clone();
        async move {
            let slot = loop {
                if link.is_closed() {
                    return Err(link.closed_error());
                }
                let room = link.one_way_room.notified();
                let mut room = std::pin::pin!(room);
                // Registered before looking, so room given back meanwhile wakes it.
                room.as_mut().enable();
                if let Some(slot) = link.reserve_one_way() {
                    break slot;
                }
                if link.is_closed() {
                    return Err(link.closed_error());
                }
                room.await;
            };
            link.enqueue_one_way(handle, args, slot);
            Ok(())
        }
    }

    fn enqueue_one_way(self: &Arc<Self>, handle: Handle, args: Payload, slot: OneWaySlot) {
        let (result, completer) = AsyncResult::<Value>::pending(None);
        // Nobody awaits it: a callback keeps the drop from cancelling it. A failure to send is
        // logged by the connection.
        result.add_callback(|_| {});
        self.enqueue(Submit { handle, args, completer, one_way: Some(slot) });
    }
}
