//! What happened in a run, and in many runs together.

use super::invariants::{RuleCounts, RULES};
use super::network::NetStats;
use core::fmt;

/// Counts of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Cluster size.
    pub nodes: u64,
    /// Steps taken (inputs handed to a replica or a fault).
    pub steps: u64,
    /// Virtual time at the end, in microseconds.
    pub virtual_us: u64,
    /// `LeadershipAcquired` events.
    pub leader_changes: u64,
    /// Crashes.
    pub crashes: u64,
    /// Restarts through `Replica::recover`.
    pub restarts: u64,
    /// Unsynced batches lost at crashes.
    pub lost_batches: u64,
    /// Unsynced batches that survived a crash anyway.
    pub flushed_batches: u64,
    /// Torn batches dropped at recovery.
    pub torn_batches: u64,
    /// Partitions (symmetric or one-way) started.
    pub partitions: u64,
    /// Slots known decided at the end.
    pub decisions: u64,
    /// `Decided` events delivered to applications.
    pub delivered: u64,
    /// Proposals `propose` accepted.
    pub proposals: u64,
    /// Proposals refused with `NotLeader` or `Busy`.
    pub refused: u64,
    /// `Displaced` outcomes.
    pub displaced: u64,
    /// Proposals lost with a crashed node.
    pub lost_proposals: u64,
    /// Proposals abandoned without an outcome (waived violations).
    pub abandoned: u64,
    /// Outcomes of abandoned proposals that came after all.
    pub late_outcomes: u64,
    /// Client values decided.
    pub completed: u64,
    /// Snapshots installed.
    pub snapshots: u64,
    /// Snapshots offered to a node while it led.
    pub leader_snapshots: u64,
    /// Catch-up answers delivered to a node while it led.
    pub leader_learns: u64,
    /// Of those, the ones that moved its decided watermark.
    pub leader_learned: u64,
    /// Storage wipes (a node restarted with an empty disk).
    pub wipes: u64,
    /// Leaderships acquired while another node still led.
    pub concurrent_leaders: u64,
    /// Split-brain nemeses (bridge crashes between two sides).
    pub split_brains: u64,
    /// Nodes whose driver writes a batch only while no sync is in flight.
    pub lazy_nodes: u64,
    /// Restarts tried from a running node's durable records.
    pub recovery_probes: u64,
    /// Reads a leader answered under its lease (checked for
    /// linearizability with the asks).
    pub lease_reads: u64,
    /// Runs with a leader lease.
    pub lease_runs: u64,
    /// Syncs completed.
    pub syncs: u64,
    /// Runs under a deep pipeline ([`super::options::DeepLoad`]).
    pub deep_runs: u64,
    /// The most batches a leader had written and not yet durable at once
    /// (in a summary's total: the most of any run).
    pub leader_backlog: u64,
    /// Inputs the replicas dropped as busy.
    pub busy: u64,
    /// Leaderships taken with a ballot an earlier leadership used.
    pub reused_ballots: u64,
    /// Node steps held to the specification ([`crate::refinement`]).
    pub refined_steps: u64,
    /// From healing to every client done and every node caught up, in
    /// virtual microseconds.
    pub liveness_us: u64,
    /// From healing to one leader followed by every running node, in
    /// virtual microseconds.
    pub rejoin_us: u64,
    /// Messages.
    pub net: NetStats,
    /// Violations of waived rules (see [`super::Options::waive`]), by
    /// position in [`super::invariants::RULES`].
    pub waived: RuleCounts,
    /// A hash of the decided log and every client's history: equal runs
    /// have equal digests.
    pub digest: u64,
}

/// The entries a leader keeps for its own votes until their records are
/// durable (`paxos-core`'s queue bound): a run whose leader had more
/// batches than that written and not durable exercised a full queue.
pub const SELF_VOTE_ENTRIES: u64 = 16;

/// Totals over many runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Runs.
    pub seeds: u64,
    /// Runs with 3 nodes.
    pub three_node_runs: u64,
    /// Runs with 5 nodes.
    pub five_node_runs: u64,
    /// Runs with 1 node.
    pub one_node_runs: u64,
    /// Runs in which a leader had more batches written and not yet
    /// durable than it keeps self-vote entries
    /// ([`SELF_VOTE_ENTRIES`]).
    pub backlogged_runs: u64,
    /// Sums of every counter (`liveness_us` summed too).
    pub total: Stats,
    /// The longest time to recover liveness.
    pub max_liveness_us: u64,
    /// Runs in which no waived rule was broken.
    pub clean_runs: u64,
    /// The sum of their liveness times.
    pub clean_liveness_us: u64,
    /// The longest of them.
    pub max_clean_liveness_us: u64,
    /// The longest time from healing until every running node followed
    /// one leader.
    pub max_rejoin_us: u64,
    /// The most steps of one run.
    pub max_steps: u64,
}

impl Summary {
    /// Adds one run.
    pub fn add(&mut self, s: &Stats) {
        self.seeds += 1;
        match s.nodes {
            1 => self.one_node_runs += 1,
            3 => self.three_node_runs += 1,
            _ => self.five_node_runs += 1,
        }
        if s.leader_backlog > SELF_VOTE_ENTRIES {
            self.backlogged_runs += 1;
        }
        self.max_liveness_us = self.max_liveness_us.max(s.liveness_us);
        self.max_rejoin_us = self.max_rejoin_us.max(s.rejoin_us);
        if s.waived.iter().all(|n| *n == 0) {
            self.clean_runs += 1;
            self.clean_liveness_us += s.liveness_us;
            self.max_clean_liveness_us = self.max_clean_liveness_us.max(s.liveness_us);
        }
        self.max_steps = self.max_steps.max(s.steps);
        let t = &mut self.total;
        t.nodes += s.nodes;
        t.steps += s.steps;
        t.virtual_us += s.virtual_us;
        t.leader_changes += s.leader_changes;
        t.crashes += s.crashes;
        t.restarts += s.restarts;
        t.lost_batches += s.lost_batches;
        t.flushed_batches += s.flushed_batches;
        t.torn_batches += s.torn_batches;
        t.partitions += s.partitions;
        t.decisions += s.decisions;
        t.delivered += s.delivered;
        t.proposals += s.proposals;
        t.refused += s.refused;
        t.displaced += s.displaced;
        t.lost_proposals += s.lost_proposals;
        t.abandoned += s.abandoned;
        t.late_outcomes += s.late_outcomes;
        t.completed += s.completed;
        t.snapshots += s.snapshots;
        t.leader_snapshots += s.leader_snapshots;
        t.leader_learns += s.leader_learns;
        t.leader_learned += s.leader_learned;
        t.wipes += s.wipes;
        t.concurrent_leaders += s.concurrent_leaders;
        t.split_brains += s.split_brains;
        t.lazy_nodes += s.lazy_nodes;
        t.recovery_probes += s.recovery_probes;
        t.lease_reads += s.lease_reads;
        t.lease_runs += s.lease_runs;
        t.syncs += s.syncs;
        t.deep_runs += s.deep_runs;
        t.leader_backlog = t.leader_backlog.max(s.leader_backlog);
        t.busy += s.busy;
        t.reused_ballots += s.reused_ballots;
        t.refined_steps += s.refined_steps;
        for (sum, n) in t.waived.iter_mut().zip(s.waived.0) {
            *sum += n;
        }
        t.liveness_us += s.liveness_us;
        t.net.sent += s.net.sent;
        t.net.delivered += s.net.delivered;
        t.net.lost += s.net.lost;
        t.net.duplicated += s.net.duplicated;
        t.net.held += s.net.held;
        t.net.cut += s.net.cut;
    }

    /// Merges another summary.
    pub fn merge(&mut self, other: &Summary) {
        let mut merged = *self;
        merged.add(&other.total);
        merged.seeds = self.seeds + other.seeds;
        merged.three_node_runs = self.three_node_runs + other.three_node_runs;
        merged.five_node_runs = self.five_node_runs + other.five_node_runs;
        merged.one_node_runs = self.one_node_runs + other.one_node_runs;
        merged.backlogged_runs = self.backlogged_runs + other.backlogged_runs;
        merged.max_liveness_us = self.max_liveness_us.max(other.max_liveness_us);
        merged.max_steps = self.max_steps.max(other.max_steps);
        merged.clean_runs = self.clean_runs + other.clean_runs;
        merged.clean_liveness_us = self.clean_liveness_us + other.clean_liveness_us;
        merged.max_clean_liveness_us = self.max_clean_liveness_us.max(other.max_clean_liveness_us);
        merged.max_rejoin_us = self.max_rejoin_us.max(other.max_rejoin_us);
        *self = merged;
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.total;
        let n = self.seeds.max(1);
        write!(
            f,
            "{} seeds ({} with 1 node, {} with 3 nodes, {} with 5): {} steps ({} per seed on average, at most {}), \
             {:.1} s virtual; {} leader changes, {} crashes ({} unsynced batches lost, {} flushed, {} torn), \
             {} partitions, {} slots decided, {} deliveries, {} values completed, {} proposals accepted, \
             {} refused, {} displaced, {} lost with a crash, {} abandoned ({} outcomes came late), {} snapshots ({} offered to a leader), {} catch-up answers delivered to a leader ({} moved its watermark), {} syncs, {} busy drops, \
             {} deep-pipeline runs ({} with a leader holding more than {} batches written and not durable, at most {}), \
             {} runs with a lease and drifting clocks, {} lease reads, \
             {} reused ballots, {} leaderships while another node led ({} split-brain nemeses), {} storage wipes, {} lazy-persist nodes, \
             {} recovery probes, {} steps held to the spec; messages: {} sent, {} lost, {} duplicated ({} held back for long), {} cut; \
             liveness after healing: mean {:.0} ms, max {:.0} ms ({} runs without waived violations: \
             mean {:.0} ms, max {:.0} ms); every node following one leader after healing: max {:.0} ms",
            self.seeds,
            self.one_node_runs,
            self.three_node_runs,
            self.five_node_runs,
            t.steps,
            t.steps / n,
            self.max_steps,
            t.virtual_us as f64 / 1e6,
            t.leader_changes,
            t.crashes,
            t.lost_batches,
            t.flushed_batches,
            t.torn_batches,
            t.partitions,
            t.decisions,
            t.delivered,
            t.completed,
            t.proposals,
            t.refused,
            t.displaced,
            t.lost_proposals,
            t.abandoned,
            t.late_outcomes,
            t.snapshots,
            t.leader_snapshots,
            t.leader_learns,
            t.leader_learned,
            t.syncs,
            t.busy,
            t.deep_runs,
            self.backlogged_runs,
            SELF_VOTE_ENTRIES,
            t.leader_backlog,
            t.lease_runs,
            t.lease_reads,
            t.reused_ballots,
            t.concurrent_leaders,
            t.split_brains,
            t.wipes,
            t.lazy_nodes,
            t.recovery_probes,
            t.refined_steps,
            t.net.sent,
            t.net.lost,
            t.net.duplicated,
            t.net.held,
            t.net.cut,
            t.liveness_us as f64 / n as f64 / 1e3,
            self.max_liveness_us as f64 / 1e3,
            self.clean_runs,
            self.clean_liveness_us as f64 / self.clean_runs.max(1) as f64 / 1e3,
            self.max_clean_liveness_us as f64 / 1e3,
            self.max_rejoin_us as f64 / 1e3,
        )?;
        for (rule, n) in RULES.iter().zip(t.waived.0) {
            if n > 0 {
                write!(f, "; waived {rule:?}: {n}")?;
            }
        }
        Ok(())
    }
}
