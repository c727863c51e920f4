//! The native wire (`protocol`'s postcard format) as a [`Dialect`]: the frame codec, and the
//! plain reader's short cut for the frames of a busy connection (method calls and replies),
//! which the general decoder backs wherever the short cut gives up. A first frame that is not a
//! `Hello` but a stock rpyc client's request is reported as such
//! ([`ProtocolError::RpycPeerOnNativeWire`]); that check runs only once the frame has failed to
//! be a `Hello`, so it costs a native handshake nothing.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::{CallEncoding, Dialect, Framer, Incoming, Releases, WireTraits};
use crate::{
    protocol::{
        read_call, read_reply, rpyc::is_rpyc6_request_cut_short, CallFrame, FrameCodec, Outbox, PlainRef, PlainReply,
        KIND_NOTIFY, KIND_REPLY, KIND_REQUEST,
    },
    session::boxing::{Boxer, Unboxer},
    Frame, NetRef, ProtocolError, RefLabel, Value,
};

/// The native dialect of one connection.
pub(crate) struct NativeDialect {
    codec: FrameCodec,
    /// Byte strings from this size on are written from their own buffer, not copied (it
    /// depends on whether the transport writes vectored).
    spill_at: usize,
}

impl NativeDialect {
    pub(crate) fn new(codec: FrameCodec, spill_at: usize) -> Self {
        NativeDialect { codec, spill_at }
    }

    /// Reads a reply or a method call the plain reader can read; `None` leaves the body to
    /// the general decoder, which reads the same or reports what is wrong with it.
    fn decode_plain<'b>(&self, body: &'b Bytes, unboxer: &Unboxer<'_>) -> Option<Incoming<'b>> {
        let limits = self.codec.limits();
        match body.first() {
            Some(&KIND_REPLY) => match read_reply::<NetRef>(body, limits)? {
                (seq, PlainReply::Value(value)) => Some(Incoming::Reply { seq, value }),
                (seq, PlainReply::Ref(reference)) => {
                    let mut value = Value::None;
                    unbox_plain_refs(unboxer, &[reference], std::slice::from_mut(&mut value))?;
                    Some(Incoming::Reply { seq, value })
                }
            },
            Some(&(KIND_REQUEST | KIND_NOTIFY)) => {
                let mut call = read_call::<NetRef>(body, limits)?;
                // The target resolves as the unboxer resolves a `LOCAL_REF`; one it cannot
                // resolve is the general decoder's error to report.
                let object = unboxer.local_object(call.class_id, call.instance_id)?.clone();
                if !call.refs.is_empty() {
                    unbox_plain_refs(unboxer, &call.refs, &mut call.args)?;
                }
                Some(Incoming::Call {
                    seq: call.seq,
                    object,
                    name: call.name,
                    args: call.args,
                    deadline: call.deadline_us.map(Duration::from_micros),
                })
            }
            _ => None,
        }
    }
}

/// Unboxes the references the plain reader found into their places in `values`, as the general
/// decoder would: the `LOCAL_REF`s first, so that one this side never exported leaves the frame
/// (`None`) before any `REMOTE_REF` has counted an import; then the `REMOTE_REF`s, which cannot
/// fail.
fn unbox_plain_refs(unboxer: &Unboxer<'_>, refs: &[PlainRef<'_>], values: &mut [Value]) -> Option<()> {
    use crate::protocol::RefUnboxer;
    for pass in [RefLabel::Local, RefLabel::Remote] {
        for r in refs.iter().filter(|r| r.label == pass) {
            match (unboxer.unbox_ref(r.label, r.id), values.get_mut(r.index)) {
                (Ok(netref), Some(slot)) => *slot = Value::Ref(netref),
                _ => {
                    debug_assert_eq!(pass, RefLabel::Local, "a REMOTE_REF unboxes, and its place exists");
                    return None;
                }
            }
        }
    }
    Some(())
}

impl Framer for FrameCodec {
    fn body(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        self.decode_body(src)
    }
}

impl Dialect for NativeDialect {
    fn name(&self) -> &'static str {
        "native"
    }

    fn traits(&self) -> WireTraits {
        WireTraits { handshake: true, cancel: true, releases: Releases::Batched }
    }

    fn framer(&self) -> Box<dyn Framer> {
        Box::new(self.codec.clone())
    }

    fn max_frame_len(&self) -> usize {
        // What the codec takes (it caps the limit at the length prefix's range).
        self.codec.max_frame_len()
    }

    fn set_peer_features(&mut self, features: u64) {
        self.codec.set_peer_features(features);
    }

    fn encode(
        &mut self,
        frame: &Frame<NetRef>,
        boxer: &Boxer<'_>,
        out: &mut Outbox,
        peer_max: Option<usize>,
    ) -> Result<(), ProtocolError> {
        out.push_frame(&self.codec, frame, boxer, self.spill_at, peer_max)
    }

    fn encode_call(
        &mut self,
        call: &CallFrame<'_, NetRef>,
        boxer: &Boxer<'_>,
        out: &mut Outbox,
        peer_max: Option<usize>,
    ) -> Result<(), ProtocolError> {
        out.push_call(&self.codec, call, boxer, peer_max)
    }

    #[inline]
    fn decode<'b>(
        &mut self,
        body: &'b Bytes,
        unboxer: &Unboxer<'_>,
        greeted: bool,
    ) -> Result<Incoming<'b>, ProtocolError> {
        if greeted {
            if let Some(incoming) = self.decode_plain(body, unboxer) {
                return Ok(incoming);
            }
            return self.codec.decode_body_with(body, unboxer).map(Incoming::Frame);
        }
        match self.codec.decode_body_with(body, unboxer) {
            Ok(frame @ Frame::Hello(_)) => Ok(Incoming::Frame(frame)),
            // Not a Hello first: if it is a stock rpyc client's request, say so (that error
            // names the cause, and the close sends no native frame the peer could not read).
            _ if is_rpyc6_request_cut_short(body) => Err(ProtocolError::RpycPeerOnNativeWire),
            decoded => decoded.map(Incoming::Frame),
        }
    }

    fn call_encoding(&self) -> CallEncoding {
        CallEncoding::Native
    }
}
