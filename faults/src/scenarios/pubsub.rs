//! Scenario (e): a PubSub broker feeding three subscribers (`FEED_RATE` messages a second of
//! `FEED_BYTES` each), one of which is partitioned for `PARTITION`, past the detection time.
//! The healthy subscribers must lose nothing (every number, none twice, no reported loss); the
//! broker's memory (its process's RSS, read from /proc) must stay bounded by its settings; the
//! partitioned subscriber's loss must be accounted exactly — what it received plus what its
//! `Subscription` counted missed (the gaps in the broker's `Published::seq`: overflow drops,
//! messages lost with the dead connection, messages published while it was away) equals what
//! was published — and the broker's own counts of it (overflow drops, `lost_at_disconnect`:
//! accepted for it and never written) are printed; its `Subscription` must subscribe again
//! after the heal and receive to the end.
//!
//! On loopback (no namespaces) the partitioned subscriber goes through a relay, which is what
//! gets partitioned.

use std::time::{Duration, Instant};

use super::{secs, Hosts, Notes, Site, Verdict};
use crate::process::{Event, HostProcess};

const FEED_RATE: u64 = 1000;
const FEED_BYTES: usize = 4096;
const FEED_SECS: u64 = 32;
/// How long the slow subscriber is cut off (past the 15 s default detection time).
const PARTITION: Duration = Duration::from_secs(20);
/// When, after the feed starts, the partition begins.
const PARTITION_AT: Duration = Duration::from_secs(4);
/// The broker's RSS may grow by at most this over its level when the feed starts: its queue
/// (1,024 messages per subscriber), the connection's one-way cap, the socket buffers.
const RSS_BOUND_KIB: u64 = 96 * 1024;

/// Runs scenario (e).
pub(crate) fn partitioned_subscriber(site: &Site, notes: &mut Notes) -> Result<Verdict, String> {
    let name = "pubsub-partitioned-subscriber";
    let hosts = Hosts::create(site, "e", &["srv", "s1", "s2", "s3"])?;
    let feed = vec![
        "--feed-rate".to_owned(),
        FEED_RATE.to_string(),
        "--feed-bytes".into(),
        FEED_BYTES.to_string(),
        "--feed-secs".into(),
        FEED_SECS.to_string(),
        "--feed-subscribers".into(),
        "3".into(),
    ];
    let (mut server, addr) = hosts.server_with("srv", &hosts.listen(super::SERVER_PORT), 15_000, &feed)?;
    let (mut relay, slow_addr) = match &hosts {
        Hosts::Lan(_) => (None, addr.clone()),
        Hosts::Loopback => {
            let (relay, relay_addr) = hosts.relay("s3", &addr, Duration::ZERO)?;
            (Some(relay), relay_addr)
        }
    };
    let mut s1 = hosts.client("s1", &addr, 15_000, "subscriber", 0)?;
    let mut s2 = hosts.client("s2", &addr, 15_000, "subscriber", 0)?;
    let mut s3 = hosts.client("s3", &slow_addr, 15_000, "subscriber", 0)?;
    for s in [&mut s1, &mut s2, &mut s3] {
        s.expect("connected", Duration::from_secs(30))?;
    }
    let started = server.expect("feed-start", Duration::from_secs(30))?.at;
    let baseline = rss_kib(server.pid())?;
    notes.note(
        name,
        format!(
            "feed: {FEED_RATE} msg/s x {FEED_BYTES} B for {FEED_SECS} s to 3 subscribers (peer_timeout 15 s); \
             s3 partitioned {PARTITION_AT:?} into it for {PARTITION:?}; broker RSS at start {} MiB",
            baseline / 1024
        ),
    );
    let mut max_rss = baseline;
    let mut cut = None;
    let mut healed = None;
    let done = loop {
        max_rss = max_rss.max(rss_kib(server.pid()).unwrap_or(0));
        let now = Instant::now();
        if cut.is_none() && now.duration_since(started) >= PARTITION_AT {
            partition(&hosts, relay.as_mut(), true)?;
            cut = Some(now);
        }
        if let (Some(at), None) = (cut, healed) {
            if now.duration_since(at) >= PARTITION {
                partition(&hosts, relay.as_mut(), false)?;
                healed = Some(now);
            }
        }
        if let Some(done) = server.has_seen("feed-done") {
            break done;
        }
        if now.duration_since(started) > Duration::from_secs(FEED_SECS * 3) {
            return Err("the feed did not finish".into());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (Some(cut), Some(healed)) = (cut, healed) else { return Err("the feed ended before the heal".into()) };
    let end_rss = rss_kib(server.pid())?;
    let last = done.num("seq");
    notes.note(
        name,
        format!(
            "broker RSS: {} MiB at the start, max {} MiB (bound +{} MiB), {} MiB at the end",
            baseline / 1024,
            max_rss / 1024,
            RSS_BOUND_KIB / 1024,
            end_rss / 1024
        ),
    );
    notes.note(
        name,
        format!(
            "publisher (Delivery sums over {last} publishes): delivered {}, queued {}, dropped {}, disconnected {}, \
             closed {}; broker overflow_dropped {}, lost_at_disconnect {}, subscriptions dropped (connection \
             ended) {}",
            done.num("delivered"),
            done.num("queued"),
            done.num("dropped"),
            done.num("disconnected"),
            done.num("closed"),
            done.num("overflow_dropped"),
            done.num("lost_at_disconnect"),
            done.num("links_and_subscribers_dropped")
        ),
    );
    let mut wrong = Vec::new();
    let mut healthy_messages = 0;
    for (label, s) in [("s1", &mut s1), ("s2", &mut s2)] {
        let r = received_to(s, last, Duration::from_secs(20))?;
        healthy_messages += r.num("messages");
        notes.note(name, format!("{label} (healthy): {}", describe(&r)));
        let complete = r.num("last") == last && r.num("messages") == last - r.num("first") + 1;
        let counted = r.num("sub_received") == r.num("messages") && r.num("sub_missed") == 0;
        if !complete || !counted || r.num("gaps") > 0 || r.num("missed") > 0 || r.num("disorder") > 0 {
            wrong.push(format!("{label} lost or reordered messages"));
        }
    }
    let r = received_to(&mut s3, last, Duration::from_secs(30))?;
    notes.note(name, format!("s3 (partitioned {} to {}): {}", secs(cut, started), secs(healed, started), describe(&r)));
    if let Some(lost) = s3.has_seen("conn").filter(|e| e.get("what") == "lost") {
        notes.note(name, format!("s3 handle: lost at {} after the cut: {}", secs(lost.at, cut), lost.get("reason")));
    }
    if r.num("subscribed_times") < 2 {
        wrong.push("s3 did not subscribe again after the heal".into());
    }
    if r.num("last") != last {
        wrong.push("s3 did not receive to the end after the heal".into());
    }
    // Exact accounting on the subscriber's side: every published message was either received
    // or counted missed by its Subscription (the broker's numbering has no hole it cannot see:
    // s3 received the first one, and the last one after the heal).
    let (received, missed) = (r.num("sub_received"), r.num("sub_missed"));
    if r.num("first") != 1 || received != r.num("messages") || r.num("disorder") > 0 {
        wrong.push(format!("s3's Subscription counted {received} received, its actor {}", describe(&r)));
    }
    if received + missed != last {
        wrong.push(format!("s3: received {received} + missed {missed} != published {last}"));
    }
    // The broker's side of the same loss: what it knows never left (overflow drops, and what
    // it had accepted when the connection ended without writing it); the rest of what s3
    // missed was written into the dead connection or published while s3 was away.
    // `Delivery::delivered` is "handed to the connection", unconfirmed: what s3 was counted
    // delivered and never read is part of `missed` above, and of `lost_at_disconnect` below as
    // far as the broker can know.
    let delivered_to_slow = done.num("delivered").saturating_sub(healthy_messages);
    notes.note(
        name,
        format!(
            "s3: {delivered_to_slow} counted delivered (handed to its connection, unconfirmed), {} of them never \
             read",
            delivered_to_slow.saturating_sub(received)
        ),
    );
    notes.note(
        name,
        format!(
            "s3's loss: {missed} missed of {last} published ({received} received); the broker counted {} dropped \
             by the overflow policy and {} lost at the disconnect (accepted, never written); {} subscription \
             dropped (connection closed)",
            done.num("dropped"),
            done.num("lost_at_disconnect"),
            done.num("closed") + done.num("disconnected")
        ),
    );
    if done.num("lost_at_disconnect") + done.num("dropped") > missed {
        wrong.push("the broker counts more lost for s3 than s3 missed".into());
    }
    if max_rss.saturating_sub(baseline) > RSS_BOUND_KIB {
        wrong.push(format!("broker RSS grew by {} MiB", (max_rss - baseline) / 1024));
    }
    Ok(if wrong.is_empty() { Verdict::Passed } else { Verdict::Failed(wrong.join("; ")) })
}

fn partition(hosts: &Hosts, relay: Option<&mut HostProcess>, cut: bool) -> Result<(), String> {
    match (hosts, relay) {
        (Hosts::Lan(lan), _) if cut => lan.partition("s3"),
        (Hosts::Lan(lan), _) => lan.heal("s3"),
        (Hosts::Loopback, Some(relay)) => relay.send(if cut { "partition" } else { "heal" }),
        (Hosts::Loopback, None) => unreachable!("loopback runs s3 through a relay"),
    }
}

fn describe(r: &Event) -> String {
    format!(
        "{} messages, seq {}..{}, gaps {}, reported missed {}, out of order {}, subscribed {} times",
        r.num("messages"),
        r.num("first"),
        r.num("last"),
        r.num("gaps"),
        r.num("missed"),
        r.num("disorder"),
        r.num("subscribed_times")
    )
}

/// Asks a subscriber for reports until it has received seq `last` (or `within` passes);
/// returns the last report.
fn received_to(s: &mut HostProcess, last: u64, within: Duration) -> Result<Event, String> {
    let deadline = Instant::now() + within;
    loop {
        s.send("report")?;
        let report = s.expect("report", Duration::from_secs(10))?;
        if report.num("last") >= last || Instant::now() > deadline {
            return Ok(report);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The resident set of process `pid`, in KiB (`VmRSS` in /proc/PID/status).
fn rss_kib(pid: u32) -> Result<u64, String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .ok_or_else(|| format!("no VmRSS in /proc/{pid}/status"))
}
