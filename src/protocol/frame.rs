//! The [`Frame`] enum: everything that crosses the wire. Variants are append-only.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Handle, DEFAULT_MAX_FRAME_LEN, MIN_MAX_FRAME_LEN, PROTOCOL_VERSION};
use crate::{error::RemoteError, value::Value, IdPack, ProtocolError};

/// Feature bit: the sender accepts the plain values Python has beyond version 1's —
/// `frozenset`, `slice`, `Ellipsis`, `NotImplemented` (value tags 11–14: `TAG_FROZENSET`,
/// `TAG_SLICE`, `TAG_ELLIPSIS`, `TAG_NOT_IMPLEMENTED`). Named `py-values` in messages.
///
/// A side never sends one of these values to a peer whose `Hello` did not announce this bit:
/// the encoder refuses it ([`ProtocolError::PeerLacksFeature`]) and nothing is written.
pub const FEATURE_PY_VALUES: u64 = 1 << 0;

/// Feature bits this build announces in [`Hello::features`]: [`FEATURE_PY_VALUES`]. Unknown bits
/// from a peer are ignored.
pub const FEATURES: u64 = FEATURE_PY_VALUES;

/// The name of a feature bit, for messages (`"py-values"`); `"unknown"` for a bit this build
/// does not define.
pub fn feature_name(bit: u64) -> &'static str {
    match bit {
        FEATURE_PY_VALUES => "py-values",
        _ => "unknown",
    }
}

/// One unit on the wire. The postcard variant index is the frame kind (named `KIND_*` in the
/// native format's constants); `Request`, `Reply` and `Exception` have indices 1, 2 and 3,
/// equal to RPyC's `MSG_*` numbers.
///
/// Variants are **append-only**: a new kind gets the next index and its `KIND_*` constant, old
/// indices never change.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Frame<R> {
    /// The first frame in each direction: protocol version, features and the sender's limits.
    Hello(Hello),
    /// A request (`MSG_REQUEST`). `args` is the boxed argument tuple; for requests on an object
    /// its first item is the target (a `LOCAL_REF`), as in RPyC.
    Request {
        /// The sender's request number, echoed by the reply; each side numbers its own.
        seq: u64,
        /// What to do.
        handle: Handle,
        /// The arguments, boxed.
        args: Value<R>,
        /// How long the sender will wait, relative to when it sent the frame (no clock sync).
        deadline: Option<Duration>,
    },
    /// A successful reply (`MSG_REPLY`).
    Reply {
        /// The request's `seq`.
        seq: u64,
        /// The result, boxed.
        value: Value<R>,
    },
    /// A failed reply (`MSG_EXCEPTION`).
    Exception {
        /// The request's `seq`.
        seq: u64,
        /// What went wrong on the serving side.
        error: RemoteError,
    },
    /// The sender gave up waiting for request `seq`; the receiver may drop the work.
    Cancel {
        /// The abandoned request's `seq`.
        seq: u64,
    },
    /// Batched `HANDLE_DEL`: the sender dropped its last proxy for each object `id` after
    /// receiving it `count` times.
    Release {
        /// `(instance_id, count)` pairs.
        refs: Vec<(u64, u64)>,
    },
    /// The sender is closing the connection; no new requests will follow.
    Close {
        /// Why, for the peer's logs.
        reason: String,
    },
    /// A one-way request: served like `Request`, but never answered — not even with an
    /// exception (errors are logged by the receiver). Used for fire-and-forget messages.
    Notify {
        /// What to do.
        handle: Handle,
        /// The arguments, boxed.
        args: Value<R>,
    },
}

impl<R> Frame<R> {
    /// The frame's kind as a short name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello(_) => "Hello",
            Frame::Request { .. } => "Request",
            Frame::Reply { .. } => "Reply",
            Frame::Exception { .. } => "Exception",
            Frame::Cancel { .. } => "Cancel",
            Frame::Release { .. } => "Release",
            Frame::Close { .. } => "Close",
            Frame::Notify { .. } => "Notify",
        }
    }
}

/// The handshake: the first frame each side sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the sender speaks ([`PROTOCOL_VERSION`]).
    pub version: u32,
    /// Feature bits the sender supports ([`FEATURES`]): what the peer may send it beyond
    /// version 1's baseline (see PROTOCOL.md, "Wire versioning").
    pub features: u64,
    /// The sender's limits, so the peer can stay within them.
    pub limits: Limits,
    /// The identity of the sender's root object (what `GETROOT` without a name returns), so
    /// the peer can reach it without a round trip. The root is pinned for the connection's
    /// life, so this send is not counted: the peer owes no `Release` for it. `None` from a
    /// sender that does not announce it; the peer then asks with `GETROOT`.
    pub root: Option<IdPack>,
}

impl Hello {
    /// This build's `Hello` with the given limits and no root.
    pub fn new(limits: Limits) -> Self {
        Hello { version: PROTOCOL_VERSION, features: FEATURES, limits, root: None }
    }

    /// This `Hello`, announcing `root` as the sender's root object.
    pub fn with_root(mut self, root: IdPack) -> Self {
        self.root = Some(root);
        self
    }

    /// Checks that the peer speaks our version; the error names both versions.
    pub fn check_version(&self) -> Result<(), ProtocolError> {
        if self.version == PROTOCOL_VERSION {
            Ok(())
        } else {
            Err(ProtocolError::VersionMismatch { ours: PROTOCOL_VERSION, theirs: self.version })
        }
    }

    /// `PeerFramesTooSmall` if the limits announce frames under [`MIN_MAX_FRAME_LEN`].
    pub fn check_limits(&self) -> Result<(), ProtocolError> {
        if self.limits.max_frame_len >= MIN_MAX_FRAME_LEN as u64 {
            Ok(())
        } else {
            Err(ProtocolError::PeerFramesTooSmall { announced: self.limits.max_frame_len, min: MIN_MAX_FRAME_LEN })
        }
    }
}

/// Limits a side announces in its [`Hello`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// The largest frame body the sender accepts.
    pub max_frame_len: u64,
    /// How many of the peer's requests the sender serves at once.
    pub max_concurrent_requests: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frame_len: DEFAULT_MAX_FRAME_LEN as u64, max_concurrent_requests: 1024 }
    }
}
