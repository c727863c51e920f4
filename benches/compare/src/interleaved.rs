//! Sync round trips of the three systems in short alternating blocks (`sync_interleaved`).
//!
//! Each system's own `sync` loop runs for up to a second, a few seconds away from the others'
//! in the same run, and this machine's speed drifts over seconds by more than the differences
//! measured. Here one client process holds a floor ping-pong socket, a tarpc client and a
//! netref connection at once, and runs `plan.interleave_rounds` rounds of
//! `plan.interleave_block` round trips of each (fewer rounds if `plan.time_cap` passes), the
//! order rotating every round; a system's figure for the run is the median of its blocks'
//! rates. Neighbouring blocks see nearly the
//! same machine, so the run's ratios move much less than those of the separate loops.
//!
//! All three callers run in the `block_on` future of one actix system (netref needs one; it
//! is a tokio current-thread runtime with a local task set, on which the floor's socket and
//! tarpc's dispatch task run as they do on a plain one).

use std::time::Instant;

use crate::{
    deadline, floor, netref_bench, rate,
    stats::{median, Sample},
    tarpc_bench, BoxError, Plan,
};

/// The systems, in the order of their samples.
pub(crate) const SYSTEMS: [&str; 3] = ["floor", "tarpc", "netref"];

/// Runs the interleaved blocks against the three servers; returns each system's samples, in
/// the order of [`SYSTEMS`].
pub(crate) fn measure(
    plan: &Plan,
    floor_addr: &str,
    tarpc_addr: &str,
    netref_addr: &str,
) -> Result<[Vec<Sample>; 3], BoxError> {
    let sys = actix_rt::System::new();
    sys.block_on(async {
        let mut ping = floor::connect(floor_addr, b'p').await?;
        let tarpc = tarpc_bench::connect(tarpc_addr).await?;
        let peer = netref_bench::connect(netref_addr).await?;
        let root = peer.root().await?;
        let mut blocks: [Vec<f64>; 3] = Default::default();
        let end = deadline(plan.time_cap);
        for round in 0..=plan.interleave_rounds {
            // Like every timed loop, bounded in time too: fewer rounds on a slow machine.
            if round > 1 && Instant::now() > end {
                break;
            }
            for turn in 0..SYSTEMS.len() {
                let system = (round + turn) % SYSTEMS.len();
                let start = Instant::now();
                for _ in 0..plan.interleave_block {
                    match system {
                        0 => floor::ping_pong(&mut ping).await?,
                        1 => tarpc_bench::add(&tarpc).await?,
                        _ => netref_bench::add(&root).await?,
                    }
                }
                // Round 0 warms every connection up and is not counted.
                if round > 0 {
                    blocks[system].push(rate(plan.interleave_block, start.elapsed()));
                }
            }
        }
        drop((tarpc, root));
        peer.close().await;
        let units = ["rt/s", "calls/s", "calls/s"];
        Ok(std::array::from_fn(|i| vec![("sync_interleaved", units[i], median(&mut blocks[i]))]))
    })
}
