//! Shared by the process-level benchmarks: this same binary re-run as the server process.
//! Each bench is its own crate and uses part of this module.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

/// A server process: this binary run with `args`, which prints `listening on ADDR` once ready.
/// Killed and reaped when dropped, whatever happens to the benchmark.
pub(crate) struct ServerProcess {
    child: Child,
    /// The address the server printed.
    pub(crate) addr: String,
}

impl ServerProcess {
    pub(crate) fn spawn(args: &[&str]) -> ServerProcess {
        let mut child = Command::new(std::env::current_exe().expect("the benchmark's own path"))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the server process");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read the server's line");
        let addr =
            line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("the server said {line:?}")).to_owned();
        ServerProcess { child, addr }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
