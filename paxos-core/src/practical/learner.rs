//! The practical learner: the essential one plus the set of acceptors known
//! to hold the final value.

use super::{Error, Outbox};
use crate::ballot::{Ballot, NodeId, NodeSet};
use crate::essential;
use crate::message::Proposal;

/// A learner that reports the decision once and keeps counting the
/// acceptors that hold the decided value.
#[derive(Clone, Debug)]
pub struct Learner<V, const N: usize> {
    inner: essential::Learner<V, N>,
    final_acceptors: NodeSet,
}

impl<V: Clone + Eq, const N: usize> Learner<V, N> {
    /// A learner that needs `quorum` matching votes, tracking up to `N`
    /// acceptors.
    pub fn new(quorum: usize) -> Self {
        Learner {
            inner: essential::Learner::new(quorum),
            final_acceptors: NodeSet::new(),
        }
    }

    /// A vote. The first quorum reports [`super::Event::Resolved`]; after
    /// that, any acceptor reporting the decided value (under any ballot)
    /// joins the final acceptors.
    pub fn receive_accepted(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        value: V,
        out: &mut Outbox<V>,
    ) -> Result<(), Error> {
        out.reserve()?;
        if let Some(decided) = self.inner.decision() {
            if decided.value == value {
                self.final_acceptors.insert(from);
            }
            return Ok(());
        }
        let mut voters = self.inner.voters(ballot);
        voters.insert(from);
        if let Some(decision) = self.inner.receive_accepted(from, ballot, value) {
            self.final_acceptors = voters;
            out.resolved(decision.clone());
        }
        Ok(())
    }

    /// The acceptors known to hold the decided value; `None` before the
    /// decision.
    pub fn final_acceptors(&self) -> Option<NodeSet> {
        self.inner.is_complete().then_some(self.final_acceptors)
    }

    /// The decision, once there is one.
    pub fn decision(&self) -> Option<&Proposal<V>> {
        self.inner.decision()
    }

    /// The decided value, once there is one.
    pub fn final_value(&self) -> Option<&V> {
        self.inner.final_value()
    }

    /// Whether a value was decided.
    pub fn is_complete(&self) -> bool {
        self.inner.is_complete()
    }

    /// Changes the quorum size.
    pub fn set_quorum(&mut self, quorum: usize) {
        self.inner.set_quorum(quorum);
    }
}
