//! RPyC 6's message layout: a channel payload is `u8 msg` then `brine((seq, args))`.
//!
//! `msg` is 1 REQUEST, 2 REPLY or 3 EXCEPTION; `seq` is the sender's request counter (a
//! REPLY or EXCEPTION echoes the request's); `args` is whatever the message type calls for
//! (a request's `(handler, boxed_args)`, a reply's boxed value, an exception's vinegar tuple or
//! the int `1`). This module only frames them: it does not look inside `args`.
//!
//! rpyc 5.x and older wrote `brine((msg, seq, args))` instead, whose first byte is `0x12` (a
//! 3-tuple); such a payload gets its own error, [`ProtocolError::LegacyRpycPeer`]. The
//! thread-binding prefix of stock's experimental `bind_threads` mode is not supported.

use bytes::{BufMut, Bytes, BytesMut};

use super::brine::{dump, load, Brine, BrineLimits, TAG_TUPLE_1};
use crate::ProtocolError;

/// The first byte of a payload written by rpyc 5.x or older: a brine 3-tuple tag.
const LEGACY_FIRST_BYTE: u8 = TAG_TUPLE_1 + 2;

/// The type of an RPyC message (`consts.MSG_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MsgType {
    /// `MSG_REQUEST` (1): `args` is `(handler, boxed_args)`.
    Request = 1,
    /// `MSG_REPLY` (2): `args` is the boxed result.
    Reply = 2,
    /// `MSG_EXCEPTION` (3): `args` is a vinegar tuple, or the int `1` for `StopIteration`.
    Exception = 3,
}

impl MsgType {
    /// The byte on the wire.
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for MsgType {
    type Error = ProtocolError;

    /// The message type of a payload's first byte: `0x12` is
    /// [`ProtocolError::LegacyRpycPeer`], any other unknown byte
    /// [`ProtocolError::UnknownMessageType`].
    fn try_from(byte: u8) -> Result<MsgType, ProtocolError> {
        match byte {
            1 => Ok(MsgType::Request),
            2 => Ok(MsgType::Reply),
            3 => Ok(MsgType::Exception),
            LEGACY_FIRST_BYTE => Err(ProtocolError::LegacyRpycPeer),
            other => Err(ProtocolError::UnknownMessageType(other)),
        }
    }
}

/// One decoded RPyC message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message type.
    pub msg: MsgType,
    /// The sequence number.
    pub seq: u64,
    /// The message's arguments, still boxed.
    pub args: Brine,
}

/// Appends the payload of one message, `u8 msg` then `brine((seq, args))`, to `dst`. On error
/// (see [`dump`]) `dst` is left as it was.
pub fn encode_message(msg: MsgType, seq: u64, args: &Brine, dst: &mut BytesMut) -> Result<(), ProtocolError> {
    let start = dst.len();
    dst.put_u8(msg.as_u8());
    dst.put_u8(TAG_TUPLE_1 + 1);
    let result = dump(&Brine::from(seq), dst).and_then(|()| dump(args, dst));
    if result.is_err() {
        dst.truncate(start);
    }
    result
}

/// Decodes one message payload (as the channel hands it over).
///
/// Errors: an empty payload or one whose brine is not a 2-tuple `(seq, args)` with `seq` an int
/// in `0..2^64` ([`ProtocolError::Malformed`]), an unknown first byte
/// ([`ProtocolError::UnknownMessageType`], or [`ProtocolError::LegacyRpycPeer`] for `0x12`), and
/// whatever [`load`] refuses. `args` shares the payload's buffer for its byte strings.
pub fn decode_message(payload: &Bytes, limits: &BrineLimits) -> Result<Message, ProtocolError> {
    let Some(&first) = payload.first() else {
        return Err(ProtocolError::Malformed("empty rpyc payload".into()));
    };
    let msg = MsgType::try_from(first)?;
    let [seq, args] = match load(&payload.slice(1..), limits)? {
        Brine::Tuple(items) => <[Brine; 2]>::try_from(items)
            .map_err(|items| not_a_message(&format!("a tuple of {} items", items.len())))?,
        other => return Err(not_a_message(other.type_name())),
    };
    let seq = match &seq {
        Brine::Int(v) => u64::try_from(*v).ok(),
        Brine::BigInt(v) => v.to_u128().and_then(|v| u64::try_from(v).ok()),
        _ => None,
    }
    .ok_or_else(|| ProtocolError::Malformed(format!("rpyc seq must be an int in 0..2^64, found {}", describe(&seq))))?;
    Ok(Message { msg, seq, args })
}

/// A short description of a value for an error message: the int itself, or the type's name.
fn describe(value: &Brine) -> String {
    match value {
        Brine::Int(v) => v.to_string(),
        Brine::BigInt(v) if v.as_str().len() <= 40 => v.to_string(),
        other => other.type_name().to_owned(),
    }
}

fn not_a_message(found: &str) -> ProtocolError {
    ProtocolError::Malformed(format!("rpyc message must be brine (seq, args), found {found}"))
}
