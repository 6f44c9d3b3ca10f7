//! Cross-crate test support for the paxos workspace.
