//! Guards a reconnecting handle while no connection is up: calls made during the outage wait
//! and succeed once reconnected, or expire at their own expiry (or the default request
//! timeout) without having been sent; the policy's attempt limit and `never()` give up with an
//! event and clear errors; events come in order and end with the close; a peer silent past
//! its `peer_timeout` (a frozen relay) comes back through reconnection. Loopback TCP only;
//! every wait is on an event or a condition, bounded.

#[path = "support/restart.rs"]
mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use netref::prelude::*;
use support::*;

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

#[actix_rt::test]
async fn a_call_made_during_the_outage_expires_at_the_default_request_timeout() {
    let executions = Arc::new(Executions::default());
    let server = serve(&executions, "127.0.0.1:0").await;
    let addr = server.local_addr().unwrap().to_string();
    let config = Config::default().request_timeout(Some(Duration::from_millis(150)));
    let handle = netref::connect(addr.as_str()).config(config).reconnect(quick()).await.unwrap();
    let mut events = handle.events();
    let root = handle.root().await.unwrap();
    server.shutdown(Duration::ZERO).await;
    until(&mut events, "Lost", is_lost).await;
    let err = tokio::time::timeout(T, root.call_method::<usize>("incr", ())).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Timeout(d) if d == Duration::from_millis(150)), "{err:?}");
    // A lookup waits the same way.
    let err = tokio::time::timeout(T, handle.lookup("counter")).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    handle.close().await;
}
