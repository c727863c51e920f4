//! The seam between the session and a wire format: what the session asks of a dialect, and
//! what a dialect tells the session about its wire.
//!
//! The session decides *what* is said (a request, a reply, a release, a close); a dialect
//! decides *how* it looks in bytes: its framing, its value encoding, its reference boxing. A
//! dialect also says which of the session's optional frames its wire has — a handshake, a
//! cancel, batched releases — so that the session never asks it for one it lacks: a wire
//! without a handshake starts greeted, one without a cancel lets an expired request's late
//! reply be dropped, one without batched releases gets each release as a numbered request
//! whose reply is discarded (RPyC's `HANDLE_DEL`).
//!
//! A dialect never touches I/O or the session's tables: the boxer and unboxer it is handed
//! resolve references, and what it encodes goes into the session's [`Outbox`].

use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::boxing::{Boxer, Unboxer};
use crate::{
    error::RemoteError,
    link::CallEncoding,
    object::Object,
    protocol::{CallFrame, Outbox},
    Frame, NetRef, ProtocolError, Value,
};

mod native;
mod rpyc;
#[cfg(test)]
pub(crate) mod sequenced;

pub(crate) use native::NativeDialect;
pub(crate) use rpyc::RpycDialect;

/// Splits a byte stream into frame bodies (the read side of a dialect's framing).
pub(crate) trait Framer {
    /// The next complete body in `src`, taken out of it; `None` when more bytes are needed.
    /// A frame longer than the dialect allows is an error before any room is reserved for it.
    fn body(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError>;
}

/// What a frame body decoded to.
pub(crate) enum Incoming<'b> {
    /// A frame, its references unboxed.
    Frame(Frame<NetRef>),
    /// A reply read by a dialect's fast path (only once the handshake is over).
    Reply { seq: u64, value: Value },
    /// A method call (CALLATTR with a `name`, CALL without) whose target the dialect resolved
    /// to this side's object while decoding (a dialect's fast path); `seq` `None` is one way.
    Call { seq: Option<u64>, object: Object, name: Option<&'b str>, args: Vec<Value>, deadline: Option<Duration> },
    /// A request whose seq was read but which cannot be served (an unknown handler, a
    /// reference this side does not know, a refused operation): answered with `error`, as a
    /// wire without a way to reject a frame does it (RPyC's stock server replies an exception).
    Refuse { seq: u64, error: RemoteError },
}

/// How a dialect's wire gives exported objects back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Releases {
    /// Batched `(instance id, count)` pairs in a frame of their own, no reply.
    Batched,
    /// One numbered request per object, which the peer answers (RPyC's `HANDLE_DEL`).
    Requests,
}

/// What a dialect's wire has besides requests, replies, exceptions and one-way requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WireTraits {
    /// Each side opens with a `Hello` (version, limits, features, root) and nothing else may
    /// come before it; without one a connection is ready at once.
    pub(crate) handshake: bool,
    /// A `Cancel` frame tells the peer to drop a request's work.
    pub(crate) cancel: bool,
    pub(crate) releases: Releases,
}

/// A wire format as the session uses it.
pub(crate) trait Dialect {
    /// The dialect's name in errors and logs (`"native"`, `"rpyc"`).
    fn name(&self) -> &'static str;

    /// What its wire has besides requests and replies.
    fn traits(&self) -> WireTraits;

    /// The read side of its framing, for the connection's reader.
    fn framer(&self) -> Box<dyn Framer>;

    /// The longest frame body it reads (what a `Hello` announces).
    fn max_frame_len(&self) -> usize;

    /// The feature bits the peer announced: what the encoder may send from now on.
    fn set_peer_features(&mut self, _features: u64) {}

    /// Encodes `frame` at the end of `out`, references boxed by `boxer`. A frame whose body
    /// would pass `peer_max` (or the dialect's own limit) is refused, leaving nothing in `out`.
    fn encode(
        &mut self,
        frame: &Frame<NetRef>,
        boxer: &Boxer<'_>,
        out: &mut Outbox,
        peer_max: Option<usize>,
    ) -> Result<(), ProtocolError>;

    /// Encodes a CALLATTR or CALL whose name and arguments were encoded where the call was made
    /// (see [`CallEncoding`]); only a dialect whose [`call_encoding`](Dialect::call_encoding)
    /// is not [`CallEncoding::None`] is handed one.
    fn encode_call(
        &mut self,
        _call: &CallFrame<'_, NetRef>,
        _boxer: &Boxer<'_>,
        _out: &mut Outbox,
        _peer_max: Option<usize>,
    ) -> Result<(), ProtocolError> {
        Err(ProtocolError::Unexpected(format!("the {} dialect encodes no call ahead", self.name())))
    }

    /// Encodes the release of `count` receipts of the peer's object `instance_id` as request
    /// `seq` (only for [`Releases::Requests`]).
    fn encode_release_request(
        &mut self,
        _seq: u64,
        _instance_id: u64,
        _count: u64,
        _out: &mut Outbox,
    ) -> Result<(), ProtocolError> {
        Err(ProtocolError::Unexpected(format!("the {} dialect batches its releases", self.name())))
    }

    /// Decodes one frame body, references unboxed by `unboxer`. `greeted`: the handshake is
    /// over (a fast path may only be taken then).
    fn decode<'b>(
        &mut self,
        body: &'b Bytes,
        unboxer: &Unboxer<'_>,
        greeted: bool,
    ) -> Result<Incoming<'b>, ProtocolError>;

    /// How handles may encode a call's name and arguments on the caller's thread.
    fn call_encoding(&self) -> CallEncoding {
        CallEncoding::None
    }
}

/// The dialect a session speaks: the native one called directly (its hot paths inline into the
/// session's), any other through its trait object.
pub(crate) enum AnyDialect {
    Native(NativeDialect),
    Other(Box<dyn Dialect>),
}

macro_rules! forward {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            AnyDialect::Native($d) => $e,
            AnyDialect::Other($d) => $e,
        }
    };
}

impl Dialect for AnyDialect {
    fn name(&self) -> &'static str {
        forward!(self, d => d.name())
    }

    fn traits(&self) -> WireTraits {
        forward!(self, d => d.traits())
    }

    fn framer(&self) -> Box<dyn Framer> {
        forward!(self, d => d.framer())
    }

    fn max_frame_len(&self) -> usize {
        forward!(self, d => d.max_frame_len())
    }

    fn set_peer_features(&mut self, features: u64) {
        forward!(self, d => d.set_peer_features(features))
    }

    #[inline]
    fn encode(
        &mut self,
        frame: &Frame<NetRef>,
        boxer: &Boxer<'_>,
        out: &mut Outbox,
        peer_max: Option<usize>,
    ) -> Result<(), ProtocolError> {
        forward!(self, d => d.encode(frame, boxer, out, peer_max))
    }

    #[inline]
    fn encode_call(
        &mut self,
        call: &CallFrame<'_, NetRef>,
        boxer: &Boxer<'_>,
        out: &mut Outbox,
        peer_max: Option<usize>,
    ) -> Result<(), ProtocolError> {
        forward!(self, d => d.encode_call(call, boxer, out, peer_max))
    }

    fn encode_release_request(
        &mut self,
        seq: u64,
        instance_id: u64,
        count: u64,
        out: &mut Outbox,
    ) -> Result<(), ProtocolError> {
        forward!(self, d => d.encode_release_request(seq, instance_id, count, out))
    }

    #[inline]
    fn decode<'b>(
        &mut self,
        body: &'b Bytes,
        unboxer: &Unboxer<'_>,
        greeted: bool,
    ) -> Result<Incoming<'b>, ProtocolError> {
        forward!(self, d => d.decode(body, unboxer, greeted))
    }

    fn call_encoding(&self) -> CallEncoding {
        forward!(self, d => d.call_encoding())
    }
}
