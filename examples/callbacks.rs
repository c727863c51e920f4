//! Callbacks: local closures and objects travel to the peer by reference, and the peer calls
//! them back during its own call — nested in both directions, or as progress reports. First in
//! an actix program, then from plain threads with netref's own runtime (`netref::runtime`).
//! Run it with `cargo run --example callbacks`.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use netref::{prelude::*, BlockingClient, Runtime};

/// The server: every method takes a callback from the client.
fn server() -> Object {
    Object::builder("demo.Server")
        .method("add", |a: i64, b: i64| a + b)
        // A callable callback: `f(x)`.
        .try_async_method("apply", |f: NetRef, x: i64| async move {
            let y: i64 = f.call((x,)).await?;
            Ok::<_, netref::Error>(y)
        })
        // An object callback: a listener with several methods.
        .try_async_method("publish", |listener: NetRef, topics: Vec<String>| async move {
            for topic in &topics {
                listener.call_method::<()>("on_event", (topic,)).await?;
            }
            let total: usize = listener.call_method("on_done", (topics.len(),)).await?;
            Ok::<_, netref::Error>(total)
        })
        // Nested: the server asks the client's helper, which asks the server again.
        .try_async_method("ask", |helper: NetRef, x: i64| async move {
            println!("      [server] ask({x}): calling the client's helper");
            let answer: i64 = helper.call_method("compute", (x,)).await?;
            println!("      [server] the helper answered {answer}");
            Ok::<_, netref::Error>(answer * 10)
        })
        // Progress: a long job that reports each step and waits for the client to take it.
        .try_async_method("long_job", |steps: u32, progress: NetRef| async move {
            for step in 1..=steps {
                tokio::time::sleep(Duration::from_millis(20)).await; // the "work"
                let keep_going: bool = progress.call((step, steps)).await?;
                if !keep_going {
                    return Ok::<_, netref::Error>(format!("stopped by the client after step {step}"));
                }
            }
            Ok(format!("all {steps} steps done"))
        })
        .build()
}

fn progress_bar(step: u32, steps: u32) -> String {
    let done = (step * 20 / steps) as usize;
    format!("[{}{}] {step}/{steps}", "#".repeat(done), ".".repeat(20 - done))
}

/// An actix program: the connections live on its own actix system.
async fn actix_native() -> Result<(), netref::Error> {
    println!("== an actix program (connect_pair on the current system) ==\n");
    let (_server_peer, client) = netref::connect_pair(Service::shared(server()), Service::void());
    let remote = client.root().await?;

    println!("1. a closure as a callback");
    let square = Object::function(|x: i64| {
        println!("      [client] square({x}) called by the server");
        x * x
    });
    let r: i64 = remote.call_method("apply", (square, 7)).await?;
    println!("   apply(square, 7) = {r}");

    println!("\n2. an object as a callback (a listener with two methods)");
    let seen = Arc::new(AtomicUsize::new(0));
    let s1 = seen.clone();
    let s2 = seen.clone();
    let listener = Object::builder("demo.Listener")
        .method("on_event", move |topic: String| {
            s1.fetch_add(1, Ordering::SeqCst);
            println!("      [client] event: {topic}");
        })
        .method("on_done", move |count: usize| {
            println!("      [client] done after {count} events");
            s2.load(Ordering::SeqCst)
        })
        .build();
    let topics = vec!["boot".to_owned(), "ready".to_owned(), "tick".to_owned()];
    let total: usize = remote.call_method("publish", (listener, topics)).await?;
    println!("   publish(...) = {total} events seen by the listener");

    println!("\n3. nested callbacks: server -> client -> server");
    let server_again = remote.clone();
    let helper = Object::builder("demo.Helper")
        .try_async_method("compute", move |x: i64| {
            let server = server_again.clone();
            async move {
                println!("      [client] compute({x}): asking the server to add 1");
                let y: i64 = server.call_method("add", (x, 1)).await?;
                Ok::<_, netref::Error>(y)
            }
        })
        .build();
    let r: i64 = remote.call_method("ask", (helper, 4)).await?;
    println!("   ask(helper, 4) = {r}   ((4 + 1) * 10, three calls nested on one connection)");

    println!("\n4. a progress callback (the job waits for each report: natural flow control)");
    let progress = Object::function(|step: u32, steps: u32| {
        println!("      [client] {}", progress_bar(step, steps));
        true
    });
    let outcome: String = remote.call_method("long_job", (5u32, progress)).await?;
    println!("   long_job -> {outcome}");
    let cancel_at_3 = Object::function(|step: u32, steps: u32| {
        println!("      [client] {}{}", progress_bar(step, steps), if step == 3 { "  -> stop" } else { "" });
        step < 3
    });
    let outcome: String = remote.call_method("long_job", (10u32, cancel_at_3)).await?;
    println!("   long_job -> {outcome}");

    println!("\n5. a failing callback: its error reaches the server, which passes it back to us");
    let picky = Object::builder("demo.PickyListener")
        .try_method("on_event", |topic: String| {
            if topic == "boot" {
                Ok(())
            } else {
                Err(RemoteError::new("builtins.ValueError", format!("unknown topic {topic:?}")))
            }
        })
        .method("on_done", |count: usize| count)
        .build();
    match remote.call_method::<usize>("publish", (picky, vec!["boot", "reboot"])).await {
        Err(e) => println!("   publish(picky, ...) -> {e}"),
        Ok(v) => println!("   unexpected: {v}"),
    }
    client.close().await;
    Ok(())
}

/// Plain threads with netref's own runtime: the connections live on its actix thread.
fn plain_threads() -> Result<(), netref::Error> {
    println!("\n== plain threads with netref's own runtime (netref::runtime) ==\n");
    let server_rt = Runtime::new()?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    futures::executor::block_on(server_rt.serve_tcp(listener, Service::shared(server()), Config::default()))?;
    println!("   server runtime serving on {addr}");

    let client = BlockingClient::connect(&addr, Duration::from_secs(5))?;
    let remote = client.root()?;
    let sum: i64 = remote.call_method("add", (1, 2)).value()?;
    println!("   add(1, 2) = {sum}   (.value() blocks this plain thread)");

    let main_thread = std::thread::current().name().unwrap_or("?").to_owned();
    let cube = Object::function(|x: i64| {
        let here = std::thread::current().name().unwrap_or("?").to_owned();
        println!("      [client] cube({x}) runs on thread {here:?}");
        x * x * x
    });
    let r: i64 = remote.call_method("apply", (cube, 3)).value()?;
    println!("   apply(cube, 3) = {r}   (called from thread {main_thread:?}; the callback ran on the client runtime)");

    let progress = Object::function(|step: u32, steps: u32| {
        println!("      [client] {}", progress_bar(step, steps));
        true
    });
    let outcome: String = remote.call_method("long_job", (4u32, progress)).value()?;
    println!("   long_job -> {outcome}");

    // Several plain threads share one netref.
    let results: Vec<i64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4i64)
            .map(|t| {
                let remote = &remote;
                s.spawn(move || {
                    remote.call_method::<i64>("apply", (Object::function(move |x: i64| x + t), 100)).value()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("no panic")).collect::<Result<_, _>>()
    })?;
    println!("   four threads, each with its own callback: {results:?}");

    client.close();
    server_rt.shutdown();
    println!("   client closed, server runtime shut down");
    Ok(())
}

fn main() -> Result<(), netref::Error> {
    println!("netref callbacks\n");
    actix_rt::System::new().block_on(actix_native())?;
    plain_threads()?;
    println!("\ndone");
    Ok(())
}
