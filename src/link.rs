//! What a connection's handles share with it: the state behind every [`Peer`] and every
//! netref of one connection ([`ConnShared`]: the request queue, the close state, the peer's
//! root, the settings), what handles hand the connection through that queue ([`Control`],
//! [`Submit`], [`Payload`]), how they encode a call where it is made ([`CallEncoding`]), and
//! the nouns a handle shows its user ([`Peer`], [`ConnInfo`], [`ConnStats`]).
//!
//! It sits below the connection actor (`connection`), the protocol session (`session`) and
//! the services (`service`), which all use it: it must never name any of them — not the actor
//! type (its address is held as an [`ActorAddr`]), not a session type, not a dialect — nor
//! perform I/O, so that handles, the session and the actor depend on it and not on each other.
//! It is on every call's path (`NetRef::call_method` → [`ConnShared::submit_call`] → the
//! request queue → the actor's driver): that path must never gain a lock, an allocation or an
//! indirection here.

use std::{
    any::Any,
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::Duration,
};

use actix::{Actor, Addr};
use futures::task::AtomicWaker;

use crate::{
    async_result::{AsyncResult, Completer, ResultOwner, Shared},
    config::Config,
    protocol::CallTail,
    Error, Handle, IdPack, NetRef, Value,
};

mod one_way;
mod peer;

pub(crate) use one_way::OneWaySlot;
pub use peer::Peer;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_connection_id() -> u64 {
    NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed)
}

/// What is known about the other end when a connection starts: where it is, and what an
/// authenticator (or TLS) established about it.
#[derive(Clone, Default)]
pub struct ConnInfo {
    /// A label for logs and `Debug`: the peer's address, `"pair-a"`, a socket path, ….
    pub label: String,
    /// The peer's address, for network transports.
    pub peer_addr: Option<String>,
    /// What the server's authenticator returned (for TLS with client certificates: the
    /// certificate chain), for the service to read through [`Peer::credentials`].
    pub credentials: Option<Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnInfo")
            .field("label", &self.label)
            .field("peer_addr", &self.peer_addr)
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

impl ConnInfo {
    /// Info with just a label.
    pub fn labelled(label: impl Into<String>) -> Self {
        ConnInfo { label: label.into(), ..ConnInfo::default() }
    }
}

/// How a connection's handles encode a call where it is made (the caller's thread), before it
/// reaches the session: [`CallEncoding::Native`] with the native format's call tail, or not at
/// all. Chosen by the connection's dialect; handles never pick a byte format themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallEncoding {
    /// Calls go to the session as values, encoded there.
    None,
    /// The native format's call tail ([`encode_call_tail`](crate::protocol::encode_call_tail)).
    Native,
}

/// A request on its way out (netrefs and the public request messages make them).
pub(crate) struct Submit {
    pub(crate) handle: Handle,
    pub(crate) args: Payload,
    pub(crate) completer: Completer,
    /// Send as a one-way `Notify` (with the call's room in the connection, given back once
    /// the frame is in the write buffer): no pending entry, no reply; the completer settles
    /// with `None` once the frame is queued.
    pub(crate) one_way: Option<OneWaySlot>,
}

/// A request's arguments on their way out.
pub(crate) enum Payload {
    /// A value tree, boxed by the encoder.
    Value(Value),
    /// A CALLATTR or CALL (the `Submit`'s handle) on `target` whose name (CALLATTR) and plain
    /// arguments were encoded where the call was made
    /// ([`encode_call_tail`](crate::protocol::encode_call_tail)); the target is boxed when the
    /// frame is written.
    Call { target: NetRef, tail: CallTail },
}

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

/// The address of a connection's actor, held without naming the actor's type: the actor holds
/// the session, which holds this module's [`ConnShared`], so naming it here would make the
/// modules a circle. `connection` stores its `actix::Addr<Connection>` and reads it back with
/// [`ConnShared::actor`] (for `Peer::addr` and `Peer::stats`); [`Peer::closed`] only asks
/// whether the actor is still there. Read off the call path only.
pub(crate) trait ActorAddr: Any + Send + Sync {
    /// Whether the actor is still running (`actix::Addr::connected`).
    fn connected(&self) -> bool;
}

impl<A: Actor> ActorAddr for Addr<A> {
    fn connected(&self) -> bool {
        Addr::connected(self)
    }
}

/// No actor at all: the session's own tests and the fuzz harness, which run a session without one.
#[cfg(any(test, feature = "fuzzing"))]
impl ActorAddr for () {
    fn connected(&self) -> bool {
        true
    }
}

/// State shared between the actor and every handle of one connection.
pub(crate) struct ConnShared {
    pub(crate) id: u64,
    pub(crate) info: ConnInfo,
    /// The actor's address (`connection` stores its `actix::Addr<Connection>`; see
    /// [`ActorAddr`]).
    actor: Box<dyn ActorAddr>,
    pub(crate) config: Arc<Config>,
    /// How handles encode a call where it is made, as the connection's dialect says.
    pub(crate) call_encoding: CallEncoding,
    closed: AtomicBool,
    stopped: AtomicBool,
    greeted: AtomicBool,
    close_reason: Mutex<Option<Error>>,
    closed_notify: tokio::sync::Notify,
    inspect_cache: Mutex<HashMap<String, Arc<Vec<String>>>>,
    /// The peer's root as its `Hello` announced it: what a root alias netref reports as its
    /// type (`NetRef::type_name`).
    peer_root: OnceLock<IdPack>,
    /// The root alias handed out before the peer's `Hello` (see [`Peer::root`]), so that every
    /// early `root()` gives the same netref and the connection can adopt it.
    root_alias: Mutex<std::sync::Weak<crate::netref::RefInner>>,
    /// Requests on their way to the actor. A burst of calls costs one wake-up of the actor
    /// (through `request_signal`) instead of a message each: the actor takes the whole batch.
    requests: Mutex<RequestQueue>,
    /// Set when requests are queued and the actor has not been told yet (lock-free check).
    requests_signalled: AtomicBool,
    /// Wakes the actor's driver.
    pub(crate) request_signal: AtomicWaker,
    /// Run once when the actor has stopped (a server's bookkeeping of its connections).
    on_stopped: Mutex<Option<StopHook>>,
    /// One-way calls accepted and not yet in the write buffer (`one_way`).
    one_way_queued: AtomicUsize,
    /// One-way calls accepted, and those of them written into the write buffer (`one_way`):
    /// the others still wait, or were dropped (the connection closed first, or the frame
    /// failed to encode).
    one_way_accepted: AtomicU64,
    one_way_written: AtomicU64,
    /// Wakes callers waiting for room for a one-way call (and, when the connection closes,
    /// for their error).
    one_way_room: tokio::sync::Notify,
    /// Set by a reconnecting handle that has moved on from this lost connection: what
    /// requests on its netrefs fail with besides the reason (see `closed_error`).
    superseded: OnceLock<String>,
}

/// What [`ConnShared::when_stopped`] runs.
pub(crate) type StopHook = Box<dyn FnOnce() + Send>;

/// What handles hand the connection, in order, through its one way in (the request queue).
pub(crate) enum Control {
    /// A request to send.
    Submit(Submit),
    /// A result's expiry changed.
    Reschedule(Arc<Shared>),
    /// The caller dropped its result: forget the request and tell the peer.
    Cancel(Arc<Shared>),
    /// Close gracefully, letting the peer's requests finish for up to `grace`.
    Close { reason: String, grace: Duration },
}

#[derive(Default)]
pub(crate) struct RequestQueue {
    items: Vec<Control>,
    /// Proxies whose last handle dropped (instance id, generation): the actor owes `Release`s.
    dropped: Vec<(u64, u64)>,
    /// The actor has been woken for what is queued.
    scheduled: bool,
    /// The actor is gone: nothing will drain the queue again.
    closed: bool,
}

impl ConnShared {
    pub(crate) fn new(
        id: u64,
        actor: impl ActorAddr,
        config: Arc<Config>,
        info: ConnInfo,
        call_encoding: CallEncoding,
    ) -> Self {
        ConnShared {
            id,
            info,
            actor: Box::new(actor),
            config,
            call_encoding,
            closed: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            greeted: AtomicBool::new(false),
            close_reason: Mutex::new(None),
            closed_notify: tokio::sync::Notify::new(),
            inspect_cache: Mutex::new(HashMap::new()),
            peer_root: OnceLock::new(),
            root_alias: Mutex::new(std::sync::Weak::new()),
            requests: Mutex::new(RequestQueue::default()),
            requests_signalled: AtomicBool::new(false),
            request_signal: AtomicWaker::new(),
            on_stopped: Mutex::new(None),
            one_way_queued: AtomicUsize::new(0),
            one_way_accepted: AtomicU64::new(0),
            one_way_written: AtomicU64::new(0),
            one_way_room: tokio::sync::Notify::new(),
            superseded: OnceLock::new(),
        }
    }

    /// Queues a request for the actor, waking it if the queue was empty. Requests queued
    /// before any actor message is sent are handled before that message, so a request made
    /// before `close()` is sent before the `Close` frame.
    pub(crate) fn enqueue(&self, msg: Submit) {
        if let Err(msg) = self.push(msg, |queue, msg| queue.items.push(Control::Submit(msg))) {
            msg.completer.settle(Err(self.closed_error()));
        }
    }

    /// Queues a control item (anything but a request) behind what is queued; dropped if the
    /// actor is gone, when there is nothing left to control.
    fn control(&self, item: Control) {
        let _ = self.push(item, |queue, item| queue.items.push(item));
    }

    /// Puts something in the queue with `put` and wakes the actor if it was not woken yet for
    /// what is queued; hands `item` back if the actor is gone.
    fn push<T>(&self, item: T, put: impl FnOnce(&mut RequestQueue, T)) -> Result<(), T> {
        let mut queue = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        if queue.closed {
            return Err(item);
        }
        put(&mut queue, item);
        let wake = !std::mem::replace(&mut queue.scheduled, true);
        drop(queue);
        if wake {
            // If the actor is gone nothing wakes; its `stopped` or `Drop` closes the queue and
            // fails what is in it.
            self.requests_signalled.store(true, Ordering::Release);
            self.request_signal.wake();
        }
        Ok(())
    }

    /// Whether requests were queued since the actor last took them.
    pub(crate) fn requests_waiting(&self) -> bool {
        self.requests_signalled.load(Ordering::Acquire)
    }

    /// Takes the queued requests into `batch` and the dropped proxies into `dropped` (empty
    /// vectors whose allocations are reused).
    pub(crate) fn take_requests(&self, batch: &mut Vec<Control>, dropped: &mut Vec<(u64, u64)>) {
        if !self.requests_waiting() {
            return;
        }
        let mut queue = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        self.requests_signalled.store(false, Ordering::Release);
        queue.scheduled = false;
        std::mem::swap(&mut queue.items, batch);
        if !queue.dropped.is_empty() {
            std::mem::swap(&mut queue.dropped, dropped);
        }
    }

    /// The actor is gone: fail what is queued and refuse what comes.
    pub(crate) fn close_requests(&self) {
        let items = {
            let mut queue = self.requests.lock().unwrap_or_else(|p| p.into_inner());
            queue.closed = true;
            std::mem::take(&mut queue.items)
        };
        let mut one_way = 0usize;
        for item in items {
            if let Control::Submit(msg) = item {
                one_way += usize::from(msg.one_way.is_some());
                msg.completer.settle(Err(self.closed_error()));
            }
        }
        if one_way > 0 {
            tracing::warn!(conn = self.id, one_way, error = %self.closed_error(), "one-way calls not sent: the connection closed before they were written");
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The error that requests on this connection fail with once it is closed.
    pub(crate) fn closed_error(&self) -> Error {
        let reason = self
            .close_reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| Error::ConnectionClosed(format!("connection {} is closed", self.id)));
        match self.superseded.get() {
            Some(note) => Error::ConnectionClosed(format!("connection {} was lost ({reason}); {note}", self.id)),
            None => reason,
        }
    }

    /// A reconnecting handle has moved on from this (lost) connection: requests on its netrefs
    /// fail with `note` added, which says why they are not re-bound.
    pub(crate) fn mark_superseded(&self, note: String) {
        let _ = self.superseded.set(note);
    }

    pub(crate) fn mark_closed(&self, reason: Error) {
        {
            let mut slot = self.close_reason.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(reason);
        }
        self.closed.store(true, Ordering::Release);
        self.inspect_cache.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.closed_notify.notify_waiters();
        self.one_way_room.notify_waiters();
    }

    pub(crate) fn set_peer_root(&self, root: IdPack) {
        let _ = self.peer_root.set(root);
    }

    /// The peer's root as its `Hello` announced it, once that has arrived.
    pub(crate) fn peer_root(&self) -> Option<&IdPack> {
        self.peer_root.get()
    }

    /// The root alias of this connection: the live one, or a new one.
    pub(crate) fn root_alias(self: &Arc<Self>) -> NetRef {
        let mut slot = self.root_alias.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(alias) = slot.upgrade() {
            return NetRef(alias);
        }
        let alias = NetRef::root_alias(self.clone());
        *slot = Arc::downgrade(&alias);
        NetRef(alias)
    }

    /// The root alias, if one is alive (the session adopts it when the `Hello` arrives).
    pub(crate) fn live_root_alias(&self) -> Option<Arc<crate::netref::RefInner>> {
        self.root_alias.lock().unwrap_or_else(|p| p.into_inner()).upgrade()
    }

    /// Whether the connection is ready: the peer's `Hello` arrived (or the wire has none).
    pub(crate) fn is_greeted(&self) -> bool {
        self.greeted.load(Ordering::Acquire)
    }

    /// The peer's `Hello` arrived and its version matched.
    pub(crate) fn mark_greeted(&self) {
        self.greeted.store(true, Ordering::Release);
        self.closed_notify.notify_waiters();
    }

    /// The actor has stopped: nothing more will be sent or received.
    pub(crate) fn mark_stopped(&self) {
        self.stopped.store(true, Ordering::Release);
        self.closed_notify.notify_waiters();
        // Taken under the lock after the flag is set: `when_stopped` either sees the flag or
        // leaves its hook for this to run, never neither.
        let hook = self.on_stopped.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(hook) = hook {
            hook();
        }
    }

    /// Runs `hook` once the actor has stopped, at once if it already has. A later call
    /// replaces a hook not run yet. Instead of a task per connection awaiting
    /// [`Peer::closed`]: the hook costs no task, no wake-up and no memory beyond its box.
    pub(crate) fn when_stopped(&self, hook: StopHook) {
        let mut slot = self.on_stopped.lock().unwrap_or_else(|p| p.into_inner());
        if self.is_stopped() {
            drop(slot);
            hook();
        } else {
            *slot = Some(hook);
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Sends a request; the result settles with the reply, or fails fast if the connection is
    /// closed.
    pub(crate) fn submit<T>(self: &Arc<Self>, handle: Handle, args: Value) -> AsyncResult<T> {
        if self.is_closed() {
            return AsyncResult::settled(Err(self.closed_error()));
        }
        let (result, completer) = AsyncResult::pending(self.config.request_timeout);
        // If the actor is gone the message is dropped, and the completer's drop settles the
        // result with ConnectionClosed.
        self.enqueue(Submit { handle, args: Payload::Value(args), completer, one_way: None });
        result
    }

    /// [`submit`](ConnShared::submit) for a CALLATTR or CALL (`handle`) on `target` whose name
    /// (CALLATTR) and arguments were encoded by [`encode_call_tail`](crate::protocol::encode_call_tail).
    pub(crate) fn submit_call<T>(self: &Arc<Self>, handle: Handle, target: NetRef, tail: CallTail) -> AsyncResult<T> {
        if self.is_closed() {
            return AsyncResult::settled(Err(self.closed_error()));
        }
        let (result, completer) = AsyncResult::pending(self.config.request_timeout);
        let args = Payload::Call { target, tail };
        self.enqueue(Submit { handle, args, completer, one_way: None });
        result
    }

    /// The last handle of the proxy for the peer's object `instance_id` dropped. It reaches the
    /// actor through the request queue (in order with requests, a wake-up per burst, no mailbox
    /// message each), which sends the `Release` it owes at the end of that turn.
    pub(crate) fn proxy_dropped(&self, instance_id: u64, generation: u64) {
        if !self.is_closed() {
            // A closed queue: the actor is gone, nothing is owed any more.
            let _ = self.push((instance_id, generation), |queue, dropped| queue.dropped.push(dropped));
        }
    }

    /// The actor's address as `connection` stored it, if its actor is an `A`.
    pub(crate) fn actor<A: Actor>(&self) -> Option<&Addr<A>> {
        (&*self.actor as &dyn Any).downcast_ref()
    }

    pub(crate) fn cached_inspect(&self, type_name: &str) -> Option<Arc<Vec<String>>> {
        self.inspect_cache.lock().unwrap_or_else(|p| p.into_inner()).get(type_name).cloned()
    }

    pub(crate) fn cache_inspect(&self, type_name: String, names: Vec<String>) {
        if !self.is_closed() {
            self.inspect_cache.lock().unwrap_or_else(|p| p.into_inner()).insert(type_name, Arc::new(names));
        }
    }
}

impl ResultOwner for ConnShared {
    fn reschedule(&self, shared: &Arc<Shared>) {
        self.control(Control::Reschedule(shared.clone()));
    }

    fn cancel(&self, shared: &Arc<Shared>) {
        self.control(Control::Cancel(shared.clone()));
    }
}
