//! The client side: a typed client for the registry, and discovery helpers.

use std::{fmt, time::Duration};

use netref::{Config, Error, NetRef, Peer, Service};
use tokio::net::ToSocketAddrs;

use super::DEFAULT_TIMEOUT;

/// A typed client for a [`RegistryService`](super::RegistryService) on a peer.
///
/// This is also the short way to write a typed client for *any* netref object: hold the root
/// [`NetRef`] and give each remote method an `async fn` that is one
/// [`call_method`](NetRef::call_method) with the arguments as a tuple and the result type as
/// the type parameter. No trait, macro or code generation; a wrong argument type or count
/// comes back as a remote `builtins.TypeError`.
///
/// ```no_run
/// use netref::{Error, NetRef};
///
/// struct Calculator(NetRef);
///
/// impl Calculator {
///     async fn add(&self, a: i64, b: i64) -> Result<i64, Error> {
///         self.0.call_method("add", (a, b)).await
///     }
/// }
/// ```
///
/// A client made by [`connect`](RegistryClient::connect) owns its connection and closes it
/// when dropped; one made by [`from_peer`](RegistryClient::from_peer) leaves the connection
/// to its owner.
pub struct RegistryClient {
    peer: Peer,
    root: NetRef,
    owns_peer: bool,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient").field("peer", &self.peer).field("root", &self.root).finish()
    }
}

impl RegistryClient {
    /// Connects to the registry at `registry_addr` over TCP. `timeout` bounds the connection
    /// and, afterwards, every request made through this client.
    pub async fn connect(registry_addr: impl ToSocketAddrs, timeout: Duration) -> Result<Self, Error> {
        let config = Config::default().request_timeout(Some(timeout));
        let peer = netref::connect_tcp(registry_addr, Service::void(), config, timeout).await?;
        match peer.root().await {
            Ok(root) => Ok(RegistryClient { peer, root, owns_peer: true }),
            Err(e) => {
                peer.close().await;
                Err(e)
            }
        }
    }

    /// A client over an existing connection whose peer serves the registry as its root (any
    /// transport: in-memory, TLS, Unix socket). The connection is not closed on drop.
    pub async fn from_peer(peer: Peer) -> Result<Self, Error> {
        let root = peer.root().await?;
        Ok(RegistryClient { peer, root, owns_peer: false })
    }

    /// Registers `addr` under `name` for `ttl` (millisecond resolution), or refreshes it.
    pub async fn register(&self, name: &str, addr: &str, ttl: Duration) -> Result<(), Error> {
        // Integers travel as i64: a larger TTL is clamped (and refused by the registry's maximum).
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).min(i64::MAX as u64);
        self.root.call_method("register", (name, addr, ttl_ms)).await
    }

    /// Removes `addr` from `name`; `true` if it was registered.
    pub async fn unregister(&self, name: &str, addr: &str) -> Result<bool, Error> {
        self.root.call_method("unregister", (name, addr)).await
    }

    /// The live addresses of `name`, most recently registered first (empty if none).
    pub async fn query(&self, name: &str) -> Result<Vec<String>, Error> {
        self.root.call_method("query", (name,)).await
    }

    /// Every registered name (upper-cased, sorted) with its live addresses.
    pub async fn list(&self) -> Result<Vec<(String, Vec<String>)>, Error> {
        self.root.call_method("list", ()).await
    }

    /// The connection to the registry.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// The registry object on the peer.
    pub fn root(&self) -> &NetRef {
        &self.root
    }

    /// Whether the connection to the registry is closed.
    pub fn is_closed(&self) -> bool {
        self.peer.is_closed()
    }

    /// Closes the connection and waits until it is closed.
    pub async fn close(self) {
        self.peer.close().await;
    }
}

impl Drop for RegistryClient {
    fn drop(&mut self) {
        if !self.owns_peer || self.peer.is_closed() {
            return;
        }
        // A connection does not end when its last handle drops: close it in the background.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let peer = self.peer.clone();
            rt.spawn(async move { peer.close().await });
        }
    }
}

/// Why [`discover`] or [`connect_by_service`] failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The registry could not be reached, or refused the query.
    #[error("registry at {registry}: {source}")]
    Registry {
        /// The registry's address.
        registry: String,
        /// What failed.
        source: Error,
    },
    /// The registry knows no live address for the name.
    #[error("no service named {name:?} is registered at the registry at {registry}")]
    NotFound {
        /// The name asked for.
        name: String,
        /// The registry's address.
        registry: String,
    },
    /// Every registered address of the name failed to connect.
    #[error("service {name:?}: none of its registered addresses answered ({})", describe(attempts))]
    Unreachable {
        /// The name asked for.
        name: String,
        /// Each address tried, in order, with why it failed.
        attempts: Vec<(String, Error)>,
    },
}

fn describe(attempts: &[(String, Error)]) -> String {
    attempts.iter().map(|(addr, e)| format!("{addr}: {e}")).collect::<Vec<_>>().join("; ")
}

/// The live addresses registered under `name` at the registry at `registry_addr`, most
/// recently registered first (RPyC's `discover`). An unknown name is
/// [`DiscoveryError::NotFound`]. The registry must answer within [`DEFAULT_TIMEOUT`].
pub async fn discover(
    registry_addr: impl ToSocketAddrs + fmt::Display,
    name: &str,
) -> Result<Vec<String>, DiscoveryError> {
    discover_within(registry_addr, name, DEFAULT_TIMEOUT).await
}

async fn discover_within(
    registry_addr: impl ToSocketAddrs + fmt::Display,
    name: &str,
    timeout: Duration,
) -> Result<Vec<String>, DiscoveryError> {
    let registry = registry_addr.to_string();
    let registry_error = |source| DiscoveryError::Registry { registry: registry.clone(), source };
    let client = RegistryClient::connect(registry_addr, timeout).await.map_err(registry_error)?;
    let found = client.query(name).await;
    client.close().await;
    let addrs = found.map_err(registry_error)?;
    if addrs.is_empty() {
        return Err(DiscoveryError::NotFound { name: name.to_owned(), registry });
    }
    Ok(addrs)
}

/// Discovers `name` at the registry and connects to the first of its addresses that answers
/// (RPyC's `connect_by_service`), exposing `service` to it with `config`. Addresses are tried
/// most recently registered first; each must accept the TCP connection and answer a ping (so
/// the netref handshake succeeded) within `timeout`, which also bounds the registry query.
pub async fn connect_by_service(
    registry_addr: impl ToSocketAddrs + fmt::Display,
    name: &str,
    service: Service,
    config: Config,
    timeout: Duration,
) -> Result<Peer, DiscoveryError> {
    let addrs = discover_within(registry_addr, name, timeout).await?;
    let mut attempts = Vec::with_capacity(addrs.len());
    for addr in addrs {
        match try_connect(&addr, service.clone(), config.clone(), timeout).await {
            Ok(peer) => return Ok(peer),
            Err(e) => {
                tracing::debug!(service = name, %addr, error = %e, "registered address did not answer");
                attempts.push((addr, e));
            }
        }
    }
    Err(DiscoveryError::Unreachable { name: name.to_owned(), attempts })
}

async fn try_connect(addr: &str, service: Service, config: Config, timeout: Duration) -> Result<Peer, Error> {
    let peer = netref::connect_tcp(addr, service, config, timeout).await?;
    let answered = tokio::time::timeout(timeout, peer.ping("netref_actors.connect_by_service")).await;
    match answered {
        Ok(Ok(_)) => Ok(peer),
        Ok(Err(e)) => {
            peer.close().await;
            Err(e)
        }
        Err(_) => {
            peer.close().await;
            Err(Error::Timeout(timeout))
        }
    }
}
