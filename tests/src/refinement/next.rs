//! The next-state relation, transcribed from `spec/Replica.tla`: what a
//! step may do to a node (`check_start`, `check_next`), what it may send
//! (`check_sends`), and the invariants on the state it leaves
//! (`check_state`).

use super::messages::{Msg, PromisePart, Val};
use super::state::{Cell, NodeState, Role};
use super::{fail, id, rules, Check, Input, PromiseMsg, Refinement};
use crate::sim::node::Output;
use crate::sim::Violation;
use paxos_core::replica::Slot;
use paxos_core::Ballot;
use std::collections::BTreeMap;

/// How a slot became decided.
enum Path {
    LeaderCommit,
    AppendCommit,
    Learn,
    Unknown,
}

/// A short description of a node's abstract state, for reports.
fn show(s: &NodeState) -> String {
    format!(
        "{:?} promised {:?}, start {}, decided {}",
        s.role, s.promised, s.start, s.decided
    )
}

impl Refinement {
    /// A node that was down (or not started) is up: `Init` or `Restart`.
    pub(super) fn check_start(&mut self, i: usize, q: &NodeState, input: &Input) -> Check {
        let track = &mut self.nodes[i];
        track.from = 0;
        track.verified_commit = 0;
        let result = match input {
            Input::Boot => self.check_init(i, q),
            Input::Restart { applied } => self.check_restart(i, q, Some(*applied)),
            _ => self.check_restart(i, q, None),
        };
        let c = &mut self.coverage;
        match input {
            Input::Boot => c.boots += 1,
            _ if q.role == Role::Amnesiac && !self.nodes[i].disk.any_records => c.amnesiac_restarts += 1,
            _ if !self.nodes[i].disk.any_records => c.boots_as_new += 1,
            _ => c.restarts += 1,
        }
        result
    }

    /// `Init` for node `i`: the configured initial leader leads with round
    /// 0 and has promised it; the others follow with nothing promised.
    fn check_init(&self, i: usize, q: &NodeState) -> Check {
        let leads = self.initial_leader == Some(i);
        let (role, promised) = if leads {
            (Role::Leader, Some(Ballot::new(0, id(i))))
        } else {
            (Role::Follower, None)
        };
        if q.role != role || q.promised != promised || q.decided != 0 || q.start != 0 || q.slots().next().is_some() {
            return fail(
                rules::INIT,
                format!(
                    "n{i} boots as {}; expected {role:?} promising {promised:?} with nothing held",
                    show(q)
                ),
            );
        }
        Ok(())
    }

    /// `Restart(n, disk[n], a)`: the volatile state is the replay of the
    /// durable state; from no records, an amnesiac learner.
    fn check_restart(&self, i: usize, q: &NodeState, applied: Option<Slot>) -> Check {
        let track = &self.nodes[i];
        let d = &track.disk;
        if !d.any_records {
            if q.role == Role::Amnesiac {
                let decided = applied.unwrap_or(q.decided);
                if q.promised.is_some() || q.slots().next().is_some() || q.decided != decided {
                    return fail(
                        rules::NO_RECORDS,
                        format!(
                            "n{i} restarted from no records as {}; expected an empty learner at {decided}",
                            show(q)
                        ),
                    );
                }
            } else if applied == Some(0) && d.batches == 0 {
                // The simulator's driver boots a node whose storage never
                // held a durable batch as new: the same as never having
                // run, provided it revealed nothing its records back.
                if track.revealed_durable {
                    return fail(
                        rules::BOOT_AS_NEW,
                        format!(
                            "n{i} restarted without records as {} after revealing promises or votes",
                            show(q)
                        ),
                    );
                }
                return self.check_init(i, q);
            } else {
                return fail(
                    rules::NO_RECORDS,
                    format!("n{i} restarted from no records (applied {applied:?}) as {}", show(q)),
                );
            }
        } else {
            let role = if d.learner { Role::Amnesiac } else { Role::Follower };
            let decided = match applied {
                Some(a) if a > d.dec => a,
                Some(_) => d.dec,
                None => q.decided.max(d.dec),
            };
            let jumped = decided > d.dec;
            if q.role != role || q.promised != d.prom || q.decided != decided || (jumped && q.start != decided) {
                return fail(
                    rules::RESTART,
                    format!(
                        "n{i} restarted as {}; its records say {role:?} promising {:?}, decided {} (applied {applied:?})",
                        show(q),
                        d.prom,
                        d.dec
                    ),
                );
            }
            for s in q.start..q.limit() {
                let durable = if s < d.start { None } else { d.cells.get(&s) };
                if q.cell(s) != durable {
                    return fail(
                        rules::RESTART,
                        format!(
                            "n{i} restarted holding {:?} for slot {s}; its records hold {durable:?}",
                            q.cell(s)
                        ),
                    );
                }
            }
        }
        if q.role != Role::Amnesiac {
            // RevealedVotesDurable: what it revealed, its records keep.
            for (&slot, ballots) in &track.revealed {
                if let Some(b) = ballots.iter().find(|b| !d.keeps_vote(slot, **b)) {
                    return fail(
                        rules::REVEALED_DURABLE,
                        format!(
                            "n{i} restarted as {} without the vote it revealed for slot {slot} under {b:?}",
                            show(q)
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// A step of a running node: `p` before, `q` after.
    pub(super) fn check_next(&mut self, i: usize, p: &NodeState, q: &NodeState, input: &Input) -> Check {
        let me = id(i);
        let unknown = *input == Input::Unknown;
        let sent_by_owner = |b: Ballot| match input {
            Input::Message { from, msg } => {
                id(*from) == b.node
                    && matches!(msg, Msg::Prepare { ballot, .. } | Msg::Append { ballot, .. } if *ballot == b)
            }
            _ => false,
        };

        // Promises.
        if q.promised < p.promised {
            return fail(
                rules::PROMISE_DOWN,
                format!("n{i}'s promise went from {:?} to {:?}", p.promised, q.promised),
            );
        }
        if p.role == Role::Amnesiac && (q.role != Role::Amnesiac || q.promised != p.promised) {
            return fail(rules::AMNESIAC, format!("n{i} was an amnesiac and is now {}", show(q)));
        }
        if q.role == Role::Amnesiac && p.role != Role::Amnesiac {
            return fail(rules::AMNESIAC, format!("n{i} became an amnesiac without a restart"));
        }
        let same_lead = p.role == Role::Leader && q.role == Role::Leader && p.promised == q.promised;
        let same_campaign = p.role == Role::Candidate && p.promised == q.promised;
        let campaigns = q.role.proposes() && !same_lead && !same_campaign;
        if campaigns {
            // Campaign (perhaps won in the same step).
            match q.promised {
                Some(b) if b.node == me && b.round >= 1 && q.promised > p.promised => {}
                _ => {
                    return fail(
                        rules::CAMPAIGN,
                        format!("n{i} campaigns as {}; it promised {:?} before", show(q), p.promised),
                    )
                }
            }
            self.nodes[i].from = p.decided;
            self.nodes[i].verified_commit = 0;
            self.coverage.campaigns += 1;
        } else if q.promised > p.promised {
            let b = q.promised.unwrap_or(Ballot::new(0, me));
            if !unknown && !sent_by_owner(b) {
                return fail(
                    rules::PROMISE_SOURCE,
                    format!("n{i}'s promise rose from {:?} to {b:?} on {input:?}", p.promised),
                );
            }
        }

        // Leadership.
        let wins = q.role == Role::Leader && !same_lead;
        if wins {
            if !(same_campaign || campaigns) {
                return fail(rules::LEAD, format!("n{i} leads as {} after {}", show(q), show(p)));
            }
            self.check_win(i, p, q)?;
            self.coverage.wins += 1;
            let from = self.nodes[i].from;
            if q.slots().any(|(s, c)| s >= from && p.cell(s) != Some(c)) {
                self.coverage.wins_with_values += 1;
            }
        }

        // Cells.
        let propose = match input {
            Input::Propose(v) => Some(v),
            _ => None,
        };
        let mut proposals = 0;
        for s in q.start..q.limit() {
            let (pc, qc) = (p.cell(s), q.cell(s));
            if pc == qc {
                continue;
            }
            if s < p.decided && s >= p.start {
                return fail(
                    rules::DECIDED_CELL,
                    format!(
                        "n{i}'s decided slot {s} went from {pc:?} to {qc:?} (decided {})",
                        p.decided
                    ),
                );
            }
            let Some(c) = qc else {
                return fail(rules::CELL, format!("n{i}'s slot {s} lost {pc:?}"));
            };
            match c.ballot {
                Some(b) => {
                    if p.role == Role::Amnesiac {
                        return fail(rules::AMNESIAC, format!("n{i} voted {c:?} for slot {s}"));
                    }
                    if Some(b) < p.promised {
                        return fail(
                            rules::VOTE_PROMISE,
                            format!("n{i} voted {c:?} for slot {s} having promised {:?}", p.promised),
                        );
                    }
                    if q.role == Role::Leader && q.promised == Some(b) {
                        if wins {
                            // Checked by check_win.
                        } else if propose.is_some_and(|v| c.value.as_ref() == Some(v)) {
                            proposals += 1;
                            self.coverage.proposals += 1;
                            let in_flight = (self.window as u64 / 2).max(1);
                            if s < p.decided || s >= p.decided + in_flight {
                                return fail(
                                    rules::PROPOSE,
                                    format!("n{i} proposed {c:?} at slot {s}; decided {}", p.decided),
                                );
                            }
                            if let Some(v) = &c.value {
                                self.proposed.insert(v.clone());
                            }
                        } else if !unknown {
                            return fail(
                                rules::VOTE_SOURCE,
                                format!("n{i} leads {b:?} and its slot {s} went from {pc:?} to {c:?} on {input:?}"),
                            );
                        }
                    } else {
                        let from_append = match input {
                            Input::Message {
                                from,
                                msg:
                                    Msg::Append {
                                        ballot, first, values, ..
                                    },
                            } => {
                                *ballot == b
                                    && id(*from) == b.node
                                    && s.checked_sub(*first).and_then(|k| values.get(usize::try_from(k).ok()?))
                                        == Some(&c.value)
                            }
                            Input::Unknown => self
                                .votes
                                .get(&(s, b))
                                .is_some_and(|v| v.value.as_ref() == Some(&c.value)),
                            _ => false,
                        };
                        if !from_append {
                            return fail(
                                rules::VOTE_SOURCE,
                                format!("n{i} ({:?}) voted {c:?} for slot {s} on {input:?}", q.role),
                            );
                        }
                        self.coverage.votes += 1;
                    }
                    self.check_valid(i, s, &c.value)?;
                }
                None => {
                    let learned = match input {
                        Input::Message {
                            msg: Msg::Learn { first, values },
                            ..
                        } => s.checked_sub(*first).and_then(|k| values.get(usize::try_from(k).ok()?)) == Some(&c.value),
                        Input::Unknown => true,
                        _ => false,
                    };
                    if !learned || p.role.proposes() {
                        return fail(
                            rules::LEARN,
                            format!("n{i} ({:?}) learned {c:?} for slot {s} on {input:?}", p.role),
                        );
                    }
                }
            }
        }
        if proposals > 1 {
            return fail(
                rules::VOTE_SOURCE,
                format!("n{i} stored {proposals} values for one proposal"),
            );
        }

        // The decided watermark.
        if q.decided < p.decided {
            return fail(
                rules::DECIDED_BACK,
                format!("n{i}'s decided went from {} to {}", p.decided, q.decided),
            );
        }
        if q.start < p.start || q.start > q.decided {
            return fail(
                rules::START,
                format!(
                    "n{i}'s memory went from {}.. to {}.. (decided {})",
                    p.start, q.start, q.decided
                ),
            );
        }
        if q.decided > p.decided {
            // An unnoted input may have been a snapshot too: memory then
            // starts at the new watermark.
            let snapshot = match input {
                Input::Snapshot(k) => *k == q.decided,
                Input::Unknown => q.start == q.decided,
                _ => false,
            };
            if snapshot {
                if q.role.proposes() {
                    return fail(
                        rules::SNAPSHOT,
                        format!("n{i} installed a snapshot to {} and is still {:?}", q.decided, q.role),
                    );
                }
                if q.start != q.decided {
                    return fail(
                        rules::START,
                        format!(
                            "n{i} installed a snapshot to {} but memory starts at {}",
                            q.decided, q.start
                        ),
                    );
                }
                self.coverage.snapshots += 1;
            } else {
                for s in p.decided..q.decided {
                    match self.check_decided_move(i, p, q, s, input)? {
                        Path::LeaderCommit => self.coverage.leader_commits += 1,
                        Path::AppendCommit => self.coverage.append_commits += 1,
                        Path::Learn => self.coverage.learned += 1,
                        Path::Unknown => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// Why slot `s` became decided at node `i` in this step.
    fn check_decided_move(
        &self,
        i: usize,
        p: &NodeState,
        q: &NodeState,
        s: Slot,
        input: &Input,
    ) -> Result<Path, Violation> {
        let Some(c) = q.cell(s) else {
            return fail(
                rules::DECIDED_KNOWN,
                format!("n{i} decided slot {s} without a value (memory {}..)", q.start),
            );
        };
        // LeaderCommit: a quorum voted under the leader's ballot.
        if q.role == Role::Leader && c.ballot.is_some() && c.ballot == q.promised {
            let b = q.promised.unwrap_or(Ballot::new(0, id(i)));
            if self.chosen_at(s, b, i) {
                return Ok(Path::LeaderCommit);
            }
            return Err(Violation::new(
                rules::LEADER_COMMIT,
                format!(
                    "n{i} leads {b:?} and decided slot {s} ({:?}) with votes {}",
                    c.value,
                    self.voters(s, b, i)
                ),
            ));
        }
        let path = match input {
            // OnAppend: the commit over votes under the append's ballot.
            Input::Message {
                msg: Msg::Append { ballot, commit, .. },
                ..
            } if s < *commit && c.ballot == Some(*ballot) && !q.role.proposes() => Some(Path::AppendCommit),
            // OnLearn, at a follower.
            Input::Message {
                msg: Msg::Learn { .. }, ..
            } if c.ballot.is_none() && !p.role.proposes() => Some(Path::Learn),
            Input::Unknown => Some(Path::Unknown),
            _ => None,
        };
        if let Some(path) = path {
            return Ok(path);
        }
        let rule = if q.role == Role::Leader {
            rules::LEADER_COMMIT
        } else {
            rules::DECIDED_MOVE
        };
        Err(Violation::new(
            rule,
            format!(
                "n{i} ({:?} -> {:?}) decided slot {s} holding {c:?} on {input:?}",
                p.role, q.role
            ),
        ))
    }

    /// The voters of `(s, b)` as the leader `i` may count them, for reports.
    fn voters(&self, s: Slot, b: Ballot, i: usize) -> String {
        self.votes.get(&(s, b)).map_or("none".into(), |v| {
            format!(
                "revealed {:#b}, own durable {}, quorum {}",
                v.revealed,
                v.durable & super::bit(i) != 0,
                self.quorum
            )
        })
    }

    /// `Win(n)` / `DoWin(n, P)`: a quorum of good promises for the
    /// candidate's ballot (its own counting once durable), and the cells of
    /// `from..end` hold, under the ballot, the values `DoWin` picks for the
    /// promises of some such quorum.
    fn check_win(&self, i: usize, p: &NodeState, q: &NodeState) -> Check {
        let b = q.promised.unwrap_or(Ballot::new(0, id(i)));
        let f = self.nodes[i].from;
        // A node alone sends its prepare to no one, so no frame shows it:
        // its range is the log from where it campaigned.
        let alone = (self.nodes.len() == 1).then_some((f, Slot::MAX));
        let Some((pf, until)) = self.prepares.get(&b).copied().or(alone) else {
            return fail(
                rules::WIN_QUORUM,
                format!("n{i} leads {b:?} without having sent a prepare"),
            );
        };
        if pf != f {
            return fail(
                rules::MSG_STATE,
                format!("n{i} prepared {b:?} from {pf} but campaigned from {f}"),
            );
        }
        let own = self.nodes[i].disk.prom >= Some(b);
        // GoodPromises(n), one list of parts per sender, then every chain
        // of them that answers for f..until (the candidate takes a part
        // that starts where the last ended; parts of different answers to
        // the same ballot may chain).
        let mut parts: BTreeMap<usize, Vec<&PromiseMsg>> = BTreeMap::new();
        for m in self.promises.get(&(i, b)).into_iter().flatten() {
            if m.src != i && m.decided <= f && !m.beyond {
                // Parts that answer the same way for the same slots are
                // one part to a chain.
                let list = parts.entry(m.src).or_default();
                if !list
                    .iter()
                    .any(|p| (p.first, p.end, &p.entries) == (m.first, m.end, &m.entries))
                {
                    list.push(m);
                }
            }
        }
        // The senders whose good parts answered for every slot of f..until
        // (in any order: a datagram network reorders them).
        let senders: BTreeMap<usize, &Vec<&PromiseMsg>> = parts
            .iter()
            .filter(|(_, list)| covers(list, f, until))
            .map(|(&src, list)| (src, list))
            .collect();
        let need = self.quorum.saturating_sub(usize::from(own));
        if senders.len() < need {
            return fail(
                rules::WIN_QUORUM,
                format!(
                    "n{i} leads {b:?} with good promises from {:?} (own durable: {own}), quorum {}",
                    senders.keys().collect::<Vec<_>>(),
                    self.quorum
                ),
            );
        }
        // Every vote any good part reported: the candidate merges the
        // parts of a peer whose promise it has not counted (yet) too. A
        // vote reported at a ballot at least the quorum's best is as safe
        // to re-propose (docs/safety.md, promises in parts), so a choice
        // among them is allowed beside the quorum's.
        let mut extras: BTreeMap<Slot, Vec<(Ballot, &Val)>> = BTreeMap::new();
        for part in parts.values().flatten() {
            for (s, eb, v) in &part.entries {
                extras.entry(*s).or_default().push((*eb, v));
            }
        }
        let lists: Vec<&Vec<&PromiseMsg>> = senders.values().copied().collect();
        for mask in 0u32..(1 << lists.len()) {
            if (mask.count_ones() as usize) < need {
                continue;
            }
            let chosen: Vec<&Vec<&PromiseMsg>> = (0..lists.len())
                .filter(|k| mask & (1 << k) != 0)
                .map(|k| lists[k])
                .collect();
            if self.win_matches(p, q, b, f, until, &chosen, &extras) {
                return Ok(());
            }
        }
        let cells: Vec<(Slot, &Cell)> = q.slots().filter(|(s, _)| *s >= f).collect();
        // Per sender, its parts as (first, end, entries).
        type Shapes = Vec<(usize, Vec<(Slot, Slot, usize)>)>;
        let shapes: Shapes = parts
            .iter()
            .map(|(src, l)| (*src, l.iter().map(|p| (p.first, p.end, p.entries.len())).collect()))
            .collect();
        fail(
            rules::WIN_VALUES,
            format!(
                "n{i} won {b:?} (from {f}, until {until}) holding {cells:?}; no quorum of its {} good promises picks that (parts by sender, as first..end with entries: {shapes:?})",
                senders.values().map(|l| l.len()).sum::<usize>()
            ),
        )
    }

    /// `DoWin` for the promises of the senders `chosen` (each its good
    /// parts), slot by slot: the candidate may have taken, for each slot,
    /// any part of each sender that answers for it, so the best report of a
    /// slot is any one that every other sender has a report at most as
    /// high for. Where `extras` (votes any part reported) hold a vote at
    /// least as high as what the choice rests on, its value is accepted
    /// too, and the re-proposed range may reach to the extras' last slot
    /// (no-ops between).
    #[allow(clippy::too_many_arguments)]
    fn win_matches(
        &self,
        p: &NodeState,
        q: &NodeState,
        b: Ballot,
        f: Slot,
        until: Slot,
        chosen: &[&Vec<&PromiseMsg>],
        extras: &BTreeMap<Slot, Vec<(Ballot, &Val)>>,
    ) -> bool {
        // Per slot, what each sender's parts may have reported there.
        let reports = |s: Slot| -> Vec<Vec<Option<(Ballot, &Val)>>> {
            chosen
                .iter()
                .map(|parts| {
                    parts
                        .iter()
                        .filter(|m| m.first <= s && s < m.end)
                        .map(|m| m.entries.iter().find(|(es, _, _)| *es == s).map(|(_, eb, v)| (*eb, v)))
                        .collect()
                })
                .collect()
        };
        // The reports that can be the best of a slot.
        let bests = |s: Slot| -> Vec<Option<(Ballot, &Val)>> {
            let options = reports(s);
            if options.is_empty() {
                // No sender: a lone node's own votes only.
                return vec![None];
            }
            let mut out: Vec<Option<(Ballot, &Val)>> = Vec::new();
            for x in options.iter().flatten() {
                let key = x.map(|(eb, _)| eb);
                let possible = options
                    .iter()
                    .all(|sender| sender.iter().any(|y| y.map(|(eb, _)| eb) <= key));
                if possible && !out.contains(x) {
                    out.push(*x);
                }
            }
            out
        };
        let own_vote = |s: Slot| p.cell(s).filter(|c| c.is_vote() && c.ballot < Some(b));
        // The least the candidate re-proposes: its own votes, and the slots
        // where every choice of reports holds a vote.
        let mut end = f.max(p.decided);
        for (s, _) in p.slots() {
            if s >= f && s < until && own_vote(s).is_some() {
                end = end.max(s + 1);
            }
        }
        let reported = chosen
            .iter()
            .flat_map(|parts| parts.iter().flat_map(|m| m.entries.iter().map(|(s, _, _)| *s)));
        let reach = reported
            .chain(extras.range(f..until).map(|(s, _)| *s))
            .filter(|s| *s >= f && *s < until)
            .max()
            .map_or(end, |s| end.max(s + 1));
        if end > until {
            return false;
        }
        let mut q_end = f;
        while q_end < reach.max(end) && q.cell(q_end).is_some_and(|c| c.ballot == Some(b)) {
            q_end += 1;
        }
        if q_end < end {
            return false;
        }
        for s in f..q_end {
            let Some(cell) = q.cell(s) else { return false };
            let own = p.cell(s);
            if own.is_some() && s < p.decided {
                if own.map(|o| &o.value) != Some(&cell.value) {
                    return false;
                }
                continue;
            }
            let own_ballot = own.filter(|o| o.is_vote()).and_then(|o| o.ballot);
            let mut fits = false;
            for best in bests(s) {
                // DoWin's choice for this best report, and the ballot it
                // rests on.
                let (expected, floor) = match (own, best) {
                    (Some(o), Some((rb, _))) if o.is_vote() && o.ballot >= Some(rb) => (o.value.clone(), o.ballot),
                    (_, Some((rb, rv))) => (rv.clone(), Some(rb).max(own_ballot)),
                    (Some(o), None) => (o.value.clone(), own_ballot),
                    (None, None) => (None, None),
                };
                fits = cell.value == expected
                    || extras
                        .get(&s)
                        .is_some_and(|r| r.iter().any(|(eb, v)| Some(*eb) >= floor && **v == cell.value));
                if fits {
                    break;
                }
            }
            if !fits {
                return false;
            }
        }
        (q_end.max(q.start)..q.limit()).all(|s| q.cell(s) == p.cell(s))
    }

    /// The frames node `i` sent in this step: each must be one the spec's
    /// actions send from the state `q`, implied by its durable state; they
    /// join `msgs`.
    pub(super) fn check_sends(&mut self, i: usize, q: &NodeState, out: &[Output]) -> Check {
        let me = id(i);
        for output in out {
            let Output::Frame { to, bytes } = output else {
                continue;
            };
            let msg = Msg::parse(bytes).map_err(|e| Violation::new(rules::FRAMES, format!("n{i} sent {e}")))?;
            self.coverage.messages += 1;
            if msg.needs_durable_state() {
                self.nodes[i].revealed_durable = true;
            }
            let prom = self.nodes[i].disk.prom;
            match msg {
                Msg::Prepare { ballot, from, until } => {
                    if q.role != Role::Candidate || q.promised != Some(ballot) || ballot.node != me {
                        return fail(rules::MSG_STATE, format!("n{i} sent Prepare {ballot:?} as {}", show(q)));
                    }
                    if prom < Some(ballot) {
                        return fail(
                            rules::PBR_PREPARE,
                            format!("n{i} sent Prepare {ballot:?}; durable promise {prom:?}"),
                        );
                    }
                    if from != self.nodes[i].from {
                        return fail(
                            rules::MSG_STATE,
                            format!(
                                "n{i} prepared {ballot:?} from {from}; it campaigned at decided {}",
                                self.nodes[i].from
                            ),
                        );
                    }
                    self.prepares.insert(ballot, (from, until));
                }
                Msg::Promise(part) => {
                    let dst = to.iter().next().map_or(usize::MAX, |n| usize::from(n.0));
                    let (renewal, end) = self.check_promise(i, q, &part)?;
                    self.coverage.promises += 1;
                    self.coverage.promise_parts += u64::from(!part.complete);
                    self.coverage.renewals_past_own_vote += u64::from(renewal);
                    self.promises.entry((dst, part.ballot)).or_default().push(PromiseMsg {
                        src: i,
                        decided: part.decided,
                        beyond: part.beyond,
                        first: part.first,
                        end,
                        entries: part.entries,
                    });
                }
                Msg::Append {
                    ballot,
                    commit,
                    first,
                    values,
                } => {
                    if q.role != Role::Leader || q.promised != Some(ballot) || ballot.node != me {
                        return fail(rules::MSG_STATE, format!("n{i} sent Append {ballot:?} as {}", show(q)));
                    }
                    if prom < Some(ballot) {
                        return fail(
                            rules::PBR_APPEND,
                            format!("n{i} sent Append {ballot:?}; durable promise {prom:?}"),
                        );
                    }
                    if commit > q.decided {
                        return fail(
                            rules::MSG_STATE,
                            format!("n{i} sent commit {commit} with decided {}", q.decided),
                        );
                    }
                    for (s, v) in (first..).zip(&values) {
                        let ok = q
                            .cell(s)
                            .is_some_and(|c| c.value == *v && (c.ballot == Some(ballot) || s < q.decided));
                        if !ok {
                            return fail(
                                rules::MSG_STATE,
                                format!(
                                    "n{i} sent {v:?} for slot {s} under {ballot:?}; it holds {:?}",
                                    q.cell(s)
                                ),
                            );
                        }
                        self.set_value(s, ballot, v, i)?;
                        self.check_valid(i, s, v)?;
                    }
                    let track = &self.nodes[i];
                    let lo = track.verified_commit.max(track.from);
                    if let Some(s) = (lo..commit).find(|s| !self.chosen_at(*s, ballot, i)) {
                        return fail(
                            rules::APPEND_COMMIT,
                            format!(
                                "n{i} sent commit {commit} under {ballot:?} (from {}); slot {s} has votes {}",
                                track.from,
                                self.voters(s, ballot, i)
                            ),
                        );
                    }
                    let track = &mut self.nodes[i];
                    track.verified_commit = track.verified_commit.max(commit);
                }
                Msg::Accepted { ballot, first, count } => {
                    if q.role == Role::Amnesiac {
                        return fail(rules::AMNESIAC, format!("n{i} sent Accepted {ballot:?}"));
                    }
                    // OnAppend: promised' = Max(promised, b) before the reply.
                    if q.promised < Some(ballot) {
                        return fail(
                            rules::VOTE_PROMISE,
                            format!("n{i} sent Accepted {ballot:?} promising {:?}", q.promised),
                        );
                    }
                    if prom < Some(ballot) {
                        return fail(
                            rules::PBR_VOTE,
                            format!("n{i} sent Accepted {ballot:?}; durable promise {prom:?}"),
                        );
                    }
                    for s in first..first + u64::from(count) {
                        // AcceptLoop counts a slot it stored under the
                        // ballot or holds decided (a later vote may have
                        // replaced it before the reply left).
                        let holds = s < q.decided || s < q.start || q.cell(s).is_some_and(|c| c.ballot >= Some(ballot));
                        if !holds {
                            return fail(
                                rules::MSG_STATE,
                                format!(
                                    "n{i} sent Accepted {ballot:?} for {first}+{count} holding {:?} for slot {s} (decided {})",
                                    q.cell(s),
                                    q.decided
                                ),
                            );
                        }
                        let d = &self.nodes[i].disk;
                        if !d.backs_vote(s, ballot) {
                            return fail(
                                rules::PBR_VOTE,
                                format!(
                                    "n{i} sent Accepted {ballot:?} for {first}+{count}; slot {s} durably holds {:?} (watermark {})",
                                    d.cells.get(&s),
                                    d.dec
                                ),
                            );
                        }
                        let revealed = self.nodes[i].revealed.entry(s).or_default();
                        if !revealed.contains(&ballot) {
                            revealed.push(ballot);
                        }
                        self.add_vote(s, ballot, None, i, true)?;
                    }
                }
                Msg::Nack { ballot, promised, .. } => {
                    if prom < promised {
                        return fail(
                            rules::PBR_NACK,
                            format!("n{i} refused {ballot:?} revealing promise {promised:?}; durable promise {prom:?}"),
                        );
                    }
                }
                Msg::CatchUp { .. } => {}
                Msg::Learn { first, values } => {
                    for (s, v) in (first..).zip(&values) {
                        if s >= q.decided || q.cell(s).map(|c| &c.value) != Some(v) {
                            return fail(
                                rules::LEARN_MSG,
                                format!(
                                    "n{i} sent {v:?} for slot {s} as decided; it holds {:?}, decided {}",
                                    q.cell(s),
                                    q.decided
                                ),
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A promise or a part of one: `Encode` of `PromiseD`, `Implied`, and
    /// `PromisesReportVotes`, over the slots the part answers for. Returns
    /// whether it is a renewal that no longer reports a revealed vote
    /// because the acceptor since voted under the promised ballot, and the
    /// end of the slots it answers for.
    fn check_promise(&self, i: usize, q: &NodeState, part: &PromisePart) -> Result<(bool, Slot), Violation> {
        let (ballot, decided, beyond, first, complete) =
            (part.ballot, part.decided, part.beyond, part.first, part.complete);
        let entries = &part.entries;
        let mut renewal = false;
        if q.role == Role::Amnesiac {
            return fail(rules::AMNESIAC, format!("n{i} promised {ballot:?}"));
        }
        let d = &self.nodes[i].disk;
        if d.prom < Some(ballot) {
            return fail(
                rules::PBR_PROMISE,
                format!("n{i} sent Promise {ballot:?}; durable promise {:?}", d.prom),
            );
        }
        if q.promised != Some(ballot) || decided != q.decided {
            return fail(
                rules::MSG_STATE,
                format!("n{i} sent Promise {ballot:?} with decided {decided} as {}", show(q)),
            );
        }
        let Some(&(prepared_from, until)) = self.prepares.get(&ballot) else {
            return fail(rules::MSG_STATE, format!("n{i} promised {ballot:?}, never prepared"));
        };
        // The part answers for `from..end`: to the prepare's `until` if it
        // is the last, else through its last entry (which it must have).
        let from = first;
        let end = if complete {
            until
        } else {
            match entries.iter().map(|(s, _, _)| s + 1).max() {
                Some(end) => end,
                None => {
                    return fail(
                        rules::MSG_STATE,
                        format!("n{i} sent an empty partial promise {ballot:?}"),
                    )
                }
            }
        };
        if from < prepared_from || from > end {
            return fail(
                rules::MSG_STATE,
                format!("n{i} sent a part of promise {ballot:?} from {from}; prepared {prepared_from}..{until}"),
            );
        }
        let (prepared_until, until) = (until, end);
        for (s, eb, v) in entries {
            if *eb >= ballot || *s < from || *s >= until {
                return fail(
                    rules::MSG_STATE,
                    format!("n{i} promised {ballot:?} ({from}..{until}) reporting {eb:?} for slot {s}"),
                );
            }
            if d.votes.get(&(*s, *eb)) != Some(v) && !d.keeps_vote(*s, *eb) {
                return fail(
                    rules::PBR_PROMISE_VOTE,
                    format!(
                        "n{i} promised {ballot:?} reporting {v:?} under {eb:?} for slot {s}; durable: {:?}",
                        d.votes.get(&(*s, *eb))
                    ),
                );
            }
            let held = Cell {
                ballot: Some(*eb),
                value: v.clone(),
            };
            if q.cell(*s) != Some(&held) {
                return fail(
                    rules::MSG_STATE,
                    format!("n{i} reported {held:?} for slot {s}; it holds {:?}", q.cell(*s)),
                );
            }
        }
        for (s, c) in q.slots() {
            if !c.is_vote() {
                continue;
            }
            if s >= prepared_until && !beyond {
                return fail(
                    rules::MSG_STATE,
                    format!(
                        "n{i} promised {ballot:?} until {prepared_until} without `beyond`, holding {c:?} at slot {s}"
                    ),
                );
            }
            let reported = entries
                .iter()
                .any(|(es, eb, ev)| *es == s && Some(*eb) == c.ballot && *ev == c.value);
            if s >= from && s < until && c.ballot < Some(ballot) && !reported {
                return fail(
                    rules::PROMISE_ENTRIES,
                    format!("n{i} promised {ballot:?} ({from}..{until}) without its vote {c:?} for slot {s}"),
                );
            }
        }
        // PromisesReportVotes, for the slots this part covers.
        for s in from.max(decided)..until {
            let reported = entries.iter().filter(|(es, _, _)| *es == s).map(|(_, eb, _)| *eb).max();
            // A renewal sent after the acceptor voted under the promised
            // ballot itself no longer reports the older vote; only the
            // leader of that ballot, which no longer counts promises, gets it.
            let voted_own = q.cell(s).is_some_and(|c| c.ballot >= Some(ballot));
            if let Some(rb) = self.revealed_below(i, s, ballot).find(|rb| reported < Some(*rb)) {
                renewal |= voted_own;
                if !voted_own {
                    return Err(Violation::new(
                        rules::REPORTED_VOTES,
                        format!(
                            "n{i} promised {ballot:?} (decided {decided}) reporting {reported:?} for slot {s}; it revealed a vote under {rb:?}"
                        ),
                    ));
                }
            }
        }
        Ok((renewal, end))
    }

    /// The invariants on node `i`'s state after a step (`p` before, if it
    /// was running).
    pub(super) fn check_state(&mut self, i: usize, p: Option<&NodeState>, q: &NodeState) -> Check {
        let d = &self.nodes[i].disk;
        // PromiseBounds.
        if q.promised < d.prom {
            return fail(
                rules::PROMISE_BOUNDS,
                format!("n{i} promises {:?} below its durable promise {:?}", q.promised, d.prom),
            );
        }
        for (s, c) in q.slots() {
            if c.is_vote() && c.ballot > q.promised {
                return fail(
                    rules::PROMISE_BOUNDS,
                    format!("n{i} holds {c:?} for slot {s} above its promise {:?}", q.promised),
                );
            }
            if !c.is_vote() && s >= q.decided {
                return fail(
                    rules::LEARNED_BELOW,
                    format!("n{i} holds learned {c:?} for slot {s}, not below decided {}", q.decided),
                );
            }
        }
        // DecidedKnown, then agreement and validity on what became decided.
        let lo = p.map_or(q.start, |p| p.decided.max(q.start));
        let hi = q.decided.min(q.limit());
        for s in q.start..hi {
            if q.cell(s).is_none() {
                return fail(
                    rules::DECIDED_KNOWN,
                    format!("n{i} has slot {s} decided (below {}) without a value", q.decided),
                );
            }
        }
        for s in lo..hi {
            if let Some(c) = q.cell(s) {
                let value = c.value.clone();
                self.check_decided(i, s, &value)?;
            }
        }
        // CommitWatermark when a leadership starts (later slots are checked
        // as they are decided, and cells below decided never change).
        if q.role == Role::Leader && p.is_none_or(|p| p.role != Role::Leader) {
            let b = q.promised.unwrap_or(Ballot::new(0, id(i)));
            let from = self.nodes[i].from;
            for s in from.max(q.start)..hi {
                let ok = q.cell(s).is_some_and(|c| c.ballot == Some(b)) && self.chosen_at(s, b, i);
                if !ok {
                    return fail(
                        rules::LEADER_COMMIT,
                        format!(
                            "n{i} leads {b:?} (from {from}) with slot {s} decided as {:?}, votes {}",
                            q.cell(s),
                            self.voters(s, b, i)
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}

/// Whether the ranges `first..end` of `parts` together cover `from..until`.
fn covers(parts: &[&PromiseMsg], from: Slot, until: Slot) -> bool {
    let mut at = from;
    while at < until {
        match parts
            .iter()
            .filter(|m| m.first <= at && at < m.end)
            .map(|m| m.end)
            .max()
        {
            Some(end) => at = end,
            None => return false,
        }
    }
    true
}
