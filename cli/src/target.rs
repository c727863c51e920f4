//! Reaching the service the command line names: the address (or a registry lookup), TLS
//! material from PEM files, the wire dialect, and dotted attribute paths from the root.
//!
//! This module must never print; it returns a [`Failure`] that says what it was doing.

use std::path::Path;

use netref::{
    tls::{CertificateDer, PemObject, PrivateKeyDer, TlsClientConfig},
    Config, NetRef, Peer, Value,
};

use crate::{failure::Failure, ConnectOptions};

/// Connects to `addr` (or, with `--registry`, to the service named `addr`) as `opts` say.
pub(crate) async fn connect(opts: &ConnectOptions, addr: &str) -> Result<Peer, Failure> {
    let addr = match &opts.registry {
        Some(url) => discover(url, addr, opts).await?,
        None => addr.to_owned(),
    };
    let mut connect = netref::connect(addr.clone())
        .timeout(opts.timeout)
        .config(Config::default().request_timeout(Some(opts.timeout)));
    if opts.rpyc {
        connect = connect.rpyc();
    }
    if opts.tls || opts.ca.is_some() {
        connect = connect.tls(tls_config(opts)?);
        if let Some(name) = &opts.server_name {
            connect = connect.server_name(name.clone());
        }
    } else if opts.cert.is_some() || opts.server_name.is_some() {
        return Err(Failure::Usage("--cert, --key and --server-name need --tls".into()));
    }
    connect.await.map_err(Failure::netref(format!("connecting to {addr}")))
}

/// The first live address the registry at `url` (`netref://HOST:PORT`) holds for `name`.
async fn discover(url: &str, name: &str, opts: &ConnectOptions) -> Result<String, Failure> {
    let Some(registry) = url.strip_prefix("netref://") else {
        return Err(Failure::Usage(format!("unsupported registry URL {url:?}: use netref://HOST:PORT")));
    };
    let registry = registry.trim_end_matches('/').to_owned();
    let lookup = netref_actors::registry::discover(registry.clone(), name);
    match tokio::time::timeout(opts.timeout, lookup).await {
        Ok(Ok(addrs)) => Ok(addrs.into_iter().next().expect("discover returns at least one address")),
        Ok(Err(e)) => Err(Failure::Discovery(format!("looking up {name:?} at registry {registry}: {e}"))),
        Err(_) => Err(Failure::Netref {
            doing: format!("looking up {name:?} at registry {registry}"),
            error: netref::Error::Timeout(opts.timeout),
        }),
    }
}

fn read_pem(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, Failure> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| Failure::Usage(format!("reading {what} {}: {e}", path.display())))?
        .collect();
    let certs = certs.map_err(|e| Failure::Usage(format!("reading {what} {}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Failure::Usage(format!("{what} {} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

fn tls_config(opts: &ConnectOptions) -> Result<TlsClientConfig, Failure> {
    let Some(ca) = &opts.ca else {
        return Err(Failure::Usage("--tls needs --ca PEM: the CA the server's certificate chains to".into()));
    };
    let roots = read_pem("--ca", ca)?;
    let tls_error = |e: netref::Error| Failure::Usage(format!("TLS settings: {e}"));
    let config = TlsClientConfig::new(roots).map_err(tls_error)?;
    match (&opts.cert, &opts.key) {
        (Some(cert), Some(key)) => {
            let chain = read_pem("--cert", cert)?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| Failure::Usage(format!("reading --key {}: {e}", key.display())))?;
            config.with_client_cert(chain, key).map_err(tls_error)
        }
        _ => Ok(config),
    }
}

/// The dotted path as attribute names: `root.` may lead; empty or `root` is the root itself.
pub(crate) fn split_path(path: &str) -> Result<Vec<&str>, Failure> {
    let path = if path == "root" { "" } else { path.strip_prefix("root.").unwrap_or(path) };
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = path.split('.').collect();
    if names.iter().any(|n| n.is_empty()) {
        return Err(Failure::Usage(format!("bad path {path:?}: names are separated by single dots")));
    }
    Ok(names)
}

/// Where paths start: the root, or the export `--export` names.
pub(crate) async fn start(peer: &Peer, opts: &ConnectOptions) -> Result<NetRef, Failure> {
    match &opts.export {
        Some(name) => peer.lookup(name).await.map_err(Failure::netref(format!("looking up export {name:?}"))),
        None => peer.root().await.map_err(Failure::netref("getting the root")),
    }
}

/// Follows `names` from `from` by GETATTR; every step must be a reference.
pub(crate) async fn walk(from: NetRef, names: &[&str]) -> Result<NetRef, Failure> {
    let mut here = from;
    for (i, name) in names.iter().enumerate() {
        let so_far = names[..=i].join(".");
        let value: Value = here.getattr(name).await.map_err(Failure::netref(format!("reading {so_far}")))?;
        here = match value {
            Value::Ref(next) => next,
            other => {
                return Err(Failure::Usage(format!(
                    "{so_far} is a {} value, not an object with attributes",
                    other.kind()
                )))
            }
        };
    }
    Ok(here)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_may_start_at_root() {
        assert_eq!(split_path("root.store.items").unwrap(), ["store", "items"]);
        assert_eq!(split_path("store.items").unwrap(), ["store", "items"]);
        assert!(split_path("root").unwrap().is_empty());
        assert!(split_path("").unwrap().is_empty());
        assert_eq!(split_path("rooted").unwrap(), ["rooted"]);
        assert!(split_path("a..b").is_err());
    }
}
