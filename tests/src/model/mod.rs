//! Model checking the production state machines with stateright: the
//! models here, the tests in `tests/tests/model_check.rs`.
//!
//! The drivers, which do not need stateright and that a simulator could
//! reuse:
//!
//! - [`fingerprint`]: how a model state that wraps a production type is
//!   hashed and compared, and why that is sound;
//! - [`single`]: a driver for [`paxos_core::practical::Node`] in which a
//!   persist becomes durable only in a later, separate step;
//! - [`replica`]: the same for [`paxos_core::replica::Replica`], plus the
//!   application around it (delivered log, client proposals, a virtual
//!   clock).
//!
//! The stateright models, behind the `model-check` feature (the crate's
//! own tests turn it on; the fuzz targets build without stateright):
//!
//! - `single_decree`: three `practical::Node`s as actors (model 1);
//! - `multi_paxos`: `N` replicas and their clients as actors, and the
//!   restricted scenarios of the bug hunts (model 2);
//! - `forgetful`: the actor model wrapper both use, which forgets the last
//!   delivered message, purges messages that can no longer act, and holds
//!   the properties;
//! - `checking`: running a checker, printing what it explored, and
//!   asserting its verdict.
//!
//! Both drivers keep what a real driver would lose in a crash (unflushed
//! records, the application's in-memory state) apart from what survives
//! it (flushed records), so that a model checker can crash a node between
//! any two steps and restart it from exactly what was durable.

#[cfg(feature = "model-check")]
pub mod checking;
pub mod fingerprint;
#[cfg(feature = "model-check")]
pub mod forgetful;
#[cfg(feature = "model-check")]
pub mod multi_paxos;
pub mod replica;
pub mod single;
#[cfg(feature = "model-check")]
pub mod single_decree;

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
