#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod async_result;
mod client;
pub mod config;
pub mod connection;
pub mod error;
mod hash;
mod hosting;
pub mod netref;
pub mod object;
pub mod protocol;
pub mod remote_actor;
pub mod runtime;
pub mod server;
pub mod service;
mod session;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub mod tls;
pub mod transport;
pub mod value;

pub use async_result::AsyncResult;
pub use client::{connect, Connect, DEFAULT_CONNECT_TIMEOUT};
pub use config::Config;
pub use connection::{ConnInfo, ConnStats, Connection, Peer};
pub use error::{Error, ProtocolError, RemoteError};
pub use netref::NetRef;
pub use object::{AccessPolicy, NameSet, Object, ObjectBuilder};
pub use protocol::{Frame, Handle};
pub use remote_actor::{expose, ActorRef, RemoteActor, RemoteMessage, Spawner};
pub use runtime::{blocking::BlockingClient, Runtime};
pub use server::{ListenAddr, Server, ServerBuilder};
pub use service::Service;
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::{accept_tls, connect_tls, PeerCertificates, TlsClientConfig, TlsServerConfig};
pub use transport::{
    connect_pair, connect_pair_with, connect_stream, connect_stream_with, connect_tcp, connect_unix, from_tcp,
    from_tcp_with, serve_tcp, ACCEPT_BACKOFF,
};
pub use value::{from_value, BigInt, ConvertError, Data, IdPack, RefLabel, SharedBytes, Value, WireRef};
pub use value::{Ellipsis, FrozenSet, NotImplemented, Slice};

/// Converts any serde value to a [`Value`], the form arguments and results take on the wire.
/// Objects and netrefs inside it stay references. (`netref::value::to_value` is the same,
/// generic over the reference type.)
pub fn to_value<T: serde::Serialize + ?Sized>(value: &T) -> Result<Value, ConvertError> {
    value::to_value(value)
}

/// The names most programs need: `use netref::prelude::*;`.
pub mod prelude {
    pub use crate::{
        expose, ActorRef, AsyncResult, Config, Error, NetRef, Object, Peer, RemoteActor, RemoteError, RemoteMessage,
        Runtime, Server, Service, Value,
    };
}
