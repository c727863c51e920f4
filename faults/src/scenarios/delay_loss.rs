//! Scenario (a): a slow, lossy network — a delaying relay between client and server adds
//! `DELAY` each way, and every host drops 1 % of the packets it receives (iptables
//! `statistic`). Sync calls, then 20,000 pipelined calls: every reply must arrive exactly once
//! and the server must have run each call exactly once.
//!
//! On loopback (no namespaces) the delay still runs through the relay; the loss is skipped.

use std::time::Duration;

use super::{Hosts, Notes, Site, Verdict};

/// Added by the relay in each direction.
const DELAY: Duration = Duration::from_millis(50);
/// Packets dropped at each host.
const LOSS: f64 = 0.01;
const SYNC_CALLS: u64 = 40;
const PIPELINED_CALLS: u64 = 20_000;

/// Runs scenario (a).
pub(crate) fn delay_and_loss(site: &Site, notes: &mut Notes) -> Result<Verdict, String> {
    const NAME: &str = "delay+loss";
    let hosts = Hosts::create(site, "a", &["cli", "rly", "srv"])?;
    let loss = match &hosts {
        Hosts::Lan(lan) => {
            for host in ["cli", "rly", "srv"] {
                lan.random_loss(host, LOSS)?;
            }
            format!("{:.0} % of packets dropped at every host", LOSS * 100.0)
        }
        Hosts::Loopback => {
            let Site::Loopback { reason } = site else { unreachable!("loopback hosts on a namespace site") };
            format!("loss skipped: {reason}")
        }
    };
    notes.note(NAME, format!("network: relay delay {} ms each way; {loss}", DELAY.as_millis()));
    let (_server, server_addr) = hosts.server("srv", 15_000)?;
    let (_relay, relay_addr) = hosts.relay("rly", &server_addr, DELAY)?;

    let mut sync = hosts.client("cli", &relay_addr, 15_000, "sync", SYNC_CALLS)?;
    let connected = sync.expect("connected", Duration::from_secs(30))?;
    let done = sync.expect("sync", Duration::from_secs(120))?;
    notes.note(
        NAME,
        format!(
            "client: connect + root {} ms; {} sync calls in {} ms (mean {} ms, slowest {} ms)",
            connected.num("ms"),
            done.num("calls"),
            done.num("ms"),
            done.num("mean_ms"),
            done.num("slowest_ms")
        ),
    );
    if let Some(wrong) = sync.has_seen("wrong-reply") {
        return Ok(Verdict::Failed(format!("a sync call got another call's reply: {wrong:?}")));
    }
    if done.num("calls") != SYNC_CALLS {
        return Ok(Verdict::Failed(format!("{} of {SYNC_CALLS} sync calls done", done.num("calls"))));
    }
    drop(sync);

    let mut pipelined = hosts.client("cli", &relay_addr, 15_000, "pipelined", PIPELINED_CALLS)?;
    let done = pipelined.expect("pipelined", Duration::from_secs(150))?;
    notes.note(
        NAME,
        format!(
            "client: {} pipelined calls in {} ms: {} replies exactly once, {} missing, {} duplicated, {} failed; \
             server ran {} calls",
            done.num("calls"),
            done.num("ms"),
            done.num("exactly_once"),
            done.num("missing"),
            done.num("duplicated"),
            done.num("failed"),
            done.num("server_executed")
        ),
    );
    if let Hosts::Lan(lan) = &hosts {
        let mut dropped = Vec::new();
        for host in ["cli", "rly", "srv"] {
            dropped.push(format!("{host} {}", lan.dropped(host)?));
        }
        notes.note(NAME, format!("iptables dropped packets (both runs): {}", dropped.join(", ")));
    }
    let every_once = done.num("exactly_once") == PIPELINED_CALLS
        && done.num("missing") == 0
        && done.num("duplicated") == 0
        && done.num("failed") == 0
        && done.num("server_executed") == PIPELINED_CALLS
        && pipelined.has_seen("wrong-reply").is_none();
    if !every_once {
        return Ok(Verdict::Failed(format!("not every reply exactly once (first error: {})", done.get("first_error"))));
    }
    Ok(match hosts {
        Hosts::Lan(_) => Verdict::Passed,
        Hosts::Loopback => Verdict::Skipped(format!("delay ran, {loss}")),
    })
}
