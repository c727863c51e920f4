//! Scenario (c): a peer paused for `PAUSE` (SIGSTOP, then SIGCONT) while a client calls it
//! back to back. With a detection time longer than the pause (the default 15 s) the connection
//! must survive: the call caught by the pause completes after SIGCONT and calls go on, neither
//! side reporting a loss. With a shorter one (5 s) the client must declare the server lost
//! within it, and the server must declare the client lost once it runs again.
//!
//! Needs no namespaces: it runs the same on loopback.

use std::time::{Duration, Instant};

use super::{secs, Hosts, Notes, Site, Verdict};
use crate::process::HostProcess;

/// How long the server is stopped.
const PAUSE: Duration = Duration::from_secs(10);
/// Slack on top of `peer_timeout` for the detection bound.
const SLACK: Duration = Duration::from_millis(1500);

/// Runs scenario (c) with `peer_timeout_ms` on both sides; `label` names the setting.
pub(crate) fn paused_peer(
    site: &Site,
    peer_timeout_ms: u64,
    label: &str,
    notes: &mut Notes,
) -> Result<Verdict, String> {
    let name = format!("pause/{label}");
    let scenario = format!("c{}", peer_timeout_ms / 1000);
    let hosts = Hosts::create(site, &scenario, &["cli", "srv"])?;
    let (mut server, addr) = hosts.server("srv", peer_timeout_ms)?;
    let mut client = hosts.client("cli", &addr, peer_timeout_ms, "steady", 0)?;
    client.expect("connected", Duration::from_secs(30))?;
    server.expect("connected", Duration::from_secs(10))?;
    let before = calls_reach(&mut client, 20, Duration::from_secs(30))?;

    let timeout = Duration::from_millis(peer_timeout_ms);
    notes.note(&name, format!("peer_timeout {peer_timeout_ms} ms on both sides; server paused for {PAUSE:?} at 0 s"));
    server.pause()?;
    let paused = Instant::now();
    if timeout > PAUSE {
        // The fault itself lasts PAUSE: this wait is the scenario, not a synchronisation.
        std::thread::sleep(PAUSE);
        server.resume()?;
        let resumed = Instant::now();
        let slow = client.expect("slow-call", Duration::from_secs(10))?;
        notes.note(
            &name,
            format!(
                "client: the call caught by the pause took {} ms, completed {} after SIGCONT",
                slow.num("ms"),
                secs(slow.at, resumed)
            ),
        );
        let after = calls_reach(&mut client, before + 20, Duration::from_secs(10))?;
        notes.note(&name, format!("client: {} calls before the pause, {after} by the last report", before));
        let lost = client.has_seen("lost").or_else(|| client.has_seen("call-failed"));
        let disconnected = server.has_seen("disconnected");
        notes.note(
            &name,
            format!(
                "client lost the server: {}; server lost the client: {}",
                lost.as_ref().map_or("no".into(), |e| format!("at {}", secs(e.at, paused))),
                disconnected.as_ref().map_or("no".into(), |e| format!("at {}", secs(e.at, paused)))
            ),
        );
        return Ok(if lost.is_none() && disconnected.is_none() {
            Verdict::Passed
        } else {
            Verdict::Failed("a side declared its peer lost during a pause shorter than peer_timeout".into())
        });
    }

    let bound = timeout + SLACK;
    let lost = client.expect("lost", bound + Duration::from_secs(10))?;
    let failed = client.has_seen("call-failed");
    notes.note(&name, format!("client: connection lost at {}: {}", secs(lost.at, paused), lost.get("reason")));
    if let Some(failed) = &failed {
        notes.note(
            &name,
            format!("client: the pending call failed at {}: {}", secs(failed.at, paused), failed.get("error")),
        );
    }
    std::thread::sleep(PAUSE.saturating_sub(paused.elapsed()));
    server.resume()?;
    let resumed = Instant::now();
    let disconnected = server.expect("disconnected", bound + Duration::from_secs(10))?;
    notes.note(
        &name,
        format!(
            "server (after SIGCONT at {}): on_disconnect {} after resuming: {}",
            secs(resumed, paused),
            secs(disconnected.at, resumed),
            disconnected.get("reason")
        ),
    );
    notes.note(&name, "a reconnecting handle's return after SIGCONT: the pause/reconnect scenario".into());
    Ok(if lost.at.duration_since(paused) <= bound && disconnected.at.duration_since(resumed) <= bound {
        Verdict::Passed
    } else {
        Verdict::Failed(format!("detection past the bound {bound:?}"))
    })
}

/// Asks the steady client for reports until it has made `calls` calls; returns the count.
fn calls_reach(client: &mut HostProcess, calls: u64, within: Duration) -> Result<u64, String> {
    let deadline = Instant::now() + within;
    loop {
        client.send("report")?;
        let report = client.expect("report", within)?;
        if report.get("closed") == "true" {
            return Err(format!("the client's connection closed after {} calls", report.num("calls")));
        }
        if report.num("calls") >= calls {
            return Ok(report.num("calls"));
        }
        if Instant::now() > deadline {
            return Err(format!("only {} of {calls} calls within {within:?}", report.num("calls")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
