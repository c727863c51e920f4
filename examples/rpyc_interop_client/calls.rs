//! Calls: Rust callbacks served to Python, remote errors, expiry and the ways to wait for a
//! result, and the context manager.

use std::time::Duration;

use netref::{kinds, prelude::*, Data};
use tokio::sync::oneshot;

use crate::Checks;

pub(crate) async fn run(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    call_me(root, c).await?;
    fail(root, c).await?;
    slow(root, c).await
}

async fn call_me(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    // Callbacks are `builtins.function` objects: a stock server calls them without an INSPECT.
    let minus = NetRef::from(Object::function(|a: i64, b: i64| a - b));
    let result: i64 = root.call_method("call_me", (minus, 10, 3)).await?;
    c.check_seen("call_me(a - b, 10, 3) == 7", result == 7, result);

    // A callback that calls the service while the service waits for it.
    let service = root.clone();
    let twice = NetRef::from(Object::async_function(move |x: i64| {
        let service = service.clone();
        async move { service.call_method::<i64>("add", (x, x)).await.unwrap_or(-1) }
    }));
    let result: i64 = root.call_method("call_me", (twice, 21)).await?;
    c.check_seen("call_me with a callback calling add(x, x) back: 42", result == 42, result);

    // A callback returning this side's object: it comes back as itself.
    let mine = Object::builder("builtins.object").build();
    let mine_ref = NetRef::from(mine.clone());
    let give = NetRef::from(Object::function(move || mine_ref.clone()));
    let back: NetRef = root.call_method("call_me", (give,)).await?;
    c.check(
        "call_me with a callback returning a client object: it comes back as itself",
        back.as_local().is_some_and(|o| o.same(&mine)),
    );

    // A callback's error reaches Python as its exception, and comes back with the same kind
    // and args.
    let boom =
        NetRef::from(Object::try_function(|| Err::<i64, _>(RemoteError::new(kinds::VALUE_ERROR, "callback boom"))));
    let outcome = root.call_method::<i64>("call_me", (boom,)).await;
    let propagated = matches!(&outcome, Err(e) if e.as_remote().is_some_and(|r| r.is(kinds::VALUE_ERROR)
        && r.message == "callback boom" && r.args == [Data::Str("callback boom".into())]));
    c.check_seen("call_me with a raising callback raises its ValueError('callback boom')", propagated, outcome);
    Ok(())
}

async fn fail(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    let value = root.call_method::<Value>("fail", ("value",)).await;
    let ok = matches!(&value, Err(e) if e.as_remote().is_some_and(|r| r.is(kinds::VALUE_ERROR)
        && r.args == [Data::Str("boom".into()), Data::Int(7)]
        && r.message == "('boom', 7)"
        && r.traceback.contains("ValueError")));
    c.check_seen("fail('value') raises ValueError('boom', 7) with its traceback", ok, value);
    let key = root.call_method::<Value>("fail", ("key",)).await;
    let ok =
        matches!(&key, Err(e) if e.as_remote().is_some_and(|r| r.is(kinds::KEY_ERROR) && r.message == "'missing'"));
    c.check_seen("fail('key') raises KeyError('missing')", ok, key);
    let custom = root.call_method::<Value>("fail", ("custom",)).await;
    let ok = matches!(&custom, Err(e) if e.as_remote().is_some_and(|r| r.is("interop.InteropError") && r.message == "custom boom"));
    c.check_seen("fail('custom') raises interop.InteropError('custom boom')", ok, custom);
    let other = root.call_method::<Value>("fail", ("other",)).await;
    c.check_raises("fail('other') raises TypeError", other, kinds::TYPE_ERROR);
    Ok(())
}

async fn slow(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    // A callback runs when the result settles.
    let call = root.call_method::<f64>("slow", (0.1,));
    let (tx, rx) = oneshot::channel();
    call.add_callback(move |outcome| {
        let _ = tx.send(outcome);
    });
    let by_callback = rx.await.map_err(|_| netref::Error::ConnectionClosed("callback dropped".into()))?;
    c.check_seen("slow(0.1): its callback gets 0.1", matches!(by_callback, Ok(s) if s == 0.1), &by_callback);
    let by_await = call.await;
    c.check_seen("slow(0.1): awaiting the same result gives 0.1 too", matches!(by_await, Ok(s) if s == 0.1), &by_await);

    // A blocking wait, from a thread that may block (never an actix thread).
    let call = root.call_method::<f64>("slow", (0.2,));
    let waited = tokio::task::spawn_blocking(move || call.wait().and_then(|()| call.value()))
        .await
        .map_err(|e| netref::Error::Io(e.to_string()))?;
    c.check_seen(
        "slow(0.2): wait() then value() on a plain thread gives 0.2",
        matches!(waited, Ok(s) if s == 0.2),
        &waited,
    );

    // An expiry: the result fails with a timeout and reads as expired; RPyC has no cancel frame,
    // so the server finishes and its late reply is dropped here. The stock server serves one
    // connection's requests in order, so the next call waits for `slow` to finish there.
    let mut call = root.call_method::<f64>("slow", (0.8,));
    call.set_expiry(Some(Duration::from_millis(200)));
    let (tx, rx) = oneshot::channel();
    call.add_callback(move |outcome| {
        let _ = tx.send(matches!(outcome, Err(netref::Error::Timeout(_))));
    });
    let outcome = (&mut call).await;
    // As in RPyC, an expired result has not arrived: not ready, not an error.
    let expired = matches!(outcome, Err(netref::Error::Timeout(_))) && call.expired() && !call.ready() && !call.error();
    c.check_seen(
        "slow(0.8) with a 200 ms expiry: a timeout; expired, neither ready nor an error",
        expired,
        (&outcome, call.expired(), call.ready(), call.error()),
    );
    c.check("slow(0.8): its callback saw the timeout", rx.await.unwrap_or(false));
    drop(call);
    let sum: i64 = root.call_method("add", (2, 3)).await?;
    c.check_seen("after the expiry (and the late reply), the connection is usable: add(2, 3) == 5", sum == 5, sum);
    Ok(())
}

/// The context manager: RPyC's `with` is CALLATTR `__enter__`, then CTXEXIT with the block's
/// error class (or None); its reply says whether the error is suppressed.
pub(crate) async fn context(root: &NetRef, c: &mut Checks) -> Result<(), netref::Error> {
    let ctx: NetRef = root.call_method("context", (4,)).await?;
    let entered: i64 = ctx.enter().await?;
    let suppressed = ctx.exit(None).await?;
    drop(ctx);
    let log: Vec<String> = root.call_method("context_log", ()).await?;
    c.check_seen(
        "context(4): enter gives 21, a clean exit, \"exit ok\" logged",
        entered == 21 && !suppressed && log == ["enter 4", "exit ok"],
        (entered, suppressed, &log),
    );

    let block_error = RemoteError::new(kinds::VALUE_ERROR, "the block failed");
    let ctx: NetRef = root.call_method("context", (5,)).await?;
    let entered: i64 = ctx.enter().await?;
    let suppressed = ctx.exit(Some(&block_error)).await?;
    drop(ctx);
    let log: Vec<String> = root.call_method("context_log", ()).await?;
    c.check_seen(
        "context(5): exit with a ValueError class, not suppressed, \"exit exc\" logged",
        entered == 22 && !suppressed && log == ["enter 5", "exit exc"],
        (entered, suppressed, &log),
    );

    let ctx: NetRef = root.call_method("context", (6, true)).await?;
    let _: i64 = ctx.enter().await?;
    let suppressed = ctx.exit(Some(&block_error)).await?;
    drop(ctx);
    let log: Vec<String> = root.call_method("context_log", ()).await?;
    c.check_seen(
        "context(6, suppress=True): the error is suppressed",
        suppressed && log == ["enter 6", "exit exc"],
        (suppressed, &log),
    );
    Ok(())
}
