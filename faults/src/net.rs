//! Where a scenario's hosts live: a LAN of network namespaces (each host a namespace with one
//! `eth0` on a bridge that lives in a namespace of its own), or plain loopback when namespaces
//! cannot be created. Faults on a LAN are iptables rules inside a host's namespace: a partition
//! DROPs everything on its `eth0`, loss drops arriving packets at random (`statistic` match).
//!
//! Everything a [`Lan`] creates lives inside its namespaces, so deleting them (on drop, also
//! after a failure; the CI script's trap does the same by name prefix) removes every veth,
//! bridge and rule with them. It never touches the host's own namespace, links or rules.

use std::{
    net::Ipv4Addr,
    process::{Command, Output},
};

use crate::process::HostProcess;

/// The LAN's prefix; host `i` (from 0) is `10.77.0.(i + 2)`.
const SUBNET: [u8; 3] = [10, 77, 0];

/// Runs `ip`/`iptables` with `args`, inside `netns` when given; an error quotes the command.
fn run(netns: Option<&str>, program: &str, args: &[&str]) -> Result<Output, String> {
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, program]);
            c
        }
        None => Command::new(program),
    };
    let output = command.args(args).output().map_err(|e| format!("{program} {}: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{}{program} {} failed: {}",
            netns.map(|ns| format!("[{ns}] ")).unwrap_or_default(),
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Why namespaces cannot be used here, if they cannot (checked once, with a throwaway
/// namespace).
pub(crate) fn namespaces_unavailable(prefix: &str) -> Option<String> {
    let probe = format!("{prefix}probe");
    if let Err(e) = run(None, "ip", &["netns", "add", &probe]) {
        return Some(format!("cannot create a network namespace ({e})"));
    }
    let iptables = run(Some(&probe), "iptables", &["-S"]).err();
    let _ = run(None, "ip", &["netns", "del", &probe]);
    iptables.map(|e| format!("iptables does not work in a namespace ({e})"))
}

/// One scenario's namespaces: its hosts and the bridge joining them.
#[derive(Debug)]
pub(crate) struct Lan {
    hosts: Vec<String>,
    /// Every namespace created, deleted on drop.
    created: Vec<String>,
}

impl Lan {
    /// Creates namespaces `<prefix><scenario>-<host>` for `hosts`, each with `eth0` on a
    /// bridge in `<prefix><scenario>-br`.
    pub(crate) fn create(prefix: &str, scenario: &str, hosts: &[&str]) -> Result<Lan, String> {
        let bridge = format!("{prefix}{scenario}-br");
        let mut lan = Lan { hosts: Vec::new(), created: Vec::new() };
        run(None, "ip", &["netns", "add", &bridge])?;
        lan.created.push(bridge.clone());
        run(Some(&bridge), "ip", &["link", "add", "br0", "type", "bridge"])?;
        run(Some(&bridge), "ip", &["link", "set", "br0", "up"])?;
        for (i, host) in hosts.iter().enumerate() {
            let ns = format!("{prefix}{scenario}-{host}");
            run(None, "ip", &["netns", "add", &ns])?;
            lan.created.push(ns.clone());
            let port = format!("p{i}");
            run(
                None,
                "ip",
                &["link", "add", "name", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port, "netns", &bridge],
            )?;
            run(Some(&bridge), "ip", &["link", "set", &port, "master", "br0", "up"])?;
            let addr = format!("{}/24", lan.ip_of(i));
            run(Some(&ns), "ip", &["addr", "add", &addr, "dev", "eth0"])?;
            run(Some(&ns), "ip", &["link", "set", "eth0", "up"])?;
            run(Some(&ns), "ip", &["link", "set", "lo", "up"])?;
            lan.hosts.push(ns);
        }
        Ok(lan)
    }

    fn ip_of(&self, index: usize) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], index as u8 + 2)
    }

    fn index(&self, host: &str) -> usize {
        self.hosts.iter().position(|ns| ns.ends_with(&format!("-{host}"))).unwrap_or_else(|| panic!("no host {host}"))
    }

    /// The namespace of `host`.
    pub(crate) fn netns(&self, host: &str) -> &str {
        &self.hosts[self.index(host)]
    }

    /// The address of `host` on the LAN.
    pub(crate) fn ip(&self, host: &str) -> Ipv4Addr {
        self.ip_of(self.index(host))
    }

    /// Cuts `host` off: every packet in or out of its `eth0` is dropped.
    pub(crate) fn partition(&self, host: &str) -> Result<(), String> {
        let ns = Some(self.netns(host));
        run(ns, "iptables", &["-I", "INPUT", "-i", "eth0", "-j", "DROP"])?;
        run(ns, "iptables", &["-I", "OUTPUT", "-o", "eth0", "-j", "DROP"])?;
        Ok(())
    }

    /// Undoes [`partition`](Lan::partition).
    pub(crate) fn heal(&self, host: &str) -> Result<(), String> {
        let ns = Some(self.netns(host));
        run(ns, "iptables", &["-D", "INPUT", "-i", "eth0", "-j", "DROP"])?;
        run(ns, "iptables", &["-D", "OUTPUT", "-o", "eth0", "-j", "DROP"])?;
        Ok(())
    }

    /// Drops each packet arriving at `host` with `probability`.
    pub(crate) fn random_loss(&self, host: &str, probability: f64) -> Result<(), String> {
        let p = format!("{probability}");
        let args =
            ["-A", "INPUT", "-i", "eth0", "-m", "statistic", "--mode", "random", "--probability", &p, "-j", "DROP"];
        run(Some(self.netns(host)), "iptables", &args).map(drop)
    }

    /// Packets the random-loss rule has dropped at `host` so far (iptables' counter).
    pub(crate) fn dropped(&self, host: &str) -> Result<u64, String> {
        let out = run(Some(self.netns(host)), "iptables", &["-L", "INPUT", "-v", "-x", "-n"])?;
        let listing = String::from_utf8_lossy(&out.stdout);
        let rule =
            listing.lines().find(|l| l.contains("statistic")).ok_or_else(|| format!("no loss rule at {host}"))?;
        let packets = rule.split_whitespace().next().unwrap_or_default();
        packets.parse().map_err(|e| format!("iptables counter {packets:?}: {e}"))
    }

    /// Runs this binary with `args` as `host`.
    pub(crate) fn spawn(&self, host: &str, label: &str, args: &[String]) -> Result<HostProcess, String> {
        HostProcess::spawn(label, Some(self.netns(host)), args)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            // Processes still in it are the suite's own (their guards normally ended them).
            if let Ok(out) = run(None, "ip", &["netns", "pids", ns]) {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            if let Err(e) = run(None, "ip", &["netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}
