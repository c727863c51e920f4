//! [`Peer`]: a connection as its user holds it — its root, lookups, ping, close, readiness
//! and identity — over the state it shares with the connection ([`ConnShared`]). Like the rest
//! of `link`, it never names the actor or the session.

use std::{any::Any, fmt, sync::Arc, time::Duration};

use super::{ConnInfo, ConnShared, Control, StopHook};
use crate::{async_result::AsyncResult, config::Config, Error, Handle, NetRef, Value};

/// A connection to a peer, as its user holds it: `Send + Sync + Clone`, usable from any thread.
///
/// ```no_run
/// # async fn demo(peer: netref::Peer) -> Result<(), netref::Error> {
/// let calc = peer.root().await?;
/// let sum: i64 = calc.call_method("add", (1, 2)).await?;
/// peer.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Peer {
    pub(crate) shared: Arc<ConnShared>,
}

impl fmt::Debug for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<peer conn{} {}{}>",
            self.shared.id,
            self.shared.info.label,
            if self.is_closed() { " closed" } else { "" }
        )
    }
}

impl Peer {
    pub(crate) fn from_shared(shared: Arc<ConnShared>) -> Self {
        Peer { shared }
    }

    /// The connection's id in this process (`conn3` in netref `Debug` output).
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// Runs `hook` once the connection's actor has stopped (at once if it has).
    pub(crate) fn when_stopped(&self, hook: StopHook) {
        self.shared.when_stopped(hook);
    }

    /// What is known about the other end (address, label, credentials).
    pub fn info(&self) -> &ConnInfo {
        &self.shared.info
    }

    /// The credentials the server's authenticator established for this connection, if they
    /// are of type `T`.
    pub fn credentials<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.shared.info.credentials.clone()?.downcast::<T>().ok()
    }

    /// The connection's settings.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The peer's root object (HANDLE_GETROOT). Answered locally once the peer's `Hello`
    /// has announced its root; before that, with [`Config::early_requests`], it is a root
    /// alias ([`NetRef::is_root_alias`]) made on the spot, so a first call can follow at once.
    pub fn root(&self) -> AsyncResult<NetRef> {
        if self.shared.config.early_requests && !self.shared.is_greeted() && !self.is_closed() {
            return AsyncResult::settled(Ok(Value::Ref(self.shared.root_alias())));
        }
        self.shared.submit(Handle::GetRoot, Value::Tuple(Vec::new()))
    }

    /// The object the peer exports under `name` (HANDLE_GETROOT with a name); a
    /// `builtins.LookupError` remote error names the exports when there is none.
    pub fn lookup(&self, name: &str) -> AsyncResult<NetRef> {
        self.shared.submit(Handle::GetRoot, Value::Tuple(vec![Value::Str(name.to_owned())]))
    }

    /// Sends `data` and gets it back (HANDLE_PING).
    pub fn ping(&self, data: impl Into<Value>) -> AsyncResult<Value> {
        self.shared.submit(Handle::Ping, Value::Tuple(vec![data.into()]))
    }

    /// Whether the connection is closed.
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
    }

    /// One-way calls (`NetRef::notify_method`, `ActorRef::do_send`, and their `_when_ready`
    /// forms) this connection accepted and never wrote into its write buffer: it closed before
    /// their turn (or a frame failed to encode, which is also logged). An accepted one-way call
    /// reports no failure to its caller; this is where that loss is counted. Complete once
    /// [`closed`](Peer::closed) has resolved. Calls written but never read by the peer (in the
    /// write buffer or the kernel when the connection died) are not counted: only the peer can
    /// tell those.
    pub fn unsent_one_way(&self) -> u64 {
        self.shared.unsent_one_way()
    }

    /// Why the connection closed (`None` while it is open).
    pub fn close_reason(&self) -> Option<Error> {
        self.is_closed().then(|| self.shared.closed_error())
    }

    /// Closes the connection gracefully: replies already due are flushed, pending calls fail
    /// with [`Error::ConnectionClosed`], the peer sees a clean close. Resolves once closed.
    pub async fn close(&self) {
        self.close_within("closed by the local side", self.shared.config.close_grace).await;
    }

    /// Closes gracefully like [`close`](Peer::close), letting requests the peer already sent
    /// finish for up to `grace` before the connection is dropped.
    pub async fn close_within(&self, reason: &str, grace: Duration) {
        if !self.is_closed() {
            self.shared.control(Control::Close { reason: reason.to_owned(), grace });
        }
        self.closed().await;
    }

    /// Resolves once the handshake is done (the peer's `Hello` arrived with our protocol
    /// version), or fails with the reason the connection closed first (e.g. a version
    /// mismatch). The `connect_*` functions wait for this before they return.
    pub async fn ready(&self) -> Result<(), Error> {
        loop {
            let notified = self.shared.closed_notify.notified();
            if self.shared.is_greeted() {
                return Ok(());
            }
            if self.is_closed() || self.shared.is_stopped() {
                return Err(self.shared.closed_error());
            }
            notified.await;
        }
    }

    /// Starts a graceful close without waiting for it (for `Drop` impls and sync code);
    /// [`closed`](Peer::closed) tells when it is done.
    pub fn start_close(&self, reason: &str) {
        if !self.is_closed() {
            self.shared.control(Control::Close { reason: reason.to_owned(), grace: self.shared.config.close_grace });
        }
    }

    /// Resolves when the connection has ended, for whatever reason: its actor stopped, replies
    /// due were flushed (or the grace period ran out), and the transport is closed.
    pub async fn closed(&self) {
        loop {
            let notified = self.shared.closed_notify.notified();
            if self.shared.is_stopped() {
                return;
            }
            // The actor may be gone without having run `stopped` (its arbiter was stopped).
            if !self.shared.actor.connected() {
                self.shared.mark_closed(Error::ConnectionClosed("the connection's actor stopped".into()));
                self.shared.mark_stopped();
                return;
            }
            notified.await;
        }
    }
}
