//! Typed views of the kind-specific fields of a [`RawEvent`].
//!
//! A `RawEvent` has general-purpose slots (`args`, `aux`, `aux2`, and for a few kinds
//! `user_data`, `res` and `opcode`) whose meaning depends on its kind: the catalog of
//! tracepoint fields (`uringtrace/src/trace/catalog.rs`), the kernel programs and the
//! userspace samplers fill them. A view names them once, for producers and consumers
//! alike: `View::of(&ev)` reads an event of the view's kind (None for any other), and
//! `view.into_raw(base)` packs the fields into `base` and sets the kind.
//!
//! The packing is the ring buffer's and the recordings' format: it never changes. The
//! fields every kind shares (`ts_ns`, `ctx`, `req`, `pid`, `tgid`, `cpu`, `role`,
//! `comm`, and `user_data`, `res`, `cflags`, `opcode` where they mean what their name
//! says) stay on the event.

use crate::{EventKind, RawEvent};

/// The kind-specific fields of one event kind (or of a few kinds that share them).
pub trait EventView: Sized {
    /// The kind of an event built by [`EventView::into_raw`].
    const KIND: EventKind;

    /// Whether events of `kind` carry this view.
    #[inline]
    fn carried_by(kind: u16) -> bool {
        kind == Self::KIND as u16
    }

    /// Reads the fields of an event the caller knows to be of this view's kind (a
    /// dispatch on the kind); of any other kind, the values mean nothing.
    fn read(ev: &RawEvent) -> Self;

    /// Writes the fields into `ev` (every slot the view owns; not the kind).
    fn write(&self, ev: &mut RawEvent);

    /// The fields of `ev`, when it is of this view's kind.
    #[inline]
    fn of(ev: &RawEvent) -> Option<Self> {
        Self::carried_by(ev.kind).then(|| Self::read(ev))
    }

    /// `base` (timestamp, task, ring, ...) as an event of this kind with these fields.
    #[inline]
    fn into_raw(self, mut base: RawEvent) -> RawEvent {
        base.kind = Self::KIND as u16;
        self.write(&mut base);
        base
    }
}

/// Implements [`EventView`] for a struct whose fields each sit in one slot, as is.
macro_rules! view {
    ($ty:ident, $kind:ident, { $($field:ident: $slot:ident $([$i:literal])?),* $(,)? }) => {
        impl EventView for $ty {
            const KIND: EventKind = EventKind::$kind;

            #[inline]
            fn read(ev: &RawEvent) -> Self {
                $ty { $($field: ev.$slot $([$i])?,)* }
            }

            #[inline]
            fn write(&self, ev: &mut RawEvent) {
                $(ev.$slot $([$i])? = self.$field;)*
            }
        }
    };
}

mod io_uring;
mod task;
mod userspace;

pub use io_uring::*;
pub use task::*;
pub use userspace::*;

#[cfg(test)]
mod tests;
