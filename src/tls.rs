//! TLS for netref connections: encrypt the byte stream and authenticate the ends with
//! certificates, using rustls with the `ring` provider.
//!
//! - A client ([`TlsClientConfig`], [`connect_tls`]) **always verifies the server**: its
//!   certificate chain must lead to one of the given roots and be valid for the server name.
//!   Unlike RPyC's `ssl_connect`, there is no "insecure" constructor and no way in this module
//!   to turn verification off; to reach a server with a self-signed certificate, trust that
//!   certificate as a root. A caller who really needs a custom verifier builds a
//!   `rustls::ClientConfig` and passes it to [`TlsClientConfig::from_rustls`], where the
//!   choice is visible in their own code.
//! - A server ([`TlsServerConfig`], [`accept_tls`]) presents a certificate chain and, with
//!   [`TlsServerConfig::with_client_auth`], requires and verifies a client certificate (mutual
//!   TLS). The verified client chain reaches the service as the connection's credentials:
//!   `peer.credentials::<PeerCertificates>()`.
//!
//! This module must never: fall back to plaintext, accept a server certificate it has not verified,
//! let a client without a valid certificate through a server that requires one, or need a
//! process-wide default crypto provider (every config is built with an explicit provider).
//! A failed handshake closes only that one connection and returns an error saying which side
//! refused which certificate.
//!
//! Like the other connection functions ([`connect_tcp`](crate::connect_tcp), …), the functions that start a connection
//! must run inside an actix system.
//!
//! Needs the cargo feature `tls` (on by default).

use std::{io, sync::Arc, time::Duration};

use rustls::{
    crypto::CryptoProvider,
    server::WebPkiClientVerifier,
    sign::{CertifiedKey, SingleCertAndKey},
    AlertDescription, ClientConfig, RootCertStore, ServerConfig,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::{TcpStream, ToSocketAddrs},
};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::{
    config::{Config, Wire},
    link::ConnInfo,
    service::Service,
    transport::connect_stream_with,
    Error, Peer,
};

/// The rustls version netref is built with, for [`TlsClientConfig::from_rustls`] and
/// [`TlsServerConfig::from_rustls`].
pub use rustls;
/// Certificate and key types (DER), and [`PemObject`] to read them from PEM text or files:
/// `CertificateDer::pem_file_iter(path)`, `PrivateKeyDer::from_pem_file(path)`.
pub use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

/// The error for a TLS failure (configuration or handshake). The message says what failed.
// Error::Io today; one place to change when a dedicated `Error::Tls` variant exists.
fn tls_error(message: impl Into<String>) -> Error {
    Error::Tls(message.into())
}

/// The crypto provider of every config this module builds: rustls's `ring` provider, passed
/// explicitly so that no process-wide default is needed. A `rustls::ClientConfig` or
/// `rustls::ServerConfig` built by hand for [`TlsClientConfig::from_rustls`] or
/// [`TlsServerConfig::from_rustls`] can use the same one:
/// `rustls::ClientConfig::builder_with_provider(netref::tls::crypto_provider())`.
///
/// The `ring` provider offers no post-quantum key exchange (rustls 0.23.48 deprecated its
/// constructor for that reason; it still works). netref keeps it because `aws-lc-rs`, the
/// provider that has one, builds a large C library. For post-quantum key exchange, build the
/// rustls config with the `aws-lc-rs` provider and pass it to `from_rustls`.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    // Deprecated from rustls 0.23.48 only for the missing post-quantum key exchange (above);
    // the allowance keeps a build against the newest rustls 0.23 free of warnings.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    Arc::new(provider)
}

/// A root store holding `roots`; at least one root is required, each must parse.
fn root_store(roots: Vec<CertificateDer<'static>>, what: &str) -> Result<RootCertStore, Error> {
    if roots.is_empty() {
        return Err(tls_error(format!("no root certificates given: {what} needs at least one trusted root")));
    }
    let mut store = RootCertStore::empty();
    for (i, root) in roots.into_iter().enumerate() {
        store.add(root).map_err(|e| tls_error(format!("root certificate #{i} is not a usable trust anchor: {e}")))?;
    }
    Ok(store)
}

/// The client certificate chain a server verified during the handshake, end-entity
/// certificate first. A server with client authentication stores it in the connection's
/// [`ConnInfo::credentials`]; a service reads it with
/// [`peer.credentials::<PeerCertificates>()`](crate::Peer::credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificates(pub Vec<CertificateDer<'static>>);

impl PeerCertificates {
    /// The peer's own (end-entity) certificate.
    pub fn end_entity(&self) -> Option<&CertificateDer<'static>> {
        self.0.first()
    }
}

/// A server's TLS settings: its certificate chain and key, and optionally the roots client
/// certificates must chain to. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsServerConfig {
    config: Arc<ServerConfig>,
    /// Whether `config` was built by [`TlsServerConfig::new`] (so it can be rebuilt with client
    /// authentication) rather than handed in through [`TlsServerConfig::from_rustls`].
    built_here: bool,
}

impl TlsServerConfig {
    /// A server presenting `cert_chain` (end-entity certificate first) with its private `key`,
    /// without client authentication. TLS 1.2 and 1.3, rustls's safe defaults.
    pub fn new(cert_chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<Self, Error> {
        if cert_chain.is_empty() {
            return Err(tls_error("the server certificate chain is empty"));
        }
        let config = ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(format!("cannot set up TLS protocol versions: {e}")))?
            .with_no_client_auth()
            .with_single_cert(cert_chain, key)
            .map_err(|e| tls_error(format!("the server certificate or key cannot be used: {e}")))?;
        Ok(TlsServerConfig { config: Arc::new(config), built_here: true })
    }

    /// Mutual TLS: every client must present a certificate chaining to one of `roots`;
    /// a client without one, or with another, fails the handshake.
    ///
    /// Works on configs made by [`new`](TlsServerConfig::new). A config from
    /// [`from_rustls`](TlsServerConfig::from_rustls) is refused with an error (rebuilding it
    /// could lose its settings): set a client certificate verifier on the rustls config instead.
    pub fn with_client_auth(self, roots: Vec<CertificateDer<'static>>) -> Result<Self, Error> {
        if !self.built_here {
            return Err(tls_error(
                "with_client_auth cannot change a config given through TlsServerConfig::from_rustls; \
                 build the rustls ServerConfig with a client certificate verifier (WebPkiClientVerifier) instead",
            ));
        }
        let provider = crypto_provider();
        let roots = Arc::new(root_store(roots, "client authentication")?);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| tls_error(format!("cannot set up client certificate verification: {e}")))?;
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(format!("cannot set up TLS protocol versions: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.config.cert_resolver.clone());
        Ok(TlsServerConfig { config: Arc::new(config), built_here: true })
    }

    /// A server using a rustls config as it is (its own verifier, versions, ALPN, …). The
    /// client certificate chain, when the config verifies one, still reaches the service as
    /// [`PeerCertificates`].
    pub fn from_rustls(config: Arc<ServerConfig>) -> Self {
        TlsServerConfig { config, built_here: false }
    }

    /// The rustls config in use.
    pub fn rustls_config(&self) -> &Arc<ServerConfig> {
        &self.config
    }

    /// Runs the server side of the TLS handshake on an accepted socket (sets `TCP_NODELAY`).
    /// Returns the encrypted stream and the client's certificate chain, if it presented one
    /// (with client authentication on, it was verified). No timeout of its own: wrap it.
    pub(crate) async fn accept(
        &self,
        stream: TcpStream,
    ) -> Result<(tokio_rustls::server::TlsStream<TcpStream>, Option<PeerCertificates>), Error> {
        let _ = stream.set_nodelay(true);
        let addr = stream.peer_addr().map_or_else(|_| "an unknown address".to_owned(), |a| a.to_string());
        let tls = TlsAcceptor::from(self.config.clone())
            .accept(stream)
            .await
            .map_err(|e| tls_error(format!("TLS handshake with the client at {addr} failed: {}", server_side(&e))))?;
        let certs = tls.get_ref().1.peer_certificates().map(|chain| PeerCertificates(chain.to_vec()));
        Ok((tls, certs))
    }
}

/// A client's TLS settings: the roots the server's certificate must chain to, and optionally
/// a client certificate for servers that require one. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TlsClientConfig {
    config: Arc<ClientConfig>,
}

impl TlsClientConfig {
    /// A client trusting servers whose certificate chains to one of `roots` (at least one) and
    /// is valid for the name given to [`connect_tls`]. TLS 1.2 and 1.3, rustls's safe defaults;
    /// no client certificate.
    pub fn new(roots: Vec<CertificateDer<'static>>) -> Result<Self, Error> {
        let roots = root_store(roots, "a TLS client (it always verifies the server)")?;
        let config = ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(format!("cannot set up TLS protocol versions: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(TlsClientConfig { config: Arc::new(config) })
    }

    /// Presents `cert_chain` (end-entity certificate first) with its private `key` to servers
    /// that ask for a client certificate. Server verification is unchanged.
    pub fn with_client_cert(
        self,
        cert_chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, Error> {
        if cert_chain.is_empty() {
            return Err(tls_error("the client certificate chain is empty"));
        }
        let mut config = ClientConfig::clone(&self.config);
        let certified = CertifiedKey::from_der(cert_chain, key, config.crypto_provider())
            .map_err(|e| tls_error(format!("the client certificate or key cannot be used: {e}")))?;
        config.client_auth_cert_resolver = Arc::new(SingleCertAndKey::from(certified));
        Ok(TlsClientConfig { config: Arc::new(config) })
    }

    /// A client using a rustls config as it is. Whatever server verification that config does
    /// is the caller's explicit choice.
    pub fn from_rustls(config: Arc<ClientConfig>) -> Self {
        TlsClientConfig { config }
    }

    /// The rustls config in use.
    pub fn rustls_config(&self) -> &Arc<ClientConfig> {
        &self.config
    }
}

/// Connects to a netref server over TLS, exposing `service` to it (for callbacks).
///
/// Within `connect_timeout` (else [`Error::Timeout`]): the TCP connection (`TCP_NODELAY`, and
/// keepalive and `TCP_USER_TIMEOUT` as [`Config::peer_timeout`] asks, as for plain TCP), the
/// TLS handshake verifying that the server's certificate chains to a trusted root and is valid
/// for `server_name` (a DNS name or an IP address), and the first bytes from the server. Waiting
/// for those bytes (the server's `Hello`, sent at once) makes a server that refuses this
/// client's certificate fail here: under TLS 1.3 the client finishes its handshake before the
/// server has checked the client certificate and can learn of the refusal only from the server's
/// next message.
///
/// On RPyC's wire ([`Wire::Rpyc`] in `config`) the server says nothing
/// until it is asked, so the connection is returned right after the handshake; a refused
/// client certificate then fails the first request instead.
///
/// ```no_run
/// # async fn demo(ca: netref::tls::CertificateDer<'static>) -> Result<(), netref::Error> {
/// use std::time::Duration;
/// use netref::{tls::{connect_tls, TlsClientConfig}, Config, Service};
///
/// let tls = TlsClientConfig::new(vec![ca])?;
/// let peer = connect_tls("calc.example:18812", "calc.example", &tls, Service::void(), Config::default(),
///     Duration::from_secs(5)).await?;
/// let sum: i64 = peer.root().await?.call_method("add", (1, 2)).await?;
/// # Ok(()) }
/// ```
pub async fn connect_tls(
    addr: impl ToSocketAddrs,
    server_name: &str,
    tls: &TlsClientConfig,
    service: Service,
    config: Config,
    connect_timeout: Duration,
) -> Result<Peer, Error> {
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| tls_error(format!("{server_name:?} is not a valid TLS server name: {e}")))?;
    let connector = TlsConnector::from(tls.config.clone());
    let server_speaks_first = config.wire == Wire::Native;
    let (stream, peer_addr) = tokio::time::timeout(connect_timeout, async {
        let tcp = TcpStream::connect(addr).await?;
        crate::transport::apply_tcp_options(&tcp, &config)?;
        let peer_addr = tcp.peer_addr().ok().map(|a| a.to_string());
        let shown = peer_addr.as_deref().unwrap_or("the server");
        let failed = |e: &io::Error| {
            tls_error(format!("TLS handshake with {shown} ({server_name}) failed: {}", client_side(e, server_name)))
        };
        let tls_stream = connector.connect(name, tcp).await.map_err(|e| failed(&e))?;
        let mut buffered = BufReader::new(tls_stream);
        if !server_speaks_first {
            return Ok((buffered, peer_addr));
        }
        match buffered.fill_buf().await {
            Ok([]) => Err(tls_error(format!(
                "TLS connection to {shown} ({server_name}): the server closed the connection right after the handshake"
            ))),
            Ok(_) => Ok((buffered, peer_addr)),
            Err(e) => Err(failed(&e)),
        }
    })
    .await
    .map_err(|_| Error::Timeout(connect_timeout))??;
    let label = format!("tls:{}", peer_addr.as_deref().unwrap_or(server_name));
    Ok(connect_stream_with(stream, service, config, ConnInfo { label, peer_addr, credentials: None }))
}

/// Serves `service` on an accepted TCP socket over TLS: runs the server side of the handshake
/// within `handshake_timeout` (else [`Error::Timeout`]), then starts the connection with the
/// client's certificate chain, if any, as its credentials ([`PeerCertificates`]).
///
/// For servers without their own accept loop: accept a socket, then call this (in a spawned
/// task, so a slow handshake does not hold up the next client).
pub async fn accept_tls(
    stream: TcpStream,
    tls: &TlsServerConfig,
    service: Service,
    config: Config,
    handshake_timeout: Duration,
) -> Result<Peer, Error> {
    crate::transport::apply_tcp_options(&stream, &config)?;
    let peer_addr = stream.peer_addr().ok().map(|a| a.to_string());
    let (stream, certs) = tokio::time::timeout(handshake_timeout, tls.accept(stream))
        .await
        .map_err(|_| Error::Timeout(handshake_timeout))??;
    let label = format!("tls:{}", peer_addr.as_deref().unwrap_or("client"));
    let credentials = certs.map(|c| Arc::new(c) as Arc<dyn std::any::Any + Send + Sync>);
    Ok(connect_stream_with(stream, service, config, ConnInfo { label, peer_addr, credentials }))
}

/// The rustls error inside an I/O error from tokio-rustls, if there is one.
fn rustls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// Whether `alert` is one a peer sends when it refuses a certificate.
fn is_certificate_alert(alert: &AlertDescription) -> bool {
    matches!(
        alert,
        AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnknownCA
            | AlertDescription::AccessDenied
    )
}

/// Why a certificate was refused, in words, with rustls's own reason.
fn certificate_reason(reason: &rustls::CertificateError) -> String {
    match reason {
        rustls::CertificateError::UnknownIssuer => {
            format!("it is not signed by a trusted root ({reason})")
        }
        _ => reason.to_string(),
    }
}

/// Why a client-side handshake failed, in words.
fn client_side(e: &io::Error, server_name: &str) -> String {
    match rustls_error(e) {
        Some(rustls::Error::InvalidCertificate(reason)) => {
            format!("the server's certificate was not trusted for {server_name:?}: {}", certificate_reason(reason))
        }
        Some(rustls::Error::NoCertificatesPresented) => "the server presented no certificate".to_owned(),
        Some(rustls::Error::AlertReceived(AlertDescription::CertificateRequired)) => {
            "the server requires a client certificate and this client has none \
             (set one with TlsClientConfig::with_client_cert)"
                .to_owned()
        }
        Some(rustls::Error::AlertReceived(alert)) if is_certificate_alert(alert) => {
            format!("the server did not accept this client's certificate (it sent the alert {alert:?})")
        }
        Some(rustls::Error::AlertReceived(alert)) => format!("the server refused the handshake (alert {alert:?})"),
        Some(other @ rustls::Error::InvalidMessage(_)) => {
            format!("the server does not speak TLS (is it a plaintext server?): {other}")
        }
        Some(other) => other.to_string(),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the server closed the connection during the handshake (is it a TLS server?)".to_owned()
        }
        None => e.to_string(),
    }
}

/// Why a server-side handshake failed, in words.
fn server_side(e: &io::Error) -> String {
    match rustls_error(e) {
        Some(rustls::Error::InvalidCertificate(reason)) => {
            format!("the client's certificate was not trusted: {}", certificate_reason(reason))
        }
        Some(rustls::Error::NoCertificatesPresented) => {
            "the client presented no certificate, and this server requires one".to_owned()
        }
        Some(rustls::Error::AlertReceived(alert)) if is_certificate_alert(alert) => {
            format!("the client did not trust this server's certificate (it sent the alert {alert:?})")
        }
        Some(rustls::Error::AlertReceived(alert)) => format!("the client aborted the handshake (alert {alert:?})"),
        Some(other) => other.to_string(),
        None if e.kind() == io::ErrorKind::UnexpectedEof => {
            "the client closed the connection during the handshake".to_owned()
        }
        None => e.to_string(),
    }
}
