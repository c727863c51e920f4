//! Guards what comes back by itself after the connection to its server is lost and the server
//! restarts on the same port: a PubSub [`Subscription`] made through a reconnecting handle
//! subscribes again on the new connection (and deliveries resume), and a [`Registration`]
//! registers again at the restarted registry. Loopback TCP; every wait is on a condition.

mod common;

use common::wait_until;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use actix::prelude::*;
use futures::StreamExt;
use netref::{prelude::*, ActorRef, ConnectionEvent, RemoteActor};
use netref_actors::{
    pubsub::{expose_subscriber, Broker, Publish, Published, Stats, Subscription},
    Registration, RegistryService,
};

const T: Duration = Duration::from_secs(10);

type Inbox = Arc<Mutex<Vec<i64>>>;

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

/// A node serving a fresh broker under "broker" on `addr`.
async fn broker_node(addr: &str) -> (Server, Addr<Broker>) {
    let broker = Broker::new().start();
    let service = Service::void().export("broker", Broker::export(broker.clone()));
    (Server::builder(service).bind_tcp(addr).await.unwrap(), broker)
}

#[actix_rt::test]
async fn a_subscription_through_a_reconnecting_handle_comes_back_after_the_broker_restarts() {
    let (server, broker) = broker_node("127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let policy = ReconnectPolicy::exponential(Duration::from_millis(10), Duration::from_millis(100));
    let handle = netref::connect(addr.as_str()).reconnect(policy).await.unwrap();
    let mut events = handle.events();
    let inbox = Inbox::default();
    let collector: ActorRef<Collector> = expose_subscriber(Collector(inbox.clone()).start());
    let subscription = Subscription::start(&handle, "broker", "news", &collector).await.unwrap();
    assert_eq!(subscription.status().subscriptions, 1);
    assert_eq!(broker.send(Publish::new("news", &1).unwrap()).await.unwrap().delivered, 1);
    wait_until(T, "the first message", || async { *inbox.lock().unwrap() == [1] }).await;

    // The broker's node restarts on the same port, with a fresh broker that knows nobody.
    server.shutdown(Duration::ZERO).await;
    let (server, broker) = broker_node(&addr).await;
    tokio::time::timeout(T, subscription.subscriptions(2)).await.expect("subscribed again");
    let status = subscription.status();
    assert!(status.subscribed && status.last_error.is_none(), "{status:?}");
    assert_eq!(status.connection, handle.peer().map(|p| p.id()));
    assert_eq!(broker.send(Stats).await.unwrap().subscriptions, 1);
    assert_eq!(broker.send(Publish::new("news", &2).unwrap()).await.unwrap().delivered, 1);
    wait_until(T, "the message after the restart", || async { *inbox.lock().unwrap() == [1, 2] }).await;
    let lost = events.by_ref().any(|e| async move { matches!(e, ConnectionEvent::Lost { .. }) });
    assert!(tokio::time::timeout(T, lost).await.unwrap(), "the handle reported the loss");

    assert!(subscription.cancel().await.unwrap(), "cancel unsubscribes");
    assert_eq!(broker.send(Stats).await.unwrap().subscriptions, 0);
    handle.close().await;
    server.shutdown(Duration::ZERO).await;
}

#[actix_rt::test]
async fn a_registration_comes_back_after_the_registry_restarts_on_the_same_port() {
    let registry = RegistryService::default();
    let server = registry.serve("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let registration = Registration::start(addr, "calc", "127.0.0.1:7500", Duration::from_secs(60));
    tokio::time::timeout(T, registration.registered()).await.expect("registered");
    let renewals = registration.status().renewals;

    // A new registry process: same port, empty table.
    server.shutdown(Duration::ZERO).await;
    let registry = RegistryService::default();
    let server = registry.serve(addr).await.unwrap();
    // Registered again long before the next refresh (20 s).
    wait_until(T, "registered at the restarted registry", || async {
        registry.query("calc").unwrap() == ["127.0.0.1:7500"]
    })
    .await;
    wait_until(T, "the handle counted it", || async { registration.status().renewals > renewals }).await;
    registration.stop().await;
    assert!(registry.is_empty(), "stop unregisters");
    server.shutdown(Duration::ZERO).await;
}
