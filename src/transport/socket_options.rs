//! The options every TCP socket netref makes or accepts gets before its first byte:
//! `TCP_NODELAY`, and on Linux and Android TCP keepalive and `TCP_USER_TIMEOUT` matched to the
//! connection's [`peer_timeout`](crate::Config::peer_timeout), so that the kernel never holds a
//! dead connection longer than netref's own liveness would.
//!
//! With a `peer_timeout` of `T`: `TCP_USER_TIMEOUT` is `T` (data the peer's host has not
//! acknowledged for `T` ends the connection), and keepalive probes start after `T / 3` of
//! silence, every `T / 3` (whole seconds, at least one: the kernel counts them in seconds).
//! Without one ([`TcpLiveness::WITHOUT_PEER_TIMEOUT`]) a vanished host is still found out in
//! about two minutes, while a live host whose process is paused or busy for long is not (its
//! kernel answers the probes and acknowledges the data).
//!
//! It must never read or write the socket, nor decide anything about a connection's state:
//! only the kernel acts on these options.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::{config::Config, Error};

/// The kernel's part of detecting a lost peer on one TCP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpLiveness {
    /// Silence before the first keepalive probe.
    pub(crate) keepalive_idle: Duration,
    /// Time between probes.
    pub(crate) keepalive_interval: Duration,
    /// Probes unanswered before the kernel gives up (`TCP_USER_TIMEOUT`, when set, decides
    /// first).
    pub(crate) keepalive_probes: u32,
    /// How long sent data (and keepalive probes) may stay unacknowledged.
    pub(crate) user_timeout: Duration,
}

impl TcpLiveness {
    /// With `peer_timeout` `None`: probes after 60 s of silence, every 10 s, 6 of them; data
    /// unacknowledged for 120 s ends the connection.
    pub(crate) const WITHOUT_PEER_TIMEOUT: TcpLiveness = TcpLiveness {
        keepalive_idle: Duration::from_secs(60),
        keepalive_interval: Duration::from_secs(10),
        keepalive_probes: 6,
        user_timeout: Duration::from_secs(120),
    };

    /// What a connection with `peer_timeout` gets.
    pub(crate) fn for_peer_timeout(peer_timeout: Option<Duration>) -> TcpLiveness {
        let Some(timeout) = peer_timeout else { return Self::WITHOUT_PEER_TIMEOUT };
        // Whole seconds, rounded up, at least one (the kernel's unit for keepalive timers).
        let third = (timeout / 3).as_millis().div_ceil(1000).max(1);
        let third = Duration::from_secs(u64::try_from(third).unwrap_or(u64::MAX / 4));
        TcpLiveness {
            keepalive_idle: third,
            keepalive_interval: third,
            keepalive_probes: 2,
            user_timeout: timeout.max(Duration::from_millis(1)),
        }
    }
}

/// Sets `TCP_NODELAY` and (Linux, Android) keepalive and `TCP_USER_TIMEOUT` on `stream` as
/// `config` asks.
pub(crate) fn apply(stream: &TcpStream, config: &Config) -> Result<(), Error> {
    stream.set_nodelay(true).map_err(|e| Error::Io(format!("cannot set TCP_NODELAY: {e}")))?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let live = TcpLiveness::for_peer_timeout(config.peer_timeout);
        let socket = socket2::SockRef::from(stream);
        let keepalive = socket2::TcpKeepalive::new()
            .with_time(live.keepalive_idle)
            .with_interval(live.keepalive_interval)
            .with_retries(live.keepalive_probes);
        socket.set_tcp_keepalive(&keepalive).map_err(|e| Error::Io(format!("cannot set TCP keepalive: {e}")))?;
        socket
            .set_tcp_user_timeout(Some(live.user_timeout))
            .map_err(|e| Error::Io(format!("cannot set TCP_USER_TIMEOUT: {e}")))?;
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = config;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_peer_timeout_gives_probes_every_five_seconds_and_a_fifteen_second_user_timeout() {
        let live = TcpLiveness::for_peer_timeout(Config::default().peer_timeout);
        assert_eq!(live.keepalive_idle, Duration::from_secs(5));
        assert_eq!(live.keepalive_interval, Duration::from_secs(5));
        assert_eq!(live.keepalive_probes, 2);
        assert_eq!(live.user_timeout, Duration::from_secs(15));
        // Idle plus the probes: the kernel gives up when netref would.
        let kernel = live.keepalive_idle + live.keepalive_interval * live.keepalive_probes;
        assert_eq!(kernel, Duration::from_secs(15));
    }

    #[test]
    fn short_timeouts_round_keepalive_up_to_whole_seconds() {
        let live = TcpLiveness::for_peer_timeout(Some(Duration::from_millis(150)));
        assert_eq!(live.keepalive_idle, Duration::from_secs(1));
        assert_eq!(live.keepalive_interval, Duration::from_secs(1));
        assert_eq!(live.user_timeout, Duration::from_millis(150));
        let live = TcpLiveness::for_peer_timeout(Some(Duration::from_secs(10)));
        assert_eq!(live.keepalive_idle, Duration::from_secs(4));
    }

    #[test]
    fn without_a_peer_timeout_a_vanished_host_is_found_in_about_two_minutes() {
        let live = TcpLiveness::for_peer_timeout(None);
        assert_eq!(live, TcpLiveness::WITHOUT_PEER_TIMEOUT);
        let kernel = live.keepalive_idle + live.keepalive_interval * live.keepalive_probes;
        assert_eq!(kernel, Duration::from_secs(120));
        assert_eq!(live.user_timeout, Duration::from_secs(120));
    }
}
