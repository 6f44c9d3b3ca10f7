//! The replica's configuration, validated once at construction.

use crate::ballot::NodeId;
use crate::time::Duration;
use core::fmt;
use heapless::Vec;

/// How a replica behaves. Build one with [`Config::new`], adjust the
/// public fields, and hand it to [`super::Replica::new`], which validates it.
///
/// `N` is the largest cluster the replica supports (at most 64).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Config<const N: usize> {
    /// This node.
    pub id: NodeId,
    /// Every node of the cluster, this one included. Majority quorums.
    pub members: Vec<NodeId, N>,
    /// How often an idle leader sends heartbeats.
    pub heartbeat_interval: Duration,
    /// A follower that hears nothing from a leader for this long, plus a
    /// random extra of up to the same again, starts an election.
    pub election_timeout: Duration,
    /// How long the leader waits for votes before resending an append.
    pub retransmit_timeout: Duration,
    /// The leader lease, if any: see [`LeaseConfig`].
    pub lease: Option<LeaseConfig>,
    /// A node that, on a fresh start (no durable state), leads with the
    /// lowest ballot and skips phase 1. Safe because round 0 is reserved
    /// for it: no lower ballot exists, so no value can have been chosen
    /// that phase 1 would have to find.
    pub initial_leader: Option<NodeId>,
    /// Seeds the election-timeout jitter. Give each node a different seed.
    pub seed: u64,
    /// A bug to inject (test builds with the `bug-injection` feature only).
    #[cfg(feature = "bug-injection")]
    pub bug: Option<Bug>,
}

/// The classic Paxos bugs the verification suite must catch. They exist
/// only to be injected, through `Config::bug` with the `bug-injection`
/// feature; production builds cannot enable them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Bug {
    /// A new leader ignores the values promises report (and its own).
    IgnoreAcceptedValues,
    /// An acceptor accepts ballots below its promise.
    AcceptBelowPromise,
    /// An acceptor does not raise its promise when it accepts.
    NoPromiseOnAccept,
    /// Quorums are one vote short of a majority.
    QuorumOffByOne,
    /// Votes and promises leave before their records are durable.
    RevealBeforeDurable,
    /// A restarted node ignores its records and boots as new.
    ForgetOnRestart,
    /// A restarted node's campaigns start from round 1 again.
    ReuseBallotAfterRestart,
    /// A leader or candidate applies decided values learned from a peer,
    /// so its watermark covers slots its own ballot did not decide.
    LeaderLearns,
    /// A record batch may end in a run header without its item count.
    TornRecord,
    /// Learning decided values records no watermark, and an append may
    /// turn a learned cell back into a plain vote.
    UnrecordedLearnWatermark,
    /// A node whose storage was lost restarts as a first boot and votes.
    AmnesiacVotes,
    /// A snapshot clears cells whose vote records are still queued, and a
    /// watermark queued over them reaches disk before the snapshot.
    SnapshotDropsPendingVotes,
}

impl<const N: usize> Config<N> {
    /// Whether `bug` is injected (always false without the feature).
    #[inline]
    pub(crate) fn injected(&self, bug: Bug) -> bool {
        #[cfg(feature = "bug-injection")]
        {
            self.bug == Some(bug)
        }
        #[cfg(not(feature = "bug-injection"))]
        {
            let _ = bug;
            false
        }
    }
}

/// The leader lease: while it holds, the leader answers reads locally.
///
/// The clock assumption: every node's clock runs at a rate within
/// `max_drift_ppm` parts per million of real time (no bound on offsets is
/// needed). A follower that heard from the leader refuses other candidates
/// for `duration` after it heard; the leader counts its lease from when it
/// *sent* the heartbeat a quorum answered, shortened by twice the drift,
/// so it expires before any quorum can promise a new leader. A restarted
/// node also waits `duration` before promising anyone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LeaseConfig {
    /// The lease length; must be shorter than the election timeout.
    pub duration: Duration,
    /// The largest clock-rate error of any node, in parts per million.
    pub max_drift_ppm: u32,
}

impl LeaseConfig {
    /// How long the leader may rely on a lease counted from `duration`:
    /// `duration * (1 - 2 * drift)`.
    pub fn safe_duration(&self) -> Duration {
        let factor = 1_000_000u64.saturating_sub(2 * u64::from(self.max_drift_ppm));
        let micros = u128::from(self.duration.as_micros()) * u128::from(factor) / 1_000_000;
        Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

/// Why a configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ConfigError {
    /// No members.
    NoMembers,
    /// A member is listed twice.
    DuplicateMember(NodeId),
    /// This node is not a member.
    NotAMember(NodeId),
    /// The initial leader is not a member.
    UnknownInitialLeader(NodeId),
    /// More than 64 members (votes are a 64-bit mask) or a capacity of 0.
    BadCapacity,
    /// A timeout is zero, or the heartbeat is not shorter than the
    /// election timeout.
    BadTimeouts,
    /// The lease is not shorter than the election timeout, or the drift
    /// leaves no lease at all.
    BadLease,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NoMembers => write!(f, "the cluster has no members"),
            ConfigError::DuplicateMember(n) => write!(f, "node {n} is listed twice"),
            ConfigError::NotAMember(n) => write!(f, "node {n} is not a member of the cluster"),
            ConfigError::UnknownInitialLeader(n) => write!(f, "initial leader {n} is not a member"),
            ConfigError::BadCapacity => {
                write!(f, "capacities must be between 1 and 64 members and 1 slot")
            }
            ConfigError::BadTimeouts => {
                write!(
                    f,
                    "timeouts must be non-zero and the heartbeat shorter than the election timeout"
                )
            }
            ConfigError::BadLease => write!(f, "the lease must be non-empty and shorter than the election timeout"),
        }
    }
}

impl core::error::Error for ConfigError {}

impl<const N: usize> Config<N> {
    /// A configuration for node `id` in a cluster of `members`, with
    /// timeouts suited to a LAN: 50 ms heartbeats, 300 ms elections,
    /// 100 ms retransmissions, no lease, no initial leader.
    pub fn new(id: NodeId, members: &[NodeId]) -> Result<Self, ConfigError> {
        let members = Vec::from_slice(members).map_err(|_| ConfigError::BadCapacity)?;
        let config = Config {
            id,
            members,
            heartbeat_interval: Duration::from_millis(50),
            election_timeout: Duration::from_millis(300),
            retransmit_timeout: Duration::from_millis(100),
            lease: None,
            initial_leader: None,
            seed: u64::from(id.0),
            #[cfg(feature = "bug-injection")]
            bug: None,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule; [`super::Replica::new`] calls it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if N == 0 || N > 64 {
            return Err(ConfigError::BadCapacity);
        }
        if self.members.is_empty() {
            return Err(ConfigError::NoMembers);
        }
        for (i, m) in self.members.iter().enumerate() {
            if self.members.iter().skip(i + 1).any(|o| o == m) {
                return Err(ConfigError::DuplicateMember(*m));
            }
        }
        if !self.members.contains(&self.id) {
            return Err(ConfigError::NotAMember(self.id));
        }
        if let Some(l) = self.initial_leader {
            if !self.members.contains(&l) {
                return Err(ConfigError::UnknownInitialLeader(l));
            }
        }
        let zero = Duration::ZERO;
        if self.heartbeat_interval == zero
            || self.election_timeout == zero
            || self.retransmit_timeout == zero
            || self.heartbeat_interval >= self.election_timeout
        {
            return Err(ConfigError::BadTimeouts);
        }
        if let Some(lease) = self.lease {
            if lease.duration >= self.election_timeout || lease.safe_duration() == zero {
                return Err(ConfigError::BadLease);
            }
        }
        Ok(())
    }

    /// How many votes decide: a majority of the members.
    pub fn quorum(&self) -> usize {
        let majority = self.members.len() / 2 + 1;
        if self.injected(Bug::QuorumOffByOne) {
            return majority - 1;
        }
        majority
    }

    /// The position of `node` among the members.
    pub fn index_of(&self, node: NodeId) -> Option<usize> {
        self.members.iter().position(|m| *m == node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u8) -> heapless::Vec<NodeId, 8> {
        (0..n).map(NodeId).collect()
    }

    #[test]
    fn valid_configs_and_quorums() {
        for n in 1..=8u8 {
            let c = Config::<8>::new(NodeId(0), &ids(n)).unwrap();
            assert_eq!(c.quorum(), usize::from(n) / 2 + 1);
        }
        let c = Config::<8>::new(NodeId(2), &ids(3)).unwrap();
        assert_eq!(c.index_of(NodeId(2)), Some(2));
        assert_eq!(c.index_of(NodeId(7)), None);
    }

    #[test]
    fn invalid_configs_are_typed_errors() {
        assert_eq!(Config::<8>::new(NodeId(0), &[]).unwrap_err(), ConfigError::NoMembers);
        assert_eq!(
            Config::<8>::new(NodeId(9), &ids(3)).unwrap_err(),
            ConfigError::NotAMember(NodeId(9))
        );
        assert_eq!(
            Config::<8>::new(NodeId(0), &[NodeId(0), NodeId(1), NodeId(0)]).unwrap_err(),
            ConfigError::DuplicateMember(NodeId(0))
        );
        assert_eq!(
            Config::<2>::new(NodeId(0), &ids(3)).unwrap_err(),
            ConfigError::BadCapacity
        );
        assert_eq!(
            Config::<65>::new(NodeId(0), &ids(3)).unwrap_err(),
            ConfigError::BadCapacity
        );
        let mut c = Config::<8>::new(NodeId(0), &ids(3)).unwrap();
        c.heartbeat_interval = c.election_timeout;
        assert_eq!(c.validate(), Err(ConfigError::BadTimeouts));
        // Each timeout alone may not be zero.
        for zero in 0..3 {
            let mut c = Config::<8>::new(NodeId(0), &ids(3)).unwrap();
            *[
                &mut c.heartbeat_interval,
                &mut c.election_timeout,
                &mut c.retransmit_timeout,
            ][zero] = Duration::ZERO;
            assert_eq!(c.validate(), Err(ConfigError::BadTimeouts), "timeout {zero}");
        }
        // 64 members is the most a vote mask holds, and allowed.
        let all: heapless::Vec<NodeId, 64> = (0..64).map(NodeId).collect();
        assert_eq!(Config::<64>::new(NodeId(63), &all).unwrap().quorum(), 33);
        let mut c = Config::<8>::new(NodeId(0), &ids(3)).unwrap();
        c.initial_leader = Some(NodeId(5));
        assert_eq!(c.validate(), Err(ConfigError::UnknownInitialLeader(NodeId(5))));
        c.initial_leader = None;
        c.lease = Some(LeaseConfig {
            duration: c.election_timeout,
            max_drift_ppm: 100,
        });
        assert_eq!(c.validate(), Err(ConfigError::BadLease));
        c.lease = Some(LeaseConfig {
            duration: Duration::from_millis(100),
            max_drift_ppm: 500_000,
        });
        assert_eq!(c.validate(), Err(ConfigError::BadLease));
        c.lease = Some(LeaseConfig {
            duration: Duration::from_millis(100),
            max_drift_ppm: 1_000,
        });
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.lease.unwrap().safe_duration(), Duration::from_micros(99_800));
    }
}
