//! Boxing and unboxing of references: how the encoders turn a reference into its label and
//! identity ([`RefBoxer`]) and how the decoder turns a received identity back into a reference
//! ([`RefUnboxer`]). The connection's export and import tables implement them; the protocol
//! layer itself only knows [`WireRef`]s, handled by [`WireRefs`]. The RPyC dialect boxes through
//! the same traits.
//!
//! Nothing here touches a connection or actix: the traits are the seam.

use std::borrow::Cow;

use serde::Deserialize;

use crate::value::{IdPack, RefLabel, WireRef};

/// Turns a reference into its wire form when a value is sent (the exporter's side of boxing).
pub trait RefBoxer<R> {
    /// The label and identity to send for `r`; an error aborts the encoding. The identity is
    /// borrowed where it can be (it is only written out).
    fn box_ref<'r>(&self, r: &'r R) -> Result<(RefLabel, Cow<'r, IdPack>), String>;

    /// `r` already boxed — its label byte and identity, the bytes [`box_ref`](Self::box_ref)'s
    /// answer is written as — for a reference that keeps them (a netref names its object this
    /// way in every call on it). Only for references whose boxing counts nothing: the bytes
    /// are written instead of calling `box_ref`. `None`, the default, boxes with `box_ref`.
    fn boxed<'a>(&'a self, _r: &'a R) -> Option<&'a [u8]> {
        None
    }
}

/// Turns a received wire reference into a reference (the importer's side of unboxing).
pub trait RefUnboxer {
    /// What a reference unboxes to.
    type Ref;
    /// The reference for `wire`; an error (e.g. a `LOCAL_REF` never exported) fails the frame.
    /// `id` borrows the frame's bytes: most references resolve without copying the type name
    /// (a `LOCAL_REF` by its instance id, a known `REMOTE_REF` to its existing proxy).
    fn unbox_ref(&self, label: RefLabel, id: IdPackRef<'_>) -> Result<Self::Ref, String>;
}

/// An [`IdPack`] as decoded, its type name borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct IdPackRef<'a> {
    /// The object's type as `"module.Type"`.
    pub type_name: &'a str,
    /// Identifies the type on the exporting side.
    pub class_id: u64,
    /// Identifies the object on the exporting side.
    pub instance_id: u64,
}

impl IdPackRef<'_> {
    /// An owned copy.
    pub fn to_id_pack(&self) -> IdPack {
        IdPack { type_name: self.type_name.to_owned(), class_id: self.class_id, instance_id: self.instance_id }
    }
}

/// The identity boxer of the protocol layer: [`WireRef`]s go out and come back as they are.
#[derive(Clone, Copy, Debug, Default)]
pub struct WireRefs;

impl RefBoxer<WireRef> for WireRefs {
    fn box_ref<'r>(&self, r: &'r WireRef) -> Result<(RefLabel, Cow<'r, IdPack>), String> {
        Ok((r.label, Cow::Borrowed(&r.id)))
    }
}

impl RefUnboxer for WireRefs {
    type Ref = WireRef;

    fn unbox_ref(&self, label: RefLabel, id: IdPackRef<'_>) -> Result<WireRef, String> {
        Ok(WireRef { label, id: id.to_id_pack() })
    }
}
