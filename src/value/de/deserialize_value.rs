//! `impl Deserialize for Value`, and the handovers that let a [`ValueDeserializer`] pass a
//! whole `Value` or a `SharedBytes`' buffer through serde without walking or copying it.
//!
//! The parking protocol: for the `$netref::Value` and `$netref::Bytes` newtypes the
//! deserializer parks what it holds in [`DE_SLOT`] under a token. A `Value<R>` visitor with the
//! same `R` (or a `SharedBytes`) takes it from there whole; any other visitor gets a
//! [`Handover`] or [`BytesHandover`], which takes the parked value back and deserializes its
//! contents. From a format other than [`ValueDeserializer`], `Value` is built from whatever the
//! format offers.
//!
//! It must never panic on a peer's value (a token taken twice or of the wrong type is an
//! error) and never preallocate more than a bounded amount for a length a format reports.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde::Deserialize;

use super::ValueDeserializer;
use crate::value::refs::{self, DE_SLOT, VALUE_TOKEN};
use crate::value::{BigInt, ConvertError, Value};

/// Hands a parked `Value<R>` to a visitor that did not take it whole (its reference type
/// differs): it deserializes the value's contents.
pub(super) struct Handover<R> {
    pub(super) token: u64,
    pub(super) _refs: PhantomData<fn() -> R>,
}

impl<'de, R: Any + Send> Deserializer<'de> for Handover<R> {
    type Error = ConvertError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        let value = refs::take(&DE_SLOT, self.token)
            .ok_or_else(|| ConvertError::new("a value handed over twice"))?
            .downcast::<Value<R>>()
            .map_err(de::Error::custom)?;
        ValueDeserializer::new(value).deserialize_any(visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// Hands a parked `Bytes` to a visitor that did not take it (not a `SharedBytes`): it
/// deserializes as `Value::Bytes`.
pub(super) struct BytesHandover<R> {
    pub(super) token: u64,
    pub(super) _refs: PhantomData<fn() -> R>,
}

impl<'de, R: Any + Send> Deserializer<'de> for BytesHandover<R> {
    type Error = ConvertError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        let bytes = refs::take(&DE_SLOT, self.token)
            .ok_or_else(|| ConvertError::new("a value handed over twice"))?
            .downcast::<Bytes>()
            .map_err(de::Error::custom)?;
        ValueDeserializer::<R>::new(Value::Bytes(bytes)).deserialize_any(visitor)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

/// `Value` deserializes from any self-describing format; from [`ValueDeserializer`] with the
/// same `R` it is handed over whole (no walk, no copy), so `Value`s nested in serde types
/// convert losslessly. From other formats, sequences become `List`, integers beyond `i64`
/// `BigInt`, and a reference deserializes as `R` does.
impl<'de, R: Deserialize<'de> + Any + Send> Deserialize<'de> for Value<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_newtype_struct(VALUE_TOKEN, ValueVisitor(PhantomData))
    }
}

/// Builds a `Value<R>` from whatever a deserializer offers.
struct ValueVisitor<R>(PhantomData<fn() -> R>);

impl<'de, R: Deserialize<'de> + Any + Send> Visitor<'de> for ValueVisitor<R> {
    type Value = Value<R>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value<R>, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value<R>, E> {
        Ok(Value::Int(v))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value<R>, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value<R>, E> {
        Ok(Value::from(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value<R>, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::BigInt(BigInt::from(v)),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value<R>, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value<R>, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value<R>, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value<R>, E> {
        Ok(Value::Bytes(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Value<R>, E> {
        Ok(Value::Bytes(Bytes::from(v)))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value<R>, E> {
        Ok(Value::None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value<R>, E> {
        Ok(Value::None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value<R>, D::Error> {
        Value::deserialize(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Value<R>, D::Error> {
        // From a `ValueDeserializer` with the same `R`, the whole value is waiting here.
        match refs::take_if::<Value<R>>(&DE_SLOT) {
            Some(value) => Ok(value),
            None => d.deserialize_any(self),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<R>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::List(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<R>, A::Error> {
        let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(pair) = map.next_entry()? {
            pairs.push(pair);
        }
        Ok(Value::Map(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::from_value;

    #[test]
    fn a_value_is_handed_over_whole() {
        #[derive(Clone, Debug, PartialEq, Deserialize)]
        struct R;
        let v: Value<R> = Value::Tuple(vec![Value::Complex(1.0, 2.0), Value::BigInt(BigInt::parse("7").unwrap())]);
        assert_eq!(from_value::<Value<R>>(v.clone()).unwrap(), v);
        assert!(refs::is_empty(&DE_SLOT));

        // Nested, and without copying the bytes.
        let payload = Bytes::from(vec![7u8; 1024]);
        let v: Value<R> = Value::Tuple(vec![Value::Int(1), Value::Bytes(payload.clone())]);
        let (n, inner): (u8, Value<R>) = from_value(v).unwrap();
        assert_eq!(n, 1);
        let Value::Bytes(b) = inner else { panic!("bytes") };
        assert_eq!(b.as_ptr(), payload.as_ptr(), "the buffer is shared, not copied");
        assert!(refs::is_empty(&DE_SLOT));
    }
}
