//! A calculator client: `cargo run --example calculator_client -- ADDR` (TCP address or
//! `unix:/path/to.sock`). Calls `add(1, 2)`, passes a callback the server calls back, exits 0.

use std::time::Duration;

use netref::prelude::*;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), netref::Error> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18812".into());
    // TCP or `unix:PATH`; from a plain tokio program, netref runs the connection on its own thread.
    let peer = netref::connect(addr).timeout(Duration::from_secs(5)).await?;
    let calc = peer.root().await?;
    let sum: i64 = calc.call_method("add", (1, 2)).await?;
    println!("add(1, 2) = {sum}");
    let square = Object::function(|x: i64| {
        println!("callback: square({x}) called by the server");
        x * x
    });
    let y: i64 = calc.call_method("apply", (square, 12)).await?;
    println!("apply(square, 12) = {y}");
    peer.close().await;
    Ok(())
}
