//! The round trip of a forwarded call against a direct one: an owner A serves a calculator, a
//! middle M holds A's netref and hands it to a client C; C's calls go C → M → A and back,
//! M's own calls go M → A. All three parties run in this process over TCP on loopback.
//!
//! Run: `cargo run --release --example forward_rtt [calls] [runs]` (defaults 5000 and 7).
//! Prints the median per-call latency of each run and the median of the runs.

use std::time::{Duration, Instant};

use netref::prelude::*;
use tokio::net::{TcpListener, TcpStream};

async fn tcp_pair(server: Service, client: Service) -> (Peer, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted, connected) = tokio::join!(listener.accept(), TcpStream::connect(addr));
    accepted.as_ref().unwrap().0.set_nodelay(true).unwrap();
    connected.as_ref().unwrap().set_nodelay(true).unwrap();
    let server_peer = netref::from_tcp(accepted.unwrap().0, server, Config::default()).unwrap();
    let client_peer = netref::from_tcp(connected.unwrap(), client, Config::default()).unwrap();
    (server_peer, client_peer)
}

/// The median per-call latency of `calls` sequential `add` calls on `target`.
async fn run(target: &NetRef, calls: usize) -> Duration {
    let mut times = Vec::with_capacity(calls);
    for i in 0..calls {
        let started = Instant::now();
        let sum: i64 = target.call_method("add", (i as i64, 1)).await.unwrap();
        times.push(started.elapsed());
        assert_eq!(sum, i as i64 + 1);
    }
    times.sort();
    times[calls / 2]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[actix_rt::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let calls: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);

    let calculator = Object::builder("demo.Calculator").method("add", |a: i64, b: i64| a + b).build();
    let (_owner, middle_up) = tcp_pair(Service::shared(calculator), Service::void()).await;
    let direct = middle_up.root().await.unwrap();
    let held = direct.clone();
    let gateway = Object::builder("demo.Gateway").method("backend", move || held.clone()).build();
    let (_middle_down, client) = tcp_pair(Service::shared(gateway), Service::void()).await;
    let forwarded: NetRef = client.root().await.unwrap().call_method("backend", ()).await.unwrap();

    // Warm up both paths.
    run(&direct, calls / 5).await;
    run(&forwarded, calls / 5).await;

    let (mut d, mut f) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let dt = run(&direct, calls).await;
        let ft = run(&forwarded, calls).await;
        println!("run {i}: direct {dt:?}  forwarded {ft:?}");
        d.push(dt);
        f.push(ft);
    }
    let (d, f) = (median(d), median(f));
    println!(
        "median of {runs} runs of {calls} calls: direct (M → A) {d:?}, forwarded (C → M → A) {f:?}, ratio {:.2}",
        f.as_secs_f64() / d.as_secs_f64()
    );
}
