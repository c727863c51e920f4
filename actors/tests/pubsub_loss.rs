//! Guards that PubSub loses nothing silently: a subscriber's connection that dies with
//! messages the broker accepted for it but never wrote makes the broker count them
//! (`BrokerStats::lost_at_disconnect` = its queue + the connection's `Peer::unsent_one_way`,
//! and a warning); a reconnecting `Subscription` counts, from the gaps in `Published::seq`,
//! exactly what it did not receive across an outage (published − received); `MissedCounter`
//! reads the numbering as documented.

mod common;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use actix::prelude::*;
use common::wait_until;
use netref::{prelude::*, ActorRef, RemoteActor, Server, Value};
use netref_actors::pubsub::{
    expose_subscriber, Broker, MissedCounter, Overflow, Publish, Published, Stats, Subscribe, Subscription,
};
use tokio::sync::Semaphore;
use tracing_subscriber::{layer::SubscriberExt, Layer};

const T: Duration = Duration::from_secs(10);

type Inbox = Arc<Mutex<Vec<i64>>>;

/// A subscriber that records each message's number, each once the test lets it (one permit
/// of `gate` per message).
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
            inbox.lock().unwrap().push(n);
        })
    }
}

/// Counts the warnings whose message contains a text (on this test's thread).
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

#[actix_rt::test]
async fn a_subscriber_connection_that_dies_with_messages_unsent_makes_the_broker_count_them_lost() {
    const MESSAGES: i64 = 100;
    let warnings = Warnings::default();
    let _log = tracing::subscriber::set_default(tracing_subscriber::registry().with(warnings.clone()));
    let broker = Broker::new().max_queued(8).overflow(Overflow::DropNewest).start();
    let service = Service::void().export("broker", Broker::export(broker.clone()));
    // The broker's side writes little at a time and holds up to 16 one-way calls; the
    // subscriber's side serves one message at a time, so it stops reading while its actor
    // waits at the gate, which stays closed.
    let (broker_side, subscriber_side) = netref::connect_pair_with(
        service,
        Config::default().max_write_buffer(4 << 10).max_queued_notifications(16),
        Service::void(),
        Config::default().max_concurrent_requests(1),
    );
    let inbox = Inbox::default();
    let gate = Arc::new(Semaphore::new(0));
    let actor = expose_subscriber(Gated { inbox: inbox.clone(), gate: gate.clone() }.start());
    let remote: ActorRef<Broker> = subscriber_side.lookup_actor("broker").await.unwrap();
    assert!(remote.send(Subscribe::new("t", &actor)).await.unwrap());

    let (mut delivered, mut queued, mut dropped) = (0, 0, 0);
    for n in 0..MESSAGES {
        let reply = broker.send(Publish::new("t", &(n, "x".repeat(16 << 10))).unwrap()).await.unwrap();
        delivered += reply.delivered;
        queued += reply.queued;
        dropped += reply.dropped;
    }
    assert_eq!((delivered + queued + dropped) as i64, MESSAGES, "every publish reached the one subscriber");
    assert!(dropped > 0, "the connection and the broker's queue filled up: {delivered} {queued} {dropped}");
    let held = broker.send(Stats).await.unwrap().queued;
    assert_eq!(held, 8, "the broker's queue is full");

    // The connection dies with calls accepted and not written; the subscriber never read more
    // than its one message in hand.
    broker_side.close_within("the test closes it", Duration::ZERO).await;
    let unsent = broker_side.unsent_one_way();
    assert!(unsent > 0, "one-way calls were left unwritten");
    wait_until(T, "the broker drops the subscriber", || async { broker.send(Stats).await.unwrap().subscriptions == 0 })
        .await;
    let stats = broker.send(Stats).await.unwrap();
    assert_eq!(stats.lost_at_disconnect, unsent + held as u64, "its queue and the unwritten calls: {stats:?}");
    assert!(
        stats.lost_at_disconnect <= (delivered + queued) as u64,
        "only what was counted delivered or queued can be lost: {stats:?}"
    );
    assert_eq!(stats.overflow_dropped, dropped as u64);
    // The connection's end is logged once with its unwritten calls; the queue may be counted
    // there or, if the queued message waiting for room failed first, in a warning of its own.
    let logged = |text: &str| warnings.0.lock().unwrap().iter().filter(|m| m.contains(text)).count();
    assert_eq!(logged("connection ended"), 1, "{:?}", warnings.0.lock().unwrap());
    assert!(logged("are lost") <= 2, "{:?}", warnings.0.lock().unwrap());
    gate.add_permits(MESSAGES as usize);
    assert!(inbox.lock().unwrap().len() as u64 <= (delivered + queued) as u64 - stats.lost_at_disconnect);
}

struct Collector(Inbox);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl RemoteActor for Collector {
    const NAME: &'static str = "test.Collector";
}

impl Handler<Published> for Collector {
    type Result = ();
    fn handle(&mut self, msg: Published, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(msg.decode::<i64>().expect("an integer payload"));
    }
}

#[actix_rt::test]
async fn a_subscription_counts_what_it_did_not_receive_across_an_outage() {
    let broker = Broker::new().start();
    let service = Service::void().export("broker", Broker::export(broker.clone()));
    let server = Server::builder(service).bind_tcp("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let policy = ReconnectPolicy::exponential(Duration::from_millis(10), Duration::from_millis(100));
    let handle = netref::connect(addr.as_str()).reconnect(policy).await.unwrap();
    let inbox = Inbox::default();
    let collector: ActorRef<Collector> = expose_subscriber(Collector(inbox.clone()).start());
    let subscription = Subscription::start(&handle, "broker", "news", &collector).await.unwrap();
    let publish = |n: i64| {
        let broker = broker.clone();
        async move { broker.send(Publish::new("news", &n).unwrap()).await.unwrap() }
    };
    for n in 1..=3 {
        assert_eq!(publish(n).await.delivered, 1);
    }
    tokio::time::timeout(T, subscription.accounted(3)).await.expect("the first three");

    // The broker's node drops the connection; what is published until the subscription is
    // back reaches nobody.
    for peer in server.peers() {
        peer.close_within("the test drops it", Duration::ZERO).await;
    }
    wait_until(T, "the broker drops the subscriber", || async { broker.send(Stats).await.unwrap().subscriptions == 0 })
        .await;
    for n in 4..=10 {
        assert_eq!(publish(n).await.reached(), 0);
    }
    tokio::time::timeout(T, subscription.subscriptions(2)).await.expect("subscribed again");
    for n in 11..=13 {
        assert_eq!(publish(n).await.delivered, 1);
    }
    tokio::time::timeout(T, subscription.accounted(13)).await.expect("all thirteen accounted for");
    wait_until(T, "the collector has what was passed on", || async { inbox.lock().unwrap().len() == 6 }).await;
    let status = subscription.status();
    assert_eq!(*inbox.lock().unwrap(), [1, 2, 3, 11, 12, 13], "in order, none twice");
    assert_eq!((status.received, status.missed), (6, 7), "published − received = missed: {status:?}");
    assert_eq!(status.received + status.missed, 13);

    assert!(subscription.cancel().await.unwrap(), "cancel unsubscribes the counting actor");
    assert_eq!(broker.send(Stats).await.unwrap().subscriptions, 0);
    handle.close().await;
    server.shutdown(Duration::ZERO).await;
}

fn numbered(seq: u64, missed: u64) -> Published {
    Published { topic: "t".into(), payload: Value::None, missed, seq }
}

#[test]
fn missed_counter_counts_gaps_restarts_with_the_broker_and_falls_back_to_missed() {
    let mut counter = MissedCounter::new();
    assert_eq!(counter.observe(&numbered(5, 0)), 0, "counting starts at the first message");
    assert_eq!(counter.observe(&numbered(6, 0)), 0);
    assert_eq!(counter.observe(&numbered(9, 1)), 2, "the gap, which includes the broker's own drops");
    assert_eq!(counter.observe(&numbered(2, 0)), 0, "a restarted broker numbers from 1 again");
    assert_eq!(counter.observe(&numbered(4, 0)), 1);
    assert_eq!(counter.observe(&numbered(0, 3)), 3, "an unnumbered message: the broker's count");
    assert_eq!((counter.received(), counter.missed(), counter.last_seq()), (6, 6, Some(4)));
}
