//! Guards reconnecting handles (`netref::connect(addr).reconnect(policy)`): after the server
//! restarts, the root and the netrefs looked up by name come back with the same identity; a
//! call in flight at the loss fails and is never replayed; calls made during the outage wait,
//! each within its own expiry; netrefs to anonymous objects of the lost connection fail
//! clearly; the policy's attempt limit gives up with an event; events come in order; a peer
//! silent past its `peer_timeout` comes back through reconnection. Loopback TCP only; every
//! wait is on an event or a condition, bounded.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use actix::prelude::*;
use futures::StreamExt;
use netref::{prelude::*, ConnectionEvents};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// The bound on every wait in these tests.
const T: Duration = Duration::from_secs(10);

/// A policy that retries quickly, so a restarted server is found at once.
fn quick() -> ReconnectPolicy {
    ReconnectPolicy::exponential(Duration::from_millis(10), Duration::from_millis(100))
}

/// What the server side counts, shared by every server a test starts.
#[derive(Default)]
struct Executions {
    incr: AtomicUsize,
    held: AtomicUsize,
}

#[derive(Default)]
struct Counter(i64);

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
    const NAME: &'static str = "test.Add";
}

impl Handler<Add> for Counter {
    type Result = i64;
    fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> i64 {
        self.0 += n;
        self.0
    }
}

/// The root every test server offers, counting its executions (`incr`, `held` which never
/// answers, `count`), with an anonymous object (`make`).
fn root_object(executions: &Arc<Executions>) -> Object {
    let (incr, held, count) = (executions.clone(), executions.clone(), executions.clone());
    Object::builder("test.Root")
        .method("incr", move || incr.incr.fetch_add(1, Ordering::SeqCst) + 1)
        .async_method("held", move || {
            held.held.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>()
        })
        .method("count", move || (count.incr.load(Ordering::SeqCst), count.held.load(Ordering::SeqCst)))
        .method("make", || Object::builder("test.Anonymous").method("hello", || "hi").build())
        .method("is_mine", |r: NetRef| r.as_local().is_some_and(|o| o.type_name() == "test.Root"))
        .build()
}

/// The service of the actix tests: the root and a named counter actor.
fn service(executions: &Arc<Executions>) -> Service {
    let root = root_object(executions);
    let counter = expose(Counter::default().start()).handle::<Add>();
    Service::shared(root).export("counter", counter)
}

/// A server on `addr` (`127.0.0.1:0` for a fresh port).
async fn serve(executions: &Arc<Executions>, addr: &str) -> Server {
    Server::builder(service(executions)).bind_tcp(addr).await.expect("bind")
}

/// The server, started again on the same port.
async fn restart(server: Server, executions: &Arc<Executions>) -> Server {
    let addr = server.local_addr().unwrap().to_string();
    server.shutdown(Duration::ZERO).await;
    serve(executions, &addr).await
}

/// The next event, within `T`.
async fn next(events: &mut ConnectionEvents) -> ConnectionEvent {
    tokio::time::timeout(T, events.next()).await.expect("an event within the bound").expect("the stream goes on")
}

/// Skips events until one `pred` accepts.
async fn until(events: &mut ConnectionEvents, what: &str, pred: impl Fn(&ConnectionEvent) -> bool) -> ConnectionEvent {
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, events.next()).await;
        match event {
            Ok(Some(event)) if pred(&event) => return event,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the events stream ended before: {what}"),
            Err(_) => panic!("timed out waiting for: {what}"),
        }
    }
}

fn is_lost(e: &ConnectionEvent) -> bool {
    matches!(e, ConnectionEvent::Lost { .. })
}

fn is_reconnected(e: &ConnectionEvent) -> bool {
    matches!(e, ConnectionEvent::Reconnected { .. })
}

fn hash_of(r: &NetRef) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(r)
}

#[actix_rt::test]
async fn the_root_and_a_named_actor_come_back_with_their_identity_after_a_server_restart() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).reconnect(quick()).await.unwrap();
    let mut events = handle.events();
    let root = handle.root().await.unwrap();
    let counter: ActorRef<Counter> = handle.lookup_actor("counter").await.unwrap();
    assert!(root.is_reconnecting() && counter.netref().is_reconnecting());
    assert_eq!(root.type_name(), "test.Root");
    assert_eq!(root.call_method::<usize>("incr", ()).await.unwrap(), 1);
    assert_eq!(counter.send(Add(5)).await.unwrap(), 5);
    let first_conn = handle.peer().unwrap().id();
    assert_eq!(root.connection().unwrap().id(), first_conn);
    let (root_hash, seen) = (hash_of(&root), HashSet::from([root.clone()]));

    let server = restart(server, &executions).await;
    until(&mut events, "Lost", is_lost).await;
    until(&mut events, "Reconnected", is_reconnected).await;

    // Same netrefs, now served by the new connection.
    assert_eq!(root.call_method::<usize>("incr", ()).await.unwrap(), 2);
    assert_eq!(counter.send(Add(1)).await.unwrap(), 1, "the new server's counter, looked up again by name");
    assert_ne!(handle.peer().unwrap().id(), first_conn);
    assert_eq!(root.connection().unwrap().id(), handle.peer().unwrap().id());
    assert_eq!(handle.root().await.unwrap(), root, "the handle gives the same root");
    assert_eq!(hash_of(&root), root_hash);
    assert!(seen.contains(&root));
    let again: ActorRef<Counter> = handle.lookup_actor("counter").await.unwrap();
    assert_eq!(again, counter, "the same name gives the same netref");
    handle.close().await;
    server.shutdown(Duration::ZERO).await;
}

#[actix_rt::test]
async fn a_call_in_flight_at_the_loss_fails_and_is_never_replayed() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).reconnect(quick()).await.unwrap();
    let mut events = handle.events();
    let root = handle.root().await.unwrap();
    let in_flight = root.call_method::<()>("held", ());
    let deadline = Instant::now() + T;
    while executions.held.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the server never received the call");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    let server = restart(server, &executions).await;
    let err = tokio::time::timeout(T, in_flight).await.expect("the call fails at the loss").unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed(_)), "{err:?}");
    until(&mut events, "Reconnected", is_reconnected).await;

    // A replay would reach the new server before this call, on the same connection.
    let (incr, held): (usize, usize) = root.call_method("count", ()).await.unwrap();
    assert_eq!((incr, held), (0, 1), "the call in flight ran once, and was not sent again");
    handle.close().await;
    server.shutdown(Duration::ZERO).await;
}

#[actix_rt::test]
async fn calls_made_during_the_outage_wait_and_succeed_once_reconnected() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).reconnect(quick()).await.unwrap();
    let mut events = handle.events();
    let root = handle.root().await.unwrap();
    let counter: ActorRef<Counter> = handle.lookup_actor("counter").await.unwrap();

    server.shutdown(Duration::ZERO).await;
    until(&mut events, "Lost", is_lost).await;
    assert!(handle.peer().is_none());
    let waiting = root.call_method::<usize>("incr", ());
    let sent = counter.send(Add(7));
    // Nothing answers while no server is up.
    assert!(tokio::time::timeout(Duration::from_millis(50), handle.connected()).await.is_err());
    assert!(!waiting.ready() && !waiting.expired());

    let server = serve(&executions, &addr).await;
    assert_eq!(tokio::time::timeout(T, waiting).await.unwrap().unwrap(), 1);
    assert_eq!(tokio::time::timeout(T, sent).await.unwrap().unwrap(), 7);
    handle.close().await;
    server.shutdown(Duration::ZERO).await;
}

#[actix_rt::test]
async fn a_call_made_during_the_outage_expires_at_its_own_expiry() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).reconnect(quick()).await.unwrap();
    let mut events = handle.events();
    let root = handle.root().await.unwrap();
    server.shutdown(Duration::ZERO).await;
    until(&mut events, "Lost", is_lost).await;

    let started = Instant::now();
    let short = root.call_method::<usize>("incr", ());
    short.set_expiry(Some(Duration::from_millis(100)));
    let long = root.call_method::<usize>("incr", ());
    long.set_expiry(Some(Duration::from_secs(30)));
    let err = tokio::time::timeout(T, short).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == Duration::from_millis(100)), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(100));
    // A later expiry set while waiting is the one that counts.
    long.set_expiry(Some(Duration::from_millis(50)));
    assert!(matches!(tokio::time::timeout(T, long).await.unwrap(), Err(Error::Timeout(_))));
    assert!(!handle.is_connected());

    // After the server comes back nothing of the expired calls ran.
    let server = serve(&executions, &addr).await;
    let (incr, _): (usize, usize) = root.call_method("count", ()).await.unwrap();
    assert_eq!(incr, 0);
    handle.close().await;
    server.shutdown(Duration::ZERO).await;
}

#[actix_rt::test]
async fn a_netref_to_an_anonymous_object_of_the_lost_connection_fails_clearly() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).reconnect(quick()).await.unwrap();
    let mut events = handle.events();
    let root = handle.root().await.unwrap();
    let anonymous: NetRef = root.call_method("make", ()).await.unwrap();
    assert!(!anonymous.is_reconnecting());
    assert_eq!(anonymous.call_method::<String>("hello", ()).await.unwrap(), "hi");

    let server = restart(server, &executions).await;
    until(&mut events, "Reconnected", is_reconnected).await;
    let err = anonymous.call_method::<String>("hello", ()).await.unwrap_err();
    let Error::ConnectionClosed(message) = &err else { panic!("{err:?}") };
    assert!(message.contains("was lost") && message.contains("anonymous object"), "{message}");
    // The root still works, and gives a fresh object on the new connection.
    let fresh: NetRef = root.call_method("make", ()).await.unwrap();
    assert_eq!(fresh.call_method::<String>("hello", ()).await.unwrap(), "hi");
    handle.close().await;
    server.shutdown(Duration::ZERO).await;
}

#[actix_rt::test]
async fn the_attempt_limit_gives_up_with_an_event_and_clear_errors() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let policy = quick().max_attempts(Some(3));
    let handle = netref::connect(addr.as_str()).reconnect(policy.clone()).await.unwrap();
    let mut events = handle.events();
    let root = handle.root().await.unwrap();
    server.shutdown(Duration::ZERO).await;

    match until(&mut events, "GaveUp", |e| matches!(e, ConnectionEvent::GaveUp { .. })).await {
        ConnectionEvent::GaveUp { attempts, last_error } => {
            assert_eq!(attempts, 3);
            assert!(matches!(last_error, Error::Io(_) | Error::Timeout(_)), "{last_error:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(events.next().await.is_none(), "GaveUp is the last event");
    let err = root.call_method::<usize>("incr", ()).await.unwrap_err();
    let Error::ConnectionClosed(message) = &err else { panic!("{err:?}") };
    assert!(message.contains("gave up connecting") && message.contains("3 failed attempts"), "{message}");
    assert!(handle.connected().await.is_err());
    let err = root.notify_method("incr", ()).unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed(ref m) if m.contains("gave up")), "{err:?}");

    // The first connection obeys the same limit, and fails with the last attempt's error.
    let err = netref::connect(addr.as_str()).reconnect(policy).await.unwrap_err();
    assert!(matches!(err, Error::Io(_)), "{err:?}");
}

#[actix_rt::test]
async fn a_policy_that_never_reconnects_gives_up_at_the_first_loss() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).reconnect(ReconnectPolicy::never()).await.unwrap();
    let mut events = handle.events();
    assert!(matches!(next(&mut events).await, ConnectionEvent::Connected { .. }));
    let server = restart(server, &executions).await;
    assert!(is_lost(&next(&mut events).await));
    assert!(matches!(next(&mut events).await, ConnectionEvent::GaveUp { attempts: 0, .. }));
    assert!(handle.root().await.is_err());
    server.shutdown(Duration::ZERO).await;
}

#[actix_rt::test]
async fn events_come_in_order_and_end_with_the_close() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).reconnect(quick()).await.unwrap();
    let mut events = handle.events();
    let first = match next(&mut events).await {
        ConnectionEvent::Connected { peer } => peer,
        other => panic!("the stream opens with the current state, Connected: {other:?}"),
    };
    server.shutdown(Duration::ZERO).await;
    match next(&mut events).await {
        ConnectionEvent::Lost { connection, reason } => {
            assert_eq!(connection, first.id());
            assert!(matches!(reason, Error::ConnectionClosed(_) | Error::Io(_)), "{reason:?}");
        }
        other => panic!("Lost comes next: {other:?}"),
    }
    let server = serve(&executions, &addr).await;
    match next(&mut events).await {
        ConnectionEvent::Reconnected { peer, attempts, .. } => {
            assert_ne!(peer.id(), first.id());
            assert!(attempts >= 1);
        }
        other => panic!("Reconnected comes next: {other:?}"),
    }
    // A stream opened now starts where the handle is.
    let mut late = handle.events();
    assert!(is_reconnected(&next(&mut late).await));
    handle.close().await;
    assert!(matches!(next(&mut events).await, ConnectionEvent::Closed));
    assert!(events.next().await.is_none());
    assert!(matches!(next(&mut late).await, ConnectionEvent::Closed));
    assert!(handle.root().await.is_err(), "a closed handle connects no more");
    server.shutdown(Duration::ZERO).await;
}

#[actix_rt::test]
async fn a_reconnecting_netref_sent_back_to_its_server_is_the_server_s_own_object() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).reconnect(quick()).await.unwrap();
    let root = handle.root().await.unwrap();
    assert!(root.call_method::<bool>("is_mine", (root.clone(),)).await.unwrap());
    handle.close().await;
    server.shutdown(Duration::ZERO).await;
}

#[actix_rt::test]
async fn the_rpyc_dialect_reconnects_too() {
    let executions = Arc::new(Executions::default());
    let server = Server::builder(service(&executions)).rpyc().bind_tcp("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).rpyc().reconnect(quick()).await.unwrap();
    let mut events = handle.events();
    let root = handle.root().await.unwrap();
    assert_eq!(root.call_method::<usize>("incr", ()).await.unwrap(), 1);
    server.shutdown(Duration::ZERO).await;
    until(&mut events, "Lost", is_lost).await;
    let server = Server::builder(service(&executions)).rpyc().bind_tcp(addr.as_str()).await.unwrap();
    until(&mut events, "Reconnected", is_reconnected).await;
    assert_eq!(root.call_method::<usize>("incr", ()).await.unwrap(), 2);
    handle.close().await;
    server.shutdown(Duration::ZERO).await;
}

/// A TCP relay to `target` that the test can freeze: while frozen it forwards nothing, in
/// either direction, on any connection (new ones included), as a paused process would.
struct Relay {
    addr: String,
    frozen: watch::Sender<bool>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (frozen, _) = watch::channel(false);
        let gate = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else { continue };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, gate.subscribe()));
                tokio::spawn(pump(sr, cw, gate.subscribe()));
            }
        });
        Relay { addr, frozen }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

/// Copies `from` to `to`, holding the bytes while frozen.
async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut gate: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else { return };
        if n == 0 || gate.wait_for(|frozen| !frozen).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

#[actix_rt::test]
async fn a_peer_silent_past_its_peer_timeout_comes_back_through_reconnection() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let relay = Relay::start(server.local_addr().unwrap().to_string()).await;
    let config = Config::default().peer_timeout(Some(Duration::from_millis(300)));
    let handle = netref::connect(relay.addr.as_str())
        .config(config)
        .timeout(Duration::from_millis(500))
        .reconnect(quick())
        .await
        .unwrap();
    let mut events = handle.events();
    let root = handle.root().await.unwrap();
    assert_eq!(root.call_method::<usize>("incr", ()).await.unwrap(), 1);

    relay.freeze(true);
    match until(&mut events, "Lost", is_lost).await {
        ConnectionEvent::Lost { reason, .. } => assert!(reason.to_string().contains("peer lost"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let waiting = root.call_method::<usize>("incr", ());
    relay.freeze(false);
    until(&mut events, "Reconnected", is_reconnected).await;
    assert_eq!(tokio::time::timeout(T, waiting).await.unwrap().unwrap(), 2);
    handle.close().await;
    server.shutdown(Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_tokio_program_gets_the_same_guarantees() {
    // Off an actix thread the handle and its connections live on netref's runtime thread.
    let executions = Arc::new(Executions::default());
    let service = || Service::shared(root_object(&executions)).export("counter", Object::builder("test.Plain").build());
    let server = Server::builder(service()).bind_tcp("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).reconnect(quick()).await.unwrap();
    let mut events = handle.events();
    let (a, b) = tokio::join!(handle.lookup("counter"), handle.lookup("counter"));
    assert_eq!(a.unwrap(), b.unwrap(), "concurrent lookups of one name give one netref");
    let root = handle.root().await.unwrap();
    server.shutdown(Duration::ZERO).await;
    until(&mut events, "Lost", is_lost).await;
    let waiting = root.call_method::<usize>("incr", ());
    let server = Server::builder(service()).bind_tcp(addr.as_str()).await.unwrap();
    assert_eq!(tokio::time::timeout(T, waiting).await.unwrap().unwrap(), 1);
    handle.close().await;
    server.shutdown(Duration::ZERO).await;
}
