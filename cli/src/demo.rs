//! `netref serve-demo`: the calculator example service, with a few members that make the
//! inspector worth trying (an echo for every value kind, an error with a traceback, a nested
//! object, a changing counter, a name the access policy keeps private).
//!
//! This module serves only the demo; it must never be needed by the inspecting commands.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use clap::Args;
use netref::{
    kinds,
    tls::{CertificateDer, PemObject, PrivateKeyDer, TlsServerConfig},
    Object, RemoteError, Server, Service, Value,
};

use crate::failure::Failure;

/// Options of `netref serve-demo`.
#[derive(Debug, Args)]
pub(crate) struct ServeDemo {
    /// Where to listen: HOST:PORT (port 0 picks a free one) or unix:PATH.
    #[arg(default_value = "127.0.0.1:18812")]
    addr: String,
    /// Serve TLS with this PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

/// The demo service: the calculator as the root, and its `stats` also exported by name.
fn service() -> Service {
    let (calculator, stats) = calculator();
    Service::shared(calculator).export("stats", stats)
}

/// The demo calculator: `add`, `mul`, `div`, `apply` (calls back), `echo`, `describe`,
/// `memory` (a field), `stats.calls`, `ticks`, and `secret` (refused by the default policy);
/// and its `stats` object.
fn calculator() -> (Object, Object) {
    let calls = Arc::new(AtomicU64::new(0));
    let counted = |calls: &Arc<AtomicU64>| {
        calls.fetch_add(1, Ordering::Relaxed);
    };
    let (add_calls, mul_calls, div_calls) = (calls.clone(), calls.clone(), calls.clone());
    let stats_calls = calls.clone();
    let stats = Object::builder("demo.Stats")
        .property("calls", move || stats_calls.load(Ordering::Relaxed))
        .repr(|| "<demo.Stats>".into())
        .build();
    let started = Instant::now();
    let calculator = Object::builder("demo.Calculator")
        .method("add", move |a: i64, b: i64| {
            counted(&add_calls);
            a + b
        })
        .method("mul", move |a: i64, b: i64| {
            counted(&mul_calls);
            a * b
        })
        .try_method("div", move |a: f64, b: f64| {
            counted(&div_calls);
            if b == 0.0 {
                Err(RemoteError::new(kinds::ZERO_DIVISION_ERROR, "division by zero"))
            } else {
                Ok(a / b)
            }
        })
        .try_async_method("apply", |f: netref::NetRef, x: i64| async move {
            let y: i64 = f.call((x,)).await?;
            Ok::<_, netref::Error>(y)
        })
        .method("echo", |value: Value| value)
        .raw_method("describe", |args| {
            let kwargs = args.kwargs.into_iter().map(|(k, v)| (Value::Str(k), v)).collect();
            let reply = Value::Map(vec![
                (Value::from("args"), Value::List(args.positional)),
                (Value::from("kwargs"), Value::Map(kwargs)),
            ]);
            Box::pin(async move { Ok(reply) })
        })
        .internal_method("secret", || "the default policy never lets this out")
        .field("memory", 0)
        .attr("stats", stats.clone())
        .attr("version", env!("CARGO_PKG_VERSION"))
        .property("ticks", move || started.elapsed().as_millis() / 100)
        .repr(|| "<demo.Calculator>".into())
        .build();
    (calculator, stats)
}

fn tls(cert: &PathBuf, key: &PathBuf) -> Result<TlsServerConfig, Failure> {
    let chain: Result<Vec<_>, _> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| Failure::Usage(format!("reading --tls-cert {}: {e}", cert.display())))?
        .collect();
    let chain = chain.map_err(|e| Failure::Usage(format!("reading --tls-cert {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| Failure::Usage(format!("reading --tls-key {}: {e}", key.display())))?;
    TlsServerConfig::new(chain, key).map_err(|e| Failure::Usage(format!("TLS settings: {e}")))
}

/// Serves until interrupted (Ctrl-C), after printing `listening on ADDR`; `rpyc`: on RPyC's
/// wire instead of netref's own.
pub(crate) async fn serve(opts: ServeDemo, rpyc: bool) -> Result<(), Failure> {
    let mut builder = Server::builder(service());
    if rpyc {
        builder = builder.rpyc();
    }
    if let (Some(cert), Some(key)) = (&opts.tls_cert, &opts.tls_key) {
        builder = builder.tls(tls(cert, key)?);
    }
    let bound = match opts.addr.strip_prefix("unix:") {
        Some(path) => builder.bind_unix(path).await,
        None => builder.bind_tcp(opts.addr.as_str()).await,
    };
    let server = bound.map_err(Failure::netref(format!("listening on {}", opts.addr)))?;
    println!("listening on {}", server.address());
    tokio::select! {
        _ = server.stopped() => {}
        _ = tokio::signal::ctrl_c() => server.shutdown(Duration::from_secs(5)).await,
    }
    Ok(())
}
