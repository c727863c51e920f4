//! The supervisor of a [`Reconnecting`](crate::Reconnecting) handle: the task that connects,
//! notices the loss, waits out the back-off and connects again, and the state it shares with
//! the handle and its netrefs ([`Link`]).
//!
//! It runs where the handle's connections live (an actix thread), so that each connection it
//! starts lives there too. It must never issue a user's request itself, and never block: the
//! handle and the netrefs read its state through a `watch` channel and two atomics.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::{Duration, Instant},
};

use futures::future::join_all;
use tokio::sync::{broadcast, oneshot, watch};
use tracing::{debug, info, warn};

use super::{policy::ReconnectPolicy, ConnectionEvent};
use crate::{object::WeakObject, Connect, Error, Peer};

/// Events kept for a slow reader of [`events`](crate::Reconnecting::events); past this it
/// skips the oldest (and logs how many).
pub(super) const EVENT_BACKLOG: usize = 64;

/// Where the handle is.
#[derive(Clone, Debug)]
pub(super) enum State {
    /// Connecting for the first time.
    Connecting,
    /// Connection `epoch` (counting from 1) is up.
    Connected { peer: Peer, epoch: u64 },
    /// The connection was lost; connecting again.
    Reconnecting { reason: Error },
    /// The policy's attempts ran out.
    GaveUp { error: Error },
    /// [`close`](crate::Reconnecting::close)d (or every handle dropped).
    Closed,
}

/// What the supervisor shares with the handle and its netrefs.
pub(crate) struct Link {
    /// The address, as given to `connect`.
    pub(super) addr: String,
    /// The default expiry of requests made through the handle.
    pub(super) request_timeout: Option<Duration>,
    pub(super) state: watch::Sender<State>,
    /// The epoch of the connection that is up, 0 while none is (what a netref's fast path reads).
    live_epoch: AtomicU64,
    /// The latest event (what a new events stream opens with) and the channel of the next ones.
    events: Mutex<(Option<ConnectionEvent>, broadcast::Sender<ConnectionEvent>)>,
    /// The stand-ins handed out, by name (`None`: the root): one per name while it lives.
    pub(super) names: Mutex<HashMap<Option<String>, WeakObject>>,
    /// The runtime the supervisor runs on, where relayed requests wait.
    runtime: OnceLock<tokio::runtime::Handle>,
    /// Set when the handle is closed or every handle is gone.
    pub(super) stop: watch::Sender<bool>,
    /// Set when the supervisor has ended (gave up, or closed its connection).
    pub(super) finished: watch::Sender<bool>,
}

impl Link {
    pub(super) fn new(addr: String, request_timeout: Option<Duration>) -> Self {
        Link {
            addr,
            request_timeout,
            state: watch::channel(State::Connecting).0,
            live_epoch: AtomicU64::new(0),
            events: Mutex::new((None, broadcast::channel(EVENT_BACKLOG).0)),
            names: Mutex::new(HashMap::new()),
            runtime: OnceLock::new(),
            stop: watch::channel(false).0,
            finished: watch::channel(false).0,
        }
    }

    /// The epoch of the connection that is up, 0 while none is.
    pub(super) fn live_epoch(&self) -> u64 {
        self.live_epoch.load(Ordering::Acquire)
    }

    /// The live connection and its epoch: waits while connecting; fails once the handle gave
    /// up or was closed.
    pub(super) async fn connected(&self) -> Result<(Peer, u64), Error> {
        let mut state = self.state.subscribe();
        loop {
            match &*state.borrow_and_update() {
                State::Connected { peer, epoch } if !peer.is_closed() => return Ok((peer.clone(), *epoch)),
                State::GaveUp { error } => return Err(error.clone()),
                State::Closed => return Err(self.closed_error()),
                _ => {}
            }
            if state.changed().await.is_err() {
                return Err(self.closed_error());
            }
        }
    }

    /// The error of a request made after [`close`](crate::Reconnecting::close).
    pub(super) fn closed_error(&self) -> Error {
        Error::ConnectionClosed(format!("the reconnecting handle to {} was closed", self.addr))
    }

    /// The error for `what` when no connection is up: why, as the state says.
    pub(super) fn not_connected(&self, what: &str) -> Error {
        match &*self.state.borrow() {
            State::GaveUp { error } => error.clone(),
            State::Closed => self.closed_error(),
            State::Reconnecting { reason } => Error::ConnectionClosed(format!(
                "{what} was not sent: the connection to {} was lost ({reason}) and is being re-established; \
                 one-way calls are not queued, retry once reconnected",
                self.addr
            )),
            _ => Error::ConnectionClosed(format!("{what} was not sent: {} is not connected yet", self.addr)),
        }
    }

    /// Runs `task` on the supervisor's runtime.
    pub(super) fn spawn(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<tokio::task::AbortHandle, Error> {
        match self.runtime.get() {
            Some(rt) => Ok(rt.spawn(task).abort_handle()),
            None => Err(Error::ConnectionClosed(format!("the reconnecting handle to {} has not started", self.addr))),
        }
    }

    /// Publishes `event` (and remembers it as the latest).
    fn emit(&self, event: ConnectionEvent) {
        let mut events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        let _ = events.1.send(event.clone());
        events.0 = Some(event);
    }

    /// The latest event and a receiver of the next ones, taken together so none is missed.
    pub(super) fn subscribe(&self) -> (Option<ConnectionEvent>, broadcast::Receiver<ConnectionEvent>) {
        let events = self.events.lock().unwrap_or_else(|p| p.into_inner());
        (events.0.clone(), events.1.subscribe())
    }

    fn set_state(&self, state: State) {
        let epoch = match &state {
            State::Connected { epoch, .. } => *epoch,
            _ => 0,
        };
        self.live_epoch.store(epoch, Ordering::Release);
        self.state.send_replace(state);
    }

    /// The live stand-ins.
    fn stand_ins(&self) -> Vec<crate::Object> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        names.retain(|_, weak| weak.upgrade().is_some());
        names.values().filter_map(WeakObject::upgrade).collect()
    }
}

/// What every clone of the handle and every stand-in holds: when the last one goes, the
/// supervisor closes the connection and ends.
pub(crate) struct Owner {
    pub(crate) link: Arc<Link>,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.link.stop.send_replace(true);
    }
}

/// Resolves once the handle is to stop.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Connects, and connects again after each loss, as `policy` says, until the handle gives up
/// or is stopped. `first` hears how the first connection went.
pub(super) async fn supervise(
    link: Arc<Link>,
    connect: Connect,
    policy: ReconnectPolicy,
    first: oneshot::Sender<Result<(), Error>>,
) {
    let _ = link.runtime.set(tokio::runtime::Handle::current());
    let mut stop = link.stop.subscribe();
    let mut first = Some(first);
    let mut epoch = 0u64;
    // When the current outage began (none before the first connection).
    let mut lost_at: Option<Instant> = None;
    loop {
        let mut failed = 0u32;
        let peer = loop {
            let attempt = failed + 1;
            if lost_at.is_some() || failed > 0 {
                let delay = policy.delay(if lost_at.is_some() { attempt } else { failed });
                debug!(addr = %link.addr, attempt, ?delay, "waiting before connecting again");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stopped(&mut stop) => return close(&link, None, first).await,
                }
            }
            let outcome = tokio::select! {
                outcome = connect.clone().start() => outcome,
                () = stopped(&mut stop) => return close(&link, None, first).await,
            };
            match outcome {
                Ok(peer) => break peer,
                Err(error) => {
                    failed += 1;
                    let retry = policy.may_retry(failed);
                    debug!(addr = %link.addr, attempt, %error, retry, "connecting failed");
                    if !retry {
                        return give_up(&link, failed, error, first);
                    }
                }
            }
        };
        epoch += 1;
        // The names in use are resolved on the new connection before anyone is told it is up.
        let refreshed = join_all(link.stand_ins().into_iter().filter_map(|object| {
            let named = object.named()?.clone();
            let (peer, link) = (peer.clone(), link.clone());
            Some(async move {
                if let Err(error) = named.resolve_on(&peer, epoch).await {
                    warn!(addr = %link.addr, name = %named.what(), %error, "cannot resolve a name on the new connection");
                }
            })
        }));
        tokio::select! {
            _ = refreshed => {}
            () = stopped(&mut stop) => return close(&link, Some(peer), first).await,
        }
        link.set_state(State::Connected { peer: peer.clone(), epoch });
        match lost_at.take() {
            None => {
                info!(addr = %link.addr, conn = peer.id(), "connected");
                link.emit(ConnectionEvent::Connected { peer: peer.clone() });
            }
            Some(since) => {
                let downtime = since.elapsed();
                info!(addr = %link.addr, conn = peer.id(), attempts = failed + 1, ?downtime, "reconnected");
                link.emit(ConnectionEvent::Reconnected { peer: peer.clone(), attempts: failed + 1, downtime });
            }
        }
        if let Some(first) = first.take() {
            let _ = first.send(Ok(()));
        }
        tokio::select! {
            () = peer.closed() => {}
            () = stopped(&mut stop) => return close(&link, Some(peer), None).await,
        }
        let reason = peer.close_reason().unwrap_or_else(|| Error::ConnectionClosed("the connection ended".into()));
        peer.shared.mark_superseded(format!(
            "it was a connection of the reconnecting handle to {}, which re-resolves its root and the netrefs it \
             looked up by name on its next connection but never re-binds a netref to an anonymous object: \
             obtain that object again through the handle",
            link.addr
        ));
        warn!(addr = %link.addr, conn = peer.id(), %reason, "connection lost; reconnecting");
        lost_at = Some(Instant::now());
        link.set_state(State::Reconnecting { reason: reason.clone() });
        link.emit(ConnectionEvent::Lost { connection: peer.id(), reason });
        if !policy.may_retry(0) {
            let error = Error::ConnectionClosed(format!(
                "the connection to {} was lost and its reconnect policy does not reconnect",
                link.addr
            ));
            return give_up(&link, 0, error, None);
        }
    }
}

/// The policy's attempts ran out after `attempts` failures, the last with `error`.
fn give_up(link: &Link, attempts: u32, error: Error, first: Option<oneshot::Sender<Result<(), Error>>>) {
    warn!(addr = %link.addr, attempts, %error, "gave up connecting");
    let gave_up = if attempts == 0 {
        error.clone()
    } else {
        Error::ConnectionClosed(format!(
            "gave up connecting to {} after {attempts} failed attempt{}; the last: {error}",
            link.addr,
            if attempts == 1 { "" } else { "s" }
        ))
    };
    link.set_state(State::GaveUp { error: gave_up });
    link.emit(ConnectionEvent::GaveUp { attempts, last_error: error.clone() });
    link.finished.send_replace(true);
    if let Some(first) = first {
        let _ = first.send(Err(error));
    }
}

/// Ends the supervisor: closes `peer` (the connection that is up, if any) and says so.
async fn close(link: &Link, peer: Option<Peer>, first: Option<oneshot::Sender<Result<(), Error>>>) {
    link.set_state(State::Closed);
    if let Some(peer) = peer {
        peer.close().await;
    }
    debug!(addr = %link.addr, "reconnecting handle closed");
    link.emit(ConnectionEvent::Closed);
    link.finished.send_replace(true);
    if let Some(first) = first {
        let _ = first.send(Err(link.closed_error()));
    }
}
