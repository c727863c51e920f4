//! Ready-made distributed actors built only on netref's public API.
//!
//! - [`registry`]: service discovery as a netref service. A [`RegistryService`] holds
//!   `(name, address)` entries with a TTL (register, unregister, query, list; expired entries
//!   pruned); servers stay registered with a [`Registration`]; clients find them with
//!   [`discover`](registry::discover) / [`connect_by_service`](registry::connect_by_service)
//!   or the typed [`RegistryClient`]. The `netref-registry` binary serves one.
//!
//! Coming:
//! - **PubSub**: topics spanning nodes, whose subscribers are remote actors; dead subscribers are
//!   dropped.
//! - **Pool**: a pool over `ActorRef`s (round-robin and least-in-flight) that removes members
//!   whose connection is lost.
//!
//! Nothing here reaches into netref's internals: everything is built from [`netref::Object`],
//! [`netref::NetRef`], [`netref::Server`] and the transports, as any user could.

pub mod registry;

pub use registry::{Registration, RegistrationHandle, RegistryClient, RegistryConfig, RegistryService};

/// The version of netref this crate is built against.
pub const NETREF_VERSION: &str = env!("CARGO_PKG_VERSION");
