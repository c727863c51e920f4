//! How a session ends: a graceful close (this side's or the peer's: no new requests, what is
//! due is flushed, then the transport is shut), an abrupt one (a protocol error, a lost
//! transport, a silent peer: everything pending fails at once, a protocol error is explained
//! to the peer first), and the end of the transport. Nothing here performs I/O: the host shuts
//! the transport when [`Session::shutdown_due`] says so and stops when told.

use std::time::Duration;

use tracing::{debug, warn};

use super::{Host, Phase, Session};
use crate::{Error, Frame, ProtocolError};

impl<W> Session<W> {
    /// Graceful close: no new requests; replies already due and queued writes are flushed.
    /// `send_close`: this side closes, and tells the peer why.
    pub(crate) fn begin_close(
        &mut self,
        reason: Error,
        send_close: bool,
        grace: Duration,
        host: &mut impl Host<Work = W>,
    ) {
        if !self.life.begin_close() {
            return;
        }
        self.link.mark_closed(reason.clone());
        // When the peer closes too, it answers what it received before its Close: keep those;
        // fail the rest.
        self.fail_outbound(&reason, self.life.peer_closing());
        // Requests that wait for an event (a watch) would hold the close for its whole grace:
        // drop them; the peer sees them fail when the connection ends.
        for (seq, work) in self.inbound.take_long_polls() {
            debug!(parent: &self.span, seq, "closing: long poll dropped");
            host.abort(work);
        }
        if send_close {
            let text = match reason {
                Error::ConnectionClosed(t) => t,
                other => other.to_string(),
            };
            let _ = self.queue_frame(&Frame::Close { reason: text });
        }
        host.close_grace(grace);
    }

    /// The peer sent `Close`: it failed its own calls, so nobody waits for the replies of what
    /// runs here; its replies to this side's requests are still read until it hangs up.
    pub(super) fn peer_closed(&mut self, reason: String, host: &mut impl Host<Work = W>) {
        debug!(parent: &self.span, %reason, "peer is closing");
        self.life.peer_closes();
        for work in self.inbound.take_all() {
            host.abort(work);
        }
        let grace = self.config.close_grace;
        let reason = Error::ConnectionClosed(format!("the peer closed the connection: {reason}"));
        self.begin_close(reason, false, grace, host);
    }

    /// Abrupt close: fail everything now, stop reading and serving; a protocol error is
    /// explained to the peer in a `Close` frame, flushed before the connection stops.
    pub(crate) fn fail(&mut self, error: Error, host: &mut impl Host<Work = W>) {
        let Some(was_open) = self.life.begin_failing() else { return };
        match &error {
            Error::ConnectionClosed(_) => debug!(parent: &self.span, %error, "connection closed"),
            _ => warn!(parent: &self.span, %error, "closing connection"),
        }
        self.link.mark_closed(error.clone());
        self.fail_outbound(&error, false);
        for work in self.inbound.take_all() {
            host.abort(work);
        }
        if matches!(error, Error::Protocol(_)) {
            self.failed_on_peer_bytes = true;
        }
        // A protocol error is explained in a `Close` frame, except to an RPyC peer on a native
        // connection: it would read that frame's first bytes as the end of the frame it is
        // parsing out of this side's `Hello`, and report a decoding error of its own, where
        // the end of the stream tells it the truth (the server closed the connection).
        let explain = !matches!(error, Error::Protocol(ProtocolError::RpycPeerOnNativeWire));
        if was_open && explain && matches!(error, Error::Protocol(_)) {
            let _ = self.queue_frame(&Frame::Close { reason: error.to_string() });
            host.close_grace(self.config.close_grace);
        } else {
            self.life.finish();
            host.stop();
        }
    }

    /// Fails the requests queued behind the caps with `error`, and the awaited ones too unless
    /// `keep_awaited`; one-way calls among them are logged, since nobody waits for their
    /// result.
    fn fail_outbound(&mut self, error: &Error, keep_awaited: bool) {
        let one_way = if keep_awaited { self.outbound.fail_queued(error) } else { self.outbound.fail_all(error) };
        if one_way > 0 {
            warn!(parent: &self.span, one_way, %error, "one-way calls not sent: the connection closed before they were written");
        }
    }

    /// Writing failed: the connection is lost.
    pub(crate) fn write_failed(&mut self, error: &std::io::Error, host: &mut impl Host<Work = W>) {
        self.fail(Error::ConnectionClosed(format!("the connection was lost: write failed: {error}")), host);
    }

    /// The peer closed its side of the transport.
    pub(crate) fn read_end(&mut self, host: &mut impl Host<Work = W>) {
        match self.life.phase() {
            Phase::Open => self.fail(Error::ConnectionClosed("the peer closed the connection".into()), host),
            Phase::Closing => {
                // The peer is gone: nothing more can be flushed to it.
                self.life.finish();
                host.stop();
            }
            Phase::Closed => {}
        }
    }

    /// The close's grace period is over: if it is still closing, it stops now.
    pub(crate) fn grace_over(&mut self, host: &mut impl Host<Work = W>) {
        if self.life.phase() == Phase::Closing {
            debug!(parent: &self.span, "close grace period over; stopping");
            self.life.finish();
            host.stop();
        }
    }

    /// The host shut the transport down after the last write (see
    /// [`shutdown_due`](Session::shutdown_due)).
    pub(crate) fn shut_down(&mut self) {
        self.life.finish();
    }

    /// The connection stopped: what is still pending fails, the handles learn it, the tables
    /// are emptied.
    pub(crate) fn stopped(&mut self) {
        self.life.finish();
        // Usually the close already gave its reason, and nothing is left to fail: then no error
        // is built (each is a string or two on the heap, per connection).
        if !self.link.is_closed() {
            self.link.mark_closed(Error::ConnectionClosed("the connection stopped".into()));
        }
        if !self.outbound.is_idle() {
            let error = self.link.closed_error();
            self.fail_outbound(&error, false);
        }
        self.link.close_requests();
        self.exports.clear();
        self.imports.clear();
    }

    /// The connection went away without stopping (its runtime was stopped): the handles'
    /// waits still end.
    pub(crate) fn abandoned(&mut self) {
        if !self.link.is_stopped() {
            self.link.mark_closed(Error::ConnectionClosed("the connection's runtime stopped".into()));
            let error = self.link.closed_error();
            self.fail_outbound(&error, false);
            self.link.close_requests();
        }
    }
}
