//! The service the fuzzed sessions serve: a root whose methods reach each way a request can be
//! served — an instant result, a new object, an error, a call that never finishes, a callback
//! into the peer, an iterator, a field. It must stay deterministic: no clock, no randomness.

use netref::{NetRef, Object, RemoteError, Service, Value};

/// The root's type name.
pub(crate) const ROOT_TYPE: &str = "fuzz.Root";

/// The root's method names, for requests that name a real method.
pub(crate) const METHODS: &[&str] = &["add", "echo", "child", "fail", "wait", "call_back", "items", "count"];

/// A service with a fresh root for every connection.
pub(crate) fn service() -> Service {
    Service::per_connection(|_| root())
}

fn root() -> Object {
    Object::builder(ROOT_TYPE)
        .method("add", |a: i64, b: i64| a.wrapping_add(b))
        .method("echo", |v: Value| v)
        .method("child", || Object::builder("fuzz.Child").method("ping", || 1).field("n", 0i64).build())
        .try_method("fail", || Err::<(), _>(RemoteError::new("builtins.ValueError", "fuzz")))
        .async_method("wait", std::future::pending::<i64>)
        .async_method("call_back", |f: NetRef, x: Value| async move { f.call::<Value>((x,)).await.ok() })
        .method("items", || Object::iterator(0..3i64))
        .field("count", 0i64)
        .build()
}
