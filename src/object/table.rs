//! [`ExportTable`]: the objects one connection has sent to its peer, with counted references.
//!
//! Counting follows RPyC and Cap'n Proto: every time an object is sent its count goes up; the
//! peer's `Release(id, n)` takes `n` off; at zero the entry goes. Pinned entries (the root, named
//! exports) stay until the connection closes.

use super::Object;
use crate::IdPack;

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
