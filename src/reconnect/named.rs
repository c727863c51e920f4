//! The netrefs of a [`Reconnecting`](crate::Reconnecting) handle: local stand-ins for the
//! peer's root and named objects that pass every request on to the current connection's
//! object, and the relay that makes a request wait for a connection.
//!
//! A stand-in ([`Named`]) is an [`Object`] of this process with the remote object's type name,
//! so its identity (`Eq`, `Hash`, `id_pack`) never changes, whichever connection serves it.
//! Each connection resolves its name once (the supervisor does it before it reports the
//! connection up, or the first request after a failed resolution does); a request on it goes
//! straight to that object when the connection is up — the same `AsyncResult` a plain netref
//! gives — and otherwise waits in a relay task, within the result's own expiry, for the next
//! connection. A request is issued at most once: one that fails with its connection is never
//! sent again.
//!
//! This module must never re-bind anything but a name (anonymous objects of a lost connection
//! stay lost), never retry a request that was issued, and never wait past a result's expiry.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{future::BoxFuture, FutureExt};
use tokio::sync::watch;

use super::supervisor::Link;
use crate::{
    async_result::{AsyncResult, Completer, ResultOwner, Shared},
    error::{kinds, RemoteError},
    forward::Arrival,
    object::{Object, Served},
    ConvertError, Error, Handle, NetRef, Peer, Value,
};

/// What a stand-in stands for: a name on whatever connection is current.
pub(crate) struct Named {
    /// Keeps the handle's supervisor running while the stand-in lives.
    pub(super) owner: Arc<super::Owner>,
    /// `None`: the peer's root.
    pub(super) name: Option<String>,
    /// The type the name had when first resolved; a later connection must give the same.
    pub(super) type_name: String,
    /// The object on the connection of epoch `.0`, if resolved there.
    slot: Mutex<(u64, Option<NetRef>)>,
    /// One resolution at a time.
    resolving: tokio::sync::Mutex<()>,
}

impl Named {
    fn link(&self) -> &Arc<Link> {
        &self.owner.link
    }

    /// How the stand-in is named in messages: `root` or `'name'`.
    pub(super) fn what(&self) -> String {
        match &self.name {
            None => "the root".to_owned(),
            Some(name) => format!("'{name}'"),
        }
    }

    /// A stand-in for `target`, resolved on the connection of `epoch`.
    pub(super) fn stand_in(owner: Arc<super::Owner>, name: Option<String>, target: NetRef, epoch: u64) -> Object {
        let id = target.id_pack();
        let named = Named {
            owner,
            name,
            type_name: id.type_name.clone(),
            slot: Mutex::new((epoch, Some(target))),
            resolving: tokio::sync::Mutex::new(()),
        };
        Object::standing_in(&id, Arc::new(named))
    }

    /// The object on the current connection, if it is up and the name is resolved there.
    pub(crate) fn live_target(&self) -> Option<NetRef> {
        let epoch = self.link().live_epoch();
        let slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        match &slot.1 {
            Some(target) if slot.0 == epoch && epoch != 0 && !target_closed(target) => Some(target.clone()),
            _ => None,
        }
    }

    /// Resolves the name on `peer` (connection `epoch`) and keeps the result; a name that now
    /// names another type is refused, never re-bound.
    pub(super) async fn resolve_on(&self, peer: &Peer, epoch: u64) -> Result<NetRef, Error> {
        let found = match &self.name {
            None => peer.root().await,
            Some(name) => peer.lookup(name).await,
        };
        let found = found.and_then(|target| {
            if target.type_name() == self.type_name {
                Ok(target)
            } else {
                Err(Error::Convert(ConvertError::new(format!(
                    "after reconnecting to {}, {} is a '{}', not the '{}' it was: the netref is not re-bound",
                    self.link().addr,
                    self.what(),
                    target.type_name(),
                    self.type_name
                ))))
            }
        });
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        *slot = (epoch, found.as_ref().ok().cloned());
        found
    }

    /// The object on a live connection: waits for one (failing if the handle gave up or was
    /// closed), resolving the name there if it is not yet. A connection lost while resolving
    /// is waited out like any other.
    async fn target(&self) -> Result<NetRef, Error> {
        loop {
            let (peer, epoch) = self.link().connected().await?;
            if let Some(target) = self.live_target() {
                return Ok(target);
            }
            let _one_at_a_time = self.resolving.lock().await;
            if let Some(target) = self.live_target() {
                return Ok(target);
            }
            match self.resolve_on(&peer, epoch).await {
                Ok(target) => return Ok(target),
                Err(_) if peer.is_closed() => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a request (`args`, the stand-in first) to the current object: at once when the
    /// connection is up, else once one is (see the module docs).
    pub(crate) fn request<T>(self: &Arc<Self>, handle: Handle, mut args: Vec<Value>) -> AsyncResult<T> {
        if let Some(target) = self.live_target() {
            retarget(&mut args, &target);
            return target.request_items(handle, args);
        }
        let named = self.clone();
        relay(self.link(), move |expiry| {
            async move {
                let target = named.target().await?;
                retarget(&mut args, &target);
                let result: AsyncResult<Value> = target.request_items(handle, args);
                follow_expiry(result, expiry).await
            }
            .boxed()
        })
    }

    /// Sends a one-way request to the current object. While the handle is reconnecting it
    /// fails at once (one-way calls are not queued: nothing would tell the caller that one
    /// was dropped later).
    pub(crate) fn notify(&self, handle: Handle, mut args: Vec<Value>) -> Result<(), Error> {
        match self.live_target() {
            Some(target) => {
                retarget(&mut args, &target);
                target.notify_items(handle, args)
            }
            None => Err(self.link().not_connected(&format!("a one-way call to {}", self.what()))),
        }
    }

    /// Serves a request that reached the stand-in from a peer (it was sent to one as a
    /// callback): passed on as a request of this side, within the caller's deadline.
    pub(crate) fn serve(self: &Arc<Self>, handle: Handle, items: Vec<Value>, arrival: Arrival) -> Served {
        if arrival.one_way {
            return Served::Done(self.notify(handle, items).map(|()| Value::None).map_err(|e| self.hop_error(e)));
        }
        let result: AsyncResult<Value> = self.request(handle, items);
        result.set_expiry(arrival.deadline);
        let named = self.clone();
        Served::Later(async move { result.await.map_err(|e| named.hop_error(e)) }.boxed())
    }

    /// [`serve`](Named::serve) for a CALLATTR (`name` given) or CALL with positional arguments.
    pub(crate) fn serve_call(
        self: &Arc<Self>,
        target: NetRef,
        name: Option<&str>,
        positional: Vec<Value>,
        arrival: Arrival,
    ) -> Served {
        let target = Value::Ref(target);
        let (handle, items) = match name {
            Some(name) => {
                (Handle::CallAttr, vec![target, Value::Str(name.to_owned()), Value::Tuple(positional), Value::None])
            }
            None => (Handle::Call, vec![target, Value::Tuple(positional), Value::None]),
        };
        self.serve(handle, items, arrival)
    }

    /// `e`, from the far side, as the error a peer calling the stand-in gets.
    fn hop_error(&self, e: Error) -> RemoteError {
        match e {
            Error::Remote(remote) => remote,
            Error::Timeout(_) => {
                RemoteError::new(kinds::TIMEOUT_ERROR, format!("{} did not answer in time", self.what()))
            }
            other => RemoteError::new(
                kinds::CONNECTION_ERROR,
                format!("{} of the reconnecting handle to {} is not reachable: {other}", self.what(), self.link().addr),
            ),
        }
    }
}

/// Whether `target`'s connection is closed.
fn target_closed(target: &NetRef) -> bool {
    target.is_connection_closed()
}

/// Puts `target` in the stand-in's place as the request's target (its first argument).
fn retarget(args: &mut [Value], target: &NetRef) {
    if let Some(first) = args.first_mut() {
        *first = Value::Ref(target.clone());
    }
}

/// Awaits `result`, keeping its expiry in step with the caller's (`expiry`).
async fn follow_expiry(
    result: AsyncResult<Value>,
    mut expiry: watch::Receiver<Option<Instant>>,
) -> Result<Value, Error> {
    result.set_expiry(remaining(*expiry.borrow_and_update()));
    let mut result = std::pin::pin!(result);
    loop {
        tokio::select! {
            out = &mut result => return out,
            changed = expiry.changed() => match changed {
                Ok(()) => result.set_expiry(remaining(*expiry.borrow_and_update())),
                Err(_) => return (&mut result).await,
            },
        }
    }
}

/// The time left until `at` (`None`: no limit).
fn remaining(at: Option<Instant>) -> Option<Duration> {
    at.map(|at| at.saturating_duration_since(Instant::now()))
}

/// The owner of a relayed result: passes a new expiry to the relay task and cancels it.
struct Relay {
    shared: Arc<Shared>,
    expiry: watch::Sender<Option<Instant>>,
    task: Mutex<TaskSlot>,
}

#[derive(Default)]
struct TaskSlot {
    abort: Option<tokio::task::AbortHandle>,
    cancelled: bool,
}

impl ResultOwner for Relay {
    fn reschedule(&self, shared: &Arc<Shared>) {
        self.expiry.send_replace(shared.expiry());
    }

    fn cancel(&self, _: &Arc<Shared>) {
        let mut task = self.task.lock().unwrap_or_else(|p| p.into_inner());
        task.cancelled = true;
        if let Some(abort) = task.abort.take() {
            abort.abort();
        }
    }
}

/// A result settled by `work` in a task of the handle's runtime, within the result's own
/// expiry (default: the connection's request timeout): past it the result expires and the
/// work is dropped (a request it issued is cancelled). Dropping the result cancels the work.
/// `work` gets the result's expiry, which the caller may change while it runs.
pub(super) fn relay<T>(
    link: &Arc<Link>,
    work: impl FnOnce(watch::Receiver<Option<Instant>>) -> BoxFuture<'static, Result<Value, Error>>,
) -> AsyncResult<T> {
    let (result, completer) = AsyncResult::pending(link.request_timeout);
    let shared = completer.shared.clone();
    let (expiry, expiry_rx) = watch::channel(shared.expiry());
    let relay = Arc::new(Relay { shared, expiry, task: Mutex::new(TaskSlot::default()) });
    relay.shared.attach(relay.clone());
    let work = work(expiry_rx.clone());
    let task = run_relayed(relay.clone(), completer, work, expiry_rx);
    match link.spawn(task) {
        Ok(abort) => {
            let mut slot = relay.task.lock().unwrap_or_else(|p| p.into_inner());
            if slot.cancelled {
                abort.abort();
            } else {
                slot.abort = Some(abort);
            }
        }
        Err(e) => {
            relay.shared.settle(Err(e));
        }
    }
    result
}

async fn run_relayed(
    relay: Arc<Relay>,
    completer: Completer,
    work: BoxFuture<'static, Result<Value, Error>>,
    mut expiry: watch::Receiver<Option<Instant>>,
) {
    let expired = async {
        loop {
            let at = *expiry.borrow_and_update();
            let changed = expiry.changed();
            match at {
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at.into()) => return,
                        r = changed => if r.is_err() { std::future::pending::<()>().await },
                    }
                }
                None => {
                    if changed.await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            }
        }
    };
    tokio::select! {
        out = work => { completer.settle(out); }
        () = expired => { completer.settle(Err(Error::Timeout(relay.shared.timeout()))); }
    }
}
