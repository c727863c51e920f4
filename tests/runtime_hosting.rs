//! Guards netref's own runtime (`netref::runtime`): a plain tokio application with no actix system
//! uses every feature through `Send` handles, plain threads use `BlockingClient` and
//! `wait()`/`value()`, and after a runtime shuts down (or its last handle drops) netrefs fail
//! fast with `ConnectionClosed` instead of hanging.

mod common;

use std::{
    net::TcpListener,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use common::{calculator, wait_until, Counters};
use futures::StreamExt;
use netref::{prelude::*, BlockingClient, Runtime};
use tokio::sync::oneshot;

const LIMIT: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test after [`LIMIT`] instead of hanging.
async fn within<F: std::future::IntoFuture>(what: &str, fut: F) -> F::Output {
    tokio::time::timeout(LIMIT, fut).await.unwrap_or_else(|_| panic!("timed out after {LIMIT:?}: {what}"))
}

/// Serves `service` from `rt` on a fresh loopback port; returns the address.
async fn serve_calculator(rt: &Runtime, service: Service) -> String {
    serve_with(rt, service, Config::default()).await
}

async fn serve_with(rt: &Runtime, service: Service, config: Config) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    rt.serve_tcp(listener, service, config).await.unwrap();
    addr
}

/// Blocks (spinning politely) until `cond` holds, failing the test after [`LIMIT`].
fn wait_for(cond: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + LIMIT;
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out after {LIMIT:?}: {what}");
        std::thread::yield_now();
    }
}

fn is_closed_error(e: &netref::Error) -> bool {
    matches!(e, netref::Error::ConnectionClosed(_))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_app_uses_every_feature_through_send_handles() {
    // A plain tokio application: no actix system, no LocalSet on this thread.
    assert!(actix_rt::System::try_current().is_none());
    let rt = Runtime::new().unwrap();
    assert!(rt.is_running() && !rt.is_current());
    let counters = Arc::new(Counters::default());
    let addr = serve_calculator(&rt, Service::shared(calculator(counters.clone()))).await;
    let client = within("connect", rt.connect_tcp(addr, Service::void(), Config::default(), LIMIT)).await.unwrap();

    let calc: NetRef = within("root", client.root()).await.unwrap();
    let sum: i64 = calc.call_method("add", (1, 2)).await.unwrap();
    assert_eq!(sum, 3);
    let answer: i64 = calc.getattr("answer").await.unwrap();
    assert_eq!(answer, 42);
    let err = calc.call_method::<i64>("div", (1, 0)).await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.kind == "builtins.ZeroDivisionError"), "{err}");

    // A callback: the server calls the closure back during the call; it runs on the client's
    // runtime thread, not on this application's threads.
    let (thread_tx, thread_rx) = std::sync::mpsc::channel();
    let times_ten = Object::function(move |v: i64| {
        let _ = thread_tx.send(std::thread::current().name().map(str::to_owned));
        v * 10
    });
    let r: i64 = within("callback", calc.call_method("call_me", (times_ten, 4))).await.unwrap();
    assert_eq!(r, 41);
    let callback_thread = thread_rx.try_recv().expect("the callback ran").unwrap_or_default();
    assert!(callback_thread.starts_with("netref-rt-"), "callback ran on {callback_thread:?}");

    // AsyncResult: expiry, callbacks, non-blocking checks, refusal to block on this thread.
    // The expiry is set once the server runs the work: an expiry set before the request leaves
    // also travels as the server's deadline, and the server's `builtins.TimeoutError` reply can
    // then beat the local `Timeout` across threads.
    let slow = calc.call_method::<u64>("slow", (60_000u64,));
    wait_until(LIMIT, "slow started", || async { counters.slow_started.load(Ordering::SeqCst) == 1 }).await;
    assert!(!slow.ready());
    slow.set_expiry(Some(Duration::from_millis(50)));
    assert!(matches!(within("expiry", slow).await, Err(netref::Error::Timeout(_))));
    let pending = calc.call_method::<i64>("add", (20, 22));
    // Blocking refuses on the runtime thread, where it would stop the connection itself.
    let (pending, refused) = within(
        "value() on the runtime thread",
        rt.spawn(move || async move {
            let refused = pending.value();
            (pending, refused)
        }),
    )
    .await
    .unwrap();
    assert!(matches!(refused, Err(netref::Error::BlockingInRuntime)), "{refused:?}");
    let (tx, rx) = oneshot::channel();
    pending.add_callback(move |r| {
        let _ = tx.send(r);
    });
    assert_eq!(within("add_callback", rx).await.unwrap().unwrap(), 42);
    assert!(pending.ready() && !pending.error() && !pending.expired());

    // Iteration, from another tokio task (the stream is Send).
    let it = calc.clone();
    let items: Vec<i64> =
        within("iter", tokio::spawn(async move { it.iter::<i64>().map(|r| r.unwrap()).collect().await }))
            .await
            .unwrap();
    assert_eq!(items, (0..25).collect::<Vec<i64>>());

    // 8 tasks x 100 calls, concurrently, on the application's work-stealing pool.
    let tasks: Vec<_> = (0..8i64)
        .map(|t| {
            let calc = calc.clone();
            tokio::spawn(async move {
                for i in 0..100i64 {
                    let r: i64 = calc.call_method("add", (t * 1000, i)).await.unwrap();
                    assert_eq!(r, t * 1000 + i);
                }
            })
        })
        .collect();
    for task in tasks {
        within("concurrent calls", task).await.unwrap();
    }

    // An in-memory pair on the runtime thread works the same way.
    let (_server, pair_client) =
        rt.connect_pair(Service::shared(calculator(Arc::default())), Service::void()).await.unwrap();
    let pair_calc = pair_client.root().await.unwrap();
    let concat: String = pair_calc.call_method("concat", ("net", "ref")).await.unwrap();
    assert_eq!(concat, "netref");

    // Close: pending-free, and later calls fail fast.
    within("close", client.close()).await;
    assert!(client.is_closed());
    let err = within("call after close", calc.call_method::<i64>("add", (1, 1))).await.unwrap_err();
    assert!(is_closed_error(&err), "{err}");
    tokio::task::spawn_blocking(move || rt.shutdown()).await.unwrap();
}

#[test]
fn plain_threads_block_on_results() {
    // The server lives on one runtime; every client call below comes from plain threads.
    let server_rt = Runtime::new().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let counters = Arc::new(Counters::default());
    let service = Service::shared(calculator(counters.clone()));
    futures::executor::block_on(server_rt.serve_tcp(listener, service, Config::default())).unwrap();

    let client = BlockingClient::connect(&addr, LIMIT).unwrap();
    let sum: i64 = client.root().unwrap().call_method("add", (1, 2)).value().unwrap();
    assert_eq!(sum, 3);

    let calc = client.root().unwrap();
    std::thread::scope(|s| {
        for t in 0..4i64 {
            let calc = &calc;
            s.spawn(move || {
                for i in 0..200i64 {
                    let r: i64 = calc.call_method("add", (t * 1000, i)).value().unwrap();
                    assert_eq!(r, t * 1000 + i);
                }
            });
        }
    });

    // wait() from another plain thread, while this one checks without blocking.
    let slow = calc.call_method::<u64>("slow", (30u64,));
    let waited = std::thread::scope(|s| s.spawn(|| slow.wait()).join().unwrap());
    assert!(waited.is_ok() && slow.ready());
    assert_eq!(slow.value().unwrap(), 30);
    let failing = calc.call_method::<i64>("div", (1, 0));
    assert!(failing.wait().unwrap_err().as_remote().is_some());
    let expiring = calc.call_method::<u64>("slow", (60_000u64,));
    // Expiry set once the server runs the work, as in the tokio test above.
    wait_for(|| counters.slow_started.load(Ordering::SeqCst) == 2, "the second slow call started");
    expiring.set_expiry(Some(Duration::from_millis(50)));
    let waited = expiring.wait();
    assert!(matches!(waited, Err(netref::Error::Timeout(_))), "{waited:?}");
    assert!(expiring.expired());

    // Callbacks from a blocking client run on its runtime thread.
    let r: i64 = calc.call_method("call_me", (Object::function(|v: i64| v * 10), 4)).value().unwrap();
    assert_eq!(r, 41);

    // Runtime::block_on runs work on the runtime thread from a plain thread.
    let is_current = client.runtime().clone();
    assert!(client.runtime().block_on(move || async move { is_current.is_current() }).unwrap());

    client.close();
    assert!(matches!(calc.call_method::<i64>("add", (1, 1)).value(), Err(netref::Error::ConnectionClosed(_))));
    server_rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_client_refuses_on_actix_threads_only() {
    let rt = Runtime::new().unwrap();
    // On the runtime's own (actix) thread, blocking would stop the runtime: refused.
    let refused = rt
        .spawn(|| async {
            let client = BlockingClient::connect("127.0.0.1:9", Duration::from_millis(10)).map(|_| ());
            let inner = Runtime::new().unwrap();
            let block_on = inner.block_on(|| async { 1 });
            (client, block_on)
        })
        .await
        .unwrap();
    assert!(matches!(refused.0, Err(netref::Error::BlockingInRuntime)), "{:?}", refused.0);
    assert!(matches!(refused.1, Err(netref::Error::BlockingInRuntime)), "{:?}", refused.1);
    // A tokio worker thread runs no connection: blocking there is allowed (here the connect is
    // refused by the closed port instead).
    let err = BlockingClient::connect("127.0.0.1:9", Duration::from_secs(5)).unwrap_err();
    assert!(!matches!(err, netref::Error::BlockingInRuntime), "{err}");
    assert_eq!(rt.block_on(|| async { 1 }).unwrap(), 1);
    tokio::task::spawn_blocking(move || rt.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_runtime_shutdown_fails_netrefs_fast() {
    let server_rt = Runtime::new().unwrap();
    let (gone_tx, gone_rx) = oneshot::channel();
    let gone_tx = Mutex::new(Some(gone_tx));
    let service = Service::shared(calculator(Arc::default())).on_disconnect(move |_| {
        if let Some(tx) = gone_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
    });
    // The server lets the slow call (whose caller is gone) run for its close grace before it
    // drops the connection; keep that short.
    let addr = serve_with(&server_rt, service, Config::default().close_grace(Duration::from_millis(200))).await;

    let client_rt = Runtime::new().unwrap();
    let client = client_rt.connect_tcp(addr, Service::void(), Config::default(), LIMIT).await.unwrap();
    let calc: NetRef = client.root().await.unwrap();
    let pending = calc.call_method::<u64>("slow", (60_000u64,));
    // A connection started with `spawn` (not tracked by the runtime) is dropped with the system.
    let (_a, untracked) = client_rt
        .spawn(|| async { netref::connect_pair(Service::shared(calculator(Arc::default())), Service::void()) })
        .await
        .unwrap();
    let untracked_calc: NetRef = untracked.root().await.unwrap();

    let rt = client_rt.clone();
    within("shutdown", tokio::task::spawn_blocking(move || rt.shutdown())).await.unwrap();
    assert!(!client_rt.is_running());
    // The pending call and every later call fail at once; the connection closed cleanly, so
    // the server saw the disconnect.
    assert!(is_closed_error(&within("pending after shutdown", pending).await.unwrap_err()));
    assert!(is_closed_error(&within("call after shutdown", calc.getattr::<i64>("answer")).await.unwrap_err()));
    assert!(client.is_closed());
    let err =
        within("untracked call after shutdown", untracked_calc.call_method::<i64>("add", (1, 1))).await.unwrap_err();
    assert!(is_closed_error(&err), "{err}");
    within("untracked peer closed", untracked.closed()).await;
    within("server sees the disconnect", gone_rx).await.unwrap();
    // The runtime takes no more work.
    assert!(is_closed_error(&client_rt.spawn(|| async {}).await.unwrap_err()));
    assert!(is_closed_error(&client_rt.connect_pair(Service::void(), Service::void()).await.unwrap_err()));
    tokio::task::spawn_blocking(move || server_rt.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_runtime_shutdown_fails_pending_calls() {
    let counters = Arc::new(Counters::default());
    let server_rt = Runtime::new().unwrap();
    let addr = serve_calculator(&server_rt, Service::shared(calculator(counters.clone()))).await;
    let client_rt = Runtime::new().unwrap();
    let client = client_rt.connect_tcp(addr, Service::void(), Config::default(), LIMIT).await.unwrap();
    let calc: NetRef = client.root().await.unwrap();

    let pending = calc.call_method::<u64>("slow", (60_000u64,));
    // Wait (with a limit) until the server has started the work, so the call is really in flight.
    wait_until(LIMIT, "slow started", || async { counters.slow_started.load(Ordering::SeqCst) == 1 }).await;

    // Short grace: the slow call is not allowed to finish.
    within(
        "server shutdown",
        tokio::task::spawn_blocking(move || server_rt.shutdown_within(Duration::from_millis(100))),
    )
    .await
    .unwrap();
    let err = within("pending after server shutdown", pending).await.unwrap_err();
    assert!(is_closed_error(&err), "{err}");
    within("client notices", client.closed()).await;
    let err = within("call after server shutdown", calc.call_method::<i64>("add", (1, 1))).await.unwrap_err();
    assert!(is_closed_error(&err), "{err}");
    assert_eq!(counters.slow_finished.load(Ordering::SeqCst), 0);
    tokio::task::spawn_blocking(move || client_rt.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_stops_the_runtime() {
    let server_rt = Runtime::new().unwrap();
    let disconnects = Arc::new(AtomicUsize::new(0));
    let (gone_tx, gone_rx) = oneshot::channel();
    let gone_tx = Mutex::new(Some(gone_tx));
    let d = disconnects.clone();
    let service = Service::shared(calculator(Arc::default())).on_disconnect(move |_| {
        d.fetch_add(1, Ordering::SeqCst);
        if let Some(tx) = gone_tx.lock().unwrap().take() {
            let _ = tx.send(());
        }
    });
    let addr = serve_calculator(&server_rt, service).await;

    let client_rt = Runtime::new().unwrap();
    let client = client_rt.connect_tcp(addr, Service::void(), Config::default(), LIMIT).await.unwrap();
    let calc: NetRef = client.root().await.unwrap();
    assert_eq!(calc.call_method::<i64>("add", (2, 3)).await.unwrap(), 5);
    let clone = client_rt.clone();
    drop(client_rt);
    assert!(clone.is_running(), "a clone keeps the runtime alive");
    assert_eq!(calc.call_method::<i64>("add", (2, 3)).await.unwrap(), 5);
    drop(clone); // the last handle: the runtime closes its connections and stops, without waiting
    within("server sees the disconnect", gone_rx).await.unwrap();
    within("client closed", client.closed()).await;
    let err = within("call after drop", calc.call_method::<i64>("add", (1, 1))).await.unwrap_err();
    assert!(is_closed_error(&err), "{err}");
    assert_eq!(disconnects.load(Ordering::SeqCst), 1);
    tokio::task::spawn_blocking(move || server_rt.shutdown()).await.unwrap();
}

#[test]
fn shutdown_from_the_runtime_thread_does_not_deadlock() {
    let rt = Runtime::new().unwrap();
    let inside = rt.clone();
    // shutdown() on its own thread only asks; it cannot wait for itself.
    let asked = rt.block_on(move || async move {
        let was_current = inside.is_current();
        inside.shutdown();
        was_current
    });
    // The task may or may not report back before the system stops; either way nothing hangs.
    assert!(asked.unwrap_or(true));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        rt.shutdown();
        let _ = tx.send(());
    });
    rx.recv_timeout(LIMIT).expect("shutdown returned");
}
