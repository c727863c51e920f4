//! Service discovery: a registry where servers register under a name with a TTL and clients
//! look them up (RPyC's `rpyc_registry` and `discover` / `connect_by_service`, over netref).
//!
//! - [`RegistryService`] is the registry: an in-memory table served as a netref object of
//!   type `netref_actors.Registry` (methods `register`, `unregister`, `query`, `list`). The
//!   `netref-registry` binary serves one on [`REGISTRY_PORT`].
//! - [`Registration`] keeps a server registered while it runs, re-registering every `ttl / 3`.
//! - [`RegistryClient`] is the typed client; [`discover`] and [`connect_by_service`] find a
//!   service by name and connect to it.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use netref::{prelude::*, Server};
//! use netref_actors::registry::{self, Registration, RegistryService};
//!
//! #[actix_rt::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // The registry (usually its own process: `netref-registry --listen 0.0.0.0:18811`).
//!     let _registry = RegistryService::default().serve("127.0.0.1:18811").await?;
//!
//!     // A server registers itself and stays registered while `_registration` lives.
//!     let calculator = Object::builder("demo.Calculator").method("add", |a: i64, b: i64| a + b).build();
//!     let server = Server::builder(Service::shared(calculator)).bind_tcp("127.0.0.1:0").await?;
//!     let addr = server.local_addr().unwrap().to_string();
//!     let _registration = Registration::start("127.0.0.1:18811", "calculator", addr, registry::DEFAULT_TTL);
//!
//!     // A client finds it by name.
//!     let peer = registry::connect_by_service(
//!         "127.0.0.1:18811",
//!         "CALCULATOR",
//!         Service::void(),
//!         Config::default(),
//!         Duration::from_secs(3),
//!     )
//!     .await?;
//!     let sum: i64 = peer.root().await?.call_method("add", (1, 2)).await?;
//!     assert_eq!(sum, 3);
//!     Ok(())
//! }
//! ```
//!
//! Unlike RPyC's registry, which records the request's source IP, an entry's address is the
//! one the server gives: a server behind NAT or bound to `0.0.0.0` registers the address its
//! clients should use. The registry trusts its clients to register only their own addresses;
//! bound it with [`RegistryConfig`] and expose it only where that trust holds.

use std::time::Duration;

mod client;
mod registration;
mod service;

pub use client::{connect_by_service, discover, DiscoveryError, RegistryClient};
pub use registration::{Registration, RegistrationHandle, RegistrationStatus};
pub use service::{RegistryConfig, RegistryService};

/// The registry's well-known port (RPyC's `REGISTRY_PORT`).
pub const REGISTRY_PORT: u16 = 18811;

/// The TTL a server should register with unless it has a reason to pick another: RPyC's
/// `DEFAULT_PRUNING_TIMEOUT`, 240 s (re-registered every 80 s by [`Registration`]).
pub const DEFAULT_TTL: Duration = Duration::from_secs(240);

/// How long [`discover`] waits for the registry, and the longest any single request of a
/// [`Registration`] waits (RPyC's client socket timeout is 3 s too).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);

/// The type name of the registry object.
pub const TYPE_NAME: &str = "netref_actors.Registry";

/// The remote error kind of a registration refused because the table is full.
pub const REGISTRY_FULL: &str = "netref_actors.RegistryFull";
