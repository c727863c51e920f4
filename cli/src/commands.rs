//! The inspecting commands: ping, ls, dir, inspect, get, call, watch. Each connects, does its
//! requests through netref's public API, prints through [`Output`], and closes the connection.
//!
//! This module must never format a failure itself (see `failure`), and never loops without
//! a bound other than the user's interrupt (`watch` without `--count`).

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use netref::{NetRef, Peer, Value};
use serde_json::{json, Value as Json};

use crate::{
    failure::Failure,
    json::{self, Reprs},
    output::Output,
    target::{self, split_path},
    ConnectOptions,
};

/// Connects and finds where paths start.
async fn open(opts: &ConnectOptions, addr: &str) -> Result<(Peer, NetRef), Failure> {
    let peer = target::connect(opts, addr).await?;
    let start = target::start(&peer, opts).await?;
    Ok((peer, start))
}

/// Runs `body` on an open connection and closes it afterwards, whatever the outcome.
async fn with_peer<T>(peer: Peer, body: impl std::future::Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    let outcome = body.await;
    peer.close().await;
    outcome
}

/// The reprs of the references inside `value`; a repr the peer refuses is left out.
async fn reprs_of(value: &Value) -> Reprs {
    let mut refs = Vec::new();
    json::refs_in(value, &mut refs);
    let mut reprs = Reprs::new();
    for r in refs {
        if let Ok(text) = r.repr().await {
            reprs.insert(r.id_pack(), text);
        }
    }
    reprs
}

async fn value_to_json(value: &Value) -> Json {
    json::to_json(value, &reprs_of(value).await)
}

/// `netref ping ADDR`.
pub(crate) async fn ping(opts: &ConnectOptions, addr: &str, out: &Output) -> Result<(), Failure> {
    let peer = target::connect(opts, addr).await?;
    with_peer(peer.clone(), async {
        let sent = Instant::now();
        peer.ping("netref").await.map_err(Failure::netref(format!("pinging {addr}")))?;
        let rtt = sent.elapsed();
        let ms = rtt.as_secs_f64() * 1000.0;
        out.emit(|| json!({"ok": true, "addr": addr, "rtt_ms": ms}), |_| format!("pong from {addr}: time={ms:.3} ms"));
        Ok(())
    })
    .await
}

/// One member of an object: its name and whether INSPECT lists it as a method.
struct Member {
    name: String,
    method: bool,
}

/// The names DIR gives, each marked method when INSPECT lists it.
async fn members(object: &NetRef, doing: &str) -> Result<Vec<Member>, Failure> {
    let names = object.dir().await.map_err(Failure::netref(format!("listing {doing} (DIR)")))?;
    let methods: HashSet<String> =
        object.inspect().await.map_err(Failure::netref(format!("inspecting {doing} (INSPECT)")))?.into_iter().collect();
    let mut members: Vec<Member> =
        names.into_iter().map(|name| Member { method: methods.contains(&name), name }).collect();
    // A method INSPECT names but DIR does not (a peer's DIR may list attributes only) still shows.
    for name in methods {
        if !members.iter().any(|m| m.name == name) {
            members.push(Member { name, method: true });
        }
    }
    members.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(members)
}

fn kind(member: &Member) -> &'static str {
    if member.method {
        "method"
    } else {
        "attribute"
    }
}

fn members_json(members: &[Member]) -> Json {
    Json::Array(members.iter().map(|m| json!({"name": m.name, "kind": kind(m)})).collect())
}

fn members_table(out: &Output, members: &[Member]) -> String {
    let rows: Vec<Vec<String>> = members.iter().map(|m| vec![m.name.clone(), kind(m).to_owned()]).collect();
    out.table(&rows, |column, cell| if column == 0 { out.bold(cell) } else { out.dim(cell) })
}

fn shown(path: &str) -> &str {
    if path.is_empty() {
        "root"
    } else {
        path
    }
}

/// `netref ls ADDR`.
pub(crate) async fn ls(opts: &ConnectOptions, addr: &str, out: &Output) -> Result<(), Failure> {
    let (peer, root) = open(opts, addr).await?;
    with_peer(peer, async {
        let type_name = root.type_name().to_owned();
        let repr = root.repr().await.map_err(Failure::netref("reading the root's repr"))?;
        let members = members(&root, "the root").await?;
        const EXPORTS: &str = "not listable: the protocol has no request that lists named exports; \
                               reach a known one with --export NAME";
        out.emit(
            || json!({"ok": true, "type": type_name, "repr": repr, "members": members_json(&members), "exports": Json::Null}),
            |out| {
                let mut text = out.table(
                    &[vec!["type".into(), type_name.clone()], vec!["repr".into(), repr.clone()]],
                    |c, cell| if c == 0 { out.dim(cell) } else { cell.to_owned() },
                );
                text.push('\n');
                text.push_str(&members_table(out, &members));
                text.push_str(&format!("\n{}\n", out.dim(&format!("exports: {EXPORTS}"))));
                text
            },
        );
        Ok(())
    })
    .await
}

/// Resolves `path` to an object from where paths start.
async fn object_at(opts: &ConnectOptions, addr: &str, path: &str) -> Result<(Peer, NetRef), Failure> {
    let names = split_path(path)?;
    let (peer, start) = open(opts, addr).await?;
    match target::walk(start, &names).await {
        Ok(object) => Ok((peer, object)),
        Err(e) => {
            peer.close().await;
            Err(e)
        }
    }
}

/// `netref dir ADDR [PATH]`.
pub(crate) async fn dir(opts: &ConnectOptions, addr: &str, path: Option<&str>, out: &Output) -> Result<(), Failure> {
    let path = path.unwrap_or("");
    let (peer, object) = object_at(opts, addr, path).await?;
    with_peer(peer, async {
        let members = members(&object, shown(path)).await?;
        out.emit(
            || json!({"ok": true, "path": shown(path), "type": object.type_name(), "members": members_json(&members)}),
            |out| members_table(out, &members),
        );
        Ok(())
    })
    .await
}

/// `netref inspect ADDR [PATH]`: methods, then attributes with their current values.
pub(crate) async fn inspect(
    opts: &ConnectOptions,
    addr: &str,
    path: Option<&str>,
    out: &Output,
) -> Result<(), Failure> {
    let path = path.unwrap_or("");
    let (peer, object) = object_at(opts, addr, path).await?;
    with_peer(peer, async {
        let repr = object.repr().await.map_err(Failure::netref(format!("reading the repr of {}", shown(path))))?;
        let members = members(&object, shown(path)).await?;
        let mut rows = Vec::new();
        let mut docs = Vec::new();
        for m in &members {
            if m.method {
                // INSPECT carries no signatures today (its second slot is always none).
                rows.push(vec![m.name.clone(), "method".into(), format!("{}(…)", m.name)]);
                docs.push(json!({"name": m.name, "kind": "method", "signature": Json::Null}));
                continue;
            }
            let (shown_value, doc) = match object.getattr::<Value>(&m.name).await {
                Ok(value) => {
                    let j = value_to_json(&value).await;
                    (j.to_string(), json!({"name": m.name, "kind": "attribute", "value": j}))
                }
                Err(e) => {
                    let why = e.to_string();
                    (format!("<{why}>"), json!({"name": m.name, "kind": "attribute", "error": why}))
                }
            };
            rows.push(vec![m.name.clone(), "attribute".into(), shown_value]);
            docs.push(doc);
        }
        let type_name = object.type_name().to_owned();
        out.emit(
            || json!({"ok": true, "path": shown(path), "type": type_name, "repr": repr, "members": docs}),
            |out| {
                let mut text = format!("{} {type_name}\n{} {repr}\n\n", out.dim("type"), out.dim("repr"));
                text.push_str(&out.table(&rows, |c, cell| match c {
                    0 => out.bold(cell),
                    1 => out.dim(cell),
                    _ => cell.to_owned(),
                }));
                text
            },
        );
        Ok(())
    })
    .await
}

/// Reads `path` (its last name by GETATTR on the object the rest leads to).
async fn read(start: &NetRef, names: &[&str]) -> Result<Value, Failure> {
    let Some((last, parents)) = names.split_last() else {
        return Ok(Value::Ref(start.clone()));
    };
    let owner = target::walk(start.clone(), parents).await?;
    owner.getattr::<Value>(last).await.map_err(Failure::netref(format!("reading {}", names.join("."))))
}

/// `netref get ADDR PATH`.
pub(crate) async fn get(opts: &ConnectOptions, addr: &str, path: &str, out: &Output) -> Result<(), Failure> {
    let names = split_path(path)?;
    let (peer, start) = open(opts, addr).await?;
    with_peer(peer, async {
        let value = read(&start, &names).await?;
        let j = value_to_json(&value).await;
        out.emit(|| json!({"ok": true, "path": shown(path), "value": j}), |_| j.to_string());
        Ok(())
    })
    .await
}

/// Positional arguments and keyword arguments (name, value), as a call sends them.
type CallArguments = (Vec<Value>, Vec<(Value, Value)>);

/// Parses positional JSON arguments and `name=JSON` keyword arguments.
fn call_arguments(args: &[String], kwargs: &[String]) -> Result<CallArguments, Failure> {
    let positional = args
        .iter()
        .enumerate()
        .map(|(i, text)| json::parse(text).map_err(|e| Failure::Usage(format!("argument {}: {e}", i + 1))))
        .collect::<Result<Vec<_>, _>>()?;
    let keywords = kwargs
        .iter()
        .map(|kw| {
            let (name, text) =
                kw.split_once('=').ok_or_else(|| Failure::Usage(format!("--kw {kw:?}: expected NAME=JSON")))?;
            let value = json::parse(text).map_err(|e| Failure::Usage(format!("--kw {name}: {e}")))?;
            Ok((Value::Str(name.to_owned()), value))
        })
        .collect::<Result<Vec<_>, Failure>>()?;
    Ok((positional, keywords))
}

/// `netref call ADDR PATH [ARGS…] [--kw NAME=JSON…]`.
pub(crate) async fn call(
    opts: &ConnectOptions,
    addr: &str,
    path: &str,
    args: &[String],
    kwargs: &[String],
    out: &Output,
) -> Result<(), Failure> {
    let names = split_path(path)?;
    let Some((method, parents)) = names.split_last() else {
        return Err(Failure::Usage("call needs a method path, such as `add` or `store.put`".into()));
    };
    let (positional, keywords) = call_arguments(args, kwargs)?;
    let (peer, start) = open(opts, addr).await?;
    with_peer(peer, async {
        let owner = target::walk(start, parents).await?;
        let result: Value = owner
            .call_method_kw(method, Value::Tuple(positional), Value::Map(keywords))
            .await
            .map_err(Failure::netref(format!("calling {path}")))?;
        let j = value_to_json(&result).await;
        out.emit(|| json!({"ok": true, "path": path, "result": j}), |_| j.to_string());
        Ok(())
    })
    .await
}

/// `netref watch ADDR PATH --every D [--count N]`: one line per change, the first read included.
pub(crate) async fn watch(
    opts: &ConnectOptions,
    addr: &str,
    path: &str,
    every: Duration,
    count: Option<u64>,
    out: &Output,
) -> Result<(), Failure> {
    if every.is_zero() {
        return Err(Failure::Usage("--every must be longer than zero".into()));
    }
    let names = split_path(path)?;
    let (peer, start) = open(opts, addr).await?;
    with_peer(peer, async {
        let began = Instant::now();
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last: Option<Value> = None;
        let mut printed = 0u64;
        while count.is_none_or(|n| printed < n) {
            ticks.tick().await;
            let value = read(&start, &names).await?;
            if last.as_ref() == Some(&value) {
                continue;
            }
            let j = value_to_json(&value).await;
            let elapsed = began.elapsed().as_secs_f64();
            out.emit(
                || json!({"elapsed_s": elapsed, "path": shown(path), "value": j}),
                |out| format!("{}  {j}", out.dim(&format!("+{elapsed:.3}s"))),
            );
            last = Some(value);
            printed += 1;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_arguments_need_a_name_and_json() {
        let (pos, kw) = call_arguments(&["1".into(), "[2]".into()], &["x=\"y\"".into()]).unwrap();
        assert_eq!(pos, vec![Value::Int(1), Value::List(vec![Value::Int(2)])]);
        assert_eq!(kw, vec![(Value::Str("x".into()), Value::Str("y".into()))]);
        assert_eq!(call_arguments(&[], &["novalue".into()]).unwrap_err().exit_code(), 2);
        assert_eq!(call_arguments(&["{oops".into()], &[]).unwrap_err().exit_code(), 2);
    }
}
