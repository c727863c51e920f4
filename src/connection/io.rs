//! Reading frames off the transport: frame bodies as a `Stream`, behind a gate the actor closes
//! to stop reading (back-pressure on the peer when too much is running or queued).

use std::{
    cell::{Cell, RefCell},
    pin::Pin,
    rc::Rc,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    task::{Context, Poll, Wake, Waker},
};

use std::io::{self, IoSlice};

use bytes::{Buf, Bytes, BytesMut};
use futures::Stream;
use tokio::io::AsyncWrite;
use tokio_util::codec::Decoder;

use crate::{protocol::Segments, session::Framer, ProtocolError};

/// Smallest and largest read buffer: a connection starts small (idle connections stay cheap)
/// and grows while reads keep filling it (a pipelining peer's frames then arrive in a few
/// large reads instead of many 512-byte ones).
pub(crate) const READ_BUFFER_MIN: usize = 512;
const READ_BUFFER_MAX: usize = 64 << 10;

/// Splits the byte stream into frame bodies with the dialect's framing; decoding the body
/// happens in the session, which owns the tables references resolve against.
pub(crate) struct Bodies {
    framer: Box<dyn Framer>,
    /// Room to offer the next read.
    read_hint: usize,
}

impl Bodies {
    pub(crate) fn new(framer: Box<dyn Framer>) -> Self {
        Bodies { framer, read_hint: READ_BUFFER_MIN }
    }
}

impl Decoder for Bodies {
    type Item = Bytes;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        if src.len() == src.capacity() && src.len() >= self.read_hint {
            // The last read filled all the room it had: offer more next time.
            self.read_hint = (self.read_hint * 2).min(READ_BUFFER_MAX);
        }
        let body = self.framer.body(src)?;
        if body.is_none() && src.capacity() - src.len() < self.read_hint / 2 {
            // Waiting for more bytes: make room for a read of about `read_hint`.
            src.reserve(self.read_hint);
        }
        Ok(body)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        match self.framer.body(src)? {
            Some(body) => Ok(Some(body)),
            None if src.is_empty() => Ok(None),
            None => Err(ProtocolError::TruncatedAtEof { buffered: std::mem::take(src).len() }),
        }
    }
}

/// A transport's write half, with what a connection may ask of it besides writing.
pub(crate) trait Writer: AsyncWrite + Unpin {
    /// What is written from now on is the last before the write side shuts down: the
    /// transport may hold it back so that it leaves with the shutdown. Over TCP the closing
    /// `Close` frame then leaves in the FIN's segment instead of one of its own (a segment less
    /// per connection, and one wake-up less of the peer). Best effort: a transport that cannot
    /// ignores it, and what is held leaves anyway within the kernel's limit (200 ms on Linux)
    /// if the shutdown does not come.
    fn hold_for_shutdown(&mut self) {}
}

impl<S: AsyncWrite> Writer for tokio::io::WriteHalf<S> {}

#[cfg(unix)]
impl Writer for tokio::net::unix::OwnedWriteHalf {}

impl Writer for tokio::net::tcp::OwnedWriteHalf {
    fn hold_for_shutdown(&mut self) {
        // `TCP_CORK` holds partial segments; the shutdown's FIN is then tacked onto the held
        // data and pushed at once.
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Err(e) = socket2::SockRef::from(self.as_ref()).set_tcp_cork(true) {
            tracing::trace!(error = %e, "cannot cork the socket before shutdown");
        }
    }
}

/// The waker the read side is polled with: it remembers that it was woken, so that the driver
/// polls the transport only in turns that follow a read wake-up, not in every turn. A turn that
/// only writes (a caller's request) then skips a read poll that would find nothing: through the
/// codec and the runtime's readiness check that is a few hundred instructions per call.
#[derive(Debug)]
pub(crate) struct ReadWake {
    woken: AtomicBool,
    task: Waker,
}

impl ReadWake {
    /// A read waker for `task`, set as woken: the first turn with it polls the transport, which
    /// registers it for the next readiness.
    pub(crate) fn new(task: &Waker) -> (Arc<ReadWake>, Waker) {
        let wake = Arc::new(ReadWake { woken: AtomicBool::new(true), task: task.clone() });
        let waker = Waker::from(wake.clone());
        (wake, waker)
    }

    /// Whether the read side was woken since the last call (and clears it).
    pub(crate) fn take(&self) -> bool {
        self.woken.swap(false, Ordering::AcqRel)
    }

    pub(crate) fn wakes(&self, task: &Waker) -> bool {
        self.task.will_wake(task)
    }
}

impl Wake for ReadWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake_by_ref();
    }
}

/// Writes `segments` from the front and advances past what the transport took: a single
/// buffer with a plain write (a `send`, cheaper than a one-slice `writev`), several with one
/// vectored write where the transport supports it.
pub(crate) fn poll_write_segments<W: AsyncWrite + ?Sized>(
    segments: &mut Segments,
    mut w: Pin<&mut W>,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    let n = match segments {
        Segments::Many { bufs, .. } if bufs.len() > 1 && w.is_write_vectored() => {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let count = segments.chunks_vectored(&mut slices);
            std::task::ready!(w.as_mut().poll_write_vectored(cx, &slices[..count]))?
        }
        _ => std::task::ready!(w.as_mut().poll_write(cx, segments.chunk()))?,
    };
    segments.advance(n);
    Poll::Ready(Ok(n))
}

/// Slices offered to one vectored write (Linux takes up to 1024).
const MAX_SLICES: usize = 64;

/// Open or shut: while shut, the gated stream yields nothing and remembers who to wake.
#[derive(Default)]
pub(crate) struct Gate {
    shut: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Gate {
    pub(crate) fn set_shut(&self, shut: bool) {
        if self.shut.replace(shut) && !shut {
            if let Some(w) = self.waker.borrow_mut().take() {
                w.wake();
            }
        }
    }

    pub(crate) fn is_shut(&self) -> bool {
        self.shut.get()
    }
}

pub(crate) struct Gated<S> {
    pub(crate) inner: S,
    pub(crate) gate: Rc<Gate>,
}

impl<S: Stream + Unpin> Stream for Gated<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.gate.shut.get() {
            *self.gate.waker.borrow_mut() = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use bytes::BufMut;

    use super::*;
    use crate::protocol::FrameCodec;

    /// Fills `src`'s spare room with whole 8-byte frames (a 4-byte length, 4 body bytes) and
    /// as much of one more as fits, as a read that fills the buffer would.
    fn fill(src: &mut BytesMut) {
        let mut n = 0u32;
        while src.capacity() - src.len() >= 8 {
            src.put_u32(4);
            src.put_u32(n);
            n += 1;
        }
        while src.len() < src.capacity() {
            src.put_u8(0);
        }
    }

    /// Decodes every complete frame; returns how many.
    fn drain(bodies: &mut Bodies, src: &mut BytesMut) -> usize {
        let mut frames = 0;
        while let Some(body) = bodies.decode(src).unwrap() {
            assert_eq!(body.len(), 4);
            frames += 1;
        }
        frames
    }

    #[test]
    fn read_room_grows_while_reads_fill_it_and_stops_at_the_cap() {
        let mut bodies = Bodies::new(Box::new(FrameCodec::new()));
        let mut src = BytesMut::with_capacity(READ_BUFFER_MIN);
        let mut rooms = Vec::new();
        for _ in 0..12 {
            fill(&mut src);
            assert!(drain(&mut bodies, &mut src) > 0);
            rooms.push(src.capacity() - src.len());
        }
        assert!(rooms[0] >= READ_BUFFER_MIN, "room after the first full read: {rooms:?}");
        assert!(rooms.windows(2).all(|w| w[1] >= w[0] / 2), "room never collapses: {rooms:?}");
        assert!(rooms.iter().any(|r| *r >= READ_BUFFER_MAX / 2), "room reaches the cap: {rooms:?}");
        assert!(rooms.iter().all(|r| *r <= 2 * READ_BUFFER_MAX), "room stays bounded: {rooms:?}");
    }

    #[test]
    fn reads_that_do_not_fill_the_room_keep_it_small() {
        let mut bodies = Bodies::new(Box::new(FrameCodec::new()));
        let mut src = BytesMut::with_capacity(READ_BUFFER_MIN);
        for n in 0..100u32 {
            // One small frame per read, as a request–reply peer sends.
            src.put_u32(4);
            src.put_u32(n);
            assert_eq!(drain(&mut bodies, &mut src), 1);
        }
        assert!(src.capacity() <= 2 * READ_BUFFER_MIN, "capacity {}", src.capacity());
    }

    /// A transport that takes at most `take` bytes per write and notes how each was asked.
    struct Trickle {
        vectored: bool,
        take: usize,
        out: Vec<u8>,
        calls: Vec<&'static str>,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.take);
            self.out.extend_from_slice(&buf[..n]);
            self.calls.push("write");
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut n = 0;
            for b in bufs {
                let k = b.len().min(self.take - n);
                self.out.extend_from_slice(&b[..k]);
                n += k;
            }
            self.calls.push("writev");
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn segments(parts: &[&'static [u8]]) -> Segments {
        match parts {
            [one] => Segments::One(Bytes::from_static(one)),
            _ => Segments::Many {
                bufs: parts.iter().map(|p| Bytes::from_static(p)).collect::<VecDeque<_>>(),
                remaining: parts.iter().map(|p| p.len()).sum(),
            },
        }
    }

    #[test]
    fn one_buffer_is_a_plain_write_and_several_a_vectored_one() {
        let parts: [&'static [u8]; 3] = [b"first segment", b"second", b"the third and last"];
        for (vectored, take, n) in [(true, 1000, 3), (true, 7, 3), (false, 1000, 3), (true, 1000, 1)] {
            let mut s = segments(&parts[..n]);
            let expected: Vec<u8> = parts[..n].concat();
            let mut w = Trickle { vectored, take, out: Vec::new(), calls: Vec::new() };
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            while s.has_remaining() {
                let before = s.remaining();
                let Poll::Ready(Ok(k)) = poll_write_segments(&mut s, Pin::new(&mut w), &mut cx) else {
                    panic!("the mock never blocks")
                };
                assert_eq!(s.remaining(), before - k, "advanced past what was written");
            }
            assert_eq!(w.out, expected, "vectored {vectored}, take {take}, segments {n}");
            if n > 1 && vectored {
                // Vectored while several segments are left, then plain for the last one.
                let plain_from = w.calls.iter().position(|c| *c == "write").unwrap_or(w.calls.len());
                assert!(plain_from > 0 && w.calls[plain_from..].iter().all(|c| *c == "write"), "{:?}", w.calls);
                if take == 1000 {
                    assert_eq!(w.calls, ["writev"], "all segments in one write");
                }
            } else {
                assert!(w.calls.iter().all(|c| *c == "write"), "{:?}", w.calls);
            }
        }
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod cork_tests {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
    };

    use super::Writer;

    /// A TCP write half asked to hold its last bytes corks the socket, and what it held still
    /// arrives, followed by the end of the stream, once it shuts down.
    #[tokio::test]
    async fn tcp_holds_the_last_bytes_for_the_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        client.set_nodelay(true).unwrap();
        let (_read, mut write) = client.into_split();
        assert!(!socket2::SockRef::from(write.as_ref()).tcp_cork().unwrap());
        write.hold_for_shutdown();
        assert!(socket2::SockRef::from(write.as_ref()).tcp_cork().unwrap());
        write.write_all(b"last words").await.unwrap();
        write.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last words");
    }
}
