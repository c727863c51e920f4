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
//! `cargo run --example rpyc_forward_hop -- --stock-owner HOST:PORT` is the reverse direction:
//! HOST:PORT is a stock Python rpyc server serving the interop contract's service
//! (`interop/rpyc/interop_service.py`); this process is the middle, an RPyC client of it with a
//! native listener on loopback, and a native client of that listener. It checks calls, INSPECT,
//! a Rust callback, an error's kind, a Python class, a release and expiry through the hop,
//! prints `PASS/FAIL` per step and exits 0 only if every step behaved.
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

/// The reverse direction against a stock Python rpyc server serving the interop service (the
/// interop contract's `interop.InteropService`) at `owner`: this process is the middle (an RPyC
/// client of the owner, serving a native listener on loopback) and a native client of its own
/// middle, and checks what reaches the Python object through the hop. Returns whether every
/// step behaved.
async fn check_stock_owner(owner: &str) -> Result<bool, netref::Error> {
    let to_owner = netref::connect(owner).rpyc().await?;
    let owner_gateway = Object::builder("hop.Gateway")
        .try_async_method("owner", {
            let p = to_owner.clone();
            move || {
                let p = p.clone();
                async move { p.root().await }
            }
        })
        .build();
    let middle = Server::builder(Service::shared(owner_gateway)).bind_tcp("127.0.0.1:0").await?;
    let middle_addr = middle.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let client = netref::connect(middle_addr).await?;
    let root: NetRef = client.root().await?.call_method("owner", ()).await?;

    let mut all_ok = true;
    let mut check = |name: &str, ok: bool| {
        println!("{} {name}", if ok { "PASS" } else { "FAIL" });
        all_ok &= ok;
    };
    check("the Python root arrives with its class name", root.type_name() == "interop.InteropService");
    check("add(1, 2) through the hop", root.call_method::<i64>("add", (1, 2)).await? == 3);
    let methods = root.inspect().await?;
    // A stock server answers with the Python object's own attribute names.
    check("INSPECT through the hop (by id_pack at the stock server)", methods.iter().any(|m| m == "exposed_add"));
    let times = NetRef::from(Object::function(|a: i64, b: i64| a * b));
    check(
        "a Rust callback called by Python through the hop",
        root.call_method::<i64>("call_me", (times, 6, 7)).await? == 42,
    );
    let err = root.call_method::<Value>("fail", ("value",)).await.unwrap_err();
    check("Python's ValueError keeps its kind", err.as_remote().is_some_and(|e| e.is(kinds::VALUE_ERROR)));
    // Python's Token class: one netref however often it is read; an instance made from it.
    let token_class: NetRef = root.getattr("Token").await?;
    let again: NetRef = root.getattr("Token").await?;
    check("a Python class read twice is one netref", token_class == again);
    let token: NetRef = token_class.call((7,)).await?;
    check("an instance made by the forwarded class", token.repr().await? == "Token(7)");
    check("the instance going home is Python's own", root.call_method::<bool>("is_token", (token.clone(),)).await?);
    drop((token_class, again, token));
    // A release reaches the Python object through the hop.
    let tracked: NetRef = root.call_method("tracked", ("hop",)).await?;
    let name: String = tracked.getattr("name").await?;
    drop(tracked);
    let mut released = false;
    for _ in 0..100 {
        let names: Vec<String> = root.call_method("released", ()).await?;
        if names.iter().any(|n| n == "hop") {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check("a dropped proxy is released at the Python owner", name == "hop" && released);
    // Expiry: the client stops waiting; RPyC has no cancel, so the owner finishes on its own.
    let slow = root.call_method::<f64>("slow", (0.5,));
    slow.set_expiry(Some(Duration::from_millis(100)));
    let expired = matches!(slow.await, Err(netref::Error::Timeout(_)));
    check(
        "expiry through the hop; the connections stay usable",
        expired && root.call_method::<i64>("add", (2, 2)).await? == 4,
    );

    drop(root);
    client.close_within("done", Duration::from_secs(2)).await;
    middle.shutdown(Duration::from_secs(2)).await;
    to_owner.close_within("done", Duration::from_secs(2)).await;
    Ok(all_ok)
}

#[actix_rt::main]
async fn main() -> Result<(), netref::Error> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    if addr == "--stock-owner" {
        let owner = args.next().expect("--stock-owner HOST:PORT");
        let ok = check_stock_owner(&owner).await?;
        println!("{}", if ok { "all steps passed" } else { "some steps FAILED" });
        std::process::exit(if ok { 0 } else { 1 });
    }
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
