//! Transports: an in-memory pair (deterministic tests), TCP, and any `AsyncRead + AsyncWrite`.
//!
//! [`connect`](crate::connect) is the usual way in; these are the building blocks under it.
//! Every function here starts a connection actor: on the caller's thread when it runs an actix
//! arbiter (`#[actix_rt::main]`, `#[actix_rt::test]`, inside an actor), otherwise on netref's
//! default runtime thread (see [`Runtime`](crate::Runtime)), so they work from
//! `#[tokio::main]` and from plain threads as well. [`Runtime::connect_tcp`] and
//! [`Runtime::connect_pair`] start them on a given runtime instead.
//!
//! It must never name the server (`server`), which accepts connections through it: serving a
//! listener is the server's ([`serve_tcp`](crate::serve_tcp)).

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpStream, ToSocketAddrs},
};

mod socket_options;

pub(crate) use socket_options::apply as apply_tcp_options;

use crate::{
    config::{Config, Wire},
    connection::{BoxWrite, Connection, FrameAligned},
    hosting,
    link::ConnInfo,
    runtime::Runtime,
    service::Service,
    Error, Peer,
};

/// Bytes buffered inside an in-memory pair, per direction.
const PAIR_BUFFER: usize = 256 * 1024;

/// Connects over any byte stream (a TLS stream, a pipe, …) and returns the connection.
///
/// Off an actix thread the connection is started on netref's default runtime thread, which
/// then polls `stream`: a stream tied to the caller's tokio runtime (a tokio socket) keeps
/// working there while that runtime runs.
pub fn connect_stream<S>(stream: S, service: Service, config: Config) -> Peer
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    connect_stream_with(stream, service, config, ConnInfo::labelled("stream"))
}

/// [`connect_stream`] with what is known about the other end (label, address, credentials).
pub fn connect_stream_with<S>(stream: S, service: Service, config: Config, info: ConnInfo) -> Peer
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = Arc::new(config);
    expect_started(hosting::start_actors(move || start_stream(stream, service, config, info)))
}

/// The result of starting actors on the default runtime: that runtime is started on first use
/// and never stopped, so only a failure to start its thread at all ends up here.
fn expect_started<T>(started: Result<T, Error>) -> T {
    started.unwrap_or_else(|e| panic!("netref cannot start its default runtime thread: {e}"))
}

/// [`connect_stream_with`] with a shared configuration (accept loops).
///
/// Over RPyC's wire the stream (TLS, or one of the caller's) is written one frame at a time
/// ([`FrameAligned`]): a stock Python peer reading a TLS stream would not see a frame whose
/// start shared a record with the end of the one before.
pub(crate) fn start_stream<S>(stream: S, service: Service, config: Arc<Config>, info: ConnInfo) -> Peer
where
    S: AsyncRead + AsyncWrite + Unpin + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let writer: BoxWrite = match config.wire {
        Wire::Native => Box::new(writer),
        Wire::Rpyc => Box::new(FrameAligned::new(writer)),
    };
    Connection::start(Box::new(reader), writer, service, config, info)
}

/// Two connected peers in this process over an in-memory pipe: `(a, b)`, where `a` serves
/// `service_a` to `b` and `b` serves `service_b` to `a`.
pub fn connect_pair(service_a: Service, service_b: Service) -> (Peer, Peer) {
    connect_pair_with(service_a, Config::default(), service_b, Config::default())
}

/// [`connect_pair`] with a configuration for each side.
pub fn connect_pair_with(service_a: Service, config_a: Config, service_b: Service, config_b: Config) -> (Peer, Peer) {
    expect_started(hosting::start_actors(move || start_pair(service_a, config_a, service_b, config_b)))
}

/// [`connect_pair_with`] on the current (actix) thread.
fn start_pair(service_a: Service, config_a: Config, service_b: Service, config_b: Config) -> (Peer, Peer) {
    let (left, right) = tokio::io::duplex(PAIR_BUFFER);
    let (lr, lw) = tokio::io::split(left);
    let (rr, rw) = tokio::io::split(right);
    let a = Connection::start(Box::new(lr), Box::new(lw), service_a, Arc::new(config_a), ConnInfo::labelled("pair-a"));
    let b = Connection::start(Box::new(rr), Box::new(rw), service_b, Arc::new(config_b), ConnInfo::labelled("pair-b"));
    (a, b)
}

/// Starts a connection over an accepted or connected TCP socket. Sets `TCP_NODELAY` and, on
/// Linux and Android, TCP keepalive and `TCP_USER_TIMEOUT` matched to `config`'s
/// [`peer_timeout`](Config::peer_timeout). Off an actix thread the socket moves to netref's
/// default runtime thread.
pub fn from_tcp(stream: TcpStream, service: Service, config: Config) -> Result<Peer, Error> {
    let config = Arc::new(config);
    if hosting::on_actor_thread() {
        return start_tcp(stream, None, service, config);
    }
    let peer = stream.peer_addr().ok();
    let stream = stream.into_std()?;
    hosting::start_actors(move || start_tcp(TcpStream::from_std(stream)?, peer, service, config))?
}

/// [`from_tcp`] with a shared configuration (accept loops) and, when known, the peer's address
/// (saves asking the socket).
pub(crate) fn start_tcp(
    stream: TcpStream,
    peer: Option<SocketAddr>,
    service: Service,
    config: Arc<Config>,
) -> Result<Peer, Error> {
    let peer_addr = peer.or_else(|| stream.peer_addr().ok()).map(|a| addr_text(&a));
    let info = ConnInfo { label: peer_addr.clone().unwrap_or_else(|| "tcp".into()), peer_addr, credentials: None };
    start_tcp_with(stream, service, config, info)
}

/// `addr` as its `Display` writes it. An IPv4 address is written digit by digit: through
/// `core::fmt` it costs every connection about as much as a quarter of its protocol work.
pub(crate) fn addr_text(addr: &SocketAddr) -> String {
    fn push_decimal(out: &mut String, mut n: u32) {
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for &d in &digits[at..] {
            out.push(char::from(d));
        }
    }
    match addr {
        SocketAddr::V4(v4) => {
            let mut out = String::with_capacity(21);
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_decimal(&mut out, u32::from(octet));
            }
            out.push(':');
            push_decimal(&mut out, u32::from(v4.port()));
            out
        }
        SocketAddr::V6(_) => addr.to_string(),
    }
}

/// [`from_tcp`] with what is known about the other end.
pub fn from_tcp_with(stream: TcpStream, service: Service, config: Config, info: ConnInfo) -> Result<Peer, Error> {
    let config = Arc::new(config);
    if hosting::on_actor_thread() {
        return start_tcp_with(stream, service, config, info);
    }
    let stream = stream.into_std()?;
    hosting::start_actors(move || start_tcp_with(TcpStream::from_std(stream)?, service, config, info))?
}

/// [`from_tcp_with`] with a shared configuration (accept loops).
pub(crate) fn start_tcp_with(
    stream: TcpStream,
    service: Service,
    config: Arc<Config>,
    info: ConnInfo,
) -> Result<Peer, Error> {
    apply_tcp_options(&stream, &config)?;
    let (reader, writer) = stream.into_split();
    Ok(Connection::start(Box::new(reader), Box::new(writer), service, config, info))
}

/// Starts a connection over a connected or accepted Unix socket (its halves owned apart, as a
/// TCP socket's are).
#[cfg(unix)]
pub(crate) fn start_unix(
    stream: tokio::net::UnixStream,
    service: Service,
    config: Arc<Config>,
    info: ConnInfo,
) -> Peer {
    let (reader, writer) = stream.into_split();
    Connection::start(Box::new(reader), Box::new(writer), service, config, info)
}

/// Connects to a TCP address, exposing `service` to the server (for callbacks), within
/// `connect_timeout`. [`connect`](crate::connect) is the same with defaults and options.
pub async fn connect_tcp(
    addr: impl ToSocketAddrs,
    service: Service,
    config: Config,
    connect_timeout: Duration,
) -> Result<Peer, Error> {
    if hosting::on_actor_thread() {
        return connect_tcp_here(addr, service, config, connect_timeout).await;
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(addr).await?.collect();
    hosting::run_on_actor_thread(
        move || async move { connect_tcp_here(&addrs[..], service, config, connect_timeout).await },
    )
    .await
}

/// [`connect_tcp`] with the connection on this (actix) thread.
pub(crate) async fn connect_tcp_here(
    addr: impl ToSocketAddrs,
    service: Service,
    config: Config,
    connect_timeout: Duration,
) -> Result<Peer, Error> {
    let early = config.early_requests;
    connect_within(connect_timeout, early, async move {
        let (stream, peer) = connect_any(addr).await?;
        start_tcp(stream, Some(peer), service, Arc::new(config))
    })
    .await
}

/// Connects to the first of `addr`'s addresses that accepts, as `TcpStream::connect` does, and
/// says which one it was.
async fn connect_any(addr: impl ToSocketAddrs) -> Result<(TcpStream, SocketAddr), Error> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        match TcpStream::connect(a).await {
            Ok(stream) => return Ok((stream, a)),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => e.into(),
        None => Error::Io("the address resolved to no address to connect to".into()),
    })
}

/// Runs `start` (connect and start the connection) and, unless `early`, waits for the peer's
/// `Hello`, all within `limit` — one timer for the whole, since registering a timer can cost
/// the runtime a wake-up. A returned connection is live and (unless `early`) speaks our
/// protocol version; one whose `Hello` did not come in time is closed.
async fn connect_within<F>(limit: Duration, early: bool, start: F) -> Result<Peer, Error>
where
    F: std::future::Future<Output = Result<Peer, Error>>,
{
    let mut started = None;
    let attempt = async {
        let peer = start.await?;
        started = Some(peer.clone());
        if !early {
            peer.ready().await?;
        }
        Ok(peer)
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => {
            if let Some(peer) = started {
                peer.start_close("no Hello from the server in time");
            }
            Err(Error::Timeout(limit))
        }
    }
}

/// How long an accept loop pauses after an accept failed for want of a resource (file
/// descriptors, memory): such a failure repeats until something is freed, and retrying at once
/// would spin the arbiter's thread meanwhile.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Connects to a Unix socket at `path`, exposing `service` to the server, within
/// `connect_timeout`.
#[cfg(unix)]
pub async fn connect_unix(
    path: impl AsRef<std::path::Path>,
    service: Service,
    config: Config,
    connect_timeout: Duration,
) -> Result<Peer, Error> {
    if !hosting::on_actor_thread() {
        let path = path.as_ref().to_path_buf();
        return hosting::run_on_actor_thread(move || async move {
            connect_unix_here(&path, service, config, connect_timeout).await
        })
        .await;
    }
    connect_unix_here(path.as_ref(), service, config, connect_timeout).await
}

/// [`connect_unix`] with the connection on this (actix) thread.
#[cfg(unix)]
async fn connect_unix_here(
    path: &std::path::Path,
    service: Service,
    config: Config,
    connect_timeout: Duration,
) -> Result<Peer, Error> {
    let early = config.early_requests;
    connect_within(connect_timeout, early, async move {
        let stream = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|e| Error::Io(format!("cannot connect to {}: {e}", path.display())))?;
        let info = ConnInfo::labelled(format!("unix:{}", path.display()));
        Ok(start_unix(stream, service, Arc::new(config), info))
    })
    .await
}

/// Connections on a [`Runtime`]'s thread, listed for its shutdown.
impl Runtime {
    /// Connects to a TCP address from the runtime thread, exposing `service` to the server (for
    /// callbacks), within `connect_timeout`. The returned future is `Send`.
    pub fn connect_tcp(
        &self,
        addr: impl tokio::net::ToSocketAddrs + Send + 'static,
        service: Service,
        config: Config,
        connect_timeout: Duration,
    ) -> impl Future<Output = Result<Peer, Error>> + Send + 'static {
        let peers = self.peers();
        let started = self.spawn(move || async move {
            let peer = connect_tcp(addr, service, config, connect_timeout).await?;
            peers.add(&peer);
            Ok(peer)
        });
        async move { started.await? }
    }

    /// Two connected peers over an in-memory pipe, living on the runtime thread: `(a, b)`,
    /// where `a` serves `service_a` to `b` and `b` serves `service_b` to `a`.
    pub fn connect_pair(
        &self,
        service_a: Service,
        service_b: Service,
    ) -> impl Future<Output = Result<(Peer, Peer), Error>> + Send + 'static {
        self.connect_pair_with(service_a, Config::default(), service_b, Config::default())
    }

    /// [`connect_pair`](Runtime::connect_pair) with a configuration for each side.
    pub fn connect_pair_with(
        &self,
        service_a: Service,
        config_a: Config,
        service_b: Service,
        config_b: Config,
    ) -> impl Future<Output = Result<(Peer, Peer), Error>> + Send + 'static {
        let peers = self.peers();
        self.spawn(move || async move {
            let (a, b) = connect_pair_with(service_a, config_a, service_b, config_b);
            peers.add(&a);
            peers.add(&b);
            (a, b)
        })
    }
}

#[cfg(test)]
mod addr_text_tests {
    use std::net::SocketAddr;

    use super::addr_text;

    #[test]
    fn addresses_read_as_their_display_writes_them() {
        for text in
            ["127.0.0.1:0", "0.0.0.0:65535", "255.255.255.255:80", "10.0.20.3:9000", "[::1]:7", "[fe80::1%2]:443"]
        {
            let addr: SocketAddr = text.parse().unwrap();
            assert_eq!(addr_text(&addr), addr.to_string(), "{text}");
        }
    }
}
