//! `soak`: netref under a long mixed load on loopback, watching this process's memory and
//! descriptors. A server and its clients run in this one process: workers on a long-lived
//! connection make plain calls, calls that call back into the client, and create, use and drop
//! remote objects; a churn task opens a connection, calls once and closes it, over and over.
//! Every `--every-secs` it prints RSS and open descriptors (from /proc/self) with the work
//! done, and at the end their start, end and maximum.
//!
//! A benchmark, not a test: not run in CI (`cargo run --release -p netref-faults --bin soak`,
//! ten minutes by default). It talks only to loopback and ends everything it starts.

use std::{
    process::ExitCode,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use clap::Parser;
use netref::prelude::*;

/// Mixed calls, callbacks, object churn and connection churn, with RSS and descriptors over
/// time.
#[derive(Debug, Parser)]
#[command(name = "soak")]
struct Cli {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 600)]
    duration_secs: u64,
    /// Seconds between samples.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    every_secs: u64,
    /// Workers on the long-lived connection.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// Work done so far.
#[derive(Debug, Default)]
struct Done {
    calls: AtomicU64,
    callbacks: AtomicU64,
    objects: AtomicU64,
    connections: AtomicU64,
    errors: AtomicU64,
}

/// One sample of this process.
#[derive(Clone, Copy, Debug)]
struct Sample {
    rss_kib: u64,
    fds: u64,
}

fn sample() -> Sample {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir("/proc/self/fd").map(|d| d.count() as u64).unwrap_or(0);
    Sample { rss_kib, fds }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn service() -> Service {
    let root = Object::builder("soak.Target")
        .method("echo", |s: String| s)
        .try_async_method("apply", |callback: NetRef, x: i64| async move {
            let y: i64 = callback.call((x,)).await?;
            Ok::<_, netref::Error>(y + 1)
        })
        .method("make", |n: i64| {
            Object::builder("soak.Item").field("n", n).method("double", move || n * 2).payload(vec![0u8; 1024]).build()
        })
        .build();
    Service::shared(root)
}

/// Calls, callbacks and object churn on one connection until `until`.
async fn worker(target: NetRef, done: Arc<Done>, until: Instant) {
    let mut round: i64 = 0;
    while Instant::now() < until {
        round += 1;
        let text = format!("round {round}");
        match target.call_method::<String>("echo", (text.clone(),)).await {
            Ok(back) if back == text => done.calls.fetch_add(1, Ordering::Relaxed),
            _ => done.errors.fetch_add(1, Ordering::Relaxed),
        };
        let callback = Object::function(|x: i64| x * 10);
        match target.call_method::<i64>("apply", (callback, round)).await {
            Ok(y) if y == round * 10 + 1 => done.callbacks.fetch_add(1, Ordering::Relaxed),
            _ => done.errors.fetch_add(1, Ordering::Relaxed),
        };
        let item = async {
            let item: NetRef = target.call_method("make", (round,)).await?;
            item.call_method::<i64>("double", ()).await
        };
        match item.await {
            Ok(d) if d == round * 2 => done.objects.fetch_add(1, Ordering::Relaxed),
            _ => done.errors.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Connection churn until `until`: connect, call once, close.
async fn churn(addr: String, done: Arc<Done>, until: Instant) {
    while Instant::now() < until {
        let once = async {
            let peer = netref::connect(addr.as_str()).timeout(Duration::from_secs(10)).await?;
            let target = peer.root().await?;
            let back: String = target.call_method("echo", ("churn",)).await?;
            peer.close().await;
            Ok::<_, netref::Error>(back)
        };
        match once.await {
            Ok(_) => done.connections.fetch_add(1, Ordering::Relaxed),
            Err(_) => done.errors.fetch_add(1, Ordering::Relaxed),
        };
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let server = match Server::builder(service()).bind_tcp("127.0.0.1:0").await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("soak: cannot start the server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let addr = server.address().to_string();
    let peer = match netref::connect(addr.as_str()).service(Service::void()).await {
        Ok(peer) => peer,
        Err(e) => {
            eprintln!("soak: cannot connect: {e}");
            return ExitCode::FAILURE;
        }
    };
    let target = match peer.root().await {
        Ok(target) => target,
        Err(e) => {
            eprintln!("soak: no root: {e}");
            return ExitCode::FAILURE;
        }
    };

    let started = Instant::now();
    let until = started + Duration::from_secs(cli.duration_secs);
    let done = Arc::new(Done::default());
    let mut tasks = Vec::new();
    for _ in 0..cli.workers {
        tasks.push(tokio::spawn(worker(target.clone(), done.clone(), until)));
    }
    tasks.push(tokio::spawn(churn(addr.clone(), done.clone(), until)));

    println!(
        "soak: {} s on loopback, {} workers on one connection + connection churn; a sample every {} s",
        cli.duration_secs, cli.workers, cli.every_secs
    );
    println!("| t (s) | RSS | fds | calls | callbacks | objects | connections | errors | server conns |");
    println!("|---|---|---|---|---|---|---|---|---|");
    let first = sample();
    let (mut max_rss, mut max_fds) = (first.rss_kib, first.fds);
    let print = |t: u64, s: Sample| {
        println!(
            "| {t} | {} | {} | {} | {} | {} | {} | {} | {} |",
            mib(s.rss_kib),
            s.fds,
            done.calls.load(Ordering::Relaxed),
            done.callbacks.load(Ordering::Relaxed),
            done.objects.load(Ordering::Relaxed),
            done.connections.load(Ordering::Relaxed),
            done.errors.load(Ordering::Relaxed),
            server.connections()
        );
    };
    print(0, first);
    let mut last = first;
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(cli.every_secs),
        Duration::from_secs(cli.every_secs),
    );
    while Instant::now() < until {
        ticker.tick().await;
        last = sample();
        max_rss = max_rss.max(last.rss_kib);
        max_fds = max_fds.max(last.fds);
        print(started.elapsed().as_secs(), last);
    }
    for task in tasks {
        let _ = task.await;
    }
    peer.close().await;
    server.shutdown(Duration::from_secs(5)).await;
    let errors = done.errors.load(Ordering::Relaxed);
    println!(
        "soak: RSS start {} end {} max {}; fds start {} end {} max {}; errors {errors}",
        mib(first.rss_kib),
        mib(last.rss_kib),
        mib(max_rss),
        first.fds,
        last.fds,
        max_fds
    );
    if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
