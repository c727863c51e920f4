//! Scenario (b): a partition during a call. The client holds an object of the server and has
//! a call running on it when the server's host is cut off (iptables DROP both ways). Both
//! sides must declare the other lost within `peer_timeout` (plus scheduling slack): the
//! client's call fails with a connection-lost error, the server runs `on_disconnect` and frees
//! the connection's exports, and the client's netref to the held object fails fast.
//!
//! On loopback (no namespaces) the partition is the relay's: it stops forwarding both ways.

use std::time::{Duration, Instant};

use super::{secs, Hosts, Notes, Site, Verdict};

/// Slack on top of `peer_timeout` for the detection bound: ticks run on a busy CI machine.
const SLACK: Duration = Duration::from_millis(1500);

/// Runs scenario (b) with `peer_timeout_ms` on both sides; `label` names the setting.
pub(crate) fn partition_during_a_call(
    site: &Site,
    peer_timeout_ms: u64,
    label: &str,
    notes: &mut Notes,
) -> Result<Verdict, String> {
    let name = format!("partition/{label}");
    let scenario = format!("b{}", peer_timeout_ms / 1000);
    let hosts = Hosts::create(site, &scenario, &["cli", "srv"])?;
    let (mut server, server_addr) = hosts.server("srv", peer_timeout_ms)?;
    // On loopback the client goes through a relay, which is what gets partitioned.
    let (mut relay, addr) = match &hosts {
        Hosts::Lan(_) => (None, server_addr),
        Hosts::Loopback => {
            let (relay, addr) = hosts.relay("rly", &server_addr, Duration::ZERO)?;
            (Some(relay), addr)
        }
    };
    let mut client = hosts.client("cli", &addr, peer_timeout_ms, "hang", 0)?;
    client.expect("call-started", Duration::from_secs(30))?;
    server.expect("connected", Duration::from_secs(10))?;

    let cut = Instant::now();
    match (&hosts, relay.as_mut()) {
        (Hosts::Lan(lan), _) => lan.partition("srv")?,
        (Hosts::Loopback, Some(relay)) => relay.send("partition")?,
        (Hosts::Loopback, None) => unreachable!("loopback runs through a relay"),
    }
    let bound = Duration::from_millis(peer_timeout_ms) + SLACK;
    let wait = bound + Duration::from_secs(10);
    notes.note(&name, format!("peer_timeout {peer_timeout_ms} ms on both sides; partition at 0 s, bound {bound:?}"));

    let failed = client.expect("call-failed", wait)?;
    let lost = client.expect("lost", wait)?;
    let held = client.expect("held-netref", Duration::from_secs(5))?;
    notes.note(&name, format!("client: call failed at {}: {}", secs(failed.at, cut), failed.get("error")));
    notes.note(&name, format!("client: connection lost at {}: {}", secs(lost.at, cut), lost.get("reason")));
    notes.note(&name, format!("client: netref to the held object afterwards: {}", held.get("call")));
    let disconnected = server.expect("disconnected", wait)?;
    let freed = server.expect("freed", wait)?;
    notes.note(
        &name,
        format!("server: on_disconnect at {}: {}", secs(disconnected.at, cut), disconnected.get("reason")),
    );
    notes.note(&name, format!("server: exports freed (held object dropped) at {}", secs(freed.at, cut)));

    // After the heal a new connection works at once (no stale state on the server side).
    match (&hosts, relay.as_mut()) {
        (Hosts::Lan(lan), _) => lan.heal("srv")?,
        (Hosts::Loopback, Some(relay)) => relay.send("heal")?,
        (Hosts::Loopback, None) => unreachable!("loopback runs through a relay"),
    }
    let healed = Instant::now();
    let mut again = hosts.client("cli", &addr, peer_timeout_ms, "sync", 1)?;
    let reconnected = again.expect("sync", Duration::from_secs(30))?;
    notes.note(&name, format!("after the heal: a new client connected and called in {}", secs(reconnected.at, healed)));

    let mut wrong = Vec::new();
    for (what, at) in [("client call", failed.at), ("client loss", lost.at), ("server on_disconnect", disconnected.at)]
    {
        if at.duration_since(cut) > bound {
            wrong.push(format!("{what} after {}", secs(at, cut)));
        }
    }
    if !failed.get("error").contains("ConnectionClosed") {
        wrong.push(format!("the call failed with {}", failed.get("error")));
    }
    if !held.get("call").starts_with("Err(") {
        wrong.push(format!("the held netref still answered: {}", held.get("call")));
    }
    Ok(if wrong.is_empty() { Verdict::Passed } else { Verdict::Failed(wrong.join("; ")) })
}
