//! Side-by-side benchmark of netref against the raw TCP floor and tarpc, over loopback TCP with
//! client and server in separate processes.
//!
//! The binary `compare` (`cargo run --release --manifest-path benches/compare/Cargo.toml --
//! [--runs N] [--quick] [--pinned]`, from the repository's root) is a thin wrapper around [`run`]; each server is the same binary started with
//! `--server KIND ADDR` ([`serve`]), which prints `listening on ADDR` and exits when its
//! standard input closes (so it never outlives the client, even one killed by a signal).
//! `--client OP ADDR N` ([`client`]) runs a fixed number of one operation against such a
//! server, for profilers (`profile.sh`, `PROFILING.md`).
//!
//! Besides the three systems' figures, the floor's ping-pong runs with each socket owned by an
//! actix actor (`actor_floor`, sync and connect figures only: what the actor runtime alone
//! costs a round trip and a connection, whatever the protocol). The two floors are compared
//! with tarpc too. Each side of netref is measured against a minimal peer
//! that speaks netref's wire format and nothing else (`minimal`, server kind `netref-min`), to
//! show which side a sync round trip's time goes to. The sync loops also take the CPU time
//! each process spent per round trip (`sync_cpu_client`, `sync_cpu_server`; `cpu`). Over
//! loopback, a side's kernel time includes the receiving side's TCP processing of what it
//! sends, so pinned to one CPU the two sides come out alike; a system's excess over the
//! floor's is what the system itself costs.

use std::{
    error::Error as StdError,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

mod actor_floor;
mod child;
mod cpu;
mod floor;
mod interleaved;
mod minimal;
mod netref_bench;
mod profile;
mod stats;
mod tarpc_bench;

pub use child::ServerProcess;
pub use profile::{client, server_kind, CLIENT_OPS};
pub use stats::{Figure, Report};

use cpu::CpuSample;
use stats::Sample;

/// The error type of the benchmark drivers.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Iteration counts for one invocation. Every loop is bounded by its count and by
/// [`time_cap`](Plan::time_cap).
#[derive(Clone, Debug)]
pub struct Plan {
    /// Repetitions of every figure.
    pub runs: usize,
    /// Untimed calls before each timed loop.
    pub warmup: usize,
    /// Sequential round trips per run (floor ping-pong, tarpc `add`, netref `add`).
    pub sync: usize,
    /// Frames per run in the floor's pipelined test.
    pub floor_pipelined: usize,
    /// Calls per run in the pipelined tests of tarpc and netref.
    pub pipelined: usize,
    /// Requests in flight in the pipelined tests.
    pub window: usize,
    /// Echo round trips per run (floor).
    pub floor_echoes: usize,
    /// Echo round trips per run (tarpc, netref).
    pub echoes: usize,
    /// Size of one echo payload in bytes.
    pub echo_size: usize,
    /// Connections per run in the connect + first call tests.
    pub connects: usize,
    /// Objects created and released per run (netref).
    pub creates: usize,
    /// Calls with a callback per run (netref).
    pub callbacks: usize,
    /// Rounds of the interleaved sync blocks per run (`sync_interleaved`; one more, first,
    /// warms up).
    pub interleave_rounds: usize,
    /// Round trips per system and round in the interleaved sync blocks.
    pub interleave_block: usize,
    /// Upper bound on the duration of one timed loop; a loop stops early past it and its rate
    /// is computed over what completed.
    pub time_cap: Duration,
}

impl Plan {
    /// The default plan: a full run takes about 35 s pinned and a minute unpinned on 2 vCPUs.
    pub fn full(runs: usize) -> Self {
        Plan {
            runs,
            warmup: 500,
            sync: 20_000,
            floor_pipelined: 2_000_000,
            pipelined: 200_000,
            window: 1000,
            floor_echoes: 1000,
            echoes: 1000,
            echo_size: 1 << 20,
            connects: 2000,
            creates: 20_000,
            callbacks: 10_000,
            interleave_rounds: 40,
            interleave_block: 250,
            time_cap: Duration::from_secs(6),
        }
    }

    /// `--quick`: a smoke test, about ten times shorter.
    pub fn quick(runs: usize) -> Self {
        Plan {
            runs,
            warmup: 100,
            sync: 2_000,
            floor_pipelined: 200_000,
            pipelined: 20_000,
            window: 1000,
            floor_echoes: 100,
            echoes: 100,
            echo_size: 1 << 20,
            connects: 200,
            creates: 2_000,
            callbacks: 1_000,
            interleave_rounds: 10,
            interleave_block: 100,
            time_cap: Duration::from_secs(2),
        }
    }

    /// Tiny counts for `cargo test` in debug builds.
    pub fn tiny() -> Self {
        Plan {
            runs: 1,
            warmup: 10,
            sync: 200,
            floor_pipelined: 5_000,
            pipelined: 2_000,
            window: 100,
            floor_echoes: 5,
            echoes: 5,
            echo_size: 1 << 20,
            connects: 10,
            creates: 200,
            callbacks: 100,
            interleave_rounds: 2,
            interleave_block: 20,
            time_cap: Duration::from_secs(5),
        }
    }
}

/// Which systems [`run`] measures (`floor` includes the floor in actors, `actor_floor`).
#[derive(Clone, Copy, Debug)]
pub struct Systems {
    /// The raw tokio TCP floor, and its ping-pong in actix actors (`actor_floor`: sync and
    /// connect figures only).
    pub floor: bool,
    /// tarpc 0.38.
    pub tarpc: bool,
    /// netref.
    pub netref: bool,
}

impl Systems {
    /// All three.
    pub const ALL: Systems = Systems { floor: true, tarpc: true, netref: true };
}

/// The server kinds [`serve`] accepts.
pub const SERVER_KINDS: [&str; 5] = ["floor", "tarpc", "netref", "netref-min", "actor-floor"];

/// Runs a server of `kind` (one of [`SERVER_KINDS`]) on `addr` until standard input closes.
/// Prints `listening on ADDR` once bound.
pub fn serve(kind: &str, addr: &str) -> Result<(), BoxError> {
    if !SERVER_KINDS.contains(&kind) {
        return Err(format!("unknown server kind {kind:?} (expected one of {SERVER_KINDS:?})").into());
    }
    child::exit_when_stdin_closes();
    match kind {
        "floor" => floor::serve(addr),
        "tarpc" => tarpc_bench::serve(addr),
        "netref" => netref_bench::serve(addr),
        "netref-min" => minimal::serve(addr),
        "actor-floor" => actor_floor::serve(addr),
        _ => unreachable!("checked above"),
    }
}

/// Measures every figure of `systems` `plan.runs` times, starting the servers from
/// `server_exe` (this binary, or `env!("CARGO_BIN_EXE_compare")` in tests). Runs of the three
/// systems are interleaved so that drift over time affects them alike. `progress` receives a
/// line after each run.
pub fn run(
    plan: &Plan,
    systems: Systems,
    server_exe: &Path,
    mut progress: impl FnMut(&str),
) -> Result<Report, BoxError> {
    let exe = PathBuf::from(server_exe);
    let floor_srv = systems.floor.then(|| ServerProcess::spawn(&exe, "floor")).transpose()?;
    let actor_floor_srv = systems.floor.then(|| ServerProcess::spawn(&exe, "actor-floor")).transpose()?;
    let tarpc_srv = systems.tarpc.then(|| ServerProcess::spawn(&exe, "tarpc")).transpose()?;
    let netref_srv = systems.netref.then(|| ServerProcess::spawn(&exe, "netref")).transpose()?;
    let minimal_srv = systems.netref.then(|| ServerProcess::spawn(&exe, "netref-min")).transpose()?;
    let mut report = Report::default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    report
        .notes
        .push(format!("load average at start: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")));
    report.notes.push(format!("client pid {} cpus {}", std::process::id(), child::cpus_allowed(None)));
    for s in [&floor_srv, &actor_floor_srv, &tarpc_srv, &netref_srv, &minimal_srv].into_iter().flatten() {
        report.notes.push(format!("{} server pid {} cpus {} on {}", s.kind(), s.pid(), s.cpus_allowed(), s.addr()));
    }
    for i in 0..plan.runs {
        let started = Instant::now();
        if let Some(s) = &floor_srv {
            report.add_run("floor", floor::measure(plan, s.addr(), Some(s.pid()))?);
        }
        if let Some(s) = &actor_floor_srv {
            report.add_run("actor_floor", actor_floor::measure(plan, s.addr(), Some(s.pid()))?);
        }
        if let Some(s) = &tarpc_srv {
            report.add_run("tarpc", tarpc_bench::measure(plan, s.addr(), Some(s.pid()))?);
        }
        if let (Some(s), Some(min)) = (&netref_srv, &minimal_srv) {
            report.add_run("netref", netref_bench::measure(plan, s.addr(), Some(s.pid()))?);
            report.add_run("netref", minimal::measure(plan, s.addr(), min.addr())?);
        }
        if let (Some(f), Some(t), Some(n)) = (&floor_srv, &tarpc_srv, &netref_srv) {
            let samples = interleaved::measure(plan, f.addr(), t.addr(), n.addr())?;
            for (system, samples) in interleaved::SYSTEMS.into_iter().zip(samples) {
                report.add_run(system, samples);
            }
        }
        progress(&format!("run {}/{} done in {:.1} s", i + 1, plan.runs, started.elapsed().as_secs_f64()));
    }
    // The guards kill and reap the servers here (and on an early return or a panic).
    drop((floor_srv, actor_floor_srv, tarpc_srv, netref_srv, minimal_srv));
    Ok(report)
}

/// Sequential round trips, timed by the same loop for every system: `plan.warmup` calls of
/// `round_trip`, then up to `plan.sync` more (fewer if `plan.time_cap` passes), each timed.
/// The CPU time of this process and of `server` (a process id) over the timed calls is
/// sampled too.
///
/// Each system runs this loop twice: in its runtime's `block_on` future (`sync`), and in a
/// task spawned on the same runtime (`sync_task`), as code in an actor or a server's task
/// calls. The two differ where the reply reaches the caller through another task (tarpc's
/// dispatch task, netref's connection actor): that task wakes a `block_on` future in the
/// middle of the runtime's turn, and tokio's current-thread scheduler then polls its I/O
/// driver once more (a zero-timeout `epoll_wait`) before it polls that future again; a
/// spawned caller is polled in the same turn. The floor does its I/O in the caller itself and
/// takes the same path either way.
pub(crate) async fn sync_round_trips(
    plan: &Plan,
    server: Option<u32>,
    mut round_trip: impl AsyncFnMut() -> Result<(), BoxError>,
) -> Result<SyncRun, BoxError> {
    for _ in 0..plan.warmup {
        round_trip().await?;
    }
    let mut lat = Vec::with_capacity(plan.sync);
    let end = deadline(plan.time_cap);
    let cpu_before = (CpuSample::own(), server.and_then(CpuSample::of));
    let start = Instant::now();
    for i in 0..plan.sync {
        if i % 64 == 0 && Instant::now() > end {
            break;
        }
        let t = Instant::now();
        round_trip().await?;
        lat.push(t.elapsed());
    }
    let elapsed = start.elapsed();
    let cpu_after = (CpuSample::own(), server.and_then(CpuSample::of));
    let per_op = |before: Option<CpuSample>, after: Option<CpuSample>| before?.per_op_us(&after?, lat.len());
    Ok(SyncRun {
        rate: rate(lat.len(), elapsed),
        client_cpu: per_op(cpu_before.0, cpu_after.0),
        server_cpu: per_op(cpu_before.1, cpu_after.1),
        lat,
    })
}

/// What [`sync_round_trips`] measured.
pub(crate) struct SyncRun {
    /// Round trips per second.
    pub rate: f64,
    /// The latency of each round trip.
    pub lat: Vec<Duration>,
    /// CPU time per round trip of the calling process in µs (`None` where it cannot be read).
    pub client_cpu: Option<f64>,
    /// CPU time per round trip of the server process in µs.
    pub server_cpu: Option<f64>,
}

impl SyncRun {
    /// The figures `sync` (in `unit`), `sync_p50`, `sync_p99` (µs) and, where measured,
    /// `sync_cpu_client` and `sync_cpu_server` (µs per round trip).
    pub(crate) fn samples(self, unit: &'static str) -> Vec<Sample> {
        let (p50, p99) = percentiles(self.lat);
        let mut out = vec![("sync", unit, self.rate), ("sync_p50", "us", p50), ("sync_p99", "us", p99)];
        out.extend(self.client_cpu.map(|us| ("sync_cpu_client", "us", us)));
        out.extend(self.server_cpu.map(|us| ("sync_cpu_server", "us", us)));
        out
    }

    /// The figure `sync_task`: the rate of the same loop run in a task spawned on the
    /// caller's runtime instead of in its `block_on` future (see [`sync_round_trips`]).
    pub(crate) fn task_sample(self, unit: &'static str) -> Sample {
        ("sync_task", unit, self.rate)
    }
}

/// (p50, p99) in microseconds.
fn percentiles(mut lat: Vec<Duration>) -> (f64, f64) {
    if lat.is_empty() {
        return (0.0, 0.0);
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)].as_secs_f64() * 1e6;
    (pct(0.50), pct(0.99))
}

/// Binds `addr` and prints the `listening on ADDR` line the client waits for.
pub(crate) async fn announce(addr: &str) -> Result<tokio::net::TcpListener, BoxError> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on {}", listener.local_addr()?);
    Ok(listener)
}

/// Runs `f` in a task of a local task set on the current tokio runtime, and waits for it.
pub(crate) async fn in_local_task<F: std::future::Future + 'static>(f: F) -> Result<F::Output, BoxError> {
    let local = tokio::task::LocalSet::new();
    Ok(local.run_until(async { tokio::task::spawn_local(f).await }).await?)
}

/// Connections per second: `one` (connect, first round trip, close) run up to `plan.connects`
/// times, fewer if `plan.time_cap` passes. The same loop times every system's connections.
pub(crate) async fn connects_per_second(
    plan: &Plan,
    mut one: impl AsyncFnMut() -> Result<(), BoxError>,
) -> Result<f64, BoxError> {
    let end = deadline(plan.time_cap);
    let start = Instant::now();
    let mut done = 0;
    while done < plan.connects && Instant::now() < end {
        one().await?;
        done += 1;
    }
    Ok(rate(done, start.elapsed()))
}

/// The instant `cap` from now.
pub(crate) fn deadline(cap: Duration) -> Instant {
    Instant::now() + cap
}

/// `n / elapsed` in units per second.
pub(crate) fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64().max(1e-9)
}
