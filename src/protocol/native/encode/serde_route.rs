//! The serde route: every frame kind encoded through postcard's serializer, from `Serialize`
//! views of the frame (`FrameSer` and the value views below it). It encodes the frames that
//! carry no value tree, and is the reference the direct encoder's bytes are held to.
//!
//! Never panics on a value; every frame kind is written by its `KIND_*` name.

use std::cell::{Cell, RefCell};

use bytes::{BufMut, BytesMut};
use serde::{
    ser::{self, SerializeSeq, SerializeStructVariant, SerializeTuple},
    Serialize, Serializer,
};

use super::{micros, needs_boxing, Spill};
use crate::{
    error::RemoteError,
    protocol::{
        frame::FEATURE_PY_VALUES,
        native::{
            boxing::RefBoxer,
            consts::{
                KIND_CANCEL, KIND_CLOSE, KIND_EXCEPTION, KIND_HELLO, KIND_NOTIFY, KIND_RELEASE, KIND_REPLY,
                KIND_REQUEST, TAG_BIGINT, TAG_BOOL, TAG_BYTES, TAG_COMPLEX, TAG_ELLIPSIS, TAG_FLOAT, TAG_FROZENSET,
                TAG_INT, TAG_LIST, TAG_MAP, TAG_NONE, TAG_NOT_IMPLEMENTED, TAG_SLICE, TAG_STR, TAG_TUPLE,
            },
        },
        EXC_STOP_ITERATION, LABEL_LIST, LABEL_LOCAL_REF, LABEL_MAP, LABEL_REMOTE_REF, LABEL_TUPLE, LABEL_VALUE,
    },
    value::{Data, RefLabel, Value},
    Frame, ProtocolError,
};

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

/// The serde route for every frame kind: the reference for the direct encoder, and the
/// encoder of the frames that carry no value tree.
pub(super) fn encode_frame_serde<R, B: RefBoxer<R>>(
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

/// What every view shares: the boxer, the first error met (postcard's own error carries only
/// its text), and the spill.
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

/// A frame: its kind (the variant index), then its fields.
struct FrameSer<'a, R, B> {
    frame: &'a Frame<R>,
    ctx: &'a EncodeCtx<'a, B>,
}

impl<R, B: RefBoxer<R>> Serialize for FrameSer<'_, R, B> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.frame {
            Frame::Hello(h) => s.serialize_newtype_variant("Frame", u32::from(KIND_HELLO), "Hello", h),
            Frame::Request { seq, handle, args, deadline } => {
                let mut v = s.serialize_struct_variant("Frame", u32::from(KIND_REQUEST), "Request", 4)?;
                v.serialize_field("seq", seq)?;
                v.serialize_field("handle", &(*handle as u8))?;
                v.serialize_field("args", &BoxedSer { value: args, ctx: self.ctx, depth: 0 })?;
                v.serialize_field("deadline", &micros(deadline))?;
                v.end()
            }
            Frame::Reply { seq, value } => {
                let mut v = s.serialize_struct_variant("Frame", u32::from(KIND_REPLY), "Reply", 2)?;
                v.serialize_field("seq", seq)?;
                v.serialize_field("value", &BoxedSer { value, ctx: self.ctx, depth: 0 })?;
                v.end()
            }
            Frame::Exception { seq, error } => {
                let mut v = s.serialize_struct_variant("Frame", u32::from(KIND_EXCEPTION), "Exception", 2)?;
                v.serialize_field("seq", seq)?;
                v.serialize_field("error", &ErrorSer(error, self.ctx.spill))?;
                v.end()
            }
            Frame::Cancel { seq } => {
                let mut v = s.serialize_struct_variant("Frame", u32::from(KIND_CANCEL), "Cancel", 1)?;
                v.serialize_field("seq", seq)?;
                v.end()
            }
            Frame::Release { refs } => {
                self.ctx.spill.count(refs.len().saturating_mul(2)).map_err(ser::Error::custom)?;
                let mut v = s.serialize_struct_variant("Frame", u32::from(KIND_RELEASE), "Release", 1)?;
                v.serialize_field("refs", refs)?;
                v.end()
            }
            Frame::Close { reason } => {
                let mut v = s.serialize_struct_variant("Frame", u32::from(KIND_CLOSE), "Close", 1)?;
                v.serialize_field("reason", reason)?;
                v.end()
            }
            Frame::Notify { handle, args } => {
                let mut v = s.serialize_struct_variant("Frame", u32::from(KIND_NOTIFY), "Notify", 2)?;
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
