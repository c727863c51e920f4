//! The netref client of the RPyC interop benchmark (`benches/rpyc/interop.sh`): calls the
//! interop service (contract §2) of a stock Python rpyc 6 server, or of `rpyc_interop_server`,
//! over RPyC's wire and times three loops on one connection:
//!
//! - `cached`: `f = root.add` once, then `f(1, 2)` (one CALL round trip per call);
//! - `callattr`: `root.call_method("add", (1, 2))` (one CALLATTR round trip per call);
//! - `echo_1mib`: `root.echo(b)` with 1 MiB of pseudo-random bytes, as [`SharedBytes`].
//!
//! `cargo run --release --example rpyc_bench_client -- HOST:PORT [--seconds S] [--only NAME]`
//!
//! Before each timed loop it prints `start NAME`, after it `done NAME COUNT SECONDS`, each line
//! flushed, so that a driver can sample the processes' CPU time around the loop; every result is
//! checked. Exits non-zero on any failure. It must not be used as a test: it times, it does not
//! judge.

use std::{
    io::Write,
    process::ExitCode,
    time::{Duration, Instant},
};

use bytes::Bytes;
use netref::{prelude::*, SharedBytes};

/// Calls made before each timed loop (connection, allocator and caches warm).
const WARMUP_CALLS: usize = 200;
/// Echoes made before the timed echo loop.
const WARMUP_ECHOES: usize = 2;

struct Options {
    addr: String,
    seconds: f64,
    only: Option<String>,
}

fn parse_options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut options = Options { addr: String::new(), seconds: 1.0, only: None };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let text = args.next().ok_or("--seconds needs a value")?;
                options.seconds = text.parse().map_err(|_| format!("--seconds: not a number: {text}"))?;
                if !(options.seconds > 0.0 && options.seconds <= 600.0) {
                    return Err("--seconds must be in (0, 600]".into());
                }
            }
            "--only" => options.only = Some(args.next().ok_or("--only needs a figure name")?),
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}")),
            _ if options.addr.is_empty() => options.addr = arg,
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    if options.addr.is_empty() {
        return Err("missing HOST:PORT".into());
    }
    if let Some(name) = &options.only {
        if !["cached", "callattr", "echo_1mib"].contains(&name.as_str()) {
            return Err(format!("--only: no figure named {name} (cached, callattr, echo_1mib)"));
        }
    }
    Ok(options)
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

fn mark(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs `once` for `seconds` (after `warmup` calls), between a `start` and a `done` line.
async fn timed<F, Fut>(name: &str, seconds: f64, warmup: usize, mut once: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    for _ in 0..warmup {
        once().await?;
    }
    let budget = Duration::from_secs_f64(seconds);
    mark(format_args!("start {name}"));
    let started = Instant::now();
    let mut count: u64 = 0;
    while started.elapsed() < budget {
        once().await?;
        count += 1;
    }
    mark(format_args!("done {name} {count} {:.6}", started.elapsed().as_secs_f64()));
    Ok(())
}

async fn run(options: &Options) -> Result<(), String> {
    let wanted = |name: &str| options.only.as_deref().is_none_or(|only| only == name);
    let peer = netref::connect(options.addr.as_str()).rpyc().await.map_err(|e| format!("connect: {e}"))?;
    let root = peer.root().await.map_err(|e| format!("root: {e}"))?;
    if wanted("cached") {
        let add: NetRef = root.getattr("add").await.map_err(|e| format!("root.add: {e}"))?;
        timed("cached", options.seconds, WARMUP_CALLS, || {
            let call = add.call::<i64>((1, 2));
            async move {
                match call.await {
                    Ok(3) => Ok(()),
                    other => Err(format!("add(1, 2) gave {other:?}")),
                }
            }
        })
        .await?;
    }
    if wanted("callattr") {
        timed("callattr", options.seconds, WARMUP_CALLS, || {
            let call = root.call_method::<i64>("add", (1, 2));
            async move {
                match call.await {
                    Ok(3) => Ok(()),
                    other => Err(format!("root.call_method(\"add\", (1, 2)) gave {other:?}")),
                }
            }
        })
        .await?;
    }
    if wanted("echo_1mib") {
        let payload = incompressible_mib();
        timed("echo_1mib", options.seconds, WARMUP_ECHOES, || {
            let call = root.call_method::<SharedBytes>("echo", (SharedBytes::from(payload.clone()),));
            let payload = payload.clone();
            async move {
                match call.await {
                    Ok(back) if back[..] == payload[..] => Ok(()),
                    Ok(back) => Err(format!("echo gave {} different bytes", back.len())),
                    Err(e) => Err(format!("echo: {e}")),
                }
            }
        })
        .await?;
    }
    drop(root);
    peer.close_within("benchmark done", Duration::from_secs(3)).await;
    Ok(())
}

#[actix_rt::main]
async fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("rpyc_bench_client: {e}\nusage: rpyc_bench_client HOST:PORT [--seconds S] [--only NAME]");
            return ExitCode::from(2);
        }
    };
    match run(&options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rpyc_bench_client: {e}");
            ExitCode::FAILURE
        }
    }
}
