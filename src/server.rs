//! Servers (RPyC's ThreadedServer / ThreadPoolServer / OneShotServer, the actor way): TCP
//! (IPv4 and IPv6) and Unix-socket listeners, worker arbiters, a connection cap, an
//! authenticator that runs before the first frame, graceful shutdown and a one-shot mode.
//!
//! The accept loop runs on the arbiter that starts the server. With `workers(n)`, accepted
//! sockets are handed to `n` worker arbiters round-robin as std sockets and re-registered on the
//! worker's runtime; with `workers(0)` (the default) connections run on the accepting arbiter,
//! started by the accept loop itself (a task per connection only for a TLS handshake).

use std::{
    any::Any,
    collections::HashMap,
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use actix_rt::{Arbiter, ArbiterHandle};
use tokio::{
    net::{TcpListener, TcpStream, ToSocketAddrs},
    sync::Notify,
};
use tracing::{debug, info, warn};

use crate::{config::Config, connection::ConnInfo, service::Service, tls::TlsServerConfig, Error, Peer};

/// Decides whether a new connection may proceed, before its first frame; what it returns
/// becomes the connection's credentials ([`Peer::credentials`]).
pub type Authenticator = Arc<dyn Fn(&ConnInfo) -> Result<Option<Arc<dyn Any + Send + Sync>>, String> + Send + Sync>;

/// Builds and starts a [`Server`].
#[must_use = "a builder does nothing until bound"]
pub struct ServerBuilder {
    service: Service,
    config: Config,
    workers: usize,
    max_connections: usize,
    authenticator: Option<Authenticator>,
    one_shot: bool,
    tls: Option<TlsServerConfig>,
    handshake_timeout: Duration,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBuilder")
            .field("workers", &self.workers)
            .field("max_connections", &self.max_connections)
            .field("authenticator", &self.authenticator.is_some())
            .field("one_shot", &self.one_shot)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// A running server. Cheap to clone; every clone controls the same server.
#[derive(Clone)]
pub struct Server {
    shared: Arc<ServerShared>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<server {} ({} connections)>", self.shared.address, self.connections())
    }
}

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

struct ServerShared {
    address: ListenAddr,
    peers: Mutex<HashMap<u64, Peer>>,
    /// Connections accepted and not yet ended (including ones still starting).
    active: AtomicUsize,
    accepted: AtomicU64,
    refused: AtomicU64,
    stop_accepting: Notify,
    accepting: AtomicBool,
    changed: Notify,
    workers: Mutex<Vec<Arbiter>>,
}

impl ServerShared {
    fn connection_ended(&self, id: Option<u64>) {
        if let Some(id) = id {
            self.peers.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        }
        self.active.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }
}

/// What every accepted connection needs to start.
struct Starter {
    service: Service,
    /// Shared by every connection (cloning a `Config` copies its policy's name set).
    config: Arc<Config>,
    authenticator: Option<Authenticator>,
    shared: Arc<ServerShared>,
    max_connections: usize,
    one_shot: bool,
    tls: Option<TlsServerConfig>,
    handshake_timeout: Duration,
}

enum Listener {
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
    /// Starts a connection accepted on this arbiter (after its TLS handshake, when the server
    /// has TLS) and tracks it until it ends. Runs as a task of its own for a TLS handshake or
    /// on a worker; otherwise the accept loop starts the connection itself, with no task
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
        self.shared.changed.notify_waiters();
        // The hook holds the server's shared state (which lists the peer) until the actor
        // stops; the cycle ends there.
        let shared = self.shared.clone();
        peer.when_stopped(Box::new(move || {
            debug!(conn = id, "connection ended");
            shared.connection_ended(Some(id));
        }));
    }

    async fn start(&self, socket: Accepted) -> Result<Peer, String> {
        let (tls, stream, addr) = match (&self.tls, socket) {
            (Some(tls), Accepted::Tcp(stream, addr)) => (tls, stream, addr),
            (_, plain) => return self.start_plain(plain),
        };
        let mut info = ConnInfo { label: format!("tls:{addr}"), peer_addr: Some(addr.to_string()), credentials: None };
        let (stream, certificates) = tokio::time::timeout(self.handshake_timeout, tls.accept(stream))
            .await
            .map_err(|_| format!("TLS handshake with {addr} timed out after {:?}", self.handshake_timeout))?
            .map_err(|e| e.to_string())?;
        if let Some(certificates) = certificates {
            info.credentials = Some(Arc::new(certificates));
        }
        crate::error::refuse_on_panic(|| {
            self.authenticate(&mut info)?;
            Ok(crate::transport::start_stream(stream, self.service.clone(), self.config.clone(), info))
        })
    }

    /// Starts a connection that needs no handshake before its first frame (TCP without TLS,
    /// Unix sockets): authenticate, then start the actor. User code runs here (the
    /// authenticator, the service's root factory), in the accept loop itself without workers:
    /// a panic in it refuses that connection and the loop goes on.
    fn start_plain(&self, socket: Accepted) -> Result<Peer, String> {
        crate::error::refuse_on_panic(|| self.start_plain_inner(socket))
    }

    fn start_plain_inner(&self, socket: Accepted) -> Result<Peer, String> {
        match socket {
            Accepted::Tcp(stream, addr) => {
                let text = addr.to_string();
                let mut info = ConnInfo { label: text.clone(), peer_addr: Some(text), credentials: None };
                self.authenticate(&mut info)?;
                crate::transport::start_tcp_with(stream, self.service.clone(), self.config.clone(), info)
                    .map_err(|e| e.to_string())
            }
            #[cfg(unix)]
            Accepted::Unix(stream) => {
                let mut info = ConnInfo::labelled(self.shared.address.to_string());
                self.authenticate(&mut info)?;
                Ok(crate::transport::start_unix(stream, self.service.clone(), self.config.clone(), info))
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

impl Server {
    /// Starts building a server for `service` (shared, or one instance per connection).
    pub fn builder(service: Service) -> ServerBuilder {
        ServerBuilder {
            service,
            config: Config::default(),
            workers: 0,
            max_connections: 10_000,
            authenticator: None,
            one_shot: false,
            tls: None,
            handshake_timeout: Duration::from_secs(10),
        }
    }

    /// Where the server listens.
    pub fn address(&self) -> &ListenAddr {
        &self.shared.address
    }

    /// The TCP address the server listens on (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.shared.address {
            ListenAddr::Tcp(a) => Some(*a),
            ListenAddr::Unix(_) => None,
        }
    }

    /// Connections accepted and not yet ended.
    pub fn connections(&self) -> usize {
        self.shared.active.load(Ordering::Acquire)
    }

    /// Connections accepted since the start.
    pub fn accepted(&self) -> u64 {
        self.shared.accepted.load(Ordering::Relaxed)
    }

    /// Connections refused (over `max_connections`, or by the authenticator).
    pub fn refused(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }

    /// Whether the server still accepts connections.
    pub fn is_accepting(&self) -> bool {
        self.shared.accepting.load(Ordering::Acquire)
    }

    /// The live connections.
    pub fn peers(&self) -> Vec<Peer> {
        self.shared.peers.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Resolves when the server accepts no more connections and every connection has ended
    /// (after [`shutdown`](Server::shutdown), or after a one-shot server's connection ended).
    pub async fn stopped(&self) {
        loop {
            let changed = self.shared.changed.notified();
            if !self.is_accepting() && self.connections() == 0 {
                return;
            }
            // A backstop against a missed wake-up; the notification is the normal path.
            let _ = tokio::time::timeout(Duration::from_millis(200), changed).await;
        }
    }

    /// Resolves when the number of live connections satisfies `pred`.
    pub async fn wait_connections(&self, pred: impl Fn(usize) -> bool) {
        loop {
            let changed = self.shared.changed.notified();
            if pred(self.connections()) {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), changed).await;
        }
    }

    /// Graceful shutdown: stop accepting; let requests already received finish for up to
    /// `grace` (their replies are sent); then close every connection and stop the workers.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.accepting.store(false, Ordering::Release);
        self.shared.stop_accepting.notify_waiters();
        self.shared.changed.notify_waiters();
        info!(address = %self.shared.address, connections = self.connections(), "server shutting down");
        let peers = self.peers();
        futures::future::join_all(peers.iter().map(|p| p.close_within("the server is shutting down", grace))).await;
        let _ = tokio::time::timeout(grace + Duration::from_secs(1), self.stopped()).await;
        for worker in self.shared.workers.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            worker.stop();
            let _ = worker.join();
        }
        if let ListenAddr::Unix(path) = &self.shared.address {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl ServerBuilder {
    /// The configuration of every connection.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Worker arbiters (threads) that run the connections; `0` (the default) runs them on the
    /// accepting arbiter. Needs an actix `System` when above 0.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Most connections at once (default 10,000); past it new connections are closed at once.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Runs `auth` on each new connection before its first frame; an `Err(reason)` refuses it.
    pub fn authenticator(
        mut self,
        auth: impl Fn(&ConnInfo) -> Result<Option<Arc<dyn Any + Send + Sync>>, String> + Send + Sync + 'static,
    ) -> Self {
        self.authenticator = Some(Arc::new(auth));
        self
    }

    /// Serves TCP connections over TLS. With client authentication configured, the client's
    /// certificate chain becomes the connection's credentials
    /// ([`PeerCertificates`](crate::tls::PeerCertificates)), and the authenticator (if any) sees it.
    pub fn tls(mut self, tls: TlsServerConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// How long a TLS handshake may take (default 10 s).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Serves exactly one connection, then stops (RPyC's OneShotServer).
    pub fn one_shot(mut self) -> Self {
        self.one_shot = true;
        self
    }

    /// Listens on a TCP address (`"127.0.0.1:0"`, `"[::1]:18812"`, …) and starts serving.
    ///
    /// The accept loop and the connections run on the caller's thread when it runs an actix
    /// arbiter (`#[actix_rt::main]`), otherwise on netref's default runtime thread (so it works
    /// from `#[tokio::main]`; the address is bound on the caller's tokio runtime).
    pub async fn bind_tcp(self, addr: impl ToSocketAddrs) -> Result<Server, Error> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_tcp(listener)
    }

    /// Serves on an already bound `tokio::net::TcpListener` (off an actix thread it moves to
    /// netref's default runtime thread, as with [`bind_tcp`](ServerBuilder::bind_tcp)).
    pub fn serve_tcp(self, listener: TcpListener) -> Result<Server, Error> {
        if !crate::hosting::on_actor_thread() {
            let listener = listener.into_std()?;
            return crate::hosting::start_actors(move || self.serve_tcp_here(TcpListener::from_std(listener)?))?;
        }
        self.serve_tcp_here(listener)
    }

    fn serve_tcp_here(self, listener: TcpListener) -> Result<Server, Error> {
        let address = ListenAddr::Tcp(listener.local_addr()?);
        let (server, starter, workers) = self.prepare(address);
        let shared = server.shared.clone();
        actix_rt::spawn(accept_loop(shared, starter, workers, Listener::Tcp(listener)));
        Ok(server)
    }

    /// Listens on a Unix socket at `path` and starts serving, where
    /// [`bind_tcp`](ServerBuilder::bind_tcp) would. The socket file is removed on shutdown.
    #[cfg(unix)]
    pub async fn bind_unix(self, path: impl AsRef<Path>) -> Result<Server, Error> {
        let path = path.as_ref().to_path_buf();
        crate::hosting::run_on_actor_thread(move || async move { self.bind_unix_here(path) }).await
    }

    #[cfg(unix)]
    fn bind_unix_here(self, path: PathBuf) -> Result<Server, Error> {
        let listener = tokio::net::UnixListener::bind(&path)
            .map_err(|e| Error::Io(format!("cannot listen on {}: {e}", path.display())))?;
        let (server, starter, workers) = self.prepare(ListenAddr::Unix(path));
        let shared = server.shared.clone();
        actix_rt::spawn(accept_loop(shared, starter, workers, Listener::Unix(listener)));
        Ok(server)
    }

    fn prepare(self, address: ListenAddr) -> (Server, Arc<Starter>, Vec<ArbiterHandle>) {
        let workers: Vec<Arbiter> = (0..self.workers).map(|_| Arbiter::new()).collect();
        let handles = workers.iter().map(|w| w.handle()).collect();
        let shared = Arc::new(ServerShared {
            address,
            peers: Mutex::new(HashMap::new()),
            active: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            stop_accepting: Notify::new(),
            accepting: AtomicBool::new(true),
            changed: Notify::new(),
            workers: Mutex::new(workers),
        });
        let starter = Arc::new(Starter {
            service: self.service,
            config: Arc::new(self.config),
            authenticator: self.authenticator,
            shared: shared.clone(),
            max_connections: self.max_connections,
            one_shot: self.one_shot,
            tls: self.tls,
            handshake_timeout: self.handshake_timeout,
        });
        (Server { shared }, starter, handles)
    }
}

/// Accepts until told to stop (or after one connection in one-shot mode), handing each socket
/// to the next worker, or starting it here without workers.
async fn accept_loop(
    shared: Arc<ServerShared>,
    starter: Arc<Starter>,
    workers: Vec<ArbiterHandle>,
    listener: Listener,
) {
    info!(address = %shared.address, workers = workers.len(), "server listening");
    let mut next_worker = 0usize;
    while shared.accepting.load(Ordering::Acquire) {
        let stop = shared.stop_accepting.notified();
        let socket = tokio::select! {
            _ = stop => break,
            r = listener.accept() => r,
        };
        let socket = match socket {
            Ok(socket) => socket,
            Err(e) => {
                // A connection reset before accept, or out of descriptors: keep serving (after
                // a pause for the latter, unless told to stop meanwhile).
                let pause = crate::transport::accept_pause(&e);
                if !pause.is_zero() {
                    let stop = shared.stop_accepting.notified();
                    tokio::select! {
                        _ = stop => break,
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
        if !workers.is_empty() {
            let worker = &workers[next_worker % workers.len()];
            next_worker = next_worker.wrapping_add(1);
            match socket.detach() {
                Ok(socket) => {
                    if !worker.spawn(starter.clone().run_detached(socket)) {
                        warn!("a worker arbiter is gone; connection dropped");
                        starter.shared.connection_ended(None);
                    }
                }
                Err(e) => starter.track(Err(format!("cannot move the socket to a worker: {e}"))),
            }
        } else if starter.tls.is_some() {
            // The TLS handshake takes round trips: not in the accept loop.
            actix_rt::spawn(starter.clone().run(socket));
        } else {
            // Nothing to wait for before the first frame: start the actor here, with no task
            // of its own for the connection.
            starter.track(starter.start_plain(socket));
        }
        if starter.one_shot {
            break;
        }
    }
    shared.accepting.store(false, Ordering::Release);
    shared.changed.notify_waiters();
    debug!(address = %shared.address, "accept loop ended");
}
