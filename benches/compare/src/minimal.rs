//! Where a sync round trip's time goes: each side of netref against a *minimal peer* that
//! speaks netref's wire format and does nothing else.
//!
//! - `netref.sync_min_client`: a minimal client (one pre-encoded `add` request, written and
//!   its reply read in a loop on one task, as the floor does) against the netref server. Its
//!   shortfall from the floor is the serving side's cost.
//! - `netref.sync_min_server`: the netref client (`call_method("add", (1, 2))`, as in
//!   `netref.sync`) against a minimal server that answers every request with `3`. Its
//!   shortfall from the floor is the calling side's cost.
//!
//! The frames are made with netref's own encoder ([`FrameCodec`]), once, so the bytes are what
//! netref sends. The minimal peers skip everything a real peer must do (decoding, dispatch,
//! limits, errors), so they are for this measurement only.

use std::time::Duration;

use bytes::BytesMut;
use netref::{
    dev::{decode_frame, DecodeLimits, FrameCodec, Hello, Limits, WireRefs},
    Frame, Handle, IdPack, RefLabel, Value, WireRef,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_util::codec::Encoder;

use crate::{announce, netref_bench, stats::Sample, sync_round_trips, BoxError, Plan};

/// The frame kind byte of a request (`Frame::Request`'s index on the wire).
const KIND_REQUEST: u8 = 1;

/// The largest frame the minimal peers read: netref's requests and `Hello`s here are tiny.
const MAX_FRAME: usize = 1 << 16;

/// The deadline `call_method` sends by default (`Config::request_timeout`), so that the
/// minimal client's request is the same size as netref's.
const DEADLINE: Duration = Duration::from_secs(30);

/// `frame` as it goes on the wire (length prefix included).
fn encoded(frame: Frame<WireRef>) -> Result<Vec<u8>, BoxError> {
    let mut dst = BytesMut::new();
    FrameCodec::new().encode(frame, &mut dst)?;
    Ok(dst.to_vec())
}

/// The root the minimal server announces (the netref client then calls it without a
/// `GETROOT`).
fn minimal_root() -> IdPack {
    IdPack { type_name: "bench.Root".into(), class_id: 1, instance_id: 1 }
}

/// Runs the minimal server on `addr` (for ever; the process ends when its standard input
/// closes): it sends its `Hello`, then answers each request with the value 3 and ignores
/// every other frame.
pub(crate) fn serve(addr: &str) -> Result<(), BoxError> {
    let hello = encoded(Frame::Hello(Hello::new(Limits::default()).with_root(minimal_root())))?;
    // A reply is `kind, seq, boxed value`: the kind and seq 0 of this one are replaced.
    let reply = encoded(Frame::Reply { seq: 0, value: Value::Int(3) })?;
    let value = reply[6..].to_vec();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let listener = announce(addr).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let (hello, value) = (hello.clone(), value.clone());
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &hello, &value).await {
                    eprintln!("minimal server: {e}");
                }
            });
        }
    })
}

/// One connection of the minimal server.
async fn answer(mut stream: TcpStream, hello: &[u8], value: &[u8]) -> Result<(), BoxError> {
    stream.set_nodelay(true)?;
    stream.write_all(hello).await?;
    let mut buf = vec![0u8; MAX_FRAME];
    let mut have = 0;
    let mut out = Vec::with_capacity(4096);
    loop {
        let n = stream.read(&mut buf[have..]).await?;
        if n == 0 {
            return Ok(());
        }
        have += n;
        let mut at = 0;
        out.clear();
        let read = &buf[..have];
        while let Some(len) = read.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize) {
            if len > MAX_FRAME - 4 {
                return Err(format!("a {len}-byte frame is past this server's {MAX_FRAME} bytes").into());
            }
            let Some(body) = read.get(at + 4..at + 4 + len) else { break };
            if body.first() == Some(&KIND_REQUEST) {
                // The request's seq: a varint right after the kind.
                let end = body.iter().skip(1).position(|b| b & 0x80 == 0).ok_or("a request without its seq")? + 2;
                let seq = &body[1..end];
                out.extend_from_slice(&((1 + seq.len() + value.len()) as u32).to_be_bytes());
                out.push(2);
                out.extend_from_slice(seq);
                out.extend_from_slice(value);
            }
            at += 4 + len;
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
    }
}

/// Both figures: the minimal client against the netref server at `netref_addr`, and the
/// netref client against the minimal server at `minimal_addr`.
pub(crate) fn measure(plan: &Plan, netref_addr: &str, minimal_addr: &str) -> Result<Vec<Sample>, BoxError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let min_client = rt.block_on(minimal_client(plan, netref_addr))?;
    drop(rt);
    let min_server = netref_bench::sync_rate(plan, minimal_addr)?;
    Ok(vec![("sync_min_client", "calls/s", min_client), ("sync_min_server", "calls/s", min_server)])
}

/// Reads one length-prefixed frame body.
async fn read_frame(stream: &mut TcpStream) -> Result<Vec<u8>, BoxError> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(format!("a {len}-byte frame from the netref server").into());
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

/// Sync `add(1, 2)` round trips per second from a minimal client to the netref server.
async fn minimal_client(plan: &Plan, addr: &str) -> Result<f64, BoxError> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let body = read_frame(&mut stream).await?;
    let root = match decode_frame(&body.into(), &DecodeLimits::default(), &WireRefs)? {
        Frame::Hello(Hello { root: Some(root), .. }) => root,
        other => return Err(format!("the netref server greeted with {other:?}").into()),
    };
    stream.write_all(&encoded(Frame::Hello(Hello::new(Limits::default())))?).await?;
    // Every call reuses seq 0: `add` is answered before the next request is read.
    let target = WireRef { label: RefLabel::Local, id: root };
    let args = Value::Tuple(vec![
        Value::Ref(target),
        Value::Str("add".into()),
        Value::Tuple(vec![Value::Int(1), Value::Int(2)]),
        Value::None,
    ]);
    let request = encoded(Frame::Request { seq: 0, handle: Handle::CallAttr, args, deadline: Some(DEADLINE) })?;
    let expected = encoded(Frame::Reply { seq: 0, value: Value::Int(3) })?;
    let mut reply = vec![0u8; expected.len()];
    let sync = sync_round_trips(plan, None, async || -> Result<(), BoxError> {
        stream.write_all(&request).await?;
        stream.read_exact(&mut reply).await?;
        Ok(())
    })
    .await?;
    if plan.warmup + sync.lat.len() > 0 && reply != expected {
        return Err(format!("the netref server replied {reply:?}, not {expected:?}").into());
    }
    Ok(sync.rate)
}
