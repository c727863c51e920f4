//! The netref tour: a server and a client in one process, walking through the features and
//! printing what they do. Run it with `cargo run --release --example tour`.

use std::{
    future::IntoFuture,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use netref::{prelude::*, AccessPolicy};

fn calculator() -> Object {
    let memory = Arc::new(Mutex::new(0i64));
    let m1 = memory.clone();
    let m2 = memory.clone();
    Object::builder("demo.Calculator")
        .method("add", |a: i64, b: i64| a + b)
        .try_method("div", |a: f64, b: f64| {
            if b == 0.0 {
                Err(RemoteError::new("builtins.ZeroDivisionError", "division by zero"))
            } else {
                Ok(a / b)
            }
        })
        .method("store", move |v: i64| *m1.lock().unwrap() = v)
        .property("memory", move || *m2.lock().unwrap())
        .attr("version", "1.0")
        .field("label", "main calculator")
        .try_async_method("apply", |f: NetRef, x: i64| async move {
            let y: i64 = f.call((x,)).await?;
            Ok::<_, netref::Error>(y)
        })
        .async_method("slow_square", |x: i64| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            x * x
        })
        .method("counter", |start: i64| {
            let n = Arc::new(Mutex::new(start));
            Object::builder("demo.Counter")
                .method("next", move || {
                    let mut n = n.lock().unwrap();
                    *n += 1;
                    *n
                })
                .build()
        })
        .iterable(|| (1..=12).map(|i| i * i))
        .context_manager(
            || "session opened",
            |err| {
                println!("    [server] context exit, error = {:?}", err.map(|e| e.kind));
                false
            },
        )
        .build()
}

#[actix_rt::main]
async fn main() -> Result<(), netref::Error> {
    println!("netref tour\n");
    let policy = AccessPolicy { allow_setattr: true, ..AccessPolicy::default() };
    let (_server, client) = netref::connect_pair_with(
        Service::shared(calculator()),
        Config::default().policy(policy),
        Service::void(),
        Config::default(),
    );

    println!("1. the root object");
    let calc = client.root().await?;
    println!("   root = {calc:?} (Debug, equality and id_pack cost no traffic)");
    println!("   repr = {}", calc.repr().await?);

    println!("\n2. attributes");
    let version: String = calc.getattr("version").await?;
    println!("   calc.version = {version:?}");
    calc.setattr("label", "renamed").await?;
    let label: String = calc.getattr("label").await?;
    println!("   calc.label after setattr = {label:?}");
    match calc.setattr("version", "2.0").await {
        Err(e) => println!("   setattr on a read-only attribute: {e}"),
        Ok(()) => println!("   unexpected: version was writable"),
    }

    println!("\n3. method calls (one round trip each)");
    let sum: i64 = calc.call_method("add", (1, 2)).await?;
    println!("   add(1, 2) = {sum}");
    calc.call_method::<()>("store", (99,)).await?;
    let mem: i64 = calc.getattr("memory").await?;
    println!("   store(99); memory = {mem}");
    let counter: NetRef = calc.call_method("counter", (10,)).await?;
    let a: i64 = counter.call_method("next", ()).await?;
    let b: i64 = counter.call_method("next", ()).await?;
    println!("   a returned object travels by reference: {counter:?} -> next() = {a}, {b}");

    println!("\n4. callbacks: the server calls back into the client during the call");
    let doubler = Object::function(|x: i64| {
        println!("    [client] callback called with {x}");
        x * 2
    });
    let r: i64 = calc.call_method("apply", (doubler, 21)).await?;
    println!("   apply(doubler, 21) = {r}");

    println!("\n5. errors");
    match calc.call_method::<f64>("div", (1.0, 0.0)).await {
        Err(e) => println!("   div(1, 0) -> {e}"),
        Ok(v) => println!("   unexpected: {v}"),
    }
    match calc.call_method::<i64>("nope", ()).await {
        Err(e) => println!("   nope() -> {e}"),
        Ok(v) => println!("   unexpected: {v}"),
    }
    match calc.call_method::<i64>("add", ("one", 2)).await {
        Err(e) => println!("   add(\"one\", 2) -> {e}"),
        Ok(v) => println!("   unexpected: {v}"),
    }

    println!("\n6. AsyncResult: callbacks and expiry");
    let pending = calc.call_method::<i64>("slow_square", (12,));
    println!("   right after sending: ready = {}", pending.ready());
    pending.add_callback(|r| println!("    [callback] slow_square settled: {r:?}"));
    let value = pending.into_future().await?;
    println!("   awaited value = {value}");
    let too_slow = calc.call_method::<i64>("slow_square", (3,));
    too_slow.set_expiry(Some(Duration::from_millis(50)));
    match too_slow.into_future().await {
        Err(e) => println!("   with a 50 ms expiry: {e}"),
        Ok(v) => println!("   unexpected: {v}"),
    }

    println!("\n7. iteration (chunked BUFFITER)");
    let squares: Vec<i64> = calc.iter::<i64>().map(|r| r.unwrap_or(-1)).collect().await;
    println!("   squares = {squares:?}");

    println!("\n8. context managers");
    let entered: String = calc.enter().await?;
    println!("   enter -> {entered:?}");
    let suppressed = calc.exit(None).await?;
    println!("   exit -> suppressed = {suppressed}");

    println!("\n9. closing");
    client.close().await;
    match calc.call_method::<i64>("add", (1, 1)).await {
        Err(e) => println!("   after close: {e}"),
        Ok(v) => println!("   unexpected: {v}"),
    }
    println!("\ntour complete");
    Ok(())
}
