//! A binary connection's byte budget: the bytes of its requests read and
//! not yet answered, and of its replies not yet written, are held against
//! it, and its reader waits for room before it reads a request's body. A
//! client that pipelines large requests, or does not read large replies,
//! is paused — the node stops reading its socket — instead of being
//! buffered without bound.
//!
//! Room is taken in the order asked (tokio's semaphore is fair), and a
//! holder never waits for more while holding some (a request's bytes are
//! let go before its reply's are asked for), so the budget cannot
//! deadlock: it frees as requests are answered and replies written.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A connection's byte budget; see the [module docs](self).
#[derive(Clone, Debug)]
pub(super) struct Budget {
    room: Arc<Semaphore>,
    bytes: usize,
}

/// Bytes held against a [`Budget`] until dropped.
pub(super) type Held = OwnedSemaphorePermit;

impl Budget {
    /// A budget of `bytes` (at least 1, at most `u32::MAX`).
    pub(super) fn new(bytes: usize) -> Self {
        let bytes = bytes.clamp(1, u32::MAX as usize);
        Budget {
            room: Arc::new(Semaphore::new(bytes)),
            bytes,
        }
    }

    /// Waits until `len` bytes are free and holds them. Something larger
    /// than the whole budget holds all of it: it is let through, alone.
    /// `None` only if the budget were closed, which it never is.
    pub(super) async fn hold(&self, len: usize) -> Option<Held> {
        // At most `bytes`, which fits a u32 (see `new`).
        let cost = len.min(self.bytes) as u32;
        Arc::clone(&self.room).acquire_many_owned(cost).await.ok()
    }

    /// The bytes held now.
    #[cfg(test)]
    pub(super) fn held(&self) -> usize {
        self.bytes - self.room.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::timeout;

    const SOON: Duration = Duration::from_millis(50);

    #[tokio::test]
    async fn bytes_are_held_until_dropped_and_waiters_served_in_order() {
        let budget = Budget::new(100);
        let first = budget.hold(60).await.unwrap();
        let second = budget.hold(40).await.unwrap();
        assert_eq!(budget.held(), 100);
        // No room: a third waits, and a small one behind it waits its turn.
        let third = tokio::spawn({
            let budget = budget.clone();
            async move { budget.hold(50).await }
        });
        tokio::time::sleep(SOON).await;
        let fourth = tokio::spawn({
            let budget = budget.clone();
            async move { budget.hold(1).await }
        });
        tokio::time::sleep(SOON).await;
        assert!(!third.is_finished() && !fourth.is_finished());
        drop(second);
        tokio::time::sleep(SOON).await;
        assert!(!third.is_finished(), "40 bytes free: not enough for 50");
        assert!(
            !fourth.is_finished(),
            "the small one does not pass the larger before it"
        );
        drop(first);
        let third = timeout(SOON * 10, third).await.unwrap().unwrap().unwrap();
        let fourth = timeout(SOON * 10, fourth).await.unwrap().unwrap().unwrap();
        assert_eq!(budget.held(), 51);
        drop((third, fourth));
        assert_eq!(budget.held(), 0);
    }

    #[tokio::test]
    async fn something_larger_than_the_budget_holds_all_of_it() {
        let budget = Budget::new(100);
        let huge = budget.hold(1_000_000).await.unwrap();
        assert_eq!(budget.held(), 100);
        assert!(timeout(SOON, budget.hold(1)).await.is_err());
        drop(huge);
        assert!(timeout(SOON, budget.hold(100)).await.unwrap().is_some());
        // Nothing asks for nothing.
        assert_eq!(budget.held(), 0);
        let _none = budget.hold(0).await;
        assert_eq!(Budget::new(0).bytes, 1);
    }
}
