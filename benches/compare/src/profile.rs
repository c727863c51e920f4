//! Fixed-count clients for profiling one operation: `compare --client OP ADDR N` runs `N`
//! operations of one kind against a server started with `compare --server KIND ADDR`
//! (`KIND` from [`CLIENT_OPS`]), untimed, with no warm-up and no time cap.
//!
//! A profiler's count over two runs with different `N` then gives the cost of one operation
//! by difference: process start-up, connecting and closing cancel out. `profile.sh` next to
//! this crate does that with callgrind, for either side (see `PROFILING.md`).

use crate::{actor_floor, deadline, floor, netref_bench, tarpc_bench, BoxError};

/// Every operation [`client`] runs, with the server kind it talks to and what one operation
/// is.
pub const CLIENT_OPS: [(&str, &str, &str); 15] = [
    ("sync", "netref", "call_method(\"add\", (1, 2)), awaited"),
    ("sync-task", "netref", "the same from a task spawned on the actix system"),
    ("pipelined", "netref", "an add call, 1000 in flight"),
    ("echo", "netref", "a 1 MiB SharedBytes echo"),
    ("echo-buf", "netref", "a 1 MiB serde_bytes::ByteBuf echo"),
    ("callback", "netref", "call_me(f, 4): the server calls f back during the call"),
    ("create-release", "netref", "a fresh remote object, dropped at once (its Release batched)"),
    ("connect", "netref", "connect, root, add, close"),
    ("connect-early", "netref", "the same with Config::early_requests"),
    ("floor-sync", "floor", "a 16-byte ping-pong"),
    ("floor-connect", "floor", "connect, one ping-pong, close"),
    ("actor-floor-sync", "actor-floor", "the same, each socket owned by an actix actor"),
    ("actor-floor-connect", "actor-floor", "connect, one ping-pong, close, an actor per socket"),
    ("tarpc-sync", "tarpc", "add(1, 2), awaited"),
    ("tarpc-connect", "tarpc", "connect, add, drop"),
];

/// The server kind `op` needs, or `None` for an unknown operation.
pub fn server_kind(op: &str) -> Option<&'static str> {
    CLIENT_OPS.iter().find(|(o, _, _)| *o == op).map(|(_, kind, _)| *kind)
}

/// Runs `n` operations `op` against the server at `addr` (of the kind [`server_kind`] names).
pub fn client(op: &str, addr: &str, n: usize) -> Result<(), BoxError> {
    let kind = server_kind(op)
        .ok_or_else(|| format!("unknown operation {op:?} (expected one of {:?})", CLIENT_OPS.map(|(o, _, _)| o)))?;
    match kind {
        "netref" => actix_rt::System::new().block_on(netref_ops(op, addr, n)),
        "actor-floor" => actix_rt::System::new().block_on(async {
            if op == "actor-floor-connect" {
                for _ in 0..n {
                    actor_floor::connect_ping_close(addr).await?;
                }
                Ok(())
            } else {
                actor_floor::ping_pong(addr, n).await
            }
        }),
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
            match op {
                "floor-sync" => {
                    let mut s = floor::connect(addr, b'p').await?;
                    for _ in 0..n {
                        floor::ping_pong(&mut s).await?;
                    }
                    Ok(())
                }
                "floor-connect" => {
                    for _ in 0..n {
                        floor::connect_ping_close(addr).await?;
                    }
                    Ok(())
                }
                "tarpc-sync" => {
                    let client = tarpc_bench::connect(addr).await?;
                    for _ in 0..n {
                        tarpc_bench::add(&client).await?;
                    }
                    Ok(())
                }
                "tarpc-connect" => {
                    for _ in 0..n {
                        tarpc_bench::add(&tarpc_bench::connect(addr).await?).await?;
                    }
                    Ok(())
                }
                _ => unreachable!("every tokio operation is listed"),
            }
        }),
    }
}

async fn netref_ops(op: &str, addr: &str, n: usize) -> Result<(), BoxError> {
    if let Some(config) = match op {
        "connect" => Some(netref::Config::default()),
        "connect-early" => Some(netref::Config::default().early_requests(true)),
        _ => None,
    } {
        for _ in 0..n {
            netref_bench::connect_call_close(addr, &config).await?;
        }
        return Ok(());
    }
    let peer = netref_bench::connect(addr).await?;
    let root = peer.root().await?;
    match op {
        "sync" => {
            for _ in 0..n {
                netref_bench::add(&root).await?;
            }
        }
        "sync-task" => {
            let task_root = root.clone();
            actix_rt::spawn(async move {
                for _ in 0..n {
                    netref_bench::add(&task_root).await.map_err(|e| e.to_string())?;
                }
                Ok::<_, String>(())
            })
            .await
            .map_err(|e| format!("the calling task: {e}"))??;
        }
        "pipelined" => {
            // Bounded by `n`; the deadline only keeps a stuck server from hanging us.
            let done = netref_bench::pipelined_calls(&root, n, 1000, deadline(LONG)).await?;
            if done != n {
                return Err(format!("{done} of {n} pipelined calls in {LONG:?}").into());
            }
        }
        "echo" => echo(&root, "echo", netref::SharedBytes::from(echo_payload()), n).await?,
        "echo-buf" => echo(&root, "echo_buf", serde_bytes::ByteBuf::from(echo_payload()), n).await?,
        "callback" => {
            let f = netref_bench::times_ten();
            for _ in 0..n {
                netref_bench::call_back(&root, &f).await?;
            }
        }
        "create-release" => {
            for _ in 0..n {
                let obj: netref::NetRef = root.call_method("fresh", ()).await?;
                drop(obj);
            }
            if !netref_bench::wait_drained(&root, LONG).await? {
                return Err(format!("the server's export table did not drain in {LONG:?}").into());
            }
        }
        _ => unreachable!("every netref operation is listed"),
    }
    drop(root);
    peer.close().await;
    Ok(())
}

/// The 1 MiB the echo operations send (the benchmark's payload).
fn echo_payload() -> Vec<u8> {
    (0..1usize << 20).map(|i| (i * 31 % 251) as u8).collect()
}

/// `n` echoes of `data` through `method`. Only the last reply is compared, as in the
/// benchmark: comparing every 1 MiB reply would count the comparison as netref's.
async fn echo<T>(root: &netref::NetRef, method: &str, data: T, n: usize) -> Result<(), BoxError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq,
{
    let mut last = None;
    for _ in 0..n {
        last = Some(root.call_method::<T>(method, (&data,)).await?);
    }
    if n > 0 && last.as_ref() != Some(&data) {
        return Err(format!("netref {method}: the reply differs from the payload").into());
    }
    Ok(())
}

/// What a profiled run may take at most (under callgrind, ~50 times slower than native).
const LONG: std::time::Duration = std::time::Duration::from_secs(600);
