//! Decoding of frames: a postcard body (no length prefix) into a [`Frame`], through serde seeds
//! and visitors that keep the decode limits as they read.
//!
//! Every byte is a peer's and treated as hostile: decoding never panics, bounds nesting depth
//! and value count ([`DecodeLimits`]), never preallocates more than a small bound because a
//! count asked for it, and reports what was wrong as a typed [`ProtocolError`]. It does not copy
//! byte strings: a decoded `Value::Bytes` shares the frame's buffer. References are resolved
//! through a [`RefUnboxer`]; nothing here depends on actix or on a connection.

use std::{
    cell::{Cell, RefCell},
    fmt,
    time::Duration,
};

use bytes::Bytes;
use serde::{
    de::{self, DeserializeSeed, EnumAccess, SeqAccess, VariantAccess, Visitor},
    Deserialize,
};

use super::{
    boxing::{IdPackRef, RefUnboxer},
    consts::{
        KIND_CANCEL, KIND_CLOSE, KIND_EXCEPTION, KIND_HELLO, KIND_NOTIFY, KIND_RELEASE, KIND_REPLY, KIND_REQUEST,
        TAG_BIGINT, TAG_BOOL, TAG_BYTES, TAG_COMPLEX, TAG_ELLIPSIS, TAG_FLOAT, TAG_FROZENSET, TAG_INT, TAG_LIST,
        TAG_MAP, TAG_NONE, TAG_NOT_IMPLEMENTED, TAG_SLICE, TAG_STR, TAG_TUPLE,
    },
    limits::DecodeLimits,
};
use crate::{
    error::{ProtocolError, RemoteError},
    protocol::{
        frame::Hello, Handle, EXC_STOP_ITERATION, LABEL_LIST, LABEL_LOCAL_REF, LABEL_MAP, LABEL_REMOTE_REF,
        LABEL_TUPLE, LABEL_VALUE,
    },
    value::{BigInt, RefLabel, Value},
    Frame,
};

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
        match u8::try_from(kind) {
            Ok(KIND_HELLO) => variant.newtype_variant::<Hello>().map(Frame::Hello),
            Ok(k @ KIND_REQUEST..=KIND_NOTIFY) => variant.tuple_variant(4, FrameBody { kind: k, ctx: self.ctx }),
            _ => Err(self.ctx.fail(ProtocolError::UnknownFrameKind(kind))),
        }
    }
}

/// The fields of a frame of `kind`, one of `KIND_REQUEST..=KIND_NOTIFY`.
struct FrameBody<'a, 'c, U> {
    kind: u8,
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
            KIND_REQUEST => {
                let seq_no = next(&mut seq)?;
                let handle = Handle::try_from(next::<_, u8>(&mut seq)?).map_err(|e| ctx.fail(e.into()))?;
                let args = next_seed(&mut seq, BoxedSeed { ctx, depth: 0 })?;
                let deadline = next::<_, Option<u64>>(&mut seq)?.map(Duration::from_micros);
                Frame::Request { seq: seq_no, handle, args, deadline }
            }
            KIND_REPLY => {
                Frame::Reply { seq: next(&mut seq)?, value: next_seed(&mut seq, BoxedSeed { ctx, depth: 0 })? }
            }
            KIND_EXCEPTION => Frame::Exception { seq: next(&mut seq)?, error: next_seed(&mut seq, ErrorSeed { ctx })? },
            KIND_CANCEL => Frame::Cancel { seq: next(&mut seq)? },
            KIND_RELEASE => Frame::Release { refs: next_seed(&mut seq, ReleaseSeed { ctx })? },
            KIND_CLOSE => Frame::Close { reason: next(&mut seq)? },
            KIND_NOTIFY => {
                let handle = Handle::try_from(next::<_, u8>(&mut seq)?).map_err(|e| ctx.fail(e.into()))?;
                let args = next_seed(&mut seq, BoxedSeed { ctx, depth: 0 })?;
                Frame::Notify { handle, args }
            }
            // Not reached: `FrameSeed` admits only the kinds above.
            other => return Err(ctx.fail(ProtocolError::UnknownFrameKind(other.into()))),
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
