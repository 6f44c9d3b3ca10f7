//! Clients and their proposals: proposing, outcomes, giving up.

use super::*;

impl<const W: usize> Simulation<W> {
    pub(super) fn mark_pending(&mut self, node: usize, mark: impl Fn(&mut PendingProposal)) {
        for (key, pending) in self.proposals.iter_mut() {
            if key.0 == node {
                mark(pending);
            }
        }
    }

    pub(super) fn client_decided(&mut self, c: usize, slot: Slot, node: usize) {
        self.stats.completed += 1;
        let value = self.clients[c].value();
        if let Some(winner) = key_of(&value).and_then(|k| self.nodes[node].app.winners.get(k)) {
            let winner = winner.clone();
            self.registers.answer(&value, self.now, winner);
        }
        let finishing = self.clients[c].finishing;
        let client = &mut self.clients[c];
        let seq = client.seq;
        client.record(self.now, ClientOp::Decided { seq, slot });
        client.seq += 1;
        if finishing {
            client.state = ClientState::Done;
        } else {
            client.state = ClientState::Ready;
            let delay = us(&mut self.rng, 0, self.scenario.think_us);
            self.wake_client(c, delay);
        }
    }

    pub(super) fn client_propose(&mut self, c: usize) -> Result<(), Violation> {
        let target = self.clients[c].target;
        let value = self.clients[c].value();
        let seq = self.clients[c].seq;
        let now = self.now;
        let local = self.local(target);
        if self.scenario.lease.is_some() && self.rng.ratio(1, 3) {
            // The client's own key or the next: fresh keys, where a stale
            // answer would show.
            let key = seq / 2 + self.rng.below(2) as u32;
            self.lease_read(target, key);
        }
        self.registers.invoke(&value, now);
        let node = &mut self.nodes[target];
        let incarnation = node.incarnation;
        let Some(r) = node.replica.as_mut() else {
            self.clients[c].record(now, ClientOp::Refused { node: target });
            self.clients[c].target = self.rng.index(self.nodes.len());
            let delay = us(&mut self.rng, 5_000, 30_000);
            self.wake_client(c, delay);
            return Ok(());
        };
        let value_for_refinement = value.clone();
        let result = r.propose(local, value.clone());
        self.checker.on_propose(&value, result.is_ok());
        self.trace(|| format!("client {c} proposes {value:?} at n{target}: {result:?}"));
        self.clients[c].record(
            now,
            ClientOp::Proposed {
                seq,
                node: target,
                result: format!("{result:?}"),
            },
        );
        match result {
            Ok(pid) => {
                self.stats.proposals += 1;
                if self
                    .proposals
                    .insert(
                        (target, incarnation, pid),
                        PendingProposal {
                            client: Some(c),
                            value,
                            stepped_down: false,
                            snapshot: false,
                        },
                    )
                    .is_some()
                {
                    return Err(Violation::new(
                        "proposal ids are unique",
                        format!("n{target} reused {pid:?}"),
                    ));
                }
                self.clients[c].state = ClientState::Waiting {
                    node: target,
                    incarnation,
                    proposal: pid,
                    since: now,
                };
            }
            Err(ProposeError::NotLeader { leader: Some(l) }) => {
                self.stats.refused += 1;
                self.clients[c].target = self.index_of(l)?;
                let delay = us(&mut self.rng, 500, 5_000);
                self.wake_client(c, delay);
            }
            Err(ProposeError::NotLeader { leader: None }) => {
                self.stats.refused += 1;
                self.clients[c].target = self.rng.index(self.nodes.len());
                let delay = us(&mut self.rng, 10_000, 60_000);
                self.wake_client(c, delay);
            }
            Err(_) => {
                self.stats.refused += 1;
                let delay = us(&mut self.rng, 2_000, 30_000);
                self.wake_client(c, delay);
            }
        }
        self.note(|| Input::Propose(value_for_refinement));
        self.after_input(target)
    }

    /// After healing, a proposal pending longer than the outcome bound
    /// breaks "every proposal gets an outcome"; if that rule is waived,
    /// the client gives up on it and retries.
    pub(super) fn check_outcomes(&mut self, healed: Instant) -> Result<(), Violation> {
        for c in 0..self.clients.len() {
            let ClientState::Waiting {
                node,
                incarnation,
                proposal,
                since,
            } = self.clients[c].state
            else {
                continue;
            };
            if self.now <= since.max(healed) + self.options.outcome_bound {
                continue;
            }
            let detail = format!(
                "client {c}'s proposal {proposal:?} at n{node} has had no outcome for {} ms \
                 ({} ms after healing):\n{}",
                (self.now - since).as_millis(),
                (self.now - healed).as_millis(),
                self.describe()
            );
            let key = (node, incarnation, proposal);
            let rule = match self.proposals.get(&key) {
                Some(p) if p.snapshot => "every proposal gets an outcome (dropped by a snapshot)",
                Some(p) if p.stepped_down => "every proposal gets an outcome (after its leader stepped down)",
                _ => "every proposal gets an outcome",
            };
            self.checker.report(rule, detail)?;
            if let Some(pending) = self.proposals.get_mut(&key) {
                pending.client = None;
            }
            self.stats.abandoned += 1;
            let seq = self.clients[c].seq;
            self.clients[c].record(self.now, ClientOp::Abandoned { seq });
            self.clients[c].state = ClientState::Ready;
            self.clients[c].target = self.rng.index(self.nodes.len());
            self.wake_client(c, Duration::from_millis(1));
        }
        Ok(())
    }

    /// A read of a random key at `node`, answered locally if it holds a
    /// lease (the only reads that skip the log, so the ones to check).
    pub(super) fn lease_read(&mut self, node: usize, key: Key) {
        let local = self.local(node);
        let n = &self.nodes[node];
        let any_node = self.options.sabotage == Sabotage::ReadAtAnyNode;
        if n.replica
            .as_ref()
            .is_some_and(|r| any_node || r.can_read_locally(local))
        {
            let value = n.app.winners.get(key).cloned();
            self.trace(|| format!("lease read of key {key} at n{node}: {value:?}"));
            self.registers.read(key, self.now, value);
            self.stats.lease_reads += 1;
        }
    }
}
