//! Guards liveness: by default each side declares a silent peer lost within `peer_timeout`
//! (15 s), failing its pending calls, freeing the connection and running `on_disconnect`;
//! liveness pings go out past the in-flight cap and get answered whatever the peer's own
//! settings; and a side that stopped reading for back-pressure is not declared lost.

mod common;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use common::{calculator, wait_until, Counters, RawPeer};
use netref::prelude::*;

const T: Duration = Duration::from_secs(10);

#[test]
fn a_silent_peer_is_declared_lost_by_default_within_fifteen_seconds() {
    assert!(format!("{:?}", Config::default()).contains("peer_timeout: Some(15s)"), "{:?}", Config::default());
}

#[actix_rt::test]
async fn a_silent_peer_is_declared_lost_and_everything_of_it_is_freed() {
    let disconnected = Arc::new(AtomicUsize::new(0));
    let seen = disconnected.clone();
    let service = Service::shared(calculator(Arc::default())).on_disconnect(move |_| {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    let config = Config::default().peer_timeout(Some(Duration::from_millis(150)));
    let (peer, mut raw) = RawPeer::start(service, config);
    let root = raw.handshake().await;
    assert!(root.is_some());
    // A call the silent peer will never answer.
    let pending = peer.ping(Value::from(1_i64));
    let started = std::time::Instant::now();
    tokio::time::timeout(T, peer.closed()).await.expect("a silent peer is declared lost");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(2), "declared lost after {waited:?}");
    let reason = peer.close_reason().unwrap().to_string();
    assert!(reason.contains("peer lost"), "{reason}");
    let err = pending.await.unwrap_err();
    assert!(matches!(err, Error::ConnectionClosed(ref m) if m.contains("peer lost")), "{err}");
    assert_eq!(disconnected.load(Ordering::SeqCst), 1, "on_disconnect ran once");
}

#[actix_rt::test]
async fn a_peer_with_longer_settings_answers_the_liveness_pings() {
    // The server keeps the default (15 s); the client wants to hear every 50 ms.
    let client_config = Config::default().peer_timeout(Some(Duration::from_millis(150)));
    let (server, client) = netref::connect_pair_with(
        Service::shared(calculator(Arc::default())),
        Config::default(),
        Service::void(),
        client_config,
    );
    let calc = client.root().await.unwrap();
    let started = tokio::time::Instant::now();
    wait_until(T, "ten ticks pass", || async { started.elapsed() > Duration::from_millis(600) }).await;
    assert!(!server.is_closed() && !client.is_closed(), "{:?} / {:?}", server.close_reason(), client.close_reason());
    assert_eq!(calc.call_method::<i64>("add", (1, 2)).await.unwrap(), 3);
}

#[actix_rt::test]
async fn liveness_pings_pass_the_in_flight_cap() {
    // One request in flight at most, and it takes far longer than the peer timeout; the server
    // sends nothing of its own (no liveness of its own), so only answers to the client's pings
    // tell the client it is alive.
    let counters = Arc::new(Counters::default());
    let client_config = Config::default().max_in_flight(1).peer_timeout(Some(Duration::from_millis(300)));
    let (server, client) = netref::connect_pair_with(
        Service::shared(calculator(counters.clone())),
        Config::default().peer_timeout(None),
        Service::void(),
        client_config,
    );
    let calc = client.root().await.unwrap();
    let slow: u64 = calc.call_method("slow", (1500_u64,)).await.unwrap();
    assert_eq!(slow, 1500);
    assert!(!client.is_closed(), "{:?}", client.close_reason());
    assert!(!server.is_closed());
}

#[actix_rt::test]
async fn a_side_that_stopped_reading_for_back_pressure_is_not_declared_lost() {
    // The server serves one request at a time: while the slow call runs it stops reading, so
    // it hears nothing of the client for far longer than its peer timeout.
    let counters = Arc::new(Counters::default());
    let config = Config::default().peer_timeout(Some(Duration::from_millis(300)));
    let (server, client) = netref::connect_pair_with(
        Service::shared(calculator(counters.clone())),
        config.clone().max_concurrent_requests(1),
        Service::void(),
        config,
    );
    let calc = client.root().await.unwrap();
    let slow = calc.call_method::<u64>("slow", (1500_u64,));
    let queued = calc.call_method::<i64>("add", (1, 2));
    assert_eq!(slow.await.unwrap(), 1500);
    assert_eq!(queued.await.unwrap(), 3);
    assert!(!server.is_closed(), "{:?}", server.close_reason());
    assert!(!client.is_closed(), "{:?}", client.close_reason());
}
