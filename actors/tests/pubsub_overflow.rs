//! Guards the broker's bound on slow subscribers: a subscriber whose connection stops taking
//! messages gets a queue of at most `max_queued` on the broker; past it each `Overflow` policy
//! does what it says — `DropOldest` keeps the newest, `DropNewest` keeps the oldest, both count
//! every drop for the publisher (`Delivery::dropped`) and for the subscriber (`Published::missed`
//! on its next message, so received + missed = published); `Disconnect` drops the slow
//! subscription. Each overflow episode is one warning in the log. A healthy subscriber of the
//! same topic gets everything, in order, throughout.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use actix::prelude::*;
use common::wait_until;
use netref::{prelude::*, ActorRef, RemoteActor};
use netref_actors::pubsub::{
    expose_subscriber, Broker, BrokerStats, Delivery, Overflow, Publish, Published, Stats, Subscribe,
};
use tokio::sync::Semaphore;
use tracing_subscriber::{layer::SubscriberExt, Layer};

const T: Duration = Duration::from_secs(10);
const MESSAGES: i64 = 200;
const MAX_QUEUED: usize = 8;
/// Large enough that a few messages fill the slow connection's buffers.
const PAYLOAD: usize = 16 << 10;

type Inbox = Arc<Mutex<Vec<(i64, u64)>>>;

/// The messages of the warnings logged while it is installed (on this test's thread).
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        if *event.metadata().level() == tracing::Level::WARN {
            let mut message = Message(String::new());
            event.record(&mut message);
            self.0.lock().unwrap().push(message.0);
        }
    }
}

impl Warnings {
    /// How many warnings were logged whose message contains `text`.
    fn count(&self, text: &str) -> usize {
        self.0.lock().unwrap().iter().filter(|m| m.contains(text)).count()
    }
}

/// A subscriber that records each message's number and `missed` count, each once the test lets
/// it (one permit of `gate` per message).
struct Gated {
    inbox: Inbox,
    gate: Arc<Semaphore>,
}

impl Actor for Gated {
    type Context = Context<Self>;
}

impl RemoteActor for Gated {
    const NAME: &'static str = "test.Gated";
}

impl Handler<Published> for Gated {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, msg: Published, _: &mut Context<Self>) -> Self::Result {
        let (inbox, gate) = (self.inbox.clone(), self.gate.clone());
        Box::pin(async move {
            gate.acquire().await.expect("the gate stays open").forget();
            let (n, _text): (i64, String) = msg.decode().expect("a numbered payload");
            inbox.lock().unwrap().push((n, msg.missed));
        })
    }
}

/// A subscriber on a connection of its own, and what it received; `gate` holds its handling.
async fn subscriber(broker: &Addr<Broker>, gate: Arc<Semaphore>, slow: bool) -> (Peer, ActorRef<Gated>, Inbox) {
    let service = Service::void().export("broker", Broker::export(broker.clone()));
    // The slow one's connection: the broker side holds little unwritten, and the subscriber's
    // side serves one message at a time, so it stops reading while its actor waits.
    let (broker_side, subscriber_side) = if slow {
        netref::connect_pair_with(
            service,
            Config::default().max_write_buffer(4 << 10).max_queued_notifications(2),
            Service::void(),
            Config::default().max_concurrent_requests(1),
        )
    } else {
        netref::connect_pair(service, Service::void())
    };
    let inbox = Inbox::default();
    let actor = expose_subscriber(Gated { inbox: inbox.clone(), gate }.start());
    let remote: ActorRef<Broker> = subscriber_side.lookup_actor("broker").await.unwrap();
    assert!(remote.send(Subscribe::new("t", &actor)).await.unwrap());
    (broker_side, actor, inbox)
}

fn publish(n: i64) -> Publish {
    Publish::new("t", &(n, "x".repeat(PAYLOAD))).unwrap()
}

/// Publishes `MESSAGES` messages, checking each reply accounts for both subscribers and that
/// the broker never holds more than `MAX_QUEUED` for the slow one; returns the replies.
async fn flood(broker: &Addr<Broker>) -> Vec<Delivery> {
    let mut replies = Vec::new();
    for n in 0..MESSAGES {
        let reply = broker.send(publish(n)).await.unwrap();
        assert_eq!(
            reply.delivered + reply.queued + reply.dropped + reply.disconnected + reply.closed,
            2 - usize::from(replies.iter().any(|r: &Delivery| r.disconnected > 0)),
            "every subscriber is in one count: {reply:?}"
        );
        let stats: BrokerStats = broker.send(Stats).await.unwrap();
        assert!(stats.queued <= MAX_QUEUED, "the broker holds {} for one subscriber", stats.queued);
        replies.push(reply);
    }
    replies
}

fn numbers(inbox: &Inbox) -> Vec<i64> {
    inbox.lock().unwrap().iter().map(|(n, _)| *n).collect()
}

/// Runs the flood with `overflow`; returns the replies, the broker, and the slow and healthy
/// inboxes once the slow subscriber caught up and got a last marker message.
async fn run(overflow: Overflow) -> (Vec<Delivery>, Addr<Broker>, Inbox, Inbox, Warnings) {
    let warnings = Warnings::default();
    let _log = tracing::subscriber::set_default(tracing_subscriber::registry().with(warnings.clone()));
    let broker = Broker::new().max_queued(MAX_QUEUED).overflow(overflow).start();
    let slow_gate = Arc::new(Semaphore::new(0));
    let open = Arc::new(Semaphore::new(Semaphore::MAX_PERMITS));
    let (_slow_conn, _slow, slow_inbox) = subscriber(&broker, slow_gate.clone(), true).await;
    let (_healthy_conn, _healthy, healthy_inbox) = subscriber(&broker, open, false).await;
    let replies = flood(&broker).await;
    wait_until(T, "the healthy subscriber gets every message", || async {
        healthy_inbox.lock().unwrap().len() == MESSAGES as usize
    })
    .await;
    assert_eq!(numbers(&healthy_inbox), (0..MESSAGES).collect::<Vec<_>>(), "in order, nothing lost");
    assert!(replies.iter().any(|r| r.dropped + r.disconnected > 0), "the slow subscriber overflowed: {replies:?}");

    // The slow subscriber reads again and catches up; a last message carries what was dropped
    // since its previous one.
    slow_gate.add_permits(Semaphore::MAX_PERMITS / 2);
    wait_until(T, "the broker's queue drains", || async { broker.send(Stats).await.unwrap().queued == 0 }).await;
    broker.send(publish(MESSAGES)).await.unwrap();
    wait_until(T, "the healthy subscriber gets the marker", || async {
        numbers(&healthy_inbox).last() == Some(&MESSAGES)
    })
    .await;
    (replies, broker, slow_inbox, healthy_inbox, warnings)
}

/// What the drop policies share: in order, received + missed = published, and the counts the
/// publisher and the broker saw agree with what the subscriber was told.
async fn check_drops(replies: &[Delivery], broker: &Addr<Broker>, slow: &Inbox) -> Vec<i64> {
    wait_until(T, "the slow subscriber gets the marker", || async { numbers(slow).last() == Some(&MESSAGES) }).await;
    let got = numbers(slow);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in publish order: {got:?}");
    let missed: u64 = slow.lock().unwrap().iter().map(|(_, m)| m).sum();
    assert_eq!(got.len() as u64 + missed, MESSAGES as u64 + 1, "received {got:?}, missed {missed}");
    let dropped: usize = replies.iter().map(|r| r.dropped).sum();
    assert_eq!(dropped as u64, missed, "the publisher was told of every drop");
    let stats = broker.send(Stats).await.unwrap();
    assert_eq!(stats.overflow_dropped, missed, "{stats:?}");
    assert_eq!(stats.subscriptions, 2, "nobody was dropped: {stats:?}");
    got
}

#[actix_rt::test]
async fn drop_oldest_keeps_the_newest_and_counts_every_drop() {
    let (replies, broker, slow, _, warnings) = run(Overflow::DropOldest).await;
    let got = check_drops(&replies, &broker, &slow).await;
    assert_eq!(warnings.count("dropping messages"), 1, "one warning for the one overflow episode");
    assert!(got.contains(&(MESSAGES - 1)), "the newest message was kept: {got:?}");
}

#[actix_rt::test]
async fn drop_newest_keeps_the_oldest_and_counts_every_drop() {
    let (replies, broker, slow, _, warnings) = run(Overflow::DropNewest).await;
    let got = check_drops(&replies, &broker, &slow).await;
    assert_eq!(warnings.count("dropping messages"), 1, "one warning for the one overflow episode");
    assert!(!got.contains(&(MESSAGES - 1)), "the newest message was dropped: {got:?}");
    let first_gap = got.windows(2).position(|w| w[1] != w[0] + 1).expect("a gap");
    assert!(first_gap >= MAX_QUEUED, "the oldest were kept: {got:?}");
}

#[actix_rt::test]
async fn disconnect_drops_the_slow_subscription_and_nothing_else() {
    let (replies, broker, slow, healthy, warnings) = run(Overflow::Disconnect).await;
    assert_eq!(warnings.count("unsubscribed"), 1, "the disconnect is logged");
    assert_eq!(replies.iter().map(|r| r.disconnected).sum::<usize>(), 1, "{replies:?}");
    assert_eq!(replies.iter().map(|r| r.dropped).sum::<usize>(), 0, "nothing dropped short of it");
    let stats = broker.send(Stats).await.unwrap();
    assert_eq!((stats.subscriptions, stats.slow_disconnected, stats.queued), (1, 1, 0), "{stats:?}");
    assert_eq!(numbers(&healthy).len() as i64, MESSAGES + 1);
    // What the slow one got before it was dropped came in order, without gaps, and it got
    // nothing after (the marker went to the healthy one only).
    let got = numbers(&slow);
    assert_eq!(got, (0..got.len() as i64).collect::<Vec<_>>());
    assert!(!got.contains(&MESSAGES));
}
