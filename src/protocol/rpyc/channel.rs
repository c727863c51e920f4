//! [`RpycChannelCodec`]: RPyC's channel framing, `u32 BE len | u8 compressed | payload | 0x0A`.
//!
//! `len` counts the payload as sent (compressed or not) and not the trailer. Stock reads
//! `len + 1` bytes after the 5-byte header and drops the last one unchecked; so does this codec,
//! which also writes `0x0A` there. A non-zero `compressed` byte means the payload is a zlib
//! stream (stock writes 1 and inflates on any non-zero value; so does this codec).
//!
//! Bounds: a header announcing more than `max_frame_len` is refused before anything is reserved
//! for it; the buffer grows only with the bytes that actually arrive; a compressed payload is
//! inflated in chunks into a buffer that never exceeds `max_frame_len + 1` bytes, so a zip bomb
//! is [`ProtocolError::InflatedTooLarge`] and not an allocation.
//!
//! A zero-length payload (or a compressed one that inflates to nothing) is skipped, as stock's
//! `Connection.serve` treats it as "nothing received": the decoder never yields an empty payload.
//! A compressed frame with zero bytes is not a zlib stream and is refused, as stock's
//! `zlib.decompress(b"")` refuses it.

use std::io::Write;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use flate2::{Compression, Decompress, FlushDecompress, Status};
use tokio_util::codec::{Decoder, Encoder};

use super::{
    brine::Brine,
    message::{encode_message, MsgType},
};
use crate::{protocol::DEFAULT_MAX_FRAME_LEN, ProtocolError};

/// `u32` length and `u8` compressed flag.
pub const HEADER_LEN: usize = 5;
/// The byte stock writes after every payload (`"\n"`, to flush line-buffered layers).
pub const TRAILER: u8 = 0x0a;
/// Stock compresses payloads longer than this many bytes (`Channel.COMPRESSION_THRESHOLD`).
pub const STOCK_COMPRESSION_THRESHOLD: usize = 3000;
/// Stock's zlib level (`Channel.COMPRESSION_LEVEL`).
pub const STOCK_COMPRESSION_LEVEL: u32 = 1;

/// The inflate buffer starts at this many bytes (or the limit, if smaller) and doubles, never
/// past the limit.
const INFLATE_FIRST_CHUNK: usize = 16 << 10;

/// Splits a byte stream into RPyC channel payloads, and payloads into frames.
///
/// As a [`Decoder`] it yields each frame's payload, inflated if it was compressed (a [`Bytes`]
/// sharing the read buffer when it was not); [`decode_message`](super::decode_message) takes it
/// from there. As an [`Encoder`] it frames a payload given as [`Bytes`] or `&[u8]`;
/// [`encode_message`](RpycChannelCodec::encode_message) frames a message without copying its
/// payload.
///
/// ```
/// use bytes::BytesMut;
/// use netref::dev::rpyc::{Brine, MsgType, RpycChannelCodec};
/// use tokio_util::codec::Decoder;
///
/// let codec = RpycChannelCodec::new();
/// let mut buf = BytesMut::new();
/// // RPyC's GETROOT request: seq 0, (HANDLE_GETROOT, (LABEL_VALUE, ())).
/// let args = Brine::tuple([Brine::Int(3), Brine::tuple([Brine::Int(1), Brine::tuple([])])]);
/// codec.encode_message(MsgType::Request, 0, &args, &mut buf).unwrap();
/// assert_eq!(&buf[..], b"\x00\x00\x00\x08\x00\x01\x11\x50\x11\x53\x11\x51\x02\x0a");
/// let payload = codec.clone().decode(&mut buf).unwrap().unwrap();
/// assert_eq!(&payload[..], b"\x01\x11\x50\x11\x53\x11\x51\x02");
/// ```
#[derive(Debug, Clone)]
pub struct RpycChannelCodec {
    max_frame_len: usize,
    compress_above: Option<usize>,
}

impl Default for RpycChannelCodec {
    fn default() -> Self {
        RpycChannelCodec::new()
    }
}

impl RpycChannelCodec {
    /// A codec for payloads of up to [`DEFAULT_MAX_FRAME_LEN`] (16 MiB) that never compresses.
    pub fn new() -> Self {
        RpycChannelCodec::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A codec for payloads of up to `max_frame_len` bytes (at most `u32::MAX`), compressed or
    /// inflated, that never compresses.
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        RpycChannelCodec { max_frame_len: max_frame_len.min(u32::MAX as usize), compress_above: None }
    }

    /// Compresses payloads longer than `threshold` bytes with zlib level 1, as stock does with
    /// `Some(`[`STOCK_COMPRESSION_THRESHOLD`]`)`. `None` (the default) never compresses, which
    /// every peer accepts.
    pub fn compress_above(mut self, threshold: Option<usize>) -> Self {
        self.compress_above = threshold;
        self
    }

    /// The largest payload this codec accepts or sends, inflated size included.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Appends the frame of one message (`u8 msg` + `brine((seq, args))`) to `dst`, encoding the
    /// payload in place. On error `dst` is left as it was.
    pub fn encode_message(
        &self,
        msg: MsgType,
        seq: u64,
        args: &Brine,
        dst: &mut BytesMut,
    ) -> Result<(), ProtocolError> {
        self.encode_frame_with(dst, |dst| encode_message(msg, seq, args, dst))
    }

    /// Appends a frame whose payload `write_payload` appends to the buffer it is given, then
    /// compresses it if configured and writes the header and trailer. On error `dst` is left as
    /// it was.
    pub fn encode_frame_with(
        &self,
        dst: &mut BytesMut,
        write_payload: impl FnOnce(&mut BytesMut) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        let start = dst.len();
        dst.put_bytes(0, HEADER_LEN);
        let result = write_payload(dst).and_then(|()| self.finish_frame(dst, start));
        if result.is_err() {
            dst.truncate(start);
        }
        result
    }

    /// Checks and (if configured) compresses the payload written after the header reserved at
    /// `start`, then fills in the header and appends the trailer.
    fn finish_frame(&self, dst: &mut BytesMut, start: usize) -> Result<(), ProtocolError> {
        let payload_start = start + HEADER_LEN;
        let plain_len = dst.len() - payload_start;
        if plain_len > self.max_frame_len {
            return Err(ProtocolError::FrameTooLarge { len: plain_len, max: self.max_frame_len });
        }
        let compressed = self.compress_above.is_some_and(|threshold| plain_len > threshold);
        if compressed {
            let plain = dst.split_off(payload_start);
            let mut encoder = flate2::write::ZlibEncoder::new(dst.writer(), Compression::new(STOCK_COMPRESSION_LEVEL));
            encoder.write_all(&plain)?;
            encoder.finish()?;
        }
        let len = dst.len() - payload_start;
        let len32 = u32::try_from(len)
            .ok()
            .filter(|_| len <= self.max_frame_len)
            .ok_or(ProtocolError::FrameTooLarge { len, max: self.max_frame_len })?;
        dst[start..start + 4].copy_from_slice(&len32.to_be_bytes());
        dst[start + 4] = u8::from(compressed);
        dst.put_u8(TRAILER);
        Ok(())
    }

    /// Splits the next complete frame off `src` as `(compressed flag, payload as sent)`, or
    /// `Ok(None)` until one is complete. Nothing is consumed before the whole frame is there.
    fn split_frame(&self, src: &mut BytesMut) -> Result<Option<(u8, Bytes)>, ProtocolError> {
        let Some(header) = src.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let len =
            usize::try_from(u32::from_be_bytes([header[0], header[1], header[2], header[3]])).unwrap_or(usize::MAX);
        let flag = header[4];
        if len > self.max_frame_len {
            return Err(ProtocolError::FrameTooLarge { len, max: self.max_frame_len });
        }
        // Checked above: `len` is at most u32::MAX, so this cannot overflow.
        let total = HEADER_LEN + len + 1;
        if src.len() < total {
            crate::protocol::framing::reserve_for_partial_frame(src, total);
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        let payload = src.split_to(len).freeze();
        // The trailer: stock drops it unchecked, and so do we.
        src.advance(1);
        Ok(Some((flag, payload)))
    }
}

impl Decoder for RpycChannelCodec {
    type Item = Bytes;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        while let Some((flag, payload)) = self.split_frame(src)? {
            let payload = if flag == 0 { payload } else { inflate_bounded(&payload, self.max_frame_len)? };
            if !payload.is_empty() {
                return Ok(Some(payload));
            }
            // An empty payload is "nothing received" to stock: skipped.
        }
        Ok(None)
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        match self.decode(buf)? {
            Some(payload) => Ok(Some(payload)),
            None if buf.is_empty() => Ok(None),
            None => {
                let buffered = buf.len();
                buf.clear();
                Err(ProtocolError::TruncatedAtEof { buffered })
            }
        }
    }
}

impl Encoder<&[u8]> for RpycChannelCodec {
    type Error = ProtocolError;

    fn encode(&mut self, payload: &[u8], dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.encode_frame_with(dst, |dst| {
            dst.extend_from_slice(payload);
            Ok(())
        })
    }
}

impl Encoder<Bytes> for RpycChannelCodec {
    type Error = ProtocolError;

    fn encode(&mut self, payload: Bytes, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        self.encode(&payload[..], dst)
    }
}

/// Inflates the zlib stream `compressed` into at most `max` bytes.
///
/// The output buffer starts small and doubles, never past `max + 1` bytes: one byte more than
/// allowed is how a stream that inflates past `max` is told apart, and it is refused
/// ([`ProtocolError::InflatedTooLarge`]) without inflating further. A corrupt or truncated
/// stream, or bytes after its end, is [`ProtocolError::Malformed`].
pub fn inflate_bounded(compressed: &[u8], max: usize) -> Result<Bytes, ProtocolError> {
    let limit = max.saturating_add(1);
    let mut inflater = Decompress::new(true);
    let mut out: Vec<u8> = Vec::with_capacity(INFLATE_FIRST_CHUNK.min(limit));
    loop {
        if out.len() > max {
            return Err(ProtocolError::InflatedTooLarge { max });
        }
        if out.len() == out.capacity() {
            // Double, but never past `limit` (reserve_exact, so no rounding up either).
            let target = out.capacity().saturating_mul(2).max(INFLATE_FIRST_CHUNK).min(limit);
            out.reserve_exact(target - out.len());
        }
        let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
        let produced = out.len();
        let input = compressed.get(consumed..).unwrap_or(&[]);
        let status = inflater
            .decompress_vec(input, &mut out, FlushDecompress::None)
            .map_err(|e| ProtocolError::Malformed(format!("corrupt zlib stream in a compressed frame: {e}")))?;
        if out.len() > max {
            return Err(ProtocolError::InflatedTooLarge { max });
        }
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError => {
                let progressed =
                    usize::try_from(inflater.total_in()).unwrap_or(usize::MAX) != consumed || out.len() != produced;
                if !progressed {
                    return Err(ProtocolError::Malformed(format!(
                        "truncated zlib stream in a compressed frame ({} bytes, no end of stream)",
                        compressed.len()
                    )));
                }
            }
        }
    }
    let consumed = usize::try_from(inflater.total_in()).unwrap_or(usize::MAX);
    if consumed < compressed.len() {
        return Err(ProtocolError::Malformed(format!(
            "{} bytes after the end of the zlib stream in a compressed frame",
            compressed.len() - consumed
        )));
    }
    Ok(Bytes::from(out))
}
