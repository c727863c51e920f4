//! Guards the accept loop against failed accepts: with no file descriptor left, `serve_tcp`
//! logs the failure, pauses for `ACCEPT_BACKOFF` and goes on (it does not end: the server would
//! stop accepting for good), and serves new clients once descriptors are free.
//!
//! The test runs itself again in a child process whose descriptor limit is lowered with the
//! shell's `ulimit -n`, so that running out of descriptors touches no other test.

#![cfg(target_os = "linux")]

mod common;

use std::{
    io::Write,
    process::Command,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{calculator, wait_until};
use netref::prelude::*;

const CHILD: &str = "NETREF_TEST_ACCEPT_ERRORS_CHILD";
const T: Duration = Duration::from_secs(10);
/// The child's descriptor limit: room for the runtime and the test harness, and a few dozen
/// sockets.
const FD_LIMIT: u32 = 64;
/// `EMFILE` on Linux: the process has no descriptor left.
const EMFILE: i32 = 24;

#[test]
fn serve_tcp_survives_running_out_of_file_descriptors() {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n {FD_LIMIT} && exec \"$0\" --exact serve_tcp_survives_running_out_of_file_descriptors \
             --test-threads=1 --nocapture"
        ))
        .arg(&exe)
        .env(CHILD, "1")
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the child failed:\n{log}");
    assert!(log.contains("1 passed"), "the child ran no test:\n{log}");
}

/// What the subscriber writes, for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn contains(&self, text: &str) -> bool {
        String::from_utf8_lossy(&self.0.lock().unwrap()).contains(text)
    }
}

fn child() {
    let log = Captured::default();
    let writer = log.clone();
    tracing_subscriber::fmt().with_max_level(tracing::Level::WARN).with_writer(move || writer.clone()).init();
    actix_rt::System::new().block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = actix_rt::spawn(netref::serve_tcp(
            listener,
            Service::shared(calculator(Arc::default())),
            Config::default(),
            None,
        ));

        // Take every descriptor left with connections the accept loop has not seen yet: this
        // thread does not yield to it meanwhile, and the kernel completes them in the backlog.
        let mut held = Vec::new();
        loop {
            match std::net::TcpStream::connect(addr) {
                Ok(s) => held.push(s),
                Err(e) => {
                    assert_eq!(e.raw_os_error(), Some(EMFILE), "unexpected connect error: {e}");
                    break;
                }
            }
            assert!(held.len() < FD_LIMIT as usize, "the descriptor limit did not apply");
        }

        // The accept loop now finds the backlog full and no descriptor to take a connection.
        wait_until(T, "the accept loop reports the failed accept", || async { log.contains("accept failed") }).await;
        assert!(!server.is_finished(), "serve_tcp ended on a failed accept");

        // With descriptors free again, the backlog drains and a new client is served.
        drop(held);
        wait_until(T, "a new client is served", || async {
            let Ok(peer) = netref::connect_tcp(addr, Service::void(), Config::default(), T).await else {
                return false;
            };
            let sum = peer.root().await.unwrap().call_method::<i64>("add", (2, 3)).await.unwrap();
            peer.close().await;
            sum == 5
        })
        .await;
        assert!(!server.is_finished());
    });
}
