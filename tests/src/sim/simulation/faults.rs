//! Faults: crashes, storage wipes, restarts from durable records,
//! partitions (with a bridge: two leaders at once), stale snapshots,
//! weather.

use super::*;

impl<const W: usize> Simulation<W> {
    pub(super) fn crash(&mut self, i: usize) -> Result<(), Violation> {
        let downtime = us(&mut self.rng, 1_000, 2_000_000);
        self.crash_for(i, downtime)
    }

    /// Crashes node `i` and restarts it after `downtime`.
    pub(super) fn crash_for(&mut self, i: usize, downtime: Duration) -> Result<(), Violation> {
        if !self.nodes[i].is_up() {
            return Ok(());
        }
        self.trace(|| format!("n{i} CRASHES"));
        let node = &mut self.nodes[i];
        node.replica = None;
        node.incarnation += 1;
        node.sync_due = None;
        node.forget_sync();
        let damage = match node.disk.crash(&mut self.rng, self.scenario.partial_flush_ppm) {
            Ok(damage) => damage,
            Err(e) => {
                self.checker.report(RESTART, format!("n{i}: {e}"))?;
                Default::default()
            }
        };
        if self.options.sabotage == Sabotage::LoseSyncedTail {
            if let Err(e) = self.nodes[i].disk.lose_synced_tail() {
                self.checker.report(RESTART, format!("n{i}: {e}"))?;
            }
        }
        if let Some(refinement) = self.refinement.as_mut() {
            refinement.crash(i, &self.nodes[i])?;
        }
        self.stats.crashes += 1;
        self.stats.lost_batches += damage.lost;
        self.stats.flushed_batches += damage.flushed;
        self.stats.torn_batches += damage.torn;
        self.checker.on_not_leading(i);
        self.proposals.retain(|k, _| k.0 != i);
        for c in 0..self.clients.len() {
            if let ClientState::Waiting { node, .. } = self.clients[c].state {
                if node == i {
                    self.stats.lost_proposals += 1;
                    let seq = self.clients[c].seq;
                    self.clients[c].record(self.now, ClientOp::Lost { seq });
                    self.clients[c].state = ClientState::Ready;
                    self.clients[c].target = self.rng.index(self.nodes.len());
                    let delay = us(&mut self.rng, 10_000, 50_000);
                    self.wake_client(c, delay);
                }
            }
        }
        self.schedule(downtime, Action::Restart { node: i });
        Ok(())
    }

    /// Node `i`'s storage is lost: it crashes, and its disk and its
    /// application's durable state are gone. It restarts through `recover`
    /// with no records. Counted against the nodes that may be down after
    /// healing: once fixed, such a node only learns.
    pub(super) fn wipe(&mut self, i: usize) -> Result<(), Violation> {
        if self.nodes[i].is_up() {
            self.crash(i)?;
        }
        self.trace(|| format!("n{i} STORAGE WIPED"));
        let node = &mut self.nodes[i];
        node.disk.wipe();
        node.app = Default::default();
        self.checker.on_wiped(i);
        self.stats.wipes += 1;
        Ok(())
    }

    /// How many nodes lost their storage.
    pub(super) fn wiped_nodes(&self) -> usize {
        (0..self.nodes.len()).filter(|&i| self.checker.wiped(i)).count()
    }

    /// Restarts node `i` from its durable records, as `restart` would,
    /// without touching it: a refusal breaks a rule.
    pub(super) fn probe_recovery(&mut self, i: usize) -> Result<(), Violation> {
        let node = &self.nodes[i];
        if !node.disk.ever_synced {
            return Ok(());
        }
        self.stats.recovery_probes += 1;
        let now = self.local(i);
        let result = SimReplica::<W>::recover(node.config.clone(), now, node.disk.synced.iter().map(Vec::as_slice), 0);
        match result {
            Ok(_) => Ok(()),
            Err(e) => self.checker.report(
                RESTART,
                format!(
                    "n{i} (up: {}) could not restart from its {} durable batches: {e}",
                    node.is_up(),
                    node.disk.synced.len()
                ),
            ),
        }
    }

    pub(super) fn restart(&mut self, i: usize) -> Result<(), Violation> {
        if self.nodes[i].is_up() || self.nodes[i].stay_down {
            return Ok(());
        }
        let now = self.local(i);
        let config = self.nodes[i].config.clone();
        // The driver's first-boot rule: a node whose storage never held a
        // durable batch since the cluster's first boot (nothing it did was
        // revealed), and whose application applied nothing, is created
        // anew; any other goes through `recover`, with no records at all
        // if its storage was wiped.
        let first_boot = !self.nodes[i].disk.ever_synced;
        let applied = match self.options.app {
            AppDurability::OnApply => self.nodes[i].app.applied(),
            AppDurability::Checkpoint if first_boot => {
                self.nodes[i].app.roll_back_to(0);
                0
            }
            AppDurability::Checkpoint => {
                let node = &self.nodes[i];
                let probe = match SimReplica::<W>::recover(
                    config.clone(),
                    now,
                    node.disk.synced.iter().map(Vec::as_slice),
                    // Nothing applied: the watermark is the records' own.
                    0,
                ) {
                    Ok(probe) => probe,
                    Err(e) => return self.unrecoverable(i, e),
                };
                let hi = probe.decided();
                // The application's checkpoint is at least where its last
                // durable snapshot put it.
                let lo = node.disk.view.snapshot.min(hi);
                if node.app.applied() < hi {
                    return Err(Violation::new(
                        "simulator model",
                        format!(
                            "n{i}'s application applied {} but its records say {hi} decided",
                            node.app.applied()
                        ),
                    ));
                }
                let applied = match self.rng.below(5) {
                    0 | 1 => hi,
                    2 => lo,
                    _ => self.rng.between(lo, hi),
                };
                self.nodes[i].app.roll_back_to(applied);
                applied
            }
        };
        let mut replayed = Vec::new();
        let replica = if first_boot && applied == 0 {
            SimReplica::<W>::new(config, now).map_err(|e| Violation::new("setup", format!("new: {e}")))?
        } else {
            if self.nodes[i].disk.synced.is_empty() && !self.checker.wiped(i) {
                // An application durable on apply that outran the first
                // durable batch: no records, but not a first boot either.
                // The node comes back as a learner, as a wiped one would.
                self.checker.on_wiped(i);
            }
            let node = &mut self.nodes[i];
            match SimReplica::<W>::recover_with(
                config,
                now,
                node.disk.synced.iter().map(Vec::as_slice),
                applied,
                |slot, value| replayed.push((slot, value.cloned())),
            ) {
                Ok(replica) => replica,
                Err(e) => return self.unrecoverable(i, e),
            }
        };
        self.trace(|| {
            format!(
                "n{i} RESTARTS: promised {:?}, decided {}, applied {applied}, {} delivered during replay",
                replica.promised(),
                replica.decided(),
                replayed.len()
            )
        });
        for (slot, value) in replayed {
            let expected = self.nodes[i].app.applied();
            self.checker.on_delivered(i, expected, slot, &value)?;
            self.nodes[i].app.apply(value);
            self.stats.delivered += 1;
        }
        self.checker
            .after_recover(i, &replica, applied, self.nodes[i].app.applied())?;
        self.nodes[i].replica = Some(replica);
        self.stats.restarts += 1;
        self.note(|| Input::Restart { applied });
        self.after_input(i)
    }

    /// Node `i`'s records were refused: a violation, or (waived) the node
    /// stays down.
    fn unrecoverable(&mut self, i: usize, e: paxos_core::replica::RecoverError) -> Result<(), Violation> {
        let detail = format!(
            "n{i} could not restart from its {} durable batches (wiped: {}): {e}",
            self.nodes[i].disk.synced.len(),
            self.checker.wiped(i)
        );
        self.checker.report(RESTART, detail)?;
        self.nodes[i].stay_down = true;
        Ok(())
    }

    /// The split-brain nemesis: the others split into two sides that both
    /// reach a bridge node — the leader, if there is one — and the bridge
    /// crashes. Without it neither side is a quorum: both campaign in vain
    /// (and catch up from it when it is back), and when the bridge
    /// restarts, free to promise anyone, a candidate of each side may win
    /// with it, one after the other, each leading its side for a while.
    pub(super) fn split_brain(&mut self) -> Result<(), Violation> {
        let n = self.nodes.len();
        let bridge = self.leader().unwrap_or_else(|| self.rng.index(n));
        let mut others: Vec<usize> = (0..n).filter(|&j| j != bridge).collect();
        for k in (1..others.len()).rev() {
            let j = self.rng.index(k + 1);
            others.swap(k, j);
        }
        // Half the others on each side: each side with the bridge is a
        // quorum.
        let mut side = vec![false; n];
        for &j in others.iter().take((n - 1) / 2) {
            side[j] = true;
        }
        let lag = self.rng.between(2_000, 50_000);
        self.trace(|| format!("SPLIT BRAIN: PARTITION {side:?} bridged by n{bridge} (lag {lag} us), which crashes"));
        self.network.partition_with_bridge(&side, bridge);
        self.network.lag_us[bridge] = lag;
        self.stats.partitions += 1;
        self.stats.split_brains += 1;
        let e = self.scenario.election.as_micros();
        let downtime = us(&mut self.rng, e, 3 * e);
        self.crash_for(bridge, downtime)?;
        let generation = self.network.generation;
        let heal = downtime + us(&mut self.rng, 2 * e, 8 * e);
        self.schedule(heal, Action::Heal { generation });
        self.nemesis_until = self.now + heal;
        Ok(())
    }

    /// A snapshot offered to node `to` by the node furthest ahead of it
    /// that it can hear.
    pub(super) fn offer_snapshot(&mut self, to: usize) {
        let applied = self.nodes[to].app.applied();
        let source = (0..self.nodes.len())
            .filter(|&j| j != to && self.nodes[j].is_up() && self.network.link_up(j, to))
            .filter(|&j| self.nodes[j].app.applied() > applied)
            .max_by_key(|&j| self.nodes[j].app.applied());
        if let Some(j) = source {
            self.trace(|| format!("n{j} OFFERS a snapshot to n{to}"));
            self.send_snapshot(j, to);
        }
    }

    pub(super) fn leader(&self) -> Option<usize> {
        self.nodes
            .iter()
            .find(|n| n.replica.as_ref().is_some_and(|r| r.is_leader()))
            .map(|n| n.index)
    }

    pub(super) fn random_up(&mut self) -> Option<usize> {
        let up: Vec<usize> = self.nodes.iter().filter(|n| n.is_up()).map(|n| n.index).collect();
        (!up.is_empty()).then(|| up[self.rng.index(up.len())])
    }

    pub(super) fn schedule_heal(&mut self) {
        let generation = self.network.generation;
        let after = us(&mut self.rng, 50_000, 3_000_000);
        self.schedule(after, Action::Heal { generation });
    }

    pub(super) fn inject_fault(&mut self) -> Result<(), Violation> {
        let n = self.nodes.len();
        if let Some(i) = self.random_up() {
            self.probe_recovery(i)?;
        }
        let fault = self.rng.below(20);
        if n == 1 && matches!(fault, 5..=9 | 13 | 15..=18) {
            // A node alone has no links to cut, no sides and no bridge:
            // its faults are crashes (and the weather, which nothing
            // crosses).
            return Ok(());
        }
        match fault {
            0..=2 => {
                if let Some(i) = self.random_up() {
                    self.crash(i)?;
                }
            }
            3 | 4 => {
                if let Some(i) = self.leader().or_else(|| self.random_up()) {
                    self.crash(i)?;
                }
            }
            5 | 6 => {
                let mut side: Vec<bool> = (0..n).map(|_| self.rng.ratio(1, 2)).collect();
                if side.iter().all(|s| *s) || side.iter().all(|s| !*s) {
                    side[self.rng.index(n)] ^= true;
                }
                self.trace(|| format!("PARTITION {side:?}"));
                self.network.partition(&side);
                self.stats.partitions += 1;
                self.schedule_heal();
            }
            7 => {
                let i = self.leader().unwrap_or_else(|| self.rng.index(n));
                let side: Vec<bool> = (0..n).map(|j| j == i).collect();
                self.trace(|| format!("ISOLATE n{i}"));
                self.network.partition(&side);
                self.stats.partitions += 1;
                self.schedule_heal();
            }
            8 => {
                let i = self.leader().unwrap_or_else(|| self.rng.index(n));
                let outgoing = self.rng.ratio(1, 2);
                self.trace(|| format!("ISOLATE n{i} one way (outgoing: {outgoing})"));
                self.network.isolate_one_way(i, outgoing);
                self.stats.partitions += 1;
                self.schedule_heal();
            }
            9 => {
                for _ in 0..self.rng.between(1, 3) {
                    let a = self.rng.index(n);
                    let b = (a + 1 + self.rng.index(n - 1)) % n;
                    self.trace(|| format!("CUT n{a} -> n{b}"));
                    self.network.cut_one_way(a, b);
                }
                self.stats.partitions += 1;
                self.schedule_heal();
            }
            10 => {
                self.trace(|| "HEAL".into());
                self.network.heal();
            }
            12 if self.options.widened(Widening::Wipes) => {
                // Storage loss, within the budget of nodes that may be
                // down after healing.
                let i = if self.rng.ratio(1, 2) {
                    self.leader().unwrap_or_else(|| self.rng.index(n))
                } else {
                    self.rng.index(n)
                };
                if self.checker.wiped(i) || self.wiped_nodes() < (n - 1) / 2 {
                    self.wipe(i)?;
                }
            }
            13 if self.options.widened(Widening::SplitBrain) => {
                // Two sides that both reach a bridge node: each side with
                // the bridge can be a quorum. The bridge is slow (its
                // promises and the first appends of a winner take long to
                // arrive), so that a candidate of each side may win.
                let mut side: Vec<bool> = (0..n).map(|_| self.rng.ratio(1, 2)).collect();
                let bridge = self.rng.index(n);
                if (0..n)
                    .filter(|&j| j != bridge)
                    .all(|j| side[j] == side[(bridge + 1) % n])
                {
                    let j = (bridge + 1) % n;
                    side[j] ^= true;
                }
                let lag = if self.rng.ratio(1, 2) {
                    self.rng.between(5_000, 150_000)
                } else {
                    0
                };
                self.trace(|| format!("PARTITION {side:?} bridged by n{bridge} (lag {lag} us)"));
                self.network.partition_with_bridge(&side, bridge);
                self.network.lag_us[bridge] = lag;
                self.stats.partitions += 1;
                self.schedule_heal();
            }
            14 if self.options.widened(Widening::SnapshotOffers) => {
                // The application of the node furthest ahead sends its
                // state to another (a leader, the one furthest behind, in
                // half the cases): a snapshot may arrive at a node that
                // started leading since it fell behind.
                let behind_leader = (0..n)
                    .filter(|&j| self.nodes[j].replica.as_ref().is_some_and(|r| r.is_leader()))
                    .min_by_key(|&j| self.nodes[j].app.applied());
                let target = match behind_leader {
                    Some(l) if self.rng.ratio(1, 2) => l,
                    _ => self.rng.index(n),
                };
                self.offer_snapshot(target);
            }
            15 if self.options.widened(Widening::SplitBrain) => {
                // Cut the leader off from all but one follower: a deposed
                // leader that still hears someone.
                if let Some(l) = self.leader() {
                    let keep = (l + 1 + self.rng.index(n - 1)) % n;
                    let side: Vec<bool> = (0..n).map(|j| j == l || j == keep).collect();
                    self.trace(|| format!("ISOLATE n{l} with n{keep}"));
                    self.network.partition(&side);
                    self.stats.partitions += 1;
                    self.schedule_heal();
                }
            }
            16..=18 if self.options.widened(Widening::SplitBrain) => self.split_brain()?,
            12..=18 => {}
            _ => {
                self.network.weather = Weather::draw(&mut self.rng);
                if !self.options.widened(Widening::LongHolds) {
                    self.network.weather.side_dup_ppm = 0;
                    self.network.weather.hold_ppm = 0;
                }
                let w = self.network.weather;
                self.trace(|| format!("WEATHER {w:?}"));
            }
        }
        Ok(())
    }
}
