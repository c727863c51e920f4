//! netref over TCP: the server is `netref::serve_tcp` on an actix system (current-thread), the
//! client an actix system in this process.

use std::time::{Duration, Instant};

use futures::{future, stream, StreamExt};
use netref::{prelude::*, SharedBytes};
use serde_bytes::ByteBuf;

use crate::{announce, connects_per_second, deadline, rate, stats::Sample, sync_round_trips, BoxError, Plan, SyncRun};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The root object each connection gets: `add`, `echo` (`SharedBytes`, no copies),
/// `echo_buf` (`serde_bytes::ByteBuf`, one copy each way), `fresh` (a new object per call),
/// `call_me` (calls back into the caller's function) and `exports` (this connection's
/// unpinned exports, to check that released objects drain).
fn bench_root(peer: &Peer) -> Object {
    let peer = peer.clone();
    Object::builder("bench.Root")
        .method("add", |a: i64, b: i64| a + b)
        .method("echo", |data: SharedBytes| data)
        .method("echo_buf", |data: ByteBuf| data)
        .method("fresh", || Object::builder("bench.Fresh").build())
        .try_async_method("call_me", |callback: NetRef, x: i64| async move {
            let y: i64 = callback.call((x,)).await?;
            Ok::<_, netref::Error>(y + 1)
        })
        .try_async_method("exports", move || {
            let peer = peer.clone();
            async move { peer.stats().await.map(|s| s.unpinned_exports as u64) }
        })
        .build()
}

pub(crate) fn serve(addr: &str) -> Result<(), BoxError> {
    let sys = actix_rt::System::new();
    sys.block_on(async {
        let listener = announce(addr).await?;
        netref::serve_tcp(listener, Service::per_connection(bench_root), Config::default(), None).await?;
        Ok(())
    })
}

pub(crate) async fn connect(addr: &str) -> Result<Peer, BoxError> {
    Ok(netref::connect_tcp(addr, Service::void(), Config::default(), CONNECT_TIMEOUT).await?)
}

pub(crate) fn measure(plan: &Plan, addr: &str, server_pid: Option<u32>) -> Result<Vec<Sample>, BoxError> {
    let sys = actix_rt::System::new();
    sys.block_on(measure_all(plan, addr, server_pid))
}

async fn measure_all(plan: &Plan, addr: &str, server_pid: Option<u32>) -> Result<Vec<Sample>, BoxError> {
    let mut out = Vec::new();
    let peer = connect(addr).await?;
    let root = peer.root().await?;

    // 1. Sequential `add` (one CALLATTR round trip each).
    out.extend(sync_calls(&root, plan, server_pid).await?.samples("calls/s"));

    // 1b. The same from a task spawned on the actix system, as an actor's code calls.
    let (task_root, task_plan) = (root.clone(), plan.clone());
    let task = actix_rt::spawn(async move { sync_calls(&task_root, &task_plan, None).await });
    out.push(task.await.map_err(|e| format!("netref sync task: {e}"))??.task_sample("calls/s"));

    // 2. `plan.window` calls in flight.
    let start = Instant::now();
    let done = pipelined_calls(&root, plan.pipelined, plan.window, deadline(plan.time_cap)).await?;
    out.push(("pipelined", "calls/s", rate(done, start.elapsed())));

    // 3. 1 MiB echo as one byte string: `SharedBytes` in and out, the way to send large bytes
    // without copies (README); then the same with `serde_bytes::ByteBuf`, which the serde
    // bridge copies once each way on each side.
    let data: Vec<u8> = (0..plan.echo_size).map(|i| (i * 31 % 251) as u8).collect();
    let shared = echo_rate(&root, "echo", &SharedBytes::from(data.clone()), plan).await?;
    out.push(("echo_1mib", "MiB/s", shared));
    let buf = echo_rate(&root, "echo_buf", &ByteBuf::from(data), plan).await?;
    out.push(("echo_1mib_bytebuf", "MiB/s", buf));

    // 4. Create + release: a fresh object per call, dropped at once (a batched Release), then
    // wait until the server's export table has drained; the drain is inside the timing.
    for _ in 0..plan.warmup {
        let _: NetRef = root.call_method("fresh", ()).await?;
    }
    // The drain check below is not vacuous: objects held here are counted by `exports`.
    let held: Vec<NetRef> = vec![root.call_method("fresh", ()).await?, root.call_method("fresh", ()).await?];
    let counted: u64 = root.call_method("exports", ()).await?;
    if counted < held.len() as u64 {
        return Err(format!("netref exports counts {counted} with {} fresh objects held", held.len()).into());
    }
    drop(held);
    let end = deadline(plan.time_cap);
    let start = Instant::now();
    let mut done = 0;
    while done < plan.creates && Instant::now() < end {
        let obj: NetRef = root.call_method("fresh", ()).await?;
        if done == 0 && obj.type_name() != "bench.Fresh" {
            return Err(format!("netref fresh returned a {}", obj.type_name()).into());
        }
        drop(obj);
        done += 1;
    }
    let loop_elapsed = start.elapsed();
    let drained = wait_drained(&root, Duration::from_secs(10)).await?;
    let elapsed = start.elapsed();
    if !drained {
        return Err("netref create+release: the server's export table did not drain in 10 s".into());
    }
    out.push(("create_release", "objects/s", rate(done, elapsed)));
    out.push(("create_release_drain", "us", (elapsed - loop_elapsed).as_secs_f64() * 1e6));

    // 5. Callback round trip: the server calls the client's function during the call.
    let times_ten = times_ten();
    for _ in 0..plan.warmup {
        call_back(&root, &times_ten).await?;
    }
    let end = deadline(plan.time_cap);
    let start = Instant::now();
    let mut done = 0;
    while done < plan.callbacks && Instant::now() < end {
        call_back(&root, &times_ten).await?;
        done += 1;
    }
    out.push(("callback", "calls/s", rate(done, start.elapsed())));
    drop(root);
    peer.close().await;

    // 6. Connect + root + first call + close; 7. the same with early requests (no wait for the
    //    server's Hello: the call on the root alias leaves with the client's Hello).
    for (metric, config) in [("connect", Config::default()), ("connect_early", Config::default().early_requests(true))]
    {
        out.push((
            metric,
            "conn/s",
            connects_per_second(plan, async || connect_call_close(addr, &config).await).await?,
        ));
    }
    Ok(out)
}

/// Sequential `add(1, 2)` round trips on `root` (after a warm-up), served by the process
/// `server_pid`.
async fn sync_calls(root: &NetRef, plan: &Plan, server_pid: Option<u32>) -> Result<SyncRun, BoxError> {
    sync_round_trips(plan, server_pid, async || add(root).await).await
}

/// One `add(1, 2)` call on `root`, checked.
pub(crate) async fn add(root: &NetRef) -> Result<(), BoxError> {
    match root.call_method::<i64>("add", (1, 2)).await? {
        3 => Ok(()),
        sum => Err(format!("netref add returned {sum}").into()),
    }
}

/// Up to `total` `add` calls on `root` with `window` in flight (fewer if `end` passes first);
/// returns how many completed, each checked.
pub(crate) async fn pipelined_calls(
    root: &NetRef,
    total: usize,
    window: usize,
    end: Instant,
) -> Result<usize, BoxError> {
    let done = stream::iter(0..total)
        .take_while(|_| future::ready(Instant::now() < end))
        .map(|i| {
            let i = i as i64;
            let call = root.call_method::<i64>("add", (i, 1));
            async move { call.await.map(|s| s == i + 1) }
        })
        .buffer_unordered(window)
        .fold(Ok(0usize), |acc, r| {
            future::ready(match (acc, r) {
                (Ok(n), Ok(true)) => Ok(n + 1),
                (Ok(_), Ok(false)) => Err("netref pipelined add: wrong sum".to_owned()),
                (Ok(_), Err(e)) => Err(format!("netref pipelined add: {e}")),
                (e, _) => e,
            })
        })
        .await?;
    Ok(done)
}

/// The client's callback for `call_me`: `v * 10`.
pub(crate) fn times_ten() -> NetRef {
    NetRef::from(Object::function(|v: i64| v * 10))
}

/// One callback round trip: `call_me(f, 4)` makes the server call `f(4)` back (40) and
/// answer 41.
pub(crate) async fn call_back(root: &NetRef, f: &NetRef) -> Result<(), BoxError> {
    match root.call_method::<i64>("call_me", (f, 4)).await? {
        41 => Ok(()),
        r => Err(format!("netref call_me returned {r}").into()),
    }
}

/// Sync round trips per second from a netref client (an actix system, as in [`measure`]) to
/// the server at `addr`, whose root answers `add`.
pub(crate) fn sync_rate(plan: &Plan, addr: &str) -> Result<f64, BoxError> {
    let sys = actix_rt::System::new();
    sys.block_on(async {
        let peer = connect(addr).await?;
        let root = peer.root().await?;
        let sync = sync_calls(&root, plan, None).await?;
        drop(root);
        peer.close().await;
        Ok(sync.rate)
    })
}

/// One connection: connect with `config`, take the root, one `add`, close.
pub(crate) async fn connect_call_close(addr: &str, config: &Config) -> Result<(), BoxError> {
    let peer = netref::connect_tcp(addr, Service::void(), config.clone(), CONNECT_TIMEOUT).await?;
    let root = peer.root().await?;
    add(&root).await?;
    drop(root);
    peer.close().await;
    Ok(())
}

/// Echoes `payload` through `method` for up to `plan.echoes` round trips (after a warm-up)
/// and returns MiB/s, checking that the last reply equals the payload.
async fn echo_rate<T>(root: &NetRef, method: &str, payload: &T, plan: &Plan) -> Result<f64, BoxError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq,
{
    for _ in 0..plan.warmup.min(10) {
        let _: T = root.call_method(method, (payload,)).await?;
    }
    let end = deadline(plan.time_cap);
    let start = Instant::now();
    let mut done = 0;
    let mut last = None;
    while done < plan.echoes && Instant::now() < end {
        last = Some(root.call_method::<T>(method, (payload,)).await?);
        done += 1;
    }
    let mib_s = rate(done, start.elapsed()) * plan.echo_size as f64 / (1 << 20) as f64;
    if last.as_ref() != Some(payload) {
        return Err(format!("netref echo ({method}): the reply differs from the payload").into());
    }
    Ok(mib_s)
}

/// Polls the server's `exports` until it is 0, for at most `limit`. Each poll is one round
/// trip, which paces the loop (a tokio sleep would round up to 1 ms).
pub(crate) async fn wait_drained(root: &NetRef, limit: Duration) -> Result<bool, BoxError> {
    let end = Instant::now() + limit;
    loop {
        let n: u64 = root.call_method("exports", ()).await?;
        if n == 0 {
            return Ok(true);
        }
        if Instant::now() > end {
            return Ok(false);
        }
    }
}
