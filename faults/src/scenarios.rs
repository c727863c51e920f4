//! The fault scenarios and what they share: where hosts run ([`Site`]: a namespace LAN, or
//! loopback when namespaces are unavailable), how a scenario reports (measured lines, then
//! passed / failed / skipped with the reason), and the helpers that start a server, a client
//! or a relay as a host process.
//!
//! A scenario never passes on something it did not run: a part that cannot run here is a
//! `skipped:` line with the reason, and the scenario's verdict says so.

mod delay_loss;
mod partition;
mod pause;
mod pubsub;
mod reconnect;

use std::time::{Duration, Instant};

use crate::{net::Lan, process::HostProcess};

pub(crate) use delay_loss::delay_and_loss;
pub(crate) use partition::partition_during_a_call;
pub(crate) use pause::paused_peer;
pub(crate) use pubsub::partitioned_subscriber;
pub(crate) use reconnect::{paused_peer_comes_back, server_restart};

/// The port servers listen on inside a namespace (each host has its own).
pub(crate) const SERVER_PORT: u16 = 7000;
/// The port relays listen on inside a namespace.
const RELAY_PORT: u16 = 7001;

/// How a scenario ended.
#[derive(Debug)]
pub(crate) enum Verdict {
    Passed,
    Failed(String),
    Skipped(String),
}

/// What one scenario measured and how it ended.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) name: String,
    pub(crate) lines: Vec<String>,
    pub(crate) verdict: Verdict,
    pub(crate) wall: Duration,
}

/// The lines a scenario measured while it ran.
#[derive(Debug, Default)]
pub(crate) struct Notes(Vec<String>);

impl Notes {
    /// Records (and prints at once, for a live log) one measured line.
    pub(crate) fn note(&mut self, scenario: &str, line: String) {
        eprintln!("  [{scenario}] {line}");
        self.0.push(line);
    }
}

/// Where a scenario's hosts run.
#[derive(Clone, Debug)]
pub(crate) enum Site {
    /// Network namespaces named from this prefix.
    Namespaces { prefix: String },
    /// Loopback; namespaces are unavailable for this reason.
    Loopback { reason: String },
}

/// A scenario's hosts: on a LAN, or all on loopback.
#[derive(Debug)]
pub(crate) enum Hosts {
    Lan(Lan),
    Loopback,
}

impl Hosts {
    /// Sets up `names` for `scenario` at `site`.
    pub(crate) fn create(site: &Site, scenario: &str, names: &[&str]) -> Result<Hosts, String> {
        match site {
            Site::Namespaces { prefix } => Lan::create(prefix, scenario, names).map(Hosts::Lan),
            Site::Loopback { .. } => Ok(Hosts::Loopback),
        }
    }

    fn spawn(&self, host: &str, label: &str, args: Vec<String>) -> Result<HostProcess, String> {
        match self {
            Hosts::Lan(lan) => lan.spawn(host, label, &args),
            Hosts::Loopback => HostProcess::spawn(label, None, &args),
        }
    }

    fn ip(&self, host: &str) -> String {
        match self {
            Hosts::Lan(lan) => lan.ip(host).to_string(),
            Hosts::Loopback => "127.0.0.1".into(),
        }
    }

    pub(crate) fn listen(&self, port: u16) -> String {
        match self {
            Hosts::Lan(_) => format!("0.0.0.0:{port}"),
            Hosts::Loopback => "127.0.0.1:0".into(),
        }
    }

    /// Starts a server on `host`; returns it and the address clients reach it at.
    pub(crate) fn server(&self, host: &str, peer_timeout_ms: u64) -> Result<(HostProcess, String), String> {
        self.server_on(host, &self.listen(SERVER_PORT), peer_timeout_ms)
    }

    /// Starts a server on `host` listening on `listen` (a restart takes its predecessor's).
    pub(crate) fn server_on(
        &self,
        host: &str,
        listen: &str,
        peer_timeout_ms: u64,
    ) -> Result<(HostProcess, String), String> {
        self.server_with(host, listen, peer_timeout_ms, &[])
    }

    /// Starts a server on `host` listening on `listen`, with `extra` arguments.
    pub(crate) fn server_with(
        &self,
        host: &str,
        listen: &str,
        peer_timeout_ms: u64,
        extra: &[String],
    ) -> Result<(HostProcess, String), String> {
        let mut args = vec![
            "server".into(),
            "--listen".into(),
            listen.into(),
            "--peer-timeout-ms".into(),
            peer_timeout_ms.to_string(),
        ];
        args.extend_from_slice(extra);
        let mut server = self.spawn(host, &format!("server@{host}"), args)?;
        let ready = server.expect("ready", Duration::from_secs(20))?;
        let addr = format!("{}:{}", self.ip(host), ready.num("port"));
        Ok((server, addr))
    }

    /// Starts a delaying relay on `host` in front of `target`; returns it and its address.
    pub(crate) fn relay(&self, host: &str, target: &str, delay: Duration) -> Result<(HostProcess, String), String> {
        let args = vec![
            "relay".into(),
            "--listen".into(),
            self.listen(RELAY_PORT),
            "--to".into(),
            target.into(),
            "--delay-ms".into(),
            delay.as_millis().to_string(),
        ];
        let mut relay = self.spawn(host, &format!("relay@{host}"), args)?;
        let ready = relay.expect("ready", Duration::from_secs(20))?;
        let addr = format!("{}:{}", self.ip(host), ready.num("port"));
        Ok((relay, addr))
    }

    /// Starts a client on `host` connecting to `addr`.
    pub(crate) fn client(
        &self,
        host: &str,
        addr: &str,
        peer_timeout_ms: u64,
        mode: &str,
        calls: u64,
    ) -> Result<HostProcess, String> {
        let args = vec![
            "client".into(),
            "--connect".into(),
            addr.into(),
            "--peer-timeout-ms".into(),
            peer_timeout_ms.to_string(),
            "--mode".into(),
            mode.into(),
            "--calls".into(),
            calls.to_string(),
        ];
        self.spawn(host, &format!("client@{host}"), args)
    }
}

/// Seconds since `since`, for the printed lines.
pub(crate) fn secs(at: Instant, since: Instant) -> String {
    format!("{:.2} s", at.saturating_duration_since(since).as_secs_f64())
}

/// Runs one scenario, timing it and turning its result into a [`Report`].
pub(crate) fn run(name: &str, scenario: impl FnOnce(&mut Notes) -> Result<Verdict, String>) -> Report {
    let started = Instant::now();
    let mut notes = Notes::default();
    let verdict = match scenario(&mut notes) {
        Ok(verdict) => verdict,
        Err(failure) => Verdict::Failed(failure),
    };
    Report { name: name.to_owned(), lines: notes.0, verdict, wall: started.elapsed() }
}
