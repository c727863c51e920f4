//! `into_value`: a value given up by its owner (a method's result) becomes a [`Value`] by moving
//! its buffer, string or `Value` into it instead of copying or cloning it.
//!
//! It must never change what a value converts to: each type it moves gives the very `Value`
//! that [`to_value`] gives for it, and every other type goes through [`to_value`]. It never
//! panics on any value.

use std::any::Any;

use bytes::Bytes;
use serde::Serialize;

use super::to_value;
use crate::value::{ConvertError, SharedBytes, Value};

/// [`to_value`] for a value given up by its owner (a method's result): a byte buffer that
/// converts to a lone `Value::Bytes` (`serde_bytes::ByteBuf`, `bytes::Bytes`, `BytesMut`,
/// [`SharedBytes`]), a `String`, or a `Value` itself becomes the value without a copy; anything
/// else goes through [`to_value`].
///
/// serde hands a serializer a byte string or a string as a borrowed slice, so a `ByteBuf`
/// result would otherwise be copied into a second buffer of its size while the first is still
/// alive; with large buffers, two freed together can make glibc's allocator trim and regrow the
/// heap on every call. A `Value` would be cloned.
pub(crate) fn into_value<R: Any + Send + 'static, T: Serialize + 'static>(value: T) -> Result<Value<R>, ConvertError> {
    let mut slot = Some(value);
    let any = &mut slot as &mut dyn Any;
    let moved = if let Some(b) = any.downcast_mut::<Option<serde_bytes::ByteBuf>>() {
        b.take().map(|b| Value::Bytes(Bytes::from(b.into_vec())))
    } else if let Some(b) = any.downcast_mut::<Option<Bytes>>() {
        b.take().map(Value::Bytes)
    } else if let Some(b) = any.downcast_mut::<Option<bytes::BytesMut>>() {
        b.take().map(|b| Value::Bytes(b.freeze()))
    } else if let Some(b) = any.downcast_mut::<Option<SharedBytes>>() {
        b.take().map(|b| Value::Bytes(b.into_bytes()))
    } else if let Some(s) = any.downcast_mut::<Option<String>>() {
        s.take().map(Value::Str)
    } else if let Some(v) = any.downcast_mut::<Option<Value<R>>>() {
        v.take()
    } else {
        None
    };
    match (moved, slot) {
        (Some(value), _) => Ok(value),
        (None, Some(value)) => to_value(&value),
        (None, None) => unreachable!("the slot is emptied only when its value was taken"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Data;

    fn v<T: Serialize + ?Sized>(x: &T) -> Data {
        to_value(x).unwrap()
    }

    #[test]
    fn owned_buffers_and_values_convert_without_a_copy() {
        // Each buffer type becomes the very allocation it held, and the same value `to_value`
        // makes from it.
        let vec = vec![5u8; 1 << 16];
        let at = vec.as_ptr();
        let buf = serde_bytes::ByteBuf::from(vec);
        let expected = v(&buf);
        let got: Data = into_value(buf).unwrap();
        assert_eq!(got, expected);
        assert!(matches!(&got, Value::Bytes(b) if b.as_ptr() == at));

        let bytes = Bytes::from(vec![6u8; 1 << 16]);
        let at = bytes.as_ptr();
        let got: Data = into_value(bytes.clone()).unwrap();
        assert_eq!(got, v(&bytes));
        assert!(matches!(&got, Value::Bytes(b) if b.as_ptr() == at));

        let mut bytes_mut = bytes::BytesMut::with_capacity(1 << 16);
        bytes_mut.extend_from_slice(&[7u8; 1 << 16]);
        let at = bytes_mut.as_ptr();
        let expected = v(&bytes_mut);
        let got: Data = into_value(bytes_mut).unwrap();
        assert_eq!(got, expected);
        assert!(matches!(&got, Value::Bytes(b) if b.as_ptr() == at));

        let shared = SharedBytes::from(vec![8u8; 1 << 16]);
        let at = shared.as_ptr();
        let got: Data = into_value(shared.clone()).unwrap();
        assert_eq!(got, v(&shared));
        assert!(matches!(&got, Value::Bytes(b) if b.as_ptr() == at));

        let text = "x".repeat(1 << 16);
        let at = text.as_ptr();
        let expected = v(text.as_str());
        let got: Data = into_value(text).unwrap();
        assert_eq!(got, expected);
        assert!(matches!(&got, Value::Str(t) if t.as_ptr() == at));

        // (A `Value` with references of a type that serializes: a method's `netref::Value`.)
        let list: Value<u8> = Value::List(vec![Value::Int(1), Value::Ref(7), Value::Str("a".repeat(100))]);
        let Value::List(items) = &list else { unreachable!() };
        let at = items.as_ptr();
        let expected: Value<u8> = to_value(&list).unwrap();
        let got: Value<u8> = into_value(list).unwrap();
        assert_eq!(got, expected);
        assert!(matches!(&got, Value::List(items) if items.as_ptr() == at), "moved, not cloned");

        // Anything else, a buffer inside a container included, is converted by `to_value`.
        let nested = (serde_bytes::ByteBuf::from(vec![1u8, 2]), 3u8);
        assert_eq!(into_value::<std::convert::Infallible, _>(nested.clone()).unwrap(), v(&nested));
        assert_eq!(into_value::<std::convert::Infallible, _>(vec![1u8, 2]).unwrap(), v(&vec![1u8, 2]));
        assert_eq!(into_value::<std::convert::Infallible, _>("text").unwrap(), v("text"));
    }
}
