//! A writer that never lets one write carry the end of an RPyC frame and the start of the
//! next, for RPyC's wire over TLS.
//!
//! Under TLS each write becomes its own record(s). A stock Python rpyc peer over
//! `ssl_connect` (or a stock SSL server) waits for its next frame with `select` on the socket,
//! which cannot see bytes OpenSSL has already decrypted and buffered: if one record held the
//! end of a frame and the start of the next, that next frame would sit unseen in the buffer
//! until the peer's request timeout. Written one frame at a time (a large frame may still span
//! several records), every record ends where a frame ends and nothing is left behind.
//!
//! It only counts bytes: it reads each frame's `u32 BE` length prefix as it passes (RPyC's
//! frame is `len | u8 compressed | payload (len bytes) | 0x0A`) and never changes, adds or
//! holds back a byte. It must only wrap a stream of RPyC frames.

use std::{
    io,
    pin::Pin,
    task::{ready, Context, Poll},
};

use tokio::io::AsyncWrite;

use super::io::Writer;
use crate::protocol::rpyc::HEADER_LEN;

/// Bytes of the length prefix.
const PREFIX_LEN: usize = 4;
/// Bytes of a frame besides its length prefix and payload: the compressed flag and the trailer.
const FRAMING_REST: usize = HEADER_LEN - PREFIX_LEN + 1;

/// `W` written one RPyC frame at a time.
pub(crate) struct FrameAligned<W> {
    inner: W,
    /// The current frame's length prefix, as far as it was written.
    prefix: [u8; PREFIX_LEN],
    prefix_len: usize,
    /// Bytes of the current frame still to write after its length prefix (0: at a frame's
    /// start, or inside its prefix).
    left: usize,
}

impl<W> FrameAligned<W> {
    pub(crate) fn new(inner: W) -> Self {
        FrameAligned { inner, prefix: [0; PREFIX_LEN], prefix_len: 0, left: 0 }
    }

    /// How many of `buf`'s bytes the next write may take: up to the current frame's end. Inside
    /// a length prefix that `buf` does not complete, all of `buf` (it cannot reach the end).
    fn allowed(&self, buf: &[u8]) -> usize {
        if self.left > 0 {
            return self.left.min(buf.len());
        }
        let missing = PREFIX_LEN - self.prefix_len;
        if buf.len() < missing {
            return buf.len();
        }
        let mut prefix = self.prefix;
        prefix[self.prefix_len..].copy_from_slice(&buf[..missing]);
        let frame_rest = (u32::from_be_bytes(prefix) as usize).saturating_add(FRAMING_REST).saturating_add(missing);
        frame_rest.min(buf.len())
    }

    /// Moves past `written`, bytes the inner writer took.
    fn advance(&mut self, mut written: &[u8]) {
        while !written.is_empty() {
            if self.left == 0 {
                let take = (PREFIX_LEN - self.prefix_len).min(written.len());
                self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&written[..take]);
                self.prefix_len += take;
                written = &written[take..];
                if self.prefix_len == PREFIX_LEN {
                    self.left = (u32::from_be_bytes(self.prefix) as usize).saturating_add(FRAMING_REST);
                    self.prefix_len = 0;
                }
            } else {
                let take = self.left.min(written.len());
                self.left -= take;
                written = &written[take..];
            }
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for FrameAligned<W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let allowed = this.allowed(buf);
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..allowed]))?;
        this.advance(&buf[..written]);
        Poll::Ready(Ok(written))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<W: Writer> Writer for FrameAligned<W> {
    fn hold_for_shutdown(&mut self) {
        self.inner.hold_for_shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records each write it is given, taking at most `max` bytes of it.
    struct Recorder {
        writes: Vec<Vec<u8>>,
        max: usize,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.writes.push(buf[..n].to_vec());
            Poll::Ready(Ok(n))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// An RPyC frame with a payload of `len` bytes of `fill`.
    fn frame(len: usize, fill: u8) -> Vec<u8> {
        let mut f = (len as u32).to_be_bytes().to_vec();
        f.push(0);
        f.extend(std::iter::repeat_n(fill, len));
        f.push(0x0a);
        f
    }

    /// Writes all of `bytes` through a `FrameAligned` whose inner writer takes at most `max`
    /// bytes per write, in calls of at most `chunk` bytes; returns the inner writer's writes.
    fn write_through(bytes: &[u8], chunk: usize, max: usize) -> Vec<Vec<u8>> {
        let mut w = FrameAligned::new(Recorder { writes: Vec::new(), max });
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let mut at = 0;
        while at < bytes.len() {
            let end = at.saturating_add(chunk).min(bytes.len());
            match Pin::new(&mut w).poll_write(&mut cx, &bytes[at..end]) {
                Poll::Ready(Ok(n)) => at += n,
                other => panic!("{other:?}"),
            }
        }
        w.inner.writes
    }

    #[test]
    fn no_write_crosses_a_frame_end_and_every_byte_goes_through_in_order() {
        let frames = [frame(3, 1), frame(0, 2), frame(300, 3), frame(1, 4), frame(70_000, 5)];
        let stream: Vec<u8> = frames.concat();
        let ends: Vec<usize> = frames
            .iter()
            .scan(0, |end, f| {
                *end += f.len();
                Some(*end)
            })
            .collect();
        // Whole buffers, odd-sized calls, and an inner writer taking a few bytes at a time
        // (length prefixes split across writes).
        for (chunk, max) in [(usize::MAX, usize::MAX), (7, usize::MAX), (usize::MAX, 3), (5, 2), (4096, 1000)] {
            let writes = write_through(&stream, chunk, max);
            assert_eq!(writes.concat(), stream, "chunk {chunk}, max {max}");
            let mut at = 0;
            for write in &writes {
                let end = at + write.len();
                assert!(
                    !ends.iter().any(|&e| at < e && e < end),
                    "a write of bytes {at}..{end} crosses a frame end (chunk {chunk}, max {max})"
                );
                at = end;
            }
            if max == usize::MAX && chunk == usize::MAX {
                assert_eq!(writes.len(), frames.len(), "one write per frame when the writer takes all");
            }
        }
    }
}
