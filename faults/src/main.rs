//! `fault-suite`: netref under network faults — hosts in network namespaces on a bridge,
//! partitions (iptables DROP), random loss (iptables `statistic`), delay (a delaying relay),
//! paused processes (SIGSTOP/SIGCONT). Run as root: `fault-suite` runs every scenario at once
//! (each on its own namespaces) and prints what each side saw with measured times, then a
//! table; it exits non-zero if a scenario failed. Without namespaces the scenarios a loopback
//! relay can model run through one and the others say `skipped` with the reason.
//!
//! The same binary is each host's process (`server`, `client`, `relay` subcommands). It must
//! never touch anything it did not create: its namespaces are named from `--prefix` and
//! deleted on exit, failure included (`faults/run.sh` also deletes them by prefix if the suite
//! is killed).

mod feed;
mod host;
mod net;
mod process;
mod reconnecting;
mod relay;
mod scenarios;

use std::{
    net::SocketAddr,
    process::ExitCode,
    thread,
    time::{Duration, Instant},
};

use clap::{Parser, Subcommand};
use scenarios::{Report, Site, Verdict};

/// netref's fault suite.
#[derive(Debug, Parser)]
#[command(name = "fault-suite")]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    /// Namespace names start with this (unique per run; the cleanup deletes by it).
    #[arg(long, default_value_t = format!("nrf{}-", std::process::id()))]
    prefix: String,
    /// Run on loopback even where namespaces work.
    #[arg(long)]
    loopback: bool,
    /// Run only the scenarios whose names contain one of these (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// A host's role (the suite starts these itself).
#[derive(Debug, Subcommand)]
enum Role {
    /// A netref server exposing the test object.
    Server {
        #[arg(long)]
        listen: String,
        #[arg(long, default_value_t = 15_000)]
        peer_timeout_ms: u64,
        /// Publish a PubSub feed of this many messages a second (0: none).
        #[arg(long, default_value_t = 0)]
        feed_rate: u64,
        /// Bytes per feed message.
        #[arg(long, default_value_t = 4096)]
        feed_bytes: usize,
        /// Seconds the feed runs.
        #[arg(long, default_value_t = 30)]
        feed_secs: u64,
        /// Subscriptions the feed waits for before it starts.
        #[arg(long, default_value_t = 1)]
        feed_subscribers: usize,
    },
    /// A netref client in one of its modes.
    Client {
        #[arg(long)]
        connect: String,
        #[arg(long, default_value_t = 15_000)]
        peer_timeout_ms: u64,
        #[arg(long, value_enum)]
        mode: host::Mode,
        #[arg(long, default_value_t = 0)]
        calls: u64,
    },
    /// A delaying TCP relay, partitioned and healed by `partition` / `heal` lines on stdin.
    Relay {
        #[arg(long)]
        listen: String,
        #[arg(long)]
        to: SocketAddr,
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.role {
        Some(role) => run_role(role),
        None => run_suite(&cli),
    }
}

fn run_role(role: Role) -> ExitCode {
    // The server's actors and the reconnecting client's subscriber need an actix system; the
    // other roles run on a plain tokio runtime (netref gives them a connection thread).
    let actix = matches!(
        role,
        Role::Server { .. } | Role::Client { mode: host::Mode::Reconnecting | host::Mode::Subscriber, .. }
    );
    let work = async {
        match role {
            Role::Server { listen, peer_timeout_ms, feed_rate, feed_bytes, feed_secs, feed_subscribers } => {
                let feed = (feed_rate > 0).then(|| {
                    let duration = Duration::from_secs(feed_secs);
                    (feed::FeedSettings { rate: feed_rate, bytes: feed_bytes, duration }, feed_subscribers)
                });
                host::serve(&listen, peer_timeout_ms, feed).await.map_err(|e| e.to_string())
            }
            Role::Client { connect, peer_timeout_ms, mode, calls } => {
                host::client(&connect, peer_timeout_ms, mode, calls).await.map_err(|e| e.to_string())
            }
            Role::Relay { listen, to, delay_ms } => {
                relay::run_process(&listen, to, Duration::from_millis(delay_ms)).await.map_err(|e| e.to_string())
            }
        }
    };
    let outcome = if actix {
        actix_rt::System::new().block_on(work)
    } else {
        match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(runtime) => runtime.block_on(work),
            Err(e) => Err(format!("cannot start a runtime: {e}")),
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            host::event("error", &[("what", e)]);
            ExitCode::FAILURE
        }
    }
}

/// A scenario the suite knows: its name and how to run it.
type Scenario = (String, Box<dyn FnOnce(&Site) -> Report + Send>);

fn scenarios() -> Vec<Scenario> {
    let mut all: Vec<Scenario> = Vec::new();
    all.push((
        "delay+loss".into(),
        Box::new(|site: &Site| scenarios::run("delay+loss", |notes| scenarios::delay_and_loss(site, notes))),
    ));
    for (ms, label) in [(15_000, "default-15s"), (3_000, "configured-3s")] {
        let name = format!("partition/{label}");
        all.push((
            name.clone(),
            Box::new(move |site: &Site| {
                scenarios::run(&name, |notes| scenarios::partition_during_a_call(site, ms, label, notes))
            }),
        ));
    }
    for (ms, label) in [(15_000, "default-15s"), (5_000, "configured-5s")] {
        let name = format!("pause/{label}");
        all.push((
            name.clone(),
            Box::new(move |site: &Site| scenarios::run(&name, |notes| scenarios::paused_peer(site, ms, label, notes))),
        ));
    }
    all.push((
        "pause/reconnect".into(),
        Box::new(|site: &Site| {
            scenarios::run("pause/reconnect", |notes| scenarios::paused_peer_comes_back(site, notes))
        }),
    ));
    all.push((
        "restart".into(),
        Box::new(|site: &Site| scenarios::run("restart", |notes| scenarios::server_restart(site, notes))),
    ));
    all.push((
        "pubsub-partitioned-subscriber".into(),
        Box::new(|site: &Site| {
            scenarios::run("pubsub-partitioned-subscriber", |notes| scenarios::partitioned_subscriber(site, notes))
        }),
    ));
    all
}

fn run_suite(cli: &Cli) -> ExitCode {
    let started = Instant::now();
    let site = if cli.loopback {
        Site::Loopback { reason: "--loopback given".into() }
    } else {
        match net::namespaces_unavailable(&cli.prefix) {
            None => Site::Namespaces { prefix: cli.prefix.clone() },
            Some(reason) => Site::Loopback { reason },
        }
    };
    match &site {
        Site::Namespaces { prefix } => println!("fault suite: hosts in network namespaces {prefix}*"),
        Site::Loopback { reason } => println!("fault suite: on loopback ({reason})"),
    }
    let chosen: Vec<Scenario> = scenarios()
        .into_iter()
        .filter(|(name, _)| cli.only.is_empty() || cli.only.iter().any(|o| name.contains(o.as_str())))
        .collect();
    // Each scenario has namespaces (or loopback ports) of its own, so they run at once.
    let running: Vec<_> = chosen
        .into_iter()
        .map(|(name, scenario)| {
            let site = site.clone();
            (name, thread::spawn(move || scenario(&site)))
        })
        .collect();
    let reports: Vec<Report> = running
        .into_iter()
        .map(|(name, handle)| {
            handle.join().unwrap_or_else(|_| Report {
                name,
                lines: Vec::new(),
                verdict: Verdict::Failed("the scenario panicked".into()),
                wall: Duration::ZERO,
            })
        })
        .collect();
    print_table(&reports);
    let failed = reports.iter().filter(|r| matches!(r.verdict, Verdict::Failed(_))).count();
    println!(
        "fault suite: {} scenarios, {failed} failed, wall time {:.1} s",
        reports.len(),
        started.elapsed().as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_table(reports: &[Report]) {
    println!();
    println!("| scenario | result | wall | what each side saw |");
    println!("|---|---|---|---|");
    for report in reports {
        let result = match &report.verdict {
            Verdict::Passed => "passed".to_owned(),
            Verdict::Failed(why) => format!("FAILED: {why}"),
            Verdict::Skipped(why) => format!("skipped: {why}"),
        };
        println!(
            "| {} | {} | {:.1} s | {} |",
            report.name,
            result,
            report.wall.as_secs_f64(),
            report.lines.join("<br>")
        );
    }
    println!();
}
