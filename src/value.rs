//! The value model: what travels by value, what by reference.
//!
//! [`Value`] mirrors what RPyC's brine can carry by value, plus a reference variant for objects
//! that travel by reference. [`to_value`] and [`from_value`] bridge any serde type to `Value`
//! and back, so typed code never matches on `Value` by hand.
//!
//! This module must never depend on actix or on a connection: it is plain data.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

mod convert_error;
mod de;
mod py;
mod refs;
mod ser;
mod shared_bytes;

pub use convert_error::ConvertError;
pub(crate) use de::from_reply;
pub use de::{from_value, ValueDeserializer};
pub use py::{Ellipsis, FrozenSet, NotImplemented, Slice};
pub(crate) use refs::BYTES_TOKEN;
pub use refs::{deserialize_ref, serialize_ref, REF_TOKEN};
pub(crate) use ser::into_value;
pub use ser::{to_value, ValueSerializer};
pub use shared_bytes::SharedBytes;

/// A value as netref carries it.
///
/// `R` is the type of an object reference: user code sees [`crate::NetRef`]; the protocol layer
/// sees [`WireRef`] (a boxing label plus an [`IdPack`]).
///
/// Equality is structural; floats compare by their bits, so `NaN == NaN` and `0.0 != -0.0`;
/// a [`FrozenSet`](Value::FrozenSet)'s members compare in order.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Value<R = crate::NetRef> {
    /// Python's `None`, Rust's `()` and `Option::None`.
    None,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// An integer beyond `i64` (Python ints are unbounded).
    BigInt(BigInt),
    /// A 64-bit float.
    Float(f64),
    /// A complex number `(real, imaginary)`.
    Complex(f64, f64),
    /// A Unicode string.
    Str(String),
    /// A byte string; shares its buffer (zero-copy) with the frame it was decoded from.
    Bytes(Bytes),
    /// A fixed-size, heterogeneous sequence (Rust tuples, tuple structs, call arguments).
    Tuple(Vec<Value<R>>),
    /// A variable-size sequence (`Vec`, slices, sets).
    List(Vec<Value<R>>),
    /// A map as ordered key/value pairs (maps, structs, keyword arguments).
    Map(Vec<(Value<R>, Value<R>)>),
    /// An object that travels by reference.
    Ref(R),
    /// Python's `frozenset`: a set by contract, its members kept in the order given.
    ///
    /// netref does not hash or deduplicate: equality of two `FrozenSet`s is order-sensitive
    /// (the same members in another order compare unequal), and a sender is expected not to
    /// repeat a member. Typed code produces one with [`FrozenSet`] and reads
    /// one as any sequence or set (`Vec<T>`, `HashSet<T>`, `BTreeSet<T>`). Its members are
    /// plain data: a `FrozenSet` holding a reference cannot be sent (RPyC sends such a set by
    /// reference, never by value). On the native wire it needs the peer's
    /// [`FEATURE_PY_VALUES`](crate::protocol::FEATURE_PY_VALUES).
    FrozenSet(Vec<Value<R>>),
    /// Python's `slice(start, stop, step)`: the three values in that order, any values (usually
    /// ints or `None`). Typed code produces one with [`Slice`] and reads one as a
    /// 3-tuple. Plain data only, like [`FrozenSet`](Value::FrozenSet); needs
    /// [`FEATURE_PY_VALUES`](crate::protocol::FEATURE_PY_VALUES) on the native wire.
    Slice(Box<[Value<R>; 3]>),
    /// Python's `Ellipsis` (`...`); [`Ellipsis`] in typed code. Reads as unit.
    /// Needs [`FEATURE_PY_VALUES`](crate::protocol::FEATURE_PY_VALUES) on the native wire.
    Ellipsis,
    /// Python's `NotImplemented`; [`NotImplemented`] in typed code. Reads
    /// as unit. Needs [`FEATURE_PY_VALUES`](crate::protocol::FEATURE_PY_VALUES) on the native
    /// wire.
    NotImplemented,
}

impl<R> Value<R> {
    /// The kind of this value as a short lowercase name (`"int"`, `"str"`, `"ref"`, …), for
    /// error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "none",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::BigInt(_) => "bigint",
            Value::Float(_) => "float",
            Value::Complex(..) => "complex",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::Tuple(_) => "tuple",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Ref(_) => "ref",
            Value::FrozenSet(_) => "frozenset",
            Value::Slice(_) => "slice",
            Value::Ellipsis => "ellipsis",
            Value::NotImplemented => "notimplemented",
        }
    }

    /// Whether this value or anything inside it is a reference.
    pub fn has_refs(&self) -> bool {
        match self {
            Value::Ref(_) => true,
            Value::Tuple(items) | Value::List(items) | Value::FrozenSet(items) => items.iter().any(Value::has_refs),
            Value::Slice(parts) => parts.iter().any(Value::has_refs),
            Value::Map(pairs) => pairs.iter().any(|(k, v)| k.has_refs() || v.has_refs()),
            _ => false,
        }
    }

    /// Converts every reference with `f`, keeping the structure; the first error stops it.
    pub fn try_map_refs<S, E>(self, f: &mut impl FnMut(R) -> Result<S, E>) -> Result<Value<S>, E> {
        Ok(match self {
            Value::None => Value::None,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::BigInt(b) => Value::BigInt(b),
            Value::Float(x) => Value::Float(x),
            Value::Complex(re, im) => Value::Complex(re, im),
            Value::Str(s) => Value::Str(s),
            Value::Bytes(b) => Value::Bytes(b),
            Value::Tuple(items) => Value::Tuple(map_items(items, f)?),
            Value::List(items) => Value::List(map_items(items, f)?),
            Value::Map(pairs) => Value::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| Ok((k.try_map_refs(f)?, v.try_map_refs(f)?)))
                    .collect::<Result<_, E>>()?,
            ),
            Value::Ref(r) => Value::Ref(f(r)?),
            Value::FrozenSet(items) => Value::FrozenSet(map_items(items, f)?),
            Value::Slice(parts) => {
                let [start, stop, step] = *parts;
                Value::Slice(Box::new([start.try_map_refs(f)?, stop.try_map_refs(f)?, step.try_map_refs(f)?]))
            }
            Value::Ellipsis => Value::Ellipsis,
            Value::NotImplemented => Value::NotImplemented,
        })
    }
}

fn map_items<R, S, E>(items: Vec<Value<R>>, f: &mut impl FnMut(R) -> Result<S, E>) -> Result<Vec<Value<S>>, E> {
    items.into_iter().map(|v| v.try_map_refs(f)).collect()
}

impl<R: PartialEq> PartialEq for Value<R> {
    fn eq(&self, other: &Self) -> bool {
        use Value::*;
        match (self, other) {
            (None, None) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (BigInt(a), BigInt(b)) => a == b,
            (Float(a), Float(b)) => a.to_bits() == b.to_bits(),
            (Complex(a, b), Complex(c, d)) => a.to_bits() == c.to_bits() && b.to_bits() == d.to_bits(),
            (Str(a), Str(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Tuple(a), Tuple(b)) | (List(a), List(b)) => a == b,
            (Map(a), Map(b)) => a == b,
            (Ref(a), Ref(b)) => a == b,
            (FrozenSet(a), FrozenSet(b)) => a == b,
            (Slice(a), Slice(b)) => a == b,
            (Ellipsis, Ellipsis) | (NotImplemented, NotImplemented) => true,
            _ => false,
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident as $conv:ty),* $(,)?) => {$(
        impl<R> From<$t> for Value<R> {
            fn from(v: $t) -> Self { Value::$variant(<$conv>::from(v)) }
        }
    )*};
}
value_from! {
    bool => Bool as bool, i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int as i64,
    u8 => Int as i64, u16 => Int as i64, u32 => Int as i64, f32 => Float as f64, f64 => Float as f64,
    String => Str as String, &str => Str as String, Bytes => Bytes as Bytes,
}

impl<R> From<i128> for Value<R> {
    fn from(v: i128) -> Self {
        match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(BigInt::from(v)),
        }
    }
}

impl<R> From<u64> for Value<R> {
    fn from(v: u64) -> Self {
        Value::from(i128::from(v))
    }
}

impl<R> From<()> for Value<R> {
    fn from((): ()) -> Self {
        Value::None
    }
}

/// An arbitrary-precision integer, kept as its canonical decimal text.
///
/// Canonical means: an optional `-`, then digits with no leading zero (`"0"`, never `"-0"`).
/// netref does no arithmetic on it; it carries Python's unbounded ints faithfully and converts
/// to and from `i128`/`u128` when they fit.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BigInt(String);

impl Serialize for BigInt {
    /// A newtype that [`ValueSerializer`] turns into [`Value::BigInt`]; other serializers see
    /// the decimal text.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct("$netref::BigInt", &self.0)
    }
}

impl BigInt {
    /// Parses canonical decimal text; anything else (`"+1"`, `"007"`, `"-0"`, `""`) is refused.
    pub fn parse(text: &str) -> Result<BigInt, InvalidBigInt> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'))
            && !(digits == "0" && text.starts_with('-'));
        if canonical {
            Ok(BigInt(text.to_owned()))
        } else {
            Err(InvalidBigInt(text.chars().take(40).collect()))
        }
    }

    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as `i128`, when it fits.
    pub fn to_i128(&self) -> Option<i128> {
        self.0.parse().ok()
    }

    /// The value as `u128`, when it fits.
    pub fn to_u128(&self) -> Option<u128> {
        self.0.parse().ok()
    }
}

impl<'de> Deserialize<'de> for BigInt {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        BigInt::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl From<i128> for BigInt {
    fn from(v: i128) -> Self {
        BigInt(v.to_string())
    }
}

impl From<u128> for BigInt {
    fn from(v: u128) -> Self {
        BigInt(v.to_string())
    }
}

impl fmt::Display for BigInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text that is not a canonical decimal integer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a canonical decimal integer: {0:?}")]
pub struct InvalidBigInt(String);

/// The identity of an object that travels by reference (RPyC's `id_pack`).
///
/// `instance_id == 0` names a class rather than an instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdPack {
    /// The object's type as `"module.Type"`, e.g. `"demo.Calculator"`.
    pub type_name: String,
    /// Identifies the type on the exporting side.
    pub class_id: u64,
    /// Identifies the object on the exporting side; `0` names the class itself.
    pub instance_id: u64,
}

impl IdPack {
    /// Whether this names a class rather than an instance.
    pub fn is_class(&self) -> bool {
        self.instance_id == 0
    }
}

/// Which side of a connection a reference lives on, as seen by the receiver (RPyC's labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefLabel {
    /// `LABEL_LOCAL_REF`: the object lives on the receiver's side; it unboxes to the original.
    Local,
    /// `LABEL_REMOTE_REF`: the object lives on the sender's side; the receiver builds a netref.
    Remote,
}

/// A reference as it travels on the wire: a boxing label and the object's identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WireRef {
    /// Where the object lives, from the receiver's point of view.
    pub label: RefLabel,
    /// The object's identity.
    pub id: IdPack,
}

/// Plain data: a [`Value`] that can hold no reference (used in error payloads).
pub type Data = Value<std::convert::Infallible>;
