//! Guards the limits: a peer that never reads cannot grow the sender's write buffer past
//! `max_write_buffer` (requests queue up to `max_queued_requests`, then fail with
//! `LimitReached`); a peer flooding requests without reading replies makes the server stop
//! reading; outbound requests in flight stay under `max_in_flight`; exports are capped.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{wait_until, RawPeer};
use netref::{prelude::*, Frame, Handle};

#[actix_rt::test]
async fn a_peer_that_never_reads_cannot_grow_the_write_buffer() {
    let bound = 2 << 20;
    let config = Config::default().max_write_buffer(bound).max_queued_requests(8).request_timeout(None);
    let (peer, mut raw) = RawPeer::start(Service::void(), config);
    raw.handshake().await;
    // From now on the raw side never reads.
    let payload = Bytes::from(vec![7u8; 512 << 10]);
    let mut results = Vec::new();
    for _ in 0..40 {
        results.push(peer.ping(Value::Bytes(payload.clone())));
    }
    wait_until(Duration::from_secs(5), "requests refused past the queue", || async {
        results.iter().filter(|r| r.ready()).count() > 0
    })
    .await;
    let stats = peer.stats().await.unwrap();
    assert!(stats.write_buffer <= bound + payload.len() + 1024, "write buffer grew to {}", stats.write_buffer);
    assert!(stats.queued <= 8, "{stats:?}");
    let refused = results.iter().filter(|r| r.ready()).count();
    assert!(refused >= 40 - 8 - (bound / payload.len()) - 4, "only {refused} refused: {stats:?}");
    for r in results.into_iter().filter(|r| r.ready()) {
        assert!(matches!(r.await, Err(netref::Error::LimitReached(_))));
    }
}

#[actix_rt::test]
async fn a_flooding_peer_is_not_read_past_the_bound() {
    let bound = 1 << 20;
    let (peer, mut raw) = RawPeer::start(Service::void(), Config::default().max_write_buffer(bound));
    raw.handshake().await;
    let data = Value::Bytes(Bytes::from(vec![1u8; 64 << 10]));
    let (mut sink, _stream) = futures::StreamExt::split(raw.framed);
    let writer = actix_rt::spawn(async move {
        for seq in 0..200u64 {
            let frame =
                Frame::Request { seq, handle: Handle::Ping, args: Value::Tuple(vec![data.clone()]), deadline: None };
            if futures::SinkExt::send(&mut sink, frame).await.is_err() {
                break;
            }
        }
    });
    wait_until(Duration::from_secs(5), "server's write buffer fills", || async {
        peer.stats().await.unwrap().write_buffer >= bound
    })
    .await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
        let stats = peer.stats().await.unwrap();
        assert!(stats.write_buffer <= bound + (128 << 10), "server kept reading: {stats:?}");
    }
    assert!(!writer.is_finished(), "the flooding peer should be blocked by back-pressure");
    writer.abort();
}

#[actix_rt::test]
async fn in_flight_requests_stay_under_the_cap() {
    let service = Service::shared(
        Object::builder("demo.Slow")
            .async_method("wait", |ms: u64| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                ms
            })
            .build(),
    );
    let (_server, client) =
        netref::connect_pair_with(service, Config::default(), Service::void(), Config::default().max_in_flight(4));
    let root = client.root().await.unwrap();
    let results: Vec<_> = (0..20).map(|_| root.call_method::<u64>("wait", (20u64,))).collect();
    let stats = client.stats().await.unwrap();
    assert!(stats.pending <= 4 && stats.pending + stats.queued == 20, "{stats:?}");
    for r in results {
        assert_eq!(r.await.unwrap(), 20);
    }
}

#[actix_rt::test]
async fn exports_are_capped() {
    let service = Service::shared(
        Object::builder("demo.Maker")
            .method("make", |n: usize| (0..n).map(|_| Object::builder("x.Y").build()).collect::<Vec<_>>())
            .build(),
    );
    let (_server, client) =
        netref::connect_pair_with(service, Config::default().max_exports(10), Service::void(), Config::default());
    let root = client.root().await.unwrap();
    let ok: Vec<NetRef> = root.call_method("make", (5usize,)).await.unwrap();
    assert_eq!(ok.len(), 5);
    let err = root.call_method::<Vec<NetRef>>("make", (50usize,)).await.unwrap_err();
    assert!(err.to_string().contains("max_exports"), "{err}");
    assert_eq!(root.call_method::<Vec<NetRef>>("make", (1usize,)).await.unwrap().len(), 1);
}

#[actix_rt::test]
async fn frames_above_the_peers_limit_fail_only_that_call() {
    let service =
        Service::shared(Object::builder("demo.Echo").method("echo", |b: serde_bytes::ByteBuf| b.len()).build());
    let (_server, client) =
        netref::connect_pair_with(service, Config::default().max_frame_len(4096), Service::void(), Config::default());
    let root = client.root().await.unwrap();
    let big = serde_bytes::ByteBuf::from(vec![0u8; 8192]);
    let err = root.call_method::<usize>("echo", (big,)).await.unwrap_err();
    assert!(matches!(err, netref::Error::Protocol(netref::ProtocolError::FrameTooLarge { max: 4096, .. })), "{err}");
    let small = serde_bytes::ByteBuf::from(vec![0u8; 1024]);
    assert_eq!(root.call_method::<usize>("echo", (small,)).await.unwrap(), 1024, "the connection lives on");
}

#[actix_rt::test]
async fn frames_past_the_value_limit_fail_only_that_call() {
    // A `Vec<u8>` is a list of ints to serde: one value per byte.
    let service = Service::shared(
        Object::builder("demo.Lists")
            .method("len", |b: Vec<u8>| b.len())
            .method("make", |n: usize| vec![1u8; n])
            .build(),
    );
    let limits = netref::dev::DecodeLimits { max_values: 1000, ..Default::default() };
    let (_server, client) = netref::connect_pair_with(
        service,
        Config::default().decode_limits(limits),
        Service::void(),
        Config::default().decode_limits(limits),
    );
    let root = client.root().await.unwrap();
    // Arguments past the limit: refused before anything is sent.
    let err = root.call_method::<usize>("len", (vec![0u8; 2000],)).await.unwrap_err();
    assert!(matches!(err, netref::Error::Protocol(netref::ProtocolError::TooManyValues { max: 1000 })), "{err}");
    assert_eq!(root.call_method::<usize>("len", (vec![0u8; 900],)).await.unwrap(), 900, "the connection lives on");
    // A reply past the limit: the caller gets the serving side's error instead.
    let err = root.call_method::<Vec<u8>>("make", (2000usize,)).await.unwrap_err();
    let netref::Error::Remote(remote) = &err else { panic!("a remote error, got {err:?}") };
    assert!(remote.message.contains("more than 1000 values"), "{remote:?}");
    assert_eq!(root.call_method::<Vec<u8>>("make", (900usize,)).await.unwrap().len(), 900, "the connection lives on");
}
