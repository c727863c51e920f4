//! The writer: a method call's name and arguments, straight from their serde types to the
//! wire's plain encoding.

use serde::{ser, Serialize};
use smallvec::SmallVec;

use crate::protocol::{
    native::{
        consts::{
            LARGE_BYTES, TAG_BIGINT, TAG_BOOL, TAG_BYTES, TAG_FLOAT, TAG_INT, TAG_LIST, TAG_MAP, TAG_NONE, TAG_STR,
            TAG_TUPLE,
        },
        limits::DecodeLimits,
    },
    LABEL_VALUE,
};
use crate::ProtocolError;

/// A call's pre-encoded items after the target ([`encode_call_tail`]). Those of most calls (a
/// short name, a few small arguments) fit inline: no allocation per call.
pub(crate) type CallTail = SmallVec<[u8; 64]>;

/// Appends the items after the target of a CALLATTR request (`name` given: the method name,
/// the positional arguments and no keyword arguments) or of a CALL request (`name` `None`: the
/// positional arguments and no keyword arguments), exactly as the general route writes
/// `Str(name)`, `Tuple(positional(args))` and `None` when it boxes the request's tuple: each a
/// plain value under `LABEL_VALUE`. `limits` are the encoder's: the nesting limit, and the
/// most values the whole request may hold (counted as the decoder counts them, the request's
/// tuple and its target included).
///
/// Returns `Ok(false)`, with `out` as it was, when the arguments hold a reference, a `Value`,
/// a large byte string, a container of unknown length, a value nested past `max_depth` or
/// anything else this writer leaves to the general route (which then encodes the call, or
/// reports the error). A request holding more than `max_values` values is refused outright
/// (`TooManyValues`, `out` as it was): the general route counts the same values and would
/// refuse it too, after building a `Value` for each (a million for a 1 MiB `Vec<u8>`).
pub(crate) fn encode_call_tail(
    name: Option<&str>,
    args: &(impl Serialize + ?Sized),
    limits: &DecodeLimits,
    out: &mut CallTail,
) -> Result<bool, ProtocolError> {
    let max_depth = limits.max_depth;
    let start = out.len();
    if let Some(name) = name {
        out.push(LABEL_VALUE);
        out.push(TAG_STR);
        put_str(out, name);
    }
    out.push(LABEL_VALUE);
    let at = out.len();
    // The arguments sit at depth 1 (an item of the request's tuple) when they are a tuple;
    // anything else is wrapped in a one-item tuple, one level deeper.
    // Counted ahead: the request's tuple, its target, the name and the keyword arguments' `None`.
    let values = 3 + usize::from(name.is_some());
    let mut w = Writer { out, depth: 1, deepest: 1, max_depth, values, max_values: limits.max_values, too_many: false };
    let ok = args.serialize(&mut w).is_ok();
    let (deepest, room, too_many) = (w.deepest, w.values < w.max_values, w.too_many);
    if too_many {
        out.truncate(start);
        return Err(ProtocolError::TooManyValues { max: limits.max_values });
    }
    if ok {
        // Every value writes its tag first (`None`: nothing was written; cannot happen).
        match out.get(at).copied() {
            Some(TAG_TUPLE) => {}
            // `()`: no arguments.
            Some(TAG_NONE) => {
                out[at] = TAG_TUPLE;
                out.push(0);
            }
            // Wrapped in a tuple: one value more.
            Some(_) if !room => {
                out.truncate(start);
                return Err(ProtocolError::TooManyValues { max: limits.max_values });
            }
            Some(_) if deepest < max_depth => {
                out.insert_many(at, [TAG_TUPLE, 1]);
            }
            _ => {
                out.truncate(start);
                return Ok(false);
            }
        }
        out.push(LABEL_VALUE);
        out.push(TAG_NONE);
        Ok(true)
    } else {
        out.truncate(start);
        Ok(false)
    }
}

fn put_varint(out: &mut CallTail, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut CallTail, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_int(out: &mut CallTail, i: i64) {
    out.push(TAG_INT);
    put_varint(out, ((i << 1) ^ (i >> 63)) as u64);
}

fn put_i128(out: &mut CallTail, v: i128) {
    match i64::try_from(v) {
        Ok(i) => put_int(out, i),
        Err(_) => {
            out.push(TAG_BIGINT);
            put_str(out, &v.to_string());
        }
    }
}

/// The writer gave up: the general route takes the value.
#[derive(Debug)]
pub(crate) struct Unsupported;

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("left to the general encoder")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Unsupported
    }
}

/// Writes a serde value as one plain value (tag, then content), as `to_value` followed by the
/// plain encoder would: see the mapping in `value::ser`.
struct Writer<'a> {
    out: &'a mut CallTail,
    /// Depth of the value written next.
    depth: usize,
    /// Deepest value written.
    deepest: usize,
    max_depth: usize,
    /// Values written so far (and counted ahead), and the most the request may hold.
    values: usize,
    max_values: usize,
    /// A value went past `max_values`.
    too_many: bool,
}

impl Writer<'_> {
    /// A value is written at the current depth.
    fn value(&mut self) -> Result<(), Unsupported> {
        if self.values >= self.max_values {
            self.too_many = true;
            return Err(Unsupported);
        }
        if self.depth > self.max_depth {
            return Err(Unsupported);
        }
        self.values += 1;
        self.deepest = self.deepest.max(self.depth);
        Ok(())
    }

    /// Opens a container of `len` items with `tag`; its items are one level deeper.
    fn open(&mut self, tag: u8, len: usize) -> Result<(), Unsupported> {
        self.value()?;
        self.out.push(tag);
        put_varint(self.out, len as u64);
        self.depth += 1;
        Ok(())
    }

    /// `Map[(Str(variant), …)]`, the shape of every enum variant with content: opens the map
    /// and writes the key; the content follows at the key's depth.
    fn open_variant(&mut self, variant: &str) -> Result<(), Unsupported> {
        self.open(TAG_MAP, 1)?;
        self.value()?;
        self.out.push(TAG_STR);
        put_str(self.out, variant);
        Ok(())
    }
}

/// A container being written: how many items it announced, how many came.
struct Compound<'w, 'o> {
    w: &'w mut Writer<'o>,
    announced: usize,
    written: usize,
    /// Containers to close at the end (2 for the content of a tuple or struct variant).
    levels: usize,
}

impl Compound<'_, '_> {
    /// One more item than before, within what was announced.
    fn count(&mut self) -> Result<(), Unsupported> {
        self.written += 1;
        if self.written > self.announced {
            return Err(Unsupported);
        }
        Ok(())
    }

    fn item<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.count()?;
        value.serialize(&mut *self.w)
    }

    fn end(self) -> Result<(), Unsupported> {
        if self.written != self.announced {
            return Err(Unsupported);
        }
        self.w.depth -= self.levels;
        Ok(())
    }
}

impl<'w, 'o> ser::Serializer for &'w mut Writer<'o> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'w, 'o>;
    type SerializeTuple = Compound<'w, 'o>;
    type SerializeTupleStruct = Compound<'w, 'o>;
    type SerializeTupleVariant = Compound<'w, 'o>;
    type SerializeMap = Compound<'w, 'o>;
    type SerializeStruct = Compound<'w, 'o>;
    type SerializeStructVariant = Compound<'w, 'o>;

    fn serialize_bool(self, v: bool) -> Result<(), Unsupported> {
        self.value()?;
        self.out.extend_from_slice(&[TAG_BOOL, u8::from(v)]);
        Ok(())
    }

    fn serialize_i8(self, v: i8) -> Result<(), Unsupported> {
        self.serialize_i64(v.into())
    }

    fn serialize_i16(self, v: i16) -> Result<(), Unsupported> {
        self.serialize_i64(v.into())
    }

    fn serialize_i32(self, v: i32) -> Result<(), Unsupported> {
        self.serialize_i64(v.into())
    }

    fn serialize_i64(self, v: i64) -> Result<(), Unsupported> {
        self.value()?;
        put_int(self.out, v);
        Ok(())
    }

    fn serialize_i128(self, v: i128) -> Result<(), Unsupported> {
        self.value()?;
        put_i128(self.out, v);
        Ok(())
    }

    fn serialize_u8(self, v: u8) -> Result<(), Unsupported> {
        self.serialize_i64(v.into())
    }

    fn serialize_u16(self, v: u16) -> Result<(), Unsupported> {
        self.serialize_i64(v.into())
    }

    fn serialize_u32(self, v: u32) -> Result<(), Unsupported> {
        self.serialize_i64(v.into())
    }

    fn serialize_u64(self, v: u64) -> Result<(), Unsupported> {
        self.serialize_i128(v.into())
    }

    fn serialize_u128(self, v: u128) -> Result<(), Unsupported> {
        self.value()?;
        match i64::try_from(v) {
            Ok(i) => put_int(self.out, i),
            Err(_) => {
                self.out.push(TAG_BIGINT);
                put_str(self.out, &v.to_string());
            }
        }
        Ok(())
    }

    fn serialize_f32(self, v: f32) -> Result<(), Unsupported> {
        self.serialize_f64(v.into())
    }

    fn serialize_f64(self, v: f64) -> Result<(), Unsupported> {
        self.value()?;
        self.out.push(TAG_FLOAT);
        self.out.extend_from_slice(&v.to_bits().to_le_bytes());
        Ok(())
    }

    fn serialize_char(self, v: char) -> Result<(), Unsupported> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }

    fn serialize_str(self, v: &str) -> Result<(), Unsupported> {
        self.value()?;
        self.out.push(TAG_STR);
        put_str(self.out, v);
        Ok(())
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<(), Unsupported> {
        if v.len() >= LARGE_BYTES {
            return Err(Unsupported);
        }
        self.value()?;
        self.out.push(TAG_BYTES);
        put_varint(self.out, v.len() as u64);
        self.out.extend_from_slice(v);
        Ok(())
    }

    fn serialize_none(self) -> Result<(), Unsupported> {
        self.serialize_unit()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Unsupported> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<(), Unsupported> {
        self.value()?;
        self.out.push(TAG_NONE);
        Ok(())
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Unsupported> {
        self.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Unsupported> {
        self.serialize_str(variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Result<(), Unsupported> {
        // netref's own newtypes (references, `Value`s, big integers, complex numbers, the
        // Python values `FrozenSet`, `Slice`, `Ellipsis`, `NotImplemented`) are converted
        // specially by `to_value`: the general route takes them. `SharedBytes` is
        // plain bytes to any other serializer.
        if name.starts_with("$netref::") && name != crate::value::BYTES_TOKEN {
            return Err(Unsupported);
        }
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Unsupported> {
        self.open_variant(variant)?;
        value.serialize(&mut *self)?;
        self.depth -= 1;
        Ok(())
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Compound<'w, 'o>, Unsupported> {
        let len = len.ok_or(Unsupported)?;
        self.open(TAG_LIST, len)?;
        Ok(Compound { w: self, announced: len, written: 0, levels: 1 })
    }

    fn serialize_tuple(self, len: usize) -> Result<Compound<'w, 'o>, Unsupported> {
        self.open(TAG_TUPLE, len)?;
        Ok(Compound { w: self, announced: len, written: 0, levels: 1 })
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'w, 'o>, Unsupported> {
        self.serialize_tuple(len)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'w, 'o>, Unsupported> {
        self.open_variant(variant)?;
        self.open(TAG_TUPLE, len)?;
        Ok(Compound { w: self, announced: len, written: 0, levels: 2 })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Compound<'w, 'o>, Unsupported> {
        let len = len.ok_or(Unsupported)?;
        self.open(TAG_MAP, len)?;
        // Keys and values are counted separately.
        Ok(Compound { w: self, announced: len.checked_mul(2).ok_or(Unsupported)?, written: 0, levels: 1 })
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<Compound<'w, 'o>, Unsupported> {
        self.open(TAG_MAP, len)?;
        Ok(Compound { w: self, announced: len, written: 0, levels: 1 })
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Compound<'w, 'o>, Unsupported> {
        self.open_variant(variant)?;
        self.open(TAG_MAP, len)?;
        Ok(Compound { w: self, announced: len, written: 0, levels: 2 })
    }
}

/// Sequences, tuples, tuple structs and tuple variants: each item is one value.
macro_rules! items {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for Compound<'_, '_> {
            type Ok = ();
            type Error = Unsupported;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
                self.item(value)
            }

            fn end(self) -> Result<(), Unsupported> {
                Compound::end(self)
            }
        }
    )*};
}

items!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Unsupported> {
        self.item(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Unsupported> {
        self.item(value)
    }

    fn end(self) -> Result<(), Unsupported> {
        Compound::end(self)
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Unsupported> {
        // A field is one entry of the map: its name (a `Str`), then its value.
        self.count()?;
        key.serialize(&mut *self.w)?;
        value.serialize(&mut *self.w)
    }

    fn end(self) -> Result<(), Unsupported> {
        Compound::end(self)
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Unsupported;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), Unsupported> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }

    fn end(self) -> Result<(), Unsupported> {
        Compound::end(self)
    }
}
