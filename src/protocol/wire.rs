//! Byte-level encoding of frames and boxed values on top of postcard (PROTOCOL.md).
//!
//! Encoding boxes every [`Value::Ref`] through a [`RefBoxer`] (the connection's export table);
//! decoding resolves each reference through a [`RefUnboxer`]. The protocol layer itself only
//! knows [`WireRef`]s, handled by [`WireRefs`].
//!
//! Decoding must never panic, must bound nesting depth and value count, and must not copy byte
//! strings: a decoded `Value::Bytes` shares the frame's buffer.

use std::{
    borrow::Cow,
    cell::{Cell, RefCell},
    fmt,
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};
use serde::{
    de::{self, DeserializeSeed, EnumAccess, SeqAccess, VariantAccess, Visitor},
    ser::{self, SerializeSeq, SerializeStructVariant, SerializeTuple},
    Deserialize, Serialize, Serializer,
};

use super::{
    frame::{feature_name, Hello, FEATURES, FEATURE_PY_VALUES},
    Handle, EXC_STOP_ITERATION, LABEL_LIST, LABEL_LOCAL_REF, LABEL_MAP, LABEL_REMOTE_REF, LABEL_TUPLE, LABEL_VALUE,
};
use crate::{
    error::{ProtocolError, RemoteError},
    value::{BigInt, Data, IdPack, RefLabel, Value, WireRef},
    Frame,
};

/// Plain-value tag: `None`.
pub const TAG_NONE: u8 = 0;
/// Plain-value tag: a boolean (one byte, 0 or 1).
pub const TAG_BOOL: u8 = 1;
/// Plain-value tag: an `i64` (zigzag varint).
pub const TAG_INT: u8 = 2;
/// Plain-value tag: a big integer (canonical decimal string).
pub const TAG_BIGINT: u8 = 3;
/// Plain-value tag: an `f64` (8 bytes, little-endian).
pub const TAG_FLOAT: u8 = 4;
/// Plain-value tag: a complex number (two `f64`).
pub const TAG_COMPLEX: u8 = 5;
/// Plain-value tag: a UTF-8 string (varint length + bytes).
pub const TAG_STR: u8 = 6;
/// Plain-value tag: a byte string (varint length + bytes).
pub const TAG_BYTES: u8 = 7;
/// Plain-value tag: a tuple (varint count + plain values).
pub const TAG_TUPLE: u8 = 8;
/// Plain-value tag: a list (varint count + plain values).
pub const TAG_LIST: u8 = 9;
/// Plain-value tag: a map (varint count + key/value plain pairs).
pub const TAG_MAP: u8 = 10;
/// Plain-value tag: Python's `frozenset` (varint count + plain values, in the order sent).
/// Only to a peer that announced [`FEATURE_PY_VALUES`].
pub const TAG_FROZENSET: u8 = 11;
/// Plain-value tag: Python's `slice` (three plain values: start, stop, step). Only to a peer
/// that announced [`FEATURE_PY_VALUES`].
pub const TAG_SLICE: u8 = 12;
/// Plain-value tag: Python's `Ellipsis` (nothing follows). Only to a peer that announced
/// [`FEATURE_PY_VALUES`].
pub const TAG_ELLIPSIS: u8 = 13;
/// Plain-value tag: Python's `NotImplemented` (nothing follows). Only to a peer that announced
/// [`FEATURE_PY_VALUES`].
pub const TAG_NOT_IMPLEMENTED: u8 = 14;

/// Turns a reference into its wire form when a value is sent (the exporter's side of boxing).
pub trait RefBoxer<R> {
    /// The label and identity to send for `r`; an error aborts the encoding. The identity is
    /// borrowed where it can be (it is only written out).
    fn box_ref<'r>(&self, r: &'r R) -> Result<(RefLabel, Cow<'r, IdPack>), String>;

    /// `r` already boxed — its label byte and identity, the bytes [`box_ref`](Self::box_ref)'s
    /// answer is written as — for a reference that keeps them (a netref names its object this
    /// way in every call on it). Only for references whose boxing counts nothing: the bytes
    /// are written instead of calling `box_ref`. `None`, the default, boxes with `box_ref`.
    fn boxed<'a>(&'a self, _r: &'a R) -> Option<&'a [u8]> {
        None
    }
}

/// Turns a received wire reference into a reference (the importer's side of unboxing).
pub trait RefUnboxer {
    /// What a reference unboxes to.
    type Ref;
    /// The reference for `wire`; an error (e.g. a `LOCAL_REF` never exported) fails the frame.
    /// `id` borrows the frame's bytes: most references resolve without copying the type name
    /// (a `LOCAL_REF` by its instance id, a known `REMOTE_REF` to its existing proxy).
    fn unbox_ref(&self, label: RefLabel, id: IdPackRef<'_>) -> Result<Self::Ref, String>;
}

/// An [`IdPack`] as decoded, its type name borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct IdPackRef<'a> {
    /// The object's type as `"module.Type"`.
    pub type_name: &'a str,
    /// Identifies the type on the exporting side.
    pub class_id: u64,
    /// Identifies the object on the exporting side.
    pub instance_id: u64,
}

impl IdPackRef<'_> {
    /// An owned copy.
    pub fn to_id_pack(&self) -> IdPack {
        IdPack { type_name: self.type_name.to_owned(), class_id: self.class_id, instance_id: self.instance_id }
    }
}

/// The identity boxer of the protocol layer: [`WireRef`]s go out and come back as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct WireRefs;

impl RefBoxer<WireRef> for WireRefs {
    fn box_ref<'r>(&self, r: &'r WireRef) -> Result<(RefLabel, Cow<'r, IdPack>), String> {
        Ok((r.label, Cow::Borrowed(&r.id)))
    }
}

impl RefUnboxer for WireRefs {
    type Ref = WireRef;

    fn unbox_ref(&self, label: RefLabel, id: IdPackRef<'_>) -> Result<WireRef, String> {
        Ok(WireRef { label, id: id.to_id_pack() })
    }
}

/// Bounds on what one decoded frame may hold, besides its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Deepest nesting of containers (default 64).
    pub max_depth: usize,
    /// Most values (every scalar and container counts one) in one frame (default 1,048,576).
    pub max_values: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits { max_depth: 64, max_values: 1 << 20 }
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// Writes into a `BytesMut`, keeping `spill.written` at the buffer's length so a byte string
/// set aside knows where it belongs.
struct BytesMutFlavor<'a> {
    dst: &'a mut BytesMut,
    written: &'a Cell<usize>,
}

impl postcard::ser_flavors::Flavor for BytesMutFlavor<'_> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.dst.put_u8(data);
        self.written.set(self.dst.len());
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.dst.extend_from_slice(data);
        self.written.set(self.dst.len());
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

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
    /// the write cost a 1 MiB `ByteBuf` echo a third of its speed (pinned, 612–616 MiB/s
    /// against 994–1422).
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

/// The serde route for every frame kind: the reference for the direct encoder below, and the
/// encoder of the frames that carry no value tree.
fn encode_frame_serde<R, B: RefBoxer<R>>(
    frame: &Frame<R>,
    boxer: &B,
    dst: &mut BytesMut,
    spill: &Spill,
) -> Result<(), ProtocolError> {
    let failure = RefCell::new(None);
    spill.written.set(dst.len());
    let ser = FrameSer { frame, ctx: &EncodeCtx { boxer, failure: &failure, spill } };
    postcard::serialize_with_flavor(&ser, BytesMutFlavor { dst, written: &spill.written }).map_err(|e| {
        failure
            .into_inner()
            .or_else(|| spill.exceeded_error())
            .unwrap_or_else(|| ProtocolError::Malformed(format!("cannot encode frame: {e}")))
    })
}

// The direct encoder: the frames that carry a value tree (requests, replies, notifications:
// nearly every frame), and `Hello`, written byte by byte without serde's machinery, in exactly
// the bytes the serde route (`FrameSer`) gives — a unit test holds the two to that.

/// Whether `value` is boxed item by item rather than sent as one plain value: it holds a
/// reference (outside a frozenset or slice, which are always plain), or it nests more than
/// `budget` levels further (the depth check then refuses it on
/// the boxed path). The walk stops at `budget`, so a careless depth cannot exhaust the stack
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

fn put_varint(dst: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        dst.put_u8(v as u8 | 0x80);
        v >>= 7;
    }
    dst.put_u8(v as u8);
}

fn put_str(dst: &mut BytesMut, s: &str) {
    put_varint(dst, s.len() as u64);
    dst.extend_from_slice(s.as_bytes());
}

fn encode_value_frame<R, B: RefBoxer<R>>(
    frame: &Frame<R>,
    boxer: &B,
    dst: &mut BytesMut,
    spill: &Spill,
) -> Result<(), ProtocolError> {
    match frame {
        Frame::Request { seq, handle, args, deadline } => {
            put_varint(dst, 1);
            put_varint(dst, *seq);
            dst.put_u8(*handle as u8);
            put_boxed(dst, args, 0, boxer, spill)?;
            put_deadline(dst, deadline);
        }
        Frame::Reply { seq, value } => {
            put_varint(dst, 2);
            put_varint(dst, *seq);
            put_boxed(dst, value, 0, boxer, spill)?;
        }
        Frame::Notify { handle, args } => {
            put_varint(dst, 7);
            dst.put_u8(*handle as u8);
            put_boxed(dst, args, 0, boxer, spill)?;
        }
        // Once per connection each way, but a connection's set-up is a benchmark of its own.
        Frame::Hello(hello) => {
            put_varint(dst, 0);
            put_varint(dst, u64::from(hello.version));
            put_varint(dst, hello.features);
            put_varint(dst, hello.limits.max_frame_len);
            put_varint(dst, hello.limits.max_concurrent_requests);
            match &hello.root {
                None => dst.put_u8(0),
                Some(root) => {
                    dst.put_u8(1);
                    put_str(dst, &root.type_name);
                    put_varint(dst, root.class_id);
                    put_varint(dst, root.instance_id);
                }
            }
        }
        other => return encode_frame_serde(other, boxer, dst, spill),
    }
    Ok(())
}

/// A CALLATTR or CALL request (`seq` given) or notification (`seq` `None`) on `target`, whose
/// items after the target were encoded ahead by
/// [`encode_call_tail`](super::plain::encode_call_tail) into `tail`.
pub(crate) struct CallFrame<'a, R> {
    pub(crate) seq: Option<u64>,
    pub(crate) handle: Handle,
    pub(crate) target: &'a R,
    pub(crate) tail: &'a [u8],
    pub(crate) deadline: Option<Duration>,
}

/// The bytes [`put_ref`] writes for a `LOCAL_REF` to `id`: a netref names its object this way
/// in every call on it, so it encodes them once ([`RefBoxer::boxed`]).
pub(crate) fn local_ref_box(id: &IdPack) -> Box<[u8]> {
    let mut dst = BytesMut::with_capacity(1 + 1 + id.type_name.len() + 2 * 10);
    dst.put_u8(LABEL_LOCAL_REF);
    put_id(&mut dst, id);
    dst.to_vec().into_boxed_slice()
}

/// Appends the body of a CALLATTR or CALL request (`seq` given) or notification (`seq` `None`)
/// on `target`, whose other items were encoded ahead by
/// [`encode_call_tail`](super::plain::encode_call_tail): the same bytes as the general route
/// gives for `Tuple[Ref(target), Str(name), Tuple(args), None]` (CALLATTR) or
/// `Tuple[Ref(target), Tuple(args), None]` (CALL).
pub(crate) fn encode_call_frame<R, B: RefBoxer<R>>(
    call: &CallFrame<'_, R>,
    boxer: &B,
    dst: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let &CallFrame { seq, handle, target, tail, deadline } = call;
    // Checked before anything is written.
    let items = match handle {
        Handle::CallAttr => 4,
        Handle::Call => 3,
        other => return Err(ProtocolError::Unexpected(format!("a pre-encoded call cannot be a {other} request"))),
    };
    match seq {
        Some(seq) => {
            put_varint(dst, 1);
            put_varint(dst, seq);
        }
        None => put_varint(dst, 7),
    }
    dst.put_u8(handle as u8);
    dst.put_u8(LABEL_TUPLE);
    put_varint(dst, items);
    put_ref(dst, target, boxer)?;
    dst.extend_from_slice(tail);
    if seq.is_some() {
        put_deadline(dst, &deadline);
    }
    Ok(())
}

/// A reference, boxed: its label, then its identity (copied when the reference keeps them).
#[inline]
fn put_ref<R, B: RefBoxer<R>>(dst: &mut BytesMut, r: &R, boxer: &B) -> Result<(), ProtocolError> {
    match boxer.boxed(r) {
        Some(boxed) => {
            dst.extend_from_slice(boxed);
            Ok(())
        }
        None => put_new_ref(dst, r, boxer),
    }
}

/// [`put_ref`] for a reference boxed by [`RefBoxer::box_ref`].
fn put_new_ref<R, B: RefBoxer<R>>(dst: &mut BytesMut, r: &R, boxer: &B) -> Result<(), ProtocolError> {
    let (label, id) = boxer.box_ref(r).map_err(ProtocolError::BadReference)?;
    dst.put_u8(match label {
        RefLabel::Local => LABEL_LOCAL_REF,
        RefLabel::Remote => LABEL_REMOTE_REF,
    });
    put_id(dst, &id);
    Ok(())
}

/// An `id_pack`: type name, class id, instance id.
fn put_id(dst: &mut BytesMut, id: &IdPack) {
    put_str(dst, &id.type_name);
    put_varint(dst, id.class_id);
    put_varint(dst, id.instance_id);
}

/// A request's deadline: postcard's `Option<u64>` of microseconds.
fn put_deadline(dst: &mut BytesMut, deadline: &Option<Duration>) {
    match micros(deadline) {
        None => dst.put_u8(0),
        Some(us) => {
            dst.put_u8(1);
            put_varint(dst, us);
        }
    }
}

fn put_boxed<R, B: RefBoxer<R>>(
    dst: &mut BytesMut,
    value: &Value<R>,
    depth: usize,
    boxer: &B,
    spill: &Spill,
) -> Result<(), ProtocolError> {
    // A plain value is admitted by `put_plain`, everything else here (once each: the decoder
    // counts one per value).
    match value {
        Value::Ref(r) => {
            spill.admit(depth)?;
            put_ref(dst, r, boxer)?;
        }
        v if !needs_boxing(v, spill.budget(depth)) => {
            dst.put_u8(LABEL_VALUE);
            put_plain(dst, v, depth, spill)?;
        }
        Value::Tuple(items) | Value::List(items) => {
            spill.admit(depth)?;
            dst.put_u8(if matches!(value, Value::Tuple(_)) { LABEL_TUPLE } else { LABEL_LIST });
            put_varint(dst, items.len() as u64);
            for item in items {
                put_boxed(dst, item, depth + 1, boxer, spill)?;
            }
        }
        Value::Map(pairs) => {
            spill.admit(depth)?;
            dst.put_u8(LABEL_MAP);
            put_varint(dst, pairs.len() as u64);
            for (k, v) in pairs {
                put_boxed(dst, k, depth + 1, boxer, spill)?;
                put_boxed(dst, v, depth + 1, boxer, spill)?;
            }
        }
        // Scalars never need boxing, so they took the plain branch.
        _ => return Err(ProtocolError::Malformed("scalar value with a reference".into())),
    }
    Ok(())
}

fn put_plain<R>(dst: &mut BytesMut, value: &Value<R>, depth: usize, spill: &Spill) -> Result<(), ProtocolError> {
    spill.admit(depth)?;
    match value {
        Value::None => dst.put_u8(TAG_NONE),
        Value::Bool(b) => {
            dst.put_u8(TAG_BOOL);
            dst.put_u8(u8::from(*b));
        }
        Value::Int(i) => {
            dst.put_u8(TAG_INT);
            put_varint(dst, ((i << 1) ^ (i >> 63)) as u64);
        }
        Value::BigInt(b) => {
            dst.put_u8(TAG_BIGINT);
            put_str(dst, b.as_str());
        }
        Value::Float(x) => {
            dst.put_u8(TAG_FLOAT);
            dst.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Value::Complex(re, im) => {
            dst.put_u8(TAG_COMPLEX);
            dst.extend_from_slice(&re.to_bits().to_le_bytes());
            dst.extend_from_slice(&im.to_bits().to_le_bytes());
        }
        Value::Str(text) => {
            dst.put_u8(TAG_STR);
            put_str(dst, text);
        }
        Value::Bytes(b) => {
            dst.put_u8(TAG_BYTES);
            put_varint(dst, b.len() as u64);
            if spill.takes(b) {
                spill.set_aside_at(dst.len(), b);
            } else {
                dst.extend_from_slice(b);
            }
        }
        Value::Tuple(items) | Value::List(items) => {
            dst.put_u8(if matches!(value, Value::Tuple(_)) { TAG_TUPLE } else { TAG_LIST });
            put_varint(dst, items.len() as u64);
            for item in items {
                put_plain(dst, item, depth + 1, spill)?;
            }
        }
        Value::Map(pairs) => {
            dst.put_u8(TAG_MAP);
            put_varint(dst, pairs.len() as u64);
            for (k, v) in pairs {
                put_plain(dst, k, depth + 1, spill)?;
                put_plain(dst, v, depth + 1, spill)?;
            }
        }
        Value::FrozenSet(items) => {
            spill.require(FEATURE_PY_VALUES, "frozenset")?;
            dst.put_u8(TAG_FROZENSET);
            put_varint(dst, items.len() as u64);
            for item in items {
                put_plain(dst, item, depth + 1, spill)?;
            }
        }
        Value::Slice(parts) => {
            spill.require(FEATURE_PY_VALUES, "slice")?;
            dst.put_u8(TAG_SLICE);
            for part in parts.iter() {
                put_plain(dst, part, depth + 1, spill)?;
            }
        }
        Value::Ellipsis => {
            spill.require(FEATURE_PY_VALUES, "Ellipsis")?;
            dst.put_u8(TAG_ELLIPSIS);
        }
        Value::NotImplemented => {
            spill.require(FEATURE_PY_VALUES, "NotImplemented")?;
            dst.put_u8(TAG_NOT_IMPLEMENTED);
        }
        // Only inside a frozenset or slice (everything else holding a reference is boxed).
        Value::Ref(_) => return Err(spill.ref_in_plain()),
    }
    Ok(())
}

struct EncodeCtx<'a, B> {
    boxer: &'a B,
    failure: &'a RefCell<Option<ProtocolError>>,
    spill: &'a Spill,
}

impl<B> EncodeCtx<'_, B> {
    fn fail<E: ser::Error>(&self, e: ProtocolError) -> E {
        let text = e.to_string();
        self.failure.borrow_mut().get_or_insert(e);
        E::custom(text)
    }
}

struct FrameSer<'a, R, B> {
    frame: &'a Frame<R>,
    ctx: &'a EncodeCtx<'a, B>,
}

fn micros(d: &Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl<R, B: RefBoxer<R>> Serialize for FrameSer<'_, R, B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.frame {
            Frame::Hello(h) => s.serialize_newtype_variant("Frame", 0, "Hello", h),
            Frame::Request { seq, handle, args, deadline } => {
                let mut v = s.serialize_struct_variant("Frame", 1, "Request", 4)?;
                v.serialize_field("seq", seq)?;
                v.serialize_field("handle", &(*handle as u8))?;
                v.serialize_field("args", &BoxedSer { value: args, ctx: self.ctx, depth: 0 })?;
                v.serialize_field("deadline", &micros(deadline))?;
                v.end()
            }
            Frame::Reply { seq, value } => {
                let mut v = s.serialize_struct_variant("Frame", 2, "Reply", 2)?;
                v.serialize_field("seq", seq)?;
                v.serialize_field("value", &BoxedSer { value, ctx: self.ctx, depth: 0 })?;
                v.end()
            }
            Frame::Exception { seq, error } => {
                let mut v = s.serialize_struct_variant("Frame", 3, "Exception", 2)?;
                v.serialize_field("seq", seq)?;
                v.serialize_field("error", &ErrorSer(error, self.ctx.spill))?;
                v.end()
            }
            Frame::Cancel { seq } => {
                let mut v = s.serialize_struct_variant("Frame", 4, "Cancel", 1)?;
                v.serialize_field("seq", seq)?;
                v.end()
            }
            Frame::Release { refs } => {
                self.ctx.spill.count(refs.len().saturating_mul(2)).map_err(ser::Error::custom)?;
                let mut v = s.serialize_struct_variant("Frame", 5, "Release", 1)?;
                v.serialize_field("refs", refs)?;
                v.end()
            }
            Frame::Close { reason } => {
                let mut v = s.serialize_struct_variant("Frame", 6, "Close", 1)?;
                v.serialize_field("reason", reason)?;
                v.end()
            }
            Frame::Notify { handle, args } => {
                let mut v = s.serialize_struct_variant("Frame", 7, "Notify", 2)?;
                v.serialize_field("handle", &(*handle as u8))?;
                v.serialize_field("args", &BoxedSer { value: args, ctx: self.ctx, depth: 0 })?;
                v.end()
            }
        }
    }
}

/// Exception payload: code 0 = full error (kind, message, args, traceback); code
/// `EXC_STOP_ITERATION` (1) = end of iteration, nothing follows.
struct ErrorSer<'a>(&'a RemoteError, &'a Spill);

impl Serialize for ErrorSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        if e.is_stop_iteration() && e.message.is_empty() && e.args.is_empty() && e.traceback.is_empty() {
            return s.serialize_unit_variant("Exception", u32::from(EXC_STOP_ITERATION), "StopIteration");
        }
        let mut v = s.serialize_struct_variant("Exception", 0, "Error", 4)?;
        v.serialize_field("kind", &e.kind)?;
        v.serialize_field("message", &e.message)?;
        v.serialize_field("args", &PlainListSer(&e.args, self.1))?;
        v.serialize_field("traceback", &e.traceback)?;
        v.end()
    }
}

struct PlainListSer<'a>(&'a [Data], &'a Spill);

impl Serialize for PlainListSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // The list is a value at depth 0 (as the decoder counts it), its items at 1.
        self.1.admit(0).map_err(ser::Error::custom)?;
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&PlainSer(item, self.1, 1))?;
        }
        seq.end()
    }
}

/// A boxed value: a label, then what the label announces.
struct BoxedSer<'a, R, B> {
    value: &'a Value<R>,
    ctx: &'a EncodeCtx<'a, B>,
    depth: usize,
}

impl<R, B: RefBoxer<R>> Serialize for BoxedSer<'_, R, B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // A plain value is admitted by `PlainSer`, everything else here (once each).
        let admit = || self.ctx.spill.admit(self.depth).map_err(ser::Error::custom);
        let mut t = s.serialize_tuple(2)?;
        match self.value {
            Value::Ref(r) => {
                admit()?;
                let (label, id) =
                    self.ctx.boxer.box_ref(r).map_err(|m| self.ctx.fail(ProtocolError::BadReference(m)))?;
                let label = match label {
                    RefLabel::Local => LABEL_LOCAL_REF,
                    RefLabel::Remote => LABEL_REMOTE_REF,
                };
                t.serialize_element(&label)?;
                t.serialize_element(&*id)?;
            }
            v if !needs_boxing(v, self.ctx.spill.budget(self.depth)) => {
                t.serialize_element(&LABEL_VALUE)?;
                t.serialize_element(&PlainSer(v, self.ctx.spill, self.depth))?;
            }
            Value::Tuple(items) | Value::List(items) => {
                admit()?;
                let label = if matches!(self.value, Value::Tuple(_)) { LABEL_TUPLE } else { LABEL_LIST };
                t.serialize_element(&label)?;
                t.serialize_element(&BoxedSeqSer { items, ctx: self.ctx, depth: self.depth + 1 })?;
            }
            Value::Map(pairs) => {
                admit()?;
                t.serialize_element(&LABEL_MAP)?;
                t.serialize_element(&BoxedPairsSer { pairs, ctx: self.ctx, depth: self.depth + 1 })?;
            }
            // Scalars never need boxing, so they took the plain branch.
            _ => return Err(self.ctx.fail(ProtocolError::Malformed("scalar value with a reference".into()))),
        }
        t.end()
    }
}

/// Boxed items, each at `depth`.
struct BoxedSeqSer<'a, R, B> {
    items: &'a [Value<R>],
    ctx: &'a EncodeCtx<'a, B>,
    depth: usize,
}

impl<R, B: RefBoxer<R>> Serialize for BoxedSeqSer<'_, R, B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.items.len()))?;
        for value in self.items {
            seq.serialize_element(&BoxedSer { value, ctx: self.ctx, depth: self.depth })?;
        }
        seq.end()
    }
}

/// Boxed keys and values, each at `depth`.
struct BoxedPairsSer<'a, R, B> {
    pairs: &'a [(Value<R>, Value<R>)],
    ctx: &'a EncodeCtx<'a, B>,
    depth: usize,
}

impl<R, B: RefBoxer<R>> Serialize for BoxedPairsSer<'_, R, B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.pairs.len()))?;
        for (k, v) in self.pairs {
            let (k, v) = (
                BoxedSer { value: k, ctx: self.ctx, depth: self.depth },
                BoxedSer { value: v, ctx: self.ctx, depth: self.depth },
            );
            seq.serialize_element(&(k, v))?;
        }
        seq.end()
    }
}

/// A plain value at a depth: a tag, then the content. Never holds a reference.
struct PlainSer<'a, R>(&'a Value<R>, &'a Spill, usize);

impl<R> Serialize for PlainSer<'_, R> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.1.admit(self.2).map_err(ser::Error::custom)?;
        let mut t = s.serialize_tuple(3)?;
        match self.0 {
            Value::None => t.serialize_element(&TAG_NONE)?,
            Value::Bool(b) => {
                t.serialize_element(&TAG_BOOL)?;
                t.serialize_element(b)?;
            }
            Value::Int(i) => {
                t.serialize_element(&TAG_INT)?;
                t.serialize_element(i)?;
            }
            Value::BigInt(b) => {
                t.serialize_element(&TAG_BIGINT)?;
                t.serialize_element(b.as_str())?;
            }
            Value::Float(x) => {
                t.serialize_element(&TAG_FLOAT)?;
                t.serialize_element(x)?;
            }
            Value::Complex(re, im) => {
                t.serialize_element(&TAG_COMPLEX)?;
                t.serialize_element(re)?;
                t.serialize_element(im)?;
            }
            Value::Str(text) => {
                t.serialize_element(&TAG_STR)?;
                t.serialize_element(text.as_str())?;
            }
            // See `Spill::takes`.
            Value::Bytes(b) if self.1.takes(b) => {
                t.serialize_element(&TAG_BYTES)?;
                // The length prefix postcard gives a byte string (a varint, like a `u64`); the
                // bytes follow out of line.
                t.serialize_element(&(b.len() as u64))?;
                self.1.set_aside(b);
            }
            Value::Bytes(b) => {
                t.serialize_element(&TAG_BYTES)?;
                t.serialize_element(serde_bytes::Bytes::new(b))?;
            }
            Value::Tuple(items) | Value::List(items) => {
                let tag = if matches!(self.0, Value::Tuple(_)) { TAG_TUPLE } else { TAG_LIST };
                t.serialize_element(&tag)?;
                t.serialize_element(&PlainSeqSer(items, self.1, self.2 + 1))?;
            }
            Value::Map(pairs) => {
                t.serialize_element(&TAG_MAP)?;
                t.serialize_element(&PlainPairsSer(pairs, self.1, self.2 + 1))?;
            }
            Value::FrozenSet(items) => {
                self.1.require(FEATURE_PY_VALUES, "frozenset").map_err(ser::Error::custom)?;
                t.serialize_element(&TAG_FROZENSET)?;
                t.serialize_element(&PlainSeqSer(items, self.1, self.2 + 1))?;
            }
            Value::Slice(parts) => {
                self.1.require(FEATURE_PY_VALUES, "slice").map_err(ser::Error::custom)?;
                t.serialize_element(&TAG_SLICE)?;
                for part in parts.iter() {
                    t.serialize_element(&PlainSer(part, self.1, self.2 + 1))?;
                }
            }
            Value::Ellipsis => {
                self.1.require(FEATURE_PY_VALUES, "Ellipsis").map_err(ser::Error::custom)?;
                t.serialize_element(&TAG_ELLIPSIS)?;
            }
            Value::NotImplemented => {
                self.1.require(FEATURE_PY_VALUES, "NotImplemented").map_err(ser::Error::custom)?;
                t.serialize_element(&TAG_NOT_IMPLEMENTED)?;
            }
            Value::Ref(_) => return Err(ser::Error::custom(self.1.ref_in_plain())),
        }
        t.end()
    }
}

/// Plain items, each at the given depth.
struct PlainSeqSer<'a, R>(&'a [Value<R>], &'a Spill, usize);

impl<R> Serialize for PlainSeqSer<'_, R> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0 {
            seq.serialize_element(&PlainSer(v, self.1, self.2))?;
        }
        seq.end()
    }
}

/// Plain keys and values, each at the given depth.
struct PlainPairsSer<'a, R>(&'a [(Value<R>, Value<R>)], &'a Spill, usize);

impl<R> Serialize for PlainPairsSer<'_, R> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (k, v) in self.0 {
            seq.serialize_element(&(PlainSer(k, self.1, self.2), PlainSer(v, self.1, self.2)))?;
        }
        seq.end()
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Decodes one frame body (no length prefix) from `src`, resolving references with `unboxer`.
///
/// Byte strings in the result share `src`'s buffer. Every malformed input gives an error.
pub fn decode_frame<U: RefUnboxer>(
    src: &Bytes,
    limits: &DecodeLimits,
    unboxer: &U,
) -> Result<Frame<U::Ref>, ProtocolError> {
    let ctx = DecodeCtx { src, limits, unboxer, values: Cell::new(0), failure: RefCell::new(None) };
    let mut de = postcard::Deserializer::from_bytes(src);
    let frame = match (FrameSeed { ctx: &ctx }).deserialize(&mut de) {
        Ok(frame) => frame,
        Err(e) => return Err(ctx.failure.into_inner().unwrap_or_else(|| ProtocolError::Malformed(e.to_string()))),
    };
    match de.finalize() {
        Ok([]) => Ok(frame),
        Ok(rest) => Err(ProtocolError::TrailingBytes(rest.len())),
        Err(e) => Err(ProtocolError::Malformed(e.to_string())),
    }
}

struct DecodeCtx<'a, U> {
    src: &'a Bytes,
    limits: &'a DecodeLimits,
    unboxer: &'a U,
    values: Cell<usize>,
    failure: RefCell<Option<ProtocolError>>,
}

impl<U> DecodeCtx<'_, U> {
    fn fail<E: de::Error>(&self, e: ProtocolError) -> E {
        let text = e.to_string();
        self.failure.borrow_mut().get_or_insert(e);
        E::custom(text)
    }

    /// Refuses a container announcing more items than the whole frame may hold (before any
    /// allocation); its items are then counted one by one as they are read.
    fn check_announced<E: de::Error>(&self, n: u64) -> Result<(), E> {
        if usize::try_from(n).map_or(true, |n| n > self.limits.max_values) {
            Err(self.fail(ProtocolError::TooManyValues { max: self.limits.max_values }))
        } else {
            Ok(())
        }
    }

    /// Counts `n` more values against the frame's budget.
    fn count<E: de::Error>(&self, n: u64) -> Result<(), E> {
        let total = usize::try_from(n).ok().and_then(|n| n.checked_add(self.values.get()));
        match total {
            Some(total) if total <= self.limits.max_values => {
                self.values.set(total);
                Ok(())
            }
            _ => Err(self.fail(ProtocolError::TooManyValues { max: self.limits.max_values })),
        }
    }

    fn enter<E: de::Error>(&self, depth: usize) -> Result<(), E> {
        if depth > self.limits.max_depth {
            Err(self.fail(ProtocolError::TooDeep { max: self.limits.max_depth }))
        } else {
            Ok(())
        }
    }
}

fn missing<E: de::Error>() -> E {
    E::custom("frame body ends early")
}

/// Reads the next element of a postcard "tuple" (a plain run of fields).
fn next<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?.ok_or_else(missing)
}

fn next_seed<'de, A: SeqAccess<'de>, T: DeserializeSeed<'de>>(seq: &mut A, seed: T) -> Result<T::Value, A::Error> {
    seq.next_element_seed(seed)?.ok_or_else(missing)
}

struct FrameSeed<'a, 'c, U> {
    ctx: &'a DecodeCtx<'c, U>,
}

impl<'de, U: RefUnboxer> DeserializeSeed<'de> for FrameSeed<'_, '_, U> {
    type Value = Frame<U::Ref>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Frame<U::Ref>, D::Error> {
        d.deserialize_enum("Frame", &[], self)
    }
}

impl<'de, U: RefUnboxer> Visitor<'de> for FrameSeed<'_, '_, U> {
    type Value = Frame<U::Ref>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a netref frame")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Frame<U::Ref>, A::Error> {
        let (kind, variant): (u32, _) = data.variant()?;
        match kind {
            0 => variant.newtype_variant::<Hello>().map(Frame::Hello),
            1..=7 => variant.tuple_variant(4, FrameBody { kind, ctx: self.ctx }),
            _ => Err(self.ctx.fail(ProtocolError::UnknownFrameKind(kind))),
        }
    }
}

struct FrameBody<'a, 'c, U> {
    kind: u32,
    ctx: &'a DecodeCtx<'c, U>,
}

impl<'de, U: RefUnboxer> Visitor<'de> for FrameBody<'_, '_, U> {
    type Value = Frame<U::Ref>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a frame body")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Frame<U::Ref>, A::Error> {
        let ctx = self.ctx;
        Ok(match self.kind {
            1 => {
                let seq_no = next(&mut seq)?;
                let handle = Handle::try_from(next::<_, u8>(&mut seq)?).map_err(|e| ctx.fail(e.into()))?;
                let args = next_seed(&mut seq, BoxedSeed { ctx, depth: 0 })?;
                let deadline = next::<_, Option<u64>>(&mut seq)?.map(Duration::from_micros);
                Frame::Request { seq: seq_no, handle, args, deadline }
            }
            2 => Frame::Reply { seq: next(&mut seq)?, value: next_seed(&mut seq, BoxedSeed { ctx, depth: 0 })? },
            3 => Frame::Exception { seq: next(&mut seq)?, error: next_seed(&mut seq, ErrorSeed { ctx })? },
            4 => Frame::Cancel { seq: next(&mut seq)? },
            5 => Frame::Release { refs: next_seed(&mut seq, ReleaseSeed { ctx })? },
            6 => Frame::Close { reason: next(&mut seq)? },
            _ => {
                let handle = Handle::try_from(next::<_, u8>(&mut seq)?).map_err(|e| ctx.fail(e.into()))?;
                let args = next_seed(&mut seq, BoxedSeed { ctx, depth: 0 })?;
                Frame::Notify { handle, args }
            }
        })
    }
}

/// Release pairs, counted against `max_values` like any other value.
struct ReleaseSeed<'a, 'c, U> {
    ctx: &'a DecodeCtx<'c, U>,
}

impl<'de, U> DeserializeSeed<'de> for ReleaseSeed<'_, '_, U> {
    type Value = Vec<(u64, u64)>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, U> Visitor<'de> for ReleaseSeed<'_, '_, U> {
    type Value = Vec<(u64, u64)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("release pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let n = seq.size_hint().unwrap_or(0) as u64;
        self.ctx.check_announced(n.saturating_mul(2))?;
        let mut refs = Vec::with_capacity(cautious(n));
        while let Some(pair) = seq.next_element::<(u64, u64)>()? {
            self.ctx.count(2)?;
            refs.push(pair);
        }
        Ok(refs)
    }
}

struct ErrorSeed<'a, 'c, U> {
    ctx: &'a DecodeCtx<'c, U>,
}

impl<'de, U> DeserializeSeed<'de> for ErrorSeed<'_, '_, U> {
    type Value = RemoteError;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RemoteError, D::Error> {
        d.deserialize_enum("Exception", &[], self)
    }
}

impl<'de, U> Visitor<'de> for ErrorSeed<'_, '_, U> {
    type Value = RemoteError;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an exception payload")
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<RemoteError, A::Error> {
        let (code, variant): (u32, _) = data.variant()?;
        match code {
            0 => variant.tuple_variant(4, self),
            c if c == u32::from(EXC_STOP_ITERATION) => {
                variant.unit_variant()?;
                Ok(RemoteError::stop_iteration())
            }
            c => Err(self.ctx.fail(ProtocolError::UnknownExceptionCode(c))),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RemoteError, A::Error> {
        let kind = next(&mut seq)?;
        let message = next(&mut seq)?;
        let args = match next_seed(
            &mut seq,
            PlainSeed::<_, std::convert::Infallible> {
                ctx: self.ctx,
                depth: 0,
                _r: Default::default(),
                list_only: true,
            },
        )? {
            Value::List(items) => items,
            _ => Vec::new(),
        };
        let traceback = next(&mut seq)?;
        Ok(RemoteError { kind, message, args, traceback })
    }
}

/// Decodes a boxed value (label + body).
struct BoxedSeed<'a, 'c, U> {
    ctx: &'a DecodeCtx<'c, U>,
    depth: usize,
}

impl<'de, U: RefUnboxer> DeserializeSeed<'de> for BoxedSeed<'_, '_, U> {
    type Value = Value<U::Ref>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value<U::Ref>, D::Error> {
        self.ctx.enter(self.depth)?;
        d.deserialize_tuple(usize::MAX, self)
    }
}

impl<'de, U: RefUnboxer> Visitor<'de> for BoxedSeed<'_, '_, U> {
    type Value = Value<U::Ref>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boxed value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<U::Ref>, A::Error> {
        let ctx = self.ctx;
        let label: u8 = next(&mut seq)?;
        let child = || BoxedSeed { ctx, depth: self.depth + 1 };
        match label {
            LABEL_VALUE => {
                next_seed(&mut seq, PlainSeed { ctx, depth: self.depth, _r: Default::default(), list_only: false })
            }
            LABEL_TUPLE | LABEL_LIST => {
                let n: u64 = next(&mut seq)?;
                ctx.check_announced(n)?;
                ctx.count(1)?;
                let mut items = Vec::with_capacity(cautious(n));
                for _ in 0..n {
                    items.push(next_seed(&mut seq, child())?);
                }
                Ok(if label == LABEL_TUPLE { Value::Tuple(items) } else { Value::List(items) })
            }
            LABEL_MAP => {
                let n: u64 = next(&mut seq)?;
                ctx.check_announced(n.saturating_mul(2))?;
                ctx.count(1)?;
                let mut pairs = Vec::with_capacity(cautious(n));
                for _ in 0..n {
                    let k = next_seed(&mut seq, child())?;
                    let v = next_seed(&mut seq, child())?;
                    pairs.push((k, v));
                }
                Ok(Value::Map(pairs))
            }
            LABEL_LOCAL_REF | LABEL_REMOTE_REF => {
                ctx.count(1)?;
                let id: IdPackRef<'de> = next(&mut seq)?;
                let label = if label == LABEL_LOCAL_REF { RefLabel::Local } else { RefLabel::Remote };
                ctx.unboxer.unbox_ref(label, id).map(Value::Ref).map_err(|m| ctx.fail(ProtocolError::BadReference(m)))
            }
            other => Err(ctx.fail(ProtocolError::UnknownLabel(other))),
        }
    }
}

/// Preallocation for `n` announced items: never trust a count further than a small bound.
fn cautious(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX).min(1024)
}

/// Decodes a plain value (tag + content).
struct PlainSeed<'a, 'c, U, R> {
    ctx: &'a DecodeCtx<'c, U>,
    depth: usize,
    _r: std::marker::PhantomData<fn() -> R>,
    /// Decode a bare plain list (count + plain values) instead of a tagged value.
    list_only: bool,
}

impl<'de, U, R> DeserializeSeed<'de> for PlainSeed<'_, '_, U, R> {
    type Value = Value<R>;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value<R>, D::Error> {
        self.ctx.enter(self.depth)?;
        d.deserialize_tuple(usize::MAX, self)
    }
}

impl<'de, U, R> Visitor<'de> for PlainSeed<'_, '_, U, R> {
    type Value = Value<R>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a plain value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<R>, A::Error> {
        let ctx = self.ctx;
        let child = || PlainSeed::<U, R> { ctx, depth: self.depth + 1, _r: Default::default(), list_only: false };
        let tag = if self.list_only { TAG_LIST } else { next(&mut seq)? };
        ctx.count(1)?;
        Ok(match tag {
            TAG_NONE => Value::None,
            TAG_BOOL => Value::Bool(next(&mut seq)?),
            TAG_INT => Value::Int(next(&mut seq)?),
            TAG_BIGINT => Value::BigInt(next::<_, BigInt>(&mut seq)?),
            TAG_FLOAT => Value::Float(next(&mut seq)?),
            TAG_COMPLEX => Value::Complex(next(&mut seq)?, next(&mut seq)?),
            TAG_STR => Value::Str(next::<_, &str>(&mut seq)?.to_owned()),
            TAG_BYTES => Value::Bytes(next_seed(&mut seq, BytesSeed { src: ctx.src })?),
            TAG_TUPLE | TAG_LIST => {
                let n: u64 = next(&mut seq)?;
                ctx.check_announced(n)?;
                let mut items = Vec::with_capacity(cautious(n));
                for _ in 0..n {
                    items.push(next_seed(&mut seq, child())?);
                }
                if tag == TAG_TUPLE {
                    Value::Tuple(items)
                } else {
                    Value::List(items)
                }
            }
            TAG_MAP => {
                let n: u64 = next(&mut seq)?;
                ctx.check_announced(n.saturating_mul(2))?;
                let mut pairs = Vec::with_capacity(cautious(n));
                for _ in 0..n {
                    let k = next_seed(&mut seq, child())?;
                    let v = next_seed(&mut seq, child())?;
                    pairs.push((k, v));
                }
                Value::Map(pairs)
            }
            TAG_FROZENSET => {
                let n: u64 = next(&mut seq)?;
                ctx.check_announced(n)?;
                let mut items = Vec::with_capacity(cautious(n));
                for _ in 0..n {
                    items.push(next_seed(&mut seq, child())?);
                }
                Value::FrozenSet(items)
            }
            TAG_SLICE => {
                let start = next_seed(&mut seq, child())?;
                let stop = next_seed(&mut seq, child())?;
                let step = next_seed(&mut seq, child())?;
                Value::Slice(Box::new([start, stop, step]))
            }
            TAG_ELLIPSIS => Value::Ellipsis,
            TAG_NOT_IMPLEMENTED => Value::NotImplemented,
            other => return Err(ctx.fail(ProtocolError::UnknownValueTag(other))),
        })
    }
}

/// Decodes a byte string as a slice of the frame buffer (no copy).
struct BytesSeed<'a> {
    src: &'a Bytes,
}

impl<'de> DeserializeSeed<'de> for BytesSeed<'_> {
    type Value = Bytes;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Bytes, D::Error> {
        d.deserialize_bytes(self)
    }
}

impl<'de> Visitor<'de> for BytesSeed<'_> {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_borrowed_bytes<E: de::Error>(self, b: &'de [u8]) -> Result<Bytes, E> {
        let start = self.src.as_ptr() as usize;
        let at = b.as_ptr() as usize;
        if at >= start && at + b.len() <= start + self.src.len() {
            Ok(self.src.slice_ref(b))
        } else {
            Ok(Bytes::copy_from_slice(b))
        }
    }

    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(b))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Values with references, scalars of every kind and byte strings that are shared (so
    /// the spilling path is taken too).
    fn value() -> impl Strategy<Value = Value<WireRef>> {
        let id = (".{0,12}", any::<u64>(), any::<u64>()).prop_map(|(type_name, class_id, instance_id)| IdPack {
            type_name,
            class_id,
            instance_id,
        });
        let leaf = prop_oneof![
            Just(Value::None),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            "-?[1-9][0-9]{19,30}".prop_map(|t| Value::BigInt(BigInt::parse(&t).unwrap())),
            any::<f64>().prop_map(Value::Float),
            (any::<f64>(), any::<f64>()).prop_map(|(a, b)| Value::Complex(a, b)),
            ".{0,40}".prop_map(Value::Str),
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|v| {
                let b = Bytes::from(v);
                // Held twice (the other handle is leaked, a few KiB per run): a string long
                // enough is spilled.
                std::mem::forget(b.clone());
                Value::Bytes(b)
            }),
            (any::<bool>(), id).prop_map(|(local, id)| Value::Ref(WireRef {
                label: if local { RefLabel::Local } else { RefLabel::Remote },
                id
            })),
            Just(Value::Ellipsis),
            Just(Value::NotImplemented),
        ];
        leaf.prop_recursive(5, 64, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Tuple),
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::List),
                prop::collection::vec((inner.clone(), inner.clone()), 0..4).prop_map(Value::Map),
                // Frozensets and slices carry plain values only.
                prop::collection::vec(inner.clone().prop_map(plain), 0..4).prop_map(Value::FrozenSet),
                (inner.clone(), inner.clone(), inner).prop_map(|(a, b, c)| Value::Slice(Box::new([
                    plain(a),
                    plain(b),
                    plain(c)
                ]))),
            ]
        })
    }

    /// `v` with every reference replaced by `None`.
    fn plain(v: Value<WireRef>) -> Value<WireRef> {
        let items = |items: Vec<Value<WireRef>>| items.into_iter().map(plain).collect();
        match v {
            Value::Ref(_) => Value::None,
            Value::Tuple(i) => Value::Tuple(items(i)),
            Value::List(i) => Value::List(items(i)),
            Value::FrozenSet(i) => Value::FrozenSet(items(i)),
            Value::Map(pairs) => Value::Map(pairs.into_iter().map(|(k, v)| (plain(k), plain(v))).collect()),
            Value::Slice(parts) => Value::Slice(Box::new((*parts).map(plain))),
            other => other,
        }
    }

    fn frame() -> impl Strategy<Value = Frame<WireRef>> {
        let handle = prop::sample::select(vec![Handle::CallAttr, Handle::GetAttr, Handle::Ping, Handle::Call]);
        prop_oneof![
            (any::<u64>(), handle.clone(), value(), prop::option::of(any::<u64>())).prop_map(
                |(seq, handle, args, deadline)| Frame::Request {
                    seq,
                    handle,
                    args,
                    deadline: deadline.map(Duration::from_micros)
                }
            ),
            (any::<u64>(), value()).prop_map(|(seq, value)| Frame::Reply { seq, value }),
            prop::collection::vec((any::<u64>(), any::<u64>()), 0..20).prop_map(|refs| Frame::Release { refs }),
            (handle, value()).prop_map(|(handle, args)| Frame::Notify { handle, args }),
            (
                any::<u32>(),
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                prop::option::of((".{0,12}", any::<u64>(), any::<u64>()))
            )
                .prop_map(|(version, features, max_frame_len, max_concurrent_requests, root)| {
                    Frame::Hello(Hello {
                        version,
                        features,
                        limits: super::super::Limits { max_frame_len, max_concurrent_requests },
                        root: root.map(|(type_name, class_id, instance_id)| IdPack {
                            type_name,
                            class_id,
                            instance_id,
                        }),
                    })
                }),
        ]
    }

    const UNLIMITED: DecodeLimits = DecodeLimits { max_depth: usize::MAX, max_values: usize::MAX };

    /// Both encoders on one frame: bytes (with the spilled strings where they go) or error.
    fn both(frame: &Frame<WireRef>, threshold: usize, limits: DecodeLimits) -> [Result<Vec<u8>, ProtocolError>; 2] {
        let run = |direct: bool| {
            let mut dst = BytesMut::from(&b"pre"[..]);
            let spill = Spill::with_limits(threshold, limits);
            let r = if direct {
                encode_value_frame(frame, &WireRefs, &mut dst, &spill)
            } else {
                encode_frame_serde(frame, &WireRefs, &mut dst, &spill)
            };
            r.map(|()| {
                let mut out = Vec::new();
                let mut at = 0;
                for (offset, b) in spill.into_strings() {
                    out.extend_from_slice(&dst[at..offset]);
                    out.extend_from_slice(&b);
                    at = offset;
                }
                out.extend_from_slice(&dst[at..]);
                out
            })
        };
        [run(true), run(false)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn the_direct_encoder_writes_the_serde_bytes(f in frame(), threshold in prop::sample::select(vec![0usize, 16, usize::MAX])) {
            let [direct, serde] = both(&f, threshold, UNLIMITED);
            prop_assert_eq!(direct.as_ref().unwrap(), serde.as_ref().unwrap());
        }

        #[test]
        fn both_encoders_refuse_the_same_depth(f in frame(), max_depth in 0usize..4) {
            let [direct, serde] = both(&f, usize::MAX, DecodeLimits { max_depth, max_values: usize::MAX });
            match (&direct, &serde) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(ProtocolError::TooDeep { max: a }), Err(ProtocolError::TooDeep { max: b })) => prop_assert_eq!(a, b),
                _ => prop_assert!(false, "direct {:?} vs serde {:?}", direct, serde),
            }
        }

        /// The encoders refuse a frame exactly when a decoder with the same limits would (the
        /// peer would close the connection over it): what they write, it reads, and what they
        /// refuse, it refuses. (Which limit is reported first may differ: the decoder checks a
        /// container's announced length before reading its items.)
        #[test]
        fn the_encoders_refuse_what_the_decoder_refuses(f in frame(), max_depth in 0usize..5, max_values in 0usize..30) {
            let limits = DecodeLimits { max_depth, max_values };
            let [direct, serde] = both(&f, usize::MAX, limits);
            prop_assert_eq!(&direct, &serde);
            let [Ok(unlimited), _] = both(&f, usize::MAX, UNLIMITED) else { unreachable!("any frame encodes without limits") };
            // `both` writes after a three-byte prefix.
            let decoded = decode_frame(&Bytes::copy_from_slice(&unlimited[3..]), &limits, &WireRefs);
            match (&direct, &decoded) {
                (Ok(_), Ok(_)) => {}
                (Err(ProtocolError::TooDeep { .. } | ProtocolError::TooManyValues { .. }), Err(ProtocolError::TooDeep { .. } | ProtocolError::TooManyValues { .. })) => {}
                _ => prop_assert!(false, "encoder {:?} vs decoder {:?}", direct, decoded),
            }
        }
    }

    #[test]
    fn both_encoders_refuse_python_values_the_peer_did_not_announce() {
        let refs = |v: Value<WireRef>| Value::Tuple(vec![Value::Int(1), v]);
        let values = [
            (Value::FrozenSet(vec![Value::Int(1)]), "frozenset"),
            (Value::Slice(Box::new([Value::None, Value::Int(2), Value::None])), "slice"),
            (Value::Ellipsis, "Ellipsis"),
            (Value::NotImplemented, "NotImplemented"),
        ];
        for (value, what) in values {
            for frame in [
                Frame::Reply { seq: 1, value: value.clone() },
                Frame::Request { seq: 2, handle: Handle::Call, args: refs(value.clone()), deadline: None },
                Frame::Exception {
                    seq: 3,
                    error: RemoteError {
                        kind: "k".into(),
                        message: "m".into(),
                        args: vec![value.clone().try_map_refs(&mut |_| Err(())).unwrap()],
                        traceback: String::new(),
                    },
                },
            ] {
                let run = |direct: bool, features: u64| {
                    let mut dst = BytesMut::new();
                    let spill = Spill::new(usize::MAX).for_peer(features);
                    if direct && !matches!(frame, Frame::Exception { .. }) {
                        encode_value_frame(&frame, &WireRefs, &mut dst, &spill)
                    } else {
                        encode_frame_serde(&frame, &WireRefs, &mut dst, &spill)
                    }
                    .map(|()| dst.to_vec())
                };
                let expected = ProtocolError::PeerLacksFeature { feature: "py-values", what };
                assert_eq!(run(true, 0), Err(expected.clone()));
                assert_eq!(run(false, 0), Err(expected.clone()));
                assert_eq!(
                    expected.to_string(),
                    format!("the peer does not accept {what} values (it did not announce feature py-values)")
                );
                let sent = run(true, FEATURE_PY_VALUES).unwrap();
                assert_eq!(run(false, FEATURE_PY_VALUES).unwrap(), sent);
                let decoded = decode_frame(&Bytes::from(sent), &DecodeLimits::default(), &WireRefs).unwrap();
                assert_eq!(decoded, frame);
            }
        }
    }

    #[test]
    fn a_reference_inside_a_frozenset_or_slice_is_refused_by_both_encoders() {
        let r = Value::Ref(WireRef {
            label: RefLabel::Remote,
            id: IdPack { type_name: "t.T".into(), class_id: 1, instance_id: 2 },
        });
        for value in [
            Value::FrozenSet(vec![r.clone()]),
            Value::List(vec![Value::Slice(Box::new([Value::None, r.clone(), Value::None]))]),
        ] {
            let [direct, serde] = both(&Frame::Reply { seq: 1, value }, usize::MAX, UNLIMITED);
            assert!(
                matches!(&direct, Err(ProtocolError::BadReference(m)) if m.contains("frozenset or slice")),
                "{direct:?}"
            );
            assert_eq!(direct, serde);
        }
    }

    #[test]
    fn varints_are_leb128() {
        for (v, bytes) in [(0u64, &[0u8][..]), (127, &[0x7f]), (128, &[0x80, 0x01]), (300, &[0xac, 0x02])] {
            let mut dst = BytesMut::new();
            put_varint(&mut dst, v);
            assert_eq!(&dst[..], bytes, "{v}");
        }
        let mut dst = BytesMut::new();
        put_varint(&mut dst, u64::MAX);
        assert_eq!(dst.len(), 10);
    }
}
