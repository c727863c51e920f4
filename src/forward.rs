//! Forwarding netrefs between connections (RPyC-over-RPyC; Cap'n Proto's three-party handoff
//! done by proxying).
//!
//! When a netref of connection A is sent on connection B, this process exports on B a
//! *forwarding object*: an [`Object`] that stands for the A netref. A request from B's peer on
//! it is re-issued, unchanged but for its target, on the A netref, and the outcome is the
//! reply; the caller's remaining deadline goes with it, and dropping the served work (the
//! caller's cancel or expiry, B closing) drops the A request, which cancels it on A. One-way
//! requests are forwarded one way, each waiting for room on A (a slow A peer slows B's sender
//! through this side's concurrency cap rather than losing messages).
//!
//! There is one forwarding object per (A connection, A object) in the process, so the same A
//! object forwarded twice on B is one export counted twice, and B's peer sees one netref. The
//! forwarding object holds the A netref: when every connection has released it, it drops and
//! the A import goes with it. If A is lost, the forwarding object stays until B's peer releases
//! it (its requests fail at once, naming this hop), so B's peer never meets a reference this
//! side stopped exporting. Sent back on A it is A's own object (`LOCAL_REF`); sent back to this
//! side on B it arrives as the forwarding object itself, which serves requests as the A netref.
//!
//! This module never touches the wire or a session's tables: forwarding objects are exported,
//! counted and released like any object, and the A leg is an ordinary request. It never applies
//! this side's access policy to a forwarded request (the owner's policy decides), and it never
//! keeps a forwarding object alive itself (its registry holds weak references only).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, OnceLock, Weak},
    time::Duration,
};

use futures::FutureExt;

use crate::{
    error::{kinds, RemoteError},
    link::Payload,
    netref::{RefInner, RemoteRef},
    object::{Object, ObjectInner, Served},
    AsyncResult, Error, Handle, NetRef, Value,
};

/// What a forwarding object carries: the netref it stands for.
pub(crate) struct Forward {
    target: NetRef,
    /// Its key in the registry: (connection id, the owner's instance id).
    key: (u64, u64),
}

impl Forward {
    /// The netref's remote side (always remote: only remote netrefs are forwarded).
    pub(crate) fn remote(&self) -> Option<&RemoteRef> {
        match &*self.target.0 {
            RefInner::Remote(r) => Some(r),
            RefInner::Local(_) => None,
        }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        // Only the entry of this (dead) object goes: a newer forwarding object made for the same
        // key since keeps its entry.
        let mut registry = registry().lock().unwrap_or_else(|p| p.into_inner());
        if registry.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
            registry.remove(&self.key);
        }
    }
}

type Registry = Mutex<HashMap<(u64, u64), Weak<ObjectInner>>>;

/// The live forwarding objects of this process, by (connection id, owner's instance id).
fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// The one forwarding object for `remote` (the netref `r`), made if there is none alive.
pub(crate) fn forwarder(r: &NetRef, remote: &RemoteRef) -> Object {
    let key = (remote.conn.id, remote.key);
    let mut registry = registry().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(inner) = registry.get(&key).and_then(Weak::upgrade) {
        return Object { inner };
    }
    let object = Object::forwarding(&r.id_pack(), Forward { target: r.clone(), key });
    registry.insert(key, Arc::downgrade(&object.inner));
    object
}

/// How the request being served arrived, so that a forwarding object passes it on alike.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Arrival {
    /// The time left before the caller stops waiting (`None`: no limit).
    pub(crate) deadline: Option<Duration>,
    /// A one-way request: no reply is wanted.
    pub(crate) one_way: bool,
}

/// Serves a request on the forwarding object `fwd`: `items` are the request's arguments,
/// the forwarding object first.
pub(crate) fn serve(fwd: &Forward, handle: Handle, mut items: Vec<Value>, arrival: Arrival) -> Served {
    if let Some(first) = items.first_mut() {
        *first = Value::Ref(fwd.target.clone());
    }
    pass_on(fwd, handle, items, arrival)
}

/// Serves a CALLATTR (`name` given) or CALL with positional arguments on the forwarding
/// object `fwd` (a call the dialect resolved while decoding).
pub(crate) fn serve_call(fwd: &Forward, name: Option<&str>, positional: Vec<Value>, arrival: Arrival) -> Served {
    let target = Value::Ref(fwd.target.clone());
    let (handle, items) = match name {
        Some(name) => {
            (Handle::CallAttr, vec![target, Value::Str(name.to_owned()), Value::Tuple(positional), Value::None])
        }
        None => (Handle::Call, vec![target, Value::Tuple(positional), Value::None]),
    };
    pass_on(fwd, handle, items, arrival)
}

fn pass_on(fwd: &Forward, handle: Handle, items: Vec<Value>, arrival: Arrival) -> Served {
    let Some(remote) = fwd.remote() else {
        return Served::Done(Err(RemoteError::new(kinds::REFERENCE_ERROR, "a forwarding object stands for no netref")));
    };
    let conn = &remote.conn;
    if arrival.one_way {
        // Waits for room on the far connection rather than failing with back-pressure: the
        // one-way request keeps running here meanwhile, so a slow far peer slows the sender
        // (this side stops reading at its concurrency cap) instead of losing its messages.
        let sent = conn.notify_when_ready(handle, Payload::Value(Value::Tuple(items)));
        let target = fwd.target.clone();
        return Served::Later(
            async move { sent.await.map(|()| Value::None).map_err(|e| HopName::of(&target).error(e)) }.boxed(),
        );
    }
    let result: AsyncResult<Value> = conn.submit(handle, Value::Tuple(items));
    // The caller's deadline, not this side's default: a caller that waits without limit (a
    // watch) is not cut short here, and one that gives up sooner cancels the far leg as soon.
    result.set_expiry(arrival.deadline);
    // The hop is named only if the far leg fails: the common path allocates nothing for it.
    let target = fwd.target.clone();
    Served::Later(async move { result.await.map_err(|e| HopName::of(&target).error(e)) }.boxed())
}

/// Names the forwarding hop in errors: which of this side's connections, to which object.
struct HopName {
    conn_id: u64,
    label: String,
    object: String,
}

impl HopName {
    fn of(target: &NetRef) -> Self {
        let (conn_id, label) = match &*target.0 {
            RefInner::Remote(r) => (r.conn.id, r.conn.info.label.clone()),
            RefInner::Local(_) => (0, String::new()),
        };
        let id = target.id_pack();
        HopName { conn_id, label, object: format!("{} #{}", id.type_name, id.instance_id) }
    }

    /// `e`, from the far leg, as the error the caller on the near leg gets. The owner's own
    /// errors pass unchanged; a failure of the far leg says it happened at the forwarding hop.
    fn error(&self, e: Error) -> RemoteError {
        let e = match e {
            Error::Remote(remote) => return remote,
            other => other,
        };
        let (kind, what) = match &e {
            Error::Remote(_) => unreachable!("returned above"),
            Error::ConnectionClosed(_) | Error::Protocol(_) | Error::Io(_) | Error::Tls(_) => {
                (kinds::CONNECTION_ERROR, "the connection to the object's owner failed")
            }
            Error::Timeout(_) => (kinds::TIMEOUT_ERROR, "the owner did not answer in time"),
            Error::Convert(_) => (kinds::TYPE_ERROR, "the request could not be passed on"),
            Error::AccessDenied(_) => (kinds::ACCESS_DENIED, "the request could not be passed on"),
            _ => (kinds::RUNTIME_ERROR, "the request could not be passed on"),
        };
        let label = if self.label.is_empty() { String::new() } else { format!(" ({})", self.label) };
        RemoteError::new(
            kind,
            format!(
                "{what} at the forwarding hop (the middle process's connection {}{label} to the owner of {}): {e}",
                self.conn_id, self.object
            ),
        )
    }
}
