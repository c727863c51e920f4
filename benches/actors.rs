//! Remote actor benchmark over TCP between two processes: `ActorRef::send` round trips/s
//! (sequential, with p50/p99) and `do_send` messages/s (a burst of one-way messages, then one
//! `send` that, by per-connection ordering, completes after all of them were handled).
//!
//! `cargo bench --bench actors -- [--runs N]`

mod support;

use std::time::{Duration, Instant};

use actix::prelude::*;
use netref::{expose, prelude::*, ActorRef, RemoteActor, RemoteMessage, Server};
use serde::{Deserialize, Serialize};

#[derive(Default)]
struct Counter(u64);

impl Actor for Counter {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        // Bursts of one-way messages must not be throttled by the default capacity of 16.
        ctx.set_mailbox_capacity(1 << 16);
    }
}

impl RemoteActor for Counter {
    const NAME: &'static str = "bench.Counter";
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "u64")]
struct Incr(u64);

impl RemoteMessage for Incr {
    const NAME: &'static str = "bench.Incr";
}

impl Handler<Incr> for Counter {
    type Result = u64;
    fn handle(&mut self, msg: Incr, _: &mut Context<Self>) -> u64 {
        self.0 += msg.0;
        self.0
    }
}

fn serve() {
    actix_rt::System::new().block_on(async {
        let service = Service::void().export("counter", expose(Counter::default().start()).handle::<Incr>());
        let server = Server::builder(service).bind_tcp("127.0.0.1:0").await.unwrap();
        println!("listening on {}", server.address());
        server.stopped().await;
    });
}

fn median(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--server") {
        return serve();
    }
    let runs: usize = args.iter().position(|a| a == "--runs").map_or(5, |i| args[i + 1].parse().unwrap());
    let server = support::ServerProcess::spawn(&["--server"]);
    let addr = server.addr.clone();

    let (mut sends, mut p50s, mut p99s, mut casts) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (send_rate, p50, p99, cast_rate) = actix_rt::System::new().block_on(async {
            // The one-way burst below queues all its messages before the connection runs: room
            // for all of them, so that none is refused with back-pressure.
            let config = Config::default().max_queued_notifications(200_000);
            let peer =
                netref::connect_tcp(addr.as_str(), Service::void(), config, Duration::from_secs(5)).await.unwrap();
            let counter: ActorRef<Counter> = peer.lookup_actor("counter").await.unwrap();
            for _ in 0..1000 {
                counter.send(Incr(0)).await.unwrap();
            }
            let n = 20_000;
            let mut lat = Vec::with_capacity(n);
            let start = Instant::now();
            for _ in 0..n {
                let t = Instant::now();
                counter.send(Incr(1)).await.unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
            let send_rate = n as f64 / start.elapsed().as_secs_f64();
            lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let (p50, p99) = (lat[n / 2], lat[n * 99 / 100]);

            let m = 200_000u64;
            let before = counter.send(Incr(0)).await.unwrap();
            let start = Instant::now();
            for _ in 0..m {
                counter.do_send(Incr(1)).unwrap();
            }
            let after = counter.send(Incr(0)).await.unwrap();
            let cast_rate = m as f64 / start.elapsed().as_secs_f64();
            assert_eq!(after - before, m, "every one-way message was handled before the following send");
            peer.close().await;
            (send_rate, p50, p99, cast_rate)
        });
        sends.push(send_rate);
        p50s.push(p50);
        p99s.push(p99);
        casts.push(cast_rate);
    }
    for (name, unit, v) in [
        ("actor.send", "calls/s", sends),
        ("actor.send_p50", "us", p50s),
        ("actor.send_p99", "us", p99s),
        ("actor.do_send", "msgs/s", casts),
    ] {
        let (med, min, max) = median(v);
        println!("{name} {med:.1} {unit} [min {min:.1} max {max:.1}, n={runs}]");
    }
}
