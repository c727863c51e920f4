//! `compare`: netref against the raw TCP floor and tarpc, side by side, over loopback TCP.
//!
//! ```text
//! cargo run --release --manifest-path benches/compare/Cargo.toml -- [--runs N] [--quick] [--pinned]
//! ```
//!
//! `--pinned` re-executes this program under `taskset -c 0`, so the client and every server
//! process (children inherit the affinity) share one CPU.
//!
//! For profiling one operation: `compare --server KIND ADDR` runs a server alone, and
//! `compare --client OP ADDR N` runs `N` operations `OP` against it (see `PROFILING.md`).

use std::{
    io::ErrorKind,
    process::{Command, ExitCode},
    time::Instant,
};

use netref_compare::{Plan, Systems};

const PINNED_ENV: &str = "NETREF_COMPARE_PINNED";

fn usage() -> ExitCode {
    eprintln!("usage: compare [--runs N] [--quick] [--pinned]");
    eprintln!("       compare --server floor|tarpc|netref|netref-min|actor-floor ADDR");
    eprintln!("       compare --client OP ADDR N      (N operations OP against a server, for profiling)");
    eprintln!("operations for --client (server kind: one operation):");
    for (op, kind, what) in netref_compare::CLIENT_OPS {
        eprintln!("  {op:<15} {kind:<7} {what}");
    }
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--server") {
        let (Some(kind), Some(addr)) = (args.get(i + 1), args.get(i + 2)) else { return usage() };
        return match netref_compare::serve(kind, addr) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{kind} server: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(i) = args.iter().position(|a| a == "--client") {
        let (Some(op), Some(addr), Some(n)) = (args.get(i + 1), args.get(i + 2), args.get(i + 3)) else {
            return usage();
        };
        let Ok(n) = n.parse::<usize>() else { return usage() };
        let started = Instant::now();
        return match netref_compare::client(op, addr, n) {
            Ok(()) => {
                let s = started.elapsed().as_secs_f64();
                println!("{op} {n} in {s:.3} s ({:.0}/s)", n as f64 / s.max(1e-9));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{op} client: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let mut runs = 5;
    let (mut quick, mut pinned) = (false, false);
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => match it.next().and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => runs = n,
                _ => return usage(),
            },
            "--quick" => quick = true,
            "--pinned" => pinned = true,
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            _ => return usage(),
        }
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot find this executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    if pinned && std::env::var_os(PINNED_ENV).is_none() {
        // Re-execute under taskset; the server processes inherit the affinity.
        return match Command::new("taskset").arg("-c").arg("0").arg(&exe).args(&args[1..]).env(PINNED_ENV, "1").status()
        {
            Ok(status) => ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                eprintln!("--pinned needs `taskset` (util-linux), which is not installed; run without --pinned");
                ExitCode::from(3)
            }
            Err(e) => {
                eprintln!("cannot run taskset: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let plan = if quick { Plan::quick(runs) } else { Plan::full(runs) };
    let mode = if pinned { "pinned (taskset -c 0)" } else { "unpinned" };
    println!("# netref-compare: mode {mode}, runs {runs}, {}", if quick { "quick" } else { "full" });
    let started = Instant::now();
    match netref_compare::run(&plan, Systems::ALL, &exe, |line| eprintln!("# {line}")) {
        Ok(report) => {
            print!("{}", report.render());
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
            println!("# total {:.1} s; load average at end: {load}", started.elapsed().as_secs_f64());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("compare failed: {e}");
            ExitCode::FAILURE
        }
    }
}
