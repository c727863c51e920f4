//! [`SharedBytes`]: a byte string that crosses the serde bridge without being copied.
//!
//! serde only shows a serializer a byte string as `&[u8]` and hands a deserializer's visitor a
//! `Vec<u8>` at best, so `serde_bytes::ByteBuf` and `bytes::Bytes` are copied once by
//! [`to_value`](super::to_value) and once more by [`from_value`](super::from_value) when the
//! value came off the wire. `SharedBytes` takes the same side door as references and whole
//! `Value`s (see [`refs`](super::refs)): under the newtype name `$netref::Bytes`,
//! [`ValueSerializer`](super::ValueSerializer) is handed the `Bytes` itself (a refcount, no
//! copy), and [`ValueDeserializer`](super::ValueDeserializer) hands over the `Bytes` of a
//! `Value::Bytes` — for a received frame, a slice of the buffer it was read into. Any other
//! format sees a newtype around a plain byte string.

use std::any::type_name;
use std::fmt;
use std::ops::Deref;

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde::{Serialize, Serializer};

use super::refs::{self, BYTES_TOKEN, DE_SLOT, SER_SLOT};

/// A byte string that converts to and from [`Value::Bytes`](super::Value::Bytes) without
/// copying its bytes: use it for large binary arguments and results.
///
/// Sent through a connection, a `SharedBytes` of 16 KiB or more is written to the transport
/// straight from its buffer (the buffer lives until it is written). Received, it is a slice of
/// the buffer the frame was read into. A method taking and returning `SharedBytes` therefore
/// echoes bytes without a single user-space copy, where `serde_bytes::ByteBuf` costs a copy
/// when it is converted from a received value and when a caller passes it by reference (a
/// method's `ByteBuf` *result* is handed over without one).
///
/// ```
/// use bytes::Bytes;
/// use netref::{dev::to_value, from_value, Data, SharedBytes, Value};
///
/// let payload = Bytes::from(vec![7u8; 1 << 20]);
/// let v: Data = to_value(&SharedBytes::from(payload.clone())).unwrap();
/// let Value::Bytes(b) = &v else { panic!() };
/// assert_eq!(b.as_ptr(), payload.as_ptr()); // the same buffer
/// let back: SharedBytes = from_value(v).unwrap();
/// assert_eq!(back.as_ptr(), payload.as_ptr());
/// ```
///
/// It deserializes from `Value::Bytes` (no copy), from a `List`/`Tuple` of ints in `0..=255`
/// (like `serde_bytes`), and from any format's byte strings or byte sequences (copied).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedBytes(pub Bytes);

impl SharedBytes {
    /// The `Bytes` inside.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for SharedBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<Bytes> for SharedBytes {
    fn from(b: Bytes) -> Self {
        SharedBytes(b)
    }
}

impl From<Vec<u8>> for SharedBytes {
    fn from(v: Vec<u8>) -> Self {
        SharedBytes(Bytes::from(v))
    }
}

impl From<&'static [u8]> for SharedBytes {
    fn from(s: &'static [u8]) -> Self {
        SharedBytes(Bytes::from_static(s))
    }
}

impl From<SharedBytes> for Bytes {
    fn from(b: SharedBytes) -> Self {
        b.0
    }
}

impl<R> From<SharedBytes> for super::Value<R> {
    fn from(b: SharedBytes) -> Self {
        super::Value::Bytes(b.0)
    }
}

/// Serializes as a newtype struct named `$netref::Bytes` around the byte string; a
/// [`ValueSerializer`](super::ValueSerializer) takes the `Bytes` itself instead.
impl Serialize for SharedBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(BYTES_TOKEN, &Contents(&self.0))
    }
}

/// The bytes inside the `$netref::Bytes` newtype.
struct Contents<'a>(&'a Bytes);

impl Serialize for Contents<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if refs::wanted::<Bytes>() {
            // A `ValueSerializer` asked for the `Bytes` itself: park a clone (a refcount) for it.
            let parked = refs::put(&SER_SLOT, Box::new(self.0.clone()), type_name::<Bytes>());
            return s.serialize_newtype_struct(BYTES_TOKEN, &parked.token);
        }
        s.serialize_bytes(self.0)
    }
}

impl<'de> Deserialize<'de> for SharedBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_newtype_struct(BYTES_TOKEN, SharedBytesVisitor)
    }
}

struct SharedBytesVisitor;

impl<'de> Visitor<'de> for SharedBytesVisitor {
    type Value = SharedBytes;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<SharedBytes, D::Error> {
        // From a `ValueDeserializer`, the `Bytes` of a `Value::Bytes` is waiting here.
        match refs::take_if::<Bytes>(&DE_SLOT) {
            Some(bytes) => Ok(SharedBytes(bytes)),
            None => d.deserialize_byte_buf(self),
        }
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<SharedBytes, E> {
        Ok(SharedBytes(Bytes::copy_from_slice(v)))
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<SharedBytes, E> {
        Ok(SharedBytes(Bytes::from(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SharedBytes, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        Ok(SharedBytes(Bytes::from(v)))
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::value::{from_value, to_value, Data, Value};

    fn slots_empty() -> bool {
        refs::is_empty(&SER_SLOT) && refs::is_empty(&DE_SLOT)
    }

    fn payload() -> Bytes {
        Bytes::from((0..100_000u32).map(|i| i as u8).collect::<Vec<u8>>())
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Message {
        id: u32,
        body: SharedBytes,
        extra: Option<SharedBytes>,
        parts: Vec<SharedBytes>,
    }

    #[test]
    fn to_value_shares_the_buffer() {
        let p = payload();
        let v: Data = to_value(&SharedBytes(p.clone())).unwrap();
        let Value::Bytes(b) = &v else { panic!("bytes, got {v:?}") };
        assert_eq!((b.as_ptr(), b.len()), (p.as_ptr(), p.len()));
        assert!(slots_empty());
        // Nested, too.
        let m = Message { id: 1, body: SharedBytes(p.clone()), extra: None, parts: vec![SharedBytes(p.slice(10..20))] };
        let v: Data = to_value(&m).unwrap();
        let Value::Map(fields) = &v else { panic!("a map, got {v:?}") };
        let Value::Bytes(body) = &fields[1].1 else { panic!("bytes") };
        assert_eq!(body.as_ptr(), p.as_ptr());
        let Value::List(parts) = &fields[3].1 else { panic!("a list") };
        assert_eq!(parts, &vec![Value::Bytes(p.slice(10..20))]);
        assert!(slots_empty());
    }

    #[test]
    fn from_value_shares_the_buffer() {
        let p = payload();
        let back: SharedBytes = from_value(Value::<std::convert::Infallible>::Bytes(p.clone())).unwrap();
        assert_eq!((back.as_ptr(), back.len()), (p.as_ptr(), p.len()));
        assert!(slots_empty());
        let m = Message {
            id: 2,
            body: SharedBytes(p.clone()),
            extra: Some(SharedBytes(p.slice(5..))),
            parts: vec![SharedBytes::from(&b"ab"[..]), SharedBytes::default()],
        };
        let v: Data = to_value(&m).unwrap();
        let back: Message = from_value(v).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.body.as_ptr(), p.as_ptr());
        assert_eq!(back.extra.as_ref().unwrap().as_ptr(), p.slice(5..).as_ptr());
        assert!(slots_empty());
    }

    #[test]
    fn it_reads_what_byte_buffers_read_and_refuses_the_rest() {
        let ints = Value::<std::convert::Infallible>::List(vec![Value::Int(1), Value::Int(255)]);
        assert_eq!(from_value::<SharedBytes>(ints).unwrap(), SharedBytes::from(vec![1, 255]));
        let err = from_value::<SharedBytes>(Value::<std::convert::Infallible>::Int(3)).unwrap_err();
        assert_eq!(err.to_string(), "invalid type: integer `3`, expected a byte string");
        let err = from_value::<SharedBytes>(Value::<std::convert::Infallible>::List(vec![Value::Int(256)]));
        assert!(err.is_err());
        assert!(slots_empty());
    }

    #[test]
    fn other_types_read_it_as_plain_bytes() {
        // What `SharedBytes` produced, `ByteBuf` and `Bytes` read (a copy, as before).
        let p = payload();
        let v: Data = to_value(&SharedBytes(p.clone())).unwrap();
        let buf: serde_bytes::ByteBuf = from_value(v.clone()).unwrap();
        assert_eq!(buf.as_slice(), &p[..]);
        let b: Bytes = from_value(v).unwrap();
        assert_eq!(b, p);
        // A `Value` read from it is `Bytes`, sharing the buffer.
        let v: Value<u8> = to_value(&(SharedBytes(p.clone()),)).unwrap();
        let (back,): (Value<u8>,) = from_value(v).unwrap();
        let Value::Bytes(b) = &back else { panic!("bytes, got {back:?}") };
        assert_eq!(b.as_ptr(), p.as_ptr());
        assert!(slots_empty());
    }

    #[test]
    fn other_formats_see_a_plain_byte_string() {
        let m = Message {
            id: 3,
            body: SharedBytes::from(vec![1, 2, 3]),
            extra: Some(SharedBytes::from(vec![4])),
            parts: vec![SharedBytes::default()],
        };
        let encoded = postcard::to_allocvec(&m).unwrap();
        // The same bytes as a plain byte buffer in that place.
        #[derive(Serialize)]
        struct Plain {
            id: u32,
            body: serde_bytes::ByteBuf,
            extra: Option<serde_bytes::ByteBuf>,
            parts: Vec<serde_bytes::ByteBuf>,
        }
        let plain = Plain {
            id: 3,
            body: serde_bytes::ByteBuf::from(vec![1, 2, 3]),
            extra: Some(serde_bytes::ByteBuf::from(vec![4])),
            parts: vec![serde_bytes::ByteBuf::new()],
        };
        assert_eq!(encoded, postcard::to_allocvec(&plain).unwrap());
        let back: Message = postcard::from_bytes(&encoded).unwrap();
        assert_eq!(back, m);
        assert!(slots_empty());
    }
}
