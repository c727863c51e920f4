//! Encoding of frames: a [`Frame`] and its values into the postcard body PROTOCOL.md describes
//! (no length prefix; [`FrameCodec`](super::FrameCodec) adds it).
//!
//! Two encoders write the same bytes: the direct encoder (`direct`), byte by byte, for the
//! frames that carry a value tree (requests, replies, notifications: nearly every frame) and
//! `Hello`; and the serde route (`serde_route`), which encodes every frame kind and is the
//! reference the direct encoder is held to (`tests`). Both box every [`Value::Ref`] through a
//! [`RefBoxer`], and both keep to a [`Spill`]: the receiver's decode limits and feature bits
//! (refusing what the peer's decoder would refuse, with the same error), and where large byte
//! strings go instead of being copied.
//!
//! Encoding never panics on a value, and never depends on actix or on a connection.

mod direct;
mod serde_route;
#[cfg(test)]
mod tests;

use std::{
    cell::{Cell, RefCell},
    time::Duration,
};

use bytes::{Bytes, BytesMut};

use direct::encode_value_frame;
pub(crate) use direct::{encode_call_frame, local_ref_box, CallFrame};
use serde_route::encode_frame_serde;

use super::{boxing::RefBoxer, limits::DecodeLimits};
use crate::{
    protocol::frame::{feature_name, FEATURES},
    value::Value,
    Frame, ProtocolError,
};

/// Where byte strings of at least `threshold` bytes go while a frame is encoded, instead of
/// being copied into the body buffer: the body gets their length prefix, and the bytes
/// themselves (shared, not copied) are listed with the offset in the buffer they follow.
/// Sending the buffer's pieces with these strings between them gives exactly the bytes of the
/// copying encoding (see [`encode_frame_spilling`]).
#[derive(Debug)]
pub(crate) struct Spill {
    threshold: usize,
    /// Length of the body buffer so far (kept by the flavor).
    written: Cell<usize>,
    strings: RefCell<Vec<(usize, Bytes)>>,
    /// Deepest nesting the encoder accepts (the top value is at depth 0), and the most values
    /// one frame may hold: the receiver's limits ([`DecodeLimits`]), as the decoder counts.
    max_depth: usize,
    max_values: usize,
    /// Values admitted so far.
    values: Cell<usize>,
    /// The feature bits the receiver announced: a value needing another is refused.
    peer_features: u64,
    /// The limit a value went past, if one did.
    exceeded: Cell<Option<Limit>>,
}

/// One of the decode limits an encoder keeps to, or another reason it refuses a value (so that
/// both encoders report the same error).
#[derive(Clone, Copy, Debug)]
enum Limit {
    Depth,
    Values,
    /// A value the receiver did not announce it accepts: needs feature `bit`.
    Feature {
        bit: u64,
        what: &'static str,
    },
    /// A reference inside a value that travels plain (a frozenset or a slice).
    RefInPlain,
}

impl Spill {
    /// Sets aside byte strings of at least `threshold` bytes (`usize::MAX`: none). No limits,
    /// and every value this build knows is accepted (see [`Spill::for_peer`]).
    pub(crate) fn new(threshold: usize) -> Spill {
        Spill::with_limits(threshold, DecodeLimits { max_depth: usize::MAX, max_values: usize::MAX })
    }

    /// [`Spill::new`], refusing what a decoder with `limits` would refuse: a value nested deeper
    /// than `max_depth` ([`ProtocolError::TooDeep`], which also bounds the encoder's recursion)
    /// or a frame holding more than `max_values` values ([`ProtocolError::TooManyValues`]),
    /// counted as the decoder counts them: one per value, a container and a reference included.
    pub(crate) fn with_limits(threshold: usize, limits: DecodeLimits) -> Spill {
        Spill {
            threshold,
            written: Cell::new(0),
            strings: RefCell::new(Vec::new()),
            max_depth: limits.max_depth,
            max_values: limits.max_values,
            values: Cell::new(0),
            peer_features: FEATURES,
            exceeded: Cell::new(None),
        }
    }

    /// This `Spill`, refusing the values that need a feature bit outside `features` (what the
    /// receiver announced): [`ProtocolError::PeerLacksFeature`].
    pub(crate) fn for_peer(mut self, features: u64) -> Spill {
        self.peer_features = features;
        self
    }

    /// Admits a value that needs feature `bit` (`what` names it in the error).
    fn require(&self, bit: u64, what: &'static str) -> Result<(), ProtocolError> {
        if self.peer_features & bit == bit {
            Ok(())
        } else {
            Err(self.exceed(Limit::Feature { bit, what }))
        }
    }

    /// Refuses a reference met inside a plain value.
    fn ref_in_plain(&self) -> ProtocolError {
        self.exceed(Limit::RefInPlain)
    }

    /// How many levels may nest below a value at `depth`.
    fn budget(&self, depth: usize) -> usize {
        self.max_depth.saturating_sub(depth)
    }

    /// Admits one more value, at `depth`; the limit it would pass otherwise (also recorded).
    fn admit(&self, depth: usize) -> Result<(), ProtocolError> {
        if depth > self.max_depth {
            return Err(self.exceed(Limit::Depth));
        }
        self.count(1)
    }

    /// Counts `n` more values (a `Release` pair counts two, as the decoder counts it).
    fn count(&self, n: usize) -> Result<(), ProtocolError> {
        match self.values.get().checked_add(n) {
            Some(total) if total <= self.max_values => {
                self.values.set(total);
                Ok(())
            }
            _ => Err(self.exceed(Limit::Values)),
        }
    }

    /// Records that a value went past `limit`; its error.
    fn exceed(&self, limit: Limit) -> ProtocolError {
        self.exceeded.set(Some(limit));
        self.limit_error(limit)
    }

    /// The limit a value went past, if one did.
    fn exceeded_error(&self) -> Option<ProtocolError> {
        self.exceeded.get().map(|limit| self.limit_error(limit))
    }

    fn limit_error(&self, limit: Limit) -> ProtocolError {
        match limit {
            Limit::Depth => ProtocolError::TooDeep { max: self.max_depth },
            Limit::Values => ProtocolError::TooManyValues { max: self.max_values },
            Limit::Feature { bit, what } => ProtocolError::PeerLacksFeature { feature: feature_name(bit), what },
            Limit::RefInPlain => ProtocolError::BadReference(
                "an object reference inside a frozenset or slice: they carry plain values only".into(),
            ),
        }
    }

    /// The strings set aside, each with the offset in the body buffer it goes at, in order.
    pub(crate) fn into_strings(self) -> Vec<(usize, Bytes)> {
        self.strings.into_inner()
    }

    fn set_aside(&self, bytes: &Bytes) {
        self.set_aside_at(self.written.get(), bytes);
    }

    fn set_aside_at(&self, at: usize, bytes: &Bytes) {
        self.strings.borrow_mut().push((at, bytes.clone()));
    }

    /// Whether a `Value::Bytes` is sent from its own buffer (queued as a segment, freed once
    /// written) rather than copied into the frame: whether it is long enough, whoever else
    /// holds it. A string only the value holds (a method's `ByteBuf` result, handed over
    /// without a copy by `value::into_value`) is no exception: copying it in to free it before
    /// the write makes a large echo markedly slower than sending it from its own buffer.
    fn takes(&self, b: &Bytes) -> bool {
        b.len() >= self.threshold
    }
}

/// Appends the postcard body of `frame` to `dst` (no length prefix), boxing references with
/// `boxer`. On error `dst` may hold a partial body; the caller truncates it.
pub fn encode_frame<R, B: RefBoxer<R>>(frame: &Frame<R>, boxer: &B, dst: &mut BytesMut) -> Result<(), ProtocolError> {
    encode_frame_spilling(frame, boxer, dst, &Spill::new(usize::MAX))
}

/// [`encode_frame`], but byte strings of at least the spill's threshold are not copied into
/// `dst`: `dst` gets their length prefix and `spill` lists them with the offset in `dst` (from
/// its start, not from where this frame starts) where their bytes belong. On error `dst` may
/// hold a partial body and `spill` some strings; the caller drops both.
pub(crate) fn encode_frame_spilling<R, B: RefBoxer<R>>(
    frame: &Frame<R>,
    boxer: &B,
    dst: &mut BytesMut,
    spill: &Spill,
) -> Result<(), ProtocolError> {
    if let Frame::Request { .. } | Frame::Reply { .. } | Frame::Notify { .. } | Frame::Hello(_) = frame {
        return encode_value_frame(frame, boxer, dst, spill);
    }
    encode_frame_serde(frame, boxer, dst, spill)
}

/// Whether `value` is boxed item by item rather than sent as one plain value: it holds a
/// reference (outside a frozenset or slice, which are always plain), or it nests more than
/// `budget` levels further (the depth check then refuses it on the
/// boxed path). The walk stops at `budget`, so a careless depth cannot exhaust the stack
/// here before the depth check sees it.
fn needs_boxing<R>(value: &Value<R>, budget: usize) -> bool {
    match value {
        Value::Ref(_) => true,
        Value::Tuple(items) | Value::List(items) => match budget.checked_sub(1) {
            Some(b) => items.iter().any(|i| needs_boxing(i, b)),
            None => !items.is_empty(),
        },
        Value::Map(pairs) => match budget.checked_sub(1) {
            Some(b) => pairs.iter().any(|(k, v)| needs_boxing(k, b) || needs_boxing(v, b)),
            None => !pairs.is_empty(),
        },
        _ => false,
    }
}

/// A duration as postcard's `Option<u64>` of microseconds (a request's deadline), saturating.
fn micros(d: &Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
