//! [`connect`]: the one way a client connects, as a builder with defaults.
//!
//! `netref::connect("127.0.0.1:18812").await?` connects over TCP with the default settings;
//! options chain before the `.await`. The same builder reaches Unix sockets (`"unix:PATH"`) and,
//! with the `tls` feature, TLS (`Connect::tls`). It works from any caller: on an actix thread the connection lives
//! there, anywhere else (`#[tokio::main]`, a plain thread driving a future) on netref's default
//! runtime thread, started on first use.
//!
//! This module only chooses and starts a transport; it must never touch the protocol.

use std::{
    fmt,
    future::{Future, IntoFuture},
    pin::Pin,
    time::Duration,
};

#[cfg(feature = "tls")]
use crate::tls::TlsClientConfig;
use crate::{
    config::{Config, Wire},
    hosting,
    runtime::Runtime,
    service::Service,
    transport, Error, Peer,
};

/// How long [`connect`] waits by default for the transport and the server's `Hello`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts connecting to `addr`; `.await` the returned [`Connect`] for the [`Peer`].
///
/// `addr` is `"HOST:PORT"` (a name or an IPv4/IPv6 address: `"[::1]:18812"`), `":PORT"` for
/// the loopback address, or `"unix:PATH"` for a Unix socket. Defaults: [`Service::void`] (this
/// side exposes nothing), [`Config::default`], a connect timeout of
/// [`DEFAULT_CONNECT_TIMEOUT`], plain TCP.
///
/// ```no_run
/// # async fn demo() -> Result<(), netref::Error> {
/// use std::time::Duration;
/// use netref::prelude::*;
///
/// // The common case: defaults.
/// let peer = netref::connect("127.0.0.1:18812").await?;
/// let sum: i64 = peer.root().await?.call_method("add", (1, 2)).await?;
///
/// // Options chain before the `.await`.
/// let callbacks = Object::builder("demo.Client").method("ping", || "pong").build();
/// let peer = netref::connect("unix:/run/calc.sock")
///     .service(Service::shared(callbacks))
///     .config(Config::default().request_timeout(Some(Duration::from_secs(5))))
///     .timeout(Duration::from_secs(2))
///     .await?;
/// # Ok(()) }
/// ```
///
/// Where the connection lives: on the caller's thread when that thread runs an actix arbiter
/// (`#[actix_rt::main]`, `#[actix_rt::test]`, inside an actor), otherwise on netref's default
/// [`Runtime`] thread, so a `#[tokio::main]` program needs nothing else. [`Connect::runtime`]
/// picks a runtime of your own.
pub fn connect(addr: impl Into<String>) -> Connect {
    Connect {
        addr: addr.into(),
        service: Service::void(),
        config: Config::default(),
        timeout: DEFAULT_CONNECT_TIMEOUT,
        #[cfg(feature = "tls")]
        tls: None,
        #[cfg(feature = "tls")]
        server_name: None,
        runtime: None,
    }
}

/// A connection being set up: chain options, then `.await` it for the [`Peer`]. See [`connect`].
#[must_use = "a Connect does nothing until it is awaited"]
#[derive(Clone)]
pub struct Connect {
    addr: String,
    service: Service,
    config: Config,
    timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<TlsClientConfig>,
    #[cfg(feature = "tls")]
    server_name: Option<String>,
    runtime: Option<Runtime>,
}

impl fmt::Debug for Connect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("Connect");
        f.field("addr", &self.addr).field("timeout", &self.timeout);
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls.is_some()).field("server_name", &self.server_name);
        f.finish_non_exhaustive()
    }
}

impl Connect {
    /// What this side exposes to the server (for callbacks); default [`Service::void`].
    pub fn service(mut self, service: Service) -> Self {
        self.service = service;
        self
    }

    /// The connection's settings; default [`Config::default`].
    pub fn config(mut self, config: Config) -> Self {
        let wire = if self.config.wire == Wire::Native { config.wire } else { self.config.wire };
        self.config = config.wire(wire);
        self
    }

    /// Speaks RPyC 6's wire instead of netref's own: the server is a stock Python rpyc 6.0.x
    /// server (or a netref server built with `ServerBuilder::rpyc`), and the root is a
    /// [`NetRef`](crate::NetRef) to its service. Kept across a later [`config`](Connect::config).
    pub fn rpyc(mut self) -> Self {
        self.config = self.config.wire(Wire::Rpyc);
        self
    }

    /// How long to wait for the transport (and TLS handshake) and, unless
    /// [`Config::early_requests`] is on, the server's `Hello`; default
    /// [`DEFAULT_CONNECT_TIMEOUT`]. Past it the connect fails with [`Error::Timeout`].
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = limit;
        self
    }

    /// Connects over TLS (TCP only): the server's certificate must chain to one of `tls`'s
    /// roots and be valid for the server name — by default the host part of the address, or
    /// the one given with [`server_name`](Connect::server_name).
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: TlsClientConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The name the server's TLS certificate must be valid for (a DNS name or an IP address),
    /// when it is not the host part of the address.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// Starts the connection on `runtime` instead of where [`connect`] would choose.
    pub fn runtime(mut self, runtime: &Runtime) -> Self {
        self.runtime = Some(runtime.clone());
        self
    }

    /// The address as given.
    pub(crate) fn address(&self) -> &str {
        &self.addr
    }

    /// The default expiry of the connection's requests.
    pub(crate) fn request_timeout(&self) -> Option<Duration> {
        self.config.request_timeout
    }

    /// The runtime chosen with [`runtime`](Connect::runtime), if one was.
    pub(crate) fn chosen_runtime(&self) -> Option<Runtime> {
        self.runtime.clone()
    }

    /// The address as given, parsed into what to connect to.
    fn endpoint(&self) -> Result<Endpoint, Error> {
        if let Some(path) = self.addr.strip_prefix("unix:") {
            #[cfg(feature = "tls")]
            if self.tls.is_some() {
                return Err(Error::Io(format!("TLS is offered over TCP only, not to {}", self.addr)));
            }
            return Ok(Endpoint::Unix(path.to_owned()));
        }
        let addr = match self.addr.strip_prefix(':') {
            Some(port) => format!("127.0.0.1:{port}"),
            None => self.addr.clone(),
        };
        // The host is what precedes the last ':' (brackets of an IPv6 address removed).
        let host = match addr.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                host.trim_start_matches('[').trim_end_matches(']').to_owned()
            }
            _ => {
                return Err(Error::Io(format!(
                    "cannot connect to {:?}: expected HOST:PORT, :PORT or unix:PATH",
                    self.addr
                )))
            }
        };
        Ok(Endpoint::Tcp { addr, host })
    }

    /// Connects from the caller's thread, which must be one where actors start.
    pub(crate) async fn start(self) -> Result<Peer, Error> {
        let endpoint = self.endpoint()?;
        #[cfg(feature = "tls")]
        let Connect { service, config, timeout, tls, server_name, .. } = self;
        #[cfg(not(feature = "tls"))]
        let Connect { service, config, timeout, .. } = self;
        match endpoint {
            #[cfg(feature = "tls")]
            Endpoint::Tcp { addr, host } => match tls {
                None => transport::connect_tcp(addr, service, config, timeout).await,
                Some(tls) => {
                    let name = server_name.unwrap_or(host);
                    crate::tls::connect_tls(addr, &name, &tls, service, config, timeout).await
                }
            },
            #[cfg(not(feature = "tls"))]
            Endpoint::Tcp { addr, .. } => transport::connect_tcp(addr, service, config, timeout).await,
            #[cfg(unix)]
            Endpoint::Unix(path) => transport::connect_unix(path, service, config, timeout).await,
            #[cfg(not(unix))]
            Endpoint::Unix(path) => Err(Error::Io(format!("Unix sockets are not available here: unix:{path}"))),
        }
    }
}

/// What [`Connect`] reaches.
enum Endpoint {
    Tcp {
        addr: String,
        /// The default name a TLS server's certificate must be valid for.
        #[cfg_attr(not(feature = "tls"), allow(dead_code))]
        host: String,
    },
    Unix(String),
}

impl IntoFuture for Connect {
    type Output = Result<Peer, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<Peer, Error>> + Send + 'static>>;

    fn into_future(self) -> Self::IntoFuture {
        match self.runtime.clone() {
            Some(rt) if !rt.is_current() => Box::pin(async move { rt.spawn(move || self.start()).await? }),
            Some(_) => Box::pin(self.start()),
            None if hosting::on_actor_thread() => Box::pin(self.start()),
            None => Box::pin(async move {
                let rt = hosting::default_runtime()?;
                rt.spawn(move || self.start()).await?
            }),
        }
    }
}
