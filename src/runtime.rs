//! netref on its own actix thread, for any tokio application (or none).
//!
//! netref's connections are actix actors, and actors need an actix system on the thread that
//! starts them. An actix-native program already has one (`#[actix_rt::main]`,
//! `#[actix_rt::test]`) and calls [`connect_tcp`](crate::connect_tcp),
//! [`connect_pair`](crate::connect_pair) and friends directly. Every other program — a
//! `#[tokio::main]` service, a thread-pool application, a plain `fn main` — starts a
//! [`Runtime`]: one named OS thread running an [actix `System`](actix::System), where the connections live.
//!
//! Everything a connection hands out is `Send + Sync` and wraps an address, never the actor:
//! [`Peer`], [`NetRef`] and [`AsyncResult`] can be used from any thread. `.await` them on any
//! runtime, or block on them from plain threads with [`AsyncResult::value`] /
//! [`AsyncResult::wait`]. What does need the runtime thread — starting connections, accepting
//! sockets, your own actors — goes through [`Runtime::spawn`] or the convenience methods.
//!
//! ```no_run
//! use netref::{prelude::*, Runtime};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), netref::Error> {
//!     let rt = Runtime::new()?;
//!     let calculator = Object::builder("demo.Calculator").method("add", |a: i64, b: i64| a + b).build();
//!     let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//!     let addr = listener.local_addr()?.to_string();
//!     rt.serve_tcp(listener, Service::shared(calculator), Config::default()).await?;
//!
//!     let peer = rt.connect_tcp(addr, Service::void(), Config::default(), std::time::Duration::from_secs(5)).await?;
//!     let calc = peer.root().await?;
//!     // NetRef and AsyncResult are Send: use them from any tokio task.
//!     let sum = tokio::spawn(async move { calc.call_method::<i64>("add", (1, 2)).await }).await.unwrap()?;
//!     assert_eq!(sum, 3);
//!     rt.shutdown();
//!     Ok(())
//! }
//! ```
//!
//! **Costs.** A call from a foreign thread crosses threads twice: the request goes through the
//! connection actor's mailbox to the runtime thread, and the reply wakes the caller's task (or
//! thread) from there. Callbacks the peer makes into this side ([`Object::function`](crate::Object::function)
//! closures, [`AsyncResult::add_callback`] callbacks) run **on the runtime thread**: keep them
//! short and never block in them, or every connection of the runtime stalls.
//!
//! **Peer futures that sleep.** [`Peer::close`] and [`Peer::closed`] use tokio timers, so await
//! them on a tokio runtime (any flavour) or through [`Runtime::spawn`]. Netref calls and
//! [`AsyncResult`] need no runtime at all.
//!
//! This module must never name a transport or the server (`hosting`, which they use, starts
//! the default runtime from here): the methods that start connections on a runtime are beside
//! what they start — [`Runtime::connect_tcp`] and [`Runtime::connect_pair`] in `transport`,
//! [`Runtime::serve_tcp`] in `server`.

use std::{
    fmt,
    future::Future,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Condvar, Mutex,
    },
    thread::{self, JoinHandle, ThreadId},
    time::Duration,
};

use actix_rt::{ArbiterHandle, System};
use tokio::sync::oneshot;
use tracing::{debug, warn};

#[cfg(doc)]
use crate::{config::Config, AsyncResult, NetRef};
use crate::{Error, Peer};

static NEXT_RUNTIME_ID: AtomicUsize = AtomicUsize::new(1);

/// How long a dropped runtime lets its connections close gracefully before its system stops.
const DROP_GRACE: Duration = Duration::from_millis(500);

/// The reason connections see when their runtime shuts down.
const SHUTDOWN_REASON: &str = "the netref runtime is shutting down";

fn stopped_error() -> Error {
    Error::ConnectionClosed("the netref runtime has stopped".into())
}

/// A handle to netref's own actix thread, for programs without an actix system of their own.
/// Cheap to clone, `Send + Sync`.
///
/// [`Runtime::new`] starts a thread named `netref-rt-N` running an [actix `System`](actix::System). Connections
/// started through the runtime ([`connect_tcp`](Runtime::connect_tcp),
/// [`connect_pair`](Runtime::connect_pair), [`serve_tcp`](Runtime::serve_tcp)) live there, and
/// are closed gracefully when the runtime shuts down. [`spawn`](Runtime::spawn) runs any code
/// there, for example to start your own actors or connections over other transports.
///
/// The runtime stops on [`shutdown`](Runtime::shutdown) (which waits for the thread to end) or
/// when the last handle is dropped (which does not wait). Connections on it then close, and
/// their netrefs and pending results fail with [`Error::ConnectionClosed`].
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    id: usize,
    arbiter: ArbiterHandle,
    system: System,
    thread_id: ThreadId,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Set by the first request to stop; later requests only wait.
    stopping: AtomicBool,
    /// Set by the runtime thread when its system has stopped and its connections are dropped.
    finished: Arc<(Mutex<bool>, Condvar)>,
    /// Connections started through this runtime, closed gracefully on shutdown.
    peers: Arc<Registry>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.inner.id)
            .field("running", &self.is_running())
            .field("connections", &self.inner.peers.len())
            .finish()
    }
}

/// The connections a runtime started, pruned of closed ones as new ones arrive.
#[derive(Default)]
pub(crate) struct Registry {
    peers: Mutex<Vec<Peer>>,
    /// Prune when the list grows past this (doubling keeps pruning amortised O(1)).
    prune_at: AtomicUsize,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Peer>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn add(&self, peer: &Peer) {
        let mut peers = self.lock();
        if peers.len() >= self.prune_at.load(Ordering::Relaxed) {
            peers.retain(|p| !p.is_closed());
            self.prune_at.store((peers.len() * 2).max(16), Ordering::Relaxed);
        }
        peers.push(peer.clone());
    }

    fn take(&self) -> Vec<Peer> {
        std::mem::take(&mut *self.lock())
    }

    fn len(&self) -> usize {
        self.lock().iter().filter(|p| !p.is_closed()).count()
    }
}

impl Runtime {
    /// Starts the runtime thread and its actix system.
    pub fn new() -> Result<Runtime, Error> {
        let id = NEXT_RUNTIME_ID.fetch_add(1, Ordering::Relaxed);
        let finished = Arc::new((Mutex::new(false), Condvar::new()));
        let thread_finished = finished.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = thread::Builder::new().name(format!("netref-rt-{id}")).spawn(move || {
            // Whatever happens below (a panic included), waiters learn that the thread is done.
            let _finished = FinishedGuard(thread_finished);
            let runner = System::new();
            let system = System::current();
            let arbiter = system.arbiter().clone();
            if ready_tx.send((system, arbiter)).is_err() {
                return;
            }
            debug!(runtime = id, "netref runtime started");
            if let Err(e) = runner.run() {
                warn!(runtime = id, error = %e, "netref runtime stopped with an error");
            }
            // `run` returns after dropping the system's runtime: every actor and task is gone.
            debug!(runtime = id, "netref runtime stopped");
        })?;
        let thread_id = thread.thread().id();
        let Ok((system, arbiter)) = ready_rx.recv() else {
            let why = match thread.join() {
                Err(_) => "its thread panicked while starting the actix system",
                Ok(()) => "its thread ended before the actix system started",
            };
            return Err(Error::Io(format!("cannot start the netref runtime: {why}")));
        };
        Ok(Runtime {
            inner: Arc::new(Inner {
                id,
                arbiter,
                system,
                thread_id,
                thread: Mutex::new(Some(thread)),
                stopping: AtomicBool::new(false),
                finished,
                peers: Arc::default(),
            }),
        })
    }

    /// Whether the runtime takes work: not stopped, and not asked to stop.
    pub fn is_running(&self) -> bool {
        !self.inner.stopping.load(Ordering::Acquire) && self.inner.arbiter.alive()
    }

    /// Whether the caller runs on this runtime's thread.
    pub fn is_current(&self) -> bool {
        thread::current().id() == self.inner.thread_id
    }

    /// Runs `f()` on the runtime thread and resolves to its output, from any thread or runtime.
    ///
    /// `f` must be `Send`; the future it returns need not be (it runs where actors live, so it
    /// may start actors and connections with [`connect_stream`](crate::connect_stream) and the other
    /// connection functions).
    /// The work starts at once and runs to completion even if the returned future is dropped.
    /// Fails with [`Error::ConnectionClosed`] if the runtime is stopping or has stopped (or
    /// stops, or `f` panics, before the output is ready).
    ///
    /// ```no_run
    /// # async fn demo(rt: netref::Runtime) -> Result<(), netref::Error> {
    /// use netref::{Config, Service};
    /// // An in-memory pair with per-side settings, started on the runtime thread.
    /// let (server, client) = rt
    ///     .spawn(|| async { netref::connect_pair_with(Service::void(), Config::default(), Service::void(), Config::default()) })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn spawn<F, Fut, T>(&self, f: F) -> impl Future<Output = Result<T, Error>> + Send + 'static
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let sent = !self.inner.stopping.load(Ordering::Acquire)
            && self.inner.arbiter.spawn_fn(move || {
                actix_rt::spawn(async move {
                    let _ = tx.send(f().await);
                });
            });
        async move {
            if !sent {
                return Err(stopped_error());
            }
            rx.await.map_err(|_| {
                Error::ConnectionClosed(
                    "the netref runtime stopped (or the task panicked) before the task finished".into(),
                )
            })
        }
    }

    /// Runs `f()` on the runtime thread and blocks the calling thread until it finishes: the
    /// way plain threads start work there.
    ///
    /// On a thread that runs netref's connections (an actix thread, the runtime's own
    /// included) this returns [`Error::BlockingInRuntime`] instead of blocking; `.await`
    /// [`spawn`](Runtime::spawn) there.
    pub fn block_on<F, Fut, T>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if !crate::actor_thread::may_block() {
            return Err(Error::BlockingInRuntime);
        }
        futures::executor::block_on(self.spawn(f))
    }

    /// The connections this runtime closes on shutdown, for the methods that start connections
    /// on it (`transport`'s `connect_*`, `server`'s `serve_tcp`), which list theirs there.
    pub(crate) fn peers(&self) -> Arc<Registry> {
        self.inner.peers.clone()
    }

    /// Stops the runtime and waits until its thread has ended.
    ///
    /// Connections started through the runtime close gracefully first (each within its
    /// [`Config::close_grace`]; the peer sees a clean close); then the actix system stops and
    /// every actor on it is dropped. Afterwards all their netrefs and results fail with
    /// [`Error::ConnectionClosed`]. Other clones of this handle see a stopped runtime.
    ///
    /// This blocks the calling thread while connections close (on an async runtime, consider
    /// `tokio::task::spawn_blocking(move || rt.shutdown())`). Called on the runtime thread itself
    /// (from a callback, say), it only asks the runtime to stop and returns.
    pub fn shutdown(self) {
        self.shutdown_inner(None);
    }

    /// [`shutdown`](Runtime::shutdown), giving every connection at most `grace` to close.
    pub fn shutdown_within(self, grace: Duration) {
        self.shutdown_inner(Some(grace));
    }

    fn shutdown_inner(self, grace: Option<Duration>) {
        self.inner.stop(grace);
        if self.is_current() {
            return;
        }
        let (done, cv) = &*self.inner.finished;
        let mut finished = done.lock().unwrap_or_else(|p| p.into_inner());
        while !*finished {
            finished = cv.wait(finished).unwrap_or_else(|p| p.into_inner());
        }
        drop(finished);
        let thread = self.inner.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                warn!(runtime = self.inner.id, "the netref runtime thread panicked");
            }
        }
    }
}

impl Inner {
    /// Asks the runtime thread to close its connections, then stop. Does not wait. Only the
    /// first request counts.
    fn stop(&self, grace: Option<Duration>) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        let peers = self.peers.clone();
        let system = self.system.clone();
        let id = self.id;
        let sent = self.arbiter.spawn_fn(move || {
            actix_rt::spawn(async move {
                let open: Vec<Peer> = peers.take().into_iter().filter(|p| !p.is_closed()).collect();
                debug!(runtime = id, connections = open.len(), "netref runtime shutting down");
                futures::future::join_all(open.iter().map(|p| {
                    let grace = grace.unwrap_or(p.config().close_grace);
                    p.close_within(SHUTDOWN_REASON, grace)
                }))
                .await;
                system.stop();
            });
        });
        if !sent {
            // The system is already gone: nothing left to close.
            self.system.stop();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone: close the connections and stop, without waiting (a drop may
        // happen anywhere, the runtime thread included). The thread ends on its own.
        self.stop(Some(DROP_GRACE));
    }
}

/// Marks the runtime finished when the thread's body ends, however it ends.
struct FinishedGuard(Arc<(Mutex<bool>, Condvar)>);

impl Drop for FinishedGuard {
    fn drop(&mut self) {
        let (done, cv) = &*self.0;
        *done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }
}

/// A client for plain threads: no async anywhere in the caller's code.
pub(crate) mod blocking {
    use std::time::Duration;

    use super::Runtime;
    use crate::{config::Config, service::Service, Error, NetRef, Peer};

    /// A TCP connection to a netref server, for programs without an async runtime. It owns a
    /// [`Runtime`] (one thread) where the connection lives; its netrefs are ordinary
    /// [`NetRef`]s, `Send + Sync`, usable from any thread with [`AsyncResult::value`](crate::AsyncResult::value)
    /// and [`AsyncResult::wait`](crate::AsyncResult::wait).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use netref::BlockingClient;
    ///
    /// fn main() -> Result<(), netref::Error> {
    ///     let client = BlockingClient::connect("127.0.0.1:18861", Duration::from_secs(5))?;
    ///     let sum: i64 = client.root()?.call_method("add", (1, 2)).value()?;
    ///     assert_eq!(sum, 3);
    ///     client.close();
    ///     Ok(())
    /// }
    /// ```
    ///
    /// Its methods block, so call them on plain threads: on an async runtime thread they return
    /// [`Error::BlockingInRuntime`]. Callbacks the server makes into this client run on the
    /// client's runtime thread.
    #[derive(Debug)]
    pub struct BlockingClient {
        runtime: Runtime,
        peer: Peer,
    }

    impl BlockingClient {
        /// Connects to `addr` (`"host:port"`) within `timeout`, exposing nothing to the server.
        pub fn connect(addr: &str, timeout: Duration) -> Result<BlockingClient, Error> {
            BlockingClient::connect_with(addr, Service::void(), Config::default(), timeout)
        }

        /// Connects to `addr` within `timeout`, exposing `service` to the server (for callbacks)
        /// and using `config` for the connection.
        pub fn connect_with(
            addr: &str,
            service: Service,
            config: Config,
            timeout: Duration,
        ) -> Result<BlockingClient, Error> {
            if !crate::actor_thread::may_block() {
                return Err(Error::BlockingInRuntime);
            }
            let runtime = Runtime::new()?;
            let peer = futures::executor::block_on(runtime.connect_tcp(addr.to_owned(), service, config, timeout))?;
            Ok(BlockingClient { runtime, peer })
        }

        /// The server's root object (blocks for one round trip).
        pub fn root(&self) -> Result<NetRef, Error> {
            self.peer.root().value()
        }

        /// The connection, for everything else ([`Peer::ping`], [`Peer::is_closed`], …).
        pub fn peer(&self) -> &Peer {
            &self.peer
        }

        /// The runtime the connection lives on (to start more connections there).
        pub fn runtime(&self) -> &Runtime {
            &self.runtime
        }

        /// Closes the connection gracefully, then stops the client's runtime; blocks until both
        /// are done. Dropping the client does the same without waiting.
        pub fn close(self) {
            let BlockingClient { runtime, peer } = self;
            drop(peer);
            runtime.shutdown();
        }
    }
}
