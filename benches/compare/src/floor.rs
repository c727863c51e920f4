//! The physical floor: raw tokio TCP, current-thread runtimes on both ends, TCP_NODELAY.
//!
//! After connecting, the client sends one tag byte: `p` for 16-byte ping-pong, `f` for framed
//! echo (u32-LE length + body; the server echoes every complete frame it has read in one write).

use std::time::Instant;

use bytes::{Buf, BytesMut};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Semaphore,
};

use crate::{
    announce, connects_per_second, deadline, in_local_task, rate, stats::Sample, sync_round_trips, BoxError, Plan,
};

/// The ping-pong message size.
pub(crate) const PING: usize = 16;

pub(crate) fn serve(addr: &str) -> Result<(), BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let listener = announce(addr).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            tokio::spawn(async move {
                let _ = serve_conn(stream).await;
            });
        }
    })
}

async fn serve_conn(mut s: TcpStream) -> std::io::Result<()> {
    let mut tag = [0u8; 1];
    s.read_exact(&mut tag).await?;
    match tag[0] {
        b'p' => {
            let mut b = [0u8; PING];
            while s.read_exact(&mut b).await.is_ok() {
                s.write_all(&b).await?;
            }
            Ok(())
        }
        b'f' => {
            let mut buf = BytesMut::with_capacity(64 * 1024);
            loop {
                // Complete frames at the front of `buf`, and the size the next frame needs.
                let (mut complete, mut need) = (0usize, 0usize);
                while buf.len() - complete >= 4 {
                    let len = (&buf[complete..complete + 4]).get_u32_le() as usize;
                    if buf.len() - complete >= 4 + len {
                        complete += 4 + len;
                    } else {
                        need = 4 + len - (buf.len() - complete);
                        break;
                    }
                }
                if complete > 0 {
                    let frames = buf.split_to(complete);
                    s.write_all(&frames).await?;
                }
                buf.reserve(need.max(64 * 1024));
                if s.read_buf(&mut buf).await? == 0 {
                    return Ok(());
                }
            }
        }
        _ => Ok(()),
    }
}

/// The ping every ping-pong sends (the floor's and the floor in actors'), echoed back.
pub(crate) const MESSAGE: [u8; PING] = [7; PING];

/// One 16-byte ping-pong on a connection opened with tag `p`, its reply checked.
pub(crate) async fn ping_pong(s: &mut TcpStream) -> Result<(), BoxError> {
    s.write_all(&MESSAGE).await?;
    expect_pong(s).await
}

/// Reads the echo of [`MESSAGE`] and checks it.
async fn expect_pong(s: &mut TcpStream) -> Result<(), BoxError> {
    let mut back = [0u8; PING];
    s.read_exact(&mut back).await?;
    if back != MESSAGE {
        return Err("floor ping-pong: wrong reply".into());
    }
    Ok(())
}

/// One connection: connect, one ping-pong (its tag and ping in one write), close. Nothing is
/// set up beyond the socket; what it costs is the kernel's work for a connection and a round
/// trip, the least any system's connect + first call can cost.
pub(crate) async fn connect_ping_close(addr: &str) -> Result<(), BoxError> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let mut first = [b'p'; 1 + PING];
    first[1..].copy_from_slice(&MESSAGE);
    s.write_all(&first).await?;
    expect_pong(&mut s).await
}

pub(crate) async fn connect(addr: &str, tag: u8) -> Result<TcpStream, BoxError> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(&[tag]).await?;
    Ok(s)
}

pub(crate) fn measure(plan: &Plan, addr: &str, server_pid: Option<u32>) -> Result<Vec<Sample>, BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut out = Vec::new();

        // 1. 16 B ping-pong.
        let mut s = connect(addr, b'p').await?;
        let sync = sync_round_trips(plan, server_pid, async || ping_pong(&mut s).await).await?;
        drop(s);
        out.extend(sync.samples("rt/s"));

        // 1b. The same from a spawned task.
        let (mut s, task_plan) = (connect(addr, b'p').await?, plan.clone());
        let task =
            in_local_task(async move { sync_round_trips(&task_plan, None, async || ping_pong(&mut s).await).await });
        out.push(task.await??.task_sample("rt/s"));

        // 2. Pipelined 16 B frames, window `plan.window`, batched writes.
        let s = connect(addr, b'f').await?;
        pipelined(s, plan.floor_pipelined.min(plan.warmup * 100), plan.window).await?; // warm-up
        let s = connect(addr, b'f').await?;
        let (n, elapsed) = pipelined(s, plan.floor_pipelined, plan.window).await?;
        out.push(("pipelined", "msg/s", rate(n, elapsed)));

        // 3. 1 MiB framed echo, one at a time; the payload is counted once.
        let mut s = connect(addr, b'f').await?;
        let mut frame = Vec::with_capacity(4 + plan.echo_size);
        frame.extend_from_slice(&(plan.echo_size as u32).to_le_bytes());
        frame.extend((0..plan.echo_size).map(|i| (i * 31 % 251) as u8));
        let mut back = vec![0u8; frame.len()];
        for _ in 0..plan.warmup.min(10) {
            s.write_all(&frame).await?;
            s.read_exact(&mut back).await?;
        }
        let end = deadline(plan.time_cap);
        let start = Instant::now();
        let mut done = 0;
        while done < plan.floor_echoes && Instant::now() < end {
            s.write_all(&frame).await?;
            s.read_exact(&mut back).await?;
            done += 1;
        }
        let elapsed = start.elapsed();
        if back != frame {
            return Err("floor echo: wrong reply".into());
        }
        out.push(("echo_1mib", "MiB/s", rate(done, elapsed) * plan.echo_size as f64 / (1 << 20) as f64));
        drop(s);

        // 4. Connect + one ping-pong + close.
        out.push(("connect", "conn/s", connects_per_second(plan, async || connect_ping_close(addr).await).await?));
        Ok(out)
    })
}

/// Sends `total` 20-byte frames (u32-LE 16 + 16 bytes) with at most `window` unanswered; the
/// writer batches every permit available into one write. Returns (frames echoed, elapsed).
async fn pipelined(s: TcpStream, total: usize, window: usize) -> Result<(usize, std::time::Duration), BoxError> {
    const FRAME: usize = 4 + PING;
    let mut frame = [9u8; FRAME];
    frame[..4].copy_from_slice(&(PING as u32).to_le_bytes());
    let (mut rd, mut wr) = s.into_split();
    let permits = Semaphore::new(window);
    let start = Instant::now();
    let writer = async {
        let mut sent = 0usize;
        let mut batch = Vec::with_capacity(window * FRAME);
        while sent < total {
            permits.acquire().await?.forget();
            let extra = permits.available_permits().min(total - sent - 1);
            if extra > 0 {
                permits.acquire_many(extra as u32).await?.forget();
            }
            batch.clear();
            for _ in 0..=extra {
                batch.extend_from_slice(&frame);
            }
            wr.write_all(&batch).await?;
            sent += extra + 1;
        }
        Ok::<_, BoxError>(())
    };
    let reader = async {
        let mut got = 0usize;
        let mut partial = 0usize;
        let mut buf = vec![0u8; 64 * 1024];
        while got < total {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                return Err::<_, BoxError>("floor server closed the connection".into());
            }
            partial += n;
            let frames = partial / FRAME;
            partial %= FRAME;
            got += frames;
            permits.add_permits(frames);
        }
        Ok(got)
    };
    let ((), got) = tokio::try_join!(writer, reader)?;
    Ok((got, start.elapsed()))
}
