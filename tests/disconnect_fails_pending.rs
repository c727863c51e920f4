//! Guards disconnects: when the transport closes, every pending call fails at once (within
//! 100 ms) with `ConnectionClosed`, every netref of the connection fails fast, every export is
//! freed, and `on_disconnect` runs.

mod common;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use common::{calculator, connect, wait_until, RawPeer, Transport};
use netref::prelude::*;

#[actix_rt::test]
async fn dropping_the_transport_fails_every_pending_call_fast() {
    let (peer, mut raw) = RawPeer::start(Service::void(), Config::default().request_timeout(None));
    raw.handshake().await;
    let pending: Vec<_> = (0..50).map(|i| peer.ping(i)).collect();
    for _ in 0..50 {
        raw.recv().await;
    }
    let killed = Instant::now();
    drop(raw);
    for result in pending {
        let err =
            tokio::time::timeout(Duration::from_secs(5), result).await.expect("pending call must fail").unwrap_err();
        assert!(matches!(err, netref::Error::ConnectionClosed(_)), "{err}");
    }
    let elapsed = killed.elapsed();
    assert!(elapsed < Duration::from_millis(100), "pending calls failed only after {elapsed:?}");
    // New requests fail fast, without traffic.
    let r = peer.ping(1);
    assert!(r.ready() && r.error());
}

async fn lifecycle(t: Transport) {
    let connects = Arc::new(AtomicUsize::new(0));
    let disconnects = Arc::new(AtomicUsize::new(0));
    let (c1, d1) = (connects.clone(), disconnects.clone());
    let service = Service::per_connection(|_peer| calculator(Arc::default()))
        .on_connect(move |_| {
            c1.fetch_add(1, Ordering::SeqCst);
        })
        .on_disconnect(move |_| {
            d1.fetch_add(1, Ordering::SeqCst);
        });
    let (server, client) = connect(t, service, Config::default(), Service::void(), Config::default()).await;
    let calc = client.root().await.unwrap();
    let counters: Vec<NetRef> =
        futures::future::try_join_all((0..5).map(|i| calc.call_method::<NetRef>("make_counter", (i,)).into_future()))
            .await
            .unwrap();
    wait_until(Duration::from_secs(5), "on_connect ran", || async { connects.load(Ordering::SeqCst) == 1 }).await;
    assert_eq!(server.stats().await.unwrap().unpinned_exports, 5);
    client.close().await;
    tokio::time::timeout(Duration::from_secs(5), server.closed()).await.unwrap();
    wait_until(Duration::from_secs(5), "on_disconnect ran", || async { disconnects.load(Ordering::SeqCst) == 1 }).await;
    // Every netref of the connection fails fast.
    for c in &counters {
        let r = c.call_method::<i64>("incr", ());
        assert!(r.ready(), "a netref of a closed connection must fail without waiting");
        assert!(matches!(r.await, Err(netref::Error::ConnectionClosed(_))));
    }
}

use std::future::IntoFuture;

over_both_transports!(lifecycle);
