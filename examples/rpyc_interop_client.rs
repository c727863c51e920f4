//! A netref client calling a Python rpyc 6.0.x service over RPyC's wire (first slice of the
//! contract §5 client): `cargo run --example rpyc_interop_client -- HOST:PORT` against
//! `interop/rpyc/interop_service.py` (or `rpyc_interop_server`). It checks a few members, a
//! Rust callback served to Python and a remote exception, closes, and exits 0 only if every
//! step behaved.

use std::process::ExitCode;

use netref::{kinds, prelude::*};

async fn run(addr: &str) -> Result<Vec<String>, netref::Error> {
    let mut failures = Vec::new();
    let mut check = |what: &str, ok: bool| {
        println!("{} {what}", if ok { "PASS" } else { "FAIL" });
        if !ok {
            failures.push(what.to_owned());
        }
    };
    let peer = netref::connect(addr).rpyc().await?;
    let root = peer.root().await?;
    check("root is interop.InteropService", root.type_name() == "interop.InteropService");
    let contract: String = root.getattr("contract").await?;
    check("contract is interop-1", contract == "interop-1");
    let sum: i64 = root.call_method("add", (1, 2)).await?;
    check("add(1, 2) == 3", sum == 3);
    let s: String = root.call_method("add", ("ab", "cd")).await?;
    check("add of two str", s == "abcd");
    let sent: Value = Value::Tuple(vec![Value::Int(1), Value::Str("x".into())]);
    let echoed: Value = root.call_method("echo", (sent.clone(),)).await?;
    check("echo of a tuple", echoed == sent);
    let cb = NetRef::from(Object::function(|a: i64, b: i64| a * b));
    let product: i64 = root.call_method("call_me", (cb, 6, 7)).await?;
    check("call_me with a Rust callback", product == 42);
    let err = root.call_method::<Value>("fail", ("value",)).await.unwrap_err();
    check("fail('value') raises ValueError", err.as_remote().is_some_and(|e| e.is(kinds::VALUE_ERROR)));
    let token: NetRef = root.call_method("make_token", (5,)).await?;
    check("Token repr", token.repr().await? == "Token(5)");
    check("Token str", token.str().await? == "token #5");
    let value: i64 = token.getattr("value").await?;
    check("Token value", value == 5);
    drop(token);
    // A Python list by reference: len, [i], iteration.
    let list: NetRef = root.call_method("get_list", ()).await?;
    let len: i64 = list.call_method("__len__", ()).await?;
    let second: i64 = list.call_method("__getitem__", (1,)).await?;
    check("get_list: len 3, [1] == 20", len == 3 && second == 20);
    drop(list);
    // A context manager: __enter__, then CTXEXIT without an error.
    let ctx: NetRef = root.call_method("context", (3,)).await?;
    let entered: i64 = ctx.enter().await?;
    let suppressed = ctx.exit(None).await?;
    drop(ctx);
    let log: Vec<String> = root.call_method("context_log", ()).await?;
    check("context: enter 20, exit logged", entered == 20 && !suppressed && log == ["enter 3", "exit ok"]);
    // An expiry: the late reply is dropped and the connection stays usable.
    let slow = root.call_method::<f64>("slow", (0.5,));
    slow.set_expiry(Some(std::time::Duration::from_millis(100)));
    let expired = matches!(slow.await, Err(netref::Error::Timeout(_)));
    let after: i64 = root.call_method("add", (2, 2)).await?;
    check("slow(0.5) expires at 100 ms; the connection stays usable", expired && after == 4);
    // Export lifetimes: the server sees the release once the proxy is dropped.
    let tracked: NetRef = root.call_method("tracked", ("t1",)).await?;
    let name: String = tracked.getattr("name").await?;
    drop(tracked);
    let _ = peer.ping(Value::None).await?;
    let released: Vec<String> = root.call_method("released", ()).await?;
    check("tracked('t1') released after its proxy is dropped", name == "t1" && released == ["t1"]);
    // The connection sends the DEL it owes for the dropped proxy at the end of its next turn.
    let _ = peer.ping(Value::None).await?;
    peer.close_within("done", std::time::Duration::from_secs(3)).await;
    Ok(failures)
}

#[actix_rt::main]
async fn main() -> ExitCode {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: rpyc_interop_client HOST:PORT");
        return ExitCode::from(2);
    };
    match run(&addr).await {
        Ok(failures) if failures.is_empty() => {
            println!("all steps passed");
            ExitCode::SUCCESS
        }
        Ok(failures) => {
            println!("{} failed: {}", failures.len(), failures.join("; "));
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("FAIL error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
