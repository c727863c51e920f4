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
//! - [`Publish`] delivers to the topic's subscribers on this broker and returns how many it
//!   delivered to; [`Unsubscribe`] and [`Topics`] do what they say; [`Stats`] reports counters.
//! - A [`Subscription`] subscribes through a reconnecting handle
//!   ([`netref::Connect::reconnect`]) and subscribes again by itself on each new connection.
//!
//! **Dead subscribers are dropped.** The broker watches the connection of every remote
//! subscriber ([`Peer::closed`](netref::Peer::closed), one watcher per connection, not per subscriber): when it ends,
//! every subscriber and link behind it is removed. A publish that finds a subscriber's
//! connection closed before the watcher ran drops it on the spot and does not count it; a
//! publish never fails because of a dead subscriber. An actor that *stops* while its connection
//! stays up is not detected (one-way deliveries carry nothing back): unsubscribe it first.
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
//! let delivered = broker.send(Publish::new("news", &"hello")?).await?;
//! assert_eq!(delivered, 1);
//! # Ok(()) }
//! ```
//!
//! Payloads are plain data: a netref inside one cannot be forwarded to a subscriber on another
//! connection (netref does not forward references between connections). Any peer that reaches
//! a broker may subscribe, publish and link; expose it only where that trust holds.

use std::{
    collections::{BTreeMap, HashSet},
    hash::{BuildHasher, Hasher},
    sync::atomic::{AtomicU64, Ordering},
};

mod subscription;

pub use subscription::{Subscription, SubscriptionStatus};

use actix::{fut::wrap_future, Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult};
use netref::{ActorExport, ActorRef, ConvertError, Error, NetRef, RemoteActor, RemoteMessage, Value};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// What a subscriber receives: the topic and the published payload.
#[derive(Clone, Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct Published {
    /// The topic it was published on.
    pub topic: String,
    /// The published value.
    pub payload: Value,
}

impl RemoteMessage for Published {
    const NAME: &'static str = "netref_actors.Published";
}

impl Published {
    /// The payload converted to `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ConvertError> {
        netref::from_value(self.payload.clone())
    }
}

/// Subscribes an actor to a topic; replies whether it was newly subscribed (`false` if it
/// already was, or if its connection is already closed). The broker cannot tell whether the
/// actor handles [`Published`] ([`Subscribe::new`] checks it at compile time); if it does not,
/// its node logs each delivery as an error.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "bool")]
pub struct Subscribe {
    /// The topic.
    pub topic: String,
    /// The subscriber, an actor exposed with `.handle::<Published>()` (see [`Subscribe::new`]).
    pub subscriber: NetRef,
}

impl RemoteMessage for Subscribe {
    const NAME: &'static str = "netref_actors.Subscribe";
}

impl Subscribe {
    /// Subscribes `subscriber` to `topic`. Keep the same `ActorRef` to unsubscribe: the broker
    /// tells subscribers apart by reference identity.
    pub fn new<A: RemoteActor + Handler<Published>>(topic: impl Into<String>, subscriber: &ActorRef<A>) -> Self {
        Subscribe { topic: topic.into(), subscriber: subscriber.netref().clone() }
    }
}

/// Unsubscribes an actor from a topic; replies whether it was subscribed.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "bool")]
pub struct Unsubscribe {
    /// The topic.
    pub topic: String,
    /// The subscriber, as it subscribed.
    pub subscriber: NetRef,
}

impl RemoteMessage for Unsubscribe {
    const NAME: &'static str = "netref_actors.Unsubscribe";
}

impl Unsubscribe {
    /// Unsubscribes `subscriber` (the same `ActorRef` it subscribed with) from `topic`.
    pub fn new<A: RemoteActor + Handler<Published>>(topic: impl Into<String>, subscriber: &ActorRef<A>) -> Self {
        Unsubscribe { topic: topic.into(), subscriber: subscriber.netref().clone() }
    }
}

/// Publishes a payload on a topic: delivered to the topic's subscribers on this broker and
/// forwarded to every linked broker. Replies with the number of subscribers on this broker it
/// was delivered to (linked brokers deliver on their own and are not counted).
#[derive(Clone, Debug, Message, Serialize, Deserialize)]
#[rtype(result = "usize")]
pub struct Publish {
    /// The topic.
    pub topic: String,
    /// The value to publish.
    pub payload: Value,
}

impl RemoteMessage for Publish {
    const NAME: &'static str = "netref_actors.Publish";
}

impl Publish {
    /// Publishes `payload` (any serde value) on `topic`.
    pub fn new(topic: impl Into<String>, payload: &impl Serialize) -> Result<Self, ConvertError> {
        Ok(Publish { topic: topic.into(), payload: netref::to_value(payload)? })
    }
}

/// The topics with at least one subscriber on this broker, sorted.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "Vec<String>")]
pub struct Topics;

impl RemoteMessage for Topics {
    const NAME: &'static str = "netref_actors.Topics";
}

/// The broker's counters.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "BrokerStats")]
pub struct Stats;

impl RemoteMessage for Stats {
    const NAME: &'static str = "netref_actors.BrokerStats";
}

/// What [`Stats`] replies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStats {
    /// The broker's id (random per broker; [`Forward::origin`] carries it).
    pub id: u64,
    /// Topics with at least one subscriber.
    pub topics: usize,
    /// Subscriptions, over all topics.
    pub subscriptions: usize,
    /// Linked brokers.
    pub links: usize,
    /// Subscriptions and links dropped because their connection ended.
    pub dropped: u64,
    /// Messages published on this broker and sent to linked brokers (one per link).
    pub forwarded_out: u64,
    /// Messages received from linked brokers.
    pub forwarded_in: u64,
}

/// Makes the receiving broker forward the messages published on it to `broker` (one
/// direction; [`link`] makes both). Replies whether the link is new (`false` for a broker
/// already linked, the broker itself, or a closed connection).
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "bool")]
pub struct Link {
    /// The broker to forward to.
    pub broker: ActorRef<Broker>,
    /// Its id ([`BrokerStats::id`]); links are told apart, and self-links refused, by id.
    pub id: u64,
}

impl RemoteMessage for Link {
    const NAME: &'static str = "netref_actors.Link";
}

/// Stops forwarding to the linked broker with this id; replies whether it was linked.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "bool")]
pub struct Unlink {
    /// The linked broker's id.
    pub id: u64,
}

impl RemoteMessage for Unlink {
    const NAME: &'static str = "netref_actors.Unlink";
}

/// A message published on a linked broker (sent one-way between brokers): delivered to this
/// broker's subscribers, never forwarded again.
#[derive(Clone, Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct Forward {
    /// The topic.
    pub topic: String,
    /// The payload.
    pub payload: Value,
    /// The id of the broker it was published on.
    pub origin: u64,
}

impl RemoteMessage for Forward {
    const NAME: &'static str = "netref_actors.Forward";
}

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

/// The publish/subscribe broker; see the [module docs](self).
#[derive(Debug)]
pub struct Broker {
    id: u64,
    /// Subscribers per topic, in subscription order; never empty.
    topics: BTreeMap<String, Vec<NetRef>>,
    /// Linked brokers with their ids.
    links: Vec<(u64, ActorRef<Broker>)>,
    /// Connections whose end is being watched.
    watched: HashSet<u64>,
    dropped: u64,
    forwarded_out: u64,
    forwarded_in: u64,
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
    /// An empty broker with a fresh id.
    pub fn new() -> Self {
        Broker {
            id: fresh_id(),
            topics: BTreeMap::new(),
            links: Vec::new(),
            watched: HashSet::new(),
            dropped: 0,
            forwarded_out: 0,
            forwarded_in: 0,
        }
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
            ctx.spawn(wrap_future::<_, Self>(async move { peer.closed().await }).map(move |(), act, _| {
                act.connection_lost(id);
            }));
        }
    }

    fn connection_lost(&mut self, conn: u64) {
        self.watched.remove(&conn);
        let behind = |netref: &NetRef| netref.connection().is_some_and(|p| p.id() == conn);
        let mut dropped = 0;
        self.topics.retain(|_, subscribers| {
            let before = subscribers.len();
            subscribers.retain(|s| !behind(s));
            dropped += before - subscribers.len();
            !subscribers.is_empty()
        });
        let before = self.links.len();
        self.links.retain(|(_, broker)| !behind(broker.netref()));
        dropped += before - self.links.len();
        self.dropped += dropped as u64;
        if dropped > 0 {
            tracing::debug!(broker = self.id, conn, dropped, "dropped the subscribers and links of a lost connection");
        }
    }

    /// Delivers to this broker's subscribers of `topic`, dropping those whose connection is
    /// closed; returns how many it delivered to.
    fn deliver(&mut self, topic: String, payload: Value) -> usize {
        let Some(subscribers) = self.topics.get_mut(&topic) else { return 0 };
        let message = Published { topic, payload };
        let (mut delivered, mut dropped) = (0, 0);
        subscribers.retain(|subscriber| {
            if connection_closed(subscriber) {
                dropped += 1;
                return false;
            }
            match subscriber.notify_method(Published::NAME, (&message,)) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(Error::ConnectionClosed(_)) => {
                    dropped += 1;
                    false
                }
                Err(e) => {
                    tracing::warn!(topic = %message.topic, ?subscriber, error = %e, "cannot deliver a message");
                    true
                }
            }
        });
        if subscribers.is_empty() {
            self.topics.remove(&message.topic);
        }
        self.dropped += dropped;
        delivered
    }
}

impl Handler<Subscribe> for Broker {
    type Result = bool;

    fn handle(&mut self, msg: Subscribe, ctx: &mut Context<Self>) -> bool {
        if connection_closed(&msg.subscriber) {
            return false;
        }
        if self.topics.get(&msg.topic).is_some_and(|subscribers| subscribers.contains(&msg.subscriber)) {
            return false;
        }
        self.watch(&msg.subscriber, ctx);
        self.topics.entry(msg.topic).or_default().push(msg.subscriber);
        true
    }
}

impl Handler<Unsubscribe> for Broker {
    type Result = bool;

    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) -> bool {
        let Some(subscribers) = self.topics.get_mut(&msg.topic) else { return false };
        let before = subscribers.len();
        subscribers.retain(|s| *s != msg.subscriber);
        let removed = subscribers.len() < before;
        if subscribers.is_empty() {
            self.topics.remove(&msg.topic);
        }
        removed
    }
}

impl Handler<Publish> for Broker {
    type Result = usize;

    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) -> usize {
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
        self.deliver(msg.topic, msg.payload)
    }
}

impl Handler<Forward> for Broker {
    type Result = ();

    fn handle(&mut self, msg: Forward, _: &mut Context<Self>) {
        if msg.origin == self.id {
            return; // our own message came back: never deliver it twice
        }
        self.forwarded_in += 1;
        self.deliver(msg.topic, msg.payload);
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
