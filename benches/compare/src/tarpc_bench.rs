//! tarpc 0.38: `serde_transport` over TCP with the bincode codec, current-thread runtimes on
//! both ends, TCP_NODELAY on both ends (as netref sets it), every handler `tokio::spawn`ed
//! (tarpc's documented pattern), client `Config::default()` (1000 requests in flight).

use std::time::{Duration, Instant};

use futures::{future, stream, StreamExt};
use serde_bytes::ByteBuf;
use tarpc::{
    client, context,
    server::{self, Channel},
    tokio_serde::formats::Bincode,
    tokio_util::codec::{Framed, LengthDelimitedCodec},
};
use tokio::net::TcpStream;

use crate::{
    announce, connects_per_second, deadline, in_local_task, rate, stats::Sample, sync_round_trips, BoxError, Plan,
};

/// The service: the same operations as the netref root object.
#[tarpc::service]
pub(crate) trait Bench {
    /// `a + b`.
    async fn add(a: i64, b: i64) -> i64;
    /// Returns its argument.
    async fn echo(data: ByteBuf) -> ByteBuf;
}

#[derive(Clone)]
struct BenchServer;

impl Bench for BenchServer {
    async fn add(self, _: context::Context, a: i64, b: i64) -> i64 {
        a + b
    }

    async fn echo(self, _: context::Context, data: ByteBuf) -> ByteBuf {
        data
    }
}

/// Length-delimited framing; frames up to 16 MiB (netref's default limit).
fn framed(stream: TcpStream) -> Framed<TcpStream, LengthDelimitedCodec> {
    LengthDelimitedCodec::builder().max_frame_length(16 << 20).new_framed(stream)
}

pub(crate) fn serve(addr: &str) -> Result<(), BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let listener = announce(addr).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let transport = tarpc::serde_transport::new(framed(stream), Bincode::default());
            let channel = server::BaseChannel::with_defaults(transport);
            tokio::spawn(channel.execute(BenchServer.serve()).for_each(|handler| async move {
                tokio::spawn(handler);
            }));
        }
    })
}

pub(crate) async fn connect(addr: &str) -> Result<BenchClient, BoxError> {
    Ok(new_client(addr).await?.spawn())
}

/// A client connected to `addr`, and its dispatch, not yet spawned.
async fn new_client(
    addr: &str,
) -> Result<
    client::NewClient<
        BenchClient,
        impl std::future::Future<Output = Result<(), impl std::error::Error + Send + Sync + 'static>> + Send + 'static,
    >,
    BoxError,
> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let transport = tarpc::serde_transport::new(framed(stream), Bincode::default());
    Ok(BenchClient::new(client::Config::default(), transport))
}

/// [`connect`] for a caller in a local task: the client's dispatch is spawned as a local
/// task too (`NewClient::spawn` would make it one of the runtime's own), so that a reply
/// reaches the caller within the same turn of the local task set, as netref's connection
/// actor and its caller share the actix arbiter's.
async fn connect_local(addr: &str) -> Result<BenchClient, BoxError> {
    let client::NewClient { client, dispatch } = new_client(addr).await?;
    tokio::task::spawn_local(async move {
        if let Err(e) = dispatch.await {
            eprintln!("tarpc dispatch: {e}");
        }
    });
    Ok(client)
}

pub(crate) fn measure(plan: &Plan, addr: &str, server_pid: Option<u32>) -> Result<Vec<Sample>, BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut out = Vec::new();
        let client = connect(addr).await?;

        // 1. Sequential `add`.
        let sync = sync_round_trips(plan, server_pid, async || add(&client).await).await?;
        out.extend(sync.samples("calls/s"));

        // 1b. The same from a spawned task, with a client whose dispatch is a task beside it.
        let (task_addr, task_plan) = (addr.to_owned(), plan.clone());
        let task = in_local_task(async move {
            let client = connect_local(&task_addr).await?;
            sync_round_trips(&task_plan, None, async || add(&client).await).await
        });
        out.push(task.await??.task_sample("calls/s"));

        // 2. `plan.window` calls in flight.
        let (n, elapsed) = concurrent(&client, plan.pipelined, plan.window, deadline(plan.time_cap)).await?;
        out.push(("pipelined", "calls/s", rate(n, elapsed)));

        // 3. 1 MiB echo as one byte string.
        let original = ByteBuf::from((0..plan.echo_size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
        // The argument is moved into the request; the reply is sent again, so no copy is made
        // on the client beyond what tarpc itself does.
        let mut payload = original.clone();
        for _ in 0..plan.warmup.min(10) {
            payload = client.echo(context::current(), payload).await?;
        }
        let end = deadline(plan.time_cap);
        let start = Instant::now();
        let mut done = 0;
        while done < plan.echoes && Instant::now() < end {
            payload = client.echo(context::current(), payload).await?;
            done += 1;
        }
        let elapsed = start.elapsed();
        if payload != original {
            return Err("tarpc echo: the reply differs from the payload".into());
        }
        out.push(("echo_1mib", "MiB/s", rate(done, elapsed) * plan.echo_size as f64 / (1 << 20) as f64));
        drop(client);

        // 4. Connect + first call (+ drop).
        out.push(("connect", "conn/s", connects_per_second(plan, async || add(&connect(addr).await?).await).await?));
        Ok(out)
    })
}

/// One `add(1, 2)` call, checked.
pub(crate) async fn add(client: &BenchClient) -> Result<(), BoxError> {
    match client.add(context::current(), 1, 2).await? {
        3 => Ok(()),
        sum => Err(format!("tarpc add returned {sum}").into()),
    }
}

async fn concurrent(
    client: &BenchClient,
    total: usize,
    window: usize,
    end: Instant,
) -> Result<(usize, Duration), BoxError> {
    let start = Instant::now();
    let results = stream::iter(0..total)
        .take_while(|_| future::ready(Instant::now() < end))
        .map(|i| {
            let i = i as i64;
            async move { client.add(context::current(), i, 1).await.map(|s| s == i + 1) }
        })
        .buffer_unordered(window)
        .collect::<Vec<_>>()
        .await;
    let elapsed = start.elapsed();
    for r in &results {
        if !matches!(r, Ok(true)) {
            return Err(format!("tarpc concurrent add failed: {r:?}").into());
        }
    }
    Ok((results.len(), elapsed))
}
