//! The reader: method calls and replies whose values are plain data, straight from the frame
//! body into values.

use bytes::Bytes;

use crate::{
    protocol::{
        native::{
            boxing::IdPackRef,
            consts::{
                KIND_NOTIFY, KIND_REPLY, KIND_REQUEST, TAG_BIGINT, TAG_BOOL, TAG_BYTES, TAG_COMPLEX, TAG_FLOAT,
                TAG_INT, TAG_LIST, TAG_MAP, TAG_NONE, TAG_STR, TAG_TUPLE,
            },
            limits::DecodeLimits,
        },
        Handle, LABEL_LOCAL_REF, LABEL_REMOTE_REF, LABEL_TUPLE, LABEL_VALUE,
    },
    value::{BigInt, RefLabel, Value},
};

/// A request in the shape nearly every method call has: CALLATTR on an object of the receiver
/// (`LOCAL_REF`), a string name, positional arguments that are plain values or references
/// (a callback passed as an argument) and no keyword arguments; or CALL (a callback, a
/// function) in the same shape without the name.
#[derive(Debug, PartialEq)]
pub(crate) struct PlainCall<'a, R> {
    /// `Some(seq)` for a request, `None` for a one-way `Notify`.
    pub(crate) seq: Option<u64>,
    /// The target's class id, as the frame's `LOCAL_REF` names it (its type name, which the
    /// receiver does not need to find its own object, is only checked to be text).
    pub(crate) class_id: u64,
    /// The target's instance id.
    pub(crate) instance_id: u64,
    /// The method name; `None` for a CALL.
    pub(crate) name: Option<&'a str>,
    /// The positional arguments; where [`refs`](Self::refs) names a reference, a `Value::None`
    /// holds its place.
    pub(crate) args: Vec<Value<R>>,
    /// The references among the arguments, in order; not unboxed yet (see [`PlainRef`]).
    pub(crate) refs: Vec<PlainRef<'a>>,
    /// The request's deadline in microseconds (always `None` for a `Notify`).
    pub(crate) deadline_us: Option<u64>,
}

/// A reference read as a positional argument or as a reply's value.
///
/// The reader leaves unboxing to its caller, to do once the whole frame has been read: a
/// `REMOTE_REF` unboxed counts an import, which must not happen if the reader then gives up
/// and the general decoder reads the frame again. The caller unboxes the `LOCAL_REF`s first
/// (they count nothing, and one the receiver never exported is the general decoder's error to
/// report), then the `REMOTE_REF`s (which cannot fail).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PlainRef<'a> {
    /// The argument's position.
    pub(crate) index: usize,
    /// Whose object it is.
    pub(crate) label: RefLabel,
    /// Its `id_pack`, the type name borrowed from the frame.
    pub(crate) id: IdPackRef<'a>,
}

/// Reads `body` as a [`PlainCall`], or `None` if it is anything else (another frame kind or
/// handle, arguments holding references inside containers, keyword arguments, a value past
/// the limits, malformed bytes, …): the general decoder then reads it.
pub(crate) fn read_call<'a, R>(body: &'a Bytes, limits: &DecodeLimits) -> Option<PlainCall<'a, R>> {
    let mut r = Reader::new(body, limits);
    let seq = match r.byte()? {
        KIND_REQUEST => Some(r.varint()?),
        KIND_NOTIFY => None,
        _ => return None,
    };
    // The arguments: a boxed tuple of four (target, name, args, kwargs) for CALLATTR, of three
    // (no name) for CALL, at depth 0; its items boxed at depth 1 (the limits are checked as the
    // general decoder does).
    let items = match r.byte()? {
        h if h == Handle::CallAttr as u8 => 4,
        h if h == Handle::Call as u8 => 3,
        _ => return None,
    };
    r.expect(LABEL_TUPLE)?;
    if r.varint()? != items {
        return None;
    }
    r.announced(items)?;
    r.count(1)?;
    r.boxed(1, LABEL_LOCAL_REF)?;
    r.count(1)?;
    r.text()?;
    let class_id = r.varint()?;
    let instance_id = r.varint()?;
    let name = if items == 4 {
        r.boxed(1, LABEL_VALUE)?;
        Some(r.plain_str(1)?)
    } else {
        None
    };
    // Plain arguments are one plain tuple; arguments holding a reference a tuple boxed item
    // by item.
    r.enter(1)?;
    let (args, refs) = match r.byte()? {
        LABEL_VALUE => match r.plain(1)? {
            Value::Tuple(items) => (items, Vec::new()),
            _ => return None,
        },
        LABEL_TUPLE => r.boxed_items(2)?,
        _ => return None,
    };
    r.boxed(1, LABEL_VALUE)?;
    r.plain_none(1)?;
    let deadline_us = match seq {
        Some(_) => match r.byte()? {
            0 => None,
            1 => Some(r.varint()?),
            _ => return None,
        },
        None => None,
    };
    r.at_end()?;
    Some(PlainCall { seq, class_id, instance_id, name, args, refs, deadline_us })
}

/// A reply's value as [`read_reply`] reads it.
#[derive(Debug, PartialEq)]
pub(crate) enum PlainReply<'a, R> {
    /// A plain value.
    Value(Value<R>),
    /// A reference (a method that returns an object), not unboxed yet (see [`PlainRef`];
    /// its `index` is 0).
    Ref(PlainRef<'a>),
}

/// Reads `body` as a reply carrying a plain value or a reference, or `None` if it is anything
/// else.
pub(crate) fn read_reply<'a, R>(body: &'a Bytes, limits: &DecodeLimits) -> Option<(u64, PlainReply<'a, R>)> {
    let mut r = Reader::new(body, limits);
    r.expect(KIND_REPLY)?;
    let seq = r.varint()?;
    let value = match r.byte()? {
        LABEL_VALUE => PlainReply::Value(r.plain(0)?),
        label => PlainReply::Ref(r.reference(label, 0)?),
    };
    r.at_end()?;
    Some((seq, value))
}

/// Reads plain values off a frame body with the general decoder's rules and limits; every
/// method returns `None` where that decoder would fail (or might).
struct Reader<'a, 'l> {
    src: &'a Bytes,
    pos: usize,
    values: usize,
    limits: &'l DecodeLimits,
}

impl<'a, 'l> Reader<'a, 'l> {
    fn new(src: &'a Bytes, limits: &'l DecodeLimits) -> Self {
        Reader { src, pos: 0, values: 0, limits }
    }

    #[inline]
    fn byte(&mut self) -> Option<u8> {
        let b = *self.src.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    /// The next byte, if it is `b`.
    fn expect(&mut self, b: u8) -> Option<()> {
        (self.byte()? == b).then_some(())
    }

    /// A boxed value's `label` at `depth`.
    fn boxed(&mut self, depth: usize, label: u8) -> Option<()> {
        self.enter(depth)?;
        self.expect(label)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let bytes: &'a [u8] = self.src.get(self.pos..end)?;
        self.pos = end;
        Some(bytes)
    }

    /// A `u64` varint as postcard reads it (up to 10 bytes, the last holding one bit).
    #[inline]
    fn varint(&mut self) -> Option<u64> {
        // Most varints (kinds, small counts and ids) are one byte.
        if let Some(&b) = self.src.get(self.pos) {
            if b < 0x80 {
                self.pos += 1;
                return Some(u64::from(b));
            }
        }
        self.varint_long()
    }

    fn varint_long(&mut self) -> Option<u64> {
        // Two bytes (up to 16383: request numbers and ids for a good while) without the loop.
        if let Some(&[lo, hi]) = self.src.get(self.pos..self.pos + 2).and_then(|b| <&[u8; 2]>::try_from(b).ok()) {
            if hi < 0x80 {
                self.pos += 2;
                return Some(u64::from(lo & 0x7f) | u64::from(hi) << 7);
            }
        }
        let mut out = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            out |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return (i < 9 || b <= 1).then_some(out);
            }
        }
        None
    }

    /// Skips a string, checking that it is UTF-8 as the general decoder does.
    fn text(&mut self) -> Option<()> {
        let len = usize::try_from(self.varint()?).ok()?;
        let bytes = self.take(len)?;
        // Type names are ASCII: checked a word at a time, quicker than the UTF-8 check.
        (bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()).then_some(())
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = usize::try_from(self.varint()?).ok()?;
        std::str::from_utf8(self.take(len)?).ok()
    }

    fn enter(&self, depth: usize) -> Option<()> {
        (depth <= self.limits.max_depth).then_some(())
    }

    fn count(&mut self, n: u64) -> Option<()> {
        let total = usize::try_from(n).ok()?.checked_add(self.values)?;
        (total <= self.limits.max_values).then(|| self.values = total)
    }

    fn announced(&self, n: u64) -> Option<usize> {
        usize::try_from(n).ok().filter(|&n| n <= self.limits.max_values)
    }

    fn at_end(&self) -> Option<()> {
        (self.pos == self.src.len()).then_some(())
    }

    /// A tuple's items boxed one by one at `depth`, after its `LABEL_TUPLE`: plain values and
    /// references, nothing nested (a reference's place in the items holds `Value::None`).
    fn boxed_items<R>(&mut self, depth: usize) -> Option<(Vec<Value<R>>, Vec<PlainRef<'a>>)> {
        let n = self.varint()?;
        let n = self.announced(n)?;
        self.count(1)?;
        let mut items = Vec::with_capacity(n.min(self.src.len() - self.pos));
        let mut refs = Vec::new();
        for index in 0..n {
            self.enter(depth)?;
            match self.byte()? {
                LABEL_VALUE => items.push(self.plain(depth)?),
                label => {
                    refs.push(self.reference(label, index)?);
                    items.push(Value::None);
                }
            }
        }
        Some((items, refs))
    }

    /// A reference's `id_pack` after its `label`, as argument `index`.
    fn reference(&mut self, label: u8, index: usize) -> Option<PlainRef<'a>> {
        let label = match label {
            LABEL_LOCAL_REF => RefLabel::Local,
            LABEL_REMOTE_REF => RefLabel::Remote,
            _ => return None,
        };
        self.count(1)?;
        let type_name = self.str()?;
        let class_id = self.varint()?;
        let instance_id = self.varint()?;
        Some(PlainRef { index, label, id: IdPackRef { type_name, class_id, instance_id } })
    }

    /// A plain string at `depth`, borrowed from the frame (counted as [`plain`](Self::plain)
    /// counts it).
    fn plain_str(&mut self, depth: usize) -> Option<&'a str> {
        self.enter(depth)?;
        self.expect(TAG_STR)?;
        self.count(1)?;
        self.str()
    }

    /// A plain `None` at `depth`.
    fn plain_none(&mut self, depth: usize) -> Option<()> {
        self.enter(depth)?;
        self.expect(TAG_NONE)?;
        self.count(1)
    }

    /// A plain value (tag, then content) at `depth`.
    fn plain<R>(&mut self, depth: usize) -> Option<Value<R>> {
        self.enter(depth)?;
        let tag = self.byte()?;
        self.count(1)?;
        Some(match tag {
            TAG_NONE => Value::None,
            TAG_BOOL => match self.byte()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                _ => return None,
            },
            TAG_INT => {
                let z = self.varint()?;
                Value::Int(((z >> 1) as i64) ^ -((z & 1) as i64))
            }
            TAG_BIGINT => Value::BigInt(BigInt::parse(self.str()?).ok()?),
            TAG_FLOAT => Value::Float(self.f64()?),
            TAG_COMPLEX => Value::Complex(self.f64()?, self.f64()?),
            TAG_STR => Value::Str(self.str()?.to_owned()),
            TAG_BYTES => {
                let len = usize::try_from(self.varint()?).ok()?;
                let start = self.pos;
                self.take(len)?;
                Value::Bytes(self.src.slice(start..self.pos))
            }
            TAG_TUPLE | TAG_LIST => {
                let n = self.varint()?;
                let n = self.announced(n)?;
                // Never trust a count further than the bytes left (each item takes one).
                let mut items = Vec::with_capacity(n.min(self.src.len() - self.pos));
                for _ in 0..n {
                    items.push(self.plain(depth + 1)?);
                }
                if tag == TAG_TUPLE {
                    Value::Tuple(items)
                } else {
                    Value::List(items)
                }
            }
            TAG_MAP => {
                let n = self.varint()?;
                self.announced(n.checked_mul(2)?)?;
                let n = usize::try_from(n).ok()?;
                let mut pairs = Vec::with_capacity(n.min((self.src.len() - self.pos) / 2));
                for _ in 0..n {
                    let k = self.plain(depth + 1)?;
                    let v = self.plain(depth + 1)?;
                    pairs.push((k, v));
                }
                Value::Map(pairs)
            }
            // The Python values (`TAG_FROZENSET`, `TAG_SLICE`, `TAG_ELLIPSIS`,
            // `TAG_NOT_IMPLEMENTED`) and any unknown tag: left to the general decoder.
            _ => return None,
        })
    }

    fn f64(&mut self) -> Option<f64> {
        let b: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(f64::from_bits(u64::from_le_bytes(b)))
    }
}
