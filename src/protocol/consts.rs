//! Protocol constants, numbered exactly as RPyC's `rpyc/core/consts.py`.

use std::fmt;

/// A request (RPyC `MSG_REQUEST`); also the `Frame` variant index of [`Frame::Request`](super::Frame::Request).
pub const MSG_REQUEST: u8 = 1;
/// A reply (RPyC `MSG_REPLY`); also the variant index of [`Frame::Reply`](super::Frame::Reply).
pub const MSG_REPLY: u8 = 2;
/// An exception reply (RPyC `MSG_EXCEPTION`); also the variant index of [`Frame::Exception`](super::Frame::Exception).
pub const MSG_EXCEPTION: u8 = 3;

/// A value boxed by value: plain data, no reference anywhere inside.
pub const LABEL_VALUE: u8 = 1;
/// A tuple whose items are boxed one by one (because a reference is inside).
pub const LABEL_TUPLE: u8 = 2;
/// An object that lives on the *receiver's* side: it unboxes to the original object.
pub const LABEL_LOCAL_REF: u8 = 3;
/// An object that lives on the *sender's* side: the receiver builds a netref for it.
pub const LABEL_REMOTE_REF: u8 = 4;
/// netref extension: a list whose items are boxed one by one.
pub const LABEL_LIST: u8 = 5;
/// netref extension: a map whose keys and values are boxed one by one.
pub const LABEL_MAP: u8 = 6;

/// The *root alias*: a [`LABEL_LOCAL_REF`] with this `instance_id` and `class_id` 0 names the
/// receiver's root object (what `GETROOT` without a name returns). No object is ever exported
/// under instance id 0, so a side can address the peer's root before the peer's `Hello` has
/// told it the root's identity (early requests, PROTOCOL.md §9). The alias's `type_name` is
/// not read. (RPyC uses instance id 0 with a class's `class_id` to name a class; netref
/// exports no classes.)
pub const ROOT_ALIAS: u64 = 0;

/// `HANDLE_PING`: echo the argument.
pub const HANDLE_PING: u8 = 1;
/// `HANDLE_CLOSE`: close the connection gracefully.
pub const HANDLE_CLOSE: u8 = 2;
/// `HANDLE_GETROOT`: the peer's root object.
pub const HANDLE_GETROOT: u8 = 3;
/// `HANDLE_GETATTR`: read an attribute.
pub const HANDLE_GETATTR: u8 = 4;
/// `HANDLE_DELATTR`: delete an attribute.
pub const HANDLE_DELATTR: u8 = 5;
/// `HANDLE_SETATTR`: write an attribute.
pub const HANDLE_SETATTR: u8 = 6;
/// `HANDLE_CALL`: call a callable object.
pub const HANDLE_CALL: u8 = 7;
/// `HANDLE_CALLATTR`: call a method by name in one round trip.
pub const HANDLE_CALLATTR: u8 = 8;
/// `HANDLE_REPR`: the object's debug text.
pub const HANDLE_REPR: u8 = 9;
/// `HANDLE_STR`: the object's display text.
pub const HANDLE_STR: u8 = 10;
/// `HANDLE_CMP`: compare with another value.
pub const HANDLE_CMP: u8 = 11;
/// `HANDLE_HASH`: the object's hash.
pub const HANDLE_HASH: u8 = 12;
/// `HANDLE_DIR`: the names the object exposes.
pub const HANDLE_DIR: u8 = 13;
/// `HANDLE_PICKLE`: here, *obtain*: copy the object by value (off by default).
pub const HANDLE_PICKLE: u8 = 14;
/// `HANDLE_DEL`: release references (netref batches these in `Frame::Release`).
pub const HANDLE_DEL: u8 = 15;
/// `HANDLE_INSPECT`: the object's method list.
pub const HANDLE_INSPECT: u8 = 16;
/// `HANDLE_BUFFITER`: the next chunk of an iterator.
pub const HANDLE_BUFFITER: u8 = 17;
/// `HANDLE_OLDSLICING`: reserved (Python 2 slicing); always answered "unsupported".
pub const HANDLE_OLDSLICING: u8 = 18;
/// `HANDLE_CTXEXIT`: leave a context manager.
pub const HANDLE_CTXEXIT: u8 = 19;
/// `HANDLE_INSTANCECHECK`: is an object an instance of a remote class.
pub const HANDLE_INSTANCECHECK: u8 = 20;

/// The exception code for the end of an iteration (RPyC sends this int instead of an exception).
pub const EXC_STOP_ITERATION: u8 = 1;

/// The version of the native protocol this build speaks; `Hello` carries it.
pub const PROTOCOL_VERSION: u32 = 1;

/// Default largest frame body in bytes (16 MiB).
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// The smallest `max_frame_len` a connection uses or accepts from its peer (1 KiB): room for
/// every control frame and every error reply netref sends (a reply that does not fit the peer's
/// limit is answered with a short `ValueError` saying so, which must fit). A smaller configured
/// limit is raised to it; a peer whose `Hello` announces less is refused
/// ([`ProtocolError::PeerFramesTooSmall`](crate::ProtocolError::PeerFramesTooSmall)).
pub const MIN_MAX_FRAME_LEN: usize = 1024;

/// A request kind, numbered like RPyC's `HANDLE_*` constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Handle {
    /// [`HANDLE_PING`]
    Ping = HANDLE_PING,
    /// [`HANDLE_CLOSE`]
    Close = HANDLE_CLOSE,
    /// [`HANDLE_GETROOT`]
    GetRoot = HANDLE_GETROOT,
    /// [`HANDLE_GETATTR`]
    GetAttr = HANDLE_GETATTR,
    /// [`HANDLE_DELATTR`]
    DelAttr = HANDLE_DELATTR,
    /// [`HANDLE_SETATTR`]
    SetAttr = HANDLE_SETATTR,
    /// [`HANDLE_CALL`]
    Call = HANDLE_CALL,
    /// [`HANDLE_CALLATTR`]
    CallAttr = HANDLE_CALLATTR,
    /// [`HANDLE_REPR`]
    Repr = HANDLE_REPR,
    /// [`HANDLE_STR`]
    Str = HANDLE_STR,
    /// [`HANDLE_CMP`]
    Cmp = HANDLE_CMP,
    /// [`HANDLE_HASH`]
    Hash = HANDLE_HASH,
    /// [`HANDLE_DIR`]
    Dir = HANDLE_DIR,
    /// [`HANDLE_PICKLE`]
    Pickle = HANDLE_PICKLE,
    /// [`HANDLE_DEL`]
    Del = HANDLE_DEL,
    /// [`HANDLE_INSPECT`]
    Inspect = HANDLE_INSPECT,
    /// [`HANDLE_BUFFITER`]
    BuffIter = HANDLE_BUFFITER,
    /// [`HANDLE_OLDSLICING`]
    OldSlicing = HANDLE_OLDSLICING,
    /// [`HANDLE_CTXEXIT`]
    CtxExit = HANDLE_CTXEXIT,
    /// [`HANDLE_INSTANCECHECK`]
    InstanceCheck = HANDLE_INSTANCECHECK,
}

impl Handle {
    /// Every request kind, in number order.
    pub const ALL: [Handle; 20] = [
        Handle::Ping,
        Handle::Close,
        Handle::GetRoot,
        Handle::GetAttr,
        Handle::DelAttr,
        Handle::SetAttr,
        Handle::Call,
        Handle::CallAttr,
        Handle::Repr,
        Handle::Str,
        Handle::Cmp,
        Handle::Hash,
        Handle::Dir,
        Handle::Pickle,
        Handle::Del,
        Handle::Inspect,
        Handle::BuffIter,
        Handle::OldSlicing,
        Handle::CtxExit,
        Handle::InstanceCheck,
    ];

    /// RPyC's name for this request kind, e.g. `"HANDLE_GETATTR"`.
    pub fn name(self) -> &'static str {
        match self {
            Handle::Ping => "HANDLE_PING",
            Handle::Close => "HANDLE_CLOSE",
            Handle::GetRoot => "HANDLE_GETROOT",
            Handle::GetAttr => "HANDLE_GETATTR",
            Handle::DelAttr => "HANDLE_DELATTR",
            Handle::SetAttr => "HANDLE_SETATTR",
            Handle::Call => "HANDLE_CALL",
            Handle::CallAttr => "HANDLE_CALLATTR",
            Handle::Repr => "HANDLE_REPR",
            Handle::Str => "HANDLE_STR",
            Handle::Cmp => "HANDLE_CMP",
            Handle::Hash => "HANDLE_HASH",
            Handle::Dir => "HANDLE_DIR",
            Handle::Pickle => "HANDLE_PICKLE",
            Handle::Del => "HANDLE_DEL",
            Handle::Inspect => "HANDLE_INSPECT",
            Handle::BuffIter => "HANDLE_BUFFITER",
            Handle::OldSlicing => "HANDLE_OLDSLICING",
            Handle::CtxExit => "HANDLE_CTXEXIT",
            Handle::InstanceCheck => "HANDLE_INSTANCECHECK",
        }
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Handle> for u8 {
    fn from(h: Handle) -> u8 {
        h as u8
    }
}

/// A request number that names no [`Handle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown request handle {0} (known: 1..=20)")]
pub struct UnknownHandle(pub u8);

impl TryFrom<u8> for Handle {
    type Error = UnknownHandle;

    fn try_from(n: u8) -> Result<Handle, UnknownHandle> {
        match n {
            1..=20 => Ok(Handle::ALL[usize::from(n) - 1]),
            _ => Err(UnknownHandle(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_have_rpyc_numbers_and_round_trip() {
        for (i, h) in Handle::ALL.iter().enumerate() {
            assert_eq!(*h as usize, i + 1);
            assert_eq!(Handle::try_from(*h as u8), Ok(*h));
        }
        assert_eq!(Handle::GetAttr as u8, 4);
        assert_eq!(Handle::CallAttr as u8, 8);
        assert_eq!(Handle::InstanceCheck as u8, 20);
        assert_eq!(Handle::try_from(0), Err(UnknownHandle(0)));
        assert_eq!(Handle::try_from(21), Err(UnknownHandle(21)));
    }
}
