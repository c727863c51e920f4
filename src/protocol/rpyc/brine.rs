//! Brine, RPyC's serializer for immutable values: the [`Brine`] value tree, [`dump`] and
//! [`load`].
//!
//! Every value is a one-byte tag, then what the tag calls for, big-endian (the tag table is in
//! the [module doc](super)). [`dump`] writes the shortest tag for each value, as rpyc 6 does, so
//! its output matches stock byte for byte (except for frozensets, which stock writes in its own
//! set-iteration order). [`load`] accepts every tag stock writes, including the longer forms a
//! canonical encoder would not use, and refuses anything else.

use std::hash::{Hash, Hasher};

use bytes::Bytes;

use crate::{value::BigInt, ProtocolError};

mod codec;

pub use codec::{dump, dump_to_bytes, load, BrineLimits};
use codec::{fits_i64, parse_python_int};

/// `None`.
pub const TAG_NONE: u8 = 0x00;
/// `b""`, the empty byte string.
pub const TAG_EMPTY_BYTES: u8 = 0x01;
/// `()`, the empty tuple.
pub const TAG_EMPTY_TUPLE: u8 = 0x02;
/// `True`.
pub const TAG_TRUE: u8 = 0x03;
/// `False`.
pub const TAG_FALSE: u8 = 0x04;
/// `NotImplemented`.
pub const TAG_NOT_IMPLEMENTED: u8 = 0x05;
/// `Ellipsis` (`...`).
pub const TAG_ELLIPSIS: u8 = 0x06;
/// A `str`: followed by a byte-string value (one of the bytes tags) holding its UTF-8.
pub const TAG_STR: u8 = 0x08;
/// A byte string of 1 byte; `0x0b`, `0x0c` and `0x0d` are 2, 3 and 4 bytes.
pub const TAG_BYTES_1: u8 = 0x0a;
/// A byte string of 4 bytes.
pub const TAG_BYTES_4: u8 = 0x0d;
/// A byte string with a `u8` length (5..=255 when canonical).
pub const TAG_BYTES_L1: u8 = 0x0e;
/// A byte string with a `u32` big-endian length (256 and more when canonical).
pub const TAG_BYTES_L4: u8 = 0x0f;
/// A tuple of 1 item; `0x11`, `0x12` and `0x13` are 2, 3 and 4 items.
pub const TAG_TUPLE_1: u8 = 0x10;
/// A tuple of 4 items.
pub const TAG_TUPLE_4: u8 = 0x13;
/// A tuple with a `u8` item count (5..=255 when canonical).
pub const TAG_TUPLE_L1: u8 = 0x14;
/// A tuple with a `u32` big-endian item count (256 and more when canonical).
pub const TAG_TUPLE_L4: u8 = 0x15;
/// An int outside the immediate range: a `u8` length, then `str(int)` in ASCII.
pub const TAG_INT_L1: u8 = 0x16;
/// An int whose decimal text has 256 characters or more: a `u32` big-endian length, then the
/// text.
pub const TAG_INT_L4: u8 = 0x17;
/// A float: IEEE 754 binary64, big-endian.
pub const TAG_FLOAT: u8 = 0x18;
/// A slice: followed by a 3-tuple `(start, stop, step)`.
pub const TAG_SLICE: u8 = 0x19;
/// A frozenset: followed by a tuple of its members.
pub const TAG_FROZENSET: u8 = 0x1a;
/// A complex: two binary64 big-endian, real then imaginary.
pub const TAG_COMPLEX: u8 = 0x1b;
/// The first immediate-int tag: bytes `0x20..=0xef` are the ints `-48..=159` (`byte - 0x50`).
pub const TAG_IMMEDIATE_FIRST: u8 = 0x20;
/// The last immediate-int tag.
pub const TAG_IMMEDIATE_LAST: u8 = 0xef;
/// The smallest int that has an immediate tag.
pub const IMMEDIATE_MIN: i64 = -48;
/// The largest int that has an immediate tag.
pub const IMMEDIATE_MAX: i64 = 159;
pub(super) const IMMEDIATE_BIAS: i64 = 0x50;

/// The most digits CPython accepts when it turns decimal text into an int
/// (`sys.int_info.default_max_str_digits`); stock rpyc can neither send nor load a longer int.
pub const CPYTHON_MAX_INT_DIGITS: usize = 4300;

/// A value as brine carries it, with Python's exact types: `True` is not `1`, `b"a"` is not
/// `"a"`, a tuple is not a frozenset.
///
/// Equality (and hashing) is structural, with floats compared by their bits: `NaN == NaN`,
/// `0.0 != -0.0`, `1.0 != Int(1)`. Python's `1 == 1.0 == True` equalities are deliberately not
/// modelled: this is the wire's view, not Python's.
///
/// An int in `i64` range is always [`Brine::Int`]; [`Brine::BigInt`] holds only ints beyond
/// it ([`load`] keeps to this, and [`Brine::from`]`(BigInt)` normalizes), so equal ints are equal
/// values.
#[derive(Clone, Debug)]
pub enum Brine {
    /// `None`.
    None,
    /// `True` or `False`.
    Bool(bool),
    /// An `int` in `i64` range.
    Int(i64),
    /// An `int` beyond `i64`, as its canonical decimal text (Python ints are unbounded).
    BigInt(BigInt),
    /// A `float`, bit for bit (`-0.0` and every NaN payload survive).
    Float(f64),
    /// A `complex`.
    Complex {
        /// The real part.
        re: f64,
        /// The imaginary part.
        im: f64,
    },
    /// A `str` (valid UTF-8).
    Str(String),
    /// A `bytes`; when decoded, a zero-copy slice of the input.
    Bytes(Bytes),
    /// A `tuple`.
    Tuple(Vec<Brine>),
    /// A `frozenset`, its members in the order received (duplicates are not removed: Python's
    /// set equality is not modelled here).
    FrozenSet(Vec<Brine>),
    /// A `slice(start, stop, step)`.
    Slice {
        /// `start`.
        start: Box<Brine>,
        /// `stop`.
        stop: Box<Brine>,
        /// `step`.
        step: Box<Brine>,
    },
    /// `Ellipsis` (`...`).
    Ellipsis,
    /// `NotImplemented`.
    NotImplemented,
}

impl Brine {
    /// A `str` value.
    pub fn str(s: impl Into<String>) -> Brine {
        Brine::Str(s.into())
    }

    /// A `bytes` value.
    pub fn bytes(b: impl Into<Bytes>) -> Brine {
        Brine::Bytes(b.into())
    }

    /// A `tuple` of the given items.
    pub fn tuple(items: impl IntoIterator<Item = Brine>) -> Brine {
        Brine::Tuple(items.into_iter().collect())
    }

    /// A `slice(start, stop, step)`.
    pub fn slice(start: Brine, stop: Brine, step: Brine) -> Brine {
        Brine::Slice { start: Box::new(start), stop: Box::new(stop), step: Box::new(step) }
    }

    /// An `int` of any size given as decimal text, with the grammar of Python's `int(bytes)`:
    /// optional ASCII whitespace around, an optional sign, digits with single underscores
    /// between them, leading zeros allowed. At most `max_digits` digits.
    pub fn int_from_decimal(text: &[u8], max_digits: usize) -> Result<Brine, ProtocolError> {
        parse_python_int(text, max_digits)
    }

    /// The Python type name of this value (`"NoneType"`, `"int"`, `"frozenset"`, …), for error
    /// messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Brine::None => "NoneType",
            Brine::Bool(_) => "bool",
            Brine::Int(_) | Brine::BigInt(_) => "int",
            Brine::Float(_) => "float",
            Brine::Complex { .. } => "complex",
            Brine::Str(_) => "str",
            Brine::Bytes(_) => "bytes",
            Brine::Tuple(_) => "tuple",
            Brine::FrozenSet(_) => "frozenset",
            Brine::Slice { .. } => "slice",
            Brine::Ellipsis => "ellipsis",
            Brine::NotImplemented => "NotImplementedType",
        }
    }

    /// The int, when this is an `int` in `i64` range (not a `bool`).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Brine::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The text, when this is a `str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Brine::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items, when this is a `tuple`.
    pub fn as_tuple(&self) -> Option<&[Brine]> {
        match self {
            Brine::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The number of values in this tree, itself included: what [`BrineLimits::max_values`]
    /// counts.
    pub fn count_values(&self) -> usize {
        match self {
            Brine::Tuple(items) | Brine::FrozenSet(items) => {
                items.iter().fold(1usize, |n, item| n.saturating_add(item.count_values()))
            }
            Brine::Slice { start, stop, step } => 1usize
                .saturating_add(start.count_values())
                .saturating_add(stop.count_values())
                .saturating_add(step.count_values()),
            _ => 1,
        }
    }

    /// How deep this tree nests: 0 for a scalar or an empty container, one more than its
    /// deepest item otherwise. What [`BrineLimits::max_depth`] bounds.
    pub fn depth(&self) -> usize {
        match self {
            Brine::Tuple(items) | Brine::FrozenSet(items) => {
                items.iter().map(|item| item.depth().saturating_add(1)).max().unwrap_or(0)
            }
            Brine::Slice { start, stop, step } => 1 + start.depth().max(stop.depth()).max(step.depth()),
            _ => 0,
        }
    }
}

impl PartialEq for Brine {
    fn eq(&self, other: &Brine) -> bool {
        use Brine::*;
        match (self, other) {
            (None, None) | (Ellipsis, Ellipsis) | (NotImplemented, NotImplemented) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (BigInt(a), BigInt(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Complex { re: a, im: b }, Complex { re: c, im: d }) => {
                a.to_bits() == c.to_bits() && b.to_bits() == d.to_bits()
            }
            (Str(a), Str(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Tuple(a), Tuple(b)) | (FrozenSet(a), FrozenSet(b)) => a == b,
            (Slice { start: a, stop: b, step: c }, Slice { start: d, stop: e, step: f }) => a == d && b == e && c == f,
            _ => false,
        }
    }
}

impl Eq for Brine {}

impl Hash for Brine {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Brine::None | Brine::Ellipsis | Brine::NotImplemented => {}
            Brine::Bool(b) => b.hash(state),
            Brine::Int(v) => v.hash(state),
            Brine::BigInt(v) => v.hash(state),
            Brine::Float(v) => v.to_bits().hash(state),
            Brine::Complex { re, im } => {
                re.to_bits().hash(state);
                im.to_bits().hash(state);
            }
            Brine::Str(s) => s.hash(state),
            Brine::Bytes(b) => b.hash(state),
            Brine::Tuple(items) | Brine::FrozenSet(items) => items.hash(state),
            Brine::Slice { start, stop, step } => {
                start.hash(state);
                stop.hash(state);
                step.hash(state);
            }
        }
    }
}

impl From<bool> for Brine {
    fn from(v: bool) -> Brine {
        Brine::Bool(v)
    }
}

impl From<i64> for Brine {
    fn from(v: i64) -> Brine {
        Brine::Int(v)
    }
}

impl From<u64> for Brine {
    fn from(v: u64) -> Brine {
        match i64::try_from(v) {
            Ok(v) => Brine::Int(v),
            Err(_) => Brine::BigInt(BigInt::from(u128::from(v))),
        }
    }
}

impl From<i128> for Brine {
    fn from(v: i128) -> Brine {
        match i64::try_from(v) {
            Ok(v) => Brine::Int(v),
            Err(_) => Brine::BigInt(BigInt::from(v)),
        }
    }
}

impl From<BigInt> for Brine {
    /// [`Brine::Int`] when the value fits `i64`, [`Brine::BigInt`] otherwise.
    fn from(v: BigInt) -> Brine {
        match fits_i64(v.as_str()) {
            Some(small) => Brine::Int(small),
            None => Brine::BigInt(v),
        }
    }
}

impl From<f64> for Brine {
    fn from(v: f64) -> Brine {
        Brine::Float(v)
    }
}

impl From<&str> for Brine {
    fn from(v: &str) -> Brine {
        Brine::Str(v.to_owned())
    }
}

impl From<String> for Brine {
    fn from(v: String) -> Brine {
        Brine::Str(v)
    }
}

impl From<Bytes> for Brine {
    fn from(v: Bytes) -> Brine {
        Brine::Bytes(v)
    }
}
