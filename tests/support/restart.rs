//! What the reconnection tests share: a server whose executions are counted, restarted on
//! the same port; waiting on connection events; a TCP relay that can be frozen like a paused
//! process.
#![allow(dead_code, unreachable_pub)]

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use actix::prelude::*;
use futures::StreamExt;
use netref::{prelude::*, ConnectionEvents};
use serde::{Deserialize, Serialize};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

/// The bound on every wait in these tests.
pub const T: Duration = Duration::from_secs(10);

/// A policy that retries quickly, so a restarted server is found at once.
pub fn quick() -> ReconnectPolicy {
    ReconnectPolicy::exponential(Duration::from_millis(10), Duration::from_millis(100))
}

/// What the server side counts, shared by every server a test starts.
#[derive(Default)]
pub struct Executions {
    pub incr: AtomicUsize,
    pub held: AtomicUsize,
}

#[derive(Default)]
pub struct Counter(i64);

impl Actor for Counter {
    type Context = Context<Self>;
}

impl RemoteActor for Counter {
    const NAME: &'static str = "test.Counter";
}

#[derive(Message, Serialize, Deserialize)]
#[rtype(result = "i64")]
pub struct Add(pub i64);

impl RemoteMessage for Add {
    const NAME: &'static str = "test.Add";
}

impl Handler<Add> for Counter {
    type Result = i64;
    fn handle(&mut self, Add(n): Add, _: &mut Context<Self>) -> i64 {
        self.0 += n;
        self.0
    }
}

/// The root every test server offers, counting its executions (`incr`, `held` which never
/// answers, `count`), with an anonymous object (`make`).
pub fn root_object(executions: &Arc<Executions>) -> Object {
    let (incr, held, count) = (executions.clone(), executions.clone(), executions.clone());
    Object::builder("test.Root")
        .method("incr", move || incr.incr.fetch_add(1, Ordering::SeqCst) + 1)
        .async_method("held", move || {
            held.held.fetch_add(1, Ordering::SeqCst);
            std::future::pending::<()>()
        })
        .method("count", move || (count.incr.load(Ordering::SeqCst), count.held.load(Ordering::SeqCst)))
        .method("make", || Object::builder("test.Anonymous").method("hello", || "hi").build())
        .method("is_mine", |r: NetRef| r.as_local().is_some_and(|o| o.type_name() == "test.Root"))
        .build()
}

/// The service of the actix tests: the root and a named counter actor.
pub fn service(executions: &Arc<Executions>) -> Service {
    let root = root_object(executions);
    let counter = expose(Counter::default().start()).handle::<Add>();
    Service::shared(root).export("counter", counter)
}

/// A server on `addr` (`127.0.0.1:0` for a fresh port).
pub async fn serve(executions: &Arc<Executions>, addr: &str) -> Server {
    Server::builder(service(executions)).bind_tcp(addr).await.expect("bind")
}

/// The server, started again on the same port.
pub async fn restart(server: Server, executions: &Arc<Executions>) -> Server {
    let addr = server.local_addr().unwrap().to_string();
    server.shutdown(Duration::ZERO).await;
    serve(executions, &addr).await
}

/// The next event, within `T`.
pub async fn next(events: &mut ConnectionEvents) -> ConnectionEvent {
    tokio::time::timeout(T, events.next()).await.expect("an event within the bound").expect("the stream goes on")
}

/// Skips events until one `pred` accepts.
pub async fn until(
    events: &mut ConnectionEvents,
    what: &str,
    pred: impl Fn(&ConnectionEvent) -> bool,
) -> ConnectionEvent {
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = tokio::time::timeout(left, events.next()).await;
        match event {
            Ok(Some(event)) if pred(&event) => return event,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the events stream ended before: {what}"),
            Err(_) => panic!("timed out waiting for: {what}"),
        }
    }
}

pub fn is_lost(e: &ConnectionEvent) -> bool {
    matches!(e, ConnectionEvent::Lost { .. })
}

pub fn is_reconnected(e: &ConnectionEvent) -> bool {
    matches!(e, ConnectionEvent::Reconnected { .. })
}

pub fn hash_of(r: &NetRef) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(r)
}

/// The server, started again on the same port with `service`.
pub async fn restart_with(server: Server, service: Service) -> Server {
    let addr = server.local_addr().unwrap().to_string();
    server.shutdown(Duration::ZERO).await;
    Server::builder(service).bind_tcp(addr.as_str()).await.unwrap()
}

/// A TCP relay to `target` that the test can freeze: while frozen it forwards nothing, in
/// either direction, on any connection (new ones included), as a paused process would.
pub struct Relay {
    pub addr: String,
    frozen: watch::Sender<bool>,
}

impl Relay {
    pub async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (frozen, _) = watch::channel(false);
        let gate = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(&target).await else { continue };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, gate.subscribe()));
                tokio::spawn(pump(sr, cw, gate.subscribe()));
            }
        });
        Relay { addr, frozen }
    }

    pub fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

/// Copies `from` to `to`, holding the bytes while frozen.
pub async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut gate: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else { return };
        if n == 0 || gate.wait_for(|frozen| !frozen).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
