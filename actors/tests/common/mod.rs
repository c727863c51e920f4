//! Shared helpers for the netref-actors tests: running a test over both transports, and
//! waiting on a condition.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use netref::prelude::*;
use tokio::net::{TcpListener, TcpStream};

/// Which transport a test runs over.
#[derive(Clone, Copy, Debug)]
pub enum Transport {
    Memory,
    Tcp,
}

/// Connects a side serving `server` to a side serving nothing; returns `(server, client)`.
pub async fn connect(t: Transport, server: Service) -> (Peer, Peer) {
    match t {
        Transport::Memory => netref::connect_pair(server, Service::void()),
        Transport::Tcp => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (accepted, connected) = tokio::join!(listener.accept(), TcpStream::connect(addr));
            let server = netref::from_tcp(accepted.unwrap().0, server, Config::default()).unwrap();
            let client = netref::from_tcp(connected.unwrap(), Service::void(), Config::default()).unwrap();
            (server, client)
        }
    }
}

/// Runs an async test body once per transport, each in its own actix system.
#[macro_export]
macro_rules! over_both_transports {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_rt::test]
            async fn memory() {
                super::$name($crate::common::Transport::Memory).await
            }
            #[actix_rt::test]
            async fn tcp() {
                super::$name($crate::common::Transport::Tcp).await
            }
        }
    )*};
}

/// Waits until `cond` holds, polling every few milliseconds, failing after `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if cond().await {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out after {limit:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
