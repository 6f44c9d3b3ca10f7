//! Faults: crashes, restarts from durable records, partitions, weather.

use super::*;

impl<const W: usize> Simulation<W> {
    pub(super) fn crash(&mut self, i: usize) -> Result<(), Violation> {
        if !self.nodes[i].is_up() {
            return Ok(());
        }
        self.trace(|| format!("n{i} CRASHES"));
        let node = &mut self.nodes[i];
        node.replica = None;
        node.incarnation += 1;
        let damage = node
            .disk
            .crash(&mut self.rng, self.scenario.partial_flush_ppm)
            .map_err(|e| Violation::new("records decode", format!("n{i}: {e}")))?;
        if self.options.sabotage == Sabotage::LoseSyncedTail {
            node.disk
                .lose_synced_tail()
                .map_err(|e| Violation::new("records decode", format!("n{i}: {e}")))?;
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
        let downtime = us(&mut self.rng, 1_000, 2_000_000);
        self.schedule(downtime, Action::Restart { node: i });
        Ok(())
    }

    pub(super) fn restart(&mut self, i: usize) -> Result<(), Violation> {
        if self.nodes[i].is_up() || self.nodes[i].stay_down {
            return Ok(());
        }
        let now = self.local(i);
        let config = self.nodes[i].config.clone();
        let applied = match self.options.app {
            AppDurability::OnApply => self.nodes[i].app.applied(),
            AppDurability::Checkpoint => {
                let node = &self.nodes[i];
                let probe = SimReplica::<W>::recover(
                    config.clone(),
                    now,
                    node.disk.synced.iter().map(Vec::as_slice),
                    // Nothing applied: the watermark is the records' own.
                    0,
                )
                .map_err(|e| Violation::new("recovery", format!("n{i}: {e}")))?;
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
        let node = &mut self.nodes[i];
        // The driver's first-boot rule: a node whose storage never held a
        // durable batch boots as new (nothing it did was revealed); one
        // with records recovers from them.
        let replica = if node.disk.synced.is_empty() && applied == 0 {
            SimReplica::<W>::new(config, now).map_err(|e| Violation::new("recovery", format!("n{i}: {e}")))?
        } else {
            SimReplica::<W>::recover_with(
                config,
                now,
                node.disk.synced.iter().map(Vec::as_slice),
                applied,
                |slot, value| replayed.push((slot, value.cloned())),
            )
            .map_err(|e| Violation::new("recovery", format!("n{i}: {e}")))?
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
        match self.rng.below(12) {
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
            _ => {
                self.network.weather = Weather::draw(&mut self.rng);
                let w = self.network.weather;
                self.trace(|| format!("WEATHER {w:?}"));
            }
        }
        Ok(())
    }
}
