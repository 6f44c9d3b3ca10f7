//! Incoming frames: who sent them, what they are, and which rule takes
//! them (the acceptor's, the leader's or the learner's).

use super::wire::{self, Header};
use super::{Dropped, Replica, Value};
use crate::ballot::NodeId;
use crate::codec::DecodeError;

impl<V: Value, const N: usize, const W: usize> Replica<V, N, W> {
    /// Decodes a frame from `from`, hands it to the rule for its kind, and
    /// counts a drop by reason (here only: one place counts every drop).
    pub(super) fn receive(&mut self, from: NodeId, frame: &[u8]) -> Result<(), Dropped> {
        let result = self.dispatch(from, frame);
        if let Err(e) = result {
            match e {
                Dropped::Malformed(_) => self.counters.malformed += 1,
                Dropped::Busy => self.counters.busy += 1,
                Dropped::UnknownPeer(_) => self.counters.unknown_peer += 1,
            }
        }
        result
    }

    /// Decodes a frame from `from` and hands it to the rule for its kind.
    fn dispatch(&mut self, from: NodeId, frame: &[u8]) -> Result<(), Dropped> {
        let peer = self
            .config
            .index_of(from)
            .filter(|&i| i != self.me)
            .ok_or(Dropped::UnknownPeer(from))?;
        let (header, rest) = wire::decode_frame::<Header>(frame).map_err(Dropped::Malformed)?;
        match header {
            Header::Prepare {
                ballot,
                from: first,
                until,
            } => Self::no_items(rest).and_then(|()| self.on_prepare(from, ballot, first, until)),
            Header::Promise {
                ballot,
                decided,
                beyond,
                first,
                complete,
            } => self.on_promise(peer, ballot, decided, beyond, first, complete, rest),
            Header::Append {
                ballot,
                commit,
                first,
                stamp,
            } => self.on_append(from, ballot, commit, first, stamp, rest),
            Header::Accepted {
                ballot,
                first,
                count,
                stamp,
            } => Self::no_items(rest).map(|()| self.on_accepted(peer, ballot, first, count, stamp)),
            Header::Nack {
                ballot,
                promised,
                decided,
            } => Self::no_items(rest).map(|()| self.on_nack(from, peer, ballot, promised, decided)),
            Header::CatchUp { from: first } => Self::no_items(rest).and_then(|()| self.on_catch_up(from, first)),
            Header::Learn { first } => self.on_learn(first, rest),
        }
    }

    /// A message kind that carries no items must end after its header.
    fn no_items(rest: &[u8]) -> Result<(), Dropped> {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(Dropped::Malformed(DecodeError::TrailingBytes))
        }
    }
}
