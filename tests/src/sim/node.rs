//! One simulated node: a replica (while running), its disk, its
//! application, and the driver loop that drains the replica after every
//! input.

use super::app::App;
use super::disk::Disk;
use super::Value;
use paxos_core::replica::{Config, Event, ProposalId, Replica, Slot};
use paxos_core::{Ballot, Instant, NodeId, NodeSet};
use std::rc::Rc;

/// The largest cluster simulated.
pub const MAX_NODES: usize = 5;

/// The replica type under test, with a log window of `W`.
pub type SimReplica<const W: usize> = Replica<Value, MAX_NODES, W>;

/// An [`Event`] that owns its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent {
    /// See [`Event::Decided`].
    Decided {
        /// The slot.
        slot: Slot,
        /// The value.
        value: Option<Value>,
        /// The local proposal.
        proposal: Option<ProposalId>,
    },
    /// See [`Event::Displaced`].
    Displaced(ProposalId),
    /// See [`Event::LeadershipAcquired`].
    Acquired(Ballot),
    /// See [`Event::LeadershipLost`].
    Lost,
    /// See [`Event::LeaderChanged`].
    LeaderChanged(Option<NodeId>),
    /// See [`Event::SnapshotNeeded`].
    SnapshotNeeded {
        /// The node behind.
        peer: NodeId,
        /// The first slot it lacks.
        from: Slot,
    },
}

impl NodeEvent {
    fn from_event(event: Event<'_, Value>) -> Self {
        match event {
            Event::Decided { slot, value, proposal } => NodeEvent::Decided {
                slot,
                value: value.cloned(),
                proposal,
            },
            Event::Displaced { proposal } => NodeEvent::Displaced(proposal),
            Event::LeadershipAcquired { ballot } => NodeEvent::Acquired(ballot),
            Event::LeadershipLost => NodeEvent::Lost,
            Event::LeaderChanged { leader } => NodeEvent::LeaderChanged(leader),
            Event::SnapshotNeeded { peer, from } => NodeEvent::SnapshotNeeded { peer, from },
        }
    }
}

/// What a drain produced, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A frame to send to every node in `to`.
    Frame {
        /// The recipients.
        to: NodeSet,
        /// The frame.
        bytes: Rc<[u8]>,
    },
    /// Something for the application.
    Event(NodeEvent),
}

/// A node of the simulated cluster.
#[derive(Debug)]
pub struct Node<const W: usize> {
    /// Its position among the members.
    pub index: usize,
    /// Its configuration (the same at every restart).
    pub config: Config<MAX_NODES>,
    /// The running replica; `None` while crashed.
    pub replica: Option<SimReplica<W>>,
    /// Bumped at every crash: work scheduled for an older lifetime is
    /// ignored.
    pub incarnation: u32,
    /// Its storage.
    pub disk: Disk,
    /// Its application.
    pub app: App,
    /// Stays down until the run ends.
    pub stay_down: bool,
    /// Batches written.
    pub batches: u64,
    /// The driver writes the next batch only while no sync is in flight
    /// (one I/O at a time): records wait in the replica meanwhile, and
    /// later inputs may change the cells they will be encoded from.
    pub lazy_persist: bool,
    /// When the sync in flight completes, if one is.
    pub sync_due: Option<Instant>,
    persist_buf: Vec<u8>,
    transmit_buf: Vec<u8>,
}

impl<const W: usize> Node<W> {
    /// A node that has not started yet; `persist_buffer` is the size of
    /// the buffer handed to `poll_persist`.
    pub fn new(index: usize, config: Config<MAX_NODES>, persist_buffer: usize) -> Self {
        Node {
            index,
            config,
            replica: None,
            incarnation: 0,
            disk: Disk::default(),
            app: App::default(),
            stay_down: false,
            batches: 0,
            lazy_persist: false,
            sync_due: None,
            persist_buf: vec![0; persist_buffer],
            transmit_buf: vec![0; SimReplica::<W>::MAX_MESSAGE_SIZE],
        }
    }

    /// Its identity.
    pub fn id(&self) -> NodeId {
        self.config.id()
    }

    /// Whether it runs.
    pub fn is_up(&self) -> bool {
        self.replica.is_some()
    }

    /// The driver loop: writes every batch to the disk (confirming it at
    /// once only if `confirm_at_once`, which is a sabotage; a lazy driver
    /// writes nothing while a sync is in flight), then collects frames and
    /// events, until the replica has nothing more to say.
    pub fn drain(&mut self, now: Instant, confirm_at_once: bool, out: &mut Vec<Output>) -> Result<(), String> {
        let Some(replica) = self.replica.as_mut() else {
            return Ok(());
        };
        for _round in 0..1_000 {
            let mut progressed = false;
            let defer = self.lazy_persist && self.disk.syncing();
            while let Some(p) = (!defer).then(|| replica.poll_persist(&mut self.persist_buf)).flatten() {
                let batch = self
                    .persist_buf
                    .get(..p.len)
                    .ok_or_else(|| format!("poll_persist claimed {} bytes", p.len))?;
                self.disk.write(p.seq, batch);
                self.batches += 1;
                if confirm_at_once {
                    replica.persisted(now, p.seq).map_err(|e| format!("persisted: {e}"))?;
                }
                progressed = true;
            }
            while let Some(t) = replica.poll_transmit(&mut self.transmit_buf) {
                let bytes = self
                    .transmit_buf
                    .get(..t.len)
                    .ok_or_else(|| format!("poll_transmit claimed {} bytes", t.len))?;
                out.push(Output::Frame {
                    to: t.to,
                    bytes: Rc::from(bytes),
                });
                progressed = true;
            }
            while let Some(event) = replica.poll_event() {
                out.push(Output::Event(NodeEvent::from_event(event)));
                progressed = true;
            }
            if !progressed {
                return Ok(());
            }
        }
        Err("the replica never stopped producing output".into())
    }
}
