//! A pool of actors of one type, local or remote: requests go to one member, chosen round-robin
//! or by the fewest requests in flight; members whose connection is lost are removed.
//!
//! [`Pool<A>`] is a plain `Clone + Send + Sync` handle (clones share the members), not an actor.
//! [`Pool::send`] picks a member and sends it the message, as `ActorRef::send` would:
//!
//! - **Round-robin** takes the members in turn; **least-in-flight** takes the member with the
//!   fewest of this pool's requests awaiting their reply (ties go round-robin), so a member
//!   busy with a slow request is passed over while another is idle.
//! - **Retries never repeat work.** A request is retried on another member only when it failed
//!   before it was sent: the member's connection was closed when it was picked, or the request
//!   was refused at once with `ConnectionClosed` (netref settles a request on a closed
//!   connection before sending anything). A request lost with its connection while in flight,
//!   or any other error, is returned to the caller as is: the member may have executed it.
//! - **Dead members are removed**: in the background when their connection ends (a member added
//!   on a tokio runtime, e.g. an actix arbiter, gets a task there awaiting its connection's
//!   [`Peer::closed`](netref::Peer::closed): local, no traffic; it ends with the pool or the
//!   member), at pick time when their connection is closed, and after a request that failed
//!   with `ConnectionClosed` or `netref.ActorStopped`. A member whose actor stopped while its
//!   connection lives is thus removed by the first request that finds it stopped (that request
//!   fails: the actor may have started handling it). `ActorRef::watch` is deliberately not
//!   used: it keeps a request open on the member's node, which would hold up that node's
//!   graceful close for its whole `close_grace`.
//!
//! ```no_run
//! use actix::prelude::*;
//! use netref::{prelude::*, ActorRef};
//! use netref_actors::pool::{Pool, Strategy};
//! # #[derive(Message, serde::Serialize, serde::Deserialize)]
//! # #[rtype(result = "u64")]
//! # struct Work(u64);
//! # impl netref::RemoteMessage for Work { const NAME: &'static str = "demo.Work"; }
//! # struct Worker;
//! # impl Actor for Worker { type Context = Context<Self>; }
//! # impl netref::RemoteActor for Worker { const NAME: &'static str = "demo.Worker"; }
//! # impl Handler<Work> for Worker { type Result = u64; fn handle(&mut self, m: Work, _: &mut Context<Self>) -> u64 { m.0 } }
//!
//! # async fn demo(peers: Vec<Peer>) -> Result<(), Box<dyn std::error::Error>> {
//! let pool = Pool::new(Strategy::LeastInFlight);
//! for peer in &peers {
//!     pool.add(peer.lookup_actor::<Worker>("worker").await?);
//! }
//! let answer = pool.send(Work(7)).await?;
//! # Ok(()) }
//! ```

use std::{
    fmt,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard, Weak,
    },
};

use actix::Handler;
use netref::{kinds, ActorRef, Error, RemoteActor, RemoteMessage};
use serde::{de::DeserializeOwned, Serialize};
use tokio::task::AbortHandle;

/// How [`Pool::send`] picks a member.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// The members in turn.
    #[default]
    RoundRobin,
    /// The member with the fewest of the pool's requests in flight; ties go round-robin.
    LeastInFlight,
}

/// Why [`Pool::send`] failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The pool has no members (none were added, or every one was removed).
    #[error("the pool of {actor} actors is empty: no member to send the request to")]
    Empty {
        /// The actor type's name.
        actor: &'static str,
    },
    /// The request failed on the member it was sent to (and was not retried: it may have
    /// executed there).
    #[error(transparent)]
    Request(#[from] Error),
}

/// A pool of `ActorRef<A>`s; see the [module docs](self).
pub struct Pool<A> {
    inner: Arc<Mutex<Inner<A>>>,
}

struct Inner<A> {
    strategy: Strategy,
    members: Vec<Member<A>>,
    /// The next turn (round-robin, and the tie-break of least-in-flight).
    cursor: usize,
    /// Members removed because they were found dead.
    dropped: u64,
}

struct Member<A> {
    actor: ActorRef<A>,
    in_flight: Arc<AtomicUsize>,
    watch: Option<AbortHandle>,
}

impl<A> Drop for Inner<A> {
    fn drop(&mut self) {
        for member in &self.members {
            if let Some(watch) = &member.watch {
                watch.abort();
            }
        }
    }
}

impl<A: RemoteActor> Inner<A> {
    /// Removes the member at `index`, ending its watch.
    fn remove_at(&mut self, index: usize) -> Member<A> {
        let member = self.members.remove(index);
        if let Some(watch) = &member.watch {
            watch.abort();
        }
        member
    }

    /// Removes `actor` if it is a member, counting it as dead when `dead`.
    fn remove(&mut self, actor: &ActorRef<A>, dead: bool) -> bool {
        let Some(index) = self.members.iter().position(|m| m.actor == *actor) else { return false };
        self.remove_at(index);
        if dead {
            self.dropped += 1;
        }
        true
    }

    /// Removes the members whose connection is closed.
    fn prune(&mut self) {
        while let Some(index) = self.members.iter().position(|m| connection_closed(&m.actor)) {
            tracing::debug!(member = ?self.members[index].actor, "removing a pool member whose connection is closed");
            self.remove_at(index);
            self.dropped += 1;
        }
    }
}

fn connection_closed<A: RemoteActor>(actor: &ActorRef<A>) -> bool {
    actor.netref().connection().is_some_and(|peer| peer.is_closed())
}

/// Counts a request in flight on a member until dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<A> Clone for Pool<A> {
    fn clone(&self) -> Self {
        Pool { inner: self.inner.clone() }
    }
}

impl<A> fmt::Debug for Pool<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = lock(&self.inner);
        f.debug_struct("Pool")
            .field("strategy", &inner.strategy)
            .field(
                "members",
                &inner.members.iter().map(|m| (&m.actor, m.in_flight.load(Ordering::Relaxed))).collect::<Vec<_>>(),
            )
            .field("dropped", &inner.dropped)
            .finish()
    }
}

fn lock<A>(inner: &Mutex<Inner<A>>) -> MutexGuard<'_, Inner<A>> {
    inner.lock().unwrap_or_else(|p| p.into_inner())
}

impl<A: RemoteActor> Pool<A> {
    /// An empty pool.
    pub fn new(strategy: Strategy) -> Self {
        Pool { inner: Arc::new(Mutex::new(Inner { strategy, members: Vec::new(), cursor: 0, dropped: 0 })) }
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        lock(&self.inner).strategy
    }

    /// Adds a member; `false` if it already is one (by reference identity) or its connection is
    /// closed. Called on a tokio runtime (an actix arbiter), it also starts watching the
    /// member's connection there, to remove the member as soon as the connection ends.
    pub fn add(&self, actor: ActorRef<A>) -> bool {
        if connection_closed(&actor) {
            return false;
        }
        let mut inner = lock(&self.inner);
        if inner.members.iter().any(|m| m.actor == actor) {
            return false;
        }
        let watch = actor.netref().connection().and_then(|peer| {
            let rt = tokio::runtime::Handle::try_current().ok()?;
            let pool = Arc::downgrade(&self.inner);
            let target = actor.clone();
            let task = rt.spawn(async move {
                peer.closed().await;
                if let Some(inner) = Weak::upgrade(&pool) {
                    tracing::debug!(member = ?target, "removing a pool member whose connection ended");
                    lock(&inner).remove(&target, true);
                }
            });
            Some(task.abort_handle())
        });
        inner.members.push(Member { actor, in_flight: Arc::new(AtomicUsize::new(0)), watch });
        true
    }

    /// Removes a member; `false` if it was not one.
    pub fn remove(&self, actor: &ActorRef<A>) -> bool {
        lock(&self.inner).remove(actor, false)
    }

    /// The number of members (members found dead are no longer counted).
    pub fn len(&self) -> usize {
        let mut inner = lock(&self.inner);
        inner.prune();
        inner.members.len()
    }

    /// Whether the pool has no members.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The members, in the order they were added.
    pub fn members(&self) -> Vec<ActorRef<A>> {
        let mut inner = lock(&self.inner);
        inner.prune();
        inner.members.iter().map(|m| m.actor.clone()).collect()
    }

    /// The pool's requests in flight on `member`, or `None` if it is not a member.
    pub fn in_flight(&self, member: &ActorRef<A>) -> Option<usize> {
        let inner = lock(&self.inner);
        inner.members.iter().find(|m| m.actor == *member).map(|m| m.in_flight.load(Ordering::Acquire))
    }

    /// How many members were removed because they were found dead (connection closed or lost,
    /// actor stopped).
    pub fn dropped(&self) -> u64 {
        lock(&self.inner).dropped
    }

    /// Picks a member by the strategy and counts a request in flight on it.
    fn pick(&self) -> Result<(ActorRef<A>, InFlight), PoolError> {
        let mut inner = lock(&self.inner);
        inner.prune();
        let n = inner.members.len();
        if n == 0 {
            return Err(PoolError::Empty { actor: A::NAME });
        }
        let start = inner.cursor % n;
        let index = match inner.strategy {
            Strategy::RoundRobin => start,
            Strategy::LeastInFlight => (0..n)
                .map(|i| (start + i) % n)
                .min_by_key(|&i| inner.members[i].in_flight.load(Ordering::Acquire))
                .unwrap_or(start),
        };
        // The next turn starts after the member picked, so that idle members alternate.
        inner.cursor = index + 1;
        let member = &inner.members[index];
        member.in_flight.fetch_add(1, Ordering::AcqRel);
        Ok((member.actor.clone(), InFlight(member.in_flight.clone())))
    }

    /// Sends `msg` to one member (chosen by the strategy) and returns its reply; see the
    /// [module docs](self) for when it retries on another member. The usual request expiry
    /// applies (netref's `request_timeout`).
    pub async fn send<M>(&self, msg: M) -> Result<M::Result, PoolError>
    where
        M: RemoteMessage,
        M::Result: Serialize + DeserializeOwned + Send + 'static,
        A: Handler<M>,
    {
        // Converted once, so that a request refused before sending can go to another member.
        let message = netref::to_value(&msg).map_err(Error::from)?;
        drop(msg);
        loop {
            let (member, in_flight) = self.pick()?;
            // The same request `ActorRef::send` makes: method `M::NAME`, the message as its
            // only argument.
            let request = member.netref().call_method::<M::Result>(M::NAME, (&message,));
            // Settled already: refused before anything was sent (or a local actor answered).
            let refused_unsent = request.ready();
            let out = request.await;
            drop(in_flight);
            match out {
                Err(Error::ConnectionClosed(reason)) => {
                    lock(&self.inner).remove(&member, true);
                    if refused_unsent {
                        tracing::debug!(?member, %reason, "a pool member's connection is closed; trying another");
                        continue;
                    }
                    return Err(Error::ConnectionClosed(reason).into());
                }
                Err(Error::Remote(e)) if e.is(kinds::ACTOR_STOPPED) => {
                    lock(&self.inner).remove(&member, true);
                    return Err(Error::Remote(e).into());
                }
                out => return out.map_err(PoolError::from),
            }
        }
    }
}
