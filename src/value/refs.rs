//! How a type that travels by reference (a [`NetRef`](crate::NetRef)) crosses serde.
//!
//! serde has no notion of "an opaque object": a `Serializer` only sees numbers, strings and
//! containers. So a reference takes a side door: [`serialize_ref`] parks a clone of the
//! reference in a thread-local *hand-over slot* and serializes a newtype struct named
//! [`REF_TOKEN`] around a `u64` token; [`ValueSerializer`](super::ValueSerializer) recognizes
//! the name and takes the reference out of the slot. In the other direction,
//! [`ValueDeserializer`](super::ValueDeserializer) parks the reference of a `Value::Ref` in the
//! slot when [`deserialize_ref`] asks for a newtype struct named [`REF_TOKEN`], and hands the
//! token to the visitor, which takes the reference out.
//!
//! The same slots carry a whole [`Value`](super::Value) when a `Value` sits inside a serde type,
//! which is what makes `Value` conversions lossless, and the `Bytes` of a
//! [`SharedBytes`](super::SharedBytes), which is what makes it cross without a copy.
//!
//! Invariants (what this module must never do):
//! - An entry lives only between its `put` and the immediate `take` by the other side; every
//!   path — success, error, panic — removes it (a drop guard clears it), so the slot never
//!   holds more than one entry and never leaks one.
//! - Entries are dropped *outside* the `RefCell` borrow, so a reference whose `Drop` itself
//!   converts values cannot cause a re-entrant borrow panic.
//! - No `unsafe`: values go through `Box<dyn Any + Send>` and are downcast.
//!
//! References only convert through [`Value`](super::Value): with any other serializer (JSON,
//! postcard, …) a reference serializes as a bare token number that means nothing on its own,
//! and deserializing a reference from any other deserializer fails.

use std::any::{type_name, Any, TypeId};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::Serializer;

/// The newtype-struct name under which a reference crosses serde.
///
/// Only [`ValueSerializer`](super::ValueSerializer) and
/// [`ValueDeserializer`](super::ValueDeserializer) give it a meaning; other formats see a
/// newtype struct around a `u64`.
pub const REF_TOKEN: &str = "$netref::Ref";

/// The newtype-struct name under which a whole `Value` crosses serde losslessly.
pub(super) const VALUE_TOKEN: &str = "$netref::Value";
/// The newtype-struct name under which a `Value::BigInt` serializes (its decimal text inside).
pub(super) const BIGINT_TOKEN: &str = "$netref::BigInt";
/// The newtype-struct name under which a `Value::Complex` serializes (`(re, im)` inside).
pub(super) const COMPLEX_TOKEN: &str = "$netref::Complex";
/// The newtype-struct name under which a [`SharedBytes`](super::SharedBytes) crosses serde
/// (its `Bytes` handed over, not copied).
pub(crate) const BYTES_TOKEN: &str = "$netref::Bytes";
/// The newtype-struct name under which a `Value::FrozenSet` and a
/// [`FrozenSet`](super::FrozenSet) serialize (a seq of the members inside).
pub(super) const FROZENSET_TOKEN: &str = "$netref::FrozenSet";
/// The newtype-struct name under which a `Value::Slice` and a [`Slice`](super::Slice)
/// serialize (the tuple `(start, stop, step)` inside).
pub(super) const SLICE_TOKEN: &str = "$netref::Slice";
/// The newtype-struct name under which a `Value::Ellipsis` and an
/// [`Ellipsis`](super::Ellipsis) serialize (unit inside).
pub(super) const ELLIPSIS_TOKEN: &str = "$netref::Ellipsis";
/// The newtype-struct name under which a `Value::NotImplemented` and a
/// [`NotImplemented`](super::NotImplemented) serialize (unit inside).
pub(super) const NOT_IMPLEMENTED_TOKEN: &str = "$netref::NotImplemented";

/// Serializes a reference so that [`to_value`](super::to_value) turns it into `Value::Ref`.
///
/// Use it as the body of `Serialize` for a type that travels by reference:
///
/// ```
/// # use netref::{dev::{serialize_ref, to_value}, Value};
/// #[derive(Clone, Debug, PartialEq)]
/// struct Handle(u32);
/// impl serde::Serialize for Handle {
///     fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
///         serialize_ref(self, s)
///     }
/// }
/// let v: Value<Handle> = to_value(&(1, Handle(7))).unwrap();
/// assert_eq!(v, Value::Tuple(vec![Value::Int(1), Value::Ref(Handle(7))]));
/// ```
///
/// With any serializer other than [`ValueSerializer`](super::ValueSerializer) the reference
/// comes out as a meaningless token number; the parked clone is dropped before this returns.
pub fn serialize_ref<S: Serializer, R: Any + Send + Clone>(r: &R, s: S) -> Result<S::Ok, S::Error> {
    let guard = put(&SER_SLOT, Box::new(r.clone()), type_name::<R>());
    s.serialize_newtype_struct(REF_TOKEN, &guard.token)
}

/// Deserializes a reference that [`from_value`](super::from_value) finds as `Value::Ref`.
///
/// Use it as the body of `Deserialize` for a type that travels by reference. It fails on any
/// other value ("invalid type: integer `1`, expected an object reference"), on a reference of
/// another type, and with any deserializer other than
/// [`ValueDeserializer`](super::ValueDeserializer).
pub fn deserialize_ref<'de, D: Deserializer<'de>, R: Any + Send>(d: D) -> Result<R, D::Error> {
    d.deserialize_newtype_struct(REF_TOKEN, RefVisitor(PhantomData))
}

struct RefVisitor<R>(PhantomData<fn() -> R>);

impl<'de, R: Any + Send> Visitor<'de> for RefVisitor<R> {
    type Value = R;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object reference")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<R, D::Error> {
        let token = u64::deserialize(d)?;
        let entry = take(&DE_SLOT, token)
            .ok_or_else(|| de::Error::custom("an object reference can only be deserialized from a netref Value"))?;
        entry.downcast::<R>().map_err(de::Error::custom)
    }
}

/// One parked value: the token that names it, the value, and its type's name for errors.
pub(super) struct Entry {
    token: u64,
    value: Box<dyn Any + Send>,
    type_name: &'static str,
}

impl Entry {
    /// The parked value as a `T`, or an error naming both types.
    pub(super) fn downcast<T: Any>(self) -> Result<T, WrongType> {
        match self.value.downcast::<T>() {
            Ok(v) => Ok(*v),
            Err(_) => Err(WrongType { found: self.type_name, expected: type_name::<T>() }),
        }
    }

    /// Whether the parked value is a `T`.
    pub(super) fn is<T: Any>(&self) -> bool {
        self.value.is::<T>()
    }
}

/// A parked value is not of the type its taker asked for.
#[derive(Debug)]
pub(super) struct WrongType {
    found: &'static str,
    expected: &'static str,
}

impl fmt::Display for WrongType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "object reference of type `{}` where `{}` was expected", self.found, self.expected)
    }
}

type Slot = RefCell<Option<Entry>>;

thread_local! {
    /// Serialize side: filled by `serialize_ref` / `Value::serialize`, emptied by `ValueSerializer`.
    pub(super) static SER_SLOT: Slot = const { RefCell::new(None) };
    /// Deserialize side: filled by `ValueDeserializer`, emptied by `deserialize_ref` / `Value::deserialize`.
    pub(super) static DE_SLOT: Slot = const { RefCell::new(None) };
    static NEXT_TOKEN: Cell<u64> = const { Cell::new(1) };
    static WANT: Cell<Option<TypeId>> = const { Cell::new(None) };
}

/// Clears its entry (if nobody took it) when dropped: on success, error and unwinding alike.
pub(super) struct PutGuard {
    slot: &'static std::thread::LocalKey<Slot>,
    pub(super) token: u64,
}

impl Drop for PutGuard {
    fn drop(&mut self) {
        drop(take_any(self.slot, self.token));
    }
}

/// Parks `value` in `slot` and returns a guard holding its token. A stale entry (impossible
/// unless a previous guard was leaked) is replaced and dropped.
pub(super) fn put(
    slot: &'static std::thread::LocalKey<Slot>,
    value: Box<dyn Any + Send>,
    type_name: &'static str,
) -> PutGuard {
    let token = NEXT_TOKEN
        .try_with(|next| {
            let token = next.get();
            // Tokens stay within `i64` so they convert to `Value::Int` without loss.
            next.set(if token >= i64::MAX as u64 { 1 } else { token + 1 });
            token
        })
        .unwrap_or(0);
    // During thread teardown the slot may be gone: the value is dropped and the taker reports
    // an error instead of panicking.
    let entry = Entry { token, value, type_name };
    let stale = slot.try_with(|s| s.borrow_mut().replace(entry));
    drop(stale);
    PutGuard { slot, token }
}

/// Takes the entry named `token` out of `slot`; `None` if the slot holds no such entry. An
/// entry with another token is stale and is dropped too.
pub(super) fn take(slot: &'static std::thread::LocalKey<Slot>, token: u64) -> Option<Entry> {
    let entry = slot.try_with(|s| s.borrow_mut().take()).ok().flatten()?;
    (entry.token == token).then_some(entry)
}

/// Takes the entry named `token`, leaving anything else in place.
fn take_any(slot: &'static std::thread::LocalKey<Slot>, token: u64) -> Option<Entry> {
    slot.try_with(|s| {
        let mut s = s.borrow_mut();
        if s.as_ref().is_some_and(|e| e.token == token) {
            s.take()
        } else {
            None
        }
    })
    .ok()
    .flatten()
}

/// Takes the pending entry if it holds a `T`, whatever its token; leaves it otherwise.
pub(super) fn take_if<T: Any>(slot: &'static std::thread::LocalKey<Slot>) -> Option<T> {
    let entry = slot
        .try_with(|s| {
            let mut s = s.borrow_mut();
            if s.as_ref().is_some_and(Entry::is::<T>) {
                s.take()
            } else {
                None
            }
        })
        .ok()
        .flatten()?;
    entry.downcast().ok()
}

/// Whether `slot` is empty (for tests: nothing leaked).
#[cfg(test)]
pub(super) fn is_empty(slot: &'static std::thread::LocalKey<Slot>) -> bool {
    slot.with(|s| s.borrow().is_none())
}

/// While alive, tells a `Value<R>` being serialized that the serializer wants a clone of it as
/// a `T` (= `Value<R>`) through [`SER_SLOT`] instead of a walk through its contents.
pub(super) struct WantGuard(());

impl Drop for WantGuard {
    fn drop(&mut self) {
        let _ = WANT.try_with(|w| w.set(None));
    }
}

/// Announces that the serializer about to run wants a `T` handed over (see [`WantGuard`]).
pub(super) fn want<T: Any>() -> WantGuard {
    let _ = WANT.try_with(|w| w.set(Some(TypeId::of::<T>())));
    WantGuard(())
}

/// Whether a `T` is wanted; clears the announcement either way, so it reaches only the first
/// value serialized after it.
pub(super) fn wanted<T: Any>() -> bool {
    WANT.try_with(Cell::take).ok().flatten() == Some(TypeId::of::<T>())
}

#[cfg(test)]
mod tests {
    use serde::Serialize;

    use super::*;
    use crate::value::{from_value, to_value, ConvertError, Value};

    #[derive(Clone, Debug, PartialEq)]
    struct Handle(u32);

    impl Serialize for Handle {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize_ref(self, s)
        }
    }

    impl<'de> Deserialize<'de> for Handle {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize_ref(d)
        }
    }

    #[derive(Clone, Debug, PartialEq)]
    struct Other;

    fn slots_empty() -> bool {
        is_empty(&SER_SLOT) && is_empty(&DE_SLOT)
    }

    #[test]
    fn a_reference_round_trips_inside_a_struct() {
        #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
        struct S {
            a: Handle,
            b: Option<Handle>,
            c: Vec<Handle>,
        }
        let s = S { a: Handle(1), b: Some(Handle(2)), c: vec![Handle(3), Handle(4)] };
        let v: Value<Handle> = to_value(&s).unwrap();
        assert!(v.has_refs());
        assert!(slots_empty());
        let back: S = from_value(v).unwrap();
        assert_eq!(back, s);
        assert!(slots_empty());
    }

    #[test]
    fn a_reference_of_the_wrong_type_is_named_in_the_error() {
        let err = to_value::<Other, _>(&Handle(1)).unwrap_err();
        assert!(err.message().contains("Handle"), "{err}");
        assert!(err.message().contains("Other"), "{err}");
        assert!(slots_empty());

        let err = from_value::<Handle>(Value::Ref(Other)).unwrap_err();
        assert!(err.message().contains("Handle"), "{err}");
        assert!(err.message().contains("Other"), "{err}");
        assert!(slots_empty());
    }

    #[test]
    fn a_reference_is_refused_where_data_is_expected_and_vice_versa() {
        let err = from_value::<i64>(Value::Ref(Handle(1))).unwrap_err();
        assert_eq!(err, ConvertError::new("invalid type: object reference, expected i64"));
        let err = from_value::<Handle>(Value::<Handle>::Int(1)).unwrap_err();
        assert_eq!(err, ConvertError::new("invalid type: integer `1`, expected an object reference"));
        assert!(slots_empty());
    }

    #[test]
    fn a_foreign_serializer_leaves_nothing_behind() {
        // A serializer that is not ValueSerializer sees a newtype around a token number.
        struct Probe;
        impl Serializer for Probe {
            type Ok = Option<u64>;
            type Error = ConvertError;
            type SerializeSeq = serde::ser::Impossible<Option<u64>, ConvertError>;
            type SerializeTuple = serde::ser::Impossible<Option<u64>, ConvertError>;
            type SerializeTupleStruct = serde::ser::Impossible<Option<u64>, ConvertError>;
            type SerializeTupleVariant = serde::ser::Impossible<Option<u64>, ConvertError>;
            type SerializeMap = serde::ser::Impossible<Option<u64>, ConvertError>;
            type SerializeStruct = serde::ser::Impossible<Option<u64>, ConvertError>;
            type SerializeStructVariant = serde::ser::Impossible<Option<u64>, ConvertError>;
            fn serialize_newtype_struct<T: Serialize + ?Sized>(
                self,
                name: &'static str,
                v: &T,
            ) -> Result<Self::Ok, Self::Error> {
                assert_eq!(name, REF_TOKEN);
                v.serialize(self)
            }
            fn serialize_u64(self, v: u64) -> Result<Self::Ok, Self::Error> {
                Ok(Some(v))
            }
            fn serialize_bool(self, _: bool) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_i8(self, _: i8) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_i16(self, _: i16) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_i32(self, _: i32) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_i64(self, _: i64) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_u8(self, _: u8) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_u16(self, _: u16) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_u32(self, _: u32) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_f32(self, _: f32) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_f64(self, _: f64) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_char(self, _: char) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_str(self, _: &str) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_bytes(self, _: &[u8]) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_none(self) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_unit(self) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_unit_struct(self, _: &'static str) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_newtype_variant<T: Serialize + ?Sized>(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                _: &T,
            ) -> Result<Self::Ok, Self::Error> {
                unreachable!()
            }
            fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, Self::Error> {
                unreachable!()
            }
            fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Self::Error> {
                unreachable!()
            }
            fn serialize_tuple_struct(
                self,
                _: &'static str,
                _: usize,
            ) -> Result<Self::SerializeTupleStruct, Self::Error> {
                unreachable!()
            }
            fn serialize_tuple_variant(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                _: usize,
            ) -> Result<Self::SerializeTupleVariant, Self::Error> {
                unreachable!()
            }
            fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Self::Error> {
                unreachable!()
            }
            fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Self::Error> {
                unreachable!()
            }
            fn serialize_struct_variant(
                self,
                _: &'static str,
                _: u32,
                _: &'static str,
                _: usize,
            ) -> Result<Self::SerializeStructVariant, Self::Error> {
                unreachable!()
            }
        }
        let token = Handle(9).serialize(Probe).unwrap();
        assert!(token.is_some());
        assert!(slots_empty());
    }

    #[test]
    fn a_reference_from_a_foreign_deserializer_is_refused() {
        use serde::de::value::{Error, U64Deserializer};
        use serde::de::IntoDeserializer;
        // A plain u64 deserializer answers `deserialize_newtype_struct` with the number.
        let d: U64Deserializer<Error> = 1u64.into_deserializer();
        assert!(deserialize_ref::<_, Handle>(d).is_err());
        assert!(slots_empty());
    }
}
