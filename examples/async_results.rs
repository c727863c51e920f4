//! AsyncResult, feature by feature: non-blocking checks (`ready`, `error`, `expired`), expiry,
//! callbacks, blocking `value()` from a plain thread, and cancellation by dropping a result.
//! Run it with `cargo run --example async_results`.

use std::{future::IntoFuture, time::Duration};

use netref::prelude::*;
use tokio::sync::{mpsc, oneshot};

/// What the server's `work` method reports about itself.
enum Event {
    Started(u64),
    Finished(u64),
    Cancelled(u64),
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Started(ms) => write!(f, "work({ms} ms) started"),
            Event::Finished(ms) => write!(f, "work({ms} ms) finished"),
            Event::Cancelled(ms) => write!(f, "work({ms} ms) cancelled: its future was dropped"),
        }
    }
}

/// Reports `Cancelled` if the work is dropped before it finishes.
struct CancelGuard {
    ms: u64,
    finished: bool,
    events: mpsc::UnboundedSender<Event>,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.events.send(Event::Cancelled(self.ms));
        }
    }
}

fn server(events: mpsc::UnboundedSender<Event>) -> Object {
    Object::builder("demo.Worker")
        .method("add", |a: i64, b: i64| a + b)
        .try_method("div", |a: i64, b: i64| {
            if b == 0 {
                Err(RemoteError::new("builtins.ZeroDivisionError", "division by zero"))
            } else {
                Ok(a / b)
            }
        })
        .async_method("slow_square", |x: i64| async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            x * x
        })
        .async_method("work", move |ms: u64| {
            let events = events.clone();
            async move {
                let _ = events.send(Event::Started(ms));
                let mut guard = CancelGuard { ms, finished: false, events: events.clone() };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                guard.finished = true;
                let _ = events.send(Event::Finished(ms));
                ms
            }
        })
        .build()
}

/// A oneshot that fires when `result` settles (without consuming it), so the non-blocking
/// checks can be shown on a settled result.
fn settled<T: serde::de::DeserializeOwned + 'static>(result: &AsyncResult<T>) -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    result.add_callback(move |_| {
        let _ = tx.send(());
    });
    rx
}

fn state<T>(result: &AsyncResult<T>) -> String {
    format!("ready = {}, error = {}, expired = {}", result.ready(), result.error(), result.expired())
}

#[actix_rt::main]
async fn main() -> Result<(), netref::Error> {
    println!("AsyncResult features\n");
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (_server, client) = netref::connect_pair(Service::shared(server(events_tx)), Service::void());
    let worker = client.root().await?;

    println!("1. ready / error / expired never block");
    let pending = worker.call_method::<i64>("slow_square", (12,));
    println!("   just sent:       {}   ({pending:?})", state(&pending));
    settled(&pending).await.ok();
    println!("   after the reply: {}   ({pending:?})", state(&pending));
    println!("   value = {}", pending.into_future().await?);

    let failing = worker.call_method::<i64>("div", (1, 0));
    settled(&failing).await.ok();
    println!("   div(1, 0):       {}   ({failing:?})", state(&failing));
    println!("   awaited: {}", failing.into_future().await.unwrap_err());

    println!("\n2. set_expiry");
    let too_slow = worker.call_method::<u64>("work", (60_000u64,));
    too_slow.set_expiry(Some(Duration::from_millis(100)));
    settled(&too_slow).await.ok();
    println!("   work(60 s) with a 100 ms expiry: {}", state(&too_slow));
    match too_slow.into_future().await {
        Err(netref::Error::Timeout(after)) => {
            println!("   -> Error::Timeout after {after:?}; the server is told to cancel")
        }
        Err(e) => println!("   -> {e}"),
        Ok(v) => println!("   unexpected: {v}"),
    }
    report_events(&mut events, 2).await; // started, then cancelled

    let relaxed = worker.call_method::<u64>("work", (50u64,));
    relaxed.set_expiry(Some(Duration::from_millis(50)));
    relaxed.set_expiry(None); // changed our mind: wait without limit
    println!("   expiry set, then cleared: work(50 ms) = {}", relaxed.into_future().await?);
    report_events(&mut events, 2).await;

    println!("\n3. add_callback: runs exactly once, when the result settles");
    let result = worker.call_method::<i64>("slow_square", (7,));
    let (done_tx, done_rx) = oneshot::channel();
    result.add_callback(|r| println!("   [callback 1, on the connection's thread] {r:?}"));
    result.add_callback(move |r| {
        println!("   [callback 2] {r:?}");
        let _ = done_tx.send(());
    });
    done_rx.await.ok();
    result.add_callback(|r| println!("   [callback 3, added after settling: runs at once] {r:?}"));

    println!("\n4. value() and wait() block, so they belong on plain threads");
    let result = worker.call_method::<i64>("slow_square", (9,));
    println!("   value() here, on the actix thread: {}", result.value().unwrap_err());
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        // A plain thread may block: the reply is delivered by the actix thread meanwhile.
        let waited = result.wait();
        let _ = tx.send((waited, result.value()));
    });
    let (waited, value) = rx.await.expect("the thread reports back");
    println!("   from a plain thread: wait() = {waited:?}, value() = {value:?}");

    println!("\n5. cancellation by drop");
    let result = worker.call_method::<u64>("work", (60_000u64,));
    // Let the server start the work, then lose interest.
    report_events(&mut events, 1).await;
    drop(result);
    println!("   dropped the AsyncResult (no callbacks, not awaited): the request is cancelled");
    report_events(&mut events, 1).await;
    let awaited = worker.call_method::<u64>("work", (60_000u64,)).into_future();
    let timed_out = tokio::time::timeout(Duration::from_millis(100), awaited).await;
    println!("   a future dropped by tokio::time::timeout cancels too: {}", timed_out.is_err());
    report_events(&mut events, 2).await;

    println!("\n6. the connection's end settles everything");
    let pending = worker.call_method::<u64>("work", (60_000u64,));
    client.close().await;
    println!("   after close: {} -> {}", state(&pending), pending.into_future().await.unwrap_err());

    println!("\ndone");
    Ok(())
}

/// Prints the next `n` events of the server's `work` method (waiting at most 5 s for each).
async fn report_events(events: &mut mpsc::UnboundedReceiver<Event>, n: usize) {
    for _ in 0..n {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Some(event)) => println!("   [server] {event}"),
            _ => println!("   [server] (no event within 5 s)"),
        }
    }
}
