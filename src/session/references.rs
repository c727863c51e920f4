//! References between the two sides (RPyC's and Cap'n Proto's counted references): the
//! objects this side sent to the peer ([`ExportTable`]) and the peer's objects this side holds
//! proxies for ([`ImportCache`]), with the releases owed.
//!
//! Counting follows RPyC and Cap'n Proto: every time an object is sent its exporter counts one
//! more send; the importer keeps one proxy per object and counts receipts; when the last clone
//! of the proxy goes, the importer owes a release of every receipt, and the exporter frees the
//! object when its count reaches zero. Pinned exports (the root, named exports) stay until the
//! connection ends. This module decides what is exported, held and owed; it never sends,
//! never creates a handle type of its own (the connection supplies the proxy), and never
//! touches I/O.

use std::{
    collections::HashMap,
    sync::{Arc, Weak},
};

use crate::{object::Object, IdPack};

struct Export {
    object: Object,
    count: u64,
    pinned: bool,
}

/// The exports of one connection.
pub(crate) struct ExportTable {
    entries: crate::hash::SeqMap<Export>,
    max: usize,
}

impl ExportTable {
    pub(crate) fn new(max: usize) -> Self {
        ExportTable { entries: crate::hash::SeqMap::default(), max }
    }

    /// Counts one more send of `object` and returns its identity; fails when a new entry would
    /// pass the limit.
    pub(crate) fn export<'o>(&mut self, object: &'o Object) -> Result<&'o IdPack, String> {
        let id = object.instance_id();
        match self.entries.get_mut(&id) {
            Some(e) => e.count += 1,
            None => {
                if self.entries.len() >= self.max {
                    return Err(format!("export limit reached ({} objects); raise max_exports", self.max));
                }
                self.entries.insert(id, Export { object: object.clone(), count: 1, pinned: false });
            }
        }
        Ok(object.id_pack_ref())
    }

    /// Keeps `object` exported until the connection closes.
    pub(crate) fn pin(&mut self, object: &Object) {
        self.entries
            .entry(object.instance_id())
            .or_insert_with(|| Export { object: object.clone(), count: 0, pinned: true })
            .pinned = true;
    }

    /// The exported object `instance_id`, if it is exported (every call's target is found here).
    #[inline]
    pub(crate) fn get(&self, instance_id: u64) -> Option<&Object> {
        self.entries.get(&instance_id).map(|e| &e.object)
    }

    /// Takes `count` sends off `instance_id`; frees the entry at zero unless pinned. A release of
    /// more than was sent is an error (logged by the caller); the entry is freed once.
    pub(crate) fn release(&mut self, instance_id: u64, count: u64) -> Result<(), String> {
        let Some(e) = self.entries.get_mut(&instance_id) else {
            return Err(format!("release of object #{instance_id}, which is not exported"));
        };
        let over = count > e.count;
        e.count = e.count.saturating_sub(count);
        if e.count == 0 && !e.pinned {
            self.entries.remove(&instance_id);
        }
        if over {
            Err(format!("release of object #{instance_id} {count} times, more than it was sent"))
        } else {
            Ok(())
        }
    }

    /// How many objects are exported (pinned ones included).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many exported objects are not pinned.
    pub(crate) fn unpinned(&self) -> usize {
        self.entries.values().filter(|e| !e.pinned).count()
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// One imported object: the weak proxy, its generation, and the receipts it stands for.
struct Import<T> {
    proxy: Weak<T>,
    generation: u64,
    /// Times the object was received while this proxy lived.
    received: u64,
}

/// The importer's side of the distributed refcount: one weak proxy (of type `T`) per remote
/// object, keyed by the peer's instance id.
pub(crate) struct ImportCache<T> {
    entries: HashMap<u64, Import<T>>,
    next_generation: u64,
    /// Releases owed to the peer, not yet sent: `(instance_id, count)`.
    pub(crate) owed: Vec<(u64, u64)>,
}

impl<T> Default for ImportCache<T> {
    fn default() -> Self {
        ImportCache { entries: HashMap::new(), next_generation: 0, owed: Vec::new() }
    }
}

impl<T> ImportCache<T> {
    /// The last clone of the proxy of generation `generation` for `instance_id` dropped: owe a
    /// release of its receipts. A drop from an older generation (a new proxy was made since)
    /// owes nothing here: its receipts were owed when the new proxy replaced it.
    pub(crate) fn dropped(&mut self, instance_id: u64, generation: u64) {
        if let Some(entry) = self.entries.get(&instance_id) {
            if entry.generation == generation && entry.proxy.strong_count() == 0 {
                let received = self.entries.remove(&instance_id).map(|e| e.received).unwrap_or(0);
                self.owe(instance_id, received);
            }
        }
    }

    /// The one proxy for the peer's object `instance_id`, made with `make(generation)` if there
    /// is none alive. `counted`: the peer counted this send (a `REMOTE_REF` in a frame), so a
    /// release is owed for it; the root announced in `Hello` is not counted.
    pub(crate) fn proxy(&mut self, instance_id: u64, counted: bool, make: impl FnOnce(u64) -> Arc<T>) -> Arc<T> {
        let n = u64::from(counted);
        if let Some(entry) = self.entries.get_mut(&instance_id) {
            if let Some(proxy) = entry.proxy.upgrade() {
                entry.received += n;
                return proxy;
            }
        }
        // A proxy whose drop is still on its way: its receipts are owed now.
        if let Some(old) = self.entries.remove(&instance_id) {
            self.owe(instance_id, old.received);
        }
        self.next_generation += 1;
        let generation = self.next_generation;
        let proxy = make(generation);
        self.entries.insert(instance_id, Import { proxy: Arc::downgrade(&proxy), generation, received: n });
        proxy
    }

    /// Takes `proxy` (made before the peer named the object, with `generation`) as the proxy
    /// for `instance_id`, unless one is alive already: the peer's root alias, adopted when
    /// the `Hello` names the root.
    pub(crate) fn adopt(&mut self, instance_id: u64, proxy: &Arc<T>, generation: u64) {
        if self.entries.get(&instance_id).is_some_and(|e| e.proxy.strong_count() > 0) {
            return;
        }
        if let Some(old) = self.entries.remove(&instance_id) {
            self.owe(instance_id, old.received);
        }
        self.entries.insert(instance_id, Import { proxy: Arc::downgrade(proxy), generation, received: 0 });
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

    /// Forgets everything (the connection ended: nothing is owed any more).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.owed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(name: &str) -> Object {
        Object::builder(name).build()
    }

    #[test]
    fn an_export_counts_its_sends_and_goes_at_zero() {
        let mut exports = ExportTable::new(10);
        let obj = object("demo.Thing");
        let id = obj.instance_id();
        exports.export(&obj).unwrap();
        exports.export(&obj).unwrap();
        assert_eq!(exports.len(), 1);
        exports.release(id, 1).unwrap();
        assert!(exports.get(id).is_some(), "one send is still held");
        exports.release(id, 1).unwrap();
        assert!(exports.get(id).is_none(), "freed at zero");
    }

    #[test]
    fn releasing_more_than_was_sent_is_refused_and_frees_once() {
        let mut exports = ExportTable::new(10);
        let obj = object("demo.Thing");
        let id = obj.instance_id();
        exports.export(&obj).unwrap();
        assert!(exports.release(id, 2).is_err());
        assert!(exports.get(id).is_none());
        assert!(exports.release(id, 1).is_err(), "not exported any more");
    }

    #[test]
    fn pinned_exports_stay_and_the_cap_holds() {
        let mut exports = ExportTable::new(2);
        let root = object("demo.Root");
        exports.pin(&root);
        exports.export(&root).unwrap();
        exports.release(root.instance_id(), 1).unwrap();
        assert!(exports.get(root.instance_id()).is_some(), "pinned");
        assert_eq!(exports.unpinned(), 0);
        exports.export(&object("demo.A")).unwrap();
        assert!(exports.export(&object("demo.B")).is_err(), "past max_exports");
    }

    #[test]
    fn the_last_proxy_owes_every_receipt_once() {
        let mut imports: ImportCache<u64> = ImportCache::default();
        let first = imports.proxy(7, true, Arc::new);
        let second = imports.proxy(7, true, Arc::new);
        assert!(Arc::ptr_eq(&first, &second), "one proxy per object");
        let generation = *first;
        drop((first, second));
        imports.dropped(7, generation);
        assert_eq!(imports.owed, vec![(7, 2)]);
        imports.dropped(7, generation);
        assert_eq!(imports.owed, vec![(7, 2)], "owed once");
    }

    #[test]
    fn a_late_drop_of_an_old_proxy_owes_nothing_more() {
        let mut imports: ImportCache<u64> = ImportCache::default();
        let old = imports.proxy(3, true, Arc::new);
        let old_generation = *old;
        drop(old);
        // Received again before the drop was handled: the old receipts are owed now.
        let new = imports.proxy(3, true, Arc::new);
        assert_eq!(imports.owed, vec![(3, 1)]);
        imports.dropped(3, old_generation);
        assert_eq!(imports.owed, vec![(3, 1)], "the old drop finds a newer proxy");
        assert_eq!(imports.len(), 1);
        let new_generation = *new;
        drop(new);
        imports.dropped(3, new_generation);
        assert_eq!(imports.owed, vec![(3, 1), (3, 1)]);
    }

    #[test]
    fn an_uncounted_proxy_owes_nothing() {
        let mut imports: ImportCache<u64> = ImportCache::default();
        let root = imports.proxy(1, false, Arc::new);
        let generation = *root;
        drop(root);
        imports.dropped(1, generation);
        assert!(imports.owed.is_empty());
    }
}
