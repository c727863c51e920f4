//! A test-only wire dialect with the properties of RPyC 6's wire that the native one lacks, to
//! prove that the session carries a second format unchanged: no handshake, no cancel frame,
//! releases as numbered DEL requests that get replies, and its own framing — a magic byte,
//! the sender's frame counter and the body length — whose counter the reader checks (a frame
//! out of order is a protocol error). Bodies reuse the native value encoding: what differs
//! here is everything around it.
//!
//! It refuses to encode or decode a `Hello`, a `Cancel` or a `Release`, so a session that
//! asked it for one fails the test that drove it.

use std::borrow::Cow;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Dialect, Framer, Incoming, Releases, WireTraits};
use crate::{
    protocol::{decode_frame, encode_frame, DecodeLimits, Outbox, RefBoxer},
    session::boxing::{Boxer, Unboxer},
    Frame, Handle, IdPack, NetRef, ProtocolError, RefLabel, Value,
};

/// The first byte of every frame.
const MAGIC: u8 = 0xA5;
/// Magic, counter (`u32` BE), body length (`u32` BE).
const HEADER_LEN: usize = 9;

/// The sequenced dialect of one connection.
pub(crate) struct Sequenced {
    max_frame_len: usize,
    limits: DecodeLimits,
    /// The number of the next frame this side sends.
    sent: u32,
}

impl Sequenced {
    pub(crate) fn new(max_frame_len: usize, limits: DecodeLimits) -> Self {
        Sequenced { max_frame_len, limits, sent: 0 }
    }

    /// Appends the body `encode` writes to `out`, framed with this side's next number.
    fn frame(
        &mut self,
        out: &mut Outbox,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), ProtocolError>,
    ) -> Result<(), ProtocolError> {
        let mut body = BytesMut::new();
        encode(&mut body)?;
        if body.len() > self.max_frame_len {
            return Err(ProtocolError::FrameTooLarge { len: body.len(), max: self.max_frame_len });
        }
        let tail = out.tail_mut();
        tail.put_u8(MAGIC);
        tail.put_u32(self.sent);
        tail.put_u32(body.len() as u32);
        tail.put_slice(&body);
        self.sent = self.sent.wrapping_add(1);
        Ok(())
    }
}

/// The read side: checks each frame's magic byte and that the counter goes up by one.
pub(crate) struct SequencedFramer {
    max_frame_len: usize,
    expected: u32,
}

impl Framer for SequencedFramer {
    fn body(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        if src.len() < HEADER_LEN {
            return Ok(None);
        }
        if src[0] != MAGIC {
            return Err(ProtocolError::Malformed(format!("bad magic byte {:#04x}", src[0])));
        }
        let counter = u32::from_be_bytes([src[1], src[2], src[3], src[4]]);
        if counter != self.expected {
            return Err(ProtocolError::Unexpected(format!("frame {counter} where frame {} was due", self.expected)));
        }
        let len = u32::from_be_bytes([src[5], src[6], src[7], src[8]]) as usize;
        if len > self.max_frame_len {
            return Err(ProtocolError::FrameTooLarge { len, max: self.max_frame_len });
        }
        if src.len() < HEADER_LEN + len {
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        self.expected = self.expected.wrapping_add(1);
        Ok(Some(src.split_to(len).freeze()))
    }
}

/// Refuses the frames this wire does not have.
fn check_kind<R>(frame: &Frame<R>) -> Result<(), ProtocolError> {
    match frame {
        Frame::Hello(_) | Frame::Cancel { .. } | Frame::Release { .. } => {
            Err(ProtocolError::Unexpected(format!("the sequenced dialect has no {} frame", frame.kind())))
        }
        _ => Ok(()),
    }
}

/// A peer object named by instance id only: the target of a DEL request.
struct PeerObject(u64);

struct PeerObjects;

impl RefBoxer<PeerObject> for PeerObjects {
    fn box_ref<'r>(&self, r: &'r PeerObject) -> Result<(RefLabel, Cow<'r, IdPack>), String> {
        Ok((RefLabel::Local, Cow::Owned(IdPack { type_name: String::new(), class_id: u64::MAX, instance_id: r.0 })))
    }
}

impl Dialect for Sequenced {
    fn name(&self) -> &'static str {
        "sequenced"
    }

    fn traits(&self) -> WireTraits {
        WireTraits { handshake: false, cancel: false, releases: Releases::Requests }
    }

    fn framer(&self) -> Box<dyn Framer> {
        Box::new(SequencedFramer { max_frame_len: self.max_frame_len, expected: 0 })
    }

    fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    fn encode(
        &mut self,
        frame: &Frame<NetRef>,
        boxer: &Boxer<'_>,
        out: &mut Outbox,
        _peer_max: Option<usize>,
    ) -> Result<(), ProtocolError> {
        check_kind(frame)?;
        self.frame(out, |body| encode_frame(frame, boxer, body))
    }

    fn encode_release_request(
        &mut self,
        seq: u64,
        instance_id: u64,
        count: u64,
        out: &mut Outbox,
    ) -> Result<(), ProtocolError> {
        let args = Value::Tuple(vec![Value::Ref(PeerObject(instance_id)), Value::Int(count as i64)]);
        let frame = Frame::Request { seq, handle: Handle::Del, args, deadline: None };
        self.frame(out, |body| encode_frame(&frame, &PeerObjects, body))
    }

    fn decode<'b>(
        &mut self,
        body: &'b Bytes,
        unboxer: &Unboxer<'_>,
        _greeted: bool,
    ) -> Result<Incoming<'b>, ProtocolError> {
        let frame = decode_frame(body, &self.limits, unboxer)?;
        check_kind(&frame)?;
        Ok(Incoming::Frame(frame))
    }
}
