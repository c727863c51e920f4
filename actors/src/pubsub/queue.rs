//! One subscription's delivery state inside a [`Broker`](super::Broker): the subscriber, the
//! bounded queue of messages waiting for its connection to take them, and the bookkeeping of the
//! [`Overflow`] policy applied when that queue is full.
//!
//! A message goes straight to the subscriber's connection while it takes one-way calls
//! (`NetRef::notify_method`); once the connection refuses with back-pressure, messages queue
//! here, in order, and the first of them waits for room (`notify_method_when_ready`) while the
//! broker goes on. It must never block the broker, never hold more than its limit, and never
//! drop a message without counting it (for the publisher, the subscriber's next delivery and
//! the log).

use std::{collections::VecDeque, sync::Arc};

use netref::{Error, NetRef, RemoteMessage, Value};
use serde::{Deserialize, Serialize};

use super::Published;

/// A one-way call waiting for room in its connection (`notify_method_when_ready`).
pub(super) type OneWayWait = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), Error>> + Send>>;

/// What a broker does with a message for a subscriber whose queue is full (the subscriber
/// reads slower than messages are published).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the slow subscription: the subscriber gets nothing more on that topic until it
    /// subscribes again (what is already queued for it is dropped with it). Logged; counted in
    /// [`Delivery::disconnected`](super::Delivery::disconnected) and
    /// [`BrokerStats::slow_disconnected`](super::BrokerStats::slow_disconnected).
    Disconnect,
    /// Keep what is queued, drop the new message. The subscriber learns the count in
    /// [`Published::missed`]; the publisher in [`Delivery::dropped`](super::Delivery::dropped).
    DropNewest,
    /// Drop the oldest queued message to make room for the new one (the subscriber keeps up
    /// with the latest). Counted as for `DropNewest`.
    #[default]
    DropOldest,
}

/// A published message, shared by every subscription it is queued for.
#[derive(Debug)]
pub(super) struct Publication {
    pub(super) topic: String,
    pub(super) payload: Value,
    /// Its number on its topic at this broker ([`Published::seq`]).
    pub(super) seq: u64,
}

/// [`Published`] as it goes out, borrowing the shared message: the same fields, so the same
/// shape on the wire.
#[derive(Serialize)]
struct PublishedOut<'a> {
    topic: &'a str,
    payload: &'a Value,
    missed: u64,
    seq: u64,
}

/// What became of a message offered to a subscription.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Offered {
    /// Handed to the subscriber's connection.
    Sent,
    /// Queued behind what the connection has not taken yet.
    Queued,
    /// Dropped by the overflow policy (this message or, with `DropOldest`, an older one).
    Dropped,
    /// The queue is full and the policy is `Disconnect`: the subscription must go.
    TooSlow,
    /// The subscriber's connection is closed: the subscription must go.
    Closed,
}

/// One subscriber of one topic, with its queue.
#[derive(Debug)]
pub(super) struct SubscriberQueue {
    pub(super) id: u64,
    pub(super) subscriber: NetRef,
    queue: VecDeque<Arc<Publication>>,
    /// A message is waiting for room in the connection (the head of the queue, taken out).
    waiting: bool,
    /// Messages dropped since the last one sent: the next one sent carries the count.
    missed: u64,
    /// Messages dropped in the current overflow episode (from the first drop until the queue
    /// is empty again); one warning per episode.
    episode_dropped: u64,
}

impl SubscriberQueue {
    pub(super) fn new(id: u64, subscriber: NetRef) -> Self {
        SubscriberQueue { id, subscriber, queue: VecDeque::new(), waiting: false, missed: 0, episode_dropped: 0 }
    }

    /// Messages held for this subscriber (queued, and the one waiting for room).
    pub(super) fn held(&self) -> usize {
        self.queue.len() + usize::from(self.waiting)
    }

    /// Whether the queue holds messages that must go out first.
    fn backed_up(&self) -> bool {
        self.waiting || !self.queue.is_empty()
    }

    /// Sends `message` now, if the connection takes it.
    fn send_now(&mut self, message: &Publication) -> Result<(), Error> {
        let out =
            PublishedOut { topic: &message.topic, payload: &message.payload, missed: self.missed, seq: message.seq };
        self.subscriber.notify_method(Published::NAME, (out,))?;
        self.missed = 0;
        Ok(())
    }

    /// Offers `message` to this subscription: sent at once, queued (at most `limit` held), or
    /// handled by `overflow`. After [`Offered::Queued`] call
    /// [`wait_for_room`](SubscriberQueue::wait_for_room).
    pub(super) fn offer(&mut self, message: Arc<Publication>, limit: usize, overflow: Overflow) -> Offered {
        if !self.backed_up() {
            return match self.send_now(&message) {
                Ok(()) => Offered::Sent,
                Err(Error::Backpressure(_)) => {
                    self.queue.push_back(message);
                    Offered::Queued
                }
                Err(Error::ConnectionClosed(_)) => Offered::Closed,
                Err(e) => {
                    tracing::warn!(topic = %message.topic, subscriber = ?self.subscriber, error = %e, "cannot deliver a message; dropped");
                    self.missed += 1;
                    Offered::Dropped
                }
            };
        }
        if self.held() < limit.max(1) {
            self.queue.push_back(message);
            return Offered::Queued;
        }
        match overflow {
            Overflow::Disconnect => {
                tracing::warn!(
                    topic = %message.topic,
                    subscriber = ?self.subscriber,
                    limit,
                    "a subscriber reads too slowly: its queue is full; unsubscribed (Overflow::Disconnect)"
                );
                Offered::TooSlow
            }
            Overflow::DropNewest => {
                self.dropped(&message.topic, limit, overflow);
                Offered::Dropped
            }
            Overflow::DropOldest => {
                // The oldest queued one makes room; when the only message held is the one
                // already waiting for room, the new one is dropped instead.
                if self.queue.pop_front().is_some() {
                    self.queue.push_back(message.clone());
                }
                self.dropped(&message.topic, limit, overflow);
                Offered::Dropped
            }
        }
    }

    /// Counts one message dropped by `overflow`; the first drop of an episode is logged.
    fn dropped(&mut self, topic: &str, limit: usize, overflow: Overflow) {
        self.missed += 1;
        if self.episode_dropped == 0 {
            tracing::warn!(
                topic,
                subscriber = ?self.subscriber,
                limit,
                ?overflow,
                "a subscriber reads too slowly: its queue is full; dropping messages until it catches up"
            );
        }
        self.episode_dropped += 1;
    }

    /// Takes the head of the queue out and returns a future that hands it to the connection once
    /// it has room (`None` when nothing waits to go out, or something already waits for room).
    pub(super) fn wait_for_room(&mut self) -> Option<OneWayWait> {
        if self.waiting {
            return None;
        }
        let message = self.queue.pop_front()?;
        self.waiting = true;
        let out =
            PublishedOut { topic: &message.topic, payload: &message.payload, missed: self.missed, seq: message.seq };
        self.missed = 0;
        Some(self.subscriber.notify_method_when_ready(Published::NAME, (out,)))
    }

    /// The message that waited for room went out: sends what queued behind it while the
    /// connection takes it. Returns how many were sent, or `Err` if the connection is closed.
    pub(super) fn resume(&mut self) -> Result<usize, Error> {
        self.waiting = false;
        let mut sent = 0;
        while let Some(message) = self.queue.front().cloned() {
            match self.send_now(&message) {
                Ok(()) => {
                    self.queue.pop_front();
                    sent += 1;
                }
                Err(Error::Backpressure(_)) => return Ok(sent),
                Err(e @ Error::ConnectionClosed(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(topic = %message.topic, subscriber = ?self.subscriber, error = %e, "cannot deliver a message; dropped");
                    self.queue.pop_front();
                    self.missed += 1;
                }
            }
        }
        if self.episode_dropped > 0 {
            tracing::info!(
                subscriber = ?self.subscriber,
                dropped = self.episode_dropped,
                "a slow subscriber caught up; messages were dropped meanwhile"
            );
            self.episode_dropped = 0;
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use netref::{from_value, to_value};

    use super::*;

    /// `Published` as brokers and subscribers without `missed` and `seq` know it.
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct PublishedBefore {
        topic: String,
        payload: Value,
    }

    #[test]
    fn published_with_missed_and_seq_is_read_by_old_subscribers_and_old_messages_read_as_none_missed_unnumbered() {
        let out = PublishedOut { topic: "t", payload: &Value::Int(7), missed: 3, seq: 9 };
        let sent = to_value(&out).unwrap();
        let new: Published = from_value(sent.clone()).unwrap();
        assert_eq!((new.topic.as_str(), new.missed, new.seq), ("t", 3, 9));
        let old: PublishedBefore = from_value(sent).unwrap();
        assert_eq!(old, PublishedBefore { topic: "t".into(), payload: Value::Int(7) });
        let from_an_old_broker: Published =
            from_value(to_value(&PublishedBefore { topic: "t".into(), payload: Value::Int(7) }).unwrap()).unwrap();
        assert_eq!((from_an_old_broker.missed, from_an_old_broker.seq), (0, 0));
    }
}
