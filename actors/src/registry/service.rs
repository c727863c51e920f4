//! The registry itself: an in-memory table of `(name, address)` entries with a TTL, exposed to
//! peers as a netref [`Object`].

use std::{
    collections::HashMap,
    fmt,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, Weak,
    },
    time::{Duration, Instant},
};

use netref::{kinds, Object, RemoteError, Server, Service};
use tokio::net::ToSocketAddrs;

use super::{REGISTRY_FULL, TYPE_NAME};

/// Limits and timings of a [`RegistryService`]. `RegistryConfig::default()` suits a registry
/// open to untrusted clients; every setting has a builder method.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RegistryConfig {
    /// Most `(name, address)` entries at once, over all names. A registration that would add
    /// an entry past it fails with [`REGISTRY_FULL`]; refreshing an existing entry always
    /// works. Default 10,000. `list` replies with the whole table in one frame: keep
    /// `max_entries × (max_name_len + max_addr_len)` well under the connections'
    /// `max_frame_len` (16 MiB by default).
    pub max_entries: usize,
    /// Longest service name, in bytes. Default 256.
    pub max_name_len: usize,
    /// Longest address, in bytes. Default 256.
    pub max_addr_len: usize,
    /// Longest TTL a client may ask for. Default 1 hour.
    pub max_ttl: Duration,
    /// How often the background task drops expired entries (every call prunes too, so this
    /// only bounds how long an expired entry holds memory). Default 10 s.
    pub prune_interval: Duration,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            max_entries: 10_000,
            max_name_len: 256,
            max_addr_len: 256,
            max_ttl: Duration::from_secs(3600),
            prune_interval: Duration::from_secs(10),
        }
    }
}

impl RegistryConfig {
    /// Sets [`max_entries`](RegistryConfig::max_entries).
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// Sets [`max_name_len`](RegistryConfig::max_name_len) (at least 1).
    pub fn max_name_len(mut self, bytes: usize) -> Self {
        self.max_name_len = bytes.max(1);
        self
    }

    /// Sets [`max_addr_len`](RegistryConfig::max_addr_len) (at least 1).
    pub fn max_addr_len(mut self, bytes: usize) -> Self {
        self.max_addr_len = bytes.max(1);
        self
    }

    /// Sets [`max_ttl`](RegistryConfig::max_ttl).
    pub fn max_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }

    /// Sets [`prune_interval`](RegistryConfig::prune_interval) (at least 1 ms).
    pub fn prune_interval(mut self, interval: Duration) -> Self {
        self.prune_interval = interval.max(Duration::from_millis(1));
        self
    }
}

/// One live address of a name.
struct Entry {
    addr: String,
    expires: Instant,
    /// Registration order: a larger `seq` was registered (or refreshed) later.
    seq: u64,
}

#[derive(Default)]
struct Table {
    /// Normalized (upper-cased) name → its entries.
    names: HashMap<String, Vec<Entry>>,
    /// Entries over all names.
    len: usize,
    next_seq: u64,
    /// No entry expires before this instant (a lower bound: `None` means the table is empty).
    next_expiry: Option<Instant>,
}

impl Table {
    /// Drops every entry whose TTL has passed. Scans only when something may have expired.
    fn prune(&mut self, now: Instant) {
        if !matches!(self.next_expiry, Some(t) if t <= now) {
            return;
        }
        let mut len = 0;
        let mut next: Option<Instant> = None;
        self.names.retain(|_, entries| {
            entries.retain(|e| e.expires > now);
            for e in entries.iter() {
                next = Some(next.map_or(e.expires, |n| n.min(e.expires)));
            }
            len += entries.len();
            !entries.is_empty()
        });
        self.len = len;
        self.next_expiry = next;
    }

    /// The addresses of `name`, most recently registered first.
    fn addresses(entries: &[Entry]) -> Vec<String> {
        let mut sorted: Vec<&Entry> = entries.iter().collect();
        sorted.sort_by_key(|e| std::cmp::Reverse(e.seq));
        sorted.into_iter().map(|e| e.addr.clone()).collect()
    }
}

struct Inner {
    config: RegistryConfig,
    table: Mutex<Table>,
    pruner_started: AtomicBool,
}

impl Inner {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.prune(Instant::now());
        table
    }
}

/// An in-memory service registry (RPyC's registry server, as a netref object).
///
/// Servers register `(name, address)` with a TTL and refresh it before it runs out (see
/// [`Registration`](super::Registration)); clients query a name for its live addresses (see
/// [`RegistryClient`](super::RegistryClient), [`discover`](super::discover),
/// [`connect_by_service`](super::connect_by_service)). Names are case-insensitive (stored
/// upper-cased, as RPyC does); an entry expires when its TTL passes without a new `register`.
///
/// Peers reach it through [`object`](RegistryService::object), an object of type
/// `netref_actors.Registry` with the methods
///
/// | method | arguments | returns |
/// |---|---|---|
/// | `register` | `name: String, addr: String, ttl_ms: u64` | `()` — adds the entry or refreshes its TTL |
/// | `unregister` | `name: String, addr: String` | `bool` — whether the entry existed |
/// | `query` | `name: String` | `Vec<String>` — live addresses, most recently registered first |
/// | `list` | — | `Vec<(String, Vec<String>)>` — every name (sorted) with its addresses |
///
/// Bad input (an empty or over-long name or address, an address that is not `host:port`, a
/// TTL of 0 or above [`max_ttl`](RegistryConfig::max_ttl)) is refused with a
/// `builtins.ValueError`; a full table with [`REGISTRY_FULL`]. The same operations are
/// available in-process as methods of this type.
///
/// Cheap to clone: every clone is the same registry.
#[derive(Clone)]
pub struct RegistryService {
    inner: Arc<Inner>,
}

impl fmt::Debug for RegistryService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryService").field("entries", &self.len()).field("config", &self.inner.config).finish()
    }
}

impl Default for RegistryService {
    fn default() -> Self {
        RegistryService::new(RegistryConfig::default())
    }
}

fn value_error(message: String) -> RemoteError {
    RemoteError::new(kinds::VALUE_ERROR, message)
}

impl RegistryService {
    /// An empty registry with the given limits.
    pub fn new(config: RegistryConfig) -> Self {
        RegistryService {
            inner: Arc::new(Inner {
                config,
                table: Mutex::new(Table::default()),
                pruner_started: AtomicBool::new(false),
            }),
        }
    }

    /// The registry's limits.
    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// The netref object peers call (type `netref_actors.Registry`); serve it with
    /// `Server::builder(Service::shared(registry.object()))`, or use
    /// [`serve`](RegistryService::serve), which also starts the pruning task.
    pub fn object(&self) -> Object {
        let (r1, r2, r3, r4, r5) = (self.clone(), self.clone(), self.clone(), self.clone(), self.clone());
        Object::builder(TYPE_NAME)
            .try_method("register", move |name: String, addr: String, ttl_ms: u64| {
                r1.register(&name, &addr, Duration::from_millis(ttl_ms))
            })
            .try_method("unregister", move |name: String, addr: String| r2.unregister(&name, &addr))
            .try_method("query", move |name: String| r3.query(&name))
            .method("list", move || r4.list())
            .repr(move || format!("<{TYPE_NAME} with {} entries>", r5.len()))
            .build()
    }

    /// Serves the registry over TCP on `addr` (`"0.0.0.0:18811"`, `"127.0.0.1:0"`, …) and
    /// starts the pruning task ([`spawn_pruner`](RegistryService::spawn_pruner)). Must be
    /// called inside an actix system.
    pub async fn serve(&self, addr: impl ToSocketAddrs) -> Result<Server, netref::Error> {
        let server = Server::builder(Service::shared(self.object())).bind_tcp(addr).await?;
        self.spawn_pruner();
        Ok(server)
    }

    /// Starts the task that drops expired entries every
    /// [`prune_interval`](RegistryConfig::prune_interval), on the current actix arbiter (or
    /// tokio `LocalSet`). It ends when the last handle to the registry is dropped. Calling it
    /// again does nothing.
    ///
    /// # Panics
    ///
    /// Outside an actix system (or a tokio `LocalSet`), as `actix_rt::spawn` does.
    pub fn spawn_pruner(&self) {
        if self.inner.pruner_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = self.inner.config.prune_interval;
        actix_rt::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                drop(inner.table());
            }
        });
    }

    /// Registers `addr` under `name` for `ttl`, or refreshes the entry if it exists (it then
    /// counts as the most recently registered).
    pub fn register(&self, name: &str, addr: &str, ttl: Duration) -> Result<(), RemoteError> {
        let name = self.check_name(name)?;
        self.check_addr(addr)?;
        let max_ttl = self.inner.config.max_ttl;
        if ttl.is_zero() {
            return Err(value_error("ttl must be above 0 ms".into()));
        }
        if ttl > max_ttl {
            return Err(value_error(format!(
                "ttl of {} ms exceeds the registry's maximum of {} ms",
                ttl.as_millis(),
                max_ttl.as_millis()
            )));
        }
        let now = Instant::now();
        let expires = now.checked_add(ttl).ok_or_else(|| value_error("ttl out of range".into()))?;
        let mut table = self.inner.table();
        let seq = table.next_seq;
        let exists = table.names.get(&name).is_some_and(|entries| entries.iter().any(|e| e.addr == addr));
        if !exists && table.len >= self.inner.config.max_entries {
            return Err(RemoteError::new(
                REGISTRY_FULL,
                format!(
                    "the registry is full ({} entries); cannot add {addr} under {name}",
                    self.inner.config.max_entries
                ),
            ));
        }
        table.next_seq += 1;
        table.next_expiry = Some(table.next_expiry.map_or(expires, |t| t.min(expires)));
        let entries = table.names.entry(name).or_default();
        match entries.iter_mut().find(|e| e.addr == addr) {
            Some(entry) => {
                entry.expires = expires;
                entry.seq = seq;
            }
            None => {
                entries.push(Entry { addr: addr.to_owned(), expires, seq });
                table.len += 1;
            }
        }
        Ok(())
    }

    /// Removes `addr` from `name`; returns whether it was registered.
    pub fn unregister(&self, name: &str, addr: &str) -> Result<bool, RemoteError> {
        let name = self.check_name(name)?;
        self.check_addr(addr)?;
        let mut table = self.inner.table();
        let Some(entries) = table.names.get_mut(&name) else { return Ok(false) };
        let before = entries.len();
        entries.retain(|e| e.addr != addr);
        let removed = before != entries.len();
        if entries.is_empty() {
            table.names.remove(&name);
        }
        if removed {
            table.len -= 1;
        }
        Ok(removed)
    }

    /// The live addresses of `name`, most recently registered first (empty if none).
    pub fn query(&self, name: &str) -> Result<Vec<String>, RemoteError> {
        let name = self.check_name(name)?;
        let table = self.inner.table();
        Ok(table.names.get(&name).map(|entries| Table::addresses(entries)).unwrap_or_default())
    }

    /// Every registered name (upper-cased, sorted) with its live addresses, most recently
    /// registered first.
    pub fn list(&self) -> Vec<(String, Vec<String>)> {
        let table = self.inner.table();
        let mut all: Vec<(String, Vec<String>)> =
            table.names.iter().map(|(name, entries)| (name.clone(), Table::addresses(entries))).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Live entries over all names.
    pub fn len(&self) -> usize {
        self.inner.table().len
    }

    /// Whether no entry is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Validates a service name and returns it normalized (upper-cased).
    fn check_name(&self, name: &str) -> Result<String, RemoteError> {
        let max = self.inner.config.max_name_len;
        if name.trim().is_empty() {
            return Err(value_error("the service name is empty".into()));
        }
        if name.len() > max {
            return Err(value_error(format!(
                "the service name is {} bytes long; the registry accepts at most {max}",
                name.len()
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(value_error(format!("the service name {name:?} contains control characters")));
        }
        let normalized = name.to_uppercase();
        if normalized.len() > max {
            return Err(value_error(format!(
                "the service name is {} bytes long once upper-cased; the registry accepts at most {max}",
                normalized.len()
            )));
        }
        Ok(normalized)
    }

    /// Checks that `addr` is `host:port` (`[v6]:port` for IPv6) within the length limit.
    fn check_addr(&self, addr: &str) -> Result<(), RemoteError> {
        let max = self.inner.config.max_addr_len;
        if addr.len() > max {
            return Err(value_error(format!(
                "the address is {} bytes long; the registry accepts at most {max}",
                addr.len()
            )));
        }
        let bad = |why: &str| value_error(format!("bad address {addr:?}: {why}; expected host:port"));
        if addr.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains whitespace or control characters"));
        }
        let Some((host, port)) = addr.rsplit_once(':') else { return Err(bad("no port")) };
        if host.is_empty() || host == "[]" {
            return Err(bad("no host"));
        }
        match port.parse::<u16>() {
            Ok(0) => Err(bad("port 0 cannot be connected to")),
            Ok(_) => Ok(()),
            Err(_) => Err(bad("the port is not a number from 1 to 65535")),
        }
    }
}
