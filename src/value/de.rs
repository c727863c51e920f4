//! [`Value`] → any `Deserialize` type: the [`ValueDeserializer`] and `impl Deserialize for Value`.
//!
//! The reverse of the mapping in [`ser`](super::ser), with some leniency where a peer (say,
//! Python) may send the same thing in another shape:
//!
//! - `deserialize_any` dispatches on the variant: `None` → unit, `Int` → `i64`, `BigInt` →
//!   `i64`/`u64`/`i128`/`u128` when it fits (else an error), `Float` → `f64`, `Complex` → a
//!   seq of two floats, `Str` → string, `Bytes` → byte buffer, `Tuple`/`List` → seq, `Map` →
//!   map, `FrozenSet` → seq (so it reads as `Vec<T>`, `HashSet<T>`, `BTreeSet<T>`), `Slice` →
//!   seq of three (a 3-tuple), `Ellipsis` and `NotImplemented` → unit (so `()` reads them too);
//!   a `Ref` only deserializes through [`deserialize_ref`](super::deserialize_ref).
//! - [`FrozenSet`](super::FrozenSet), [`Slice`](super::Slice), [`Ellipsis`](super::Ellipsis)
//!   and [`NotImplemented`](super::NotImplemented) read only from the matching variant.
//! - `Option`: `None` → `None`, anything else → `Some`.
//! - Bytes (`serde_bytes`, `bytes::Bytes`) from `Bytes`, or from a `List`/`Tuple` of ints in
//!   `0..=255`; a `Vec<u8>` (a seq to serde) from `Bytes` too.
//! - Enums: `Str(name)` → unit variant; a `Map` with exactly one `(name, content)` pair → any
//!   variant (unit variants accept `None` content).
//! - Structs from a `Map` (by field name) or from a `Tuple`/`List` (by position); unit and unit
//!   structs from `None`.
//!
//! Errors say what was expected and what was found ("invalid type: string \"x\", expected
//! i64"). It never panics on any `Value`, and allocates no more than the input holds.
//!
//! Known limit: serde buffers the input of untagged and internally tagged enums and of
//! `#[serde(flatten)]` fields in its own content type, which cannot hold a reference; a `Ref`
//! under such an attribute fails to deserialize.
//!
//! This file holds the entry points and the `Deserializer` for one value; `access` holds the
//! seq, map and enum access types through which a visitor reads a container's elements, and
//! `deserialize_value` holds `impl Deserialize for Value` and the handovers of parked values.

use std::any::{type_name, Any};
use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, Deserializer, Expected, IntoDeserializer, Unexpected, Visitor};
use serde::forward_to_deserialize_any;

use super::refs::{
    self, BYTES_TOKEN, DE_SLOT, ELLIPSIS_TOKEN, FROZENSET_TOKEN, NOT_IMPLEMENTED_TOKEN, REF_TOKEN, SLICE_TOKEN,
    VALUE_TOKEN,
};
use super::{ConvertError, Value};

mod access;
mod deserialize_value;

use access::Variant;
use deserialize_value::{BytesHandover, Handover};

/// Converts a [`Value`] whose references are `R` to any `DeserializeOwned` type.
///
/// The reverse of [`to_value`](super::to_value), with some leniency:
///
/// - integers of any width from `Int`, and from `BigInt` when they fit;
/// - `Option`: `None` → `None`, anything else → `Some`;
/// - byte buffers (`serde_bytes`, `bytes::Bytes`) from `Bytes` or from a `List`/`Tuple` of ints
///   in `0..=255`; `Vec<u8>` from `Bytes` too;
/// - enums from `Str(name)` (unit variant) or a `Map` with exactly one `(name, content)` pair;
/// - structs from a `Map` by field name or from a `Tuple`/`List` by position; unit and unit
///   structs from `None`;
/// - a reference (a type whose `Deserialize` calls [`deserialize_ref`](super::deserialize_ref))
///   from `Ref`, and only from it; nothing else reads a `Ref`;
/// - a `FrozenSet` as any sequence or set (`Vec<T>`, `HashSet<T>`, `BTreeSet<T>`), a `Slice` as
///   a 3-tuple, `Ellipsis` and `NotImplemented` as unit; the typed
///   [`FrozenSet`](super::FrozenSet), [`Slice`](super::Slice), [`Ellipsis`](super::Ellipsis)
///   and [`NotImplemented`](super::NotImplemented) read only from the matching variant.
///
/// A `Value<R>` converts to an equal `Value<R>` without copying, also when nested inside another
/// serde type. It never panics, and allocates no more than the value holds.
///
/// ```
/// use netref::{from_value, Data, Value};
///
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// struct Point { x: i32, y: i32 }
///
/// let v: Data = Value::Map(vec![(Value::from("x"), Value::Int(1)), (Value::from("y"), Value::Int(2))]);
/// assert_eq!(from_value::<Point>(v).unwrap(), Point { x: 1, y: 2 });
///
/// let err = from_value::<i64>(Data::from("x")).unwrap_err();
/// assert_eq!(err.to_string(), "invalid type: string \"x\", expected i64");
/// ```
///
/// # Errors
///
/// When the value does not fit `T`: the message names what was expected and what was found.
///
/// The reference type is an `impl` parameter, so `from_value::<T>(value)` needs no `R`.
pub fn from_value<T: DeserializeOwned>(value: Value<impl Any + Send>) -> Result<T, ConvertError> {
    T::deserialize(ValueDeserializer::new(value))
}

/// [`from_value`] for a request's reply: a reply read as `()` is discarded, whatever it holds
/// (the caller said it does not want it), instead of failing on anything but `None`.
pub(crate) fn from_reply<T: DeserializeOwned>(value: Value<impl Any + Send>) -> Result<T, ConvertError> {
    T::deserialize(ValueDeserializer { value, discard_unit: true })
}

/// The serde `Deserializer` that reads a [`Value`] with references of type `R`.
///
/// Usually reached through [`from_value`]; `Value` also implements [`IntoDeserializer`].
pub struct ValueDeserializer<R> {
    value: Value<R>,
    /// Read as `()`, any value is accepted and dropped (a reply nobody wants).
    discard_unit: bool,
}

impl<R> ValueDeserializer<R> {
    /// A deserializer reading `value`.
    pub fn new(value: Value<R>) -> Self {
        ValueDeserializer { value, discard_unit: false }
    }

    /// The value back.
    pub fn into_inner(self) -> Value<R> {
        self.value
    }
}

impl<R> fmt::Debug for ValueDeserializer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueDeserializer").field("kind", &self.value.kind()).finish()
    }
}

impl<'de, R: Any + Send> IntoDeserializer<'de, ConvertError> for Value<R> {
    type Deserializer = ValueDeserializer<R>;

    fn into_deserializer(self) -> ValueDeserializer<R> {
        ValueDeserializer::new(self)
    }
}

impl<'de, R: Any + Send> IntoDeserializer<'de, ConvertError> for ValueDeserializer<R> {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

/// How a value shows in an error message ("invalid type: {unexpected}, expected …").
fn unexpected<R>(value: &Value<R>) -> Unexpected<'_> {
    match value {
        Value::None => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Int(i) => Unexpected::Signed(*i),
        Value::BigInt(_) => Unexpected::Other("big integer"),
        Value::Float(x) => Unexpected::Float(*x),
        Value::Complex(..) => Unexpected::Other("complex number"),
        Value::Str(s) => Unexpected::Str(prefix(s)),
        Value::Bytes(b) => Unexpected::Bytes(b),
        Value::Tuple(_) => Unexpected::Other("tuple"),
        Value::List(_) => Unexpected::Other("list"),
        Value::Map(_) => Unexpected::Map,
        Value::Ref(_) => Unexpected::Other("object reference"),
        Value::FrozenSet(_) => Unexpected::Other("frozenset"),
        Value::Slice(_) => Unexpected::Other("slice"),
        Value::Ellipsis => Unexpected::Other("Ellipsis"),
        Value::NotImplemented => Unexpected::Other("NotImplemented"),
    }
}

impl<R> ValueDeserializer<R> {
    fn invalid_type(&self, expected: &dyn Expected) -> ConvertError {
        de::Error::invalid_type(unexpected(&self.value), expected)
    }
}

/// Turns a byte-valued `Int` into a `u8`, for byte buffers sent as lists of ints.
fn byte_of<R>(value: &Value<R>) -> Result<u8, ConvertError> {
    match value {
        Value::Int(i) => {
            u8::try_from(*i).map_err(|_| de::Error::invalid_value(Unexpected::Signed(*i), &"a byte (0..=255)"))
        }
        other => Err(de::Error::invalid_type(unexpected(other), &"a byte (0..=255)")),
    }
}

impl<'de, R: Any + Send> Deserializer<'de> for ValueDeserializer<R> {
    type Error = ConvertError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.value {
            Value::None => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Int(i) => visitor.visit_i64(i),
            Value::BigInt(ref big) => {
                if let Some(i) = big.to_i128() {
                    match (i64::try_from(i), u64::try_from(i)) {
                        (Ok(i), _) => visitor.visit_i64(i),
                        (_, Ok(u)) => visitor.visit_u64(u),
                        _ => visitor.visit_i128(i),
                    }
                } else if let Some(u) = big.to_u128() {
                    visitor.visit_u128(u)
                } else {
                    Err(de::Error::invalid_value(
                        Unexpected::Other(&format!("integer `{}`", truncated(big.as_str()))),
                        &"an integer that fits in 128 bits",
                    ))
                }
            }
            Value::Float(x) => visitor.visit_f64(x),
            Value::Complex(re, im) => Self::visit_items(vec![Value::Float(re), Value::Float(im)], visitor),
            Value::Str(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(Vec::from(b)),
            Value::Tuple(items) | Value::List(items) | Value::FrozenSet(items) => Self::visit_items(items, visitor),
            Value::Slice(parts) => Self::visit_items(Vec::from(*parts), visitor),
            Value::Map(pairs) => Self::visit_pairs(pairs, visitor),
            Value::Ellipsis | Value::NotImplemented => visitor.visit_unit(),
            Value::Ref(_) => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.value {
            Value::None => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        if self.discard_unit {
            return visitor.visit_unit();
        }
        match self.value {
            Value::None | Value::Ellipsis | Value::NotImplemented => visitor.visit_unit(),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        match (name, self.value) {
            (REF_TOKEN, Value::Ref(r)) => {
                let parked = refs::put(&DE_SLOT, Box::new(r), type_name::<R>());
                visitor.visit_newtype_struct(parked.token.into_deserializer())
            }
            (REF_TOKEN, value) => Err(de::Error::invalid_type(unexpected(&value), &visitor)),
            (VALUE_TOKEN, value) => {
                let parked = refs::put(&DE_SLOT, Box::new(value), type_name::<Value<R>>());
                visitor.visit_newtype_struct(Handover::<R> { token: parked.token, _refs: PhantomData })
            }
            (BYTES_TOKEN, Value::Bytes(bytes)) => {
                // `SharedBytes` takes the `Bytes` itself (no copy).
                let parked = refs::put(&DE_SLOT, Box::new(bytes), type_name::<Bytes>());
                visitor.visit_newtype_struct(BytesHandover::<R> { token: parked.token, _refs: PhantomData })
            }
            // The typed Python values read only from their own variant.
            (FROZENSET_TOKEN, value @ Value::FrozenSet(_)) | (SLICE_TOKEN, value @ Value::Slice(_)) => {
                visitor.visit_newtype_struct(ValueDeserializer::new(value))
            }
            (ELLIPSIS_TOKEN, Value::Ellipsis) | (NOT_IMPLEMENTED_TOKEN, Value::NotImplemented) => {
                visitor.visit_newtype_struct(ValueDeserializer::<R>::new(Value::None))
            }
            (FROZENSET_TOKEN | SLICE_TOKEN | ELLIPSIS_TOKEN | NOT_IMPLEMENTED_TOKEN, value) => {
                Err(de::Error::invalid_type(unexpected(&value), &visitor))
            }
            (_, value) => visitor.visit_newtype_struct(ValueDeserializer::new(value)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.value {
            Value::Bytes(b) => Self::visit_byte_seq(b, visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_byte_buf(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.value {
            Value::Tuple(ref items) | Value::List(ref items) => {
                let bytes = items.iter().map(byte_of).collect::<Result<Vec<u8>, _>>()?;
                visitor.visit_byte_buf(bytes)
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        match self.value {
            Value::Map(_) | Value::Tuple(_) | Value::List(_) => self.deserialize_any(visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.value {
            Value::Map(pairs) => Self::visit_pairs(pairs, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        match self.value {
            Value::Str(_) => visitor.visit_enum(Variant { name: self.value, content: None }),
            Value::Map(mut pairs) => match (pairs.pop(), pairs.is_empty()) {
                (Some((name, content)), true) => visitor.visit_enum(Variant { name, content: Some(content) }),
                (popped, _) => Err(de::Error::invalid_length(
                    pairs.len() + usize::from(popped.is_some()),
                    &"a map with exactly one entry (an enum variant)",
                )),
            },
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.value {
            Value::Int(i) if i >= 0 => visitor.visit_u64(i as u64),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self.value {
            // A `BigInt` carries its decimal text; this lets `netref::BigInt` deserialize from it.
            Value::BigInt(big) => visitor.visit_string(big.as_str().to_owned()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        drop(self);
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
    }
}

/// The first 40 characters of a long text, for error messages.
fn truncated(text: &str) -> String {
    let short = prefix(text);
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short.to_owned()
    }
}

/// At most the first 40 characters of `text`, so a huge string does not make a huge message.
fn prefix(text: &str) -> &str {
    match text.char_indices().nth(40) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;
    use crate::value::{BigInt, Data};

    fn s(text: &str) -> Data {
        Value::Str(text.to_owned())
    }

    fn read<T: DeserializeOwned>(v: Data) -> Result<T, ConvertError> {
        from_value(v)
    }

    fn err<T: DeserializeOwned + fmt::Debug>(v: Data) -> String {
        read::<T>(v).unwrap_err().to_string()
    }

    #[derive(Deserialize, Debug, PartialEq)]
    enum E {
        Unit,
        New(u8),
        Tup(u8, bool),
        Rec { a: u8 },
    }

    #[derive(Deserialize, Debug, PartialEq)]
    struct Rec {
        a: u8,
        b: Option<String>,
    }

    #[test]
    fn errors_name_what_was_expected_and_found() {
        assert_eq!(err::<i64>(s("x")), "invalid type: string \"x\", expected i64");
        assert_eq!(err::<String>(Value::Int(3)), "invalid type: integer `3`, expected a string");
        assert_eq!(err::<u8>(Value::Int(300)), "invalid value: integer `300`, expected u8");
        assert_eq!(err::<bool>(Value::List(vec![])), "invalid type: sequence, expected a boolean");
        assert_eq!(err::<E>(Value::List(vec![])), "invalid type: list, expected enum E");
        assert_eq!(
            err::<E>(Value::Map(vec![])),
            "invalid length 0, expected a map with exactly one entry (an enum variant)"
        );
        assert_eq!(err::<(u8, u8)>(Value::Tuple(vec![Value::Int(1)])), "invalid length 1, expected a tuple of size 2");
        assert_eq!(
            err::<(u8,)>(Value::Tuple(vec![Value::Int(1), Value::Int(2)])),
            "invalid length 2, expected 1 elements in sequence"
        );
        assert_eq!(err::<E>(Value::Int(1)), "invalid type: integer `1`, expected enum E");
        assert_eq!(err::<E>(s("Nope")), "unknown variant `Nope`, expected one of `Unit`, `New`, `Tup`, `Rec`");
        assert_eq!(err::<Rec>(Value::Map(vec![])), "missing field `a`");
        assert_eq!(err::<()>(Value::Int(1)), "invalid type: integer `1`, expected unit");
        assert!(err::<i64>(Value::BigInt(BigInt::parse(&"9".repeat(50)).unwrap())).contains("128 bits"));
    }

    #[test]
    fn enums_read_every_variant_shape() {
        assert_eq!(read::<E>(s("Unit")).unwrap(), E::Unit);
        assert_eq!(read::<E>(Value::Map(vec![(s("Unit"), Value::None)])).unwrap(), E::Unit);
        assert_eq!(read::<E>(Value::Map(vec![(s("New"), Value::Int(1))])).unwrap(), E::New(1));
        let tup = Value::Map(vec![(s("Tup"), Value::List(vec![Value::Int(1), Value::Bool(true)]))]);
        assert_eq!(read::<E>(tup).unwrap(), E::Tup(1, true));
        let rec = Value::Map(vec![(s("Rec"), Value::Map(vec![(s("a"), Value::Int(1))]))]);
        assert_eq!(read::<E>(rec).unwrap(), E::Rec { a: 1 });
        assert!(read::<E>(s("New")).is_err());
        assert!(read::<E>(Value::Map(vec![(s("Unit"), Value::Int(1))])).is_err());
    }

    #[test]
    fn structs_read_from_maps_and_positionally() {
        let by_name = Value::Map(vec![(s("b"), s("x")), (s("a"), Value::Int(1))]);
        assert_eq!(read::<Rec>(by_name).unwrap(), Rec { a: 1, b: Some("x".into()) });
        let by_position = Value::Tuple(vec![Value::Int(1), Value::None]);
        assert_eq!(read::<Rec>(by_position).unwrap(), Rec { a: 1, b: None });
        let map: BTreeMap<i64, bool> = read(Value::Map(vec![(Value::Int(2), Value::Bool(true))])).unwrap();
        assert_eq!(map, [(2, true)].into());
    }

    #[test]
    fn bytes_are_read_leniently() {
        let buf: serde_bytes::ByteBuf = read(Value::List(vec![Value::Int(1), Value::Int(255)])).unwrap();
        assert_eq!(buf.as_slice(), &[1, 255]);
        assert!(read::<serde_bytes::ByteBuf>(Value::List(vec![Value::Int(256)])).is_err());
        assert!(read::<serde_bytes::ByteBuf>(Value::List(vec![s("a")])).is_err());
        let vec: Vec<u8> = read(Value::Bytes(Bytes::from_static(b"ab"))).unwrap();
        assert_eq!(vec, b"ab");
        let b: Bytes = read(Value::Bytes(Bytes::from_static(b"ab"))).unwrap();
        assert_eq!(b, Bytes::from_static(b"ab"));
    }

    #[test]
    fn big_integers_fit_where_they_can() {
        let big = |t: &str| Value::BigInt(BigInt::parse(t).unwrap());
        assert_eq!(read::<u64>(big("18446744073709551615")).unwrap(), u64::MAX);
        assert_eq!(read::<i128>(big(&i128::MIN.to_string())).unwrap(), i128::MIN);
        assert_eq!(read::<u128>(big(&u128::MAX.to_string())).unwrap(), u128::MAX);
        assert_eq!(read::<BigInt>(big("123")).unwrap(), BigInt::parse("123").unwrap());
        assert!(read::<i64>(big("18446744073709551615")).is_err());
    }

    #[test]
    fn buffered_enums_read_plain_data() {
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(untagged)]
        enum Either {
            Num(i64),
            Words(Vec<String>),
        }
        #[derive(Deserialize, Debug, PartialEq)]
        #[serde(tag = "kind")]
        enum Tagged {
            A { x: u8 },
        }
        assert_eq!(read::<Either>(Value::Int(3)).unwrap(), Either::Num(3));
        assert_eq!(read::<Either>(Value::List(vec![s("a")])).unwrap(), Either::Words(vec!["a".into()]));
        let tagged = Value::Map(vec![(s("kind"), s("A")), (s("x"), Value::Int(1))]);
        assert_eq!(read::<Tagged>(tagged).unwrap(), Tagged::A { x: 1 });
        assert_eq!(err::<Either>(Value::Bool(true)), "data did not match any variant of untagged enum Either");
    }

    #[test]
    fn the_deserializer_never_panics_on_odd_shapes() {
        let odd: Vec<Data> = vec![
            Value::Map(vec![(Value::None, Value::None), (Value::None, Value::None)]),
            Value::Complex(f64::NAN, 1.0),
            Value::Bytes(Bytes::new()),
            Value::Tuple(vec![]),
        ];
        for v in odd {
            let _ = read::<E>(v.clone());
            let _ = read::<Rec>(v.clone());
            let _ = read::<Vec<u8>>(v.clone());
            let _ = read::<(f64, f64)>(v.clone());
            let _ = read::<BTreeMap<String, u8>>(v);
        }
    }
}
