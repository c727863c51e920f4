//! Ready-made distributed actors built only on netref's public API.
//!
//! - [`registry`]: service discovery as a netref service. A [`RegistryService`] holds
//!   `(name, address)` entries with a TTL (register, unregister, query, list; expired entries
//!   pruned); servers stay registered with a [`Registration`]; clients find them with
//!   [`discover`](registry::discover) / [`connect_by_service`](registry::connect_by_service)
//!   or the typed [`RegistryClient`]. The `netref-registry` binary serves one.
//! - [`pubsub`]: a `Broker` actor for topics whose subscribers are remote actors; brokers on
//!   different nodes are joined with `link`; dead subscribers are dropped.
//! - [`pool`]: `Pool<A>` over `ActorRef`s, round-robin or least-in-flight, which removes members
//!   whose connection is lost.
//!
//! Nothing here reaches into netref's internals: everything is built from [`netref::Object`],
//! [`netref::NetRef`], [`netref::Server`] and the transports, as any user could.

pub mod pool;
pub mod pubsub;
pub mod registry;

pub use registry::{Registration, RegistrationHandle, RegistryClient, RegistryConfig, RegistryService};

/// The version of netref this crate is built against.
pub const NETREF_VERSION: &str = env!("CARGO_PKG_VERSION");
