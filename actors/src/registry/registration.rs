//! The server side: keep a server registered while it runs.

use std::{fmt, time::Duration};

use netref::Error;
use tokio::{
    net::ToSocketAddrs,
    sync::{oneshot, watch},
};
use tracing::{debug, info, warn};

use super::{RegistryClient, DEFAULT_TIMEOUT};

/// The pause before reconnecting after a working connection to the registry was lost.
const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

/// Keeps `(name, address)` registered at a registry: registers, then re-registers every
/// `ttl / 3` (RPyC re-registers every 60 s against a 240 s pruning timeout), reconnecting
/// whenever the connection to the registry is lost; a failed attempt is retried every second
/// (sooner for short TTLs). See [`Registration::start`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Registration;

/// What a [`RegistrationHandle`] knows about its registration.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RegistrationStatus {
    /// Whether the latest attempt registered (or refreshed) the entry.
    pub registered: bool,
    /// Successful registrations so far (the first one and every refresh).
    pub renewals: u64,
    /// Why the latest attempt failed, if it did.
    pub last_error: Option<Error>,
}

/// The running registration. Dropping it (or [`stop`](RegistrationHandle::stop)) stops
/// re-registering and unregisters best-effort, so the entry disappears at once rather than
/// when its TTL runs out.
pub struct RegistrationHandle {
    stop: Option<oneshot::Sender<()>>,
    status: watch::Receiver<RegistrationStatus>,
    task: Option<tokio::task::JoinHandle<()>>,
    name: String,
    server_addr: String,
}

impl fmt::Debug for RegistrationHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrationHandle")
            .field("name", &self.name)
            .field("server_addr", &self.server_addr)
            .field("status", &*self.status.borrow())
            .finish()
    }
}

impl Registration {
    /// Registers `server_addr` (`host:port`, as clients should connect to it) under `name` at
    /// the registry at `registry_addr` with `ttl`, and keeps it registered in a task on the
    /// current actix arbiter (or tokio `LocalSet`) until the handle is dropped or stopped.
    ///
    /// Returns at once; [`registered`](RegistrationHandle::registered) waits for the first
    /// successful registration. A TTL below 30 ms is raised to 30 ms.
    ///
    /// # Panics
    ///
    /// Outside an actix system (or a tokio `LocalSet`), as `actix_rt::spawn` does.
    pub fn start<A>(
        registry_addr: A,
        name: impl Into<String>,
        server_addr: impl Into<String>,
        ttl: Duration,
    ) -> RegistrationHandle
    where
        A: ToSocketAddrs + fmt::Display + Clone + 'static,
    {
        let (stop_tx, stop_rx) = oneshot::channel();
        let (status_tx, status_rx) = watch::channel(RegistrationStatus::default());
        let name = name.into();
        let server_addr = server_addr.into();
        let job = Job {
            registry: registry_addr,
            name: name.clone(),
            server_addr: server_addr.clone(),
            ttl: ttl.max(Duration::from_millis(30)),
            status: status_tx,
        };
        let task = actix_rt::spawn(job.run(stop_rx));
        RegistrationHandle { stop: Some(stop_tx), status: status_rx, task: Some(task), name, server_addr }
    }
}

impl RegistrationHandle {
    /// The name registered.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address registered.
    pub fn server_addr(&self) -> &str {
        &self.server_addr
    }

    /// The current status.
    pub fn status(&self) -> RegistrationStatus {
        self.status.borrow().clone()
    }

    /// Resolves once the entry has been registered at least once (at once if it already
    /// was), or when the registration's task ended (its arbiter stopped). Wrap it in a timeout:
    /// it waits as long as the registry is unreachable.
    pub async fn registered(&self) {
        let mut status = self.status.clone();
        let _ = status.wait_for(|s| s.renewals > 0).await;
    }

    /// Stops re-registering, unregisters (best-effort, within [`DEFAULT_TIMEOUT`]) and waits
    /// until that is done.
    pub async fn stop(mut self) {
        self.stop.take();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RegistrationHandle {
    fn drop(&mut self) {
        // Dropping the sender tells the task to unregister and end; it finishes on its own.
        self.stop.take();
    }
}

struct Job<A> {
    registry: A,
    name: String,
    server_addr: String,
    ttl: Duration,
    status: watch::Sender<RegistrationStatus>,
}

impl<A: ToSocketAddrs + fmt::Display + Clone + 'static> Job<A> {
    async fn run(self, mut stop: oneshot::Receiver<()>) {
        let refresh = self.ttl / 3;
        let retry = refresh.min(Duration::from_secs(1));
        // Requests must not outlive the TTL they are meant to refresh.
        let timeout = DEFAULT_TIMEOUT.min(self.ttl);
        let mut client: Option<RegistryClient> = None;
        loop {
            if client.as_ref().is_none_or(RegistryClient::is_closed) {
                client = match RegistryClient::connect(self.registry.clone(), timeout).await {
                    Ok(c) => Some(c),
                    Err(e) => {
                        self.failed(e);
                        None
                    }
                };
            }
            let mut wait = retry;
            if let Some(c) = &client {
                match c.register(&self.name, &self.server_addr, self.ttl).await {
                    Ok(()) => {
                        self.succeeded();
                        wait = refresh;
                    }
                    Err(e) => self.failed(e),
                }
            }
            let lost = async {
                match &client {
                    // Reconnect as soon as a working connection is lost (the registry may have
                    // restarted with an empty table), but never in a tight loop.
                    Some(c) if !c.is_closed() => {
                        c.peer().closed().await;
                        tokio::time::sleep(retry.min(RECONNECT_PAUSE)).await;
                    }
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(wait) => {}
                _ = lost => debug!(name = %self.name, registry = %self.registry, "registry connection lost; reconnecting"),
            }
        }
        if let Some(c) = client.filter(|c| !c.is_closed()) {
            match c.unregister(&self.name, &self.server_addr).await {
                Ok(_) => info!(name = %self.name, addr = %self.server_addr, "unregistered"),
                Err(e) => debug!(name = %self.name, error = %e, "unregister failed (the entry will expire)"),
            }
            c.close().await;
        }
        self.status.send_modify(|s| s.registered = false);
    }

    fn succeeded(&self) {
        self.status.send_modify(|s| {
            if s.renewals == 0 || !s.registered {
                info!(name = %self.name, addr = %self.server_addr, registry = %self.registry, "registered");
            }
            s.registered = true;
            s.renewals += 1;
            s.last_error = None;
        });
    }

    fn failed(&self, error: Error) {
        self.status.send_modify(|s| {
            if s.registered || s.last_error.is_none() {
                warn!(name = %self.name, registry = %self.registry, %error, "registration failed; retrying");
            }
            s.registered = false;
            s.last_error = Some(error);
        });
    }
}
