//! Servers (RPyC's ThreadedServer / ThreadPoolServer / OneShotServer, the actor way): TCP
//! (IPv4 and IPv6) and Unix-socket listeners, worker arbiters, a connection cap, an
//! authenticator that runs before the first frame, graceful shutdown and a one-shot mode.
//!
//! The accept loop (module `accept`, the one every netref listener runs) runs on the arbiter
//! that starts the server. With `workers(n)`, accepted sockets are handed to `n` worker arbiters
//! round-robin as std sockets and re-registered on the worker's runtime; with `workers(0)` (the
//! default) connections run on the accepting arbiter, started by the accept loop itself (a task
//! per connection only for a TLS handshake). [`serve_tcp`] and [`Runtime::serve_tcp`] are
//! thin ways into the same loop.
//!
//! Connections are started through `transport`, which must never name this module (nor must
//! `runtime`): a listener is built on the transports, not the other way round.

mod accept;

use std::{
    any::Any,
    fmt,
    future::Future,
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
    net::{TcpListener, ToSocketAddrs},
    sync::Notify,
};
use tracing::info;

pub(crate) use self::accept::StartedHook;
use self::accept::{accept_loop, Listener, Starter};
#[cfg(feature = "tls")]
use crate::tls::TlsServerConfig;
use crate::{
    config::{Config, Wire},
    link::ConnInfo,
    runtime::Runtime,
    service::Service,
    Error, Peer,
};

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
    accept_limit: Option<usize>,
    on_started: Option<StartedHook>,
    wire: Option<Wire>,
    #[cfg(feature = "tls")]
    tls: Option<TlsServerConfig>,
    #[cfg(feature = "tls")]
    handshake_timeout: Duration,
}

impl fmt::Debug for ServerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("ServerBuilder");
        f.field("workers", &self.workers)
            .field("max_connections", &self.max_connections)
            .field("authenticator", &self.authenticator.is_some())
            .field("one_shot", &(self.accept_limit == Some(1)));
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls.is_some());
        f.finish_non_exhaustive()
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
    /// Live connections by id (ids are this process's, so the table needs no keyed hash).
    peers: Mutex<crate::hash::SeqMap<Peer>>,
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

impl Server {
    /// Starts building a server for `service` (shared, or one instance per connection).
    pub fn builder(service: Service) -> ServerBuilder {
        ServerBuilder {
            service,
            config: Config::default(),
            workers: 0,
            max_connections: 10_000,
            authenticator: None,
            accept_limit: None,
            on_started: None,
            wire: None,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "tls")]
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

    /// Speaks RPyC 6's wire instead of netref's own, so stock Python `rpyc.connect(host, port)`
    /// clients (rpyc 6.0.x) reach this listener's service; a netref client must then connect
    /// with [`Connect::rpyc`](crate::Connect::rpyc). RPyC has no handshake and no
    /// authentication of its own: bind loopback, or add TLS (`tls`; stock clients then use
    /// `rpyc.ssl_connect(host, port, ca_certs=...)`) and an
    /// [`authenticator`](ServerBuilder::authenticator), which apply as on a native listener.
    /// Overrides the wire of [`config`](ServerBuilder::config) (see [`Wire`]).
    pub fn rpyc(mut self) -> Self {
        self.wire = Some(Wire::Rpyc);
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
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsServerConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// How long a TLS handshake may take (default 10 s).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Serves exactly one connection, then stops (RPyC's OneShotServer).
    pub fn one_shot(mut self) -> Self {
        self.accept_limit = Some(1);
        self
    }

    /// Stops accepting after `limit` connections were started (`None`: never), as
    /// [`serve_tcp`]'s `max_connections` does.
    pub(crate) fn accept_limit(mut self, limit: Option<usize>) -> Self {
        self.accept_limit = limit;
        self
    }

    /// Calls `hook` with every connection the server starts.
    pub(crate) fn on_started(mut self, hook: StartedHook) -> Self {
        self.on_started = Some(hook);
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
        let (server, accepting) = self.accept_tcp_here(listener)?;
        actix_rt::spawn(accepting);
        Ok(server)
    }

    /// The server on `listener` and its accept loop, for the caller to spawn or await on this
    /// (actix) thread.
    pub(crate) fn accept_tcp_here(
        self,
        listener: TcpListener,
    ) -> Result<(Server, impl std::future::Future<Output = ()>), Error> {
        let address = ListenAddr::Tcp(listener.local_addr()?);
        let (server, starter, workers) = self.prepare(address);
        Ok((server, accept_loop(starter, workers, Listener::Tcp(listener))))
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
        actix_rt::spawn(accept_loop(starter, workers, Listener::Unix(listener)));
        Ok(server)
    }

    fn prepare(self, address: ListenAddr) -> (Server, Arc<Starter>, Vec<ArbiterHandle>) {
        let workers: Vec<Arbiter> = (0..self.workers).map(|_| Arbiter::new()).collect();
        let handles = workers.iter().map(|w| w.handle()).collect();
        let shared = Arc::new(ServerShared {
            address,
            peers: Mutex::new(crate::hash::SeqMap::default()),
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
            config: Arc::new(match self.wire {
                Some(wire) => self.config.wire(wire),
                None => self.config,
            }),
            authenticator: self.authenticator,
            shared: shared.clone(),
            max_connections: self.max_connections,
            accept_limit: self.accept_limit,
            on_started: self.on_started,
            #[cfg(feature = "tls")]
            tls: self.tls,
            #[cfg(feature = "tls")]
            handshake_timeout: self.handshake_timeout,
        });
        (Server { shared }, starter, handles)
    }
}

/// Accepts connections on `listener` (a `tokio::net::TcpListener`) until `max_connections`
/// have been accepted (`None`: forever), serving `service` on each. The accept loop runs on the
/// current actix arbiter, or off an actix thread on netref's default runtime thread (the
/// listener moves there).
///
/// A failed accept does not end the loop: one that concerns a single connection (reset,
/// aborted or refused before it was accepted) is skipped at once, and any other (out of file
/// descriptors, out of memory) pauses accepting for [`ACCEPT_BACKOFF`](crate::ACCEPT_BACKOFF) rather than retrying
/// in a busy loop. A panic in the service's root factory refuses that connection only. Each
/// is logged (a warning, or a debug event for a single connection's failure). It runs the same
/// accept loop as a [`Server`](crate::Server); it fails only when the listener cannot be moved
/// to the runtime thread or its address cannot be read.
pub async fn serve_tcp(
    listener: TcpListener,
    service: Service,
    config: Config,
    max_connections: Option<usize>,
) -> Result<(), Error> {
    if !crate::hosting::on_actor_thread() {
        let listener = listener.into_std()?;
        return crate::hosting::run_on_actor_thread(move || async move {
            serve_tcp_here(TcpListener::from_std(listener)?, service, config, max_connections).await
        })
        .await;
    }
    serve_tcp_here(listener, service, config, max_connections).await
}

/// [`serve_tcp`] with the accept loop on this (actix) thread: a [`Server`](crate::Server)'s,
/// with no cap on the connections alive at once, awaited here.
async fn serve_tcp_here(
    listener: TcpListener,
    service: Service,
    config: Config,
    max_connections: Option<usize>,
) -> Result<(), Error> {
    let (_server, accepting) = Server::builder(service)
        .config(config)
        .max_connections(usize::MAX)
        .accept_limit(max_connections)
        .accept_tcp_here(listener)?;
    // The loop runs as a task of its own: awaited inline, it would be polled again on every
    // wake-up of a caller that drives it inside `block_on` (an actix system's main future is
    // polled whenever any task of its thread is woken), at every request of every connection.
    // Dropping this future still stops accepting.
    let task = actix_rt::spawn(accepting);
    let _stop_on_drop = AbortOnDrop(task.abort_handle());
    let _ = task.await;
    Ok(())
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A server on a [`Runtime`]'s thread, its connections listed for the runtime's shutdown.
impl Runtime {
    /// Serves `service` on every connection accepted on `listener`, on the runtime thread.
    ///
    /// Resolves once the listener is registered with the runtime; accepting then goes on in the
    /// background until the runtime shuts down (which also closes the accepted connections).
    /// `listener` is a `std::net::TcpListener` (not tokio's: the runtime thread registers it
    /// with its own reactor); bind it yourself with `std::net::TcpListener::bind`, so you know
    /// its address.
    pub fn serve_tcp(
        &self,
        listener: std::net::TcpListener,
        service: Service,
        config: Config,
    ) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        let peers = self.peers();
        let started = self.spawn(move || async move {
            listener.set_nonblocking(true)?;
            // Sockets stay bound to the runtime that registers them: register it here.
            let listener = tokio::net::TcpListener::from_std(listener)?;
            // A server's accept loop, with no cap on the connections alive at once; it lists
            // each connection for the runtime's shutdown, and ends with the runtime's system.
            let (_server, accepting) = Server::builder(service)
                .config(config)
                .max_connections(usize::MAX)
                .on_started(Box::new(move |peer| peers.add(peer)))
                .accept_tcp_here(listener)?;
            actix_rt::spawn(accepting);
            Ok::<_, Error>(())
        });
        async move { started.await? }
    }
}
