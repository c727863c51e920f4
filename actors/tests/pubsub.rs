//! Guards `netref_actors::pubsub`: subscribers on different connections receive what is
//! published, each in publish order; unsubscribe stops deliveries to that subscriber only; a
//! subscriber whose connection closed is dropped (in the background, and on the spot by a
//! publish, which then counts only live subscribers and never fails); two brokers on two nodes,
//! linked, deliver each other's messages exactly once (no loops, no echoes), refuse duplicate
//! and self links, and drop the link when its connection ends. Each test runs over the
//! in-memory transport and TCP on loopback.

mod common;

use common::{connect, wait_until, Transport};

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use actix::prelude::*;
use netref::{prelude::*, ActorRef, RemoteActor};
use netref_actors::pubsub::{
    expose_subscriber, link, Broker, BrokerStats, Link, Publish, Published, Stats, Subscribe, Topics, Unsubscribe,
};

const T: Duration = Duration::from_secs(5);

type Inbox = Arc<Mutex<Vec<(String, i64)>>>;

/// A subscriber that records what it receives.
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
        let value = msg.decode::<i64>().expect("an integer payload");
        self.0.lock().unwrap().push((msg.topic, value));
    }
}

/// A collector, exposed as a subscriber, and its inbox.
fn collector() -> (ActorRef<Collector>, Inbox) {
    let inbox = Inbox::default();
    (expose_subscriber(Collector(inbox.clone()).start()), inbox)
}

fn values(inbox: &Inbox, topic: &str) -> Vec<i64> {
    inbox.lock().unwrap().iter().filter(|(t, _)| t == topic).map(|(_, v)| *v).collect()
}

fn len(inbox: &Inbox) -> usize {
    inbox.lock().unwrap().len()
}

fn serve(broker: &Addr<Broker>) -> Service {
    Service::void().export("broker", Broker::export(broker.clone()))
}

/// A client connected to the node serving `broker`, with its `ActorRef<Broker>`.
async fn client_of(t: Transport, broker: &Addr<Broker>) -> (Peer, Peer, ActorRef<Broker>) {
    let (server, client) = connect(t, serve(broker)).await;
    let remote = client.lookup_actor::<Broker>("broker").await.unwrap();
    (server, client, remote)
}

async fn stats(broker: &Addr<Broker>) -> BrokerStats {
    broker.send(Stats).await.unwrap()
}

fn publish(topic: &str, v: i64) -> Publish {
    Publish::new(topic, &v).unwrap()
}

async fn two_subscribers_receive_in_order_and_unsubscribe_works(t: Transport) {
    let broker = Broker::new().start();
    let (_s1, _c1, b1) = client_of(t, &broker).await;
    let (_s2, _c2, b2) = client_of(t, &broker).await;
    let (sub1, inbox1) = collector();
    let (sub2, inbox2) = collector();
    assert!(b1.send(Subscribe::new("news", &sub1)).await.unwrap());
    assert!(b2.send(Subscribe::new("news", &sub2)).await.unwrap());
    assert!(!b2.send(Subscribe::new("news", &sub2)).await.unwrap(), "a second subscription is refused");
    assert!(b2.send(Subscribe::new("other", &sub2)).await.unwrap());
    assert_eq!(b1.send(Topics).await.unwrap(), ["news", "other"]);

    // Published from one connection (one-way, then a last one awaited), delivered on both.
    for i in 0..199 {
        b1.do_send(publish("news", i)).unwrap();
    }
    assert_eq!(b1.send(publish("news", 199)).await.unwrap().delivered, 2);
    assert_eq!(b1.send(publish("nobody", 1)).await.unwrap().delivered, 0, "a topic without subscribers");
    wait_until(T, "both subscribers receive 200 messages", || async { len(&inbox1) == 200 && len(&inbox2) == 200 })
        .await;
    let expected: Vec<i64> = (0..200).collect();
    assert_eq!(values(&inbox1, "news"), expected, "in publish order");
    assert_eq!(values(&inbox2, "news"), expected, "in publish order");

    // Unsubscribed from "news", sub2 still gets "other": once the marker on "other" arrived,
    // a delivery on "news" published before it would have arrived too.
    assert!(b2.send(Unsubscribe::new("news", &sub2)).await.unwrap());
    assert!(!b2.send(Unsubscribe::new("news", &sub2)).await.unwrap(), "no longer subscribed");
    assert_eq!(b1.send(publish("news", 1000)).await.unwrap().delivered, 1);
    assert_eq!(b1.send(publish("other", -1)).await.unwrap().delivered, 1);
    wait_until(T, "the marker and the last message arrive", || async {
        values(&inbox2, "other") == [-1] && values(&inbox1, "news").last() == Some(&1000)
    })
    .await;
    assert_eq!(values(&inbox2, "news").len(), 200, "nothing on an unsubscribed topic");
    assert_eq!(stats(&broker).await.subscriptions, 2);
}

async fn a_subscriber_whose_connection_closed_is_dropped(t: Transport) {
    let broker = Broker::new().start();
    let (_s1, _c1, b1) = client_of(t, &broker).await;
    let (s2, c2, b2) = client_of(t, &broker).await;
    let (s3, c3, b3) = client_of(t, &broker).await;
    let (sub1, inbox1) = collector();
    let (sub2, _inbox2) = collector();
    let (sub3, _inbox3) = collector();
    b1.send(Subscribe::new("news", &sub1)).await.unwrap();
    b2.send(Subscribe::new("news", &sub2)).await.unwrap();
    b3.send(Subscribe::new("lonely", &sub3)).await.unwrap();
    assert_eq!(b1.send(publish("news", 1)).await.unwrap().delivered, 2);

    // In the background: the broker watches the connection; the topic goes with its subscriber.
    c3.close().await;
    wait_until(T, "the broker drops the subscriber of a closed connection", || async {
        stats(&broker).await.subscriptions == 2
    })
    .await;
    assert!(s3.is_closed());
    assert_eq!(b1.send(Topics).await.unwrap(), ["news"]);

    // On the spot: publishing once the broker's side knows the connection is closed counts only
    // the live subscriber and does not fail.
    c2.close().await;
    wait_until(T, "the broker's side of the connection is closed", || async { s2.is_closed() }).await;
    assert_eq!(b1.send(publish("news", 2)).await.unwrap().delivered, 1);
    for i in 3..=10 {
        assert_eq!(b1.send(publish("news", i)).await.unwrap().delivered, 1);
    }
    wait_until(T, "the live subscriber receives everything", || async { len(&inbox1) == 10 }).await;
    assert_eq!(values(&inbox1, "news"), (1..=10).collect::<Vec<_>>());
    let stats = stats(&broker).await;
    assert_eq!((stats.subscriptions, stats.topics, stats.dropped), (1, 1, 2), "{stats:?}");
}

async fn linked_brokers_deliver_across_nodes_exactly_once(t: Transport) {
    // Node 2 serves broker B; node 1 runs broker A and reaches B over one connection.
    let (addr_a, addr_b) = (Broker::new().start(), Broker::new().start());
    let (node2, node1, b_from_a) = client_of(t, &addr_b).await;
    let a = Broker::export(addr_a.clone()).into_ref();
    link(&a, &b_from_a).await.unwrap();
    link(&a, &b_from_a).await.unwrap(); // idempotent: already linked both ways
    let id_a = stats(&addr_a).await.id;
    assert!(!a.send(Link { broker: a.clone(), id: id_a }).await.unwrap(), "no self link");
    assert_eq!((stats(&addr_a).await.links, stats(&addr_b).await.links), (1, 1));

    // Subscribers: one on a client of each node, and one local to node 1.
    let (_s1, _c1, a_from_c1) = client_of(t, &addr_a).await;
    let (_s2, _c2, b_from_c2) = client_of(t, &addr_b).await;
    let (sub1, inbox1) = collector();
    let (sub2, inbox2) = collector();
    let (local, inbox_local) = collector();
    a_from_c1.send(Subscribe::new("t", &sub1)).await.unwrap();
    b_from_c2.send(Subscribe::new("t", &sub2)).await.unwrap();
    addr_a.send(Subscribe::new("t", &local)).await.unwrap();

    for i in 0..50 {
        assert_eq!(a_from_c1.send(publish("t", i)).await.unwrap().delivered, 2, "A's own subscribers");
        assert_eq!(b_from_c2.send(publish("t", 100 + i)).await.unwrap().delivered, 1, "B's own subscriber");
    }
    assert_eq!(a_from_c1.send(publish("t", -1)).await.unwrap().delivered, 2);
    let inboxes = [&inbox1, &inbox2, &inbox_local];
    wait_until(T, "every subscriber receives the 101 messages", || async { inboxes.iter().all(|i| len(i) == 101) })
        .await;
    for inbox in inboxes {
        let got = values(inbox, "t");
        let from_a: Vec<i64> = got.iter().copied().filter(|v| (0..100).contains(v)).collect();
        let from_b: Vec<i64> = got.iter().copied().filter(|v| *v >= 100).collect();
        assert_eq!(from_a, (0..50).collect::<Vec<_>>(), "each origin in order, exactly once");
        assert_eq!(from_b, (100..150).collect::<Vec<_>>(), "each origin in order, exactly once");
        assert_eq!(got.last(), Some(&-1));
    }
    // Nothing was forwarded back: each broker forwarded only what was published on it.
    let (sa, sb) = (stats(&addr_a).await, stats(&addr_b).await);
    assert_eq!((sa.forwarded_out, sa.forwarded_in), (51, 50), "{sa:?}");
    assert_eq!((sb.forwarded_out, sb.forwarded_in), (50, 51), "{sb:?}");

    // The link goes with its connection; each broker keeps serving its own subscribers.
    node1.close().await;
    wait_until(T, "both brokers drop the link", || async {
        stats(&addr_a).await.links == 0 && stats(&addr_b).await.links == 0 && node2.is_closed()
    })
    .await;
    assert_eq!(a_from_c1.send(publish("t", 7)).await.unwrap().delivered, 2);
    assert_eq!(b_from_c2.send(publish("t", 8)).await.unwrap().delivered, 1);
    wait_until(T, "local deliveries continue", || async {
        values(&inbox1, "t").last() == Some(&7) && values(&inbox2, "t").last() == Some(&8)
    })
    .await;
    assert_eq!(stats(&addr_a).await.forwarded_out, 51, "nothing forwarded on a dead link");
}

over_both_transports!(
    two_subscribers_receive_in_order_and_unsubscribe_works,
    a_subscriber_whose_connection_closed_is_dropped,
    linked_brokers_deliver_across_nodes_exactly_once,
);
