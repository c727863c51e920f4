//! Ready-made distributed actors built only on netref's public API.
//!
//! This crate will hold:
//! - **Registry**: service discovery as a netref service (register with a TTL, query, list,
//!   unregister; expired entries pruned), with `discover` / `connect_by_service` for clients and
//!   a `netref-registry` binary.
//! - **PubSub**: topics spanning nodes, whose subscribers are remote actors; dead subscribers are
//!   dropped.
//! - **Pool**: a pool over `ActorRef`s (round-robin and least-in-flight) that removes members
//!   whose connection is lost.
//!
//! None of them is implemented yet: they build on typed remote actors, which come after the
//! connection layer. Nothing here may reach into netref's internals.

/// The version of netref this crate is built against.
pub const NETREF_VERSION: &str = env!("CARGO_PKG_VERSION");
