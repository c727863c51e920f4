//! Guards that a plain tokio program (no actix system, no `LocalSet`) serves and connects with
//! the usual calls — `Server::builder(..).bind_tcp`, `netref::connect`, `connect_pair` — and
//! that blocking waits are allowed wherever they cannot stop a connection (`spawn_blocking`,
//! `block_in_place`, worker threads) and refused where they would (an actix thread).

use std::time::Duration;

use netref::prelude::*;

const LIMIT: Duration = Duration::from_secs(10);

fn calculator() -> Object {
    Object::builder("demo.Calculator").method("add", |a: i64, b: i64| a + b).method("incr", || 7_i64).build()
}

async fn within<F: std::future::IntoFuture>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f).await.unwrap_or_else(|_| panic!("timed out: {what}"))
}

#[tokio::test(flavor = "current_thread")]
async fn a_current_thread_tokio_program_serves_and_connects() {
    assert!(actix_rt::System::try_current().is_none());
    let server = within("bind", Server::builder(Service::shared(calculator())).bind_tcp("127.0.0.1:0")).await.unwrap();
    let addr = server.local_addr().unwrap().to_string();

    let peer = within("connect", netref::connect(addr.clone())).await.unwrap();
    let calc = within("root", peer.root()).await.unwrap();
    let sum: i64 = within("add", calc.call_method("add", (1, 2))).await.unwrap();
    assert_eq!(sum, 3);

    // `:PORT` names the loopback address.
    let port = addr.rsplit(':').next().unwrap();
    let other = within("connect :port", netref::connect(format!(":{port}"))).await.unwrap();
    assert_eq!(within("add", other.root().await.unwrap().call_method::<i64>("add", (2, 2))).await.unwrap(), 4);

    peer.close().await;
    other.close().await;
    within("shutdown", server.shutdown(Duration::from_secs(1))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_futures_are_send_and_run_in_spawned_tasks() {
    let server = Server::builder(Service::shared(calculator())).bind_tcp("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let peer = netref::connect(addr).timeout(Duration::from_secs(5)).await?;
        let calc = peer.root().await?;
        calc.call_method::<i64>("add", (20, 22)).await
    });
    assert_eq!(within("spawned task", task).await.unwrap().unwrap(), 42);
    server.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "current_thread")]
async fn an_in_memory_pair_starts_from_plain_tokio() {
    let (_server, client) = netref::connect_pair(Service::shared(calculator()), Service::void());
    let calc = within("root", client.root()).await.unwrap();
    assert_eq!(within("add", calc.call_method::<i64>("add", (5, 6))).await.unwrap(), 11);
}

#[tokio::test(flavor = "current_thread")]
async fn a_bad_address_is_a_clear_error() {
    let err = netref::connect("no-port-here").await.unwrap_err();
    assert!(err.to_string().contains("expected HOST:PORT, :PORT or unix:PATH"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_waits_work_in_spawn_blocking_and_block_in_place() {
    let (_server, client) = netref::connect_pair(Service::shared(calculator()), Service::void());
    let calc = within("root", client.root()).await.unwrap();

    let in_pool = calc.clone();
    let sum = within(
        "spawn_blocking",
        tokio::task::spawn_blocking(move || in_pool.call_method::<i64>("add", (1, 1)).value()),
    )
    .await
    .unwrap();
    assert_eq!(sum.unwrap(), 2);

    let sum = tokio::task::block_in_place(|| calc.call_method::<i64>("add", (2, 3)).value());
    assert_eq!(sum.unwrap(), 5);
}

#[actix_rt::test]
async fn blocking_waits_are_refused_on_an_actix_thread() {
    let (_server, client) = netref::connect_pair(Service::shared(calculator()), Service::void());
    let calc = client.root().await.unwrap();
    let pending = calc.call_method::<i64>("add", (1, 1));
    assert!(matches!(pending.wait(), Err(Error::BlockingInRuntime)));
    assert_eq!(pending.await.unwrap(), 2);
}
