//! The call path's short cut through the wire format: a method call's name and arguments (and
//! the arguments of a call of a callable, CALL) are encoded where the call is made, straight
//! from their serde types, and a request or reply whose values are plain data is read straight
//! into values, without serde's machinery.
//!
//! Both are *short cuts*: each gives up (`None`) wherever its result could differ from the
//! general route's — a reference (the writer), a reference inside a container (the reader,
//! which takes references as arguments and as a reply's value, and leaves their unboxing to
//! its caller), a value the limits refuse, a shape it does not know, anything malformed — and
//! the general route ([`encode_frame`](super::encode_frame),
//! [`decode_frame`](super::decode_frame)) then gives the answer or the error. So they never
//! decide anything the general route would decide differently; the property tests (`tests`)
//! hold them to the general route's bytes and values.
//!
//! Nothing here may panic on a peer's bytes.

mod read;
#[cfg(test)]
mod tests;
mod write;

pub(crate) use read::{read_call, read_reply, PlainRef, PlainReply};
pub(crate) use write::{encode_call_tail, CallTail};
