//! The bytes a connection has yet to write: encoded frames, in order, as a queue of shared
//! segments, so that large byte strings go to the transport without being copied.
//!
//! Small frames are appended to one buffer (the *tail*), so that frames queued while a write is
//! in flight go out together in one write. A byte string of at least the spill threshold is not
//! copied into the tail: the tail is cut after the string's length prefix, and the string itself
//! (a refcounted `Bytes`, the very buffer the `Value` holds) is queued as its own segment.
//! The writer then sends all segments with vectored writes where the transport supports them.
//!
//! Invariants: every queued segment goes before everything in the tail; no segment is empty;
//! a frame that fails to encode leaves nothing behind.

use std::{collections::VecDeque, io::IoSlice};

use crate::{
    protocol::{CallFrame, FrameCodec, RefBoxer},
    Frame, ProtocolError,
};
use bytes::{Buf, Bytes, BytesMut};

/// Smallest byte string sent out of line over a transport with vectored writes: below it, the
/// copy costs less than keeping a segment (measured on loopback TCP; a 16 KiB copy takes about a
/// microsecond).
pub(crate) const SPILL_VECTORED: usize = 16 << 10;

/// The same over a transport without vectored writes, where each segment costs a write call of
/// its own.
pub(crate) const SPILL_PLAIN: usize = 64 << 10;

/// What the tail holds from the start: a connection's first frames (its `Hello`, with early
/// requests the first call; 36–77 bytes in the benchmark) are encoded into it without growing
/// it. An empty buffer grew by doubling up to this size anyway, four or five reallocations per
/// connection (~0.8k–1.8k instructions a side per connect + first call + close). What the
/// writer has sent comes back to the tail once its segments are dropped, so an idle connection
/// holds this much either way.
const INITIAL_TAIL: usize = 128;

/// Encoded frames not yet handed to the writer.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// Segments ready to write, oldest first.
    segments: VecDeque<Bytes>,
    /// Total length of `segments`.
    segments_len: usize,
    /// Where small frames and the small parts of frames accumulate; goes after `segments`.
    tail: BytesMut,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox { segments: VecDeque::new(), segments_len: 0, tail: BytesMut::with_capacity(INITIAL_TAIL) }
    }
}

impl Outbox {
    /// Bytes queued.
    pub(crate) fn len(&self) -> usize {
        self.segments_len + self.tail.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Encodes `frame` at the end of the queue, byte strings of at least `spill_at` bytes out
    /// of line. A frame whose body exceeds `peer_max` (or the codec's own limit) is refused.
    /// On error nothing of the frame stays queued (the caller rolls back what the boxer
    /// counted).
    pub(crate) fn push_frame<R, B: RefBoxer<R>>(
        &mut self,
        codec: &FrameCodec,
        frame: &Frame<R>,
        boxer: &B,
        spill_at: usize,
        peer_max: Option<usize>,
    ) -> Result<(), ProtocolError> {
        let encoded = codec.encode_spilling_with(frame, boxer, &mut self.tail, spill_at)?;
        self.within_peer_max(encoded.start, encoded.body_len, peer_max)?;
        // Cut the tail at each spilled string; offsets count from the tail's start.
        let mut cut = 0;
        for (at, bytes) in encoded.spilled {
            let head = self.tail.split_to(at - cut).freeze();
            cut = at;
            self.push_segment(head);
            self.push_segment(bytes);
        }
        Ok(())
    }

    /// Encodes a CALLATTR or CALL request or notification whose arguments were encoded ahead
    /// (see [`FrameCodec::encode_call_with`]) at the end of the queue. Refused, leaving nothing
    /// queued, like [`push_frame`](Outbox::push_frame).
    pub(crate) fn push_call<R, B: RefBoxer<R>>(
        &mut self,
        codec: &FrameCodec,
        call: &CallFrame<'_, R>,
        boxer: &B,
        peer_max: Option<usize>,
    ) -> Result<(), ProtocolError> {
        let start = self.tail.len();
        let len = codec.encode_call_with(call, boxer, &mut self.tail)?;
        self.within_peer_max(start, len, peer_max)
    }

    /// Never sends more than the peer said it accepts (that would close the connection): a
    /// frame just encoded at `start` whose body is above `peer_max` is taken back out.
    fn within_peer_max(&mut self, start: usize, len: usize, peer_max: Option<usize>) -> Result<(), ProtocolError> {
        match peer_max {
            Some(max) if len > max => {
                self.tail.truncate(start);
                Err(ProtocolError::FrameTooLarge { len, max })
            }
            _ => Ok(()),
        }
    }

    /// Where a dialect appends small frames (they go out after every queued segment).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn tail_mut(&mut self) -> &mut BytesMut {
        &mut self.tail
    }

    fn push_segment(&mut self, segment: Bytes) {
        if !segment.is_empty() {
            self.segments_len += segment.len();
            self.segments.push_back(segment);
        }
    }

    /// Everything queued, in order, for the writer; the outbox is empty afterwards.
    pub(crate) fn take(&mut self) -> Segments {
        let tail = self.tail.split().freeze();
        if self.segments.is_empty() {
            // Only small frames (the common case): one buffer, nothing else to allocate.
            return Segments::One(tail);
        }
        let mut bufs = std::mem::take(&mut self.segments);
        let remaining = std::mem::take(&mut self.segments_len) + tail.len();
        if !tail.is_empty() {
            bufs.push_back(tail);
        }
        Segments::Many { bufs, remaining }
    }
}

/// Segments on their way to the transport, as one [`Buf`]: `chunks_vectored` offers them all
/// (up to the caller's slice count) for one vectored write; `advance` drops what was written,
/// also part way through a segment.
#[derive(Debug)]
pub(crate) enum Segments {
    /// A single buffer (no byte string was set aside).
    One(Bytes),
    /// Several, in order, none empty.
    Many { bufs: VecDeque<Bytes>, remaining: usize },
}

impl Buf for Segments {
    fn remaining(&self) -> usize {
        match self {
            Segments::One(b) => b.len(),
            Segments::Many { remaining, .. } => *remaining,
        }
    }

    fn chunk(&self) -> &[u8] {
        match self {
            Segments::One(b) => b,
            Segments::Many { bufs, .. } => bufs.front().map_or(&[], |b| b),
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining(), "advance past the end of the segments ({cnt} > {})", self.remaining());
        let (bufs, remaining) = match self {
            Segments::One(b) => return b.advance(cnt),
            Segments::Many { bufs, remaining } => (bufs, remaining),
        };
        *remaining -= cnt;
        while cnt > 0 {
            let Some(front) = bufs.front_mut() else { break };
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            bufs.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        match self {
            Segments::One(b) if b.is_empty() => 0,
            Segments::One(b) => match dst.first_mut() {
                Some(slot) => {
                    *slot = IoSlice::new(b);
                    1
                }
                None => 0,
            },
            Segments::Many { bufs, .. } => {
                let mut n = 0;
                for (slot, buf) in dst.iter_mut().zip(bufs) {
                    *slot = IoSlice::new(buf);
                    n += 1;
                }
                n
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        protocol::{Handle, WireRefs},
        value::WireRef,
        Value,
    };

    fn codec() -> FrameCodec {
        FrameCodec::new()
    }

    fn reply(seq: u64, value: Value<WireRef>) -> Frame<WireRef> {
        Frame::Reply { seq, value }
    }

    /// What the copying encoder gives for `frames`.
    fn copied(frames: &[Frame<WireRef>]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        for f in frames {
            codec().encode_with(f, &WireRefs, &mut buf).unwrap();
        }
        buf.to_vec()
    }

    fn drain(mut s: Segments) -> Vec<u8> {
        let mut out = Vec::new();
        while s.has_remaining() {
            let chunk = s.chunk().to_vec();
            s.advance(chunk.len());
            out.extend(chunk);
        }
        out
    }

    /// A byte string of `len` bytes, distinct per `fill`.
    fn big(fill: u8, len: usize) -> Value<WireRef> {
        static DATA: [u8; 1024] = {
            let mut d = [0u8; 1024];
            let mut i = 0;
            while i < d.len() {
                d[i] = (i % 251) as u8;
                i += 1;
            }
            d
        };
        let at = usize::from(fill) * 7;
        Value::Bytes(Bytes::from_static(&DATA[at..at + len]))
    }

    #[test]
    fn a_connections_first_frames_fit_without_growing_the_tail() {
        // A `Hello`-sized frame and a small reply after it: encoded in place, in the buffer the
        // outbox started with (no reallocation moved it).
        let mut outbox = Outbox::default();
        let start = outbox.tail.as_ptr();
        outbox.push_frame(&codec(), &reply(1, big(1, 60)), &WireRefs, usize::MAX, None).unwrap();
        outbox.push_frame(&codec(), &reply(2, Value::Int(3)), &WireRefs, usize::MAX, None).unwrap();
        assert!(outbox.len() <= INITIAL_TAIL, "{} bytes queued", outbox.len());
        assert_eq!(outbox.tail.as_ptr(), start, "the tail was reallocated");
        let Segments::One(written) = outbox.take() else { panic!("one buffer") };
        assert_eq!(written.as_ptr(), start);
    }

    #[test]
    fn large_strings_go_out_of_line_whoever_holds_them() {
        // One only the value holds (a method's `ByteBuf` result) as well as one held elsewhere
        // too (a `SharedBytes`, a received buffer): neither is copied into the frame.
        for value in [Value::Bytes(Bytes::from(vec![3u8; 1000])), big(3, 1000)] {
            let Value::Bytes(b) = &value else { unreachable!() };
            let at = b.as_ptr();
            let mut outbox = Outbox::default();
            outbox.push_frame(&codec(), &reply(1, value), &WireRefs, 100, None).unwrap();
            let Segments::Many { bufs, .. } = outbox.take() else { panic!("copied into the frame") };
            assert!(bufs.iter().any(|seg| seg.as_ptr() == at), "the string's own buffer is queued");
        }
        // Below the threshold, copied.
        let mut outbox = Outbox::default();
        outbox.push_frame(&codec(), &reply(1, big(3, 99)), &WireRefs, 100, None).unwrap();
        assert!(matches!(outbox.take(), Segments::One(_)));
    }

    #[test]
    fn spilled_frames_are_the_same_bytes_as_copied_ones() {
        let frames = vec![
            reply(1, Value::Int(5)),
            reply(2, Value::Tuple(vec![big(1, 100), Value::from("x"), big(2, 10), big(3, 300)])),
            reply(3, big(4, 64)),
            Frame::Request {
                seq: 4,
                handle: Handle::Call,
                args: Value::Map(vec![(big(5, 64), Value::List(vec![big(6, 1), big(7, 99)]))]),
                deadline: None,
            },
            Frame::Cancel { seq: 5 },
        ];
        for spill_at in [0, 1, 10, 64, 100, usize::MAX] {
            let mut outbox = Outbox::default();
            for f in &frames {
                outbox.push_frame(&codec(), f, &WireRefs, spill_at, None).unwrap();
            }
            assert!(outbox.segments.iter().all(|s| !s.is_empty()));
            let len = outbox.len();
            let segments = outbox.take();
            assert_eq!(segments.remaining(), len);
            assert_eq!(drain(segments), copied(&frames), "spill_at {spill_at}");
            assert!(outbox.is_empty());
        }
    }

    #[test]
    fn spilled_strings_share_the_values_buffer() {
        let payload = Bytes::from(vec![9u8; 1000]);
        let mut outbox = Outbox::default();
        let frame = reply(1, Value::Tuple(vec![Value::Int(1), Value::Bytes(payload.clone())]));
        outbox.push_frame(&codec(), &frame, &WireRefs, 100, None).unwrap();
        let Segments::Many { bufs, .. } = outbox.take() else { panic!("several segments") };
        assert_eq!(bufs.len(), 2, "the head, then the string (nothing after it)");
        assert_eq!(bufs[1].as_ptr(), payload.as_ptr(), "not a copy");
        // Only large strings leave the tail.
        let mut outbox = Outbox::default();
        outbox.push_frame(&codec(), &frame, &WireRefs, 1001, None).unwrap();
        assert!(matches!(outbox.take(), Segments::One(_)));
    }

    #[test]
    fn a_frame_over_the_peers_limit_leaves_nothing_queued() {
        let mut outbox = Outbox::default();
        outbox.push_frame(&codec(), &reply(1, big(1, 200)), &WireRefs, 100, None).unwrap();
        outbox.push_frame(&codec(), &reply(2, Value::Int(3)), &WireRefs, 100, None).unwrap();
        let before = outbox.len();
        let frame = reply(3, Value::Tuple(vec![Value::Int(1), big(2, 150), Value::Int(2), big(3, 150)]));
        let err = outbox.push_frame(&codec(), &frame, &WireRefs, 100, Some(250)).unwrap_err();
        assert!(matches!(err, ProtocolError::FrameTooLarge { max: 250, .. }), "{err}");
        assert_eq!(outbox.len(), before);
        // The codec's own limit, spilled bytes included.
        let small = FrameCodec::with_limits(250, Default::default());
        let err = outbox.push_frame(&small, &frame, &WireRefs, 100, None).unwrap_err();
        assert!(matches!(err, ProtocolError::FrameTooLarge { max: 250, .. }), "{err}");
        assert_eq!(outbox.len(), before);
        // What was queued before is intact.
        let frames = [reply(1, big(1, 200)), reply(2, Value::Int(3))];
        assert_eq!(drain(outbox.take()), copied(&frames));
    }

    #[test]
    fn segments_advance_across_and_within_segments() {
        let mut outbox = Outbox::default();
        let frames: Vec<_> = (0..5u8).map(|i| reply(u64::from(i), big(i, 50 + usize::from(i)))).collect();
        for f in &frames {
            outbox.push_frame(&codec(), f, &WireRefs, 40, None).unwrap();
        }
        let expected = copied(&frames);
        let mut s = outbox.take();
        // Partial writes of every size from 1 to 7 bytes, as a slow transport would take them.
        let mut got = Vec::new();
        let mut step = 1;
        while s.has_remaining() {
            let mut slices = [IoSlice::new(&[]); 4];
            let n = s.chunks_vectored(&mut slices);
            assert!(n > 0 && n <= 4);
            let flat: Vec<u8> = slices[..n].iter().flat_map(|b| b.iter().copied()).collect();
            let take = step.min(flat.len());
            got.extend_from_slice(&flat[..take]);
            s.advance(take);
            step = step % 7 + 1;
        }
        assert_eq!(got, expected);
        assert_eq!(s.chunk(), &[] as &[u8]);
    }
}
