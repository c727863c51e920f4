//! The direct encoder: the frames that carry a value tree (requests, replies, notifications:
//! nearly every frame), and `Hello`, written byte by byte without serde's machinery, in exactly
//! the bytes the serde route (`serde_route::FrameSer`) gives — a unit test holds the two to
//! that. Also the pre-encoded call ([`encode_call_frame`]): a CALLATTR or CALL whose items
//! after the target the plain writer encoded where the call was made.
//!
//! Never panics on a value; every frame kind is written by its `KIND_*` name.

use std::time::Duration;

use bytes::{BufMut, BytesMut};

use super::{micros, needs_boxing, serde_route::encode_frame_serde, Spill};
use crate::{
    protocol::{
        frame::FEATURE_PY_VALUES,
        native::{
            boxing::RefBoxer,
            consts::{
                KIND_HELLO, KIND_NOTIFY, KIND_REPLY, KIND_REQUEST, TAG_BIGINT, TAG_BOOL, TAG_BYTES, TAG_COMPLEX,
                TAG_ELLIPSIS, TAG_FLOAT, TAG_FROZENSET, TAG_INT, TAG_LIST, TAG_MAP, TAG_NONE, TAG_NOT_IMPLEMENTED,
                TAG_SLICE, TAG_STR, TAG_TUPLE,
            },
        },
        Handle, LABEL_LIST, LABEL_LOCAL_REF, LABEL_MAP, LABEL_REMOTE_REF, LABEL_TUPLE, LABEL_VALUE,
    },
    value::{IdPack, RefLabel, Value},
    Frame, ProtocolError,
};

/// A `u64` as postcard's varint (LEB128).
pub(super) fn put_varint(dst: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        dst.put_u8(v as u8 | 0x80);
        v >>= 7;
    }
    dst.put_u8(v as u8);
}

/// A string as postcard writes it: varint length, then the UTF-8 bytes.
fn put_str(dst: &mut BytesMut, s: &str) {
    put_varint(dst, s.len() as u64);
    dst.extend_from_slice(s.as_bytes());
}

/// Appends the body of `frame`: byte by byte for a request, reply, notification or `Hello`,
/// by the serde route for any other kind.
pub(super) fn encode_value_frame<R, B: RefBoxer<R>>(
    frame: &Frame<R>,
    boxer: &B,
    dst: &mut BytesMut,
    spill: &Spill,
) -> Result<(), ProtocolError> {
    match frame {
        Frame::Request { seq, handle, args, deadline } => {
            put_varint(dst, KIND_REQUEST.into());
            put_varint(dst, *seq);
            dst.put_u8(*handle as u8);
            put_boxed(dst, args, 0, boxer, spill)?;
            put_deadline(dst, deadline);
        }
        Frame::Reply { seq, value } => {
            put_varint(dst, KIND_REPLY.into());
            put_varint(dst, *seq);
            put_boxed(dst, value, 0, boxer, spill)?;
        }
        Frame::Notify { handle, args } => {
            put_varint(dst, KIND_NOTIFY.into());
            dst.put_u8(*handle as u8);
            put_boxed(dst, args, 0, boxer, spill)?;
        }
        // Once per connection each way, but on the path of every connection's set-up.
        Frame::Hello(hello) => {
            put_varint(dst, KIND_HELLO.into());
            put_varint(dst, u64::from(hello.version));
            put_varint(dst, hello.features);
            put_varint(dst, hello.limits.max_frame_len);
            put_varint(dst, hello.limits.max_concurrent_requests);
            match &hello.root {
                None => dst.put_u8(0),
                Some(root) => {
                    dst.put_u8(1);
                    put_str(dst, &root.type_name);
                    put_varint(dst, root.class_id);
                    put_varint(dst, root.instance_id);
                }
            }
        }
        other => return encode_frame_serde(other, boxer, dst, spill),
    }
    Ok(())
}

/// A CALLATTR or CALL request (`seq` given) or notification (`seq` `None`) on `target`, whose
/// items after the target were encoded ahead by
/// [`encode_call_tail`](crate::protocol::native::plain::encode_call_tail) into `tail`.
pub(crate) struct CallFrame<'a, R> {
    pub(crate) seq: Option<u64>,
    pub(crate) handle: Handle,
    pub(crate) target: &'a R,
    pub(crate) tail: &'a [u8],
    pub(crate) deadline: Option<Duration>,
}

/// The bytes [`put_ref`] writes for a `LOCAL_REF` to `id`: a netref names its object this way
/// in every call on it, so it encodes them once ([`RefBoxer::boxed`]).
pub(crate) fn local_ref_box(id: &IdPack) -> Box<[u8]> {
    let mut dst = BytesMut::with_capacity(1 + 1 + id.type_name.len() + 2 * 10);
    dst.put_u8(LABEL_LOCAL_REF);
    put_id(&mut dst, id);
    dst.to_vec().into_boxed_slice()
}

/// Appends the body of a CALLATTR or CALL request (`seq` given) or notification (`seq` `None`)
/// on `target`, whose other items were encoded ahead by
/// [`encode_call_tail`](crate::protocol::native::plain::encode_call_tail): the same bytes as the general route
/// gives for `Tuple[Ref(target), Str(name), Tuple(args), None]` (CALLATTR) or
/// `Tuple[Ref(target), Tuple(args), None]` (CALL).
pub(crate) fn encode_call_frame<R, B: RefBoxer<R>>(
    call: &CallFrame<'_, R>,
    boxer: &B,
    dst: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let &CallFrame { seq, handle, target, tail, deadline } = call;
    // Checked before anything is written.
    let items = match handle {
        Handle::CallAttr => 4,
        Handle::Call => 3,
        other => return Err(ProtocolError::Unexpected(format!("a pre-encoded call cannot be a {other} request"))),
    };
    match seq {
        Some(seq) => {
            put_varint(dst, KIND_REQUEST.into());
            put_varint(dst, seq);
        }
        None => put_varint(dst, KIND_NOTIFY.into()),
    }
    dst.put_u8(handle as u8);
    dst.put_u8(LABEL_TUPLE);
    put_varint(dst, items);
    put_ref(dst, target, boxer)?;
    dst.extend_from_slice(tail);
    if seq.is_some() {
        put_deadline(dst, &deadline);
    }
    Ok(())
}

/// A reference, boxed: its label, then its identity (copied when the reference keeps them).
#[inline]
fn put_ref<R, B: RefBoxer<R>>(dst: &mut BytesMut, r: &R, boxer: &B) -> Result<(), ProtocolError> {
    match boxer.boxed(r) {
        Some(boxed) => {
            dst.extend_from_slice(boxed);
            Ok(())
        }
        None => put_new_ref(dst, r, boxer),
    }
}

/// [`put_ref`] for a reference boxed by [`RefBoxer::box_ref`].
fn put_new_ref<R, B: RefBoxer<R>>(dst: &mut BytesMut, r: &R, boxer: &B) -> Result<(), ProtocolError> {
    let (label, id) = boxer.box_ref(r).map_err(ProtocolError::BadReference)?;
    dst.put_u8(match label {
        RefLabel::Local => LABEL_LOCAL_REF,
        RefLabel::Remote => LABEL_REMOTE_REF,
    });
    put_id(dst, &id);
    Ok(())
}

/// An `id_pack`: type name, class id, instance id.
fn put_id(dst: &mut BytesMut, id: &IdPack) {
    put_str(dst, &id.type_name);
    put_varint(dst, id.class_id);
    put_varint(dst, id.instance_id);
}

/// A request's deadline: postcard's `Option<u64>` of microseconds.
fn put_deadline(dst: &mut BytesMut, deadline: &Option<Duration>) {
    match micros(deadline) {
        None => dst.put_u8(0),
        Some(us) => {
            dst.put_u8(1);
            put_varint(dst, us);
        }
    }
}

fn put_boxed<R, B: RefBoxer<R>>(
    dst: &mut BytesMut,
    value: &Value<R>,
    depth: usize,
    boxer: &B,
    spill: &Spill,
) -> Result<(), ProtocolError> {
    // A plain value is admitted by `put_plain`, everything else here (once each: the decoder
    // counts one per value).
    match value {
        Value::Ref(r) => {
            spill.admit(depth)?;
            put_ref(dst, r, boxer)?;
        }
        v if !needs_boxing(v, spill.budget(depth)) => {
            dst.put_u8(LABEL_VALUE);
            put_plain(dst, v, depth, spill)?;
        }
        Value::Tuple(items) | Value::List(items) => {
            spill.admit(depth)?;
            dst.put_u8(if matches!(value, Value::Tuple(_)) { LABEL_TUPLE } else { LABEL_LIST });
            put_varint(dst, items.len() as u64);
            for item in items {
                put_boxed(dst, item, depth + 1, boxer, spill)?;
            }
        }
        Value::Map(pairs) => {
            spill.admit(depth)?;
            dst.put_u8(LABEL_MAP);
            put_varint(dst, pairs.len() as u64);
            for (k, v) in pairs {
                put_boxed(dst, k, depth + 1, boxer, spill)?;
                put_boxed(dst, v, depth + 1, boxer, spill)?;
            }
        }
        // Scalars never need boxing, so they took the plain branch.
        _ => return Err(ProtocolError::Malformed("scalar value with a reference".into())),
    }
    Ok(())
}

fn put_plain<R>(dst: &mut BytesMut, value: &Value<R>, depth: usize, spill: &Spill) -> Result<(), ProtocolError> {
    spill.admit(depth)?;
    match value {
        Value::None => dst.put_u8(TAG_NONE),
        Value::Bool(b) => {
            dst.put_u8(TAG_BOOL);
            dst.put_u8(u8::from(*b));
        }
        Value::Int(i) => {
            dst.put_u8(TAG_INT);
            put_varint(dst, ((i << 1) ^ (i >> 63)) as u64);
        }
        Value::BigInt(b) => {
            dst.put_u8(TAG_BIGINT);
            put_str(dst, b.as_str());
        }
        Value::Float(x) => {
            dst.put_u8(TAG_FLOAT);
            dst.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Value::Complex(re, im) => {
            dst.put_u8(TAG_COMPLEX);
            dst.extend_from_slice(&re.to_bits().to_le_bytes());
            dst.extend_from_slice(&im.to_bits().to_le_bytes());
        }
        Value::Str(text) => {
            dst.put_u8(TAG_STR);
            put_str(dst, text);
        }
        Value::Bytes(b) => {
            dst.put_u8(TAG_BYTES);
            put_varint(dst, b.len() as u64);
            if spill.takes(b) {
                spill.set_aside_at(dst.len(), b);
            } else {
                dst.extend_from_slice(b);
            }
        }
        Value::Tuple(items) | Value::List(items) => {
            dst.put_u8(if matches!(value, Value::Tuple(_)) { TAG_TUPLE } else { TAG_LIST });
            put_varint(dst, items.len() as u64);
            for item in items {
                put_plain(dst, item, depth + 1, spill)?;
            }
        }
        Value::Map(pairs) => {
            dst.put_u8(TAG_MAP);
            put_varint(dst, pairs.len() as u64);
            for (k, v) in pairs {
                put_plain(dst, k, depth + 1, spill)?;
                put_plain(dst, v, depth + 1, spill)?;
            }
        }
        Value::FrozenSet(items) => {
            spill.require(FEATURE_PY_VALUES, "frozenset")?;
            dst.put_u8(TAG_FROZENSET);
            put_varint(dst, items.len() as u64);
            for item in items {
                put_plain(dst, item, depth + 1, spill)?;
            }
        }
        Value::Slice(parts) => {
            spill.require(FEATURE_PY_VALUES, "slice")?;
            dst.put_u8(TAG_SLICE);
            for part in parts.iter() {
                put_plain(dst, part, depth + 1, spill)?;
            }
        }
        Value::Ellipsis => {
            spill.require(FEATURE_PY_VALUES, "Ellipsis")?;
            dst.put_u8(TAG_ELLIPSIS);
        }
        Value::NotImplemented => {
            spill.require(FEATURE_PY_VALUES, "NotImplemented")?;
            dst.put_u8(TAG_NOT_IMPLEMENTED);
        }
        // Only inside a frozenset or slice (everything else holding a reference is boxed).
        Value::Ref(_) => return Err(spill.ref_in_plain()),
    }
    Ok(())
}
