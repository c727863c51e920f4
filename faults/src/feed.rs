//! The PubSub feed of scenario (e): a publisher on the server publishing numbered messages of a
//! fixed size at a fixed rate on [`FEED`] through the server's broker, reporting what each
//! publish became (`Delivery`: delivered, queued, dropped, ...) and the broker's counters; and
//! a subscriber on a reconnecting handle (a `Subscription`, renewed after each reconnection)
//! that counts what it receives, the gaps in the numbering and the losses the broker reports
//! (`Published::missed`), and reports what its `Subscription` counted from the broker's
//! `Published::seq` (received and missed, over all its connections). Like `host`, both only
//! report (`@event` lines).
//!
//! Runs inside an actix system (the broker and the subscriber are actors).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use actix::prelude::*;
use futures::StreamExt;
use netref::ConnectionEvent;
use netref::{prelude::*, Error};
use netref_actors::pubsub::{expose_subscriber, Broker, Publish, Published, Stats, Subscription};
use tokio::io::AsyncBufReadExt;

use crate::{
    host::{config, event},
    reconnecting::{policy, BROKER},
};

/// The topic the feed is published on.
pub(crate) const FEED: &str = "feed";

/// How the server publishes the feed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FeedSettings {
    /// Messages per second.
    pub(crate) rate: u64,
    /// Bytes of payload per message.
    pub(crate) bytes: usize,
    /// How long it publishes, once the first subscriber is there.
    pub(crate) duration: Duration,
}

/// Publishes the feed on `broker`: waits for `subscribers` subscriptions, then publishes
/// `rate` messages a second for `duration`, each `(seq, payload)` with seq from 1; reports
/// `@feed` every second (sums of the publishes' `Delivery` counts and the broker's counters)
/// and `@feed-done` with the last seq.
pub(crate) fn publish(broker: Addr<Broker>, settings: FeedSettings, subscribers: usize) {
    actix_rt::spawn(async move {
        loop {
            match broker.send(Stats).await {
                Ok(stats) if stats.subscriptions >= subscribers => break,
                Ok(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                Err(_) => return,
            }
        }
        event("feed-start", &[]);
        let payload = "x".repeat(settings.bytes);
        let interval = Duration::from_secs(1) / settings.rate.max(1) as u32;
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let total = settings.rate * settings.duration.as_secs();
        let (mut delivered, mut queued, mut dropped, mut disconnected, mut closed) = (0, 0, 0, 0, 0);
        for seq in 1..=total {
            ticker.tick().await;
            let Ok(message) = Publish::new(FEED, &(seq, payload.as_str())) else { return };
            if let Ok(delivery) = broker.send(message).await {
                delivered += delivery.delivered;
                queued += delivery.queued;
                dropped += delivery.dropped;
                disconnected += delivery.disconnected;
                closed += delivery.closed;
            }
            if seq % settings.rate == 0 || seq == total {
                let stats = broker.send(Stats).await.ok();
                event(
                    if seq == total { "feed-done" } else { "feed" },
                    &[
                        ("seq", seq.to_string()),
                        ("delivered", delivered.to_string()),
                        ("queued", queued.to_string()),
                        ("dropped", dropped.to_string()),
                        ("disconnected", disconnected.to_string()),
                        ("closed", closed.to_string()),
                        ("broker_queued", stats.as_ref().map_or(0, |s| s.queued).to_string()),
                        ("overflow_dropped", stats.as_ref().map_or(0, |s| s.overflow_dropped).to_string()),
                        ("lost_at_disconnect", stats.as_ref().map_or(0, |s| s.lost_at_disconnect).to_string()),
                        ("links_and_subscribers_dropped", stats.as_ref().map_or(0, |s| s.dropped).to_string()),
                        ("subscriptions", stats.as_ref().map_or(0, |s| s.subscriptions).to_string()),
                    ],
                );
            }
        }
    });
}

/// What a subscriber has received.
#[derive(Debug, Default)]
struct Received {
    first: u64,
    last: u64,
    messages: u64,
    /// Seqs skipped between consecutive messages.
    gaps: u64,
    /// Sum of `Published::missed`.
    missed: u64,
    /// Messages that came out of order or twice.
    disorder: u64,
}

struct FeedCounter(Arc<Mutex<Received>>);

impl Actor for FeedCounter {
    type Context = Context<Self>;
}

impl RemoteActor for FeedCounter {
    const NAME: &'static str = "faults.FeedCounter";
}

impl Handler<Published> for FeedCounter {
    type Result = ();
    fn handle(&mut self, message: Published, _: &mut Context<Self>) {
        let Ok((seq, _)) = message.decode::<(u64, String)>() else { return };
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        r.missed += message.missed;
        r.messages += 1;
        if r.first == 0 {
            r.first = seq;
        } else if seq <= r.last {
            r.disorder += 1;
            return;
        } else {
            r.gaps += seq - r.last - 1;
        }
        r.last = seq;
    }
}

/// The subscriber: subscribes to [`FEED`] through a reconnecting handle and answers `report`
/// lines with `@report` (first and last seq, messages, gaps, missed, disorder, times
/// subscribed, connected, and the `Subscription`'s own count: `sub_received`, `sub_missed`).
pub(crate) async fn subscriber(addr: &str, peer_timeout_ms: u64) -> Result<(), Error> {
    let handle = netref::connect(addr)
        .config(config(peer_timeout_ms))
        .timeout(Duration::from_secs(2))
        .reconnect(policy())
        .await?;
    let received = Arc::new(Mutex::new(Received::default()));
    let actor = expose_subscriber(FeedCounter(received.clone()).start());
    let subscription = Subscription::start(&handle, BROKER, FEED, &actor).await?;
    event("connected", &[("ms", "0".into())]);
    let lost = Arc::new(AtomicU64::new(0));
    let mut events = handle.events();
    let counted = lost.clone();
    actix_rt::spawn(async move {
        while let Some(change) = events.next().await {
            match change {
                ConnectionEvent::Lost { reason, .. } => {
                    counted.fetch_add(1, Ordering::SeqCst);
                    event("conn", &[("what", "lost".into()), ("reason", reason.to_string())]);
                }
                ConnectionEvent::Reconnected { attempts, downtime, .. } => event(
                    "conn",
                    &[
                        ("what", "reconnected".into()),
                        ("attempts", attempts.to_string()),
                        ("downtime_ms", downtime.as_millis().to_string()),
                    ],
                ),
                _ => {}
            }
        }
    });
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = stdin.next_line().await {
        if line.trim() != "report" {
            continue;
        }
        let r = received.lock().unwrap_or_else(|p| p.into_inner());
        let status = subscription.status();
        event(
            "report",
            &[
                ("first", r.first.to_string()),
                ("last", r.last.to_string()),
                ("messages", r.messages.to_string()),
                ("gaps", r.gaps.to_string()),
                ("missed", r.missed.to_string()),
                ("disorder", r.disorder.to_string()),
                ("subscribed_times", status.subscriptions.to_string()),
                ("sub_received", status.received.to_string()),
                ("sub_missed", status.missed.to_string()),
                ("connected", handle.is_connected().to_string()),
                ("lost", lost.load(Ordering::SeqCst).to_string()),
            ],
        );
    }
    Ok(())
}
