//! A netref object behind a native hop, reached from Python over RPyC 6: forwarding across
//! dialects.
//!
//! `cargo run --example rpyc_forward_hop -- [ADDR]` runs two netref servers in one process: a
//! *backend* serving `hop.Backend` on a native listener (loopback, any free port), and a *front*
//! serving `hop.Gateway` over RPyC's wire on ADDR (default `127.0.0.1:0`; loopback unless told
//! otherwise). The front holds one native connection to the backend; `gateway.backend()` hands
//! a Python client the backend's object, which the front forwards: every request a Python
//! client makes on it is re-issued on the native connection, and a Python callback passed to it
//! is forwarded the other way. The first stdout line is `listening on HOST:PORT` (the front);
//! it serves until interrupted. From Python:
//!
//! ```python
//! import rpyc
//! conn = rpyc.connect("127.0.0.1", PORT)
//! backend = conn.root.backend()            # the backend's object, one hop away
//! print(backend.apply(lambda x: x * 10, 4))  # 41: the backend called Python back
//! ```
//!
//! `gateway.backend_exports()` is what the backend exports to the front right now (its
//! unpinned exports), so a client can watch its releases reach the backend. Nothing a client
//! sends is executed or unpickled: PICKLE is refused by the front's RPyC dialect.

use std::{
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc,
    },
    time::Duration,
};

use netref::{kinds, prelude::*, RemoteError, Server};

/// Counts the backend's live counters: one is dropped when its last export is released.
struct Live(Arc<AtomicI64>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The backend's root object.
fn backend(live: Arc<AtomicI64>) -> Object {
    let live_read = live.clone();
    Object::builder("hop.Backend")
        .method("add", |a: i64, b: i64| a + b)
        .try_method("div", |a: i64, b: i64| {
            if b == 0 {
                Err(RemoteError::new(kinds::ZERO_DIVISION_ERROR, "division by zero"))
            } else {
                Ok(a / b)
            }
        })
        .try_method("lookup", |key: String| Err::<i64, _>(RemoteError::new(kinds::KEY_ERROR, key)))
        // Calls the client's function `f` (through the front) and adds one.
        .try_async_method("apply", |f: NetRef, x: i64| async move {
            let y: i64 = f.call((x,)).await?;
            Ok::<_, netref::Error>(y + 1)
        })
        // Whether `r` is this backend's own object: a forwarded reference that came home.
        .method("is_home", |r: NetRef| r.is_local())
        .method("open_counter", move |start: i64| {
            live.fetch_add(1, Ordering::SeqCst);
            let value = Arc::new(AtomicI64::new(start));
            Object::builder("hop.Counter")
                .method("incr", move || value.fetch_add(1, Ordering::SeqCst) + 1)
                .payload(Live(live.clone()))
                .build()
        })
        .method("live_counters", move || live_read.load(Ordering::SeqCst))
        .async_method("slow", |seconds: f64| async move {
            tokio::time::sleep(Duration::from_secs_f64(seconds.clamp(0.0, 10.0))).await;
            seconds
        })
        .attr("answer", 42)
        .build()
}

/// The front's root object, served over RPyC: hands out the backend's object.
fn gateway(to_backend: Peer, backend_server: Server) -> Object {
    Object::builder("hop.Gateway")
        .try_async_method("backend", move || {
            let p = to_backend.clone();
            async move { p.root().await }
        })
        .async_method("backend_exports", move || {
            let peers = backend_server.peers();
            async move {
                let mut total = 0;
                for peer in peers {
                    total += peer.stats().await.map_or(0, |s| s.unpinned_exports);
                }
                total
            }
        })
        .build()
}

#[actix_rt::main]
async fn main() -> Result<(), netref::Error> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let live = Arc::new(AtomicI64::new(0));
    let backend_server = Server::builder(Service::shared(backend(live))).bind_tcp("127.0.0.1:0").await?;
    let backend_addr = backend_server.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let to_backend = netref::connect(backend_addr).await?;
    let front = Server::builder(Service::shared(gateway(to_backend.clone(), backend_server.clone())))
        .rpyc()
        .bind_tcp(addr.as_str())
        .await?;
    println!("listening on {}", front.address());
    tokio::select! {
        _ = front.stopped() => {}
        _ = tokio::signal::ctrl_c() => {
            front.shutdown(Duration::from_secs(5)).await;
        }
    }
    to_backend.close_within("the front stops", Duration::from_secs(2)).await;
    backend_server.shutdown(Duration::from_secs(2)).await;
    Ok(())
}
