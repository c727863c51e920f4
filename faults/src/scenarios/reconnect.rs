//! Scenarios (c, reconnecting) and (d): a client on a reconnecting handle — calling the
//! server's root and its named actor `counter` back to back, and subscribed through a PubSub
//! `Subscription` to the server's `ticks` — while the server is paused past the detection time
//! (c) or killed and restarted on the same address (d). The handle must report the loss, come
//! back within its back-off once the server can answer, keep the root's and the actor's
//! identity, and the subscription must deliver again.
//!
//! Needs no namespaces: both run the same on loopback.

use std::time::{Duration, Instant};

use super::{secs, Hosts, Notes, Site, Verdict};
use crate::process::{Event, HostProcess};

/// The client's back-off cap (`reconnecting::policy`) plus scheduling slack: a handle whose
/// server answers again must be back within it.
const BACK_OFF_BOUND: Duration = Duration::from_millis(2500);
/// The server's pause in (c).
const PAUSE: Duration = Duration::from_secs(10);
/// The detection time in (c).
const PAUSE_PEER_TIMEOUT_MS: u64 = 5_000;

/// Scenario (c) with a reconnecting handle: the server paused 10 s with a 5 s detection time.
pub(crate) fn paused_peer_comes_back(site: &Site, notes: &mut Notes) -> Result<Verdict, String> {
    let name = "pause/reconnect";
    let hosts = Hosts::create(site, "cr", &["cli", "srv"])?;
    let (mut server, addr) = hosts.server("srv", PAUSE_PEER_TIMEOUT_MS)?;
    let mut client = hosts.client("cli", &addr, PAUSE_PEER_TIMEOUT_MS, "reconnecting", 0)?;
    client.expect("connected", Duration::from_secs(30))?;
    let before = working(&mut client, 20, 5, Duration::from_secs(30))?;
    notes.note(
        name,
        format!("peer_timeout {PAUSE_PEER_TIMEOUT_MS} ms on both sides; server paused for {PAUSE:?} at 0 s"),
    );
    server.pause()?;
    let paused = Instant::now();
    let lost = client.expect_where(
        "conn",
        |e| e.get("what") == "lost",
        Duration::from_millis(PAUSE_PEER_TIMEOUT_MS) + Duration::from_secs(5),
    )?;
    notes.note(name, format!("client handle: lost at {}: {}", secs(lost.at, paused), lost.get("reason")));
    // The fault itself lasts PAUSE: this wait is the scenario, not a synchronisation.
    std::thread::sleep(PAUSE.saturating_sub(paused.elapsed()));
    server.resume()?;
    let resumed = Instant::now();
    let verdict = came_back(name, &mut client, before, resumed, "SIGCONT", notes)?;
    if let Some(gone) = server.has_seen("disconnected") {
        notes.note(name, format!("server: on_disconnect of the old connection at {}", secs(gone.at, paused)));
    }
    Ok(verdict)
}

/// Scenario (d): the server killed (SIGKILL) and started again on the same address.
pub(crate) fn server_restart(site: &Site, notes: &mut Notes) -> Result<Verdict, String> {
    let name = "restart";
    let hosts = Hosts::create(site, "d", &["cli", "srv"])?;
    let (mut server, addr) = hosts.server("srv", 15_000)?;
    let mut client = hosts.client("cli", &addr, 15_000, "reconnecting", 0)?;
    client.expect("connected", Duration::from_secs(30))?;
    let before = working(&mut client, 20, 5, Duration::from_secs(30))?;
    let killed = Instant::now();
    server.kill();
    let listen = match &hosts {
        Hosts::Lan(_) => format!("0.0.0.0:{}", addr.rsplit(':').next().unwrap_or_default()),
        Hosts::Loopback => addr.clone(),
    };
    let (_restarted, _) = hosts.server_on("srv", &listen, 15_000)?;
    let ready = Instant::now();
    notes.note(name, format!("server killed at 0 s, listening again at {}", secs(ready, killed)));
    let lost = client.expect_where("conn", |e| e.get("what") == "lost", Duration::from_secs(10))?;
    notes.note(name, format!("client handle: lost at {}: {}", secs(lost.at, killed), lost.get("reason")));
    came_back(name, &mut client, before, ready, "the restart", notes)
}

/// The reconnection after `since`: the handle's `reconnected` event, the first good round,
/// the root's and the actor's identity, and ticks arriving again on a renewed subscription.
fn came_back(
    name: &str,
    client: &mut HostProcess,
    before: Event,
    since: Instant,
    what: &str,
    notes: &mut Notes,
) -> Result<Verdict, String> {
    let back = client.expect_where("conn", |e| e.get("what") == "reconnected", Duration::from_secs(20))?;
    notes.note(
        name,
        format!(
            "client handle: reconnected {} after {what} ({} attempts, {} ms without a connection)",
            secs(back.at, since),
            back.num("attempts"),
            back.num("downtime_ms")
        ),
    );
    let failed = client.has_seen("call-failed");
    if let Some(failed) = &failed {
        notes.note(name, format!("client: the round in flight at the loss failed: {}", failed.get("error")));
    }
    let recovered = client.expect("recovered", Duration::from_secs(20))?;
    notes.note(
        name,
        format!(
            "client: calls work again {} after {what}; same root netref: {}, same named ActorRef: {}",
            secs(recovered.at, since),
            recovered.get("same_root"),
            recovered.get("same_actor")
        ),
    );
    let after = working(client, before.num("calls") + 10, before.num("ticks") + 5, Duration::from_secs(15));
    let mut wrong = Vec::new();
    match &after {
        Ok(report) => notes.note(
            name,
            format!(
                "client: {} rounds and {} ticks before, {} rounds and {} ticks after; subscribed {} times",
                before.num("calls"),
                before.num("ticks"),
                report.num("calls"),
                report.num("ticks"),
                report.num("subscribed_times")
            ),
        ),
        Err(e) => wrong.push(e.clone()),
    }
    if back.at.duration_since(since) > BACK_OFF_BOUND {
        wrong.push(format!("reconnected {} after {what}, past {BACK_OFF_BOUND:?}", secs(back.at, since)));
    }
    if recovered.get("same_root") != "true" || recovered.get("same_actor") != "true" {
        wrong.push("the root or the named actor changed identity".into());
    }
    if after.as_ref().is_ok_and(|r| r.num("subscribed_times") < 2) {
        wrong.push("the subscription was not renewed".into());
    }
    Ok(if wrong.is_empty() { Verdict::Passed } else { Verdict::Failed(wrong.join("; ")) })
}

/// Asks the reconnecting client for reports until it has done `calls` rounds and received
/// `ticks` ticks; returns that report.
fn working(client: &mut HostProcess, calls: u64, ticks: u64, within: Duration) -> Result<Event, String> {
    let deadline = Instant::now() + within;
    loop {
        client.send("report")?;
        let report = client.expect("report", within)?;
        if report.num("calls") >= calls && report.num("ticks") >= ticks {
            return Ok(report);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} of {calls} rounds and {} of {ticks} ticks within {within:?}",
                report.num("calls"),
                report.num("ticks")
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
