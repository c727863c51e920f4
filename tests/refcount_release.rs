//! Guards the distributed refcount: random sequences of sending, cloning and dropping netrefs
//! leave the exporter's table equal to what the importer still holds; 100k netrefs created and
//! dropped leave it empty; releases are batched, never waited for.

mod common;

use std::{collections::HashSet, sync::Arc, time::Duration};

use common::wait_until;
use netref::prelude::*;
use proptest::prelude::*;

const OBJECTS: usize = 6;

fn store() -> Object {
    let objects: Arc<Vec<Object>> =
        Arc::new((0..OBJECTS).map(|i| Object::builder("demo.Item").attr("index", i).build()).collect());
    let o1 = objects.clone();
    Object::builder("demo.Store")
        .method("give", move |k: usize| o1[k % OBJECTS].clone())
        .method("many", |n: usize| {
            (0..n).map(|i| Object::builder("demo.Fresh").attr("i", i).build()).collect::<Vec<_>>()
        })
        .build()
}

#[derive(Clone, Debug)]
enum Op {
    Receive(usize),
    Clone(prop::sample::Index),
    Drop(prop::sample::Index),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..OBJECTS).prop_map(Op::Receive),
        2 => any::<prop::sample::Index>().prop_map(Op::Clone),
        3 => any::<prop::sample::Index>().prop_map(Op::Drop),
    ]
}

async fn run(ops: Vec<Op>) {
    let (server, client) = netref::connect_pair(Service::shared(store()), Service::void());
    let root = client.root().await.unwrap();
    let mut held: Vec<NetRef> = Vec::new();
    for op in ops {
        match op {
            Op::Receive(k) => held.push(root.call_method("give", (k,)).await.unwrap()),
            Op::Clone(i) if !held.is_empty() => {
                let r = held[i.index(held.len())].clone();
                held.push(r);
            }
            Op::Drop(i) if !held.is_empty() => {
                held.swap_remove(i.index(held.len()));
            }
            _ => {}
        }
    }
    let distinct: HashSet<u64> = held.iter().map(|r| r.id_pack().instance_id).collect();
    let expected = distinct.len();
    wait_until(Duration::from_secs(5), "exports match what the importer holds", || async {
        server.stats().await.unwrap().unpinned_exports == expected
    })
    .await;
    // The importer keeps exactly one live proxy per distinct object (plus the root).
    assert_eq!(client.stats().await.unwrap().imports, expected + 1);
    drop(held);
    wait_until(Duration::from_secs(5), "all exports released", || async {
        server.stats().await.unwrap().unpinned_exports == 0
    })
    .await;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn exporter_table_matches_importer_holdings(ops in proptest::collection::vec(op(), 0..60)) {
        actix_rt::System::new().block_on(run(ops));
    }
}

#[actix_rt::test]
async fn a_hundred_thousand_netrefs_leave_the_table_empty() {
    let (server, client) = netref::connect_pair(Service::shared(store()), Service::void());
    let root = client.root().await.unwrap();
    for _ in 0..100 {
        let batch: Vec<NetRef> = root.call_method("many", (1000usize,)).await.unwrap();
        assert_eq!(batch.len(), 1000);
        drop(batch);
    }
    wait_until(Duration::from_secs(20), "100k exports released", || async {
        server.stats().await.unwrap().unpinned_exports == 0
    })
    .await;
    assert_eq!(client.stats().await.unwrap().imports, 1, "only the root proxy remains");
}

/// Receives `batches` × `per_batch` fresh objects from an exporter configured with
/// `exporter`, drops them all at once (their releases owed in one turn), and waits until the
/// exporter's table is empty, with both sides still open.
async fn drop_all_at_once(exporter: Config, importer: Config, batches: usize, per_batch: usize) {
    let (server, client) = netref::connect_pair_with(Service::shared(store()), exporter, Service::void(), importer);
    let root = client.root().await.unwrap();
    let mut held: Vec<NetRef> = Vec::new();
    for _ in 0..batches {
        held.extend(root.call_method::<Vec<NetRef>>("many", (per_batch,)).await.unwrap());
    }
    drop(held);
    wait_until(Duration::from_secs(5), "every export released", || async {
        server.stats().await.is_ok_and(|s| s.unpinned_exports == 0)
    })
    .await;
    assert!(!server.is_closed() && !client.is_closed());
}

#[actix_rt::test]
async fn releases_of_one_turn_are_split_to_stay_within_the_limits() {
    // A `Release` frame counts two values per pair: with 1000 values per frame, 1200 proxies
    // dropped at once need three frames, or the exporter would close the connection.
    let limits = netref::dev::DecodeLimits { max_values: 1000, ..Default::default() };
    let config = Config::default().decode_limits(limits);
    drop_all_at_once(config.clone(), config, 3, 400).await;
}

#[actix_rt::test]
async fn releases_are_split_to_fit_the_frames_the_peer_accepts() {
    // The exporter accepts frames of 1 KiB: 600 releases (about 3 bytes each here, up to 20)
    // need several, or they could not be sent at all.
    drop_all_at_once(Config::default().max_frame_len(1024), Config::default(), 20, 30).await;
}

#[actix_rt::test]
async fn a_ref_received_again_while_its_release_is_in_flight_is_counted() {
    let (server, client) = netref::connect_pair(Service::shared(store()), Service::void());
    let root = client.root().await.unwrap();
    for _ in 0..200 {
        let a: NetRef = root.call_method("give", (0usize,)).await.unwrap();
        // Drop and immediately receive the same object again: the old proxy's release races
        // the new receipt.
        drop(a);
        let b: NetRef = root.call_method("give", (0usize,)).await.unwrap();
        let _: i64 = b.getattr("index").await.unwrap();
    }
    wait_until(Duration::from_secs(5), "all released", || async {
        server.stats().await.unwrap().unpinned_exports == 0
    })
    .await;
    assert!(!server.is_closed() && !client.is_closed());
}
