//! `netref`: a command-line inspector for live netref (and RPyC) services — ping, list,
//! inspect, read, call and watch a service from a shell, a script or CI.
//!
//! This file only declares the command line and maps outcomes to exit codes; it must never
//! reach into netref's internals (the tool is built on netref's public API only).

use std::{process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};

mod commands;
mod demo;
mod failure;
mod json;
mod output;
mod target;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (ping: the peer answered)
  1  the peer raised an error (remote exception, access denied by its policy, no such attribute)
  2  usage: bad options, an argument that is not JSON, an unknown tag
  3  connection: refused, closed, TLS, version mismatch, protocol error, registry lookup failed
  4  timeout: no connection or no reply within --timeout

Addresses: HOST:PORT, :PORT (loopback), unix:PATH; with --registry, ADDR is a service name.
JSON values: see `netref help call`.";

const JSON_MAPPING: &str = "\
Arguments are JSON, one value each: 1, 2.5, \"text\", [1, 2], {\"k\": [1, 2]}, null, true.
Negative integers pass as they are; put -- before an argument like -1e-7.
Integers of any size stay exact; a number with a fraction or exponent is a float.
What JSON lacks is a tagged object:
  {\"$tuple\": [1, 2]}           {\"$bytes\": \"AAH/\"} (base64)     {\"$complex\": [1.0, -2.0]}
  {\"$frozenset\": [1, 2]}       {\"$slice\": [1, null, 2]}         {\"$map\": [[1, \"one\"]]} (non-string keys)
  {\"$float\": \"nan\"|\"inf\"|\"-inf\"}  {\"$ellipsis\": null}   {\"$notimplemented\": null}
Results use the same mapping; a netref prints as {\"$ref\": {\"type\", \"repr\", \"id_pack\"}}.";

/// Inspect and call live netref and RPyC services.
#[derive(Debug, Parser)]
#[command(name = "netref", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    conn: ConnectOptions,
    /// Print one JSON document per command (per change for `watch`) instead of text for people.
    #[arg(long, global = true)]
    json: bool,
    /// More detail on errors: the remote traceback.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

/// How to reach the service; accepted by every command.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectOptions {
    /// Connect over TLS (TCP only).
    #[arg(long, global = true)]
    pub(crate) tls: bool,
    /// PEM file with the CA certificate(s) the server's certificate must chain to (with --tls).
    #[arg(long, global = true, value_name = "PEM")]
    pub(crate) ca: Option<std::path::PathBuf>,
    /// PEM client certificate chain, for servers that require client authentication.
    #[arg(long, global = true, value_name = "PEM", requires = "key")]
    pub(crate) cert: Option<std::path::PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, global = true, value_name = "PEM", requires = "cert")]
    pub(crate) key: Option<std::path::PathBuf>,
    /// The name the server's certificate must be valid for, when it is not the address's host.
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) server_name: Option<String>,
    /// Speak RPyC 6's wire, to a stock Python rpyc server (or a netref server in RPyC mode).
    #[arg(long, global = true)]
    pub(crate) rpyc: bool,
    /// Limit for connecting and for each request, e.g. 500ms, 5s, 1m.
    #[arg(long, global = true, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Find the service through a registry (`netref://HOST:PORT`); ADDR is then the service name.
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) registry: Option<String>,
    /// Start PATHs at the object the service exports under NAME instead of its root.
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) export: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Connect, send a PING and print the round-trip time.
    Ping {
        /// HOST:PORT, :PORT or unix:PATH.
        addr: String,
    },
    /// The root's type and repr, and its members (named exports cannot be listed; see --export).
    Ls {
        /// HOST:PORT, :PORT or unix:PATH.
        addr: String,
    },
    /// The names the object at PATH exposes (DIR), marked method or attribute.
    Dir {
        /// HOST:PORT, :PORT or unix:PATH.
        addr: String,
        /// Dotted attribute path from the root (`store.items`; `root.` may lead); default the root.
        path: Option<String>,
    },
    /// The object at PATH: type, repr, methods (INSPECT) and attributes with their values.
    Inspect {
        /// HOST:PORT, :PORT or unix:PATH.
        addr: String,
        /// Dotted attribute path from the root; default the root.
        path: Option<String>,
    },
    /// Read the attribute at PATH and print it as JSON.
    Get {
        /// HOST:PORT, :PORT or unix:PATH.
        addr: String,
        /// Dotted attribute path from the root (`stats.calls`).
        path: String,
    },
    /// Call the method at PATH with JSON arguments and print the result as JSON.
    #[command(after_help = JSON_MAPPING)]
    Call {
        /// HOST:PORT, :PORT or unix:PATH.
        addr: String,
        /// Dotted path of the method (`add`, `store.put`).
        path: String,
        /// Positional arguments, one JSON value each.
        #[arg(allow_negative_numbers = true)]
        args: Vec<String>,
        /// A keyword argument as name=JSON; repeatable.
        #[arg(long = "kw", value_name = "NAME=JSON")]
        kwargs: Vec<String>,
    },
    /// Read PATH repeatedly and print one line each time its value changes.
    Watch {
        /// HOST:PORT, :PORT or unix:PATH.
        addr: String,
        /// Dotted attribute path from the root.
        path: String,
        /// How often to read, e.g. 1s, 250ms.
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        every: Duration,
        /// Stop after this many lines (changes); default: until interrupted.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Serve the calculator demo service and print `listening on ADDR` once ready (--rpyc: speak
    /// RPyC's wire).
    ServeDemo(demo::ServeDemo),
}

/// `500ms`, `5s`, `2m`, or a bare number of seconds (`1.5`).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let n: f64 = number.parse().map_err(|_| format!("not a duration: {text:?} (try 500ms, 5s, 1m)"))?;
    let seconds = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("unknown unit in {text:?}: use ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("not a duration: {text:?}"))
}

#[actix_rt::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = output::Output::new(cli.json, cli.verbose);
    let outcome = match cli.command {
        Command::ServeDemo(opts) => demo::serve(opts, cli.conn.rpyc).await,
        Command::Ping { addr } => commands::ping(&cli.conn, &addr, &out).await,
        Command::Ls { addr } => commands::ls(&cli.conn, &addr, &out).await,
        Command::Dir { addr, path } => commands::dir(&cli.conn, &addr, path.as_deref(), &out).await,
        Command::Inspect { addr, path } => commands::inspect(&cli.conn, &addr, path.as_deref(), &out).await,
        Command::Get { addr, path } => commands::get(&cli.conn, &addr, &path, &out).await,
        Command::Call { addr, path, args, kwargs } => {
            commands::call(&cli.conn, &addr, &path, &args, &kwargs, &out).await
        }
        Command::Watch { addr, path, every, count } => {
            commands::watch(&cli.conn, &addr, &path, every, count, &out).await
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            out.failure(&failure);
            ExitCode::from(failure.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_or_default_to_seconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
