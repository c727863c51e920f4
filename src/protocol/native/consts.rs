//! The numbers of the native byte format (PROTOCOL.md): frame kinds, plain-value tags, and the
//! size from which a byte string is sent from its own buffer. Each is defined here once, and
//! every encoder and decoder (serde route, direct encoder, plain reader and writer) uses it by
//! name.
//!
//! The labels of a boxed value (`LABEL_*`), the request kinds (`HANDLE_*`) and the exception
//! codes (`EXC_*`) are shared with the RPyC dialect and live in `protocol::consts`.

use crate::protocol::{MSG_EXCEPTION, MSG_REPLY, MSG_REQUEST};

// Frame kinds: the postcard variant index of each [`Frame`](crate::Frame) variant, written as a
// varint at the start of every frame body (one byte: every kind is below 128). Append-only and
// contiguous: a new kind takes the next number, and the decoder, which reads the kinds
// `KIND_REQUEST..=KIND_NOTIFY` as a body of fields, must then name it too.

/// Frame kind of [`Frame::Hello`](crate::Frame::Hello).
pub(crate) const KIND_HELLO: u8 = 0;
/// Frame kind of [`Frame::Request`](crate::Frame::Request), RPyC's `MSG_REQUEST`.
pub(crate) const KIND_REQUEST: u8 = 1;
/// Frame kind of [`Frame::Reply`](crate::Frame::Reply), RPyC's `MSG_REPLY`.
pub(crate) const KIND_REPLY: u8 = 2;
/// Frame kind of [`Frame::Exception`](crate::Frame::Exception), RPyC's `MSG_EXCEPTION`.
pub(crate) const KIND_EXCEPTION: u8 = 3;
/// Frame kind of [`Frame::Cancel`](crate::Frame::Cancel).
pub(crate) const KIND_CANCEL: u8 = 4;
/// Frame kind of [`Frame::Release`](crate::Frame::Release).
pub(crate) const KIND_RELEASE: u8 = 5;
/// Frame kind of [`Frame::Close`](crate::Frame::Close).
pub(crate) const KIND_CLOSE: u8 = 6;
/// Frame kind of [`Frame::Notify`](crate::Frame::Notify): the last kind.
pub(crate) const KIND_NOTIFY: u8 = 7;

// A request, a reply and an exception are numbered as RPyC numbers its messages.
const _: () = assert!(KIND_REQUEST == MSG_REQUEST && KIND_REPLY == MSG_REPLY && KIND_EXCEPTION == MSG_EXCEPTION);

/// Plain-value tag: `None`.
pub const TAG_NONE: u8 = 0;
/// Plain-value tag: a boolean (one byte, 0 or 1).
pub const TAG_BOOL: u8 = 1;
/// Plain-value tag: an `i64` (zigzag varint).
pub const TAG_INT: u8 = 2;
/// Plain-value tag: a big integer (canonical decimal string).
pub const TAG_BIGINT: u8 = 3;
/// Plain-value tag: an `f64` (8 bytes, little-endian).
pub const TAG_FLOAT: u8 = 4;
/// Plain-value tag: a complex number (two `f64`).
pub const TAG_COMPLEX: u8 = 5;
/// Plain-value tag: a UTF-8 string (varint length + bytes).
pub const TAG_STR: u8 = 6;
/// Plain-value tag: a byte string (varint length + bytes).
pub const TAG_BYTES: u8 = 7;
/// Plain-value tag: a tuple (varint count + plain values).
pub const TAG_TUPLE: u8 = 8;
/// Plain-value tag: a list (varint count + plain values).
pub const TAG_LIST: u8 = 9;
/// Plain-value tag: a map (varint count + key/value plain pairs).
pub const TAG_MAP: u8 = 10;
/// Plain-value tag: Python's `frozenset` (varint count + plain values, in the order sent).
/// Only to a peer that announced [`FEATURE_PY_VALUES`](crate::dev::FEATURE_PY_VALUES).
pub const TAG_FROZENSET: u8 = 11;
/// Plain-value tag: Python's `slice` (three plain values: start, stop, step). Only to a peer
/// that announced [`FEATURE_PY_VALUES`](crate::dev::FEATURE_PY_VALUES).
pub const TAG_SLICE: u8 = 12;
/// Plain-value tag: Python's `Ellipsis` (nothing follows). Only to a peer that announced
/// [`FEATURE_PY_VALUES`](crate::dev::FEATURE_PY_VALUES).
pub const TAG_ELLIPSIS: u8 = 13;
/// Plain-value tag: Python's `NotImplemented` (nothing follows). Only to a peer that announced
/// [`FEATURE_PY_VALUES`](crate::dev::FEATURE_PY_VALUES).
pub const TAG_NOT_IMPLEMENTED: u8 = 14;

/// Byte strings from this size on are left by the plain writer to the general route, which
/// sends a shared buffer from where it is instead of copying it (see `encode::Spill`).
pub(crate) const LARGE_BYTES: usize = 16 << 10;
