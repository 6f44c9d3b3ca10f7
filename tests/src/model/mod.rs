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
