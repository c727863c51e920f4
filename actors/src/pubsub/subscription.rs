//! [`Subscription`]: a subscription made through a [`Reconnecting`] handle, which subscribes
//! again on each new connection to the broker's node.
//!
//! A broker drops the subscribers of a connection that ends, so after a reconnection nothing
//! is delivered until the subscriber subscribes again; a `Subscription` does that by itself,
//! as soon as the handle reports the new connection. It never retries on a connection that
//! is up (a refused subscription stays refused, and says why in its status), and messages
//! published while no connection was up are not delivered (the broker keeps no backlog).

use std::fmt;

use actix::Handler;
use futures::StreamExt;
use netref::{ActorRef, ConnectionEvent, Error, NetRef, Reconnecting, RemoteActor};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::{Broker, Published, Subscribe, Unsubscribe};

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
    /// Runs a task on the caller's tokio runtime (an actix or tokio program) while it lives.
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
    {
        let topic = topic.into();
        let broker: ActorRef<Broker> = handle.lookup_actor(broker).await?;
        // Events first: a reconnection during the first subscription is not missed.
        let mut events = handle.events();
        let (status_tx, status) = watch::channel(SubscriptionStatus::default());
        let subscribe = {
            let (broker, topic, subscriber) = (broker.clone(), topic.clone(), subscriber.clone());
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
        Ok(Subscription { topic, status, task, broker, subscriber: subscriber.netref().clone() })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The current status.
    pub fn status(&self) -> SubscriptionStatus {
        self.status.borrow().clone()
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
