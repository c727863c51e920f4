//! Guards what a reconnecting handle (`netref::connect(addr).reconnect(policy)`) keeps across
//! a server restart: the root and the netrefs looked up by name come back with the same
//! identity, or fail when the name is gone or names another type; a call in flight at the loss
//! fails and is never replayed; netrefs to anonymous objects of the lost connection fail
//! clearly; a stand-in sent back to its server is the server's object, and one sent to another
//! peer serves it; dropping everything closes the connection; the RPyC dialect and plain tokio
//! programs alike. Loopback TCP only; every wait is on an event or a condition, bounded.

#[path = "support/restart.rs"]
mod support;

use std::{
    collections::HashSet,
    sync::{atomic::Ordering, Arc},
    time::{Duration, Instant},
};

use netref::prelude::*;
use support::*;

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
async fn a_name_gone_or_retyped_after_the_restart_fails_and_is_never_re_bound() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).reconnect(quick()).await.unwrap();
    let mut events = handle.events();
    let counter = handle.lookup("counter").await.unwrap();
    let root = handle.root().await.unwrap();

    // The new server exports "counter" as another type, and its root is another type too.
    server.shutdown(Duration::ZERO).await;
    let other = Object::builder("test.Other").method("incr", || 0).build();
    let service = Service::shared(other.clone()).export("counter", other);
    let server = Server::builder(service).bind_tcp(addr.as_str()).await.unwrap();
    until(&mut events, "Reconnected", is_reconnected).await;
    let err = counter.call_method::<i64>("incr", ()).await.unwrap_err();
    assert!(matches!(err, Error::Convert(ref e) if e.to_string().contains("not re-bound")), "{err:?}");
    let err = root.call_method::<usize>("incr", ()).await.unwrap_err();
    assert!(matches!(err, Error::Convert(_)), "{err:?}");

    // A server without the name: the lookup's own error.
    let server = restart_with(server, Service::shared(root_object(&executions))).await;
    until(&mut events, "Reconnected", is_reconnected).await;
    let err = counter.call_method::<i64>("incr", ()).await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(netref::kinds::LOOKUP_ERROR)), "{err:?}");
    assert_eq!(root.call_method::<usize>("incr", ()).await.unwrap(), 1, "the root is back as it was");
    handle.close().await;
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
async fn a_reconnecting_netref_passed_to_another_peer_serves_it_through_the_handle() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).reconnect(quick()).await.unwrap();
    let mut events = handle.events();
    let root = handle.root().await.unwrap();
    // Another peer calls the root through this process.
    let caller = Object::builder("test.Caller")
        .try_async_method("incr_on", |target: NetRef| async move { target.call_method::<usize>("incr", ()).await })
        .build();
    let (_caller_side, to_caller) = netref::connect_pair(Service::shared(caller), Service::void());
    let caller = to_caller.root().await.unwrap();
    assert_eq!(caller.call_method::<usize>("incr_on", (root.clone(),)).await.unwrap(), 1);

    let server = restart(server, &executions).await;
    until(&mut events, "Reconnected", is_reconnected).await;
    assert_eq!(caller.call_method::<usize>("incr_on", (root.clone(),)).await.unwrap(), 2);
    handle.close().await;
    // Closed: the other peer's call fails, naming the handle.
    let err = caller.call_method::<usize>("incr_on", (root.clone(),)).await.unwrap_err();
    assert!(err.to_string().contains("closed"), "{err}");
    server.shutdown(Duration::ZERO).await;
}

#[actix_rt::test]
async fn dropping_the_handle_and_its_netrefs_closes_the_connection() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let handle = netref::connect(addr.as_str()).reconnect(quick()).await.unwrap();
    let root = handle.root().await.unwrap();
    let peer = handle.peer().unwrap();
    drop(handle);
    assert_eq!(root.call_method::<usize>("incr", ()).await.unwrap(), 1, "a netref keeps the handle running");
    drop(root);
    tokio::time::timeout(T, peer.closed()).await.expect("the connection closes once nothing holds the handle");
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
