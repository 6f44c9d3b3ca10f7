//! The replica's configuration, validated once at construction.

use super::fault::Bug;
use crate::ballot::NodeId;
use crate::time::Duration;
use core::fmt;
use heapless::Vec;

/// How a replica behaves: built and checked by [`ConfigBuilder`], so a
/// `Config` in hand is always valid. Read it through its getters.
///
/// `N` is the largest cluster the replica supports (at most 64).
///
/// ```
/// use paxos_core::{Duration, NodeId};
/// use paxos_core::replica::{Config, LeaseConfig};
///
/// let members = [NodeId(1), NodeId(2), NodeId(3)];
/// let config = Config::<3>::builder(NodeId(1), &members)
///     .election_timeout(Duration::from_millis(500))
///     .lease(LeaseConfig::new(Duration::from_millis(200), 100))
///     .build()
///     .unwrap();
/// assert_eq!(config.quorum(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Config<const N: usize> {
    pub(crate) id: NodeId,
    pub(crate) members: Vec<NodeId, N>,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) election_timeout: Duration,
    pub(crate) retransmit_timeout: Duration,
    pub(crate) lease: Option<LeaseConfig>,
    pub(crate) initial_leader: Option<NodeId>,
    pub(crate) seed: u64,
    #[cfg(feature = "bug-injection")]
    pub(crate) bug: Option<Bug>,
}

/// Builds a [`Config`]: start from [`Config::builder`] (LAN defaults) or
/// from an existing configuration ([`Config::to_builder`]), change what you
/// need, and [`build`](Self::build) checks every rule at once.
#[derive(Clone, Debug)]
#[must_use = "a builder does nothing until build() is called"]
pub struct ConfigBuilder<const N: usize> {
    draft: Config<N>,
    /// The member list did not fit `N`; reported by `build`.
    overflow: bool,
}

impl<const N: usize> ConfigBuilder<N> {
    /// How often an idle leader sends heartbeats (default 50 ms).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.draft.heartbeat_interval = interval;
        self
    }

    /// A follower that hears nothing from a leader for this long, plus a
    /// random extra of up to the same again, starts an election (default
    /// 300 ms). Must exceed the heartbeat interval.
    pub fn election_timeout(mut self, timeout: Duration) -> Self {
        self.draft.election_timeout = timeout;
        self
    }

    /// How long the leader waits for votes before resending an append
    /// (default 100 ms).
    pub fn retransmit_timeout(mut self, timeout: Duration) -> Self {
        self.draft.retransmit_timeout = timeout;
        self
    }

    /// The leader lease, or `None` for none (the default): see
    /// [`LeaseConfig`].
    pub fn lease(mut self, lease: impl Into<Option<LeaseConfig>>) -> Self {
        self.draft.lease = lease.into();
        self
    }

    /// A node that, on a fresh start (no durable state), leads with the
    /// lowest ballot and skips phase 1 (default none). Safe because round 0
    /// is reserved for it: no lower ballot exists, so no value can have
    /// been chosen that phase 1 would have to find.
    pub fn initial_leader(mut self, leader: impl Into<Option<NodeId>>) -> Self {
        self.draft.initial_leader = leader.into();
        self
    }

    /// Seeds the election-timeout jitter (default: the node id). Give each
    /// node a different seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.draft.seed = seed;
        self
    }

    /// Injects a classic bug, for the verification suites only (the
    /// `bug-injection` feature, which release builds never enable).
    #[cfg(feature = "bug-injection")]
    #[doc(hidden)]
    pub fn inject(mut self, bug: impl Into<Option<Bug>>) -> Self {
        self.draft.bug = bug.into();
        self
    }

    /// The configuration, or the first rule it breaks.
    pub fn build(self) -> Result<Config<N>, ConfigError> {
        if self.overflow {
            return Err(ConfigError::BadCapacity);
        }
        self.draft.validate()?;
        Ok(self.draft)
    }
}

impl<const N: usize> Config<N> {
    /// A builder for node `id` in a cluster of `members`, with timeouts
    /// suited to a LAN: 50 ms heartbeats, 300 ms elections, 100 ms
    /// retransmissions, no lease, no initial leader.
    pub fn builder(id: NodeId, members: &[NodeId]) -> ConfigBuilder<N> {
        let (members, overflow) = match Vec::from_slice(members) {
            Ok(members) => (members, false),
            Err(_) => (Vec::new(), true),
        };
        ConfigBuilder {
            draft: Config {
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
            },
            overflow,
        }
    }

    /// The LAN defaults of [`Config::builder`], built: shorthand for
    /// `Config::builder(id, members).build()`.
    pub fn new(id: NodeId, members: &[NodeId]) -> Result<Self, ConfigError> {
        Self::builder(id, members).build()
    }

    /// A builder holding this configuration, to derive a variant from it.
    pub fn to_builder(&self) -> ConfigBuilder<N> {
        ConfigBuilder {
            draft: self.clone(),
            overflow: false,
        }
    }

    /// This node.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// Every node of the cluster, this one included. Majority quorums.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }

    /// How often an idle leader sends heartbeats.
    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat_interval
    }

    /// The election timeout (before its random extra).
    pub fn election_timeout(&self) -> Duration {
        self.election_timeout
    }

    /// How long the leader waits for votes before resending an append.
    pub fn retransmit_timeout(&self) -> Duration {
        self.retransmit_timeout
    }

    /// The leader lease, if any.
    pub fn lease(&self) -> Option<LeaseConfig> {
        self.lease
    }

    /// The node that leads round 0 on a fresh start, if any.
    pub fn initial_leader(&self) -> Option<NodeId> {
        self.initial_leader
    }

    /// The seed of the election-timeout jitter.
    pub fn seed(&self) -> u64 {
        self.seed
    }

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
#[non_exhaustive]
pub struct LeaseConfig {
    /// The lease length; must be shorter than the election timeout.
    pub duration: Duration,
    /// The largest clock-rate error of any node, in parts per million.
    pub max_drift_ppm: u32,
}

impl LeaseConfig {
    /// A lease of `duration`, for clocks whose rates err by at most
    /// `max_drift_ppm` parts per million.
    pub const fn new(duration: Duration, max_drift_ppm: u32) -> Self {
        LeaseConfig {
            duration,
            max_drift_ppm,
        }
    }

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
    /// Checks every rule: [`ConfigBuilder::build`] and
    /// [`super::Replica::new`] call it.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
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
        let base = || Config::<8>::builder(NodeId(0), &ids(3));
        assert_eq!(
            base().heartbeat_interval(Duration::from_millis(300)).build(),
            Err(ConfigError::BadTimeouts)
        );
        // Each timeout alone may not be zero.
        let zeroed: [fn(ConfigBuilder<8>) -> ConfigBuilder<8>; 3] = [
            |b| b.heartbeat_interval(Duration::ZERO),
            |b| b.election_timeout(Duration::ZERO),
            |b| b.retransmit_timeout(Duration::ZERO),
        ];
        for (i, zero) in zeroed.iter().enumerate() {
            assert_eq!(zero(base()).build(), Err(ConfigError::BadTimeouts), "timeout {i}");
        }
        // 64 members is the most a vote mask holds, and allowed.
        let all: heapless::Vec<NodeId, 64> = (0..64).map(NodeId).collect();
        assert_eq!(Config::<64>::new(NodeId(63), &all).unwrap().quorum(), 33);
        assert_eq!(
            base().initial_leader(NodeId(5)).build(),
            Err(ConfigError::UnknownInitialLeader(NodeId(5)))
        );
        let lease = |ms, ppm| base().lease(LeaseConfig::new(Duration::from_millis(ms), ppm)).build();
        assert_eq!(lease(300, 100), Err(ConfigError::BadLease));
        assert_eq!(lease(100, 500_000), Err(ConfigError::BadLease));
        let c = lease(100, 1_000).unwrap();
        assert_eq!(c.lease().unwrap().safe_duration(), Duration::from_micros(99_800));
    }

    #[test]
    fn the_builder_sets_what_it_is_told_and_keeps_the_rest() {
        let c = Config::<8>::builder(NodeId(1), &ids(3))
            .heartbeat_interval(Duration::from_millis(20))
            .election_timeout(Duration::from_millis(200))
            .retransmit_timeout(Duration::from_millis(40))
            .initial_leader(NodeId(2))
            .seed(7)
            .build()
            .unwrap();
        assert_eq!(c.id(), NodeId(1));
        assert_eq!(c.members(), &ids(3)[..]);
        assert_eq!(c.heartbeat_interval(), Duration::from_millis(20));
        assert_eq!(c.election_timeout(), Duration::from_millis(200));
        assert_eq!(c.retransmit_timeout(), Duration::from_millis(40));
        assert_eq!(c.initial_leader(), Some(NodeId(2)));
        assert_eq!(c.seed(), 7);
        assert_eq!(c.lease(), None);
        // A variant derived from it changes one thing only.
        let d = c.to_builder().initial_leader(None).build().unwrap();
        assert_eq!(d.initial_leader(), None);
        assert_eq!(d.to_builder().initial_leader(NodeId(2)).build(), Ok(c));
    }
}
