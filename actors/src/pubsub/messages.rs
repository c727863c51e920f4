//! The broker's messages: what a publisher, a subscriber and a linked broker send it, and what
//! it replies. Each is a [`RemoteMessage`] with a stable wire name; fields added later carry
//! `#[serde(default)]` so older peers keep reading them. Nothing here holds state or sends.

use actix::{Handler, Message};
use netref::{ActorRef, ConvertError, NetRef, RemoteActor, RemoteMessage, Value};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::Broker;

/// What a subscriber receives: the topic, the published payload, its number on the topic, and
/// how many messages of this subscription the broker dropped since the previous one it sent
/// (see [`Overflow`](super::Overflow)).
///
/// **Counting what was missed.** `seq` numbers every message the broker delivers on a topic,
/// whether or not anyone receives it, so a gap between two messages a subscriber receives is
/// exactly what it missed in between, whatever the cause: dropped by the overflow policy
/// (also in `missed`), lost with a connection that died with it still unwritten or unread,
/// or published while the subscriber was away (between a connection loss and its next
/// subscription). [`MissedCounter`](super::MissedCounter) counts that for a plain subscriber; a [`Subscription`](super::Subscription)
/// counts it across reconnections in [`SubscriptionStatus::missed`](super::SubscriptionStatus::missed).
#[derive(Clone, Debug, Message, Serialize, Deserialize)]
#[rtype(result = "()")]
pub struct Published {
    /// The topic it was published on.
    pub topic: String,
    /// The published value.
    pub payload: Value,
    /// Messages on this topic the broker dropped for this subscriber (its queue was full, see
    /// [`Overflow`](super::Overflow)) since it sent the previous one; 0 when none were. A broker older than this
    /// field sends none, read as 0.
    #[serde(default)]
    pub missed: u64,
    /// Its number on this topic at the delivering broker: 1, 2, 3, ... over everything the
    /// broker delivers on the topic since the topic's first subscription there (kept while the
    /// broker runs, across its subscribers coming and going). 0 from a broker older than this
    /// field.
    #[serde(default)]
    pub seq: u64,
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
/// forwarded to every linked broker. Replies with what became of it for each subscriber on this
/// broker ([`Delivery`]; linked brokers deliver on their own and are not counted).
#[derive(Clone, Debug, Message, Serialize, Deserialize)]
#[rtype(result = "Delivery")]
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

/// What a [`Publish`] became, one count per subscriber of the topic on this broker; each
/// subscriber is in exactly one count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Delivery {
    /// Handed to the subscriber's connection, behind everything published before: accepted as
    /// a one-way call, **not confirmed** (nothing comes back). If the connection then dies
    /// before writing it, the broker counts it in [`BrokerStats::lost_at_disconnect`]; if it
    /// was written but never read, the subscriber sees the gap in [`Published::seq`].
    pub delivered: usize,
    /// Held in the subscriber's queue on the broker, to go out once its connection has room
    /// (the subscriber reads slowly). Under [`Overflow::DropOldest`](super::Overflow::DropOldest) it may still be dropped
    /// later, which the subscriber then learns in [`Published::missed`].
    pub queued: usize,
    /// Subscribers whose queue was full: this message ([`Overflow::DropNewest`](super::Overflow::DropNewest)), or the oldest
    /// queued one ([`Overflow::DropOldest`](super::Overflow::DropOldest)), was dropped for them.
    pub dropped: usize,
    /// Subscriptions dropped because their queue was full under [`Overflow::Disconnect`](super::Overflow::Disconnect).
    pub disconnected: usize,
    /// Subscriptions dropped because their connection had closed.
    pub closed: usize,
}

impl Delivery {
    /// Subscribers that will get this message unless dropped later: `delivered + queued`.
    pub fn reached(&self) -> usize {
        self.delivered + self.queued
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
    /// Messages held in subscribers' queues now, over all subscriptions.
    #[serde(default)]
    pub queued: usize,
    /// Messages dropped for slow subscribers by [`Overflow::DropNewest`](super::Overflow::DropNewest) or
    /// [`Overflow::DropOldest`](super::Overflow::DropOldest), since the broker started.
    #[serde(default)]
    pub overflow_dropped: u64,
    /// Subscriptions dropped by [`Overflow::Disconnect`](super::Overflow::Disconnect), since the broker started.
    #[serde(default)]
    pub slow_disconnected: u64,
    /// Messages this broker had accepted for subscribers (counted as delivered or queued) that
    /// it knows never left: held in a subscription's queue when the subscription was dropped
    /// (its connection ended, or [`Overflow::Disconnect`](super::Overflow::Disconnect)), plus the one-way calls a
    /// subscriber's connection accepted and never wrote when it ended
    /// ([`netref::Peer::unsent_one_way`]; on a connection shared with other one-way traffic
    /// of this process, that traffic counts too). Each loss is logged with a warning. What a
    /// dead connection had written but its peer never read is not known here: the subscriber
    /// sees it as a gap in [`Published::seq`].
    #[serde(default)]
    pub lost_at_disconnect: u64,
}

/// Makes the receiving broker forward the messages published on it to `broker` (one
/// direction; [`link`](super::link) makes both). Replies whether the link is new (`false` for a broker
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
