//! `impl Serialize for Value`: losslessly into a [`ValueSerializer`](super::ValueSerializer)
//! with the same reference type, as plain data into any other serializer.
//!
//! The parking protocol: a `Value` serializes as the `$netref::Value` newtype. When a
//! `ValueSerializer<R>` has said it wants a `Value<R>` whole ([`refs::want`]), the value parks a
//! clone of itself in [`SER_SLOT`] and serializes the token, and the serializer takes the clone
//! (byte buffers shared, no walk). Otherwise it serializes its contents, variant by variant.
//!
//! It must never depend on a connection, and never leave a parked value behind: whatever it
//! parks, the serializer that asked for it takes.

use std::any::{type_name, Any};

use serde::ser::{Serialize, SerializeMap as _, SerializeSeq as _, SerializeTuple as _, Serializer};

use crate::value::refs::{
    self, BIGINT_TOKEN, COMPLEX_TOKEN, ELLIPSIS_TOKEN, FROZENSET_TOKEN, NOT_IMPLEMENTED_TOKEN, SER_SLOT, SLICE_TOKEN,
    VALUE_TOKEN,
};
use crate::value::Value;

/// `Value` serializes losslessly into [`ValueSerializer`](super::ValueSerializer) with the same
/// `R` (as a clone of itself), and as plain data into any other serializer: `None` as unit,
/// `Tuple` as a tuple, `List` as a seq, `Map` as a map in order, `Bytes` as bytes, `BigInt` as a
/// newtype around its decimal text, `Complex` as a newtype around `(re, im)`, `FrozenSet` as a
/// newtype around a seq, `Slice` as a newtype around `(start, stop, step)`, `Ellipsis` and
/// `NotImplemented` as newtypes around unit, and `Ref(r)` as `r` serializes itself.
impl<R: Serialize + Clone + Any + Send> Serialize for Value<R> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(VALUE_TOKEN, &Contents(self))
    }
}

/// The contents of a `Value`, inside the `$netref::Value` newtype.
struct Contents<'a, R>(&'a Value<R>);

impl<R: Serialize + Clone + Any + Send> Serialize for Contents<'_, R> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if refs::wanted::<Value<R>>() {
            // A `ValueSerializer<R>` asked for this value whole: park a clone for it.
            let parked = refs::put(&SER_SLOT, Box::new(self.0.clone()), type_name::<Value<R>>());
            return s.serialize_newtype_struct(VALUE_TOKEN, &parked.token);
        }
        match self.0 {
            Value::None => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::BigInt(b) => s.serialize_newtype_struct(BIGINT_TOKEN, b.as_str()),
            Value::Float(x) => s.serialize_f64(*x),
            Value::Complex(re, im) => s.serialize_newtype_struct(COMPLEX_TOKEN, &(*re, *im)),
            Value::Str(text) => s.serialize_str(text),
            Value::Bytes(bytes) => s.serialize_bytes(bytes),
            Value::Tuple(items) => {
                let mut t = s.serialize_tuple(items.len())?;
                for item in items {
                    t.serialize_element(item)?;
                }
                t.end()
            }
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Ref(r) => r.serialize(s),
            Value::FrozenSet(items) => s.serialize_newtype_struct(FROZENSET_TOKEN, items),
            Value::Slice(parts) => {
                let [start, stop, step] = &**parts;
                s.serialize_newtype_struct(SLICE_TOKEN, &(start, stop, step))
            }
            Value::Ellipsis => s.serialize_newtype_struct(ELLIPSIS_TOKEN, &()),
            Value::NotImplemented => s.serialize_newtype_struct(NOT_IMPLEMENTED_TOKEN, &()),
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde::Serialize;

    use super::*;
    use crate::value::{to_value, BigInt, Data};

    #[test]
    fn a_value_converts_to_itself() {
        #[derive(Clone, Debug, PartialEq, Serialize)]
        struct R;
        let value: Value<R> = Value::Tuple(vec![
            Value::BigInt(BigInt::parse("5").unwrap()),
            Value::Complex(1.0, -0.0),
            Value::List(vec![]),
            Value::Bytes(Bytes::from_static(b"x")),
        ]);
        assert_eq!(to_value::<R, _>(&value).unwrap(), value);
        // Nested in another type, too.
        assert_eq!(to_value::<R, _>(&(1, &value)).unwrap(), Value::Tuple(vec![Value::Int(1), value.clone()]));
        assert!(refs::is_empty(&SER_SLOT));
    }

    #[test]
    fn a_value_is_cloned_not_walked() {
        #[derive(Clone, Debug, PartialEq, Serialize)]
        struct R;
        let payload = Bytes::from(vec![7u8; 1024]);
        let value: Value<R> = Value::List(vec![Value::Bytes(payload.clone())]);
        let converted = to_value::<R, _>(&(&value,)).unwrap();
        let Value::Tuple(outer) = converted else { panic!("a tuple") };
        let [Value::List(inner)] = outer.as_slice() else { panic!("one list") };
        let [Value::Bytes(b)] = inner.as_slice() else { panic!("one byte string") };
        assert_eq!(b.as_ptr(), payload.as_ptr(), "the buffer is shared, not copied");
    }

    #[test]
    fn a_value_with_another_reference_type_converts_by_its_contents() {
        #[derive(Clone, Debug, PartialEq, Serialize)]
        struct R;
        let value: Value<R> = Value::Tuple(vec![
            Value::BigInt(BigInt::parse("5").unwrap()),
            Value::Complex(1.0, -0.0),
            Value::Map(vec![(Value::None, Value::Bytes(Bytes::from_static(b"x")))]),
        ]);
        let data: Data = to_value(&value).unwrap();
        assert_eq!(data, value.clone().try_map_refs(&mut |_| Err(())).unwrap());
        assert!(refs::is_empty(&SER_SLOT));
    }
}
