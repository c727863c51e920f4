//! Any `Serialize` type → [`Value`]: the [`ValueSerializer`] and `impl Serialize for Value`.
//!
//! # Mapping
//!
//! | serde data model                         | `Value`                                    |
//! |------------------------------------------|--------------------------------------------|
//! | `bool`                                   | `Bool`                                     |
//! | `i8`–`i64`, `u8`–`u32`                   | `Int`                                      |
//! | `u64`, `i128`, `u128`                    | `Int` if it fits `i64`, else `BigInt`      |
//! | `f32`, `f64`                             | `Float`                                    |
//! | `char`, `str`                            | `Str`                                      |
//! | bytes (`serde_bytes`, `bytes::Bytes`)    | `Bytes` — one byte string, never per byte  |
//! | `None`, unit `()`, unit struct           | `None`                                     |
//! | `Some(x)`, newtype struct `N(x)`         | `x` converted                              |
//! | unit variant `E::A`                      | `Str("A")`                                 |
//! | newtype variant `E::A(x)`                | `Map[(Str("A"), x)]`                       |
//! | seq (`Vec`, slices, sets)                | `List`                                     |
//! | tuple, tuple struct                      | `Tuple`                                    |
//! | tuple variant `E::A(x, y)`               | `Map[(Str("A"), Tuple[x, y])]`             |
//! | map                                      | `Map` (keys may be any `Value`), in order  |
//! | struct                                   | `Map` with `Str` keys in field order       |
//! | struct variant `E::A { f }`              | `Map[(Str("A"), Map[(Str("f"), f)])]`      |
//! | a reference ([`serialize_ref`])          | `Ref`                                      |
//! | [`FrozenSet`]`(vec)`                     | `FrozenSet`, members in the `Vec`'s order  |
//! | [`Slice`]` { start, stop, step }`        | `Slice`                                    |
//! | [`Ellipsis`], [`NotImplemented`]         | `Ellipsis`, `NotImplemented`               |
//!
//! Skipped fields (`#[serde(skip_serializing_if = …)]`) are left out. `Vec<u8>` is a seq to
//! serde, so it becomes a `List` of `Int`s; wrap it in `serde_bytes` to get `Bytes`.
//!
//! `Value` itself serializes losslessly into a `Value` with the same reference type (a clone,
//! no walk), also when nested inside another serde type. Other serializers see it as plain data:
//! `Tuple` and `List` as sequences, `BigInt` as its decimal text, `Complex` as `(re, im)`,
//! `FrozenSet` as a sequence, `Slice` as `(start, stop, step)`, `Ellipsis` and `NotImplemented`
//! as unit.
//!
//! This module must never depend on a connection: it is pure data conversion. It never
//! preallocates more than a bounded amount for a length a `Serialize` impl reports.
//!
//! This file holds the entry point and the `Serializer` for one value; `compound` holds the
//! serializers that collect a container's elements, `serialize_value` holds
//! `impl Serialize for Value`, and `owned` converts a value given up by its owner without a
//! copy.
//!
//! [`serialize_ref`]: super::serialize_ref
//! [`FrozenSet`]: super::FrozenSet
//! [`Slice`]: super::Slice
//! [`Ellipsis`]: super::Ellipsis
//! [`NotImplemented`]: super::NotImplemented

use std::any::{type_name, Any};
use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::ser::{Serialize, Serializer};

use super::refs::{
    self, BIGINT_TOKEN, BYTES_TOKEN, COMPLEX_TOKEN, ELLIPSIS_TOKEN, FROZENSET_TOKEN, NOT_IMPLEMENTED_TOKEN, REF_TOKEN,
    SER_SLOT, SLICE_TOKEN, VALUE_TOKEN,
};
use super::{BigInt, ConvertError, Value};

mod compound;
mod owned;
mod serialize_value;

pub(crate) use owned::into_value;

use compound::{SerializeItems, SerializePairs, Shape};

/// Converts any `Serialize` value to a [`Value`] whose references are `R`.
///
/// | serde data model                         | `Value`                                    |
/// |------------------------------------------|--------------------------------------------|
/// | `bool`                                   | `Bool`                                     |
/// | `i8`–`i64`, `u8`–`u32`                   | `Int`                                      |
/// | `u64`, `i128`, `u128`                    | `Int` if it fits `i64`, else `BigInt`      |
/// | `f32`, `f64`                             | `Float`                                    |
/// | `char`, `str`                            | `Str`                                      |
/// | bytes (`serde_bytes`, `bytes::Bytes`)    | `Bytes` — one byte string, never per byte  |
/// | `None`, unit `()`, unit struct           | `None`                                     |
/// | `Some(x)`, newtype struct `N(x)`         | `x` converted                              |
/// | unit variant `E::A`                      | `Str("A")`                                 |
/// | newtype variant `E::A(x)`                | `Map[(Str("A"), x)]`                       |
/// | seq (`Vec`, slices, sets)                | `List`                                     |
/// | tuple, tuple struct                      | `Tuple`                                    |
/// | tuple variant `E::A(x, y)`               | `Map[(Str("A"), Tuple[x, y])]`             |
/// | map                                      | `Map` (keys may be any `Value`), in order  |
/// | struct                                   | `Map` with `Str` keys in field order       |
/// | struct variant `E::A { f }`              | `Map[(Str("A"), Map[(Str("f"), f)])]`      |
/// | a reference (`serialize_ref`)            | `Ref`                                      |
/// | `netref::FrozenSet(vec)`                 | `FrozenSet`, members in the `Vec`'s order  |
/// | `netref::Slice { start, stop, step }`    | `Slice`                                    |
/// | `netref::Ellipsis`, `NotImplemented`     | `Ellipsis`, `NotImplemented`               |
///
/// Skipped fields are left out. `Vec<u8>` is a seq to serde, so it becomes a `List` of `Int`s;
/// wrap it in `serde_bytes` to get `Bytes`. A `Value<R>` converts to an equal `Value<R>` (a
/// clone, sharing byte buffers), also when nested inside another serde type.
///
/// References convert only through `Value`: a type whose `Serialize` calls
/// [`serialize_ref`](super::serialize_ref) becomes `Value::Ref`; with any other serializer it
/// comes out as a meaningless number.
///
/// ```
/// use netref::{dev::to_value, Data, Value};
///
/// #[derive(serde::Serialize)]
/// struct Point { x: i32, y: i32 }
///
/// let v: Data = to_value(&Point { x: 1, y: 2 }).unwrap();
/// assert_eq!(v, Value::Map(vec![
///     (Value::from("x"), Value::Int(1)),
///     (Value::from("y"), Value::Int(2)),
/// ]));
/// ```
///
/// # Errors
///
/// A reference of another type than `R`, or a `Serialize` impl that reports an error.
pub fn to_value<R: Any + Send + 'static, T: Serialize + ?Sized>(value: &T) -> Result<Value<R>, ConvertError> {
    value.serialize(ValueSerializer::new())
}

/// The serde `Serializer` whose output is a [`Value`] with references of type `R`.
///
/// Usually reached through [`to_value`].
pub struct ValueSerializer<R> {
    _refs: PhantomData<fn() -> R>,
}

impl<R> ValueSerializer<R> {
    /// A serializer producing `Value<R>`.
    pub fn new() -> Self {
        ValueSerializer { _refs: PhantomData }
    }
}

impl<R> Default for ValueSerializer<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R> Clone for ValueSerializer<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for ValueSerializer<R> {}

impl<R> fmt::Debug for ValueSerializer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ValueSerializer<{}>", type_name::<R>())
    }
}

/// Preallocates for a length hint, but not without bound (a `Serialize` impl may misreport).
fn capacity(len: Option<usize>) -> usize {
    len.unwrap_or(0).min(4096)
}

impl<R: Any + Send> ValueSerializer<R> {
    /// The reference parked by `serialize_ref` under the token that `token` serializes to.
    fn take_ref<T: Serialize + ?Sized>(self, token: &T) -> Result<Value<R>, ConvertError> {
        let token = match token.serialize(self)? {
            Value::Int(i) => u64::try_from(i).ok(),
            _ => None,
        };
        let entry = token.and_then(|t| refs::take(&SER_SLOT, t)).ok_or_else(|| {
            ConvertError::new("an object reference token with no reference behind it (use netref::dev::serialize_ref)")
        })?;
        let r = entry.downcast::<R>().map_err(|e| ConvertError::new(format!("cannot convert an {e}")))?;
        Ok(Value::Ref(r))
    }
}

impl<R: Any + Send> Serializer for ValueSerializer<R> {
    type Ok = Value<R>;
    type Error = ConvertError;
    type SerializeSeq = SerializeItems<R>;
    type SerializeTuple = SerializeItems<R>;
    type SerializeTupleStruct = SerializeItems<R>;
    type SerializeTupleVariant = SerializeItems<R>;
    type SerializeMap = SerializePairs<R>;
    type SerializeStruct = SerializePairs<R>;
    type SerializeStructVariant = SerializePairs<R>;

    fn serialize_bool(self, v: bool) -> Result<Value<R>, ConvertError> {
        Ok(Value::Bool(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Value<R>, ConvertError> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_i16(self, v: i16) -> Result<Value<R>, ConvertError> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_i32(self, v: i32) -> Result<Value<R>, ConvertError> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_i64(self, v: i64) -> Result<Value<R>, ConvertError> {
        Ok(Value::Int(v))
    }

    fn serialize_i128(self, v: i128) -> Result<Value<R>, ConvertError> {
        Ok(Value::from(v))
    }

    fn serialize_u8(self, v: u8) -> Result<Value<R>, ConvertError> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_u16(self, v: u16) -> Result<Value<R>, ConvertError> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_u32(self, v: u32) -> Result<Value<R>, ConvertError> {
        Ok(Value::Int(v.into()))
    }

    fn serialize_u64(self, v: u64) -> Result<Value<R>, ConvertError> {
        Ok(Value::from(v))
    }

    fn serialize_u128(self, v: u128) -> Result<Value<R>, ConvertError> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(BigInt::from(v)),
        })
    }

    fn serialize_f32(self, v: f32) -> Result<Value<R>, ConvertError> {
        Ok(Value::Float(v.into()))
    }

    fn serialize_f64(self, v: f64) -> Result<Value<R>, ConvertError> {
        Ok(Value::Float(v))
    }

    fn serialize_char(self, v: char) -> Result<Value<R>, ConvertError> {
        Ok(Value::Str(v.to_string()))
    }

    fn serialize_str(self, v: &str) -> Result<Value<R>, ConvertError> {
        Ok(Value::Str(v.to_owned()))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Value<R>, ConvertError> {
        Ok(Value::Bytes(Bytes::copy_from_slice(v)))
    }

    fn serialize_none(self) -> Result<Value<R>, ConvertError> {
        Ok(Value::None)
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Value<R>, ConvertError> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Value<R>, ConvertError> {
        Ok(Value::None)
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value<R>, ConvertError> {
        Ok(Value::None)
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value<R>, ConvertError> {
        Ok(Value::Str(variant.to_owned()))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Value<R>, ConvertError> {
        match name {
            REF_TOKEN => self.take_ref(value),
            VALUE_TOKEN => {
                // Second hop: `Value::serialize` parked a clone of itself; take it.
                if let Some(v) = refs::take_if::<Value<R>>(&SER_SLOT) {
                    return Ok(v);
                }
                // First hop: ask the `Value` inside for a clone (it obliges if it is a
                // `Value<R>`, else it serializes its contents).
                let _want = refs::want::<Value<R>>();
                value.serialize(self)
            }
            BYTES_TOKEN => {
                // Second hop: `SharedBytes` parked its `Bytes`; take it (no copy).
                if let Some(b) = refs::take_if::<Bytes>(&SER_SLOT) {
                    return Ok(Value::Bytes(b));
                }
                // First hop: ask the `SharedBytes` inside for its `Bytes`.
                let _want = refs::want::<Bytes>();
                value.serialize(self)
            }
            BIGINT_TOKEN => match value.serialize(self)? {
                Value::Str(text) => {
                    BigInt::parse(&text).map(Value::BigInt).map_err(|e| ConvertError::new(e.to_string()))
                }
                other => Ok(other),
            },
            COMPLEX_TOKEN => match value.serialize(self)? {
                Value::Tuple(parts) => match parts.as_slice() {
                    [Value::Float(re), Value::Float(im)] => Ok(Value::Complex(*re, *im)),
                    _ => Ok(Value::Tuple(parts)),
                },
                other => Ok(other),
            },
            // The Python values (`value::py`): what is inside is the plain shape.
            FROZENSET_TOKEN => match value.serialize(self)? {
                Value::List(items) | Value::Tuple(items) => Ok(Value::FrozenSet(items)),
                other => Ok(other),
            },
            SLICE_TOKEN => match value.serialize(self)? {
                Value::Tuple(parts) | Value::List(parts) => match <[Value<R>; 3]>::try_from(parts) {
                    Ok(parts) => Ok(Value::Slice(Box::new(parts))),
                    Err(parts) => Ok(Value::Tuple(parts)),
                },
                other => Ok(other),
            },
            ELLIPSIS_TOKEN => Ok(Value::Ellipsis),
            NOT_IMPLEMENTED_TOKEN => Ok(Value::NotImplemented),
            _ => value.serialize(self),
        }
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Value<R>, ConvertError> {
        Ok(Value::Map(vec![(Value::Str(variant.to_owned()), value.serialize(self)?)]))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SerializeItems<R>, ConvertError> {
        Ok(SerializeItems::new(Shape::List, capacity(len)))
    }

    fn serialize_tuple(self, len: usize) -> Result<SerializeItems<R>, ConvertError> {
        Ok(SerializeItems::new(Shape::Tuple, capacity(Some(len))))
    }

    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<SerializeItems<R>, ConvertError> {
        Ok(SerializeItems::new(Shape::Tuple, capacity(Some(len))))
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializeItems<R>, ConvertError> {
        Ok(SerializeItems::new(Shape::Variant(variant), capacity(Some(len))))
    }

    fn serialize_map(self, len: Option<usize>) -> Result<SerializePairs<R>, ConvertError> {
        Ok(SerializePairs::new(None, capacity(len)))
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<SerializePairs<R>, ConvertError> {
        Ok(SerializePairs::new(None, capacity(Some(len))))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SerializePairs<R>, ConvertError> {
        Ok(SerializePairs::new(Some(variant), capacity(Some(len))))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;
    use crate::value::Data;

    fn v<T: Serialize + ?Sized>(x: &T) -> Data {
        to_value(x).unwrap()
    }

    fn s(text: &str) -> Data {
        Value::Str(text.to_owned())
    }

    #[derive(Serialize)]
    enum E {
        Unit,
        New(u8),
        Tup(u8, bool),
        Rec { a: u8 },
    }

    #[test]
    fn scalars_follow_the_mapping() {
        assert_eq!(v(&true), Value::Bool(true));
        assert_eq!(v(&-5i8), Value::Int(-5));
        assert_eq!(v(&u32::MAX), Value::Int(u32::MAX.into()));
        assert_eq!(v(&(i64::MAX as u64)), Value::Int(i64::MAX));
        assert_eq!(v(&u64::MAX), Value::BigInt(BigInt::parse("18446744073709551615").unwrap()));
        assert_eq!(v(&i128::MIN), Value::BigInt(BigInt::from(i128::MIN)));
        assert_eq!(v(&-1i128), Value::Int(-1));
        assert_eq!(v(&u128::MAX), Value::BigInt(BigInt::from(u128::MAX)));
        assert_eq!(v(&1.5f32), Value::Float(1.5));
        assert_eq!(v(&'x'), s("x"));
        assert_eq!(v("hi"), s("hi"));
        assert_eq!(v(&serde_bytes::ByteBuf::from(vec![1, 2])), Value::Bytes(Bytes::from_static(&[1, 2])));
        assert_eq!(v(&Bytes::from_static(b"ab")), Value::Bytes(Bytes::from_static(b"ab")));
        assert_eq!(v(&None::<u8>), Value::None);
        assert_eq!(v(&Some(3u8)), Value::Int(3));
        assert_eq!(v(&()), Value::None);
    }

    #[test]
    fn containers_and_enums_follow_the_mapping() {
        #[derive(Serialize)]
        struct Unit;
        #[derive(Serialize)]
        struct New(u8);
        #[derive(Serialize)]
        struct Tup(u8, u8);
        #[derive(Serialize)]
        struct Rec {
            b: u8,
            a: u8,
            #[serde(skip_serializing_if = "Option::is_none")]
            skipped: Option<u8>,
        }
        assert_eq!(v(&Unit), Value::None);
        assert_eq!(v(&New(1)), Value::Int(1));
        assert_eq!(v(&Tup(1, 2)), Value::Tuple(vec![Value::Int(1), Value::Int(2)]));
        assert_eq!(v(&(1u8,)), Value::Tuple(vec![Value::Int(1)]));
        assert_eq!(v(&vec![1u8]), Value::List(vec![Value::Int(1)]));
        assert_eq!(
            v(&Rec { b: 1, a: 2, skipped: None }),
            Value::Map(vec![(s("b"), Value::Int(1)), (s("a"), Value::Int(2))])
        );
        let map: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        assert_eq!(v(&map), Value::Map(vec![(Value::Tuple(vec![Value::Int(1), Value::Int(2)]), Value::Int(3))]));

        assert_eq!(v(&E::Unit), s("Unit"));
        assert_eq!(v(&E::New(1)), Value::Map(vec![(s("New"), Value::Int(1))]));
        assert_eq!(
            v(&E::Tup(1, true)),
            Value::Map(vec![(s("Tup"), Value::Tuple(vec![Value::Int(1), Value::Bool(true)]))])
        );
        assert_eq!(v(&E::Rec { a: 1 }), Value::Map(vec![(s("Rec"), Value::Map(vec![(s("a"), Value::Int(1))]))]));
    }
}
