//! `netref-registry`: a standalone service registry (RPyC's `rpyc_registry`, over netref).
//!
//! ```text
//! netref-registry --listen 127.0.0.1:18811 [--prune-secs 10] [--max-entries 10000] [--max-ttl-secs 3600]
//! ```
//!
//! Prints `listening on ADDR` on stdout once it accepts connections (with the port the OS chose
//! for port 0), logs to stderr (`RUST_LOG`, default `info`), and runs until SIGINT or SIGTERM.

use std::{
    io::{IsTerminal, Write},
    process::ExitCode,
    time::Duration,
};

use clap::Parser;
use netref_actors::registry::{RegistryConfig, RegistryService, REGISTRY_PORT};

/// A netref service registry: servers register under a name with a TTL, clients look them up.
#[derive(Debug, Parser)]
#[command(name = "netref-registry", version)]
struct Cli {
    /// Address to listen on.
    #[arg(long, default_value_t = format!("127.0.0.1:{REGISTRY_PORT}"))]
    listen: String,
    /// Seconds between background sweeps of expired entries (every request prunes too).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    prune_secs: u64,
    /// Most (name, address) entries at once.
    #[arg(long, default_value_t = 10_000)]
    max_entries: usize,
    /// Longest TTL a server may register with, in seconds.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    max_ttl_secs: u64,
}

#[actix_rt::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let config = RegistryConfig::default()
        .prune_interval(Duration::from_secs(cli.prune_secs))
        .max_entries(cli.max_entries)
        .max_ttl(Duration::from_secs(cli.max_ttl_secs));
    let registry = RegistryService::new(config);
    let server = match registry.serve(cli.listen.as_str()).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("netref-registry: cannot listen on {}: {e}", cli.listen);
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "listening on {}", server.address());
    let _ = stdout.flush();
    drop(stdout);

    match shutdown_signal().await {
        Ok(signal) => tracing::info!(signal, "shutting down"),
        Err(e) => {
            eprintln!("netref-registry: cannot wait for signals: {e}");
            return ExitCode::FAILURE;
        }
    }
    server.shutdown(Duration::from_secs(1)).await;
    ExitCode::SUCCESS
}

/// Resolves with the name of the first termination signal received.
async fn shutdown_signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map(|()| "SIGINT"),
            _ = term.recv() => Ok("SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.map(|()| "ctrl-c")
    }
}
