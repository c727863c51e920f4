//! Guards `AsyncResult`: ready/error/expired never block; callbacks run exactly once (at once
//! if already settled); expiry gives `Timeout`, cancels the peer's work and frees the pending
//! entry, and an expired result has not arrived (only `expired()` is true); `wait`/`value` work
//! from plain threads and refuse on an actix thread; dropping an unawaited result cancels the
//! request, `detach()` lets it run; a result read as `()` discards any reply; an `AsyncResult`
//! is a `Future` that composes with tokio and futures combinators.

mod common;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use common::{calculator, connect, connect_default, wait_until, Counters, Transport};
use netref::prelude::*;

async fn ready_and_callbacks(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let result = calc.call_method::<i64>("slow", (30u64,));
    assert!(!result.ready() && !result.error() && !result.expired());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s1 = seen.clone();
    result.add_callback(move |r| s1.lock().unwrap().push(r.unwrap()));
    let calls = Arc::new(AtomicUsize::new(0));
    let c1 = calls.clone();
    result.add_callback(move |_| {
        c1.fetch_add(1, Ordering::SeqCst);
    });
    wait_until(Duration::from_secs(5), "result ready", || async { result.ready() }).await;
    assert!(!result.error());
    assert_eq!(*seen.lock().unwrap(), vec![30]);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Already settled: the callback runs at once, on this thread.
    let s2 = seen.clone();
    result.add_callback(move |r| s2.lock().unwrap().push(r.unwrap() + 1));
    assert_eq!(*seen.lock().unwrap(), vec![30, 31]);
    assert_eq!(result.await.unwrap(), 30);
}

async fn errors_are_ready_and_error(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let result = calc.call_method::<i64>("div", (1, 0));
    wait_until(Duration::from_secs(5), "error settled", || async { result.ready() }).await;
    assert!(result.error() && !result.expired());
    let err = result.await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.kind == "builtins.ZeroDivisionError"), "{err}");
}

async fn expiry_times_out_cancels_and_frees(t: Transport) {
    let counters = Arc::new(Counters::default());
    let (server, client) = connect_default(t, Service::shared(calculator(counters.clone()))).await;
    let calc = client.root().await.unwrap();
    let result = calc.call_method::<u64>("slow", (60_000u64,));
    result.set_expiry(Some(Duration::from_millis(50)));
    let fired = Arc::new(AtomicUsize::new(0));
    let f1 = fired.clone();
    result.add_callback(move |r| {
        assert!(matches!(r, Err(netref::Error::Timeout(_))));
        f1.fetch_add(1, Ordering::SeqCst);
    });
    wait_until(Duration::from_secs(5), "expired", || async { result.expired() }).await;
    // As in RPyC, an expired result has not arrived: only `expired()` is true.
    assert!(!result.ready() && !result.error(), "{result:?}");
    assert_eq!(fired.load(Ordering::SeqCst), 1);
    assert!(matches!(result.await, Err(netref::Error::Timeout(d)) if d == Duration::from_millis(50)));
    // The pending entry is freed, and the peer dropped the work.
    assert_eq!(client.stats().await.unwrap().pending, 0);
    wait_until(Duration::from_secs(5), "server cancelled the work", || async {
        server.stats().await.unwrap().inbound == 0
    })
    .await;
    assert_eq!(counters.slow_finished.load(Ordering::SeqCst), 0);
    // The connection still works.
    assert_eq!(calc.call_method::<i64>("add", (2, 2)).await.unwrap(), 4);
}

async fn default_timeout_applies(t: Transport) {
    let (_s, client) = connect(
        t,
        Service::shared(calculator(Arc::default())),
        Config::default(),
        Service::void(),
        Config::default().request_timeout(Some(Duration::from_millis(40))),
    )
    .await;
    let calc = client.root().await.unwrap();
    let err = calc.call_method::<u64>("slow", (60_000u64,)).await.unwrap_err();
    assert!(matches!(err, netref::Error::Timeout(d) if d == Duration::from_millis(40)), "{err}");
}

async fn dropping_an_unawaited_result_cancels(t: Transport) {
    let counters = Arc::new(Counters::default());
    let (server, client) = connect_default(t, Service::shared(calculator(counters.clone()))).await;
    let calc = client.root().await.unwrap();
    let result = calc.call_method::<u64>("slow", (60_000u64,));
    wait_until(Duration::from_secs(5), "server started the work", || async {
        counters.slow_started.load(Ordering::SeqCst) == 1
    })
    .await;
    drop(result);
    wait_until(Duration::from_secs(5), "server dropped the work", || async {
        server.stats().await.unwrap().inbound == 0
    })
    .await;
    assert_eq!(client.stats().await.unwrap().pending, 0);
}

async fn blocking_wait_from_a_plain_thread(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    // On the runtime thread a blocking wait refuses instead of deadlocking.
    let here = calc.call_method::<i64>("add", (1, 2));
    assert!(matches!(here.wait(), Err(netref::Error::BlockingInRuntime)));
    assert!(matches!(here.value(), Err(netref::Error::BlockingInRuntime)));
    // From a plain thread, value() blocks until the reply (the runtime keeps running: we await
    // the thread's completion without blocking it).
    let calc2 = calc.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let r = calc2.call_method::<i64>("add", (20, 22));
        let v = r.value();
        let again = r.value();
        let _ = tx.send((v, again));
    });
    let (v, again) = rx.await.unwrap();
    assert_eq!(v.unwrap(), 42);
    assert_eq!(again.unwrap(), 42);
}

async fn settled_requests_leave_no_deadline_behind(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    for i in 0..500 {
        assert_eq!(calc.call_method::<i64>("add", (i, 1)).await.unwrap(), i + 1);
    }
    let results: Vec<_> = (0..500).map(|i| calc.call_method::<i64>("add", (i, 1))).collect();
    for r in results {
        r.await.unwrap();
    }
    let stats = client.stats().await.unwrap();
    assert_eq!(stats.scheduled_expiries, 0, "settled requests must not keep their deadlines: {stats:?}");
}

async fn huge_expiries_mean_no_limit(t: Transport) {
    let (_s, client) = connect(
        t,
        Service::shared(calculator(Arc::default())),
        Config::default(),
        Service::void(),
        Config::default().request_timeout(Some(Duration::MAX)),
    )
    .await;
    let calc = client.root().await.unwrap();
    let r = calc.call_method::<i64>("add", (1, 2));
    r.set_expiry(Some(Duration::MAX));
    assert_eq!(r.await.unwrap(), 3);
}

/// Each `set_expiry` moves the request's one scheduled deadline; none is left behind.
async fn rescheduled_expiries_keep_one_deadline(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let slow = calc.call_method::<u64>("slow", (200u64,));
    wait_until(Duration::from_secs(5), "sent", || async { client.stats().await.unwrap().pending == 1 }).await;
    for i in 0..50 {
        slow.set_expiry(Some(Duration::from_secs(60 + i)));
    }
    wait_until(Duration::from_secs(5), "one deadline", || async {
        client.stats().await.unwrap().scheduled_expiries == 1
    })
    .await;
    slow.set_expiry(None);
    wait_until(Duration::from_secs(5), "no deadline", || async {
        client.stats().await.unwrap().scheduled_expiries == 0
    })
    .await;
    assert_eq!(slow.await.unwrap(), 200);
    assert_eq!(client.stats().await.unwrap().pending, 0);
}

/// One timer serves every pending request: expiries set in any order, moved earlier after
/// the request was sent, or far behind one that settled in time, all come due.
async fn expiries_come_due_whatever_their_order(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    // The timer is armed for this one's default 30 s; the others must bring it forward.
    let long = calc.call_method::<u64>("slow", (60_000u64,));
    assert_eq!(calc.call_method::<i64>("add", (1, 2)).await.unwrap(), 3);
    // Moved earlier once it is pending.
    let moved = calc.call_method::<u64>("slow", (60_000u64,));
    wait_until(Duration::from_secs(5), "sent", || async { client.stats().await.unwrap().pending == 2 }).await;
    moved.set_expiry(Some(Duration::from_millis(40)));
    wait_until(Duration::from_secs(5), "the moved one expired", || async { moved.expired() }).await;
    // Sent with a short expiry behind the long one.
    let short = calc.call_method::<u64>("slow", (60_000u64,));
    short.set_expiry(Some(Duration::from_millis(40)));
    wait_until(Duration::from_secs(5), "the short one expired", || async { short.expired() }).await;
    assert!(!long.ready(), "the request with the default timeout is still pending");
    assert_eq!(client.stats().await.unwrap().pending, 1);
    long.set_expiry(Some(Duration::from_millis(10)));
    assert!(matches!(long.await, Err(netref::Error::Timeout(_))));
    let stats = client.stats().await.unwrap();
    assert_eq!((stats.pending, stats.scheduled_expiries), (0, 0), "{stats:?}");
}

async fn a_detached_result_runs_to_completion(t: Transport) {
    let counters = Arc::new(Counters::default());
    let (server, client) = connect_default(t, Service::shared(calculator(counters.clone()))).await;
    let calc = client.root().await.unwrap();
    calc.call_method::<u64>("slow", (30u64,)).detach();
    wait_until(Duration::from_secs(5), "the detached call finished", || async {
        counters.slow_finished.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(server.stats().await.unwrap().inbound, 0);
}

async fn a_result_read_as_unit_discards_any_reply(t: Transport) {
    let (_server, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    // `add` returns an int; the caller does not want it.
    calc.call_method::<()>("add", (1, 2)).await.unwrap();
    let discarded: () = calc.call_method("concat", ("a", "b")).await.unwrap();
    assert_eq!(discarded, ());
    // An error is still an error.
    assert!(calc.call_method::<()>("div", (1, 0)).await.is_err());
}

async fn an_async_result_is_a_future_for_combinators(t: Transport) {
    let (_server, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let sum = tokio::time::timeout(Duration::from_secs(5), calc.call_method::<i64>("add", (1, 2))).await.unwrap();
    assert_eq!(sum.unwrap(), 3);
    let all = futures::future::join_all((0..5).map(|i| calc.call_method::<i64>("add", (i, i)))).await;
    assert_eq!(all.into_iter().map(Result::unwrap).collect::<Vec<_>>(), vec![0, 2, 4, 6, 8]);
    let slow = calc.call_method::<u64>("slow", (60_000u64,));
    let fast = calc.call_method::<i64>("add", (20, 22));
    tokio::select! {
        _ = slow => panic!("the slow call won"),
        r = fast => assert_eq!(r.unwrap(), 42),
    }
}

async fn a_queued_request_times_out_on_its_own_expiry(t: Transport) {
    let counters = Arc::new(Counters::default());
    let client_cfg = Config::default().max_in_flight(1);
    let (_server, client) =
        connect(t, Service::shared(calculator(counters.clone())), Config::default(), Service::void(), client_cfg).await;
    let calc = client.root().await.unwrap();
    // The only in-flight slot is taken for 3 s; the second call waits in the backlog.
    let first = calc.call_method::<u64>("slow", (3_000u64,));
    wait_until(Duration::from_secs(5), "the first call runs", || async {
        counters.slow_started.load(Ordering::SeqCst) == 1
    })
    .await;
    let started = std::time::Instant::now();
    let second = calc.call_method::<i64>("add", (1, 2));
    // Queued with the default expiry (30 s); the new one must reach the queued request.
    wait_until(Duration::from_secs(5), "the second call is queued", || async {
        client.stats().await.unwrap().queued == 1
    })
    .await;
    second.set_expiry(Some(Duration::from_millis(150)));
    assert!(matches!(second.await, Err(netref::Error::Timeout(d)) if d == Duration::from_millis(150)));
    let waited = started.elapsed();
    assert!(waited < Duration::from_millis(1500), "timed out after {waited:?}, not at its own expiry");
    assert_eq!(client.stats().await.unwrap().queued, 0);
    drop(first);
}

over_both_transports!(
    a_queued_request_times_out_on_its_own_expiry,
    a_detached_result_runs_to_completion,
    a_result_read_as_unit_discards_any_reply,
    an_async_result_is_a_future_for_combinators,
    expiries_come_due_whatever_their_order,
    rescheduled_expiries_keep_one_deadline,
    huge_expiries_mean_no_limit,
    settled_requests_leave_no_deadline_behind,
    ready_and_callbacks,
    errors_are_ready_and_error,
    expiry_times_out_cancels_and_frees,
    default_timeout_applies,
    dropping_an_unawaited_result_cancels,
    blocking_wait_from_a_plain_thread,
);
