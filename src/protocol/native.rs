//! netref's native wire format, byte by byte as the repository's `PROTOCOL.md` describes it: a
//! frame is a 4-byte big-endian length followed by a postcard body encoding one
//! [`Frame`](crate::Frame).
//!
//! * `consts`: the numbers of the byte format — frame kinds (`KIND_*`), plain-value tags
//!   ([`TAG_NONE`] …), the size from which byte strings are not copied — each defined once.
//! * `limits`: [`DecodeLimits`], what one frame may hold.
//! * `boxing`: [`RefBoxer`] / [`RefUnboxer`], how references become label and identity and
//!   back (the RPyC dialect boxes through them too).
//! * `encode`: [`encode_frame`], the direct encoder and the serde route it is held to.
//! * `decode`: [`decode_frame`].
//! * `codec`: [`FrameCodec`], the length framing around a body.
//! * `plain`: the call path's short cuts, a writer of a call's arguments and a reader of plain
//!   requests and replies, held to the general encoder's bytes and decoder's values.
//!
//! Decoding treats every byte as hostile: nothing here may panic on a peer's bytes, allocate
//! more than `max_frame_len` because a length prefix asked for it, or go past the decode
//! limits; what was wrong is reported as a typed [`ProtocolError`](crate::ProtocolError). This
//! module must never depend on actix or on a connection.

mod boxing;
mod codec;
mod consts;
mod decode;
mod encode;
mod limits;
mod plain;

pub use boxing::{IdPackRef, RefBoxer, RefUnboxer, WireRefs};
pub use codec::FrameCodec;
pub(crate) use consts::{KIND_NOTIFY, KIND_REPLY, KIND_REQUEST};
pub use consts::{
    TAG_BIGINT, TAG_BOOL, TAG_BYTES, TAG_COMPLEX, TAG_ELLIPSIS, TAG_FLOAT, TAG_FROZENSET, TAG_INT, TAG_LIST, TAG_MAP,
    TAG_NONE, TAG_NOT_IMPLEMENTED, TAG_SLICE, TAG_STR, TAG_TUPLE,
};
pub use decode::decode_frame;
pub use encode::encode_frame;
pub(crate) use encode::{local_ref_box, CallFrame};
pub use limits::DecodeLimits;
pub(crate) use plain::{encode_call_tail, read_call, read_reply, CallTail, PlainRef, PlainReply};
