#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// Hooks for netref's fuzz targets, behind the `fuzzing` feature: not part of the API, no
/// stability promised (see `fuzz/README.md`).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[path = "fuzzing.rs"]
pub mod __fuzz;
mod actor_thread;
mod async_result;
mod client;
mod config;
mod connection;
mod error;
mod forward;
mod hash;
mod hosting;
mod link;
mod netref;
mod object;
mod protocol;
mod reconnect;
mod remote_actor;
mod runtime;
mod server;
mod service;
mod session;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
mod transport;
mod value;

pub use async_result::AsyncResult;
pub use client::{connect, Connect, DEFAULT_CONNECT_TIMEOUT};
pub use config::{Config, Wire};
pub use connection::Connection;
pub use error::{kinds, Error, ProtocolError, RemoteError};
pub use link::{ConnInfo, ConnStats, Peer};
pub use netref::NetRef;
pub use object::{
    Access, AccessPolicy, Args, FromArgs, MethodFuture, NameSet, Object, ObjectBuilder, WeakObject, SAFE_ATTRS,
};
pub use protocol::{Frame, Handle};
pub use reconnect::{ConnectionEvent, ConnectionEvents, Reconnect, ReconnectPolicy, Reconnecting};
pub use remote_actor::{expose, ActorExport, ActorRef, Down, RemoteActor, RemoteMessage, Spawner, SPAWNER_EXPORT};
pub use runtime::{blocking::BlockingClient, Runtime};
pub use server::{serve_tcp, Authenticator, ListenAddr, Server, ServerBuilder};
pub use service::Service;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::{accept_tls, connect_tls, PeerCertificates, TlsClientConfig, TlsServerConfig};
pub use transport::{
    connect_pair, connect_pair_with, connect_stream, connect_stream_with, connect_tcp, connect_unix, from_tcp,
    from_tcp_with, ACCEPT_BACKOFF,
};
pub use value::{from_value, BigInt, ConvertError, Data, IdPack, InvalidBigInt, RefLabel, SharedBytes, Value, WireRef};
pub use value::{Ellipsis, FrozenSet, NotImplemented, Slice};

/// Converts any serde value to a [`Value`], the form arguments and results take on the wire.
/// Objects and netrefs inside it stay references. ([`dev::to_value`] is the same, generic
/// over the reference type.)
pub fn to_value<T: serde::Serialize + ?Sized>(value: &T) -> Result<Value, ConvertError> {
    value::to_value(value)
}

/// What library authors and tests need beyond the user's nouns: the native wire format (frames,
/// the codec, constants, limits), the RPyC 6 codec (`dev::rpyc`), one actix message per request
/// kind (`dev::messages`), and the serde machinery behind [`Value`]. A program that only
/// exposes and calls objects never needs it.
pub mod dev {
    pub use crate::{
        connection::messages,
        protocol::*,
        value::{deserialize_ref, serialize_ref, to_value, ValueDeserializer, ValueSerializer, REF_TOKEN},
    };
}

// FAILURE-SEMANTICS.md's examples compile and run as doctests, as the README's do.
#[cfg(doctest)]
#[doc = include_str!("../FAILURE-SEMANTICS.md")]
struct FailureSemanticsExamples;

/// The names most programs need: `use netref::prelude::*;`.
pub mod prelude {
    pub use crate::{
        expose, ActorRef, AsyncResult, Config, ConnectionEvent, Error, NetRef, Object, Peer, ReconnectPolicy,
        Reconnecting, RemoteActor, RemoteError, RemoteMessage, Runtime, Server, Service, Value,
    };
}
