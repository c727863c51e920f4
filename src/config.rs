//! Per-connection settings: limits, timeouts and the access policy. Every limit has a default
//! and a setting; the setters keep each value within what a connection can work with, so a
//! connection takes its `Config` as it is.

use std::time::Duration;

use crate::{
    object::AccessPolicy,
    protocol::{DecodeLimits, DEFAULT_MAX_FRAME_LEN, MIN_MAX_FRAME_LEN},
};

/// Settings of one connection, built with chained setters:
/// `Config::default().request_timeout(Some(Duration::from_secs(5))).max_in_flight(64)`.
/// `Config::default()` is safe for untrusted peers; `Debug` shows every value.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) max_frame_len: usize,
    pub(crate) decode_limits: DecodeLimits,
    pub(crate) max_in_flight: usize,
    pub(crate) max_queued_requests: usize,
    pub(crate) max_queued_notifications: usize,
    pub(crate) max_concurrent_requests: usize,
    pub(crate) max_write_buffer: usize,
    pub(crate) max_exports: usize,
    pub(crate) policy: AccessPolicy,
    pub(crate) close_grace: Duration,
    pub(crate) hello_timeout: Duration,
    pub(crate) peer_timeout: Option<Duration>,
    pub(crate) early_requests: bool,
    pub(crate) wire: Wire,
}

/// The wire protocol a connection speaks. Neither side announces it (RPyC has no handshake):
/// the listener or the client factory chooses it, and both ends must agree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wire {
    /// netref's own wire (versioned `Hello` handshake, postcard frames).
    #[default]
    Native,
    /// RPyC 6's wire, as stock Python rpyc 6.0.x speaks it: channel framing, brine, RPyC's
    /// boxing and vinegar exceptions; no handshake. Pickling is refused, nothing received is
    /// ever unpickled or executed.
    Rpyc,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            request_timeout: Some(Duration::from_secs(30)),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            decode_limits: DecodeLimits::default(),
            max_in_flight: 1024,
            max_queued_requests: 65_536,
            max_queued_notifications: 8_192,
            max_concurrent_requests: 1024,
            max_write_buffer: 8 * 1024 * 1024,
            max_exports: 1_000_000,
            policy: AccessPolicy::default(),
            close_grace: Duration::from_secs(5),
            hello_timeout: Duration::from_secs(10),
            peer_timeout: Some(Duration::from_secs(15)),
            early_requests: false,
            wire: Wire::Native,
        }
    }
}

impl Config {
    /// The wire protocol (default [`Wire::Native`]); see also `ServerBuilder::rpyc` and
    /// `Connect::rpyc`.
    pub fn wire(mut self, wire: Wire) -> Self {
        self.wire = wire;
        self
    }

    /// How long a request waits for its reply by default (RPyC's `sync_request_timeout`);
    /// `None` waits without limit. Default 30 s.
    pub fn request_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The largest frame body sent or accepted. Default 16 MiB; at least
    /// [`MIN_MAX_FRAME_LEN`](crate::dev::MIN_MAX_FRAME_LEN) (1 KiB; less is raised to it). A
    /// peer announcing less in its `Hello` is refused.
    pub fn max_frame_len(mut self, bytes: usize) -> Self {
        self.max_frame_len = bytes.max(MIN_MAX_FRAME_LEN);
        self
    }

    /// Outbound requests awaiting a reply at once (at least 1); further requests queue
    /// locally. Default 1024.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Outbound requests queued locally behind `max_in_flight`; past it a request fails with
    /// [`Error::LimitReached`](crate::Error::LimitReached). Default 65,536.
    pub fn max_queued_requests(mut self, n: usize) -> Self {
        self.max_queued_requests = n;
        self
    }

    /// One-way calls ([`NetRef::notify_method`](crate::NetRef::notify_method),
    /// [`ActorRef::do_send`](crate::ActorRef::do_send)) handed to the connection and not yet
    /// written to its write buffer (which holds up to `max_write_buffer` bytes) at once. Past
    /// it the connection is full: a one-way call fails at once with
    /// [`Error::Backpressure`](crate::Error::Backpressure), and its `_when_ready` form waits
    /// for room. Nothing is ever dropped once accepted. Default 8,192 (at least 1).
    pub fn max_queued_notifications(mut self, n: usize) -> Self {
        self.max_queued_notifications = n.max(1);
        self
    }

    /// Inbound requests served at once (at least 1); past it the connection stops reading
    /// until one finishes (the peer's writes back up). Default 1024.
    pub fn max_concurrent_requests(mut self, n: usize) -> Self {
        self.max_concurrent_requests = n.max(1);
        self
    }

    /// Bytes queued for writing before the connection stops taking new requests and stops
    /// reading. Default 8 MiB.
    pub fn max_write_buffer(mut self, bytes: usize) -> Self {
        self.max_write_buffer = bytes;
        self
    }

    /// Objects exported to the peer at once. Default 1,000,000.
    pub fn max_exports(mut self, n: usize) -> Self {
        self.max_exports = n;
        self
    }

    /// How long a graceful close lets requests already received finish. Default 5 s.
    pub fn close_grace(mut self, grace: Duration) -> Self {
        self.close_grace = grace;
        self
    }

    /// How long to wait for the peer's `Hello` before closing. Default 10 s.
    pub fn hello_timeout(mut self, timeout: Duration) -> Self {
        self.hello_timeout = timeout;
        self
    }

    /// How long the peer may stay silent before it is declared lost: its pending calls fail
    /// with [`Error::ConnectionClosed`](crate::Error::ConnectionClosed) ("peer lost"), its
    /// exports are freed and the service's `on_disconnect` runs. Default 15 s; `None` never
    /// declares a peer lost (only the transport's end does).
    ///
    /// Every third of it, a side that has heard nothing sends a PING request (the peer answers
    /// it whatever its own settings), and a side that has sent nothing sends a one-way PING:
    /// on an idle connection at most one small frame per interval each way. These bypass the
    /// in-flight caps, and a side whose reading is stopped for back-pressure does not count
    /// that time as silence, so a busy peer is not declared lost. A peer is declared lost after
    /// at most `peer_timeout` of silence, and not before two thirds of it.
    ///
    /// TCP sockets (on Linux and Android) also get TCP keepalive (probes after a third of it,
    /// every third, two of them; whole seconds, at least one) and `TCP_USER_TIMEOUT` equal to
    /// it, so the kernel ends a connection to a vanished host no later than netref would; with
    /// `None`, keepalive after 60 s, every 10 s, 6 probes, and a 120 s `TCP_USER_TIMEOUT`.
    pub fn peer_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.peer_timeout = timeout;
        self
    }

    /// The former heartbeat setting: a peer silent for `interval × misses` is declared lost.
    #[deprecated(note = "use `peer_timeout(Some(interval * misses))`: liveness is on by default (15 s)")]
    pub fn heartbeat(self, interval: Duration, misses: u32) -> Self {
        self.peer_timeout(Some(interval.saturating_mul(misses.max(1))))
    }

    /// Early requests: connecting returns as soon as the transport is up, without waiting for
    /// the peer's `Hello`, and [`Peer::root`](crate::Peer::root) answers at once with a *root
    /// alias* (a netref that names the peer's root without knowing its identity yet). Requests
    /// made meanwhile go out right behind this side's `Hello`, so a connection's first call
    /// costs one round trip in all. The price: a peer speaking another protocol version, or
    /// none, is found out by the first request failing (with the version error, or after
    /// `hello_timeout`) instead of by the connect. Default `false`.
    pub fn early_requests(mut self, early: bool) -> Self {
        self.early_requests = early;
        self
    }

    /// Decode bounds: nesting depth and values per frame (default 64 and 1,048,576). A frame
    /// past them closes the connection it came on. This side keeps what it sends within the
    /// same bounds (the peer does not announce its own): a call whose arguments, or a reply
    /// whose value, would pass them fails alone (`TooDeep`, `TooManyValues`; a reply reaches
    /// its caller as a remote error) and nothing is sent.
    pub fn decode_limits(mut self, limits: DecodeLimits) -> Self {
        self.decode_limits = limits;
        self
    }

    /// What the peer may reach on this side's objects. Default [`AccessPolicy::default`]
    /// (RPyC's defaults).
    pub fn policy(mut self, policy: AccessPolicy) -> Self {
        self.policy = policy;
        self
    }
}
