//! Publish/subscribe whose subscribers are remote actors and whose topics span nodes.
//!
//! - A [`Broker`] is an actix actor (remote type `netref_actors.Broker`) holding, per topic, the
//!   actors subscribed to it. Expose it with [`Broker::export`] (or `expose(addr)` listing the
//!   messages below) and reach it from any peer as an `ActorRef<Broker>`.
//! - A subscriber is **any** actor that handles [`Published`] and is exposed with
//!   `.handle::<Published>()` ([`expose_subscriber`] does exactly that). It subscribes with
//!   [`Subscribe::new`]`(topic, &its_actor_ref)`; the broker keeps the subscriber type-erased as
//!   the [`NetRef`] inside the `ActorRef` and delivers with a one-way `notify_method`
//!   (`ActorRef::do_send` on the wire): fire and forget, in publish order per subscriber.
//! - [`Publish`] delivers to the topic's subscribers on this broker and replies with what
//!   became of it for them ([`Delivery`]: delivered, queued, dropped, disconnected, closed);
//!   [`Unsubscribe`] and [`Topics`] do what they say; [`Stats`] reports counters.
//! - A [`Subscription`] subscribes through a reconnecting handle
//!   ([`netref::Connect::reconnect`]) and subscribes again by itself on each new connection.
//!
//! **Slow subscribers are bounded.** A message goes straight to a subscriber's connection while
//! that connection takes one-way calls. Once it refuses with back-pressure (its peer reads
//! slower than messages are published; see `netref::Config::max_queued_notifications`), the
//! broker queues the subscriber's messages, in order, up to [`Broker::max_queued`] (default
//! [`DEFAULT_MAX_QUEUED`]) and sends them as room appears. Past that the [`Overflow`] policy
//! applies: [`Overflow::DropOldest`] (the default) or [`Overflow::DropNewest`] drop a message,
//! count it for the publisher ([`Delivery::dropped`]) and for the subscriber (the next message
//! it gets carries [`Published::missed`]), and log a warning once per overflow episode;
//! [`Overflow::Disconnect`] drops the slow subscription, logged. Healthy subscribers are never
//! held up by a slow one, and the broker holds at most `subscriptions × max_queued` messages.
//!
//! **Dead subscribers are dropped.** The broker watches the connection of every remote
//! subscriber ([`Peer::closed`](netref::Peer::closed), one watcher per connection, not per subscriber): when it ends,
//! every subscriber and link behind it is removed. A publish that finds a subscriber's
//! connection closed before the watcher ran drops it on the spot and does not count it; a
//! publish never fails because of a dead subscriber. An actor that *stops* while its connection
//! stays up is not detected (one-way deliveries carry nothing back): unsubscribe it first.
//!
//! **Losses are counted.** [`Delivery::delivered`] means handed to the subscriber's
//! connection, unconfirmed. When that connection ends, what the broker accepted for the
//! subscriber and knows never left (its queue, and the one-way calls the connection never
//! wrote, [`Peer::unsent_one_way`](netref::Peer::unsent_one_way)) is counted in
//! [`BrokerStats::lost_at_disconnect`] and logged as a warning. The rest — written but never
//! read, or published while the subscriber was away — shows as gaps in [`Published::seq`],
//! which [`MissedCounter`] and [`Subscription`] count.
//!
//! **Topics spanning nodes.** Brokers on different nodes are joined with [`link`]: each then
//! forwards the messages published *on it* to the other ([`Forward`], one-way), which delivers
//! them to its own subscribers. A forwarded message is never forwarded again and carries its
//! origin broker's id, so no arrangement of links can loop or echo; in exchange links reach one
//! hop, so brokers that should share topics are linked pairwise (a full mesh). Links whose
//! connection ends are dropped like subscribers.
//!
//! ```no_run
//! use actix::prelude::*;
//! use netref::{prelude::*, ActorRef};
//! use netref_actors::pubsub::{expose_subscriber, Broker, Publish, Published, Subscribe};
//!
//! struct Printer;
//! impl Actor for Printer {
//!     type Context = Context<Self>;
//! }
//! impl netref::RemoteActor for Printer {
//!     const NAME: &'static str = "demo.Printer";
//! }
//! impl Handler<Published> for Printer {
//!     type Result = ();
//!     fn handle(&mut self, msg: Published, _: &mut Context<Self>) {
//!         println!("{}: {:?}", msg.topic, msg.decode::<String>());
//!     }
//! }
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // The node with the broker.
//! let broker = Broker::new().start();
//! let service = Service::void().export("broker", Broker::export(broker));
//! let (_server, client) = netref::connect_pair(service, Service::void());
//!
//! // A peer subscribes one of its actors and publishes.
//! let broker: ActorRef<Broker> = client.lookup_actor("broker").await?;
//! let printer = expose_subscriber(Printer.start());
//! broker.send(Subscribe::new("news", &printer)).await?;
//! let delivery = broker.send(Publish::new("news", &"hello")?).await?;
//! assert_eq!(delivery.delivered, 1);
//! # Ok(()) }
//! ```
//!
//! Payloads are plain data: a netref inside one cannot be forwarded to a subscriber on another
//! connection (netref does not forward references between connections). Any peer that reaches
//! a broker may subscribe, publish and link; expose it only where that trust holds.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    hash::{BuildHasher, Hasher},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use actix::{fut::wrap_future, Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, MessageResult};
use netref::{ActorExport, ActorRef, Error, NetRef, RemoteActor, Value};
use queue::{Offered, OneWayWait, Publication, SubscriberQueue};

mod messages;
mod missed;
mod queue;
mod subscription;

pub use messages::{
    BrokerStats, Delivery, Forward, Link, Publish, Published, Stats, Subscribe, Topics, Unlink, Unsubscribe,
};
pub use missed::MissedCounter;
pub use queue::Overflow;
pub use subscription::{Subscription, SubscriptionStatus};

/// Exposes a subscriber actor: `expose(addr).handle::<Published>()` as an `ActorRef`, ready for
/// [`Subscribe::new`]. (Expose it yourself to make it answer more messages.)
pub fn expose_subscriber<A>(addr: Addr<A>) -> ActorRef<A>
where
    A: RemoteActor + Handler<Published>,
    A::Context: actix::dev::ToEnvelope<A, Published>,
{
    netref::expose(addr).handle::<Published>().into_ref()
}

/// Links two brokers both ways: each forwards what is published on it to the other. Either may
/// be local or remote; when both are remote they must live behind the same connection (netref
/// does not forward references between connections).
pub async fn link(a: &ActorRef<Broker>, b: &ActorRef<Broker>) -> Result<(), Error> {
    let (id_a, id_b) = (a.send(Stats).await?.id, b.send(Stats).await?.id);
    a.send(Link { broker: b.clone(), id: id_b }).await?;
    b.send(Link { broker: a.clone(), id: id_a }).await?;
    Ok(())
}

/// Undoes [`link`].
pub async fn unlink(a: &ActorRef<Broker>, b: &ActorRef<Broker>) -> Result<(), Error> {
    let (id_a, id_b) = (a.send(Stats).await?.id, b.send(Stats).await?.id);
    a.send(Unlink { id: id_b }).await?;
    b.send(Unlink { id: id_a }).await?;
    Ok(())
}

/// Messages a broker holds at most for one subscription by default (see
/// [`Broker::max_queued`]).
pub const DEFAULT_MAX_QUEUED: usize = 1024;

/// The publish/subscribe broker; see the [module docs](self).
#[derive(Debug)]
pub struct Broker {
    id: u64,
    /// Subscriptions per topic, in subscription order; never empty.
    topics: BTreeMap<String, Vec<SubscriberQueue>>,
    /// Messages held at most per subscription, and what happens past it.
    max_queued: usize,
    overflow: Overflow,
    next_subscription: u64,
    /// Linked brokers with their ids.
    links: Vec<(u64, ActorRef<Broker>)>,
    /// Connections whose end is being watched.
    watched: HashSet<u64>,
    /// The last [`Published::seq`] per topic, for every topic subscribed at least once (kept
    /// when its subscribers go, so a subscriber that comes back sees what it missed).
    sequences: HashMap<String, u64>,
    lost_at_disconnect: u64,
    dropped: u64,
    forwarded_out: u64,
    forwarded_in: u64,
    overflow_dropped: u64,
    slow_disconnected: u64,
}

impl Default for Broker {
    fn default() -> Self {
        Broker::new()
    }
}

impl Actor for Broker {
    type Context = Context<Self>;
}

impl RemoteActor for Broker {
    const NAME: &'static str = "netref_actors.Broker";
}

/// Whether `netref` lives behind a connection that is closed.
fn connection_closed(netref: &NetRef) -> bool {
    netref.connection().is_some_and(|peer| peer.is_closed())
}

/// A broker id: random enough to tell the brokers of a deployment apart.
fn fresh_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    h.write_u32(std::process::id());
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish()
}

impl Broker {
    /// An empty broker with a fresh id, holding at most [`DEFAULT_MAX_QUEUED`] messages per
    /// subscription, then [`Overflow::DropOldest`].
    pub fn new() -> Self {
        Broker {
            id: fresh_id(),
            topics: BTreeMap::new(),
            max_queued: DEFAULT_MAX_QUEUED,
            overflow: Overflow::default(),
            next_subscription: 0,
            links: Vec::new(),
            watched: HashSet::new(),
            sequences: HashMap::new(),
            lost_at_disconnect: 0,
            dropped: 0,
            forwarded_out: 0,
            forwarded_in: 0,
            overflow_dropped: 0,
            slow_disconnected: 0,
        }
    }

    /// Messages held at most for one subscription whose connection takes no more one-way
    /// calls (its peer reads slower than messages are published); past it, the
    /// [`overflow`](Broker::overflow) policy applies. At least 1; default
    /// [`DEFAULT_MAX_QUEUED`]. What the broker holds for slow subscribers stays within
    /// `subscriptions × max_queued` messages, each within the frame limit of the connection
    /// it was published on; the subscriber's connection holds more ahead of it, within its own
    /// `Config::max_queued_notifications` and `max_write_buffer`.
    pub fn max_queued(mut self, messages: usize) -> Self {
        self.max_queued = messages.max(1);
        self
    }

    /// What happens to a message for a subscription whose queue is full. Default
    /// [`Overflow::DropOldest`].
    pub fn overflow(mut self, policy: Overflow) -> Self {
        self.overflow = policy;
        self
    }

    /// The broker's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Exposes a broker with every message it answers, for [`netref::Service::export`] (or
    /// `.into_ref()` for a local `ActorRef<Broker>` to [`link`]).
    pub fn export(addr: Addr<Broker>) -> ActorExport<Broker> {
        netref::expose(addr)
            .handle::<Subscribe>()
            .handle::<Unsubscribe>()
            .handle::<Publish>()
            .handle::<Topics>()
            .handle::<Stats>()
            .handle::<Link>()
            .handle::<Unlink>()
            .handle::<Forward>()
    }

    /// Starts watching the connection `netref` lives behind (once per connection): when it
    /// ends, everything behind it is dropped.
    fn watch(&mut self, netref: &NetRef, ctx: &mut Context<Self>) {
        let Some(peer) = netref.connection() else { return };
        let id = peer.id();
        if self.watched.insert(id) {
            ctx.spawn(
                wrap_future::<_, Self>(async move {
                    peer.closed().await;
                    peer.unsent_one_way()
                })
                .map(move |unsent, act, _| act.connection_lost(id, unsent)),
            );
        }
    }

    /// Connection `conn` ended with `unsent` one-way calls never written: drops what lives
    /// behind it and counts what it took with it.
    fn connection_lost(&mut self, conn: u64, unsent: u64) {
        self.watched.remove(&conn);
        let behind = |netref: &NetRef| netref.connection().is_some_and(|p| p.id() == conn);
        let mut dropped = 0;
        let mut held = 0;
        self.topics.retain(|_, subscribers| {
            let before = subscribers.len();
            subscribers.retain(|s| {
                let gone = behind(&s.subscriber);
                if gone {
                    held += s.held() as u64;
                }
                !gone
            });
            dropped += before - subscribers.len();
            !subscribers.is_empty()
        });
        if held + unsent > 0 {
            self.lost_at_disconnect += held + unsent;
            tracing::warn!(
                broker = self.id,
                conn,
                unsent,
                held,
                "a subscriber's connection ended: messages counted as delivered (never written) or queued for it are lost"
            );
        }
        let before = self.links.len();
        self.links.retain(|(_, broker)| !behind(broker.netref()));
        dropped += before - self.links.len();
        self.dropped += dropped as u64;
        if dropped > 0 {
            tracing::debug!(broker = self.id, conn, dropped, "dropped the subscribers and links of a lost connection");
        }
    }

    /// Delivers to this broker's subscribers of `topic`: sent, queued or dropped per
    /// subscription (see [`Overflow`]); subscriptions whose connection is closed, or that are
    /// too slow under [`Overflow::Disconnect`], go.
    fn deliver(&mut self, topic: String, payload: Value, ctx: &mut Context<Self>) -> Delivery {
        let mut outcome = Delivery::default();
        let Some(seq) = self.sequences.get_mut(&topic) else { return outcome };
        *seq += 1;
        let seq = *seq;
        let Some(subscriptions) = self.topics.get_mut(&topic) else { return outcome };
        let message = Arc::new(Publication { topic, payload, seq });
        let mut waits = Vec::new();
        // Messages held for subscriptions dropped here.
        let mut lost = 0;
        subscriptions.retain_mut(|subscription| {
            if connection_closed(&subscription.subscriber) {
                outcome.closed += 1;
                lost += subscription.held();
                return false;
            }
            match subscription.offer(message.clone(), self.max_queued, self.overflow) {
                Offered::Sent => outcome.delivered += 1,
                Offered::Queued => {
                    outcome.queued += 1;
                    if let Some(wait) = subscription.wait_for_room() {
                        waits.push((subscription.id, wait));
                    }
                }
                Offered::Dropped => outcome.dropped += 1,
                Offered::TooSlow => {
                    outcome.disconnected += 1;
                    lost += subscription.held();
                    return false;
                }
                Offered::Closed => {
                    outcome.closed += 1;
                    lost += subscription.held();
                    return false;
                }
            }
            true
        });
        if subscriptions.is_empty() {
            self.topics.remove(&message.topic);
        }
        for (id, wait) in waits {
            self.await_room(message.topic.clone(), id, wait, ctx);
        }
        self.dropped += outcome.closed as u64;
        self.overflow_dropped += outcome.dropped as u64;
        self.slow_disconnected += outcome.disconnected as u64;
        if lost > 0 {
            self.lost_at_disconnect += lost as u64;
            tracing::warn!(broker = self.id, topic = %message.topic, lost, "messages queued for dropped subscriptions are lost");
        }
        outcome
    }

    /// Runs `wait` (the head of subscription `id`'s queue waiting for room in its connection)
    /// and, once it went out, sends what queued behind it.
    fn await_room(&mut self, topic: String, id: u64, wait: OneWayWait, ctx: &mut Context<Self>) {
        ctx.spawn(wrap_future::<_, Self>(wait).map(move |sent, act, ctx| act.room_came(topic, id, sent, ctx)));
    }

    fn room_came(&mut self, topic: String, id: u64, sent: Result<(), Error>, ctx: &mut Context<Self>) {
        let Some(subscriptions) = self.topics.get_mut(&topic) else { return };
        // Unsubscribed meanwhile: nothing more to send.
        let Some(at) = subscriptions.iter().position(|s| s.id == id) else { return };
        let subscription = &mut subscriptions[at];
        let resumed = match sent {
            Ok(()) => subscription.resume(),
            Err(e) => Err(e),
        };
        match resumed {
            Ok(_) => {
                if let Some(wait) = subscription.wait_for_room() {
                    self.await_room(topic, id, wait, ctx);
                }
            }
            Err(e) => {
                let lost = subscription.held();
                tracing::warn!(%topic, subscriber = ?subscription.subscriber, error = %e, lost, "a queued subscriber is gone: the messages queued for it are lost");
                self.lost_at_disconnect += lost as u64;
                subscriptions.remove(at);
                self.dropped += 1;
                if subscriptions.is_empty() {
                    self.topics.remove(&topic);
                }
            }
        }
    }
}

impl Handler<Subscribe> for Broker {
    type Result = bool;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> bool {
        if connection_closed(&msg.subscriber) {
            return false;
        }
        if self.topics.get(&msg.topic).is_some_and(|subs| subs.iter().any(|s| s.subscriber == msg.subscriber)) {
            return false;
        }
        self.watch(&msg.subscriber, ctx);
        self.sequences.entry(msg.topic.clone()).or_insert(0);
        self.next_subscription += 1;
        let subscription = SubscriberQueue::new(self.next_subscription, msg.subscriber);
        self.topics.entry(msg.topic).or_default().push(subscription);
        true
    }
}

impl Handler<Unsubscribe> for Broker {
    type Result = bool;

    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) -> bool {
        let Some(subscribers) = self.topics.get_mut(&msg.topic) else { return false };
        let before = subscribers.len();
        subscribers.retain(|s| s.subscriber != msg.subscriber);
        let removed = subscribers.len() < before;
        if subscribers.is_empty() {
            self.topics.remove(&msg.topic);
        }
        removed
    }
}

impl Handler<Publish> for Broker {
    type Result = MessageResult<Publish>;

    fn handle(&mut self, msg: Publish, ctx: &mut Context<Self>) -> Self::Result {
        let mut lost = 0;
        self.links.retain(|(id, broker)| {
            if connection_closed(broker.netref()) {
                lost += 1;
                return false;
            }
            let forward = Forward { topic: msg.topic.clone(), payload: msg.payload.clone(), origin: self.id };
            match broker.do_send(forward) {
                Ok(()) => {
                    self.forwarded_out += 1;
                    true
                }
                Err(Error::ConnectionClosed(_)) => {
                    lost += 1;
                    false
                }
                Err(e) => {
                    tracing::warn!(topic = %msg.topic, link = id, error = %e, "cannot forward a message");
                    true
                }
            }
        });
        self.dropped += lost;
        MessageResult(self.deliver(msg.topic, msg.payload, ctx))
    }
}

impl Handler<Forward> for Broker {
    type Result = ();

    fn handle(&mut self, msg: Forward, ctx: &mut Context<Self>) {
        if msg.origin == self.id {
            return; // our own message came back: never deliver it twice
        }
        self.forwarded_in += 1;
        self.deliver(msg.topic, msg.payload, ctx);
    }
}

impl Handler<Topics> for Broker {
    type Result = MessageResult<Topics>;

    fn handle(&mut self, _: Topics, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.topics.keys().cloned().collect())
    }
}

impl Handler<Stats> for Broker {
    type Result = MessageResult<Stats>;

    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> Self::Result {
        MessageResult(BrokerStats {
            id: self.id,
            topics: self.topics.len(),
            subscriptions: self.topics.values().map(Vec::len).sum(),
            links: self.links.len(),
            dropped: self.dropped,
            forwarded_out: self.forwarded_out,
            forwarded_in: self.forwarded_in,
            queued: self.topics.values().flatten().map(SubscriberQueue::held).sum(),
            overflow_dropped: self.overflow_dropped,
            slow_disconnected: self.slow_disconnected,
            lost_at_disconnect: self.lost_at_disconnect,
        })
    }
}

impl Handler<Link> for Broker {
    type Result = bool;

    fn handle(&mut self, msg: Link, ctx: &mut Context<Self>) -> bool {
        if msg.id == self.id || connection_closed(msg.broker.netref()) || self.links.iter().any(|(id, _)| *id == msg.id)
        {
            return false;
        }
        self.watch(msg.broker.netref(), ctx);
        self.links.push((msg.id, msg.broker));
        true
    }
}

impl Handler<Unlink> for Broker {
    type Result = bool;

    fn handle(&mut self, msg: Unlink, _: &mut Context<Self>) -> bool {
        let before = self.links.len();
        self.links.retain(|(id, _)| *id != msg.id);
        self.links.len() < before
    }
}
