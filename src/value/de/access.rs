//! The serde access types through which a visitor reads the inside of a [`Value`]: the items of
//! a `Tuple`/`List`/`FrozenSet`/`Slice` ([`SeqAccess`]), the bytes of a `Bytes` read as a seq of
//! `u8`, the pairs of a `Map` ([`MapAccess`]), and an enum variant's name and content
//! ([`EnumAccess`], [`VariantAccess`]).
//!
//! Each hands every element to a fresh [`ValueDeserializer`] and counts what was read, so a
//! visitor that stops early gets an `invalid_length` error instead of silently dropping data.
//! They must never panic on a peer's value (a map value asked for before its key is an error)
//! and never copy what they hand out: they move the values they were given.

use std::any::Any;
use std::fmt;

use bytes::Bytes;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Expected, IntoDeserializer, MapAccess, SeqAccess, Unexpected,
    VariantAccess, Visitor,
};

use super::{unexpected, ValueDeserializer};
use crate::value::{ConvertError, Value};

impl<R: Any + Send> ValueDeserializer<R> {
    /// Visits `items` as a seq, failing if the visitor leaves some unread.
    pub(super) fn visit_items<'de, V: Visitor<'de>>(
        items: Vec<Value<R>>,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        let mut seq = Items { items: items.into_iter(), read: 0 };
        let out = visitor.visit_seq(&mut seq)?;
        match seq.items.len() {
            0 => Ok(out),
            left => Err(de::Error::invalid_length(seq.read + left, &ReadCount(seq.read, "elements in sequence"))),
        }
    }

    /// Visits `pairs` as a map, failing if the visitor leaves some unread.
    pub(super) fn visit_pairs<'de, V: Visitor<'de>>(
        pairs: Vec<(Value<R>, Value<R>)>,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        let mut map = Pairs { pairs: pairs.into_iter(), pending: None, read: 0 };
        let out = visitor.visit_map(&mut map)?;
        match map.pairs.len() {
            0 => Ok(out),
            left => Err(de::Error::invalid_length(map.read + left, &ReadCount(map.read, "entries in map"))),
        }
    }

    /// Visits the bytes of `bytes` one `u8` at a time (for `Vec<u8>` and other byte seqs).
    pub(super) fn visit_byte_seq<'de, V: Visitor<'de>>(bytes: Bytes, visitor: V) -> Result<V::Value, ConvertError> {
        let mut seq = ByteSeq { bytes, read: 0 };
        let out = visitor.visit_seq(&mut seq)?;
        match seq.bytes.len() - seq.read {
            0 => Ok(out),
            left => Err(de::Error::invalid_length(seq.read + left, &ReadCount(seq.read, "elements in sequence"))),
        }
    }
}

/// "{n} {what}", for `invalid_length` when a visitor stops early.
struct ReadCount(usize, &'static str);

impl Expected for ReadCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

/// The elements of a `Tuple`/`List` for a seq visitor.
struct Items<R> {
    items: std::vec::IntoIter<Value<R>>,
    read: usize,
}

impl<'de, R: Any + Send> SeqAccess<'de> for Items<R> {
    type Error = ConvertError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, ConvertError> {
        match self.items.next() {
            Some(value) => {
                self.read += 1;
                seed.deserialize(ValueDeserializer::new(value)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// The bytes of a `Bytes` as a seq of `u8`.
struct ByteSeq {
    bytes: Bytes,
    read: usize,
}

impl<'de> SeqAccess<'de> for ByteSeq {
    type Error = ConvertError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, ConvertError> {
        match self.bytes.get(self.read) {
            Some(&b) => {
                self.read += 1;
                seed.deserialize(b.into_deserializer()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.bytes.len() - self.read)
    }
}

/// The pairs of a `Map` for a map visitor.
struct Pairs<R> {
    pairs: std::vec::IntoIter<(Value<R>, Value<R>)>,
    pending: Option<Value<R>>,
    read: usize,
}

impl<'de, R: Any + Send> MapAccess<'de> for Pairs<R> {
    type Error = ConvertError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ConvertError> {
        match self.pairs.next() {
            Some((key, value)) => {
                self.read += 1;
                self.pending = Some(value);
                seed.deserialize(ValueDeserializer::new(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ConvertError> {
        let value = self.pending.take().ok_or_else(|| ConvertError::new("a map value was read before its key"))?;
        seed.deserialize(ValueDeserializer::new(value))
    }

    fn next_entry_seed<K: DeserializeSeed<'de>, V: DeserializeSeed<'de>>(
        &mut self,
        kseed: K,
        vseed: V,
    ) -> Result<Option<(K::Value, V::Value)>, ConvertError> {
        match self.pairs.next() {
            Some((key, value)) => {
                self.read += 1;
                let key = kseed.deserialize(ValueDeserializer::new(key))?;
                let value = vseed.deserialize(ValueDeserializer::new(value))?;
                Ok(Some((key, value)))
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.pairs.len())
    }
}

/// An enum variant: its name (usually a `Str`) and its content, if it has one.
pub(super) struct Variant<R> {
    pub(super) name: Value<R>,
    pub(super) content: Option<Value<R>>,
}

impl<'de, R: Any + Send> EnumAccess<'de> for Variant<R> {
    type Error = ConvertError;
    type Variant = VariantContent<R>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, VariantContent<R>), ConvertError> {
        let name = seed.deserialize(ValueDeserializer::new(self.name))?;
        Ok((name, VariantContent(self.content)))
    }
}

/// The content of an enum variant (`None` for a bare `Str(name)`).
pub(super) struct VariantContent<R>(Option<Value<R>>);

impl<'de, R: Any + Send> VariantAccess<'de> for VariantContent<R> {
    type Error = ConvertError;

    fn unit_variant(self) -> Result<(), ConvertError> {
        match self.0 {
            None | Some(Value::None) => Ok(()),
            Some(other) => Err(de::Error::invalid_type(unexpected(&other), &"unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, ConvertError> {
        match self.0 {
            Some(value) => seed.deserialize(ValueDeserializer::new(value)),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &"newtype variant")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, ConvertError> {
        match self.0 {
            Some(value) => ValueDeserializer::new(value).deserialize_tuple(len, visitor),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        match self.0 {
            Some(value) => ValueDeserializer::new(value).deserialize_struct("", fields, visitor),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &"struct variant")),
        }
    }
}
