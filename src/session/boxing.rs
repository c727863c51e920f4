//! Boxing and unboxing references against one connection's tables (RPyC's `_box`/`_unbox`).
//!
//! Sending: a local object is exported (counted) and goes as `REMOTE_REF`; a netref of this
//! connection goes back as `LOCAL_REF`; a netref of another connection is forwarded: its
//! forwarding object (see [`crate::forward`]) is exported in its place. Receiving: `LOCAL_REF` resolves to the exported object
//! itself; `REMOTE_REF` finds or creates the one proxy for that object and counts the receipt.

use std::{borrow::Cow, cell::RefCell, sync::Arc};

use super::{ExportTable, ImportCache};
use crate::{
    link::ConnShared,
    netref::{RefInner, RemoteRef},
    object::Object,
    protocol::{local_ref_box, IdPackRef, RefBoxer, RefUnboxer, ROOT_ALIAS},
    IdPack, NetRef, RefLabel,
};

/// This connection's imports: one weak proxy per remote object.
pub(crate) type Imports = ImportCache<RefInner>;

/// The one netref for the peer's object `instance_id` on `shared`'s connection (see
/// [`ImportCache::proxy`]).
pub(crate) fn import(
    imports: &mut Imports,
    shared: &Arc<ConnShared>,
    instance_id: u64,
    id: impl FnOnce() -> IdPack,
    counted: bool,
) -> NetRef {
    NetRef(imports.proxy(instance_id, counted, |generation| {
        Arc::new(RefInner::Remote(RemoteRef::keyed(shared.clone(), id(), instance_id, generation)))
    }))
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
                // A forwarding object going back to the connection of the netref it stands for
                // names the peer's own object (RPyC's LOCAL_REF rule), never a proxy of a proxy.
                if let Some(remote) = object.forwarded().and_then(|f| f.remote()) {
                    if remote.conn.id == self.conn_id {
                        return Ok((RefLabel::Local, Cow::Borrowed(&remote.id)));
                    }
                }
                // A reconnecting handle's stand-in going to the connection that serves it names
                // the object it stands for there, as that object's own netref would.
                if let Some(target) = object.named().and_then(|n| n.live_target()) {
                    if matches!(&*target.0, RefInner::Remote(remote) if remote.conn.id == self.conn_id) {
                        return Ok((RefLabel::Local, Cow::Owned(target.id_pack())));
                    }
                }
                let id = self.exports.borrow_mut().export(object)?;
                self.counted.borrow_mut().push(id.instance_id);
                Ok((RefLabel::Remote, Cow::Borrowed(id)))
            }
            // A netref of another connection: this side exports a forwarding object for it
            // (one per object, counted like any export, within `max_exports`).
            RefInner::Remote(remote) => {
                let forwarder = crate::forward::forwarder(r, remote);
                let id = self.exports.borrow_mut().export(&forwarder).map_err(|e| {
                    format!(
                        "{r:?} of connection {} cannot be forwarded on connection {}: {e}",
                        remote.conn.id, self.conn_id
                    )
                })?;
                self.counted.borrow_mut().push(id.instance_id);
                Ok((RefLabel::Remote, Cow::Owned(id.clone())))
            }
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
    pub(crate) imports: RefCell<&'a mut Imports>,
}

impl Unboxer<'_> {
    /// The object of this side a `LOCAL_REF` names: the root for the root alias (the id a
    /// peer's early requests name this side's root by, before they know its real one), else
    /// the export `instance_id`. The one place the alias resolves.
    #[inline]
    pub(crate) fn local_object(&self, class_id: u64, instance_id: u64) -> Option<&Object> {
        if instance_id == ROOT_ALIAS && class_id == 0 {
            Some(self.root)
        } else {
            self.exports.get(instance_id)
        }
    }

    /// The one netref for the peer's object `id`, tracked under `key` instead of its instance
    /// id (for a dialect whose instance ids do not tell objects apart), one receipt counted.
    pub(crate) fn import_keyed(&self, key: u64, id: IdPackRef<'_>) -> NetRef {
        import(&mut self.imports.borrow_mut(), self.shared, key, || id.to_id_pack(), true)
    }
}

impl RefUnboxer for Unboxer<'_> {
    type Ref = NetRef;

    fn unbox_ref(&self, label: RefLabel, wire_id: IdPackRef<'_>) -> Result<NetRef, String> {
        let id = wire_id.instance_id;
        match label {
            RefLabel::Local => match self.local_object(wire_id.class_id, id) {
                Some(object) => Ok(NetRef::from(object.clone())),
                None => {
                    Err(format!("LOCAL_REF to object #{id} ({}), which this side has not exported", wire_id.type_name))
                }
            },
            RefLabel::Remote => {
                Ok(import(&mut self.imports.borrow_mut(), self.shared, id, || wire_id.to_id_pack(), true))
            }
        }
    }
}
