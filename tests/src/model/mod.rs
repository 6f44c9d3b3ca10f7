//! Support for model checking the production state machines
//! (`tests/tests/model_check.rs`, with stateright).
//!
//! stateright is a dev-dependency, so nothing here names it: this module
//! holds the parts that do not need it, and that a simulator could reuse.
//!
//! - [`fingerprint`]: how a model state that wraps a production type is
//!   hashed and compared, and why that is sound;
//! - [`single`]: a driver for [`paxos_core::practical::Node`] in which a
//!   persist becomes durable only in a later, separate step;
//! - [`replica`]: the same for [`paxos_core::replica::Replica`], plus the
//!   application around it (delivered log, client proposals, a virtual
//!   clock).
//!
//! Both drivers keep what a real driver would lose in a crash (unflushed
//! records, the application's in-memory state) apart from what survives
//! it (flushed records), so that a model checker can crash a node between
//! any two steps and restart it from exactly what was durable.

pub mod fingerprint;
pub mod replica;
pub mod single;

/// A driver that holds replies while records wait for a flush.
pub(crate) trait HoldsReplies: Clone + core::fmt::Debug {
    /// Whether records (and so replies) wait for a flush.
    fn has_pending(&self) -> bool;
    /// The fingerprint text without the number of held replies.
    fn shape_text(&self) -> String;
}

/// Feeds `host` one input, but leaves it as it was if the input's only
/// effect was one more copy of a reply already held (nothing went out and
/// only the held count changed); `single::NodeHost::receive` says why
/// skipping those copies loses no behaviour.
pub(crate) fn unless_only_held_grew<H: HoldsReplies, E>(host: &mut H, input: impl FnOnce(&mut H) -> Vec<E>) -> Vec<E> {
    // Replies are held only while records are unwritten.
    let before = host.has_pending().then(|| host.clone());
    let out = input(host);
    if let Some(before) = before {
        // Compare the cheap rendering first: most such inputs change nothing.
        let changed = || format!("{host:?}") != format!("{before:?}");
        if out.is_empty() && changed() && host.shape_text() == before.shape_text() {
            *host = before;
        }
    }
    out
}
