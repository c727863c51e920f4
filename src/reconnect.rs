//! Reconnecting handles: [`Connect::reconnect`] gives a [`Reconnecting`] handle, a connection
//! that comes back after it is lost, as its [`ReconnectPolicy`] says.
//!
//! What it guarantees, in short (FAILURE-SEMANTICS.md says it at length):
//!
//! - Its [root](Reconnecting::root) and the netrefs it [looked up](Reconnecting::lookup) by
//!   name are re-resolved on each new connection and keep their identity (`Eq`, `Hash`) across
//!   reconnections; a name that now names another type is refused, not re-bound.
//! - At most once: a request in flight when the connection is lost fails (with the loss's
//!   reason) and is never sent again. A request made while reconnecting waits for the next
//!   connection within its own expiry ([`AsyncResult::set_expiry`](crate::AsyncResult::set_expiry),
//!   default [`Config::request_timeout`](crate::Config::request_timeout)); a one-way request
//!   made then fails at once.
//! - Netrefs to anonymous objects of a lost connection (results, callbacks received) fail with
//!   [`Error::ConnectionClosed`] saying so, and are never re-bound.
//! - [`events`](Reconnecting::events) reports each change: connected, lost (with the reason),
//!   reconnected, gave up, closed.
//!
//! This module is the handle's surface; it must never issue a request of its own but the
//! lookups that resolve names (see `named`) and never hide a failure behind a retry.

use std::{
    fmt,
    future::{Future, IntoFuture},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::{FutureExt, Stream};
use tokio::sync::oneshot;

use crate::{async_result::AsyncResult, client::Connect, hosting, ActorRef, Error, NetRef, Peer, RemoteActor, Value};

mod named;
mod policy;
mod supervisor;

pub(crate) use named::Named;
pub use policy::ReconnectPolicy;
use supervisor::{Link, Owner, State};

/// What happened to a [`Reconnecting`] handle's connection; read them with
/// [`Reconnecting::events`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// The first connection is up.
    Connected {
        /// The connection.
        peer: Peer,
    },
    /// The connection was lost; the handle is reconnecting (unless its policy says never, when
    /// [`GaveUp`](ConnectionEvent::GaveUp) follows).
    Lost {
        /// The lost connection's id ([`Peer::id`]).
        connection: u64,
        /// Why it was lost: the error its pending requests failed with.
        reason: Error,
    },
    /// A new connection is up after a loss; the root and the names in use are resolved on it.
    Reconnected {
        /// The new connection.
        peer: Peer,
        /// The connection attempts it took (this one included).
        attempts: u32,
        /// How long no connection was up.
        downtime: Duration,
    },
    /// The policy's attempts ran out: no connection will come. Requests waiting fail, later
    /// ones fail at once. The last event.
    GaveUp {
        /// The attempts that failed in a row.
        attempts: u32,
        /// Why the last one failed (for a policy that never reconnects: why the connection
        /// was lost).
        last_error: Error,
    },
    /// The handle was closed ([`Reconnecting::close`], or its last clone and netref dropped).
    /// The last event.
    Closed,
}

impl ConnectionEvent {
    /// Whether no event follows this one.
    pub fn is_final(&self) -> bool {
        matches!(self, ConnectionEvent::GaveUp { .. } | ConnectionEvent::Closed)
    }
}

/// A reconnecting connection being set up: `.await` it for the [`Reconnecting`] handle. See
/// [`Connect::reconnect`].
#[must_use = "a Reconnect does nothing until it is awaited"]
#[derive(Debug)]
pub struct Reconnect {
    connect: Connect,
    policy: ReconnectPolicy,
}

impl Connect {
    /// Makes the connection come back after it is lost: `.await` gives a [`Reconnecting`]
    /// handle once the first connection is up (tried as `policy` says; if it gives up, the
    /// last attempt's error).
    ///
    /// Every attempt, the first included, connects as this `Connect` is set up (address,
    /// service, config, TLS, connect timeout).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), netref::Error> {
    /// use futures::StreamExt;
    /// use netref::{ConnectionEvent, ReconnectPolicy};
    ///
    /// let handle = netref::connect("127.0.0.1:18812").reconnect(ReconnectPolicy::default()).await?;
    /// let calc = handle.root().await?; // the same netref, whichever connection serves it
    /// let sum: i64 = calc.call_method("add", (1, 2)).await?;
    ///
    /// let mut events = handle.events();
    /// while let Some(event) = events.next().await {
    ///     match event {
    ///         ConnectionEvent::Lost { reason, .. } => eprintln!("lost: {reason}"),
    ///         ConnectionEvent::Reconnected { downtime, .. } => eprintln!("back after {downtime:?}"),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn reconnect(self, policy: ReconnectPolicy) -> Reconnect {
        Reconnect { connect: self, policy }
    }
}

impl IntoFuture for Reconnect {
    type Output = Result<Reconnecting, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Reconnecting, Error>> + Send + 'static>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let Reconnect { connect, policy } = self;
            let link = Arc::new(Link::new(connect.address().to_owned(), connect.request_timeout()));
            let handle = Reconnecting { owner: Arc::new(Owner { link: link.clone() }) };
            let (first_tx, first_rx) = oneshot::channel();
            let runtime = connect.chosen_runtime();
            let run = move || supervisor::supervise(link, connect, policy, first_tx);
            // The supervisor runs where the connections live, as `Connect` would place them.
            match runtime {
                Some(rt) if !rt.is_current() => drop(rt.spawn(run)),
                Some(_) => drop(actix_rt::spawn(run())),
                None if hosting::on_actor_thread() => drop(actix_rt::spawn(run())),
                None => drop(hosting::default_runtime()?.spawn(run)),
            }
            match first_rx.await {
                Ok(Ok(())) => Ok(handle),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(Error::ConnectionClosed("the reconnecting handle's runtime stopped".into())),
            }
        })
    }
}

/// A connection that comes back after it is lost: made by [`Connect::reconnect`].
///
/// `Send + Sync + Clone`; the connection is closed when [`close`](Reconnecting::close) is
/// called or when the last clone and the last of its netrefs are dropped.
///
/// ```no_run
/// # async fn demo() -> Result<(), netref::Error> {
/// use std::time::Duration;
/// use netref::ReconnectPolicy;
///
/// let policy = ReconnectPolicy::exponential(Duration::from_millis(50), Duration::from_secs(5));
/// let handle = netref::connect("127.0.0.1:18812").reconnect(policy).await?;
/// let counter = handle.lookup("counter").await?;
/// // The server restarts: `counter` is looked up again on the new connection, and stays
/// // equal to itself. A call made meanwhile waits (here up to 2 s) for the new connection.
/// let n = counter.call_method::<i64>("incr", ());
/// n.set_expiry(Some(Duration::from_secs(2)));
/// let n = n.await?;
/// # let _ = n;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Reconnecting {
    owner: Arc<Owner>,
}

impl fmt::Debug for Reconnecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let link = &self.owner.link;
        let state = match &*link.state.borrow() {
            State::Connecting => "connecting".to_owned(),
            State::Connected { peer, .. } => format!("connected conn{}", peer.id()),
            State::Reconnecting { .. } => "reconnecting".to_owned(),
            State::GaveUp { .. } => "gave up".to_owned(),
            State::Closed => "closed".to_owned(),
        };
        write!(f, "<reconnecting {} {state}>", link.addr)
    }
}

impl Reconnecting {
    fn link(&self) -> &Arc<Link> {
        &self.owner.link
    }

    /// The address the handle connects to, as given to [`connect`](crate::connect).
    pub fn address(&self) -> &str {
        &self.link().addr
    }

    /// The peer's root object: a netref that stays the same across reconnections (each new
    /// connection resolves the root again). Waits for a connection if none is up, within the
    /// result's expiry.
    pub fn root(&self) -> AsyncResult<NetRef> {
        self.named(None)
    }

    /// The object the peer exports under `name` ([`Peer::lookup`]), as a netref that stays the
    /// same across reconnections: each new connection looks `name` up again, and a request
    /// fails (with the lookup's error) if the name is gone, or ([`Error::Convert`]) names an
    /// object of another type. The same name gives the same netref while one is alive.
    pub fn lookup(&self, name: &str) -> AsyncResult<NetRef> {
        self.named(Some(name.to_owned()))
    }

    /// The actor the peer exports under `name`, checked against type `A`, re-resolved on each
    /// new connection like [`lookup`](Reconnecting::lookup).
    pub async fn lookup_actor<A: RemoteActor>(&self, name: &str) -> Result<ActorRef<A>, Error> {
        ActorRef::from_netref(self.lookup(name).await?)
    }

    /// The stand-in for `name`: the live one, or one made on the current connection.
    fn named(&self, name: Option<String>) -> AsyncResult<NetRef> {
        if let Some(object) = self.link().names.lock().unwrap_or_else(|p| p.into_inner()).get(&name) {
            if let Some(object) = object.upgrade() {
                return AsyncResult::settled(Ok(Value::Ref(NetRef::from(object))));
            }
        }
        let owner = self.owner.clone();
        named::relay(self.link(), move |_expiry| {
            async move {
                let link = owner.link.clone();
                let (target, epoch) = loop {
                    let (peer, epoch) = link.connected().await?;
                    let found = match &name {
                        None => peer.root().await,
                        Some(name) => peer.lookup(name).await,
                    };
                    match found {
                        Ok(target) => break (target, epoch),
                        Err(_) if peer.is_closed() => continue,
                        Err(e) => return Err(e),
                    }
                };
                let mut names = link.names.lock().unwrap_or_else(|p| p.into_inner());
                // Another lookup of the same name may have finished first: one stand-in each.
                if let Some(object) = names.get(&name).and_then(|o| o.upgrade()) {
                    return Ok(Value::Ref(NetRef::from(object)));
                }
                let object = Named::stand_in(owner, name.clone(), target, epoch);
                names.retain(|_, weak| weak.upgrade().is_some());
                names.insert(name, object.downgrade());
                Ok(Value::Ref(NetRef::from(object)))
            }
            .boxed()
        })
    }

    /// The connection that is up, if one is. Closing it counts as a loss: the handle connects
    /// again ([`close`](Reconnecting::close) is the way to stop).
    pub fn peer(&self) -> Option<Peer> {
        match &*self.link().state.borrow() {
            State::Connected { peer, .. } if !peer.is_closed() => Some(peer.clone()),
            _ => None,
        }
    }

    /// Whether a connection is up.
    pub fn is_connected(&self) -> bool {
        self.peer().is_some()
    }

    /// Resolves with the connection once one is up (at once if one is); fails if the handle
    /// gave up or was closed. Wrap it in a timeout to bound the wait.
    pub async fn connected(&self) -> Result<Peer, Error> {
        self.link().connected().await.map(|(peer, _)| peer)
    }

    /// The handle's connection events: the stream opens with the latest event (where the
    /// handle is now: `Connected`, `Lost`, `Reconnected`, …), then yields each new one, and
    /// ends after a final one ([`GaveUp`](ConnectionEvent::GaveUp),
    /// [`Closed`](ConnectionEvent::Closed)). A stream that falls more than 64 events behind
    /// skips the oldest.
    pub fn events(&self) -> ConnectionEvents {
        let (latest, next) = self.link().subscribe();
        ConnectionEvents { latest, next: Some(event_receiver::Receiver::new(next)), done: false }
    }

    /// Stops reconnecting and closes the connection that is up (gracefully, as
    /// [`Peer::close`]); requests waiting for a connection fail. Resolves once done.
    pub async fn close(&self) {
        let link = self.link();
        link.stop.send_replace(true);
        let _ = link.finished.subscribe().wait_for(|finished| *finished).await;
    }
}

/// The stream [`Reconnecting::events`] returns.
pub struct ConnectionEvents {
    latest: Option<ConnectionEvent>,
    next: Option<event_receiver::Receiver>,
    done: bool,
}

impl fmt::Debug for ConnectionEvents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionEvents").field("done", &self.done).finish_non_exhaustive()
    }
}

impl Stream for ConnectionEvents {
    type Item = ConnectionEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ConnectionEvent>> {
        if self.done {
            return Poll::Ready(None);
        }
        let event = match self.latest.take() {
            Some(event) => Some(event),
            None => match self.next.as_mut() {
                Some(next) => match next.poll_recv(cx) {
                    Poll::Ready(event) => event,
                    Poll::Pending => return Poll::Pending,
                },
                None => None,
            },
        };
        self.done = event.as_ref().is_none_or(ConnectionEvent::is_final);
        if self.done {
            self.next = None;
        }
        Poll::Ready(event)
    }
}

/// A `broadcast::Receiver` that can be polled, skipping (and logging) what it fell behind on.
mod event_receiver {
    use std::task::{Context, Poll};

    use futures::{future::BoxFuture, FutureExt};
    use tokio::sync::broadcast::{self, error::RecvError};

    use super::ConnectionEvent;

    type Recv = BoxFuture<'static, (Result<ConnectionEvent, RecvError>, broadcast::Receiver<ConnectionEvent>)>;

    pub(super) struct Receiver(Option<Recv>);

    fn recv(mut rx: broadcast::Receiver<ConnectionEvent>) -> Recv {
        async move { (rx.recv().await, rx) }.boxed()
    }

    impl Receiver {
        pub(super) fn new(rx: broadcast::Receiver<ConnectionEvent>) -> Self {
            Receiver(Some(recv(rx)))
        }

        pub(super) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<ConnectionEvent>> {
            loop {
                let Some(fut) = self.0.as_mut() else { return Poll::Ready(None) };
                let (out, rx) = match fut.poll_unpin(cx) {
                    Poll::Ready(done) => done,
                    Poll::Pending => return Poll::Pending,
                };
                match out {
                    Ok(event) => {
                        self.0 = Some(recv(rx));
                        return Poll::Ready(Some(event));
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "a connection events stream fell behind; skipped the oldest events");
                        self.0 = Some(recv(rx));
                    }
                    Err(RecvError::Closed) => {
                        self.0 = None;
                        return Poll::Ready(None);
                    }
                }
            }
        }
    }
}
