//! The compound serializers of [`ValueSerializer`]: [`SerializeItems`] collects the elements of
//! a seq, tuple, tuple struct or tuple variant, [`SerializePairs`] the entries of a map, struct
//! or struct variant, and each turns into the `Value` the mapping in [`ser`](super) gives.
//!
//! They must never preallocate more than the capped length hint they are given (a `Serialize`
//! impl may misreport its length), and never panic when serde's calls come in an odd order: a
//! map value serialized before its key is an error.

use std::any::Any;
use std::fmt;

use serde::ser::{self, Serialize};

use super::ValueSerializer;
use crate::value::{ConvertError, Value};

/// What a [`SerializeItems`] becomes when it ends.
#[derive(Debug, Clone, Copy)]
pub(super) enum Shape {
    List,
    Tuple,
    Variant(&'static str),
}

/// Collects the elements of a seq, tuple, tuple struct or tuple variant for [`ValueSerializer`].
pub struct SerializeItems<R> {
    shape: Shape,
    items: Vec<Value<R>>,
}

impl<R> SerializeItems<R> {
    pub(super) fn new(shape: Shape, capacity: usize) -> Self {
        SerializeItems { shape, items: Vec::with_capacity(capacity) }
    }

    fn finish(self) -> Value<R> {
        match self.shape {
            Shape::List => Value::List(self.items),
            Shape::Tuple => Value::Tuple(self.items),
            Shape::Variant(name) => Value::Map(vec![(Value::Str(name.to_owned()), Value::Tuple(self.items))]),
        }
    }
}

impl<R> fmt::Debug for SerializeItems<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerializeItems").field("shape", &self.shape).field("len", &self.items.len()).finish()
    }
}

impl<R: Any + Send> ser::SerializeSeq for SerializeItems<R> {
    type Ok = Value<R>;
    type Error = ConvertError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        self.items.push(value.serialize(ValueSerializer::new())?);
        Ok(())
    }

    fn end(self) -> Result<Value<R>, ConvertError> {
        Ok(self.finish())
    }
}

impl<R: Any + Send> ser::SerializeTuple for SerializeItems<R> {
    type Ok = Value<R>;
    type Error = ConvertError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value<R>, ConvertError> {
        Ok(self.finish())
    }
}

impl<R: Any + Send> ser::SerializeTupleStruct for SerializeItems<R> {
    type Ok = Value<R>;
    type Error = ConvertError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value<R>, ConvertError> {
        Ok(self.finish())
    }
}

impl<R: Any + Send> ser::SerializeTupleVariant for SerializeItems<R> {
    type Ok = Value<R>;
    type Error = ConvertError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        ser::SerializeSeq::serialize_element(self, value)
    }

    fn end(self) -> Result<Value<R>, ConvertError> {
        Ok(self.finish())
    }
}

/// Collects the entries of a map, struct or struct variant for [`ValueSerializer`].
pub struct SerializePairs<R> {
    variant: Option<&'static str>,
    pairs: Vec<(Value<R>, Value<R>)>,
    key: Option<Value<R>>,
}

impl<R> SerializePairs<R> {
    pub(super) fn new(variant: Option<&'static str>, capacity: usize) -> Self {
        SerializePairs { variant, pairs: Vec::with_capacity(capacity), key: None }
    }

    fn finish(self) -> Value<R> {
        let map = Value::Map(self.pairs);
        match self.variant {
            None => map,
            Some(name) => Value::Map(vec![(Value::Str(name.to_owned()), map)]),
        }
    }
}

impl<R> fmt::Debug for SerializePairs<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerializePairs").field("variant", &self.variant).field("len", &self.pairs.len()).finish()
    }
}

impl<R: Any + Send> ser::SerializeMap for SerializePairs<R> {
    type Ok = Value<R>;
    type Error = ConvertError;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ConvertError> {
        self.key = Some(key.serialize(ValueSerializer::new())?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), ConvertError> {
        let key = self.key.take().ok_or_else(|| ConvertError::new("a map value was serialized before its key"))?;
        self.pairs.push((key, value.serialize(ValueSerializer::new())?));
        Ok(())
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), ConvertError> {
        let key = key.serialize(ValueSerializer::new())?;
        self.pairs.push((key, value.serialize(ValueSerializer::new())?));
        Ok(())
    }

    fn end(self) -> Result<Value<R>, ConvertError> {
        Ok(self.finish())
    }
}

impl<R: Any + Send> ser::SerializeStruct for SerializePairs<R> {
    type Ok = Value<R>;
    type Error = ConvertError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), ConvertError> {
        self.pairs.push((Value::Str(key.to_owned()), value.serialize(ValueSerializer::new())?));
        Ok(())
    }

    fn end(self) -> Result<Value<R>, ConvertError> {
        Ok(self.finish())
    }
}

impl<R: Any + Send> ser::SerializeStructVariant for SerializePairs<R> {
    type Ok = Value<R>;
    type Error = ConvertError;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), ConvertError> {
        ser::SerializeStruct::serialize_field(self, key, value)
    }

    fn end(self) -> Result<Value<R>, ConvertError> {
        Ok(self.finish())
    }
}
