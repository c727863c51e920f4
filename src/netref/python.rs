//! The Python data-model operations of a [`NetRef`]: repr, str, hash, comparison, dir,
//! inspect, instance checks, obtain, context managers and iteration — one request each
//! (`HANDLE_REPR` … `HANDLE_BUFFITER`), on either wire. It builds requests through the netref's
//! own `request`; it must never encode bytes or touch a connection itself.

use std::collections::VecDeque;

use futures::{stream::BoxStream, StreamExt};
use serde::{de::DeserializeOwned, Serialize};

use super::{NetRef, RefInner, RemoteRef, FIRST_CHUNK, MAX_CHUNK};
use crate::{error::RemoteError, to_value, AsyncResult, Error, Handle, Value};

impl NetRef {
    /// The object's debug text (HANDLE_REPR).
    pub fn repr(&self) -> AsyncResult<String> {
        self.request(Handle::Repr, Vec::new())
    }

    /// The object's display text (HANDLE_STR).
    pub fn str(&self) -> AsyncResult<String> {
        self.request(Handle::Str, Vec::new())
    }

    /// The object's hash as the peer computes it (HANDLE_HASH): Python's `hash(obj)`, one round
    /// trip. Not [`Hash::hash`](std::hash::Hash::hash), which hashes the netref's identity locally (so a netref can key a
    /// `HashMap`) and costs no traffic.
    pub fn remote_hash(&self) -> AsyncResult<i64> {
        self.request(Handle::Hash, Vec::new())
    }

    /// Compares with `other` on the peer (HANDLE_CMP), one round trip; `op` is `__eq__`,
    /// `__ne__`, `__lt__`, `__le__`, `__gt__` or `__ge__`. Not `==` on netrefs (`PartialEq`),
    /// which compares identity locally.
    pub fn remote_cmp(&self, op: &str, other: impl Serialize) -> AsyncResult<bool> {
        let other = to_value(&other).map_err(Error::from);
        self.request_with(Handle::Cmp, other.map(|o| vec![o, Value::Str(op.to_owned())]))
    }

    /// The names the object exposes to this side (HANDLE_DIR).
    pub fn dir(&self) -> AsyncResult<Vec<String>> {
        self.request(Handle::Dir, Vec::new())
    }

    /// The object's method names (HANDLE_INSPECT), fetched once per remote type and cached per
    /// connection.
    pub fn inspect(&self) -> AsyncResult<Vec<String>> {
        let cache = match &*self.0 {
            RefInner::Remote(r) => Some((r.conn.clone(), r.id.type_name.clone())),
            RefInner::Local(_) => None,
        };
        if let Some((conn, type_name)) = &cache {
            if let Some(names) = conn.cached_inspect(type_name) {
                return AsyncResult::settled(to_value(&*names).map_err(Error::from));
            }
        }
        let (result, completer) = AsyncResult::pending(None);
        let raw: AsyncResult<Vec<(String, Option<String>)>> = self.request(Handle::Inspect, Vec::new());
        raw.add_callback(move |outcome| {
            let names = outcome.map(|pairs| pairs.into_iter().map(|(n, _)| n).collect::<Vec<String>>());
            if let (Ok(names), Some((conn, type_name))) = (&names, cache) {
                conn.cache_inspect(type_name, names.clone());
            }
            completer.settle(names.and_then(|n| to_value(&n).map_err(Error::from)));
        });
        result
    }

    /// Whether the object is an instance of `type_name` on the peer (HANDLE_INSTANCECHECK).
    /// On RPyC's wire, where the check names a class object, use
    /// [`is_instance`](NetRef::is_instance).
    pub fn instance_of(&self, type_name: &str) -> AsyncResult<bool> {
        self.request(Handle::InstanceCheck, vec![Value::Str(type_name.to_owned())])
    }

    /// Python's `isinstance(obj, class)` for this object and a `class` of the same peer (a
    /// class netref, e.g. `root.getattr("Token")`).
    ///
    /// On RPyC's wire it behaves as a stock client: the same class id (a class and its
    /// instances share one) answers `true` with no traffic; otherwise one
    /// HANDLE_INSTANCECHECK asks the peer, naming `class` as the target and this object by its
    /// id_pack. A stock server can only answer for `builtins.*` names and its own classes
    /// (`false` otherwise), and sends a DEL for a throw-away proxy afterwards, which this side
    /// answers with an exception. On netref's own wire it is
    /// [`instance_of`](NetRef::instance_of)`(class.type_name())`.
    pub fn is_instance(&self, class: &NetRef) -> AsyncResult<bool> {
        let on_rpyc = |r: &RemoteRef| r.conn.config.wire == crate::Wire::Rpyc;
        match (&*self.0, &*class.0) {
            (RefInner::Remote(obj), RefInner::Remote(cls)) if on_rpyc(cls) && obj.conn.id == cls.conn.id => {
                let (obj_id, cls_id) = (self.id_pack(), class.id_pack());
                if obj_id.class_id == cls_id.class_id {
                    return AsyncResult::settled(Ok(Value::Bool(true)));
                }
                let other = Value::Tuple(vec![
                    Value::Str(obj_id.type_name),
                    Value::from(obj_id.class_id),
                    Value::from(obj_id.instance_id),
                ]);
                class.request(Handle::InstanceCheck, vec![other])
            }
            _ => self.instance_of(class.type_name()),
        }
    }

    /// Copies the object by value (HANDLE_PICKLE); refused unless the peer allows obtain.
    pub fn obtain<T>(&self) -> AsyncResult<T> {
        self.request(Handle::Pickle, Vec::new())
    }

    /// Enters the object as a context manager (`__enter__`); pair with [`exit`](NetRef::exit).
    pub fn enter<T>(&self) -> AsyncResult<T> {
        self.call_method("__enter__", ())
    }

    /// Leaves the context manager (HANDLE_CTXEXIT) with the block's error, if it failed.
    /// Returns whether the object suppressed the error.
    pub fn exit(&self, error: Option<&RemoteError>) -> AsyncResult<bool> {
        let err = match error {
            None => Value::None,
            Some(e) => Value::Tuple(vec![Value::Str(e.kind.clone()), Value::Str(e.message.clone())]),
        };
        self.request(Handle::CtxExit, vec![err])
    }

    /// Reads the next chunk of an iterator object (HANDLE_BUFFITER): up to `count` items. At
    /// the end a netref peer answers [`RemoteError::is_stop_iteration`], an RPyC peer an empty
    /// chunk; [`iter`](NetRef::iter) takes either as the end.
    pub fn next_chunk<T>(&self, count: usize) -> AsyncResult<Vec<T>> {
        self.request(Handle::BuffIter, vec![Value::Int(count.min(i64::MAX as usize) as i64)])
    }

    /// Iterates the object: calls `__iter__` (unless it is already an iterator), then reads
    /// chunks of 10, 20, 40 … up to 1000 items (HANDLE_BUFFITER, RPyC's `buffiter`) until
    /// StopIteration or an empty chunk.
    pub fn iter<T: DeserializeOwned + Send + 'static>(&self) -> BoxStream<'static, Result<T, Error>> {
        let this = self.clone();
        let state = (None::<NetRef>, VecDeque::<Value>::new(), FIRST_CHUNK, false);
        futures::stream::unfold((this, state), |(this, (mut it, mut buf, mut chunk, mut done))| async move {
            loop {
                if let Some(v) = buf.pop_front() {
                    let item = crate::from_value::<T>(v).map_err(Error::from);
                    return Some((item, (this, (it, buf, chunk, done))));
                }
                if done {
                    return None;
                }
                let iterator = match &it {
                    Some(i) => i.clone(),
                    None if this.type_name() == "builtins.iterator" => this.clone(),
                    None => match this.call_method::<NetRef>("__iter__", ()).await {
                        Ok(i) => i,
                        Err(e) => {
                            done = true;
                            return Some((Err(e), (this, (it, buf, chunk, done))));
                        }
                    },
                };
                it = Some(iterator.clone());
                match iterator.next_chunk::<Value>(chunk).await {
                    // RPyC's BUFFITER answers an exhausted iterator with `()`.
                    Ok(items) if items.is_empty() => done = true,
                    Ok(items) => {
                        buf.extend(items);
                        chunk = (chunk * 2).min(MAX_CHUNK);
                    }
                    Err(Error::Remote(e)) if e.is_stop_iteration() => done = true,
                    Err(e) => {
                        done = true;
                        return Some((Err(e), (this, (it, buf, chunk, done))));
                    }
                }
            }
        })
        .boxed()
    }
}
