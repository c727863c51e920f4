//! Guards the `word_count` example: a coordinator and two worker processes, found through the
//! registry, count generated text together; the merged count equals a local count, the
//! workers are told to leave, and the coordinator exits 0 within a few seconds.

use std::{
    io::Read,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// The whole run, start to exit (it takes well under a second when built).
const LIMIT: Duration = Duration::from_secs(60);

fn example(name: &str) -> PathBuf {
    // Integration tests live in target/<profile>/deps; cargo builds examples next door.
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let path = deps.parent().unwrap().join("examples").join(name);
    if !path.exists() {
        // `cargo test --workspace` builds examples; a lone `cargo test --test ...` does not.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo).args(["build", "-p", "netref-actors", "--example", name]).status().unwrap();
        assert!(status.success(), "cannot build example {name}");
    }
    assert!(path.exists(), "{} is not built", path.display());
    path
}

/// Kills the coordinator when the test ends, whatever happens (its workers then see their
/// connection close and exit on their own).
struct Coordinator(Child);

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads `stream` to its end on a thread; the text arrives on the returned channel.
fn read_all(mut stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    rx
}

#[test]
fn coordinator_and_two_workers_agree_with_the_local_count() {
    let started = Instant::now();
    let mut coordinator = Coordinator(
        Command::new(example("word_count"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = read_all(coordinator.0.stdout.take().unwrap());
    let stderr = read_all(coordinator.0.stderr.take().unwrap());
    let deadline = started + LIMIT;
    let status = loop {
        if let Some(status) = coordinator.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "word_count did not exit within {LIMIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The workers write to the same pipes: both close once every process has exited.
    let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_secs(5));
    let out = stdout.recv_timeout(left).expect("the workers did not exit with the coordinator");
    let err = stderr.recv_timeout(Duration::from_secs(5)).expect("stderr was not closed");
    assert!(status.success(), "word_count failed ({status})\nstdout:\n{out}\nstderr:\n{err}");
    for expected in [
        "[worker-1] joined the coordinator",
        "[worker-2] joined the coordinator",
        "all 2 workers joined",
        "dispatched 16 chunks",
        "top 10 words",
        "word counts match the local count (200000 words",
        "worker-1 exited",
        "worker-2 exited",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}\nstderr:\n{err}");
    }
}
