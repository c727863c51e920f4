//! A delaying TCP relay: the fault suite's stand-in for `netem delay`, which this kernel lacks.
//! Every connection accepted is relayed to one target; each chunk of bytes is held for the
//! configured delay (per direction) before it is written on, in order. While *partitioned*
//! nothing is forwarded in either direction (bytes wait, and once the per-direction queue is
//! full the relay stops reading, as a silent network would); a heal lets them through.
//!
//! It must never reorder, duplicate or drop bytes of a connection, and its memory is bounded:
//! at most [`QUEUED_CHUNKS`] chunks of [`CHUNK`] bytes wait per direction.

use std::{io, net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpListener, TcpStream,
    },
    sync::{mpsc, watch},
    time::Instant,
};

/// The largest chunk read at once.
const CHUNK: usize = 64 * 1024;
/// Chunks waiting out their delay per direction; past it the relay stops reading.
const QUEUED_CHUNKS: usize = 1024;

/// What the relay does to the bytes it carries; changed while it runs through a `watch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Conditions {
    /// Added to every chunk, in each direction.
    pub(crate) delay: Duration,
    /// Nothing is forwarded while set.
    pub(crate) partitioned: bool,
}

/// Relays every connection accepted on `listener` to `target` under `conditions`, until the
/// task is dropped.
pub(crate) async fn serve(listener: TcpListener, target: SocketAddr, conditions: watch::Receiver<Conditions>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else { continue };
        let conditions = conditions.clone();
        tokio::spawn(async move {
            match TcpStream::connect(target).await {
                Ok(outbound) => relay(inbound, outbound, conditions),
                Err(e) => eprintln!("relay: cannot reach {target}: {e}"),
            }
        });
    }
}

/// Relays one pair of streams, each direction on its own.
fn relay(a: TcpStream, b: TcpStream, conditions: watch::Receiver<Conditions>) {
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    let (a_read, a_write) = a.into_split();
    let (b_read, b_write) = b.into_split();
    direction(a_read, b_write, conditions.clone());
    direction(b_read, a_write, conditions);
}

/// One direction: a reader stamping chunks with their due time, a writer waiting for it (and
/// for the partition to heal). End of stream is forwarded as a shutdown after the delay.
fn direction(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, conditions: watch::Receiver<Conditions>) {
    let (queue, mut due) = mpsc::channel::<(Instant, Option<Vec<u8>>)>(QUEUED_CHUNKS);
    let delay_of = conditions.clone();
    tokio::spawn(async move {
        let mut buf = vec![0; CHUNK];
        loop {
            let read = from.read(&mut buf).await;
            let at = Instant::now() + delay_of.borrow().delay;
            let chunk = match read {
                Ok(0) | Err(_) => None,
                Ok(n) => Some(buf[..n].to_vec()),
            };
            let end = chunk.is_none();
            if queue.send((at, chunk)).await.is_err() || end {
                return;
            }
        }
    });
    tokio::spawn(async move {
        let mut conditions = conditions;
        while let Some((at, chunk)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if wait_for_heal(&mut conditions).await.is_err() {
                return;
            }
            match chunk {
                Some(bytes) => {
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    });
}

/// Returns at once unless partitioned; otherwise when healed (an error if the relay is gone).
async fn wait_for_heal(conditions: &mut watch::Receiver<Conditions>) -> Result<(), watch::error::RecvError> {
    conditions.wait_for(|c| !c.partitioned).await.map(|_| ())
}

/// The relay as a process (`fault-suite relay`): listens on `listen`, relays to `target`, and
/// reads `partition` / `heal` lines on stdin. Prints `@ready port=P` once it accepts.
pub(crate) async fn run_process(listen: &str, target: SocketAddr, delay: Duration) -> io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    let port = listener.local_addr()?.port();
    let (set, conditions) = watch::channel(Conditions { delay, partitioned: false });
    let relaying = tokio::spawn(serve(listener, target, conditions));
    crate::host::event("ready", &[("port", port.to_string())]);
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    loop {
        line.clear();
        if tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line).await? == 0 {
            break;
        }
        match line.trim() {
            "partition" => set.send_modify(|c| c.partitioned = true),
            "heal" => set.send_modify(|c| c.partitioned = false),
            other => eprintln!("relay: unknown command {other:?}"),
        }
        crate::host::event(line.trim(), &[]);
    }
    relaying.abort();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(10);

    /// A relay in front of an echo server; returns its address and the conditions' sender.
    async fn relay_to_echo(delay: Duration) -> (SocketAddr, watch::Sender<Conditions>) {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = front.local_addr().unwrap();
        let (set, conditions) = watch::channel(Conditions { delay, partitioned: false });
        tokio::spawn(serve(front, echo_addr, conditions));
        (addr, set)
    }

    #[tokio::test]
    async fn bytes_come_back_in_order_and_complete_after_the_delay_each_way() {
        let delay = Duration::from_millis(40);
        let (addr, _set) = relay_to_echo(delay).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        let sent: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let started = Instant::now();
        let (mut r, mut w) = s.split();
        let write = async {
            w.write_all(&sent).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let mut got = Vec::new();
        let read = r.read_to_end(&mut got);
        let ((), n) = tokio::time::timeout(T, async { tokio::join!(write, read) }).await.unwrap();
        n.unwrap();
        assert_eq!(got, sent);
        assert!(started.elapsed() >= 2 * delay, "came back after {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn nothing_passes_while_partitioned_and_everything_after_the_heal() {
        let (addr, set) = relay_to_echo(Duration::ZERO).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        set.send_modify(|c| c.partitioned = true);
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        // Nothing comes back while partitioned: the read is still pending when the bound ends.
        let read = tokio::time::timeout(Duration::from_millis(300), s.read_exact(&mut buf)).await;
        assert!(read.is_err(), "bytes crossed a partition");
        set.send_modify(|c| c.partitioned = false);
        tokio::time::timeout(T, s.read_exact(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf, b"ping");
    }
}
