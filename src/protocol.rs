//! The native wire protocol: constants, frames and the frame codec (byte by byte in the
//! repository's `PROTOCOL.md`).
//!
//! A frame is a 4-byte big-endian length followed by a postcard body encoding one [`Frame`].
//! Decoding treats every byte as hostile: it never panics, never allocates more than
//! `max_frame_len` because a length prefix asked for it, bounds nesting depth and value count,
//! and reports what was wrong as a typed [`ProtocolError`](crate::ProtocolError).
//!
//! This module must never depend on actix or on a connection.

mod codec;
mod consts;
mod frame;
mod outbox;
mod plain;
pub mod rpyc;
mod wire;

pub use codec::FrameCodec;
pub use consts::*;
pub use frame::{feature_name, Frame, Hello, Limits, FEATURES, FEATURE_PY_VALUES};
pub(crate) use outbox::{Outbox, Segments, SPILL_PLAIN, SPILL_VECTORED};
pub(crate) use plain::{
    encode_call_tail, read_call, read_reply, CallTail, PlainRef, PlainReply, KIND_NOTIFY, KIND_REPLY, KIND_REQUEST,
};
pub use wire::{
    decode_frame, encode_frame, DecodeLimits, IdPackRef, RefBoxer, RefUnboxer, WireRefs, TAG_BIGINT, TAG_BOOL,
    TAG_BYTES, TAG_COMPLEX, TAG_ELLIPSIS, TAG_FLOAT, TAG_FROZENSET, TAG_INT, TAG_LIST, TAG_MAP, TAG_NONE,
    TAG_NOT_IMPLEMENTED, TAG_SLICE, TAG_STR, TAG_TUPLE,
};
pub(crate) use wire::{local_ref_box, CallFrame};
