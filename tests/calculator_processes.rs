//! Guards the two-process examples: `calculator_server` and `calculator_client` talk across
//! two OS processes over TCP and over a Unix socket; the client prints `add(1, 2) = 3`, is
//! called back by the server, and exits 0.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

fn example(name: &str) -> PathBuf {
    // Integration tests live in target/<profile>/deps; cargo builds examples next door.
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let path = deps.parent().unwrap().join("examples").join(name);
    if !path.exists() {
        // `cargo test --workspace` builds examples; a lone `cargo test --test ...` does not.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo).args(["build", "--example", name]).status().unwrap();
        assert!(status.success(), "cannot build example {name}");
    }
    assert!(path.exists(), "{} is not built", path.display());
    path
}

/// Kills the server when the test ends, whatever happens.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(addr: &str) {
    let mut server = Server(
        Command::new(example("calculator_server")).args([addr, "--once"]).stdout(Stdio::piped()).spawn().unwrap(),
    );
    let mut line = String::new();
    BufReader::new(server.0.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    let listening =
        line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("server said {line:?}")).to_owned();
    let client = Command::new(example("calculator_client")).arg(&listening).output().unwrap();
    let out = String::from_utf8_lossy(&client.stdout);
    assert!(client.status.success(), "client failed: {out}\n{}", String::from_utf8_lossy(&client.stderr));
    assert!(out.contains("add(1, 2) = 3"), "{out}");
    assert!(out.contains("callback: square(12) called by the server"), "{out}");
    assert!(out.contains("apply(square, 12) = 144"), "{out}");
    // A one-shot server exits once its client left.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.0.try_wait().unwrap().is_none() {
        assert!(std::time::Instant::now() < deadline, "one-shot server did not exit");
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

#[test]
fn over_tcp() {
    run("127.0.0.1:0");
}

#[cfg(unix)]
#[test]
fn over_a_unix_socket() {
    let path = std::env::temp_dir().join(format!("netref-calc-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    run(&format!("unix:{}", path.display()));
    let _ = std::fs::remove_file(&path);
}
