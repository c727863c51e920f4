//! The netref client of the RPyC interop benchmark (`benches/rpyc/interop.sh`): calls the
//! interop service (contract §2) of a stock Python rpyc 6 server, or of `rpyc_interop_server`,
//! over RPyC's wire, one connection, and times the loop it is asked for:
//!
//! - `cached`: `f = root.add` once, then `f(1, 2)` (one CALL round trip per call);
//! - `callattr`: `root.call_method("add", (1, 2))` (one CALLATTR round trip per call);
//! - `echo_1mib`: `root.echo(b)` with 1 MiB of pseudo-random bytes, as [`SharedBytes`].
//!
//! `cargo run --release --example rpyc_bench_client -- HOST:PORT`, then one `FIGURE SECONDS`
//! line on stdin per timed block (e.g. `cached 0.2`). It prints `ready` once connected, and
//! `done FIGURE COUNT SECONDS` after each block (flushed), so that a driver can interleave its
//! blocks with other clients' and sample the processes' CPU time around each one. Every figure
//! is warmed up before `ready`; every result is checked. It exits at the end of stdin, and
//! non-zero on any failure. It times, it does not judge: not a test.

use std::{
    io::Write,
    process::ExitCode,
    time::{Duration, Instant},
};

use bytes::Bytes;
use netref::{prelude::*, SharedBytes};

/// Calls of each kind made before the first block.
const WARMUP_CALLS: usize = 200;
/// Echoes made before the first block.
const WARMUP_ECHOES: usize = 2;

/// The longest block one line may ask for.
const MAX_BLOCK_SECONDS: f64 = 600.0;

/// One timed block asked for on stdin: `FIGURE SECONDS`.
fn parse_block(line: &str) -> Result<(String, Duration), String> {
    let mut words = line.split_whitespace();
    let (Some(figure), Some(seconds), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!("expected `FIGURE SECONDS`, got {line:?}"));
    };
    if !["cached", "callattr", "echo_1mib"].contains(&figure) {
        return Err(format!("no figure named {figure} (cached, callattr, echo_1mib)"));
    }
    let seconds: f64 = seconds.parse().map_err(|_| format!("not a number of seconds: {seconds}"))?;
    if !(seconds > 0.0 && seconds <= MAX_BLOCK_SECONDS) {
        return Err(format!("a block lasts (0, {MAX_BLOCK_SECONDS}] seconds, not {seconds}"));
    }
    Ok((figure.to_owned(), Duration::from_secs_f64(seconds)))
}

/// 1 MiB that zlib cannot shrink (xorshift64), as `os.urandom` gives the Python client.
fn incompressible_mib() -> Bytes {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(1 << 20);
    while out.len() < 1 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    Bytes::from(out)
}

fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs `once` until `budget` has passed (at least once); the count and the time taken.
async fn timed<F, Fut>(budget: Duration, mut once: F) -> Result<(u64, Duration), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let started = Instant::now();
    let mut count: u64 = 0;
    loop {
        once().await?;
        count += 1;
        if started.elapsed() >= budget {
            return Ok((count, started.elapsed()));
        }
    }
}

/// The three loops on one connection.
struct Figures {
    root: NetRef,
    add: NetRef,
    payload: Bytes,
}

impl Figures {
    async fn add_cached(&self) -> Result<(), String> {
        match self.add.call::<i64>((1, 2)).await {
            Ok(3) => Ok(()),
            other => Err(format!("add(1, 2) gave {other:?}")),
        }
    }

    async fn add_callattr(&self) -> Result<(), String> {
        match self.root.call_method::<i64>("add", (1, 2)).await {
            Ok(3) => Ok(()),
            other => Err(format!("root.call_method(\"add\", (1, 2)) gave {other:?}")),
        }
    }

    async fn echo(&self) -> Result<(), String> {
        match self.root.call_method::<SharedBytes>("echo", (SharedBytes::from(self.payload.clone()),)).await {
            Ok(back) if back[..] == self.payload[..] => Ok(()),
            Ok(back) => Err(format!("echo gave {} different bytes", back.len())),
            Err(e) => Err(format!("echo: {e}")),
        }
    }

    async fn once(&self, figure: &str) -> Result<(), String> {
        match figure {
            "cached" => self.add_cached().await,
            "callattr" => self.add_callattr().await,
            _ => self.echo().await,
        }
    }

    /// Every figure's warm-up: the connection, allocator and caches as the blocks find them.
    async fn warm_up(&self) -> Result<(), String> {
        for _ in 0..WARMUP_CALLS {
            self.add_cached().await?;
            self.add_callattr().await?;
        }
        for _ in 0..WARMUP_ECHOES {
            self.echo().await?;
        }
        Ok(())
    }
}

async fn run(addr: &str) -> Result<(), String> {
    let peer = netref::connect(addr).rpyc().await.map_err(|e| format!("connect: {e}"))?;
    let root = peer.root().await.map_err(|e| format!("root: {e}"))?;
    let add: NetRef = root.getattr("add").await.map_err(|e| format!("root.add: {e}"))?;
    let figures = Figures { root, add, payload: incompressible_mib() };
    figures.warm_up().await?;
    // Lines from stdin, read on a thread of their own (the runtime has no stdin driver).
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    say(format_args!("ready"));
    while let Some(line) = lines.recv().await {
        if line.trim().is_empty() {
            continue;
        }
        let (figure, budget) = parse_block(&line)?;
        let (count, elapsed) = timed(budget, || figures.once(&figure)).await?;
        say(format_args!("done {figure} {count} {:.6}", elapsed.as_secs_f64()));
    }
    drop(figures);
    peer.close_within("benchmark done", Duration::from_secs(3)).await;
    Ok(())
}

#[actix_rt::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(addr), None) = (args.next(), args.next()) else {
        eprintln!("usage: rpyc_bench_client HOST:PORT, then `FIGURE SECONDS` lines on stdin");
        return ExitCode::from(2);
    };
    match run(&addr).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rpyc_bench_client: {e}");
            ExitCode::FAILURE
        }
    }
}
