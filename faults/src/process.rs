//! The orchestrator's handle on one host process (this binary re-run with a role, inside a
//! namespace through `ip netns exec` or on loopback): its event lines, timestamped on
//! arrival, its stdin for commands, and SIGSTOP/SIGCONT.
//!
//! A [`HostProcess`] always ends its process when dropped (resumed first if paused), also when
//! a scenario fails or panics; it never signals a process it did not start.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

/// One `@name k=v ...` line of a host, with the time it arrived.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    pub(crate) at: Instant,
    pub(crate) name: String,
    fields: Vec<(String, String)>,
}

impl Event {
    fn parse(at: Instant, line: &str) -> Option<Event> {
        let rest = line.strip_prefix('@')?;
        let mut words = rest.split(' ');
        let name = words.next()?.to_owned();
        let mut fields: Vec<(String, String)> = Vec::new();
        for word in words {
            match (word.split_once('='), fields.last_mut()) {
                (Some((k, v)), _) if !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    fields.push((k.to_owned(), v.to_owned()))
                }
                (_, Some((_, value))) => {
                    value.push(' ');
                    value.push_str(word);
                }
                (_, None) => {}
            }
        }
        Some(Event { at, name, fields })
    }

    /// The value of `key` ("" when absent).
    pub(crate) fn get(&self, key: &str) -> &str {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// The value of `key` as a number (0 when absent or not a number).
    pub(crate) fn num(&self, key: &str) -> u64 {
        self.get(key).parse().unwrap_or(0)
    }
}

/// A running host process.
#[derive(Debug)]
pub(crate) struct HostProcess {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    events: mpsc::Receiver<Event>,
    /// Every event received so far (for [`has_seen`](HostProcess::has_seen) and the failure
    /// message).
    seen: Vec<Event>,
    /// Events received but not yet returned by [`expect`](HostProcess::expect).
    backlog: Vec<Event>,
    paused: bool,
}

impl HostProcess {
    /// Runs this binary with `args`, inside `netns` when given.
    pub(crate) fn spawn(label: &str, netns: Option<&str>, args: &[String]) -> Result<HostProcess, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find the suite's binary: {e}"))?;
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        command.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = command.spawn().map_err(|e| format!("{label}: cannot start: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stdin = child.stdin.take();
        let (send, events) = mpsc::channel();
        let prefix = label.to_owned();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                match Event::parse(at, &line) {
                    Some(event) => {
                        if send.send(event).is_err() {
                            break;
                        }
                    }
                    None => eprintln!("  [{prefix}] {line}"),
                }
            }
        });
        Ok(HostProcess {
            label: label.to_owned(),
            child,
            stdin,
            events,
            seen: Vec::new(),
            backlog: Vec::new(),
            paused: false,
        })
    }

    /// The first event `name` not returned before, waiting up to `within` for it; events
    /// that arrive meanwhile stay for later calls, whatever their order.
    pub(crate) fn expect(&mut self, name: &str, within: Duration) -> Result<Event, String> {
        self.expect_where(name, |_| true, within)
    }

    /// Like [`expect`](HostProcess::expect), for the first event `name` that `matches`.
    pub(crate) fn expect_where(
        &mut self,
        name: &str,
        matches: impl Fn(&Event) -> bool,
        within: Duration,
    ) -> Result<Event, String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.backlog.iter().position(|e| e.name == name && matches(e)) {
                return Ok(self.backlog.remove(i));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) => {
                    self.seen.push(event.clone());
                    self.backlog.push(event);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("{}: no @{name} within {within:?}; saw {}", self.label, self.summary()))
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.try_wait().ok().flatten();
                    return Err(format!("{}: ended ({status:?}) before @{name}; saw {}", self.label, self.summary()));
                }
            }
        }
    }

    /// The first event `name` received so far (returned by `expect` or not), without waiting.
    pub(crate) fn has_seen(&mut self, name: &str) -> Option<Event> {
        while let Ok(event) = self.events.try_recv() {
            self.seen.push(event.clone());
            self.backlog.push(event);
        }
        self.seen.iter().find(|e| e.name == name).cloned()
    }

    fn summary(&self) -> String {
        let names: Vec<&str> = self.seen.iter().map(|e| e.name.as_str()).collect();
        format!("[{}]", names.join(", "))
    }

    /// Writes one command line to the process's stdin.
    pub(crate) fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or_else(|| format!("{}: stdin closed", self.label))?;
        writeln!(stdin, "{line}").and_then(|()| stdin.flush()).map_err(|e| format!("{}: cannot write: {e}", self.label))
    }

    /// The process's id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process (SIGSTOP): it holds its sockets and answers nothing.
    pub(crate) fn pause(&mut self) -> Result<(), String> {
        signal(self.pid(), "STOP")?;
        self.paused = true;
        Ok(())
    }

    /// Resumes a paused process (SIGCONT).
    pub(crate) fn resume(&mut self) -> Result<(), String> {
        signal(self.pid(), "CONT")?;
        self.paused = false;
        Ok(())
    }

    /// Ends the process at once (SIGKILL) and reaps it.
    pub(crate) fn kill(&mut self) {
        if self.paused {
            let _ = signal(self.pid(), "CONT");
            self.paused = false;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `SIG<name>` to `pid` with kill(1) (the crate forbids unsafe code, so no libc call).
fn signal(pid: u32, name: &str) -> Result<(), String> {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .map_err(|e| format!("kill -{name} {pid}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill -{name} {pid} failed: {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_line_gives_its_fields_and_the_last_keeps_its_spaces() {
        let e = Event::parse(Instant::now(), "@lost id=3 reason=peer lost: nothing received for 3s").unwrap();
        assert_eq!(e.name, "lost");
        assert_eq!(e.num("id"), 3);
        assert_eq!(e.get("reason"), "peer lost: nothing received for 3s");
        assert_eq!(e.get("absent"), "");
        assert!(Event::parse(Instant::now(), "plain log line").is_none());
    }
}
