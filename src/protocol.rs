//! The wire protocols: what a connection sends and receives, as bytes, in either dialect.
//!
//! * Shared by every dialect: the request kinds (`HANDLE_*`, [`Handle`]), the labels of a boxed
//!   value (`LABEL_*`), message and exception numbers (`MSG_*`, `EXC_*`) and the frame limits, in
//!   `consts`; the [`Frame`] enum and the `Hello` feature bits, in `frame`; how a read buffer
//!   grows for a partial frame, in `framing`.
//! * One module per dialect: `native`, netref's own postcard format (PROTOCOL.md), with
//!   [`FrameCodec`] and the boxing traits [`RefBoxer`] / [`RefUnboxer`] that both dialects use;
//!   and [`rpyc`], RPyC 6's wire byte for byte.
//!
//! Every decoder here treats a peer's bytes as hostile: it never panics, never allocates more
//! than its limits because a length or count asked for it, and reports what was wrong as a
//! typed [`ProtocolError`](crate::ProtocolError). This module must never depend on actix or on
//! a connection.

mod consts;
mod frame;
mod framing;
mod native;
mod outbox;
pub mod rpyc;

pub use consts::*;
pub use frame::{feature_name, Frame, Hello, Limits, FEATURES, FEATURE_PY_VALUES};
pub use native::{
    decode_frame, encode_frame, DecodeLimits, FrameCodec, IdPackRef, RefBoxer, RefUnboxer, WireRefs, TAG_BIGINT,
    TAG_BOOL, TAG_BYTES, TAG_COMPLEX, TAG_ELLIPSIS, TAG_FLOAT, TAG_FROZENSET, TAG_INT, TAG_LIST, TAG_MAP, TAG_NONE,
    TAG_NOT_IMPLEMENTED, TAG_SLICE, TAG_STR, TAG_TUPLE,
};
pub(crate) use native::{
    encode_call_tail, local_ref_box, read_call, read_reply, CallFrame, CallTail, PlainRef, PlainReply, KIND_NOTIFY,
    KIND_REPLY, KIND_REQUEST,
};
pub(crate) use outbox::{Outbox, Segments, SPILL_PLAIN, SPILL_VECTORED};
