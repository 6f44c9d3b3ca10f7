//! Healing: faults stop, and the cluster must finish its work.

use super::*;

impl<const W: usize> Simulation<W> {
    /// Faults stop: the network heals and calms, crashed nodes restart
    /// (but perhaps a minority), clients finish their current value.
    pub(super) fn calm(&mut self) -> Result<(), Violation> {
        self.trace(|| "CALM: faults stop".into());
        self.phase = Phase::Calm { since: self.now };
        self.network.heal();
        self.network.weather = Weather::CALM;
        // Nodes that lost their storage only learn once fixed: they count
        // against the minority that may stay down.
        let minority = (self.nodes.len() - 1) / 2 - self.wiped_nodes().min((self.nodes.len() - 1) / 2);
        let mut kept_down = 0;
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_up() {
                continue;
            }
            if self.scenario.calm_minority_down && kept_down < minority && self.rng.ratio(1, 2) {
                self.nodes[i].stay_down = true;
                kept_down += 1;
            } else {
                self.restart(i)?;
            }
        }
        for client in &mut self.clients {
            client.finishing = true;
        }
        Ok(())
    }

    /// Every client done, every running node caught up with every decision.
    pub(super) fn quiet(&self) -> bool {
        if self.clients.iter().any(|c| c.state != ClientState::Done) {
            return false;
        }
        let target = self.checker.max_decided.map_or(0, |s| s + 1);
        self.settling().all(|n| {
            n.replica
                .as_ref()
                .is_some_and(|r| r.decided() >= target && n.app.applied() == r.decided())
        })
    }

    /// One running node leads, and every other running node follows it
    /// with its ballot promised (a node that lost its storage excepted: it
    /// no longer votes, once fixed).
    pub(super) fn rejoined(&self) -> bool {
        let mut leaders = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref().filter(|r| r.is_leader()));
        let (Some(leader), None) = (leaders.next(), leaders.next()) else {
            return false;
        };
        self.settling().all(|n| {
            n.replica
                .as_ref()
                .is_some_and(|r| r.leader() == Some(leader.id()) && r.promised() == leader.promised())
        })
    }

    /// The nodes the calm phase waits for: every node not kept down and
    /// not wiped (a node that lost its storage only learns, once fixed).
    fn settling(&self) -> impl Iterator<Item = &Node<W>> + '_ {
        self.nodes
            .iter()
            .filter(|n| !n.stay_down && !self.checker.wiped(n.index))
    }

    /// The state of every node and client, for a failure report.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "  decided anywhere up to slot {:?}; network partitioned: {}",
            self.checker.max_decided,
            self.network.partitioned()
        );
        for n in &self.nodes {
            match &n.replica {
                None => {
                    let _ = writeln!(s, "  n{} down (stay down: {})", n.index, n.stay_down);
                }
                Some(r) => {
                    let _ = writeln!(
                        s,
                        "  n{}: leader {}, knows leader {:?}, promised {:?}, decided {}, delivered {}, applied {}, log start {}, timeout {:?}, counters {:?}",
                        n.index,
                        r.is_leader(),
                        r.leader(),
                        r.promised(),
                        r.decided(),
                        r.delivered(),
                        n.app.applied(),
                        r.log_start(),
                        r.poll_timeout(),
                        r.counters()
                    );
                }
            }
        }
        // Deep pipelines run dozens of clients: the first few tell enough.
        const SHOWN: usize = 8;
        if self.clients.len() > SHOWN {
            let waiting = self.clients[SHOWN..]
                .iter()
                .filter(|c| matches!(c.state, ClientState::Waiting { .. }))
                .count();
            let _ = writeln!(
                s,
                "  {} clients, {} of the ones not shown waiting for an outcome; the first {SHOWN}:",
                self.clients.len(),
                waiting
            );
        }
        for c in self.clients.iter().take(SHOWN) {
            let recent: Vec<String> = c
                .history
                .iter()
                .rev()
                .take(4)
                .map(|(t, op)| format!("{:.1}ms {op:?}", t.as_micros() as f64 / 1e3))
                .collect();
            let _ = writeln!(
                s,
                "  client {}: seq {}, {:?}, recent {:?}",
                c.id, c.seq, c.state, recent
            );
        }
        s
    }
}
