//! Boxing and unboxing references against one connection's tables (RPyC's `_box`/`_unbox`).
//!
//! Sending: a local object is exported (counted) and goes as `REMOTE_REF`; a netref of this
//! connection goes back as `LOCAL_REF`. Receiving: `LOCAL_REF` resolves to the exported object
//! itself; `REMOTE_REF` finds or creates the one proxy for that object and counts the receipt.

use std::{
    borrow::Cow,
    cell::RefCell,
    collections::HashMap,
    sync::{Arc, Weak},
};

use super::ConnShared;
use crate::{
    netref::{RefInner, RemoteRef},
    object::{ExportTable, Object},
    protocol::{local_ref_box, IdPackRef, RefBoxer, RefUnboxer, ROOT_ALIAS},
    IdPack, NetRef, RefLabel,
};

struct Import {
    proxy: Weak<RefInner>,
    generation: u64,
    /// Times the object was received while this proxy lived.
    received: u64,
}

/// The importer's side of the distributed refcount: one weak proxy per remote object.
#[derive(Default)]
pub(crate) struct ImportCache {
    entries: HashMap<u64, Import>,
    next_generation: u64,
    /// Releases owed to the peer, not yet sent.
    pub(crate) owed: Vec<(u64, u64)>,
}

impl ImportCache {
    /// The last proxy of generation `generation` for `instance_id` dropped: owe a release.
    pub(crate) fn dropped(&mut self, instance_id: u64, generation: u64) {
        if let Some(entry) = self.entries.get(&instance_id) {
            if entry.generation == generation && entry.proxy.strong_count() == 0 {
                let received = self.entries.remove(&instance_id).map(|e| e.received).unwrap_or(0);
                self.owe(instance_id, received);
            }
        }
    }

    /// The one proxy for the peer's object `id`, created if there is none. `counted`: the
    /// peer counted this send (a `REMOTE_REF` in a frame), so a `Release` is owed for it; the
    /// root announced in `Hello` is not counted.
    pub(crate) fn proxy(
        &mut self,
        shared: &Arc<ConnShared>,
        instance_id: u64,
        id: impl FnOnce() -> IdPack,
        counted: bool,
    ) -> NetRef {
        let n = u64::from(counted);
        if let Some(entry) = self.entries.get_mut(&instance_id) {
            if let Some(proxy) = entry.proxy.upgrade() {
                entry.received += n;
                return NetRef(proxy);
            }
        }
        // A proxy whose drop is still on its way: its receipts are owed now.
        if let Some(old) = self.entries.remove(&instance_id) {
            self.owe(instance_id, old.received);
        }
        self.next_generation += 1;
        let generation = self.next_generation;
        let inner = Arc::new(RefInner::Remote(RemoteRef::new(shared.clone(), id(), generation)));
        self.entries.insert(instance_id, Import { proxy: Arc::downgrade(&inner), generation, received: n });
        NetRef(inner)
    }

    fn owe(&mut self, instance_id: u64, count: u64) {
        if count > 0 {
            self.owed.push((instance_id, count));
        }
    }

    /// Live proxies.
    pub(crate) fn len(&self) -> usize {
        self.entries.values().filter(|e| e.proxy.strong_count() > 0).count()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.owed.clear();
    }
}

pub(crate) struct Boxer<'a> {
    pub(crate) conn_id: u64,
    pub(crate) exports: RefCell<&'a mut ExportTable>,
    /// Objects counted while encoding this frame, to undo if the frame cannot be sent.
    pub(crate) counted: RefCell<Vec<u64>>,
}

impl Boxer<'_> {
    /// `r` if it is a proxy of this connection's peer: sent back, it names the peer's own
    /// object (`LOCAL_REF`) and counts nothing.
    fn own_proxy<'r>(&self, r: &'r NetRef) -> Option<&'r RemoteRef> {
        match &*r.0 {
            RefInner::Remote(remote) if remote.conn.id == self.conn_id => Some(remote),
            _ => None,
        }
    }

    /// Takes back the sends counted for a frame that was not sent.
    pub(crate) fn roll_back(&self) {
        let mut exports = self.exports.borrow_mut();
        for id in self.counted.borrow_mut().drain(..) {
            let _ = exports.release(id, 1);
        }
    }
}

impl RefBoxer<NetRef> for Boxer<'_> {
    fn box_ref<'r>(&self, r: &'r NetRef) -> Result<(RefLabel, Cow<'r, IdPack>), String> {
        if let Some(remote) = self.own_proxy(r) {
            return Ok((RefLabel::Local, Cow::Borrowed(&remote.id)));
        }
        match &*r.0 {
            RefInner::Local(object) => {
                let id = self.exports.borrow_mut().export(object)?;
                self.counted.borrow_mut().push(id.instance_id);
                Ok((RefLabel::Remote, Cow::Borrowed(id)))
            }
            RefInner::Remote(remote) => Err(format!(
                "{r:?} belongs to connection {} and cannot be sent on connection {} (forwarding netrefs between connections is not supported yet)",
                remote.conn.id, self.conn_id
            )),
        }
    }

    /// A netref of this connection keeps its `LOCAL_REF` box, encoded the first time it is
    /// sent (the target of every call on it).
    fn boxed<'a>(&'a self, r: &'a NetRef) -> Option<&'a [u8]> {
        let remote = self.own_proxy(r)?;
        Some(remote.boxed.get_or_init(|| local_ref_box(&remote.id)))
    }
}

pub(crate) struct Unboxer<'a> {
    pub(crate) shared: &'a Arc<ConnShared>,
    /// This side's root: what the root alias names.
    pub(crate) root: &'a Object,
    pub(crate) exports: &'a ExportTable,
    pub(crate) imports: RefCell<&'a mut ImportCache>,
}

impl RefUnboxer for Unboxer<'_> {
    type Ref = NetRef;

    fn unbox_ref(&self, label: RefLabel, wire_id: IdPackRef<'_>) -> Result<NetRef, String> {
        let id = wire_id.instance_id;
        match label {
            RefLabel::Local if wire_id.instance_id == ROOT_ALIAS && wire_id.class_id == 0 => {
                Ok(NetRef::from(self.root.clone()))
            }
            RefLabel::Local => match self.exports.get(id) {
                Some(object) => Ok(NetRef::from(object.clone())),
                None => {
                    Err(format!("LOCAL_REF to object #{id} ({}), which this side has not exported", wire_id.type_name))
                }
            },
            RefLabel::Remote => Ok(self.imports.borrow_mut().proxy(self.shared, id, || wire_id.to_id_pack(), true)),
        }
    }
}
