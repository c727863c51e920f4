//! Bounded load test: one server process, `--clients` concurrent clients (default 200) each
//! making `--calls` sequential `add` calls (default 500) from this process. Reports zero
//! errors, throughput (calls/s) and the server's peak memory (VmHWM).
//!
//! `cargo bench --bench load -- [--clients N] [--calls N] [--workers N]`

mod support;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use netref::{prelude::*, Server};

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter().position(|a| a == name).map_or(default, |i| args[i + 1].parse().expect("a number"))
}

fn serve(workers: usize) {
    actix_rt::System::new().block_on(async move {
        let calc = Object::builder("load.Calculator").method("add", |a: i64, b: i64| a + b).build();
        let server = Server::builder(Service::shared(calc))
            .workers(workers)
            .max_connections(100_000)
            .bind_tcp("127.0.0.1:0")
            .await
            .unwrap();
        println!("listening on {}", server.address());
        server.stopped().await;
    });
}

fn peak_memory_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--server") {
        return serve(arg(&args, "--workers", 1));
    }
    let clients = arg(&args, "--clients", 200);
    let calls = arg(&args, "--calls", 500);
    let workers = arg(&args, "--workers", 1);
    let workers_arg = workers.to_string();
    let server = support::ServerProcess::spawn(&["--server", "--workers", &workers_arg]);
    let addr = server.addr.clone();
    let idle_kib = peak_memory_kib(server.pid());

    let errors = Arc::new(AtomicUsize::new(0));
    let (elapsed, done) = actix_rt::System::new().block_on({
        let errors = errors.clone();
        async move {
            let mut peers = Vec::with_capacity(clients);
            for _ in 0..clients {
                let peer =
                    netref::connect_tcp(addr.as_str(), Service::void(), Config::default(), Duration::from_secs(10))
                        .await
                        .expect("connect");
                let root = peer.root().await.expect("root");
                peers.push((peer, root));
            }
            let start = Instant::now();
            let tasks: Vec<_> = peers
                .iter()
                .enumerate()
                .map(|(i, (_, root))| {
                    let root = root.clone();
                    let errors = errors.clone();
                    actix_rt::spawn(async move {
                        let mut ok = 0usize;
                        for n in 0..calls as i64 {
                            match root.call_method::<i64>("add", (n, i as i64)).await {
                                Ok(v) if v == n + i as i64 => ok += 1,
                                _ => {
                                    errors.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        ok
                    })
                })
                .collect();
            let mut done = 0;
            for t in tasks {
                done += t.await.unwrap();
            }
            let elapsed = start.elapsed();
            for (peer, _) in &peers {
                peer.close().await;
            }
            (elapsed, done)
        }
    });
    let peak_kib = peak_memory_kib(server.pid());
    let errors = errors.load(Ordering::Relaxed);
    println!("load.clients {clients}");
    println!("load.calls_per_client {calls}");
    println!("load.server_workers {workers}");
    println!("load.completed_calls {done}");
    println!("load.errors {errors}");
    println!("load.elapsed {:.3} s", elapsed.as_secs_f64());
    println!("load.throughput {:.0} calls/s", done as f64 / elapsed.as_secs_f64());
    if let (Some(idle), Some(peak)) = (idle_kib, peak_kib) {
        println!("load.server_rss_idle {idle} KiB");
        println!("load.server_rss_peak {peak} KiB");
    }
    assert_eq!(errors, 0, "the load test saw errors");
    assert_eq!(done, clients * calls);
}
