//! The one accept loop. Every listener netref serves — a [`Server`](super::Server),
//! [`serve_tcp`](crate::serve_tcp), [`Runtime::serve_tcp`](crate::Runtime::serve_tcp)
//! — accepts through [`accept_loop`], so a fix to accepting lands in one place.
//!
//! The loop stops when told to (a server's shutdown) or after its accept limit (one-shot); it
//! caps the connections alive at once; it hands sockets to worker arbiters round-robin, or
//! starts them itself; it leaves a TLS handshake to a task of its own; a failed accept pauses
//! it ([`accept_pause`]) instead of ending it; and a panic in user code run while starting a
//! connection (the authenticator, the service's root factory) refuses that connection only.
//!
//! It must never end on a failed accept or on a panic in user code, and never wait on a peer
//! (a handshake, a first frame) itself.

use std::{net::SocketAddr, sync::atomic::Ordering, sync::Arc, time::Duration};

use actix_rt::ArbiterHandle;
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

use super::{Authenticator, ServerShared};
#[cfg(feature = "tls")]
use crate::tls::TlsServerConfig;
use crate::{config::Config, error::refuse_on_panic, link::ConnInfo, service::Service, transport, Peer};

/// Called with every connection the loop starts (a runtime lists them, to close them when it
/// shuts down).
pub(crate) type StartedHook = Box<dyn Fn(&Peer) + Send + Sync>;

/// What every accepted connection needs to start.
pub(super) struct Starter {
    pub(super) service: Service,
    /// Shared by every connection (cloning a `Config` copies its policy's name set).
    pub(super) config: Arc<Config>,
    pub(super) authenticator: Option<Authenticator>,
    pub(super) shared: Arc<ServerShared>,
    /// Most connections alive at once; past it a new one is closed at once.
    pub(super) max_connections: usize,
    /// Connections to start before the loop ends (`Some(1)`: one-shot); `None`: no limit.
    pub(super) accept_limit: Option<usize>,
    pub(super) on_started: Option<StartedHook>,
    #[cfg(feature = "tls")]
    pub(super) tls: Option<TlsServerConfig>,
    #[cfg(feature = "tls")]
    pub(super) handshake_timeout: Duration,
}

pub(super) enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

impl Listener {
    /// Accepts one connection, registered on this arbiter's runtime.
    async fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => {
                let (stream, addr) = l.accept().await?;
                Ok(Accepted::Tcp(stream, addr))
            }
            #[cfg(unix)]
            Listener::Unix(l) => {
                let (stream, _) = l.accept().await?;
                Ok(Accepted::Unix(stream))
            }
        }
    }
}

/// An accepted socket, registered on the runtime of the arbiter it runs on.
enum Accepted {
    Tcp(TcpStream, SocketAddr),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

/// An accepted socket taken off the accepting arbiter's runtime, to move to a worker's.
enum Detached {
    Tcp(std::net::TcpStream, SocketAddr),
    #[cfg(unix)]
    Unix(std::os::unix::net::UnixStream),
}

impl Accepted {
    fn detach(self) -> std::io::Result<Detached> {
        Ok(match self {
            Accepted::Tcp(stream, addr) => Detached::Tcp(stream.into_std()?, addr),
            #[cfg(unix)]
            Accepted::Unix(stream) => Detached::Unix(stream.into_std()?),
        })
    }
}

impl Detached {
    /// Registers the socket on the runtime of the arbiter this runs on.
    fn attach(self) -> Result<Accepted, String> {
        let failed = |e: std::io::Error| format!("cannot register the socket: {e}");
        Ok(match self {
            Detached::Tcp(std, addr) => Accepted::Tcp(TcpStream::from_std(std).map_err(failed)?, addr),
            #[cfg(unix)]
            Detached::Unix(std) => Accepted::Unix(tokio::net::UnixStream::from_std(std).map_err(failed)?),
        })
    }
}

impl Starter {
    /// Whether a connection needs a handshake before its first frame, which takes round trips
    /// and so must not run in the accept loop.
    fn has_handshake(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        return false;
    }

    /// Starts a connection accepted on this arbiter (after its handshake, if any) and tracks
    /// it until it ends. Runs as a task of its own for a handshake or on a worker; otherwise
    /// the accept loop starts the connection itself, with no task
    /// ([`start_plain`](Starter::start_plain) and [`track`](Starter::track)).
    async fn run(self: Arc<Self>, socket: Accepted) {
        let started = self.start(socket).await;
        self.track(started);
    }

    /// [`run`](Starter::run) on a worker arbiter, for a socket the accept loop detached.
    async fn run_detached(self: Arc<Self>, socket: Detached) {
        match socket.attach() {
            Ok(socket) => self.run(socket).await,
            Err(reason) => self.track(Err(reason)),
        }
    }

    /// Counts a refused connection, or lists a started one until its actor stops.
    fn track(&self, started: Result<Peer, String>) {
        let peer = match started {
            Ok(peer) => peer,
            Err(reason) => {
                warn!(%reason, "connection refused");
                self.shared.refused.fetch_add(1, Ordering::Relaxed);
                return self.shared.connection_ended(None);
            }
        };
        let id = peer.id();
        self.shared.peers.lock().unwrap_or_else(|p| p.into_inner()).insert(id, peer.clone());
        if let Some(hook) = &self.on_started {
            hook(&peer);
        }
        self.shared.changed.notify_waiters();
        // The hook holds the server's shared state (which lists the peer) until the actor
        // stops; the cycle ends there.
        let shared = self.shared.clone();
        peer.when_stopped(Box::new(move || {
            debug!(conn = id, "connection ended");
            shared.connection_ended(Some(id));
        }));
    }

    #[cfg(feature = "tls")]
    async fn start(&self, socket: Accepted) -> Result<Peer, String> {
        let (tls, stream, addr) = match (&self.tls, socket) {
            (Some(tls), Accepted::Tcp(stream, addr)) => (tls, stream, addr),
            (_, plain) => return self.start_plain(plain),
        };
        transport::apply_tcp_options(&stream, &self.config).map_err(|e| e.to_string())?;
        let mut info = ConnInfo { label: format!("tls:{addr}"), peer_addr: Some(addr.to_string()), credentials: None };
        let (stream, certificates) = tokio::time::timeout(self.handshake_timeout, tls.accept(stream))
            .await
            .map_err(|_| format!("TLS handshake with {addr} timed out after {:?}", self.handshake_timeout))?
            .map_err(|e| e.to_string())?;
        if let Some(certificates) = certificates {
            info.credentials = Some(Arc::new(certificates));
        }
        refuse_on_panic(|| {
            self.authenticate(&mut info)?;
            Ok(transport::start_stream(stream, self.service.clone(), self.config.clone(), info))
        })
    }

    #[cfg(not(feature = "tls"))]
    async fn start(&self, socket: Accepted) -> Result<Peer, String> {
        self.start_plain(socket)
    }

    /// Starts a connection that needs no handshake before its first frame (TCP without TLS,
    /// Unix sockets): authenticate, then start the actor. User code runs here (the
    /// authenticator, the service's root factory), in the accept loop itself without workers:
    /// a panic in it refuses that connection and the loop goes on.
    fn start_plain(&self, socket: Accepted) -> Result<Peer, String> {
        refuse_on_panic(|| self.start_plain_inner(socket))
    }

    fn start_plain_inner(&self, socket: Accepted) -> Result<Peer, String> {
        match socket {
            Accepted::Tcp(stream, addr) => {
                let text = transport::addr_text(&addr);
                let mut info = ConnInfo { label: text.clone(), peer_addr: Some(text), credentials: None };
                self.authenticate(&mut info)?;
                transport::start_tcp_with(stream, self.service.clone(), self.config.clone(), info)
                    .map_err(|e| e.to_string())
            }
            #[cfg(unix)]
            Accepted::Unix(stream) => {
                let mut info = ConnInfo::labelled(self.shared.address.to_string());
                self.authenticate(&mut info)?;
                Ok(transport::start_unix(stream, self.service.clone(), self.config.clone(), info))
            }
        }
    }

    fn authenticate(&self, info: &mut ConnInfo) -> Result<(), String> {
        if let Some(auth) = &self.authenticator {
            let credentials =
                auth(info).map_err(|reason| format!("authentication failed for {}: {reason}", info.label))?;
            if credentials.is_some() {
                info.credentials = credentials;
            }
        }
        Ok(())
    }
}

/// Accepts until told to stop or until the accept limit is reached, handing each socket to the
/// next worker, or starting it here without workers. Runs on the arbiter that registered
/// `listener`.
pub(super) async fn accept_loop(starter: Arc<Starter>, workers: Vec<ArbiterHandle>, listener: Listener) {
    let shared = starter.shared.clone();
    info!(address = %shared.address, workers = workers.len(), "server listening");
    let mut next_worker = 0usize;
    let mut started = 0usize;
    // One registration for the whole loop, not one per accepted socket; polled first, so a
    // stop wins over a socket ready at the same time.
    let mut stop = std::pin::pin!(shared.stop_accepting.notified());
    while shared.accepting.load(Ordering::Acquire) && starter.accept_limit.is_none_or(|limit| started < limit) {
        let socket = tokio::select! {
            biased;
            _ = &mut stop => break,
            r = listener.accept() => r,
        };
        let socket = match socket {
            Ok(socket) => socket,
            Err(e) => {
                // A connection reset before accept, or out of descriptors: keep serving (after
                // a pause for the latter, unless told to stop meanwhile).
                let pause = accept_pause(&e);
                if !pause.is_zero() {
                    tokio::select! {
                        biased;
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
                continue;
            }
        };
        if !shared.accepting.load(Ordering::Acquire) {
            break;
        }
        if shared.active.load(Ordering::Acquire) >= starter.max_connections {
            shared.refused.fetch_add(1, Ordering::Relaxed);
            warn!(max = starter.max_connections, "max_connections reached; closing a new connection");
            continue;
        }
        shared.active.fetch_add(1, Ordering::AcqRel);
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        started += 1;
        if !workers.is_empty() {
            let worker = &workers[next_worker % workers.len()];
            next_worker = next_worker.wrapping_add(1);
            match socket.detach() {
                Ok(socket) => {
                    if !worker.spawn(starter.clone().run_detached(socket)) {
                        warn!("a worker arbiter is gone; connection dropped");
                        shared.connection_ended(None);
                    }
                }
                Err(e) => starter.track(Err(format!("cannot move the socket to a worker: {e}"))),
            }
        } else if starter.has_handshake() {
            actix_rt::spawn(starter.clone().run(socket));
        } else {
            // Nothing to wait for before the first frame: start the actor here, with no task
            // of its own for the connection.
            starter.track(starter.start_plain(socket));
        }
    }
    shared.accepting.store(false, Ordering::Release);
    shared.changed.notify_waiters();
    debug!(address = %shared.address, "accept loop ended");
}

/// Logs a failed accept and says how long to wait before the next: nothing when the failure
/// concerned one incoming connection only (reset, aborted or refused before it was accepted),
/// [`ACCEPT_BACKOFF`](transport::ACCEPT_BACKOFF) otherwise (out of file descriptors, out of
/// memory: such a failure repeats until something is freed).
fn accept_pause(e: &std::io::Error) -> Duration {
    use std::io::ErrorKind::*;
    if matches!(e.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock) {
        debug!(error = %e, "accept failed for one connection");
        Duration::ZERO
    } else {
        let pause = transport::ACCEPT_BACKOFF;
        warn!(error = %e, pause = ?pause, "accept failed; pausing before the next attempt");
        pause
    }
}
