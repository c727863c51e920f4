//! Idle-connection memory: one server process holds `--conns` idle connections (default
//! 10,000) opened by this process; prints the server's RSS before and after, and per connection.
//!
//! `cargo bench --bench idle -- [--conns N]` (raise `ulimit -n` above 2×N first).

mod support;

use std::time::Duration;

use netref::{prelude::*, Server};

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--server") {
        actix_rt::System::new().block_on(async {
            let root = Object::builder("idle.Root").method("ping", || 1).build();
            let server = Server::builder(Service::shared(root))
                .max_connections(1_000_000)
                .bind_tcp("127.0.0.1:0")
                .await
                .unwrap();
            println!("listening on {}", server.address());
            server.stopped().await;
        });
        return;
    }
    let conns: usize = args.iter().position(|a| a == "--conns").map_or(10_000, |i| args[i + 1].parse().unwrap());
    let server = support::ServerProcess::spawn(&["--server"]);
    let addr = server.addr.clone();
    let pid = server.pid();
    let before = rss_kib(pid);
    actix_rt::System::new().block_on(async move {
        let mut peers = Vec::with_capacity(conns);
        for _ in 0..conns {
            let peer = netref::connect_tcp(addr.as_str(), Service::void(), Config::default(), Duration::from_secs(10))
                .await
                .unwrap();
            peers.push(peer);
        }
        // Every connection has done its handshake; make one call on the last to be sure the
        // server is responsive with all of them open.
        let root = peers.last().unwrap().root().await.unwrap();
        assert_eq!(root.call_method::<i64>("ping", ()).await.unwrap(), 1);
        let after = rss_kib(pid);
        println!("idle.connections {conns}");
        println!("idle.server_rss_before {before} KiB");
        println!("idle.server_rss_after {after} KiB");
        println!("idle.per_connection {:.1} KiB", (after - before) as f64 / conns as f64);
    });
}
