//! The floor in actors: the floor's 16-byte ping-pong with the socket of each end owned by an
//! actix actor, the way netref's connection owns its socket — bytes reach the actor as a stream
//! of frames (`add_stream`), the actor writes, and the calling side asks its actor with
//! `Addr::send` and awaits the answer, which the actor gives when the reply arrives.
//!
//! It speaks no protocol beyond the ping-pong, so the difference from the raw floor is what the
//! actor runtime alone costs a round trip, and the difference from netref what netref adds to
//! that. The same holds for a connection: `connect` is connect + one ping-pong + close, with an
//! actor started for the socket on each end (and stopped at the close), as netref starts its
//! connection actor. `compare` reports these figures as the system `actor_floor`; the
//! profiling operations `actor-floor-sync` and `actor-floor-connect` run them alone
//! (`compare --server actor-floor`, see `PROFILING.md`).
//!
//! Writes use `try_write`: with one 16-byte message outstanding the socket's buffer never
//! fills, so a write that would block is treated as an error rather than waited for.

use std::{collections::VecDeque, io};

use actix::prelude::*;
use bytes::{Bytes, BytesMut};
use tokio::{
    net::{tcp::OwnedWriteHalf, TcpStream},
    sync::oneshot,
};
use tokio_util::codec::{Decoder, FramedRead};

use crate::{
    announce, connects_per_second,
    floor::{MESSAGE, PING},
    stats::Sample,
    sync_round_trips, BoxError, Plan,
};

/// Cuts the byte stream into `PING`-byte messages.
struct Pings;

impl Decoder for Pings {
    type Item = Bytes;
    type Error = io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, io::Error> {
        Ok((src.len() >= PING).then(|| src.split_to(PING).freeze()))
    }
}

/// Writes all of `bytes` at once, or fails.
fn write_now(w: &OwnedWriteHalf, bytes: &[u8]) -> io::Result<()> {
    match w.try_write(bytes)? {
        n if n == bytes.len() => Ok(()),
        n => Err(io::Error::other(format!("wrote {n} of {} bytes", bytes.len()))),
    }
}

pub(crate) fn serve(addr: &str) -> Result<(), BoxError> {
    let sys = actix_rt::System::new();
    sys.block_on(async {
        let listener = announce(addr).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let (r, w) = stream.into_split();
            Echo::create(|ctx| {
                ctx.add_stream(FramedRead::new(r, Pings));
                Echo { w }
            });
        }
    })
}

/// The serving end: answers every message with itself.
struct Echo {
    w: OwnedWriteHalf,
}

impl Actor for Echo {
    type Context = Context<Self>;
}

impl StreamHandler<io::Result<Bytes>> for Echo {
    fn handle(&mut self, item: io::Result<Bytes>, ctx: &mut Context<Self>) {
        if item.and_then(|ping| write_now(&self.w, &ping)).is_err() {
            ctx.stop();
        }
    }
}

/// The calling end: sends a ping per [`Ping`] message and answers it when the pong arrives.
struct Caller {
    w: OwnedWriteHalf,
    waiting: VecDeque<oneshot::Sender<()>>,
}

impl Actor for Caller {
    type Context = Context<Self>;
}

/// One round trip, asked of the [`Caller`].
struct Ping;

impl Message for Ping {
    type Result = Result<(), String>;
}

impl Handler<Ping> for Caller {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> Self::Result {
        let sent = write_now(&self.w, &MESSAGE);
        let (tx, rx) = oneshot::channel();
        if sent.is_ok() {
            self.waiting.push_back(tx);
        }
        Box::pin(async move {
            sent.map_err(|e| format!("ping: {e}"))?;
            rx.await.map_err(|_| "the connection closed".to_owned())
        })
    }
}

/// Stops the [`Caller`], which closes its socket (the end of a connection).
struct Stop;

impl Message for Stop {
    type Result = ();
}

impl Handler<Stop> for Caller {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl StreamHandler<io::Result<Bytes>> for Caller {
    fn handle(&mut self, item: io::Result<Bytes>, ctx: &mut Context<Self>) {
        match item {
            Ok(pong) if pong[..] == MESSAGE => {
                if let Some(tx) = self.waiting.pop_front() {
                    let _ = tx.send(());
                }
            }
            _ => ctx.stop(),
        }
    }
}

/// Connects to the `actor-floor` server at `addr` and starts the calling end's actor; must run
/// in an actix system.
async fn connect(addr: &str) -> Result<Addr<Caller>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (r, w) = stream.into_split();
    Ok(Caller::create(|ctx| {
        ctx.add_stream(FramedRead::new(r, Pings));
        Caller { w, waiting: VecDeque::new() }
    }))
}

/// `n` round trips to the `actor-floor` server at `addr`, each awaited; must run in an actix
/// system.
pub(crate) async fn ping_pong(addr: &str, n: usize) -> Result<(), BoxError> {
    let caller = connect(addr).await?;
    for _ in 0..n {
        caller.send(Ping).await??;
    }
    Ok(())
}

/// One connection: connect (starting the calling end's actor; the server starts one for its
/// end), one round trip, stop the actor, which closes the socket; must run in an actix system.
pub(crate) async fn connect_ping_close(addr: &str) -> Result<(), BoxError> {
    let caller = connect(addr).await?;
    caller.send(Ping).await??;
    caller.send(Stop).await?;
    Ok(())
}

/// The sync figures (`sync`, its percentiles and CPU times) and `connect` against the
/// `actor-floor` server at `addr`, served by the process `server_pid`.
pub(crate) fn measure(plan: &Plan, addr: &str, server_pid: Option<u32>) -> Result<Vec<Sample>, BoxError> {
    actix_rt::System::new().block_on(async {
        let caller = connect(addr).await?;
        let sync = sync_round_trips(plan, server_pid, async || Ok(caller.send(Ping).await??)).await?;
        caller.send(Stop).await?;
        let mut out = sync.samples("rt/s");
        out.push(("connect", "conn/s", connects_per_second(plan, async || connect_ping_close(addr).await).await?));
        Ok(out)
    })
}
