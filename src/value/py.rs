//! Typed stand-ins for the Python values [`Value`](super::Value) carries beyond serde's data
//! model: [`FrozenSet`], [`Slice`], [`Ellipsis`] and [`NotImplemented`].
//!
//! Each serializes as a newtype struct with a `$netref::…` name that
//! [`ValueSerializer`](super::ValueSerializer) turns into the matching `Value` variant, and
//! deserializes from that variant only (through [`ValueDeserializer`](super::ValueDeserializer);
//! anything else is an "invalid type" error). Other serializers see the plain shape: a frozenset
//! as a seq, a slice as the tuple `(start, stop, step)`, `Ellipsis` and `NotImplemented` as
//! unit; other deserializers read them from that shape.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

use super::refs::{ELLIPSIS_TOKEN, FROZENSET_TOKEN, NOT_IMPLEMENTED_TOKEN, SLICE_TOKEN};

/// A Python `frozenset`, as typed code sends it: converts to
/// [`Value::FrozenSet`](super::Value::FrozenSet) with the members in the order of the `Vec`.
///
/// A set by contract: netref neither hashes nor deduplicates, so do not repeat a member. To read
/// a received frozenset, any sequence or set type works as well (`Vec<T>`, `HashSet<T>`,
/// `BTreeSet<T>`); `FrozenSet<T>` reads only a frozenset.
///
/// ```
/// use netref::{dev::to_value, from_value, Data, Value, FrozenSet};
/// use std::collections::BTreeSet;
///
/// let v: Data = to_value(&FrozenSet(vec![1, 2])).unwrap();
/// assert_eq!(v, Value::FrozenSet(vec![Value::Int(1), Value::Int(2)]));
/// assert_eq!(from_value::<BTreeSet<i64>>(v.clone()).unwrap(), BTreeSet::from([1, 2]));
/// assert_eq!(from_value::<FrozenSet<i64>>(v).unwrap(), FrozenSet(vec![1, 2]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct FrozenSet<T>(pub Vec<T>);

impl<T> From<Vec<T>> for FrozenSet<T> {
    fn from(members: Vec<T>) -> Self {
        FrozenSet(members)
    }
}

impl<T: Serialize> Serialize for FrozenSet<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(FROZENSET_TOKEN, &self.0)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for FrozenSet<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<fn() -> T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = FrozenSet<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a frozenset")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<FrozenSet<T>, D::Error> {
                Vec::deserialize(d).map(FrozenSet)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<FrozenSet<T>, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(FrozenSet)
            }
        }
        d.deserialize_newtype_struct(FROZENSET_TOKEN, V(PhantomData))
    }
}

/// A Python `slice(start, stop, step)`, as typed code sends and reads it: converts to and from
/// [`Value::Slice`](super::Value::Slice). The bounds are usually ints or `None`, hence the
/// default `T = Option<i64>`; a received slice also reads as a 3-tuple.
///
/// ```
/// use netref::{dev::to_value, from_value, Data, Value, Slice};
///
/// let s = Slice { start: Some(1), stop: None, step: Some(2) };
/// let v: Data = to_value(&s).unwrap();
/// assert_eq!(v, Value::Slice(Box::new([Value::Int(1), Value::None, Value::Int(2)])));
/// assert_eq!(from_value::<Slice>(v.clone()).unwrap(), s);
/// assert_eq!(from_value::<(Option<i64>, Option<i64>, Option<i64>)>(v).unwrap(), (Some(1), None, Some(2)));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Slice<T = Option<i64>> {
    /// `start`.
    pub start: T,
    /// `stop`.
    pub stop: T,
    /// `step`.
    pub step: T,
}

impl<T: Serialize> Serialize for Slice<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(SLICE_TOKEN, &(&self.start, &self.stop, &self.step))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Slice<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<fn() -> T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Slice<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a slice")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Slice<T>, D::Error> {
                let (start, stop, step) = Deserialize::deserialize(d)?;
                Ok(Slice { start, stop, step })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Slice<T>, A::Error> {
                let (start, stop, step) = Deserialize::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Slice { start, stop, step })
            }
        }
        d.deserialize_newtype_struct(SLICE_TOKEN, V(PhantomData))
    }
}

macro_rules! unit_value {
    ($(#[$doc:meta])* $name:ident, $token:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name;

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_newtype_struct($token, &())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<$name, D::Error> {
                        <()>::deserialize(d).map(|()| $name)
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<$name, E> {
                        Ok($name)
                    }
                }
                d.deserialize_newtype_struct($token, V)
            }
        }
    };
}

unit_value! {
    /// Python's `Ellipsis` (`...`), as typed code sends and reads it: converts to and from
    /// [`Value::Ellipsis`](super::Value::Ellipsis) (and reads from nothing else).
    ///
    /// ```
    /// use netref::{dev::to_value, from_value, Data, Value, Ellipsis};
    ///
    /// let v: Data = to_value(&Ellipsis).unwrap();
    /// assert_eq!(v, Value::Ellipsis);
    /// assert_eq!(from_value::<Ellipsis>(v).unwrap(), Ellipsis);
    /// assert!(from_value::<Ellipsis>(Data::None).is_err());
    /// ```
    Ellipsis, ELLIPSIS_TOKEN, "Ellipsis"
}

unit_value! {
    /// Python's `NotImplemented`, as typed code sends and reads it: converts to and from
    /// [`Value::NotImplemented`](super::Value::NotImplemented) (and reads from nothing else).
    ///
    /// ```
    /// use netref::{dev::to_value, from_value, Data, Value, NotImplemented};
    ///
    /// let v: Data = to_value(&NotImplemented).unwrap();
    /// assert_eq!(v, Value::NotImplemented);
    /// assert_eq!(from_value::<NotImplemented>(v).unwrap(), NotImplemented);
    /// ```
    NotImplemented, NOT_IMPLEMENTED_TOKEN, "NotImplemented"
}
