//! Guards isolation of user code: a panic or an error in a user method becomes an `Exception`
//! reply with the message and remote traceback text, and the connection lives on.

mod common;

use std::sync::Arc;

use common::{calculator, connect_default, Transport};
use netref::{kinds, prelude::*};

async fn panics_become_exceptions(t: Transport) {
    let (server, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let err = calc.call_method::<i64>("boom", ()).await.unwrap_err();
    let e = err.as_remote().expect("a remote error");
    assert!(e.is(kinds::PANIC), "{e}");
    assert!(e.message.contains("the calculator exploded"), "{e}");
    assert!(e.traceback.contains("demo.Calculator"), "traceback: {}", e.traceback);
    assert!(format!("{e:#}").contains("Remote Traceback"));
    // The connection lives on.
    assert_eq!(calc.call_method::<i64>("add", (1, 2)).await.unwrap(), 3);
    assert!(!server.is_closed() && !client.is_closed());
}

async fn errors_keep_their_kind(t: Transport) {
    let (_s, client) = connect_default(t, Service::shared(calculator(Arc::default()))).await;
    let calc = client.root().await.unwrap();
    let err = calc.call_method::<i64>("div", (1, 0)).await.unwrap_err();
    let e = err.as_remote().expect("a remote error");
    assert_eq!(e.kind, "builtins.ZeroDivisionError");
    assert_eq!(e.message, "division by zero");
    assert_eq!(calc.call_method::<i64>("div", (9, 3)).await.unwrap(), 3);
}

async fn async_panics_become_exceptions(t: Transport) {
    let svc = Object::builder("demo.AsyncBoom")
        .async_method("later", || async {
            tokio::task::yield_now().await;
            if true {
                panic!("late failure");
            }
            1
        })
        .build();
    let (_s, client) = connect_default(t, Service::shared(svc)).await;
    let root = client.root().await.unwrap();
    let err = root.call_method::<i64>("later", ()).await.unwrap_err();
    assert!(err.as_remote().is_some_and(|e| e.is(kinds::PANIC) && e.message.contains("late failure")), "{err}");
    assert_eq!(client.ping(1).await.unwrap(), Value::Int(1));
}

over_both_transports!(panics_become_exceptions, errors_keep_their_kind, async_panics_become_exceptions);
