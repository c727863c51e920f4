//! Runs the real `netref` binary: a demo server child process (`netref serve-demo`) that is
//! killed by its PID when dropped, one-shot commands with their exit code and output, and
//! masking of what changes from run to run (ports, times, ids) for golden comparisons.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

/// The binary under test.
pub(crate) fn netref() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netref"));
    cmd.env("NO_COLOR", "1");
    cmd
}

/// A `netref serve-demo` child process, killed when dropped.
pub(crate) struct Demo {
    child: Child,
    /// What it printed after `listening on `.
    pub(crate) addr: String,
}

impl Demo {
    /// Starts `netref serve-demo ARGS…` and waits for its `listening on` line (a server that
    /// fails to start closes its stdout, so the wait ends either way).
    pub(crate) fn start(args: &[&str]) -> Demo {
        let mut child = netref()
            .arg("serve-demo")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start netref serve-demo");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("serve-demo said {line:?}"));
        Demo { addr: addr.to_owned(), child }
    }

    /// On `127.0.0.1:0`.
    pub(crate) fn tcp() -> Demo {
        Demo::start(&["127.0.0.1:0"])
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A finished command.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `netref ARGS…` to completion.
pub(crate) fn run(args: &[&str]) -> Run {
    let out = netref().args(args).output().expect("run netref");
    Run {
        code: out.status.code().expect("netref exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs and expects exit 0, returning stdout.
pub(crate) fn ok(args: &[&str]) -> String {
    let run = run(args);
    assert_eq!(run.code, 0, "netref {args:?} failed: {run:?}");
    run.stdout
}

/// `text` with ports, times and ids replaced by placeholders.
pub(crate) fn mask(text: &str, addr: &str) -> String {
    let mut out = text.replace(addr, "ADDR");
    for (pattern, placeholder) in [("time=", "time=<ms> ms"), ("\"rtt_ms\":", "\"rtt_ms\":<ms>}")] {
        while let Some(at) = out.find(pattern).filter(|at| !out[*at..].starts_with(placeholder)) {
            let end = out[at..].find(['\n', '}']).map(|e| at + e + 1).unwrap_or(out.len());
            let keep_newline = out[at..end].ends_with('\n');
            out.replace_range(at..end, &format!("{placeholder}{}", if keep_newline { "\n" } else { "" }));
        }
    }
    // id_pack: ["type", class_id, instance_id]
    let mut masked = String::new();
    let mut rest = out.as_str();
    while let Some(at) = rest.find("\"id_pack\":[") {
        let start = at + "\"id_pack\":[".len();
        let close = rest[start..].find(']').unwrap() + start;
        let type_name = rest[start..close].split(',').next().unwrap();
        masked.push_str(&rest[..start]);
        masked.push_str(&format!("{type_name},<class>,<instance>"));
        rest = &rest[close..];
    }
    masked.push_str(rest);
    masked
}

/// A fresh directory for this test's files.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("netref-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
