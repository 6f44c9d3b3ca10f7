//! Persist sequence numbers and the persist-before-reveal rule, shared by
//! the practical layer's [`Outbox`](crate::practical::Outbox) and the
//! replica's outbox.

use postcard::experimental::max_size::MaxSize;
use serde::{Deserialize, Serialize};

/// Identifies one persist request; confirming a sequence number confirms
/// every earlier one too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, MaxSize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PersistSeq(pub u64);

impl PersistSeq {
    /// Persist before reveal: a message queued when `self` was the newest
    /// persist issued may reveal the state those persists record, so it
    /// may leave only once `durable` (the newest confirmed) covers `self`.
    pub fn released_by(self, durable: PersistSeq) -> bool {
        self <= durable
    }
}

#[cfg(test)]
mod tests {
    use super::PersistSeq;

    #[test]
    fn a_message_leaves_once_every_persist_before_it_is_durable() {
        assert!(PersistSeq(0).released_by(PersistSeq(0)), "nothing to wait for");
        assert!(PersistSeq(3).released_by(PersistSeq(3)));
        assert!(PersistSeq(3).released_by(PersistSeq(4)));
        assert!(!PersistSeq(3).released_by(PersistSeq(2)));
    }
}
