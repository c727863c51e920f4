//! What the suite's hosts need for reconnection: the named actor (`counter`) and the PubSub
//! broker (`broker`, with a publisher ticking on `ticks`) the server exports, and a client that
//! keeps calling the server's root and the named actor through a reconnecting handle
//! (`netref::connect(..).reconnect(..)`) while a subscriber of its receives the ticks. The
//! client reports the handle's connection events, the first failure of an outage, when calls
//! work again (and whether the root and the actor are the netrefs they were), and on request
//! the ticks received. Like `host`, it only reports (`@event` lines); the orchestrator judges.
//!
//! Runs inside an actix system (the actors need one).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use actix::prelude::*;
use futures::StreamExt;
use netref::{prelude::*, ConnectionEvent, ReconnectPolicy};
use netref_actors::pubsub::{expose_subscriber, Broker, Publish, Published, Subscription};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncBufReadExt;

use crate::host::{config, event};

/// The topic the server's publisher ticks on, every [`TICK`].
pub(crate) const TICKS: &str = "ticks";
const TICK: Duration = Duration::from_millis(100);
/// The name the server exports its broker under.
pub(crate) const BROKER: &str = "broker";

/// What the server exports by name beside its root: the counter and the broker, whose topic
/// [`TICKS`] gets a tick every [`TICK`] from now on (and the feed, when given one).
pub(crate) fn exports(service: Service, feed: Option<(crate::feed::FeedSettings, usize)>) -> Service {
    let counter = expose(Counter::default().start()).handle::<Add>();
    let broker = Broker::new().start();
    if let Some((settings, subscribers)) = feed {
        crate::feed::publish(broker.clone(), settings, subscribers);
    }
    let publisher = broker.clone();
    actix_rt::spawn(async move {
        let mut n = 0u64;
        loop {
            n += 1;
            if let Ok(tick) = Publish::new(TICKS, &n) {
                let _ = publisher.send(tick).await;
            }
            tokio::time::sleep(TICK).await;
        }
    });
    service.export(COUNTER, counter).export(BROKER, Broker::export(broker))
}

/// The client's subscriber: counts the ticks it receives.
#[derive(Debug)]
struct TickCounter(Arc<AtomicU64>);

impl Actor for TickCounter {
    type Context = Context<Self>;
}

impl RemoteActor for TickCounter {
    const NAME: &'static str = "faults.TickCounter";
}

impl Handler<Published> for TickCounter {
    type Result = ();
    fn handle(&mut self, _: Published, _: &mut Context<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// The server's named actor: counts what it is sent.
#[derive(Debug, Default)]
pub(crate) struct Counter(u64);

impl Actor for Counter {
    type Context = Context<Self>;
}

impl RemoteActor for Counter {
    const NAME: &'static str = "faults.Counter";
}

/// Adds to the counter; answers the new count.
#[derive(Debug, Message, Serialize, Deserialize)]
#[rtype(result = "u64")]
pub(crate) struct Add(pub(crate) u64);

impl RemoteMessage for Add {
    const NAME: &'static str = "faults.Add";
}

impl Handler<Add> for Counter {
    type Result = u64;
    fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> u64 {
        self.0 += n;
        self.0
    }
}

/// The name the server exports its counter under.
pub(crate) const COUNTER: &str = "counter";

/// The back-off the client reconnects with: 100 ms doubling to 1 s, jittered, no limit.
pub(crate) fn policy() -> ReconnectPolicy {
    ReconnectPolicy::exponential(Duration::from_millis(100), Duration::from_secs(1))
}

/// The reconnecting client: calls the root's `echo` and the named counter back to back (each
/// call with a 30 s expiry), and reports `@conn` for each connection event, `@call-failed` for
/// the first failed round of an outage, `@recovered` for the first good round on a new
/// connection (with the time since the outage's first failure, or since the round began, and
/// whether the root and the actor are the netrefs they were), and `@report` on a `report`
/// line.
pub(crate) async fn client(addr: &str, peer_timeout_ms: u64) -> Result<(), Error> {
    let handle = netref::connect(addr)
        .config(config(peer_timeout_ms))
        .timeout(Duration::from_secs(2))
        .reconnect(policy())
        .await?;
    let root = handle.root().await?;
    let counter: ActorRef<Counter> = handle.lookup_actor(COUNTER).await?;
    let ticks = Arc::new(AtomicU64::new(0));
    let subscriber = expose_subscriber(TickCounter(ticks.clone()).start());
    let subscription = Subscription::start(&handle, BROKER, TICKS, &subscriber).await?;
    event("connected", &[("ms", "0".into())]);

    let mut events = handle.events();
    let watching = async move {
        while let Some(change) = events.next().await {
            match change {
                ConnectionEvent::Connected { peer } => {
                    event("conn", &[("what", "connected".into()), ("id", peer.id().to_string())])
                }
                ConnectionEvent::Lost { connection, reason } => event(
                    "conn",
                    &[("what", "lost".into()), ("id", connection.to_string()), ("reason", reason.to_string())],
                ),
                ConnectionEvent::Reconnected { peer, attempts, downtime } => event(
                    "conn",
                    &[
                        ("what", "reconnected".into()),
                        ("id", peer.id().to_string()),
                        ("attempts", attempts.to_string()),
                        ("downtime_ms", downtime.as_millis().to_string()),
                    ],
                ),
                ConnectionEvent::GaveUp { attempts, last_error } => event(
                    "conn",
                    &[
                        ("what", "gave-up".into()),
                        ("attempts", attempts.to_string()),
                        ("reason", last_error.to_string()),
                    ],
                ),
                ConnectionEvent::Closed => event("conn", &[("what", "closed".into())]),
                _ => event("conn", &[("what", "other".into())]),
            }
        }
    };

    let rounds = Arc::new(AtomicU64::new(0));
    let reporting = {
        let rounds = rounds.clone();
        let handle = handle.clone();
        let ticks = ticks.clone();
        async move {
            let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
            while let Ok(Some(line)) = stdin.next_line().await {
                if line.trim() == "report" {
                    event(
                        "report",
                        &[
                            ("calls", rounds.load(Ordering::SeqCst).to_string()),
                            ("connected", handle.is_connected().to_string()),
                            ("ticks", ticks.load(Ordering::SeqCst).to_string()),
                            ("subscribed_times", subscription.status().subscriptions.to_string()),
                        ],
                    );
                }
            }
        }
    };

    let calling = async {
        // The connection the last good round ran on, and when rounds started failing.
        let mut last_connection = handle.peer().map(|p| p.id());
        let mut failing_since: Option<Instant> = None;
        let mut n = 0u64;
        loop {
            n += 1;
            let started = Instant::now();
            let echo = root.call_method::<u64>("echo", (n,));
            echo.set_expiry(Some(Duration::from_secs(30)));
            let outcome = match echo.await {
                Ok(back) if back == n => counter.send(Add(1)).await.map(|_| ()),
                Ok(back) => Err(Error::ConnectionClosed(format!("echo({n}) answered {back}"))),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => {
                    rounds.fetch_add(1, Ordering::SeqCst);
                    let connection = handle.peer().map(|p| p.id());
                    if connection != last_connection {
                        // The first good round on a new connection (a round made while the
                        // handle was reconnecting waits for it, so none may have failed).
                        let same_root = handle.root().await.is_ok_and(|r| r == root);
                        let same_actor = handle.lookup_actor::<Counter>(COUNTER).await.is_ok_and(|c| c == counter);
                        let since = failing_since.take().unwrap_or(started);
                        event(
                            "recovered",
                            &[
                                ("after_ms", since.elapsed().as_millis().to_string()),
                                ("same_root", same_root.to_string()),
                                ("same_actor", same_actor.to_string()),
                            ],
                        );
                        last_connection = connection;
                    }
                }
                Err(e) => {
                    if failing_since.is_none() {
                        failing_since = Some(Instant::now());
                        event("call-failed", &[("error", e.to_string())]);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::join!(watching, reporting, calling);
    Ok(())
}
