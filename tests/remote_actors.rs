//! Guards typed remote actors: an exposed actix actor is reached through `ActorRef<A>` with
//! `send` (reply) and `do_send` (no reply frame), in order; named lookups are typed (a netref of
//! the wrong type is a local conversion error); remote spawn starts registered types only;
//! `watch` reports a stopped actor or a lost connection; `ActorRef`s travel inside messages both
//! ways and come home as the local `Addr`; bad message names or bytes give clear errors and
//! leave the actor unaffected.

mod common;

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use actix::prelude::*;
use common::{connect, Transport};
use netref::{expose, kinds, prelude::*, ActorRef, Down, RemoteActor, RemoteMessage, Spawner};
use serde::{Deserialize, Serialize};

const T: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Counter {
    total: i64,
    log: Vec<i64>,
}

impl Actor for Counter {
    type Context = Context<Self>;
}

impl RemoteActor for Counter {
    const NAME: &'static str = "test.Counter";
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "i64")]
struct Add(i64);

impl RemoteMessage for Add {
    const NAME: &'static str = "counter.Add";
}

impl Handler<Add> for Counter {
    type Result = i64;
    fn handle(&mut self, msg: Add, _: &mut Context<Self>) -> i64 {
        self.total += msg.0;
        self.log.push(msg.0);
        self.total
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "Vec<i64>")]
struct Log;

impl RemoteMessage for Log {
    const NAME: &'static str = "counter.Log";
}

impl Handler<Log> for Counter {
    type Result = MessageResult<Log>;
    fn handle(&mut self, _: Log, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.log.clone())
    }
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "()")]
struct Stop;

impl RemoteMessage for Stop {
    const NAME: &'static str = "counter.Stop";
}

impl Handler<Stop> for Counter {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Returns the actor ref it is given (to send refs both ways).
#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "ActorRef<Counter>")]
struct Bounce(ActorRef<Counter>);

impl RemoteMessage for Bounce {
    const NAME: &'static str = "counter.Bounce";
}

impl Handler<Bounce> for Counter {
    type Result = MessageResult<Bounce>;
    fn handle(&mut self, msg: Bounce, _: &mut Context<Self>) -> Self::Result {
        MessageResult(msg.0)
    }
}

struct Other;
impl Actor for Other {
    type Context = Context<Self>;
}
impl RemoteActor for Other {
    const NAME: &'static str = "test.Other";
}

static SPAWNED_STOPPED: AtomicUsize = AtomicUsize::new(0);

struct Spawned(i64);
impl Actor for Spawned {
    type Context = Context<Self>;
    fn stopped(&mut self, _: &mut Context<Self>) {
        SPAWNED_STOPPED.fetch_add(1, Ordering::SeqCst);
    }
}
impl RemoteActor for Spawned {
    const NAME: &'static str = "test.Spawned";
}
impl Handler<Add> for Spawned {
    type Result = i64;
    fn handle(&mut self, msg: Add, _: &mut Context<Self>) -> i64 {
        self.0 += msg.0;
        self.0
    }
}

fn export_counter(addr: Addr<Counter>) -> Object {
    expose(addr).handle::<Add>().handle::<Log>().handle::<Stop>().handle::<Bounce>().build()
}

fn service() -> Service {
    let spawner = Spawner::new().register(|start: i64| expose(Spawned(start).start()).handle::<Add>());
    Service::void().export("counter", export_counter(Counter::default().start())).spawner(spawner)
}

async fn send_and_do_send_in_order(t: Transport) {
    let (_s, client) = connect(t, service(), Config::default(), Service::void(), Config::default()).await;
    let counter: ActorRef<Counter> = client.lookup_actor("counter").await.unwrap();
    assert_eq!(counter.send(Add(5)).await.unwrap(), 5);
    for i in 1..=200 {
        counter.do_send(Add(i)).unwrap();
    }
    let log = counter.send(Log).await.unwrap();
    assert_eq!(log.len(), 201);
    assert_eq!(log[1..], (1..=200).collect::<Vec<_>>()[..], "messages to one actor arrive in the order sent");
    assert_eq!(counter.send(Add(0)).await.unwrap(), 5 + 200 * 201 / 2);
}

async fn lookups_are_typed(t: Transport) {
    let (_s, client) = connect(t, service(), Config::default(), Service::void(), Config::default()).await;
    // The wrong type is found on this side: a local conversion error, not one from the peer.
    let err = client.lookup_actor::<Other>("counter").await.unwrap_err();
    let netref::Error::Convert(e) = &err else { panic!("a local conversion error, got {err}") };
    assert!(e.message().contains("test.Other") && e.message().contains("test.Counter"), "{e}");
    let local = NetRef::from(export_counter(Counter::default().start()));
    let err = ActorRef::<Other>::from_netref(local).unwrap_err();
    assert!(matches!(&err, netref::Error::Convert(e) if e.message().contains("test.Other")), "{err}");
    let err = client.lookup_actor::<Counter>("nope").await.unwrap_err();
    let e = err.as_remote().unwrap();
    assert!(e.is(kinds::LOOKUP_ERROR) && e.message.contains("nope") && e.message.contains("counter"), "{e}");
}

async fn bad_messages_leave_the_actor_unaffected(t: Transport) {
    let (_s, client) = connect(t, service(), Config::default(), Service::void(), Config::default()).await;
    let counter: ActorRef<Counter> = client.lookup_actor("counter").await.unwrap();
    // A message name the actor does not handle.
    let err = counter.netref().call_method::<i64>("counter.Multiply", (3,)).await.unwrap_err();
    assert!(
        err.as_remote().is_some_and(|e| e.is(kinds::ATTRIBUTE_ERROR) && e.message.contains("counter.Multiply")),
        "{err}"
    );
    // Undecodable message content.
    let err = counter.netref().call_method::<i64>("counter.Add", ("not a number",)).await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::TYPE_ERROR) && e.message.contains("counter.Add")), "{err}");
    assert_eq!(counter.send(Add(1)).await.unwrap(), 1);
}

async fn refs_travel_and_come_home(t: Transport) {
    let (_s, client) = connect(t, service(), Config::default(), Service::void(), Config::default()).await;
    let remote: ActorRef<Counter> = client.lookup_actor("counter").await.unwrap();
    // The remote ref travels to its owner and back: still the same remote actor.
    let back = remote.send(Bounce(remote.clone())).await.unwrap();
    assert_eq!(back, remote);
    assert!(back.local_addr().is_none());
    // A local actor's ref travels to the peer and back: it resolves to the local Addr.
    let local_addr = Counter::default().start();
    let local: ActorRef<Counter> = ActorRef::from_netref(NetRef::from(export_counter(local_addr.clone()))).unwrap();
    let home = remote.send(Bounce(local.clone())).await.unwrap();
    let addr = home.local_addr().expect("a ref sent back to its owner resolves to the local Addr");
    assert_eq!(addr.send(Add(7)).await.unwrap(), 7);
}

async fn spawn_and_lifetime(t: Transport) {
    let (_s, client) = connect(t, service(), Config::default(), Service::void(), Config::default()).await;
    let err = client.spawn::<Other>(()).await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::LOOKUP_ERROR) && e.message.contains("test.Other")), "{err}");
    let before = SPAWNED_STOPPED.load(Ordering::SeqCst);
    let spawned: ActorRef<Spawned> = client.spawn(10i64).await.unwrap();
    assert_eq!(spawned.send(Add(5)).await.unwrap(), 15);
    drop(spawned);
    common::wait_until(T, "the spawned actor stops once unreferenced", || async {
        SPAWNED_STOPPED.load(Ordering::SeqCst) > before
    })
    .await;
}

async fn watch_reports_stop_and_send_to_stopped_fails(t: Transport) {
    let (_s, client) = connect(t, service(), Config::default(), Service::void(), Config::default()).await;
    let counter: ActorRef<Counter> = client.lookup_actor("counter").await.unwrap();
    let watch = counter.watch();
    counter.send(Stop).await.unwrap();
    let down = tokio::time::timeout(T, watch).await.expect("watch fires");
    assert!(matches!(down, Down::Stopped), "{down:?}");
    let err = tokio::time::timeout(T, counter.send(Add(1))).await.expect("no hang").unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::ACTOR_STOPPED)), "{err}");
}

async fn watch_reports_a_lost_connection(t: Transport) {
    let (server, client) = connect(t, service(), Config::default(), Service::void(), Config::default()).await;
    let counter: ActorRef<Counter> = client.lookup_actor("counter").await.unwrap();
    let watch = counter.watch();
    server.close().await;
    let down = tokio::time::timeout(T, watch).await.expect("watch fires");
    assert!(matches!(down, Down::ConnectionLost(_)), "{down:?}");
}

/// A watch in progress is a long poll: closing the watched side gracefully drops it at once
/// instead of waiting out the close grace (30 s here) for an actor that may never stop.
async fn a_watch_does_not_hold_a_graceful_close(t: Transport) {
    let grace = Config::default().close_grace(Duration::from_secs(30));
    let (server, client) = connect(t, service(), grace, Service::void(), Config::default()).await;
    let counter: ActorRef<Counter> = client.lookup_actor("counter").await.unwrap();
    let watch = counter.watch();
    common::wait_until(T, "the watch runs on the server", || async { server.stats().await.unwrap().inbound == 1 })
        .await;
    tokio::time::timeout(T, server.close()).await.expect("the close does not wait for the watch");
    let down = tokio::time::timeout(T, watch).await.expect("watch fires");
    assert!(matches!(down, Down::ConnectionLost(_)), "{down:?}");
}

over_both_transports!(
    a_watch_does_not_hold_a_graceful_close,
    send_and_do_send_in_order,
    lookups_are_typed,
    bad_messages_leave_the_actor_unaffected,
    refs_travel_and_come_home,
    spawn_and_lifetime,
    watch_reports_stop_and_send_to_stopped_fails,
    watch_reports_a_lost_connection,
);
