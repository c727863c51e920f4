//! Round-trip benchmark for `call_method("add", (1, 2))`.
//!
//! `cargo bench --bench roundtrip` runs, in one go:
//! - **in-process**: both peers on one actix arbiter over the in-memory transport;
//! - **tcp**: a server in a child process (this same binary, `--server`), the client here.
//!
//! For each it measures sequential (sync) calls — calls/s, p50 and p99 — and pipelined calls
//! with a window of in-flight requests, and prints one `metric value unit` line per figure.
//! Runs are repeated (`--runs N`, default 5) and the median and min–max are reported.

mod support;

use std::{
    future::IntoFuture,
    time::{Duration, Instant},
};

use futures::{stream, StreamExt};
use netref::prelude::*;

fn calculator() -> Object {
    Object::builder("bench.Calculator").method("add", |a: i64, b: i64| a + b).build()
}

struct Figures {
    sync_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    pipelined_per_s: f64,
}

async fn measure(calc: &NetRef, sync_calls: usize, pipelined_calls: usize, window: usize) -> Figures {
    // Warm up.
    for _ in 0..1000 {
        let _: i64 = calc.call_method("add", (1, 2)).await.unwrap();
    }
    let mut lat = Vec::with_capacity(sync_calls);
    let start = Instant::now();
    for _ in 0..sync_calls {
        let t = Instant::now();
        let sum: i64 = calc.call_method("add", (1, 2)).await.unwrap();
        debug_assert_eq!(sum, 3);
        lat.push(t.elapsed());
    }
    let sync_elapsed = start.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;

    let start = Instant::now();
    let done = stream::iter(0..pipelined_calls)
        .map(|_| calc.call_method::<i64>("add", (1, 2)).into_future())
        .buffer_unordered(window)
        .fold(0usize, |n, r| async move {
            r.unwrap();
            n + 1
        })
        .await;
    assert_eq!(done, pipelined_calls);
    let pipe_elapsed = start.elapsed();
    Figures {
        sync_per_s: sync_calls as f64 / sync_elapsed.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        pipelined_per_s: pipelined_calls as f64 / pipe_elapsed.as_secs_f64(),
    }
}

fn report(name: &str, runs: &[Figures]) {
    let stat = |f: &dyn Fn(&Figures) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let line = |metric: &str, unit: &str, f: &dyn Fn(&Figures) -> f64| {
        let (med, min, max) = stat(f);
        println!("{name}.{metric} {med:.1} {unit} [min {min:.1} max {max:.1}, n={}]", runs.len());
    };
    line("sync_calls", "calls/s", &|f| f.sync_per_s);
    line("sync_p50", "us", &|f| f.p50_us);
    line("sync_p99", "us", &|f| f.p99_us);
    line("pipelined_calls", "calls/s", &|f| f.pipelined_per_s);
}

fn serve(addr: &str) {
    let sys = actix_rt::System::new();
    sys.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        println!("listening on {}", listener.local_addr().unwrap());
        netref::serve_tcp(listener, Service::shared(calculator()), Config::default(), None).await.unwrap();
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--server") {
        return serve(&args[i + 1]);
    }
    let runs: usize = args.iter().position(|a| a == "--runs").map_or(5, |i| args[i + 1].parse().unwrap());
    let quick = args.iter().any(|a| a == "--quick");
    let (sync_calls, pipelined, window) = if quick { (2_000, 20_000, 1000) } else { (20_000, 200_000, 1000) };

    let mut inproc = Vec::new();
    for _ in 0..runs {
        let sys = actix_rt::System::new();
        inproc.push(sys.block_on(async {
            let (_server, client) = netref::connect_pair(Service::shared(calculator()), Service::void());
            let calc = client.root().await.unwrap();
            measure(&calc, sync_calls, pipelined, window).await
        }));
    }
    report("inproc", &inproc);

    let server = support::ServerProcess::spawn(&["--server", "127.0.0.1:0"]);
    let addr = server.addr.clone();
    let mut tcp = Vec::new();
    for _ in 0..runs {
        let sys = actix_rt::System::new();
        tcp.push(sys.block_on(async {
            let client = netref::connect_tcp(addr.as_str(), Service::void(), Config::default(), Duration::from_secs(5))
                .await
                .unwrap();
            let calc = client.root().await.unwrap();
            let f = measure(&calc, sync_calls, pipelined, window).await;
            client.close().await;
            f
        }));
    }
    report("tcp", &tcp);
    drop(server);
}
