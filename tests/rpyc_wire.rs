//! netref on both ends of RPyC 6's wire, over loopback TCP: a `Server::builder(..).rpyc()`
//! listener and a `netref::connect(..).rpyc()` client. Calls, a callback served by the client
//! while the server waits, a remote exception, a refused PICKLE, releases (DEL requests) and a
//! native client that reaches the RPyC listener by mistake failing rather than hanging.

use std::time::Duration;

use netref::{kinds, prelude::*, Server};

fn service() -> Object {
    Object::builder("test.Calc")
        .method("add", |a: i64, b: i64| a + b)
        .try_async_method("apply", |f: NetRef, x: i64| async move {
            let y: i64 = f.call((x,)).await?;
            Ok::<_, netref::Error>(y + 1)
        })
        .try_method("fail", || Err::<i64, _>(RemoteError::new(kinds::VALUE_ERROR, "boom")))
        .method("child", || Object::builder("test.Child").method("ping", || 1).build())
        .build()
}

#[actix_rt::test]
async fn netref_to_netref_over_the_rpyc_wire() {
    let server = Server::builder(Service::shared(service())).rpyc().bind_tcp("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let peer = netref::connect(addr.as_str()).rpyc().await.unwrap();
    let root = peer.root().await.unwrap();
    assert_eq!(root.type_name(), "test.Calc");
    assert_eq!(root.call_method::<i64>("add", (2, 3)).await.unwrap(), 5);

    let double = NetRef::from(Object::function(|x: i64| x * 2));
    assert_eq!(root.call_method::<i64>("apply", (double, 20)).await.unwrap(), 41);

    let err = root.call_method::<i64>("fail", ()).await.unwrap_err();
    let remote = err.as_remote().expect("a remote error");
    assert!(remote.is(kinds::VALUE_ERROR) && remote.message == "boom", "{remote:?}");

    let err = root.obtain::<Value>().await.unwrap_err();
    let remote = err.as_remote().expect("a remote error");
    assert!(remote.is(kinds::VALUE_ERROR) && remote.message.contains("pickling is disabled"), "{remote:?}");

    // A child's export is given back by a DEL request once its proxy is dropped.
    let child: NetRef = root.call_method("child", ()).await.unwrap();
    assert_eq!(child.call_method::<i64>("ping", ()).await.unwrap(), 1);
    drop(child);
    peer.ping(Value::None).await.unwrap();
    let server_peer = server.peers().pop().expect("one connection");
    tokio::time::timeout(Duration::from_secs(3), async {
        while server_peer.stats().await.map_or(0, |s| s.unpinned_exports) > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the child's export released");

    peer.close_within("done", Duration::from_secs(3)).await;
    tokio::time::timeout(Duration::from_secs(3), server.wait_connections(|n| n == 0)).await.expect("closed");
    server.shutdown(Duration::from_secs(1)).await;
}

#[actix_rt::test]
async fn a_native_client_at_an_rpyc_listener_fails_instead_of_hanging() {
    let server = Server::builder(Service::shared(service())).rpyc().bind_tcp("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let outcome = tokio::time::timeout(Duration::from_secs(15), async {
        let peer = netref::connect(addr.as_str()).await?;
        peer.root().await
    })
    .await
    .expect("no hang");
    assert!(outcome.is_err(), "a native Hello is not an rpyc frame");
    server.shutdown(Duration::from_secs(1)).await;
}

#[actix_rt::test]
async fn a_failing_rust_callback_raises_in_the_caller_over_the_rpyc_wire() {
    let server = Server::builder(Service::shared(service())).rpyc().bind_tcp("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let peer = netref::connect(addr.as_str()).rpyc().await.unwrap();
    let root = peer.root().await.unwrap();
    let boom = NetRef::from(Object::try_function(|x: i64| {
        Err::<i64, _>(RemoteError::new(kinds::KEY_ERROR, format!("no {x}")))
    }));
    let err = root.call_method::<i64>("apply", (boom, 3)).await.unwrap_err();
    let remote = err.as_remote().expect("a remote error");
    assert!(remote.is(kinds::KEY_ERROR) && remote.message.contains("no 3"), "{remote:?}");
    peer.close_within("done", Duration::from_secs(3)).await;
    server.shutdown(Duration::from_secs(1)).await;
}
