//! Server processes: spawned from this binary in a server role, killed and reaped on drop.

use std::{
    io::{BufRead, BufReader, Read},
    path::Path,
    process::{Child, ChildStdin, ChildStdout, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use crate::BoxError;

/// A server child process. Dropping it (also while unwinding from a panic) closes its standard
/// input, kills it and waits for it.
#[derive(Debug)]
pub struct ServerProcess {
    kind: &'static str,
    child: Child,
    addr: String,
    cpus: String,
    // Held so the child's `exit_when_stdin_closes` watchdog sees EOF only when we are done.
    stdin: Option<ChildStdin>,
    _stdout: Option<BufReader<ChildStdout>>,
}

impl ServerProcess {
    /// Starts `exe --server KIND 127.0.0.1:0` and waits (at most 30 s) for its
    /// `listening on ADDR` line.
    pub fn spawn(exe: &Path, kind: &'static str) -> Result<Self, BoxError> {
        let child = Command::new(exe)
            .args(["--server", kind, "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the {kind} server {}: {e}", exe.display()))?;
        // The guard exists from here on: any failure below kills the child.
        let mut me = ServerProcess {
            kind,
            cpus: cpus_allowed(Some(child.id())),
            child,
            addr: String::new(),
            stdin: None,
            _stdout: None,
        };
        me.stdin = me.child.stdin.take();
        let stdout = me.child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, rx) = mpsc::channel();
        // Read the first line on a helper thread so that a silent server cannot hang us.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let r = reader.read_line(&mut line).map(|_| line);
            let _ = tx.send((r, reader));
        });
        let (line, reader) =
            rx.recv_timeout(Duration::from_secs(30)).map_err(|_| format!("the {kind} server did not start in 30 s"))?;
        me._stdout = Some(reader);
        let line = line?;
        me.addr = line
            .trim()
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("the {kind} server printed {line:?}, not `listening on ADDR`"))?
            .to_owned();
        Ok(me)
    }

    /// `floor`, `tarpc` or `netref`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The address the server listens on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The CPUs the server may run on (`Cpus_allowed_list`), read when it started.
    pub fn cpus_allowed(&self) -> &str {
        &self.cpus
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `Cpus_allowed_list` of process `pid` (this process for `None`), or `?`.
pub(crate) fn cpus_allowed(pid: Option<u32>) -> String {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_owned(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:").map(|v| v.trim().to_owned())))
        .unwrap_or_else(|| "?".to_owned())
}

/// In a server process: exits the process as soon as standard input reaches EOF (the parent
/// closed it, exited or was killed).
pub(crate) fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => std::process::exit(0),
                Ok(_) => {}
            }
        }
    });
}
