//! The interop service of the RPyC interop contract (`interop-1`, contract §2) served over RPyC 6's
//! wire, for stock Python rpyc 6.0.x clients:
//! `cargo run --example rpyc_interop_server -- [ADDR] [--tls-cert FILE --tls-key FILE]` (ADDR
//! defaults to `127.0.0.1:0`; binds loopback unless told otherwise). The first stdout line is
//! `listening on HOST:PORT`; it serves until interrupted. From Python:
//!
//! ```python
//! import rpyc
//! conn = rpyc.connect("127.0.0.1", PORT)
//! print(conn.root.add(1, 2))
//! ```
//!
//! With `--tls-cert` and `--tls-key` (PEM files) it serves TLS instead, as
//! `Server::builder(..).rpyc().tls(..)` does; a stock client then connects with
//! `rpyc.ssl_connect("127.0.0.1", PORT, ca_certs="ca.pem")` (`interop/rpyc/run-netref-tls-check.sh`
//! runs the stock checks that way). `--help` lists the options.
//!
//! State (`counter`, `context_log`, `released`) is per connection. Nothing a client sends is
//! executed or unpickled: PICKLE is refused by the RPyC dialect.

use std::{
    sync::{
        atomic::{AtomicI64, Ordering},
        Arc, Mutex, OnceLock,
    },
    time::Duration,
};

use netref::{kinds, prelude::*, AccessPolicy, Args, Data, MethodFuture, Server, WeakObject};

const CONTRACT: &str = "interop-1";
const SLOW_CAP: f64 = 10.0;

fn done(r: Result<Value, RemoteError>) -> MethodFuture {
    Box::pin(async move { r })
}

fn err(kind: &str, message: impl Into<String>) -> RemoteError {
    RemoteError::new(kind, message)
}

/// Positional argument `i`, else keyword `name`.
fn arg(args: &Args, i: usize, name: &str) -> Option<Value> {
    args.positional.get(i).cloned().or_else(|| args.kwargs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

fn need(args: &Args, i: usize, name: &str) -> Result<Value, RemoteError> {
    arg(args, i, name).ok_or_else(|| err(kinds::TYPE_ERROR, format!("missing required argument: '{name}'")))
}

fn int_arg(args: &Args, i: usize, name: &str) -> Result<i64, RemoteError> {
    match need(args, i, name)? {
        Value::Int(n) => Ok(n),
        other => Err(err(kinds::TYPE_ERROR, format!("'{name}' must be an int, not {}", other.kind()))),
    }
}

/// A signed decimal int: sign and digits (most significant first).
fn decimal(v: &Value) -> Option<(bool, Vec<u8>)> {
    let text = match v {
        Value::Int(n) => n.to_string(),
        Value::BigInt(b) => b.as_str().to_owned(),
        _ => return None,
    };
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    Some((neg, digits.bytes().map(|d| d - b'0').collect()))
}

fn cmp_mag(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `a + b` of magnitudes, or `a - b` when `sub` (with `a >= b`).
fn mag_op(a: &[u8], b: &[u8], sub: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(a.len() + 1);
    let mut carry = 0i16;
    for i in 0..a.len().max(b.len()) {
        let x = if i < a.len() { a[a.len() - 1 - i] as i16 } else { 0 };
        let y = if i < b.len() { b[b.len() - 1 - i] as i16 } else { 0 };
        let mut d = if sub { x - y - carry } else { x + y + carry };
        carry = 0;
        if d < 0 {
            d += 10;
            carry = 1;
        } else if d > 9 {
            d -= 10;
            carry = 1;
        }
        out.push(d as u8);
    }
    if carry > 0 {
        out.push(1);
    }
    while out.len() > 1 && out.last() == Some(&0) {
        out.pop();
    }
    out.reverse();
    out
}

/// Exact int addition of any size.
fn add_ints(a: &Value, b: &Value) -> Option<Value> {
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        if let Some(n) = x.checked_add(*y) {
            return Some(Value::Int(n));
        }
    }
    let ((an, ad), (bn, bd)) = (decimal(a)?, decimal(b)?);
    let (neg, digits) = if an == bn {
        (an, mag_op(&ad, &bd, false))
    } else if cmp_mag(&ad, &bd).is_ge() {
        (an, mag_op(&ad, &bd, true))
    } else {
        (bn, mag_op(&bd, &ad, true))
    };
    let mut text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
    if neg && text != "0" {
        text.insert(0, '-');
    }
    Some(match text.parse::<i64>() {
        Ok(n) => Value::Int(n),
        Err(_) => Value::BigInt(netref::BigInt::parse(&text).ok()?),
    })
}

/// An int as a float, or Python's OverflowError.
fn to_float(v: &Value) -> Result<Option<f64>, RemoteError> {
    Ok(match v {
        Value::Float(x) => Some(*x),
        Value::Int(n) => Some(*n as f64),
        Value::BigInt(b) => {
            let x: f64 = b.as_str().parse().unwrap_or(f64::INFINITY);
            if !x.is_finite() {
                return Err(err("builtins.OverflowError", "int too large to convert to float"));
            }
            Some(x)
        }
        _ => None,
    })
}

fn add(a: &Value, b: &Value) -> Result<Value, RemoteError> {
    if let Some(sum) = add_ints(a, b) {
        return Ok(sum);
    }
    if let (Value::Str(a), Value::Str(b)) = (a, b) {
        return Ok(Value::Str(format!("{a}{b}")));
    }
    if let (Some(x), Some(y)) = (to_float(a)?, to_float(b)?) {
        return Ok(Value::Float(x + y));
    }
    Err(err(kinds::TYPE_ERROR, format!("unsupported operand type(s) for +: '{}' and '{}'", a.kind(), b.kind())))
}

/// An iterator object named `type_name` over `items`: `__next__` (StopIteration at the end),
/// BUFFITER, and `__iter__` returning the same reference.
fn iterator(type_name: &str, items: Vec<Value>) -> Object {
    let this: Arc<OnceLock<WeakObject>> = Arc::new(OnceLock::new());
    let me = this.clone();
    let obj = Object::builder(type_name)
        .iterator_over(items)
        .raw_method("__iter__", move |_| {
            let me = me.get().and_then(WeakObject::upgrade);
            done(me.map(|o| Value::Ref(NetRef::from(o))).ok_or_else(|| err(kinds::TYPE_ERROR, "iterator gone")))
        })
        .build();
    let _ = this.set(obj.downgrade());
    obj
}

/// Python's index rules: negative counts from the end; `None` when out of range.
fn index(len: usize, i: i64) -> Option<usize> {
    let i = if i < 0 { i + len as i64 } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

/// `items[slice]` with Python's rules (any non-zero step).
fn slice(items: &[Value], parts: &[Value; 3]) -> Result<Vec<Value>, RemoteError> {
    let len = items.len() as i64;
    let step = match &parts[2] {
        Value::None => 1,
        Value::Int(0) => return Err(err(kinds::VALUE_ERROR, "slice step cannot be zero")),
        Value::Int(n) => *n,
        other => return Err(err(kinds::TYPE_ERROR, format!("slice indices must be integers, not {}", other.kind()))),
    };
    let bound = |v: &Value, default: i64| -> Result<i64, RemoteError> {
        let (lo, hi) = if step > 0 { (0, len) } else { (-1, len - 1) };
        match v {
            Value::None => Ok(default),
            Value::Int(i) => Ok(if *i < 0 { (*i + len).max(lo) } else { (*i).min(hi) }),
            other => Err(err(kinds::TYPE_ERROR, format!("slice indices must be integers, not {}", other.kind()))),
        }
    };
    let (start, stop) = if step > 0 {
        (bound(&parts[0], 0)?, bound(&parts[1], len)?)
    } else {
        (bound(&parts[0], len - 1)?, bound(&parts[1], -1)?)
    };
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        out.push(items[i as usize].clone());
        i += step;
    }
    Ok(out)
}

/// A Python list by reference (`builtins.list`, which a stock client proxies without INSPECT).
fn list(items: Vec<Value>) -> Object {
    let items = Arc::new(Mutex::new(items));
    let (a, b, c, d, e) = (items.clone(), items.clone(), items.clone(), items.clone(), items);
    Object::builder("builtins.list")
        .raw_method("__len__", move |_| done(Ok(Value::Int(a.lock().unwrap().len() as i64))))
        .raw_method("__getitem__", move |args| {
            let items = b.lock().unwrap();
            done(match need(&args, 0, "index") {
                Ok(Value::Int(i)) => index(items.len(), i)
                    .map(|i| items[i].clone())
                    .ok_or_else(|| err("builtins.IndexError", "list index out of range")),
                Ok(Value::Slice(parts)) => slice(&items, &parts).map(|v| Value::Ref(NetRef::from(list(v)))),
                Ok(other) => Err(err(
                    kinds::TYPE_ERROR,
                    format!("list indices must be integers or slices, not {}", other.kind()),
                )),
                Err(e) => Err(e),
            })
        })
        .raw_method("__setitem__", move |args| {
            let mut items = c.lock().unwrap();
            let r = match (need(&args, 0, "index"), need(&args, 1, "value")) {
                (Ok(Value::Int(i)), Ok(v)) => match index(items.len(), i) {
                    Some(i) => {
                        items[i] = v;
                        Ok(Value::None)
                    }
                    None => Err(err("builtins.IndexError", "list assignment index out of range")),
                },
                (Err(e), _) | (_, Err(e)) => Err(e),
                _ => Err(err(kinds::TYPE_ERROR, "list indices must be integers")),
            };
            done(r)
        })
        .raw_method("__iter__", move |_| {
            let snapshot = d.lock().unwrap().clone();
            done(Ok(Value::Ref(NetRef::from(iterator("builtins.list_iterator", snapshot)))))
        })
        .raw_method("__contains__", move |args| {
            let x = arg(&args, 0, "x").unwrap_or(Value::None);
            done(Ok(Value::Bool(e.lock().unwrap().contains(&x))))
        })
        .build()
}

/// A Python dict by reference (`builtins.dict`).
fn dict(pairs: Vec<(Value, Value)>) -> Object {
    let pairs = Arc::new(pairs);
    let (a, b, c, d) = (pairs.clone(), pairs.clone(), pairs.clone(), pairs);
    Object::builder("builtins.dict")
        .raw_method("__getitem__", move |args| {
            let key = arg(&args, 0, "key").unwrap_or(Value::None);
            done(a.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()).ok_or_else(|| {
                let mut e = err(kinds::KEY_ERROR, "");
                e.args = vec![match key {
                    Value::Str(s) => Data::Str(s),
                    Value::Int(i) => Data::Int(i),
                    _ => Data::None,
                }];
                e
            }))
        })
        .raw_method("__len__", move |_| done(Ok(Value::Int(b.len() as i64))))
        .raw_method("__iter__", move |_| {
            let keys = c.iter().map(|(k, _)| k.clone()).collect();
            done(Ok(Value::Ref(NetRef::from(iterator("builtins.dict_keyiterator", keys)))))
        })
        .raw_method("__contains__", move |args| {
            let x = arg(&args, 0, "key").unwrap_or(Value::None);
            done(Ok(Value::Bool(d.iter().any(|(k, _)| *k == x))))
        })
        .build()
}

/// `interop.Seq`: `(0, 10, …, 10(n-1))`, sliced by value.
fn seq(n: i64) -> Object {
    let items: Arc<Vec<Value>> = Arc::new((0..n.max(0)).map(|i| Value::Int(10 * i)).collect());
    let (a, b, c, d, e) = (items.clone(), items.clone(), items.clone(), items.clone(), items);
    Object::builder("interop.Seq")
        .raw_method("__len__", move |_| done(Ok(Value::Int(a.len() as i64))))
        .raw_method("__getitem__", move |args| {
            done(match need(&args, 0, "index") {
                Ok(Value::Int(i)) => index(b.len(), i)
                    .map(|i| b[i].clone())
                    .ok_or_else(|| err("builtins.IndexError", "tuple index out of range")),
                Ok(Value::Slice(parts)) => slice(&b, &parts).map(Value::Tuple),
                Ok(other) => Err(err(
                    kinds::TYPE_ERROR,
                    format!("tuple indices must be integers or slices, not {}", other.kind()),
                )),
                Err(e) => Err(e),
            })
        })
        .raw_method("__getslice__", move |args| {
            let parts = [
                arg(&args, 0, "start").unwrap_or(Value::None),
                arg(&args, 1, "stop").unwrap_or(Value::None),
                Value::None,
            ];
            done(slice(&c, &parts).map(Value::Tuple))
        })
        .raw_method("__iter__", move |_| {
            done(Ok(Value::Ref(NetRef::from(iterator("builtins.tuple_iterator", d.to_vec())))))
        })
        .raw_method("__contains__", move |args| {
            let x = arg(&args, 0, "x").unwrap_or(Value::None);
            done(Ok(Value::Bool(e.contains(&x))))
        })
        .build()
}

fn token_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::Ref(r) => r.as_local().and_then(|o| o.payload::<TokenN>().map(|t| t.0)),
        _ => None,
    }
}

struct TokenN(i64);

/// `interop.Token(n)`.
fn token(n: i64) -> Object {
    Object::builder("interop.Token")
        .attr("value", n)
        .repr(move || format!("Token({n})"))
        .display(move || format!("token #{n}"))
        .hash_with(move || n)
        .compare_with(move |op, other| {
            let o = token_of(other)?;
            Some(match op {
                "__eq__" => n == o,
                "__ne__" => n != o,
                "__lt__" => n < o,
                "__le__" => n <= o,
                "__gt__" => n > o,
                "__ge__" => n >= o,
                _ => return None,
            })
        })
        .payload(TokenN(n))
        .build()
}

/// One connection's service.
fn interop_service() -> Object {
    let counter = Arc::new(AtomicI64::new(0));
    let context_log: Arc<Mutex<Vec<String>>> = Arc::default();
    let tracked: Arc<Mutex<Vec<(String, WeakObject)>>> = Arc::default();
    let released: Arc<Mutex<Vec<String>>> = Arc::default();
    let (log1, log2) = (context_log.clone(), context_log);
    let (tr1, tr2, tr3) = (tracked.clone(), tracked.clone(), tracked);
    let token_class = Object::builder("interop.Token")
        .callable(|n: i64| NetRef::from(token(n)))
        // A class on RPyC's wire: ('interop.Token', cid, 0), the class id of its instances.
        .instance_of("builtins.type")
        .build();
    Object::builder("interop.InteropService")
        .attr("contract", CONTRACT)
        .attr("answer", 42)
        .property("counter", move || counter.fetch_add(1, Ordering::Relaxed) + 1)
        .raw_method("add", |args| done(need(&args, 0, "a").and_then(|a| add(&a, &need(&args, 1, "b")?))))
        .raw_method("echo", |args| done(need(&args, 0, "x")))
        .raw_method("get_list", |_| {
            done(Ok(Value::Ref(NetRef::from(list(vec![Value::Int(10), Value::Int(20), Value::Int(30)])))))
        })
        .raw_method("get_dict", |_| {
            let pairs = vec![(Value::Str("a".into()), Value::Int(1)), (Value::Str("b".into()), Value::Int(2))];
            done(Ok(Value::Ref(NetRef::from(dict(pairs)))))
        })
        .raw_method("get_seq", |args| done(int_arg(&args, 0, "n").map(|n| Value::Ref(NetRef::from(seq(n))))))
        .raw_method("count_to", |args| {
            done(int_arg(&args, 0, "n").map(|n| {
                Value::Ref(NetRef::from(iterator("interop.Counter", (0..n.max(0)).map(Value::Int).collect())))
            }))
        })
        .raw_method("call_me", |args| {
            Box::pin(async move {
                let mut it = args.positional.into_iter();
                let Some(Value::Ref(cb)) = it.next() else {
                    return Err(err(kinds::TYPE_ERROR, "call_me needs a callable"));
                };
                let rest: Vec<Value> = it.collect();
                cb.call::<Value>(Value::Tuple(rest)).await.map_err(|e| match e {
                    netref::Error::Remote(r) => r,
                    other => err(kinds::RUNTIME_ERROR, other.to_string()),
                })
            })
        })
        .raw_method("fail", |args| {
            let kind = match arg(&args, 0, "kind") {
                Some(Value::Str(s)) => s,
                None => "value".into(),
                Some(_) => String::new(),
            };
            let e = match kind.as_str() {
                "value" => {
                    let mut e = err(kinds::VALUE_ERROR, "boom");
                    e.args = vec![Data::Str("boom".into()), Data::Int(7)];
                    e
                }
                "key" => err(kinds::KEY_ERROR, "missing"),
                "custom" => err("interop.InteropError", "custom boom"),
                other => err(kinds::TYPE_ERROR, format!("unknown fail kind '{other}'")),
            };
            done(Err(e))
        })
        .raw_method("slow", |args| {
            Box::pin(async move {
                let s = need(&args, 0, "s")?;
                let secs = match &s {
                    Value::Int(n) => *n as f64,
                    Value::Float(x) => *x,
                    other => return Err(err(kinds::TYPE_ERROR, format!("slow needs a number, not {}", other.kind()))),
                };
                tokio::time::sleep(Duration::from_secs_f64(secs.clamp(0.0, SLOW_CAP))).await;
                Ok(s)
            })
        })
        .attr("Token", NetRef::from(token_class))
        .raw_method("make_token", |args| done(int_arg(&args, 0, "n").map(|n| Value::Ref(NetRef::from(token(n))))))
        .raw_method("is_token", |args| {
            let x = arg(&args, 0, "x").unwrap_or(Value::None);
            let yes = matches!(&x, Value::Ref(r) if r.as_local().is_some_and(|o| o.payload::<TokenN>().is_some()));
            done(Ok(Value::Bool(yes)))
        })
        .raw_method("context", move |args| {
            let y = match int_arg(&args, 0, "y") {
                Ok(y) => y,
                Err(e) => return done(Err(e)),
            };
            let suppress = matches!(arg(&args, 1, "suppress"), Some(Value::Bool(true)));
            let (enter_log, exit_log) = (log1.clone(), log1.clone());
            let ctx = Object::builder("interop.Context")
                .context_manager(
                    move || {
                        enter_log.lock().unwrap().push(format!("enter {y}"));
                        17 + y
                    },
                    move |e| {
                        exit_log.lock().unwrap().push(if e.is_none() { "exit ok" } else { "exit exc" }.into());
                        suppress
                    },
                )
                .build();
            done(Ok(Value::Ref(NetRef::from(ctx))))
        })
        .raw_method("context_log", move |_| {
            let lines = std::mem::take(&mut *log2.lock().unwrap());
            done(Ok(Value::Tuple(lines.into_iter().map(Value::Str).collect())))
        })
        .raw_method("tracked", move |args| {
            let name = match need(&args, 0, "name") {
                Ok(Value::Str(s)) => s,
                Ok(_) => return done(Err(err(kinds::TYPE_ERROR, "name must be a str"))),
                Err(e) => return done(Err(e)),
            };
            let obj = Object::builder("interop.Tracked").attr("name", name.clone()).build();
            tr1.lock().unwrap().push((name, obj.downgrade()));
            done(Ok(Value::Ref(NetRef::from(obj))))
        })
        .raw_method("tracked_again", move |args| {
            let name = match need(&args, 0, "name") {
                Ok(Value::Str(s)) => s,
                Ok(_) => return done(Err(err(kinds::TYPE_ERROR, "name must be a str"))),
                Err(e) => return done(Err(e)),
            };
            let found = tr2.lock().unwrap().iter().rev().find(|(n, _)| *n == name).and_then(|(_, w)| w.upgrade());
            done(found.map(|o| Value::Ref(NetRef::from(o))).ok_or_else(|| {
                let mut e = err(kinds::KEY_ERROR, name.clone());
                e.args = vec![Data::Str(name)];
                e
            }))
        })
        .raw_method("released", move |_| {
            let mut gone = released.lock().unwrap();
            tr3.lock().unwrap().retain(|(name, w)| {
                let alive = w.upgrade().is_some();
                if !alive {
                    gone.push(name.clone());
                }
                alive
            });
            let mut names = gone.clone();
            names.sort();
            done(Ok(Value::Tuple(names.into_iter().map(Value::Str).collect())))
        })
        .build()
}

const USAGE: &str = "\
usage: rpyc_interop_server [ADDR] [--tls-cert FILE --tls-key FILE]

Serves the RPyC interop service (contract interop-1) over RPyC 6's wire.

  ADDR               where to listen (default 127.0.0.1:0: loopback, a port the OS picks)
  --tls-cert FILE    serve TLS with this PEM certificate chain (end-entity certificate first);
                     stock Python clients connect with rpyc.ssl_connect(host, port, ca_certs=...)
  --tls-key FILE     the certificate's PEM private key (PKCS#8, PKCS#1 or SEC1)
  -h, --help         this text

The first line of stdout is `listening on HOST:PORT`.
";

/// The command line.
struct Options {
    addr: String,
    /// `(certificate chain file, key file)`.
    tls: Option<(String, String)>,
}

fn options() -> Result<Options, String> {
    let (mut addr, mut cert, mut key) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--tls-cert" => cert = Some(args.next().ok_or("--tls-cert needs a FILE")?),
            "--tls-key" => key = Some(args.next().ok_or("--tls-key needs a FILE")?),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ if addr.is_none() => addr = Some(arg),
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    let tls = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(Options { addr: addr.unwrap_or_else(|| "127.0.0.1:0".into()), tls })
}

/// The server's TLS settings from PEM files.
#[cfg(feature = "tls")]
fn tls_config(cert: &str, key: &str) -> Result<netref::tls::TlsServerConfig, String> {
    use netref::tls::{CertificateDer, PemObject, PrivateKeyDer, TlsServerConfig};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificate chain {cert}: {e}"))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("cannot read the private key {key}: {e}"))?;
    TlsServerConfig::new(chain, key).map_err(|e| e.to_string())
}

#[actix_rt::main]
async fn main() -> Result<(), netref::Error> {
    let options = options().unwrap_or_else(|e| {
        eprintln!("rpyc_interop_server: {e}\n\n{USAGE}");
        std::process::exit(2);
    });
    // RPyC's stock server reaches these special names too.
    let mut policy = AccessPolicy::default();
    policy.safe_attrs.insert("__setitem__");
    policy.safe_attrs.insert("__getslice__");
    let builder = Server::builder(Service::per_connection(|_peer| interop_service()))
        .config(Config::default().policy(policy))
        .rpyc();
    let builder = match &options.tls {
        None => builder,
        #[cfg(feature = "tls")]
        Some((cert, key)) => builder.tls(tls_config(cert, key).unwrap_or_else(|e| {
            eprintln!("rpyc_interop_server: {e}");
            std::process::exit(2);
        })),
        #[cfg(not(feature = "tls"))]
        Some(_) => {
            eprintln!("rpyc_interop_server: this build has no TLS (netref's `tls` feature is off)");
            std::process::exit(2);
        }
    };
    let server = builder.bind_tcp(options.addr.as_str()).await?;
    println!("listening on {}", server.address());
    if options.tls.is_some() {
        eprintln!("serving TLS: connect with rpyc.ssl_connect");
    }
    tokio::select! {
        _ = server.stopped() => {}
        _ = tokio::signal::ctrl_c() => server.shutdown(Duration::from_secs(5)).await,
    }
    Ok(())
}
