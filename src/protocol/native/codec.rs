//! [`FrameCodec`]: length-delimited framing (tokio-util) with a postcard [`Frame`] body.
//!
//! The length prefix is a peer's claim: it is checked against `max_frame_len` before any
//! buffer is reserved for it, and the buffer grows only with the bytes that arrive. Nothing
//! here may panic on a peer's bytes or depend on actix or on a connection.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::{
    boxing::{RefBoxer, RefUnboxer, WireRefs},
    decode::decode_frame,
    encode::{encode_call_frame, encode_frame_spilling, CallFrame, Spill},
    limits::DecodeLimits,
};
use crate::{
    protocol::{framing::reserve_for_partial_frame, DEFAULT_MAX_FRAME_LEN, FEATURES},
    value::WireRef,
    Frame, ProtocolError,
};

const HEADER_LEN: usize = 4;

/// Splits a byte stream into frames and frames into bytes.
///
/// A frame is a 4-byte big-endian body length, then the body. A length above
/// [`max_frame_len`](FrameCodec::max_frame_len) is an error *before* any buffer is reserved for
/// it; an incomplete frame waits for more bytes, and the end of the stream inside a frame is
/// [`ProtocolError::TruncatedAtEof`].
///
/// As a [`Decoder`]/[`Encoder`] it handles [`Frame<WireRef>`]; a connection uses
/// [`decode_body_with`](FrameCodec::decode_body_with) and
/// [`encode_with`](FrameCodec::encode_with) to resolve references against its own tables.
///
/// ```
/// use bytes::BytesMut;
/// use netref::dev::{Frame, FrameCodec};
/// use tokio_util::codec::{Decoder, Encoder};
///
/// let mut codec = FrameCodec::new();
/// let mut buf = BytesMut::new();
/// codec.encode(Frame::Cancel { seq: 7 }, &mut buf).unwrap();
/// assert_eq!(&buf[..], &[0, 0, 0, 2, 4, 7]);
/// assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::Cancel { seq: 7 }));
/// ```
///
/// The framing is the same as tokio-util's `LengthDelimitedCodec` defaults (u32 big-endian
/// length, then the body), written out here because the decoder must leave a partial header and
/// body in the buffer: that is how it tells a clean end of stream from one inside a frame.
#[derive(Debug, Clone)]
pub struct FrameCodec {
    max_frame_len: usize,
    limits: DecodeLimits,
    /// The feature bits the peer announced that this build knows: what the encoder may send
    /// beyond version 1's baseline.
    peer_features: u64,
}

impl Default for FrameCodec {
    fn default() -> Self {
        FrameCodec::new()
    }
}

impl FrameCodec {
    /// A codec with the default limits (16 MiB frames, [`DecodeLimits::default`]).
    pub fn new() -> Self {
        FrameCodec::with_limits(DEFAULT_MAX_FRAME_LEN, DecodeLimits::default())
    }

    /// A codec with the given largest body and decode limits.
    pub fn with_limits(max_frame_len: usize, limits: DecodeLimits) -> Self {
        FrameCodec { max_frame_len: max_frame_len.min(u32::MAX as usize), limits, peer_features: 0 }
    }

    /// This codec, encoding for a peer whose `Hello` announced `features` (see
    /// [`set_peer_features`](FrameCodec::set_peer_features)).
    pub fn with_peer_features(mut self, features: u64) -> Self {
        self.set_peer_features(features);
        self
    }

    /// Encodes from now on for a peer whose `Hello` announced `features`: a value that needs a
    /// feature bit outside them (and outside this build's [`FEATURES`]) is refused with
    /// [`ProtocolError::PeerLacksFeature`], nothing written. A new codec assumes a peer that
    /// announced nothing (only version 1's baseline is sent), as a connection must before the
    /// peer's `Hello` has arrived. Decoding is not affected: every value this build knows is
    /// accepted.
    pub fn set_peer_features(&mut self, features: u64) {
        self.peer_features = features & FEATURES;
    }

    /// The feature bits the encoder assumes the peer accepts (what it announced, intersected
    /// with this build's [`FEATURES`]).
    pub fn peer_features(&self) -> u64 {
        self.peer_features
    }

    /// The largest frame body this codec accepts or produces.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// The decode limits.
    pub fn limits(&self) -> &DecodeLimits {
        &self.limits
    }

    /// Splits the next complete frame body off `src`: `Ok(None)` until one is complete.
    ///
    /// Nothing is consumed until the whole frame is there; the buffer grows only for a frame
    /// whose announced length passed the `max_frame_len` check, and with the bytes that arrive:
    /// to at most 128 KiB, or 32 times what the peer has sent, whichever is larger.
    pub fn decode_body(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        let Some(header) = src.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len =
            usize::try_from(u32::from_be_bytes([header[0], header[1], header[2], header[3]])).unwrap_or(usize::MAX);
        if len > self.max_frame_len {
            return Err(ProtocolError::FrameTooLarge { len, max: self.max_frame_len });
        }
        let total = HEADER_LEN + len;
        if src.len() < total {
            reserve_for_partial_frame(src, total);
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        Ok(Some(src.split_to(len).freeze()))
    }

    /// Decodes a frame body, resolving references with `unboxer`.
    pub fn decode_body_with<U: RefUnboxer>(&self, body: &Bytes, unboxer: &U) -> Result<Frame<U::Ref>, ProtocolError> {
        decode_frame(body, &self.limits, unboxer)
    }

    /// Appends `frame` (length prefix and body) to `dst`, boxing references with `boxer`.
    /// On error `dst` is left as it was: a value past the decode limits (`TooDeep`,
    /// `TooManyValues`) or one the peer did not announce it accepts (`PeerLacksFeature`, see
    /// [`set_peer_features`](FrameCodec::set_peer_features)) is refused.
    pub fn encode_with<R, B: RefBoxer<R>>(
        &self,
        frame: &Frame<R>,
        boxer: &B,
        dst: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        let encoded = self.encode_spilling_with(frame, boxer, dst, usize::MAX)?;
        debug_assert!(encoded.spilled.is_empty());
        Ok(())
    }

    /// [`encode_with`](FrameCodec::encode_with), except that byte strings of at least
    /// `spill_at` bytes are not copied into `dst`: they are returned (shared, not copied) with
    /// the offset in `dst` where their bytes belong. `dst`'s pieces with these strings between
    /// them are the same bytes as `encode_with` gives, and the length prefix counts the spilled
    /// bytes. On error `dst` is left as it was and nothing is returned.
    #[inline]
    pub(crate) fn encode_spilling_with<R, B: RefBoxer<R>>(
        &self,
        frame: &Frame<R>,
        boxer: &B,
        dst: &mut BytesMut,
        spill_at: usize,
    ) -> Result<Encoded, ProtocolError> {
        let start = dst.len();
        dst.put_u32(0);
        // The peer would refuse a value nested deeper than the limit, or a frame holding more
        // values than the limit, and close the connection: the encoder refuses them instead
        // (failing only this frame), in the same pass. The limits are this side's own decode
        // limits: the peer does not announce its own. A value the peer did not announce it
        // accepts (a feature bit, see `set_peer_features`) is refused the same way.
        let spill = Spill::with_limits(spill_at, self.limits).for_peer(self.peer_features);
        let result = encode_frame_spilling(frame, boxer, dst, &spill).and_then(|()| {
            let spilled = spill.into_strings();
            let len = spilled.iter().fold(dst.len() - start - HEADER_LEN, |len, (_, b)| len.saturating_add(b.len()));
            self.put_header(dst, start, len)?;
            Ok(Encoded { start, body_len: len, spilled })
        });
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    /// Writes the length prefix reserved at `start` for a body of `len` bytes, or refuses a
    /// body above `max_frame_len`.
    fn put_header(&self, dst: &mut BytesMut, start: usize, len: usize) -> Result<(), ProtocolError> {
        // `len` fits u32 once checked: max_frame_len is at most u32::MAX (see `with_limits`).
        let header = u32::try_from(len)
            .ok()
            .filter(|_| len <= self.max_frame_len)
            .ok_or(ProtocolError::FrameTooLarge { len, max: self.max_frame_len })?;
        dst[start..start + HEADER_LEN].copy_from_slice(&header.to_be_bytes());
        Ok(())
    }

    /// Appends a CALLATTR or CALL request or notification whose arguments were encoded ahead
    /// (see [`encode_call_frame`]), length prefix included;
    /// returns the body's length. On error `dst` is left as it was.
    pub(crate) fn encode_call_with<R, B: RefBoxer<R>>(
        &self,
        call: &CallFrame<'_, R>,
        boxer: &B,
        dst: &mut BytesMut,
    ) -> Result<usize, ProtocolError> {
        let start = dst.len();
        dst.put_u32(0);
        let result = encode_call_frame(call, boxer, dst).and_then(|()| {
            let len = dst.len() - start - HEADER_LEN;
            self.put_header(dst, start, len)?;
            Ok(len)
        });
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }
}

/// A frame appended to a buffer by [`FrameCodec::encode_spilling_with`].
#[derive(Debug)]
pub(crate) struct Encoded {
    /// Where the frame (its length prefix) starts in the buffer.
    pub(crate) start: usize,
    /// The body's length, spilled byte strings included (what the length prefix says).
    pub(crate) body_len: usize,
    /// The byte strings left out of the buffer, each with the offset in the buffer (from its
    /// start) where its bytes go, in order.
    pub(crate) spilled: Vec<(usize, Bytes)>,
}

impl Decoder for FrameCodec {
    type Item = Frame<WireRef>;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, ProtocolError> {
        match self.decode_body(src)? {
            Some(body) => decode_frame(&body, &self.limits, &WireRefs).map(Some),
            None => Ok(None),
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Self::Item>, ProtocolError> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None if buf.is_empty() => Ok(None),
            None => {
                let buffered = buf.remaining();
                buf.clear();
                Err(ProtocolError::TruncatedAtEof { buffered })
            }
        }
    }
}

impl Encoder<Frame<WireRef>> for FrameCodec {
    type Error = ProtocolError;

    fn encode(&mut self, frame: Frame<WireRef>, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.encode_with(&frame, &WireRefs, dst)
    }
}

impl Encoder<&Frame<WireRef>> for FrameCodec {
    type Error = ProtocolError;

    fn encode(&mut self, frame: &Frame<WireRef>, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.encode_with(frame, &WireRefs, dst)
    }
}
