//! A connection's life as explicit states: the handshake (the peer's `Hello`: version, limits,
//! its root), and the phases open → closing → closed with the peer's own close.
//!
//! Each transition is a method that says whether it happened, so the connection acts on what
//! this part decides instead of comparing states itself. Nothing here performs I/O, keeps a
//! timer or reads the clock.

use crate::{protocol::Hello, IdPack, ProtocolError};

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Requests flow both ways.
    Open,
    /// No new requests; what is due is flushed (replies, the `Close` frame), then the transport
    /// is shut.
    Closing,
    /// Nothing more is read or written.
    Closed,
}

/// The handshake and the phases of one connection.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    phase: Phase,
    /// The peer's `Hello`, once it arrived and was accepted.
    peer_hello: Option<Hello>,
    /// The peer sent `Close`: it answers what it already received, then hangs up; its replies
    /// are still read.
    peer_closing: bool,
    /// The wire has no handshake: the connection is ready from the start and a `Hello` is
    /// never expected.
    no_handshake: bool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle { phase: Phase::Open, peer_hello: None, peer_closing: false, no_handshake: false }
    }
}

impl Lifecycle {
    /// The life of a connection whose wire has no handshake: greeted from the start.
    pub(crate) fn without_handshake() -> Self {
        Lifecycle { no_handshake: true, ..Lifecycle::default() }
    }

    /// The current phase.
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether requests flow (both ways).
    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether nothing more happens.
    pub(crate) fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Whether the peer's frames are still read: while open, and while closing after the peer's
    /// own `Close` (its replies to this side's requests still come).
    pub(crate) fn reads_frames(&self) -> bool {
        self.phase == Phase::Open || (self.phase == Phase::Closing && self.peer_closing)
    }

    /// Whether the peer sent `Close`.
    pub(crate) fn peer_closing(&self) -> bool {
        self.peer_closing
    }

    /// Whether the peer's `Hello` arrived.
    pub(crate) fn greeted(&self) -> bool {
        self.no_handshake || self.peer_hello.is_some()
    }

    /// The root the peer announced in its `Hello`.
    pub(crate) fn peer_root(&self) -> Option<&IdPack> {
        self.peer_hello.as_ref()?.root.as_ref()
    }

    /// The largest frame the peer accepts, once its `Hello` said so.
    pub(crate) fn peer_max_frame_len(&self) -> Option<usize> {
        self.peer_hello.as_ref().map(|h| usize::try_from(h.limits.max_frame_len).unwrap_or(usize::MAX))
    }

    /// Refuses any frame but `Hello` before the peer's `Hello` (`kind` names the frame).
    pub(crate) fn check_before_hello(&self, is_hello: bool, kind: &str) -> Result<(), ProtocolError> {
        if !self.greeted() && !is_hello {
            return Err(ProtocolError::Unexpected(format!("{kind} frame before Hello")));
        }
        Ok(())
    }

    /// Accepts the peer's `Hello`: refused if one came already, or if it speaks another
    /// protocol version or announces frames too small to answer.
    pub(crate) fn receive_hello(&mut self, hello: Hello) -> Result<&Hello, ProtocolError> {
        if self.no_handshake {
            return Err(ProtocolError::Unexpected("a Hello on a wire without a handshake".into()));
        }
        if self.peer_hello.is_some() {
            return Err(ProtocolError::Unexpected("a second Hello".into()));
        }
        hello.check_version().and_then(|()| hello.check_limits())?;
        Ok(self.peer_hello.insert(hello))
    }

    /// The peer sent `Close`.
    pub(crate) fn peer_closes(&mut self) {
        self.peer_closing = true;
    }

    /// Open → closing, for a graceful close; `false` if the connection was not open.
    pub(crate) fn begin_close(&mut self) -> bool {
        if self.phase != Phase::Open {
            return false;
        }
        self.phase = Phase::Closing;
        true
    }

    /// Open or closing → closing, for an abrupt close; returns whether it was open (only then is
    /// the reason worth explaining to the peer). `None` if it was closed already.
    pub(crate) fn begin_failing(&mut self) -> Option<bool> {
        match self.phase {
            Phase::Closed => None,
            phase => {
                self.phase = Phase::Closing;
                Some(phase == Phase::Open)
            }
        }
    }

    /// Whether a close now waits only for the queued writes: closing, nothing of the peer's
    /// running here (`inbound_idle`), and — when the peer closes too — no reply of its awaited.
    pub(crate) fn closes_after_write(&self, inbound_idle: bool, nothing_awaited: bool) -> bool {
        self.phase == Phase::Closing && inbound_idle && (!self.peer_closing || nothing_awaited)
    }

    /// → closed.
    pub(crate) fn finish(&mut self) {
        self.phase = Phase::Closed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Limits, PROTOCOL_VERSION};

    fn hello() -> Hello {
        Hello::new(Limits::default())
    }

    #[test]
    fn frames_before_the_hello_are_refused_and_a_second_hello_too() {
        let mut life = Lifecycle::default();
        assert!(life.check_before_hello(false, "Request").is_err());
        assert!(life.check_before_hello(true, "Hello").is_ok());
        assert!(life.receive_hello(hello()).is_ok());
        assert!(life.greeted());
        assert!(life.check_before_hello(false, "Request").is_ok());
        assert!(matches!(life.receive_hello(hello()), Err(ProtocolError::Unexpected(_))));
    }

    #[test]
    fn another_version_or_tiny_frames_are_refused_at_the_hello() {
        let mut life = Lifecycle::default();
        let other = Hello { version: PROTOCOL_VERSION + 1, ..hello() };
        assert!(matches!(life.receive_hello(other), Err(ProtocolError::VersionMismatch { .. })));
        let tiny = Hello { limits: Limits { max_frame_len: 16, ..Limits::default() }, ..hello() };
        assert!(matches!(life.receive_hello(tiny), Err(ProtocolError::PeerFramesTooSmall { .. })));
        assert!(!life.greeted());
    }

    #[test]
    fn a_graceful_close_happens_once_and_waits_for_what_is_due() {
        let mut life = Lifecycle::default();
        assert!(life.begin_close());
        assert!(!life.begin_close(), "once");
        assert!(!life.reads_frames());
        assert!(!life.closes_after_write(false, true), "a request of the peer still runs");
        assert!(life.closes_after_write(true, false), "this side's requests were failed");
        life.finish();
        assert!(life.is_closed());
        assert_eq!(life.begin_failing(), None);
    }

    #[test]
    fn when_the_peer_closes_its_replies_are_still_read_and_awaited() {
        let mut life = Lifecycle::default();
        life.peer_closes();
        assert!(life.begin_close());
        assert!(life.reads_frames());
        assert!(!life.closes_after_write(true, false), "a reply of the peer is still due");
        assert!(life.closes_after_write(true, true));
    }

    #[test]
    fn failing_says_whether_the_connection_was_open() {
        let mut life = Lifecycle::default();
        assert_eq!(life.begin_failing(), Some(true));
        assert_eq!(life.begin_failing(), Some(false));
        assert_eq!(life.phase(), Phase::Closing);
    }
}
