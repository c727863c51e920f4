//! Errors: the public [`Error`] a caller can act on, [`RemoteError`] (an exception raised by the
//! peer, RPyC's "vinegar"), and [`ProtocolError`] (the peer's bytes made no sense).

use std::{fmt, io, time::Duration};

use crate::{protocol::UnknownHandle, value::Data, ConvertError};

/// Everything that can go wrong with a netref operation.
///
/// `Display` prints one line; the alternate form (`{:#}`) of [`Error::Remote`] adds the remote
/// traceback (see [`RemoteError`]'s `Display`):
///
/// ```
/// use netref::{Error, RemoteError};
///
/// let e = Error::from(RemoteError::new("builtins.KeyError", "'x'").with_traceback("  in lookup"));
/// assert_eq!(e.to_string(), "remote error: builtins.KeyError: 'x'");
/// assert!(format!("{e:#}").ends_with("Remote Traceback =========\n  in lookup"));
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer raised an error while serving the request; it carries the kind, message and
    /// remote traceback.
    Remote(RemoteError),
    /// No reply arrived before the request's expiry (RPyC's `AsyncResultTimeout`). The peer was
    /// told to drop the work; a late reply is discarded.
    Timeout(Duration),
    /// The connection is closed (or was lost) and the request cannot complete.
    ConnectionClosed(String),
    /// The peer sent bytes that break the protocol; the connection was closed.
    Protocol(#[from] ProtocolError),
    /// A value could not be converted to or from the requested Rust type.
    Convert(#[from] ConvertError),
    /// The local access policy refuses the operation.
    AccessDenied(String),
    /// A local limit was reached (requests in flight, bytes queued, exports); retry later or
    /// raise the limit in the configuration.
    LimitReached(String),
    /// Back-pressure: the connection already holds as much one-way traffic waiting to be
    /// written as its settings allow (the peer reads slower than it is sent). Nothing was sent;
    /// wait for room (`NetRef::notify_method_when_ready`, `ActorRef::do_send_when_ready`),
    /// retry later or raise the limit named in the message.
    Backpressure(String),
    /// A blocking call (`wait()`, `value()`) was made on an async runtime thread, where it would
    /// deadlock; `.await` the result instead.
    BlockingInRuntime,
    /// A TLS handshake or TLS configuration failed; the message says which side refused which
    /// certificate.
    Tls(String),
    /// An I/O error on the transport.
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Through this formatter, not `write!(f, "{e}")`, which would drop the alternate
            // flag: `{:#}` then shows the remote traceback.
            Error::Remote(e) => {
                f.write_str("remote error: ")?;
                fmt::Display::fmt(e, f)
            }
            Error::Timeout(after) => write!(f, "request timed out after {after:?}; the peer was asked to cancel it"),
            Error::ConnectionClosed(why) => write!(f, "connection closed: {why}"),
            Error::Protocol(e) => write!(f, "protocol error: {e}"),
            Error::Convert(e) => write!(f, "conversion error: {e}"),
            Error::AccessDenied(why) => write!(f, "access denied: {why}"),
            Error::LimitReached(what) => write!(f, "limit reached: {what}"),
            Error::Backpressure(what) => write!(f, "back-pressure: {what}"),
            Error::BlockingInRuntime => {
                f.write_str("blocking wait on an async runtime thread would deadlock; use .await instead")
            }
            Error::Tls(why) => write!(f, "tls error: {why}"),
            Error::Io(why) => write!(f, "i/o error: {why}"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e.to_string())
    }
}

impl From<RemoteError> for Error {
    fn from(e: RemoteError) -> Self {
        Error::Remote(e)
    }
}

impl Error {
    /// The remote error, if the peer raised one.
    pub fn as_remote(&self) -> Option<&RemoteError> {
        match self {
            Error::Remote(e) => Some(e),
            _ => None,
        }
    }
}

/// An error raised on the peer while it served a request (RPyC's vinegar payload).
///
/// `kind` names the error type as `"module.Type"` (for example `"builtins.AttributeError"`);
/// `Display` prints `kind: message`, and the alternate form (`{:#}`) appends the remote traceback.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteError {
    /// The error type as `"module.Type"`.
    pub kind: String,
    /// The human-readable message.
    pub message: String,
    /// Extra positional arguments (plain data).
    pub args: Vec<Data>,
    /// The remote traceback text (may be empty when the peer withholds it).
    pub traceback: String,
}

/// Well-known error kinds, named as RPyC's peers name them.
pub mod kinds {
    /// An attribute or method is unknown or not accessible.
    pub const ATTRIBUTE_ERROR: &str = "builtins.AttributeError";
    /// Wrong argument count or types.
    pub const TYPE_ERROR: &str = "builtins.TypeError";
    /// A value is invalid.
    pub const VALUE_ERROR: &str = "builtins.ValueError";
    /// The end of an iteration.
    pub const STOP_ITERATION: &str = "builtins.StopIteration";
    /// An operation the peer does not support.
    pub const NOT_IMPLEMENTED: &str = "builtins.NotImplementedError";
    /// A reference to an object the peer does not know.
    pub const REFERENCE_ERROR: &str = "builtins.ReferenceError";
    /// User code panicked while serving the request.
    pub const PANIC: &str = "netref.Panic";
    /// The serving side's policy refuses the operation.
    pub const ACCESS_DENIED: &str = "builtins.PermissionError";
    /// A name that is not exported, or a lookup of the wrong type.
    pub const LOOKUP_ERROR: &str = "builtins.LookupError";
    /// The remote actor stopped.
    pub const ACTOR_STOPPED: &str = "netref.ActorStopped";
    /// A generic failure of user code; what a method's error given as a plain string (`&str`,
    /// `String`, `Box<dyn Error>`, `anyhow::Error`) arrives as.
    pub const RUNTIME_ERROR: &str = "builtins.RuntimeError";
    /// A key is missing from a mapping.
    pub const KEY_ERROR: &str = "builtins.KeyError";
    /// An index is out of range.
    pub const INDEX_ERROR: &str = "builtins.IndexError";
    /// Division or modulo by zero.
    pub const ZERO_DIVISION_ERROR: &str = "builtins.ZeroDivisionError";
    /// A number is too large for its type (what a method's `TryFromIntError` arrives as).
    pub const OVERFLOW_ERROR: &str = "builtins.OverflowError";
    /// An operating-system or I/O failure (what a method's `std::io::Error` arrives as, or one of
    /// Python's `OSError` subclasses for its kind: `builtins.FileNotFoundError`, …).
    pub const OS_ERROR: &str = "builtins.OSError";
    /// An operation ran out of time (what a method's `netref::Error::Timeout` arrives as).
    pub const TIMEOUT_ERROR: &str = "builtins.TimeoutError";
    /// A connection failed (what a method's `netref::Error::ConnectionClosed` arrives as).
    pub const CONNECTION_ERROR: &str = "builtins.ConnectionError";
}

impl RemoteError {
    /// An error of the given kind with a message and no traceback.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        RemoteError { kind: kind.into(), message: message.into(), args: Vec::new(), traceback: String::new() }
    }

    /// Attaches a traceback text.
    pub fn with_traceback(mut self, traceback: impl Into<String>) -> Self {
        self.traceback = traceback.into();
        self
    }

    /// The end of an iteration (RPyC's `EXC_STOP_ITERATION`).
    pub fn stop_iteration() -> Self {
        RemoteError::new(kinds::STOP_ITERATION, "")
    }

    /// Whether this error ends an iteration.
    pub fn is_stop_iteration(&self) -> bool {
        self.kind == kinds::STOP_ITERATION
    }

    /// Whether the kind is `kind` (compared in full, e.g. `"builtins.AttributeError"`).
    pub fn is(&self, kind: &str) -> bool {
        self.kind == kind
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if f.alternate() && !self.traceback.is_empty() {
            write!(f, "\n\n========= Remote Traceback =========\n{}", self.traceback)?;
        }
        Ok(())
    }
}

impl std::error::Error for RemoteError {}

/// The traceback text of an error raised while serving a request, shaped as Python's: a header,
/// where it was raised (`at`, e.g. `method 'div' of 'demo.Calculator' returned an error`), and a
/// last line `Kind: message` (a builtin kind without its `builtins.` module, as Python prints it),
/// which RPyC peers look for.
pub(crate) fn traceback_text(at: &str, kind: &str, message: &str) -> String {
    let shown = kind.strip_prefix("builtins.").unwrap_or(kind);
    let mut text = String::with_capacity(48 + at.len() + shown.len() + message.len());
    text.push_str("Traceback (most recent call last):\n  ");
    text.push_str(at);
    text.push('\n');
    text.push_str(shown);
    if !message.is_empty() {
        text.push_str(": ");
        text.push_str(message);
    }
    text
}

/// The peer's bytes broke the protocol. The connection that received them is closed; nothing
/// else is affected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A length prefix announced a frame larger than `max_frame_len`; nothing was allocated for it.
    #[error("frame of {len} bytes exceeds max_frame_len ({max} bytes)")]
    FrameTooLarge {
        /// The announced length.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({buffered} bytes of an incomplete frame buffered)")]
    TruncatedAtEof {
        /// Bytes of the incomplete frame received before the end.
        buffered: usize,
    },
    /// A frame kind this version does not know.
    #[error("unknown frame kind {0}")]
    UnknownFrameKind(u32),
    /// A request kind that is not a `HANDLE_*` number.
    #[error(transparent)]
    UnknownHandle(#[from] UnknownHandle),
    /// A boxing label that is not a `LABEL_*` number.
    #[error("unknown boxing label {0}")]
    UnknownLabel(u8),
    /// A value tag this version does not know.
    #[error("unknown value tag {0}")]
    UnknownValueTag(u8),
    /// An exception code that is neither a full error nor `EXC_STOP_ITERATION`.
    #[error("unknown exception code {0}")]
    UnknownExceptionCode(u32),
    /// Values nested deeper than the limit.
    #[error("value nested deeper than {max} levels")]
    TooDeep {
        /// The configured limit.
        max: usize,
    },
    /// More values in one frame than the limit. (Every item of a list counts: a `Vec<u8>` is a
    /// list of ints to serde, one value per byte.)
    #[error("frame holds more than {max} values (each list item counts one: send byte data as serde_bytes::ByteBuf or netref::SharedBytes, not Vec<u8>)")]
    TooManyValues {
        /// The configured limit.
        max: usize,
    },
    /// A reference the receiver cannot resolve (for example a `LOCAL_REF` it never exported).
    #[error("bad reference: {0}")]
    BadReference(String),
    /// The peer speaks another protocol version.
    #[error("protocol version mismatch: this side speaks version {ours}, the peer speaks version {theirs}")]
    VersionMismatch {
        /// Our version.
        ours: u32,
        /// The peer's version.
        theirs: u32,
    },
    /// The peer's `Hello` announced a `max_frame_len` under
    /// [`MIN_MAX_FRAME_LEN`](crate::protocol::MIN_MAX_FRAME_LEN): not even an error reply could
    /// be sent to it, so its calls would wait for their timeouts.
    #[error("the peer accepts frames of at most {announced} bytes; netref needs at least {min}")]
    PeerFramesTooSmall {
        /// The peer's announced limit.
        announced: u64,
        /// The smallest limit accepted.
        min: usize,
    },
    /// A value this side was about to send needs a feature bit the peer's `Hello` did not
    /// announce (or the peer's `Hello` has not arrived yet): the send fails locally and nothing
    /// is written. It never comes from the peer's bytes.
    #[error("the peer does not accept {what} values (it did not announce feature {feature})")]
    PeerLacksFeature {
        /// The feature's name (e.g. `"py-values"`).
        feature: &'static str,
        /// What was refused (e.g. `"frozenset"`).
        what: &'static str,
    },
    /// A frame arrived that is not valid at this point (e.g. a request before `Hello`).
    #[error("unexpected frame: {0}")]
    Unexpected(String),
    /// Bytes left over after a complete frame body.
    #[error("{0} trailing bytes after the frame body")]
    TrailingBytes(usize),
    /// The body does not decode (truncated, bad varint, invalid UTF-8, …).
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A compressed frame (RPyC's channel) inflates to more than `max_frame_len` bytes;
    /// inflating stopped there, nothing larger was allocated.
    #[error("compressed frame inflates to more than max_frame_len ({max} bytes)")]
    InflatedTooLarge {
        /// The configured limit.
        max: usize,
    },
    /// An RPyC payload whose first byte is not a message type (1 REQUEST, 2 REPLY, 3 EXCEPTION).
    #[error("unknown rpyc message type {0} (1 REQUEST, 2 REPLY and 3 EXCEPTION are the only ones)")]
    UnknownMessageType(u8),
    /// An RPyC payload that starts with `0x12`, a brine 3-tuple: the `(msg, seq, args)` layout of
    /// rpyc 5.x and older, which rpyc 6 replaced and cannot talk to.
    #[error("the peer looks like rpyc 5.x or older (payload starts with 0x12, the old (msg, seq, args) layout); rpyc 6 cannot talk to it: upgrade the peer to rpyc 6")]
    LegacyRpycPeer,
    /// A native connection's first frame is an RPyC 6 request, not a `Hello`: a stock rpyc
    /// client (or a netref client built with `Connect::rpyc`) reached a listener that speaks
    /// netref's native wire. No `Close` frame is sent for it (the RPyC peer could not read one).
    #[error("a peer spoke RPyC 6 to a native netref connection (its first frame is an RPyC 6 request, not a Hello); serve stock rpyc clients on a listener built with `.rpyc()` (Server::builder(service).rpyc())")]
    RpycPeerOnNativeWire,
    /// The transport failed.
    #[error("i/o error ({kind:?}): {message}")]
    Io {
        /// The I/O error kind.
        kind: io::ErrorKind,
        /// Its message.
        message: String,
    },
}

impl From<io::Error> for ProtocolError {
    fn from(e: io::Error) -> Self {
        ProtocolError::Io { kind: e.kind(), message: e.to_string() }
    }
}

/// The message a caught panic carries (`panic!` with a literal or a formatted string), or a
/// placeholder for any other payload.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a non-string panic payload")
}

/// Runs `start` (user code that starts a connection: an authenticator, a root factory) and
/// turns a panic in it into the reason the connection is refused.
pub(crate) fn refuse_on_panic<T>(start: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(start))
        .unwrap_or_else(|panic| Err(format!("starting the connection panicked: {}", panic_message(&*panic))))
}
