//! The netref processes the suite runs on its hosts: a server exposing a test object, and a
//! client driving it in one of several modes. Each reports what it sees as `@event key=value`
//! lines on stdout (see [`event`]) for the orchestrator, which timestamps them on arrival; a
//! host never decides whether a scenario passed.
//!
//! They talk only to the addresses they are given (inside the suite's namespaces, or loopback).

use std::{
    io::Write,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use futures::{stream::FuturesUnordered, StreamExt};
use netref::prelude::*;
use tokio::io::AsyncBufReadExt;

/// Prints one event line for the orchestrator: `@name k=v k=v`. A value may contain spaces only
/// in the last field (the orchestrator reads the rest of the line into it).
pub(crate) fn event(name: &str, fields: &[(&str, String)]) {
    let mut line = format!("@{name}");
    for (key, value) in fields {
        line.push_str(&format!(" {key}={value}"));
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A connection configuration with `peer_timeout` in milliseconds (0: never declare lost).
pub(crate) fn config(peer_timeout_ms: u64) -> Config {
    let timeout = (peer_timeout_ms > 0).then(|| Duration::from_millis(peer_timeout_ms));
    Config::default().peer_timeout(timeout)
}

/// Objects handed to clients by `hold()` that are still alive on the server.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Counts an object handed out by `hold()`; when the last one is freed (the exports of a lost
/// connection dropped) the server says `@freed`.
#[derive(Debug)]
struct Held;

impl Held {
    fn new() -> Held {
        HELD.fetch_add(1, Ordering::SeqCst);
        Held
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if HELD.fetch_sub(1, Ordering::SeqCst) == 1 {
            event("freed", &[("held", "0".into())]);
        }
    }
}

/// The server role (inside an actix system): `faults.Target` per connection — `echo(n)`
/// (counted), `count()`, `hold()` (an object whose end the server reports), `sleep(ms)` — and
/// the named exports of [`reconnecting::exports`](crate::reconnecting::exports). Reports
/// `@ready port=P`, `@connected`, `@disconnected` with the reason, `@freed`.
pub(crate) async fn serve(
    listen: &str,
    peer_timeout_ms: u64,
    feed: Option<(crate::feed::FeedSettings, usize)>,
) -> Result<(), Error> {
    let executed = Arc::new(AtomicU64::new(0));
    let service = Service::per_connection(move |_peer| {
        let executed = executed.clone();
        let counted = executed.clone();
        Object::builder("faults.Target")
            .method("echo", move |n: u64| {
                executed.fetch_add(1, Ordering::SeqCst);
                n
            })
            .method("count", move || counted.load(Ordering::SeqCst))
            .method("hold", || Object::builder("faults.Held").payload(Held::new()).method("alive", || true).build())
            .async_method("sleep", |ms: u64| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                ms
            })
            .build()
    })
    .on_connect(|peer| event("connected", &[("id", peer.id().to_string())]))
    .on_disconnect(|peer| {
        let reason = peer.close_reason().map(|e| e.to_string()).unwrap_or_default();
        event("disconnected", &[("id", peer.id().to_string()), ("reason", reason)]);
    });
    let service = crate::reconnecting::exports(service, feed);
    let server = Server::builder(service).config(config(peer_timeout_ms)).bind_tcp(listen).await?;
    let port = server.local_addr().map(|a| a.port()).unwrap_or_default();
    event("ready", &[("port", port.to_string())]);
    server.stopped().await;
    Ok(())
}

/// What a client does once connected.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Mode {
    /// `--calls` sequential `echo` calls, then `@sync`.
    Sync,
    /// `--calls` `echo` calls at once, each reply checked to arrive exactly once, then the
    /// server's execution count: `@pipelined`.
    Pipelined,
    /// Holds an object of the server, starts a call that never ends (`@call-started`), and
    /// reports the call's failure (`@call-failed`) and the connection's end (`@lost`).
    Hang,
    /// Calls `echo` back to back; reports every call slower than a second (`@slow-call`), the
    /// connection's end (`@lost`), and `@report` on a `report` line on stdin.
    Steady,
    /// Through a reconnecting handle: see [`reconnecting::client`](crate::reconnecting::client).
    Reconnecting,
    /// A PubSub subscriber through a reconnecting handle: see
    /// [`feed::subscriber`](crate::feed::subscriber).
    Subscriber,
}

/// The client role: connects to `addr` and runs `mode`.
pub(crate) async fn client(addr: &str, peer_timeout_ms: u64, mode: Mode, calls: u64) -> Result<(), Error> {
    match mode {
        Mode::Reconnecting => return crate::reconnecting::client(addr, peer_timeout_ms).await,
        Mode::Subscriber => return crate::feed::subscriber(addr, peer_timeout_ms).await,
        _ => {}
    }
    let started = Instant::now();
    let peer = netref::connect(addr).config(config(peer_timeout_ms)).timeout(Duration::from_secs(10)).await?;
    let target = peer.root().await?;
    event("connected", &[("ms", started.elapsed().as_millis().to_string())]);
    match mode {
        Mode::Sync => sync_calls(&target, calls).await?,
        Mode::Pipelined => pipelined_calls(&target, calls).await?,
        Mode::Hang => hang(&peer, &target).await,
        Mode::Steady => steady(&peer, &target).await,
        Mode::Reconnecting | Mode::Subscriber => unreachable!("these clients connect on their own"),
    }
    Ok(())
}

async fn sync_calls(target: &NetRef, calls: u64) -> Result<(), Error> {
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for n in 0..calls {
        let call = Instant::now();
        let back: u64 = target.call_method("echo", (n,)).await?;
        slowest = slowest.max(call.elapsed());
        if back != n {
            event("wrong-reply", &[("sent", n.to_string()), ("got", back.to_string())]);
        }
    }
    let elapsed = started.elapsed();
    let mean = elapsed / calls.max(1) as u32;
    event(
        "sync",
        &[
            ("calls", calls.to_string()),
            ("ms", elapsed.as_millis().to_string()),
            ("mean_ms", mean.as_millis().to_string()),
            ("slowest_ms", slowest.as_millis().to_string()),
        ],
    );
    Ok(())
}

async fn pipelined_calls(target: &NetRef, calls: u64) -> Result<(), Error> {
    let before: u64 = target.call_method("count", ()).await?;
    let started = Instant::now();
    let mut replies = vec![0u32; calls as usize];
    let mut pending: FuturesUnordered<_> = (0..calls).map(|n| target.call_method::<u64>("echo", (n,))).collect();
    let mut failed = 0u64;
    let mut first_error = String::new();
    while let Some(reply) = pending.next().await {
        match reply {
            Ok(n) if n < calls => replies[n as usize] += 1,
            Ok(n) => event("wrong-reply", &[("got", n.to_string())]),
            Err(e) => {
                failed += 1;
                if first_error.is_empty() {
                    first_error = e.to_string();
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let executed: u64 = target.call_method::<u64>("count", ()).await? - before;
    let once = replies.iter().filter(|&&r| r == 1).count();
    let missing = replies.iter().filter(|&&r| r == 0).count();
    let duplicated = replies.iter().filter(|&&r| r > 1).count();
    event(
        "pipelined",
        &[
            ("calls", calls.to_string()),
            ("ms", elapsed.as_millis().to_string()),
            ("exactly_once", once.to_string()),
            ("missing", missing.to_string()),
            ("duplicated", duplicated.to_string()),
            ("failed", failed.to_string()),
            ("server_executed", executed.to_string()),
            ("first_error", first_error),
        ],
    );
    Ok(())
}

async fn hang(peer: &Peer, target: &NetRef) {
    let held = match target.call_method::<NetRef>("hold", ()).await {
        Ok(held) => held,
        Err(e) => return event("error", &[("what", format!("hold: {e}"))]),
    };
    let never = target.call_method::<u64>("sleep", (3_600_000u64,));
    event("call-started", &[]);
    let outcome = never.await;
    event("call-failed", &[("error", format!("{outcome:?}"))]);
    peer.closed().await;
    let reason = peer.close_reason().map(|e| e.to_string()).unwrap_or_default();
    event("lost", &[("reason", reason)]);
    let after = held.call_method::<bool>("alive", ()).await;
    event("held-netref", &[("call", format!("{after:?}"))]);
}

async fn steady(peer: &Peer, target: &NetRef) {
    let slowest = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let report = {
        let (peer, slowest, calls) = (peer.clone(), slowest.clone(), calls.clone());
        async move {
            let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = stdin.next_line().await {
                if line.trim() == "report" {
                    event(
                        "report",
                        &[
                            ("closed", peer.is_closed().to_string()),
                            ("calls", calls.load(Ordering::SeqCst).to_string()),
                            ("slowest_ms", slowest.load(Ordering::SeqCst).to_string()),
                        ],
                    );
                }
            }
        }
    };
    let calling = async {
        let mut n = 0u64;
        loop {
            let started = Instant::now();
            let outcome = target.call_method::<u64>("echo", (n,)).await;
            let took = started.elapsed();
            slowest.fetch_max(took.as_millis() as u64, Ordering::SeqCst);
            match outcome {
                Ok(_) => {
                    calls.fetch_add(1, Ordering::SeqCst);
                    if took > Duration::from_secs(1) {
                        event("slow-call", &[("ms", took.as_millis().to_string())]);
                    }
                }
                Err(e) => {
                    event("call-failed", &[("ms", took.as_millis().to_string()), ("error", e.to_string())]);
                    break;
                }
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peer.closed().await;
        let reason = peer.close_reason().map(|e| e.to_string()).unwrap_or_default();
        event("lost", &[("reason", reason)]);
    };
    // Reports keep coming after the loss, until stdin closes.
    tokio::join!(report, calling);
}
