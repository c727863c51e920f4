//! A calculator server: `cargo run --example calculator_server -- ADDR`, where ADDR is
//! `127.0.0.1:18812`, `[::1]:0` or `unix:/path/to.sock`. Prints `listening on ADDR` once ready
//! and serves until interrupted (or, with `--once`, until its first client leaves).

use netref::{prelude::*, Server};

fn calculator() -> Object {
    Object::builder("demo.Calculator")
        .method("add", |a: i64, b: i64| a + b)
        .method("mul", |a: i64, b: i64| a * b)
        .try_async_method("apply", |f: NetRef, x: i64| async move {
            // Calls back into the client while the client waits for this call.
            let y: i64 = f.call((x,)).await?;
            Ok::<_, netref::Error>(y)
        })
        .build()
}

#[actix_rt::main]
async fn main() -> Result<(), netref::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or_else(|| "127.0.0.1:18812".into());
    let mut builder = Server::builder(Service::shared(calculator()));
    if args.iter().any(|a| a == "--once") {
        builder = builder.one_shot();
    }
    let server = match addr.strip_prefix("unix:") {
        Some(path) => builder.bind_unix(path).await?,
        None => builder.bind_tcp(addr.as_str()).await?,
    };
    println!("listening on {}", server.address());
    tokio::select! {
        _ = server.stopped() => {}
        _ = tokio::signal::ctrl_c() => server.shutdown(std::time::Duration::from_secs(5)).await,
    }
    Ok(())
}
