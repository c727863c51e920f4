//! [`Subscription`]: a subscription made through a [`Reconnecting`] handle, which subscribes
//! again on each new connection to the broker's node.
//!
//! A broker drops the subscribers of a connection that ends, so after a reconnection nothing
//! is delivered until the subscriber subscribes again; a `Subscription` does that by itself,
//! as soon as the handle reports the new connection. It never retries on a connection that
//! is up (a refused subscription stays refused, and says why in its status), and messages
//! published while no connection was up are not delivered (the broker keeps no backlog).
//!
//! What was missed is counted, not guessed: the broker subscribes a small counting actor
//! that stands in front of the subscriber, counts the gaps in [`Published::seq`] with one
//! [`MissedCounter`] for the life of the `Subscription` (so across connections: messages lost
//! with a dead connection and messages published while away are in it), and passes each
//! message on, in order. It must never drop or reorder a message on the way.

use std::fmt;

use actix::{Actor, Addr, Context, Handler};
use futures::StreamExt;
use netref::{ActorRef, ConnectionEvent, Error, NetRef, Reconnecting, RemoteActor};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::{expose_subscriber, Broker, MissedCounter, Published, Subscribe, Unsubscribe};

/// A subscriber kept subscribed to a topic across reconnections; see [`Subscription::start`].
/// Dropping it stops subscribing again; [`cancel`](Subscription::cancel) also unsubscribes.
pub struct Subscription {
    topic: String,
    status: watch::Receiver<SubscriptionStatus>,
    task: tokio::task::JoinHandle<()>,
    broker: ActorRef<Broker>,
    subscriber: NetRef,
}

/// What a [`Subscription`] knows about itself.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SubscriptionStatus {
    /// Whether the subscriber is subscribed on the current connection.
    pub subscribed: bool,
    /// Times it was subscribed: the first time, then once per reconnection.
    pub subscriptions: u64,
    /// The connection ([`netref::Peer::id`]) it was last subscribed on.
    pub connection: Option<u64>,
    /// Why the latest attempt failed, if it did.
    pub last_error: Option<Error>,
    /// Messages received (passed on to the subscriber), over all connections.
    pub received: u64,
    /// Messages missed since the first one received, over all connections: the gaps in
    /// [`Published::seq`] (see [`MissedCounter`]), which include the broker's overflow drops,
    /// messages lost with a dead connection and messages published while no connection was
    /// up. Messages published after the last one received are not counted until the next one
    /// arrives.
    pub missed: u64,
}

/// The counting actor a [`Subscription`] subscribes in front of its subscriber.
struct GapCounter<A: RemoteActor + Handler<Published>> {
    topic: String,
    counter: MissedCounter,
    status: std::sync::Arc<watch::Sender<SubscriptionStatus>>,
    /// The subscriber's address when it lives here (delivered through its mailbox, in order);
    /// otherwise `subscriber` is sent to one way, in order on its connection.
    local: Option<Addr<A>>,
    subscriber: ActorRef<A>,
}

impl<A: RemoteActor + Handler<Published>> Actor for GapCounter<A> {
    type Context = Context<Self>;
}

impl<A: RemoteActor + Handler<Published>> RemoteActor for GapCounter<A> {
    const NAME: &'static str = "netref_actors.SubscriptionCounter";
}

impl<A> Handler<Published> for GapCounter<A>
where
    A: RemoteActor + Handler<Published>,
    A::Context: actix::dev::ToEnvelope<A, Published>,
{
    type Result = ();

    fn handle(&mut self, message: Published, _: &mut Context<Self>) {
        let missed = self.counter.observe(&message);
        if missed > 0 {
            warn!(topic = %self.topic, missed, seq = message.seq, "a subscription missed messages");
        }
        let (received, total) = (self.counter.received(), self.counter.missed());
        self.status.send_modify(|s| {
            s.received = received;
            s.missed = total;
        });
        match &self.local {
            Some(addr) => addr.do_send(message),
            None => {
                if let Err(error) = self.subscriber.do_send(message) {
                    warn!(topic = %self.topic, %error, "cannot pass a message on to the subscriber");
                }
            }
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic)
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl Subscription {
    /// Subscribes `subscriber` to `topic` at the broker the peer of `handle` exports under
    /// `broker`, now and again after every reconnection of `handle`. Fails if the first
    /// subscription fails (or the broker refuses it: the subscriber's connection closed).
    ///
    /// Call it inside an actix system: it starts the counting actor that stands in front of
    /// `subscriber` (it counts the gaps in [`Published::seq`] for
    /// [`SubscriptionStatus::missed`] and passes every message on, in order) and a task that
    /// lives as long as the `Subscription`.
    ///
    /// ```no_run
    /// # use actix::prelude::*;
    /// # use netref_actors::pubsub::{expose_subscriber, Published, Subscription};
    /// # struct Printer;
    /// # impl Actor for Printer { type Context = Context<Self>; }
    /// # impl netref::RemoteActor for Printer { const NAME: &'static str = "demo.Printer"; }
    /// # impl Handler<Published> for Printer { type Result = (); fn handle(&mut self, _: Published, _: &mut Context<Self>) {} }
    /// # async fn demo() -> Result<(), netref::Error> {
    /// let handle = netref::connect("127.0.0.1:18900").reconnect(netref::ReconnectPolicy::default()).await?;
    /// let printer = expose_subscriber(Printer.start());
    /// let news = Subscription::start(&handle, "broker", "news", &printer).await?;
    /// // The broker's node restarts: `news` subscribes `printer` again on the new connection.
    /// # drop(news);
    /// # Ok(()) }
    /// ```
    pub async fn start<A>(
        handle: &Reconnecting,
        broker: &str,
        topic: impl Into<String>,
        subscriber: &ActorRef<A>,
    ) -> Result<Subscription, Error>
    where
        A: RemoteActor + Handler<Published>,
        A::Context: actix::dev::ToEnvelope<A, Published>,
    {
        let topic = topic.into();
        let broker: ActorRef<Broker> = handle.lookup_actor(broker).await?;
        // Events first: a reconnection during the first subscription is not missed.
        let mut events = handle.events();
        let (status_tx, status) = watch::channel(SubscriptionStatus::default());
        let status_tx = std::sync::Arc::new(status_tx);
        let counting = GapCounter {
            topic: topic.clone(),
            counter: MissedCounter::new(),
            status: status_tx.clone(),
            local: subscriber.local_addr(),
            subscriber: subscriber.clone(),
        };
        let counting = expose_subscriber(counting.start());
        let subscribe = {
            let (broker, topic, subscriber) = (broker.clone(), topic.clone(), counting.clone());
            move || {
                let (broker, message) = (broker.clone(), Subscribe::new(topic.clone(), &subscriber));
                async move {
                    let connection = broker.netref().connection().map(|peer| peer.id());
                    match broker.send(message).await {
                        Ok(true) => Ok(connection),
                        Ok(false) => Err(Error::ConnectionClosed(
                            "the broker refused the subscription (the subscriber's connection is closed)".into(),
                        )),
                        Err(e) => Err(e),
                    }
                }
            }
        };
        let connection = subscribe().await?;
        status_tx.send_modify(|s| {
            s.subscribed = true;
            s.subscriptions = 1;
            s.connection = connection;
        });
        let task_topic = topic.clone();
        let task = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let peer = match event {
                    ConnectionEvent::Connected { peer } | ConnectionEvent::Reconnected { peer, .. } => peer,
                    ConnectionEvent::Lost { .. } => {
                        status_tx.send_modify(|s| s.subscribed = false);
                        continue;
                    }
                    _ => continue,
                };
                if status_tx.borrow().connection == Some(peer.id()) {
                    continue;
                }
                match subscribe().await {
                    Ok(connection) => {
                        debug!(topic = %task_topic, ?connection, "subscribed again after a reconnection");
                        status_tx.send_modify(|s| {
                            s.subscribed = true;
                            s.subscriptions += 1;
                            s.connection = connection;
                            s.last_error = None;
                        });
                    }
                    Err(error) => {
                        warn!(topic = %task_topic, %error, "cannot subscribe again after a reconnection");
                        status_tx.send_modify(|s| {
                            s.subscribed = false;
                            s.last_error = Some(error);
                        });
                    }
                }
            }
            status_tx.send_modify(|s| s.subscribed = false);
        });
        Ok(Subscription { topic, status, task, broker, subscriber: counting.netref().clone() })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The current status.
    pub fn status(&self) -> SubscriptionStatus {
        self.status.borrow().clone()
    }

    /// Resolves once `received + missed` (see [`SubscriptionStatus`]) reaches `n`, or when the
    /// subscription ended: everything up to the `n`-th message since the first one received
    /// is accounted for. Wrap it in a timeout.
    pub async fn accounted(&self, n: u64) {
        let mut status = self.status.clone();
        let _ = status.wait_for(|s| s.received + s.missed >= n).await;
    }

    /// Resolves once the subscriber has been subscribed `n` times in all (the first
    /// subscription counts 1, each reconnection one more), or when the subscription ended.
    /// Wrap it in a timeout.
    pub async fn subscriptions(&self, n: u64) {
        let mut status = self.status.clone();
        let _ = status.wait_for(|s| s.subscriptions >= n).await;
    }

    /// Stops subscribing again and unsubscribes; `true` if the broker had the subscriber.
    pub async fn cancel(self) -> Result<bool, Error> {
        self.task.abort();
        let message = Unsubscribe { topic: self.topic.clone(), subscriber: self.subscriber.clone() };
        self.broker.send(message).await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}
