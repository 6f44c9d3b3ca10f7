//! Replica tests written for the mutants of `replica/leader.rs`,
//! `replica/learner.rs` and `replica/persist.rs` that survived the earlier
//! passes (see `docs/mutants.md`): late votes, the leader's timers, queue
//! limits, the window and unwritten votes, checkpoint sizes, and what
//! recovery makes of the records. Each drives replicas through their public
//! inputs only.

use paxos_core::codec::{encode, max_encoded_size};
use paxos_core::replica::wire::{decode_header, Header, Items, Record};
use paxos_core::replica::{Config, Dropped, Event, Replica};
use paxos_core::time::{Duration, Instant};
use paxos_core::{Ballot, NodeId};

mod common;
use common::*;

/// The ballot of the initial leader, node 1.
const LEADER: Ballot = Ballot::new(0, NodeId(1));

/// An append from `ballot`'s owner carrying `values` from `first`.
fn append<const W: usize>(
    r: &mut Replica<V, 3, W>,
    now: Instant,
    ballot: Ballot,
    commit: u64,
    first: u64,
    values: &[&str],
) -> Result<(), Dropped> {
    let header = Header::Append {
        ballot,
        commit,
        first,
        stamp: now.as_micros(),
    };
    r.handle_message(now, ballot.node, &frame(&header, values))
        .map_or(Ok(()), Err)
}

/// Decided values from node 1, from slot `first`.
fn learn(r: &mut R, now: Instant, first: u64, values: &[&str]) -> Result<(), Dropped> {
    r.handle_message(now, NodeId(1), &frame(&Header::Learn { first }, values))
        .map_or(Ok(()), Err)
}

/// A vote from `from` for `count` slots from `first` under `ballot`.
fn accepted(r: &mut R, now: Instant, from: u8, ballot: Ballot, first: u64, count: u32) {
    let header = Header::Accepted {
        ballot,
        first,
        count,
        stamp: now.as_micros(),
    };
    assert_eq!(r.handle_message(now, NodeId(from), &bare(&header)), None);
}

/// Every frame the replica sends now, decoded: header and values.
fn sent(r: &mut R) -> Vec<(Header, Vec<Option<V>>)> {
    let mut buf = vec![0u8; R::MAX_MESSAGE_SIZE];
    let mut out = Vec::new();
    while let Some(t) = r.poll_transmit(&mut buf) {
        let (header, rest) = decode_header::<Header>(&buf[..t.len]).unwrap();
        let values = match header {
            Header::Append { .. } | Header::Learn { .. } => {
                Items::<Option<V>>::new(rest).unwrap().map(Result::unwrap).collect()
            }
            _ => Vec::new(),
        };
        out.push((header, values));
    }
    out
}

/// A record batch as storage would hold it: the version byte, then each
/// record followed by its values.
fn batch(records: &[(Record, &[&str])]) -> Vec<u8> {
    let mut buf = [0u8; 128];
    let mut out = vec![encode(&records[0].0, &mut buf).unwrap()[0]];
    for (record, values) in records {
        out.extend_from_slice(&encode(record, &mut buf).unwrap()[1..]);
        if matches!(record, Record::Accepted { .. } | Record::Learned { .. }) {
            out.push(u8::try_from(values.len()).unwrap());
            for value in *values {
                out.extend_from_slice(&encode(&Some(v(value)), &mut buf).unwrap()[1..]);
            }
        }
    }
    out
}

fn recover(id: u8, batches: &[Vec<u8>], applied: u64) -> Result<R, paxos_core::replica::RecoverError> {
    R::recover(config(id, Some(1)), at(10), batches.iter().map(Vec::as_slice), applied)
}

/// A single-node leader decides with its own votes alone, so each of them
/// must be counted, however many proposals one record covers: seventeen
/// proposals queued before one write, one more than the 16 self-vote
/// entries the leader keeps, all get decided. (Mutant: `==` to `!=` in
/// `queue_self_votes`, which stops merging the votes of contiguous
/// proposals and drops the seventeenth; with more, it merges later ones
/// into the last entry by accident, which is why twenty did not show it.)
#[test]
fn a_single_node_leader_decides_every_proposal_covered_by_one_record() {
    type Solo = Replica<V, 1, 64>;
    let mut c = Config::new(NodeId(1), &[NodeId(1)]).unwrap();
    c.initial_leader = Some(NodeId(1));
    let mut r = Solo::new(c, at(0)).unwrap();
    sync(&mut r, at(0));
    for i in 0..17u8 {
        r.propose(at(1), V::from_slice(&[i]).unwrap()).unwrap();
    }
    let batches = sync(&mut r, at(1));
    assert_eq!(batches.len(), 1, "one write covers every proposal");
    assert_eq!(r.decided(), 17);
}

/// A node that stopped leading counts no more votes for the ballot it led:
/// decisions now come from its new leader. A late `Accepted` for its old
/// ballot, which would complete a quorum with its own vote, leaves the
/// slot undecided. (Mutant: `||` to `&&` in `on_accepted`.)
#[test]
fn a_former_leader_ignores_late_votes_for_the_ballot_it_led() {
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    sync(&mut r, at(0));
    r.propose(at(1), v("x")).unwrap();
    sync(&mut r, at(1));
    // Node 3 leads now with a higher ballot.
    append(&mut r, at(2), Ballot::new(1, NodeId(3)), 0, 0, &[]).unwrap();
    assert!(!r.is_leader());
    accepted(&mut r, at(3), 2, LEADER, 0, 1);
    assert_eq!(r.decided(), 0);
    assert_eq!(r.decided_value(0), None);
    // The same vote counts while it leads (control).
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    sync(&mut r, at(0));
    r.propose(at(1), v("x")).unwrap();
    sync(&mut r, at(1));
    accepted(&mut r, at(3), 2, LEADER, 0, 1);
    assert_eq!(r.decided(), 1);
}

/// The leader's next deadline while it is idle and its promise durable is
/// its heartbeat, one interval after the last broadcast, not one interval
/// after the latest input. (Mutants: `<` to `<=` and to `==` in
/// `leader_deadline`, which push it back as if the promise were not
/// durable.)
#[test]
fn an_idle_leaders_deadline_is_one_heartbeat_after_its_last_broadcast() {
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    sync(&mut r, at(0));
    let out = sent(&mut r);
    assert!(matches!(out[..], [(Header::Append { .. }, _)]), "{out:?}");
    r.handle_timeout(at(30));
    assert!(sent(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), at(50));
}

/// Until its promise is durable a leader sends nothing, so its deadline
/// stays one heartbeat ahead of now instead of falling into the past and
/// making the driver spin. (Mutant: `<` to `==` in `leader_deadline`.)
#[test]
fn a_leader_whose_promise_is_not_durable_keeps_its_deadline_ahead_of_now() {
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    r.handle_timeout(at(60));
    assert!(sent(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), at(110));
    sync(&mut r, at(60));
    assert_eq!(sent(&mut r).len(), 1, "the announcement leaves once durable");
}

/// A leader announces a decision at its first tick past the commit delay,
/// however late the driver calls it, even when the heartbeat is not due
/// (here the heartbeat interval is longer than the retransmission timeout).
/// (Mutant: `<` to `<=` in `leader_tick`, which restarts the
/// retransmission clock when nothing is undecided and so postpones the
/// commit.)
#[test]
fn a_late_tick_still_announces_a_decision_the_followers_have_not_heard() {
    let mut c = config(1, Some(1));
    c.heartbeat_interval = Duration::from_millis(200);
    c.retransmit_timeout = Duration::from_millis(100);
    c.election_timeout = Duration::from_millis(1_000);
    let mut r = R::new(c, at(0)).unwrap();
    sync(&mut r, at(0));
    assert_eq!(sent(&mut r).len(), 1, "the announcement");
    r.propose(at(1), v("x")).unwrap();
    sync(&mut r, at(1));
    assert_eq!(sent(&mut r).len(), 1, "the append");
    accepted(&mut r, at(2), 2, LEADER, 0, 1);
    assert_eq!(r.decided(), 1);
    // The commit delay (an eighth of the heartbeat) has not passed yet.
    assert!(sent(&mut r).is_empty());
    r.handle_timeout(at(150));
    let out = sent(&mut r);
    assert!(matches!(out[..], [(Header::Append { commit: 1, .. }, _)]), "{out:?}");
}

/// The retransmission timeout is how long the leader waits for votes after
/// sending an append: a proposal made after an idle spell longer than that
/// timeout is sent once, and resent only if no vote came for a full
/// timeout, not at the very next tick. Regression test: the clock used to
/// run from the last decision, so such a proposal was sent twice at once.
/// (Written for the `<` to `<=` mutant of `leader_tick`.)
#[test]
fn a_proposal_after_an_idle_spell_waits_a_full_timeout_before_it_is_resent() {
    let mut r = R::new(config(1, Some(1)), at(0)).unwrap();
    sync(&mut r, at(0));
    sent(&mut r);
    r.propose(at(1), v("x")).unwrap();
    sync(&mut r, at(1));
    sent(&mut r);
    accepted(&mut r, at(2), 2, LEADER, 0, 1);
    assert_eq!(r.decided(), 1);
    // Idle: heartbeats only, acknowledged.
    for ms in [50, 100, 150, 200, 250, 300] {
        r.handle_timeout(at(ms));
        assert_eq!(sent(&mut r).len(), 1);
        accepted(&mut r, at(ms), 2, LEADER, 1, 0);
    }
    r.propose(at(301), v("y")).unwrap();
    sync(&mut r, at(301));
    let out = sent(&mut r);
    assert!(matches!(out[..], [(Header::Append { first: 1, .. }, ref values)] if values.len() == 1));
    // Not resent at once (it was, before the fix: the clock ran from the
    // decision at 2 ms, so the deadline was already past)...
    r.handle_timeout(at(302));
    assert!(sent(&mut r).is_empty());
    // ...nor at the next heartbeat...
    assert_eq!(r.poll_timeout(), at(351));
    r.handle_timeout(at(351));
    let out = sent(&mut r);
    assert!(
        matches!(out[..], [(Header::Append { first: 2, .. }, ref values)] if values.is_empty()),
        "{out:?}"
    );
    // ...but once a full timeout passed without a vote.
    r.handle_timeout(at(401));
    let out = sent(&mut r);
    assert!(
        matches!(out[..], [(Header::Append { first: 1, .. }, ref values)] if values.len() == 1),
        "{out:?}"
    );
}

/// A catch-up answer longer than the window is taken up to the window's end
/// and the rest counted as out of the window. (Mutants: `+=` to `-=` and
/// `*=` on that counter in `on_learn`.)
#[test]
fn a_catch_up_answer_longer_than_the_window_is_cut_there_and_counted() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let values = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    learn(&mut r, at(1), 0, &values).unwrap();
    assert_eq!(r.decided(), 8);
    assert_eq!(r.decided_value(7), Some(Some(&v("h"))));
    assert_eq!(r.counters().out_of_window, 1);
}

/// A replica takes a request only while its outbox has room for the reply:
/// with fifteen promises waiting for their record, the next prepare is
/// refused as busy (the candidate retries) rather than answered into a full
/// outbox, where the reply would be lost. (Mutant: `-` to `+` on the outbox
/// side of `has_room`.)
#[test]
fn a_replica_whose_outbox_is_nearly_full_refuses_requests() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    let mut results = Vec::new();
    for round in 1..=17 {
        let prepare = Header::Prepare {
            ballot: Ballot::new(round, NodeId(3)),
            from: 0,
            until: 8,
        };
        results.push(r.handle_message(at(1), NodeId(3), &bare(&prepare)));
    }
    // The promises merge into one record: only the outbox fills.
    assert!(results[..15].iter().all(Option::is_none), "{results:?}");
    assert_eq!(results[15..], [Some(Dropped::Busy), Some(Dropped::Busy)]);
    assert_eq!(r.counters().busy, 2);
    assert_eq!(r.counters().outbox_full, 0);
    assert_eq!(r.promised(), Some(Ballot::new(15, NodeId(3))));
}

/// A vote stays in memory until its record is written, even once its slot
/// is decided and delivered: the window does not slide over it, so the
/// record written later still holds it and a restart finds it. (Mutant:
/// the `Entries` arm of `persist_floor` deleted, so queued votes no longer
/// hold the window.)
#[test]
fn a_delivered_vote_stays_in_memory_until_its_record_is_written() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let values = ["a", "b", "c", "d", "e", "f", "g", "h"];
    append(&mut r, at(1), LEADER, 0, 0, &values).unwrap();
    append(&mut r, at(1), LEADER, 8, 8, &[]).unwrap();
    assert_eq!(r.decided(), 8);
    while r.poll_event().is_some() {}
    assert_eq!(r.delivered(), 8);
    // Nothing written yet: slot 8 would push slot 0 out of memory.
    append(&mut r, at(2), LEADER, 8, 8, &["i"]).unwrap();
    assert_eq!(r.counters().out_of_window, 1);
    let batches = sync(&mut r, at(2));
    let written: Vec<_> = batches.iter().flat_map(|b| records(b)).collect();
    let expected: Vec<Option<V>> = values.iter().map(|s| Some(v(s))).collect();
    assert!(
        written.contains(&(
            Record::Accepted {
                ballot: LEADER,
                first: 0
            },
            expected
        )),
        "{written:?}"
    );
    let restarted = recover(2, &batches, 0).unwrap();
    assert_eq!(restarted.decided_value(0), Some(Some(&v("a"))));
}

/// Slots queued together whose values carry different ballots (a decided
/// value learned, then a vote) are written as consecutive runs in one
/// batch: a change of ballot ends a run, not the batch. (Mutant: `==` to
/// `!=` in the buffer-full check of `write_entries`.)
#[test]
fn runs_under_different_ballots_queued_together_share_one_batch() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), LEADER, 0, 0, &[]).unwrap();
    sync(&mut r, at(1));
    learn(&mut r, at(2), 0, &["a"]).unwrap();
    append(&mut r, at(2), LEADER, 1, 1, &["b"]).unwrap();
    let batches = sync(&mut r, at(2));
    assert_eq!(batches.len(), 1);
    assert_eq!(
        records(&batches[0]),
        [
            (Record::Learned { first: 0 }, vec![Some(v("a"))]),
            (Record::Committed { slot: 1 }, vec![]),
            (
                Record::Accepted {
                    ballot: LEADER,
                    first: 1
                },
                vec![Some(v("b"))]
            ),
        ]
    );
}

/// `MAX_CHECKPOINT_SIZE` bounds the largest checkpoint and is tight: a
/// window of the largest values, every slot voted under its own ballot,
/// with the largest ballots and slots, fits a buffer of exactly that size,
/// and the bound exceeds it only by sizing the four bookkeeping records
/// (the lost-storage mark, which this node has not written, promise,
/// snapshot, watermark) as the largest record. (Mutants: the
/// arithmetic of `MAX_CHECKPOINT_SIZE`, nine survivors; also `==` to `!=`
/// in `write_entries`, under which a change of ballot fails the
/// checkpoint.)
#[test]
fn the_checkpoint_bound_holds_the_largest_checkpoint_and_is_tight() {
    type C = Replica<V, 3, 4>;
    let mut c = config(2, None);
    c.lease = None;
    let mut r = C::new(c.clone(), at(0)).unwrap();
    let base = 1u64 << 63;
    r.install_snapshot(at(0), base).unwrap();
    let top = u32::MAX;
    for i in 0..4u32 {
        let ballot = Ballot::new(top - 3 + i, NodeId(1));
        append(&mut r, at(1), ballot, base, base + u64::from(i), &["abcdefgh"]).unwrap();
    }
    let batches = sync(&mut r, at(1));
    let mut buf = vec![0u8; C::MAX_CHECKPOINT_SIZE];
    let len = r.write_checkpoint(&mut buf).unwrap();

    let size = |record: &Record| encode(record, &mut [0u8; 64]).unwrap().len() - 1;
    let largest = max_encoded_size::<Record>() - 1;
    let bookkeeping = size(&Record::Promised {
        ballot: Ballot::new(top, NodeId(1)),
    }) + size(&Record::Snapshot { slot: base })
        + size(&Record::Committed { slot: base });
    assert_eq!(C::MAX_CHECKPOINT_SIZE - len, 4 * largest - bookkeeping);
    assert!(r.write_checkpoint(&mut buf[..len - 1]).is_err());

    // The checkpoint alone restores what the records restore.
    let from_checkpoint = C::recover(c.clone(), at(2), [&buf[..len]], base).unwrap();
    let from_records = C::recover(c, at(2), batches.iter().map(Vec::as_slice), base).unwrap();
    assert_eq!(from_checkpoint.promised(), Some(Ballot::new(top, NodeId(1))));
    assert_eq!(from_checkpoint.promised(), from_records.promised());
    assert_eq!(from_checkpoint.log_start(), base);
    assert_eq!(from_checkpoint.decided(), from_records.decided());
}

/// A watermark record is only ever written over values written before it:
/// one above every value replayed so far is corruption, even if later
/// batches would fill the gap, while a watermark below the written values
/// (votes beyond the decided prefix) replays normally. (Mutant: `>` to `<`
/// in `replay`.)
#[test]
fn recovery_refuses_a_watermark_above_the_values_written_before_it() {
    let forged = [
        batch(&[
            (Record::Promised { ballot: LEADER }, &[]),
            (
                Record::Accepted {
                    ballot: LEADER,
                    first: 0,
                },
                &["a"],
            ),
            (Record::Committed { slot: 3 }, &[]),
        ]),
        batch(&[(
            Record::Accepted {
                ballot: LEADER,
                first: 1,
            },
            &["b", "c"],
        )]),
    ];
    assert!(matches!(
        recover(2, &forged, 0),
        Err(paxos_core::replica::RecoverError::Corrupt(_))
    ));

    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), LEADER, 0, 0, &["a", "b"]).unwrap();
    append(&mut r, at(1), LEADER, 1, 2, &[]).unwrap();
    let batches = sync(&mut r, at(1));
    let restarted = recover(2, &batches, 0).unwrap();
    assert_eq!(restarted.decided(), 1);
    assert_eq!(restarted.decided_value(0), Some(Some(&v("a"))));
}

/// A `Learned` record carries decided values and, continuing the
/// watermark, extends it on replay even when the `Committed` record that
/// follows it was not written (a crash between two batches); an `Accepted`
/// run that follows is votes only and decides nothing. (Mutants: the four
/// of the watermark test in `replay_values`.)
#[test]
fn a_replayed_learned_run_extends_the_watermark_and_a_vote_run_does_not() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    learn(&mut r, at(1), 0, &["a", "b", "c"]).unwrap();
    append(&mut r, at(1), LEADER, 3, 3, &["d", "e"]).unwrap();
    assert_eq!(r.decided(), 3);
    let written: Vec<_> = sync(&mut r, at(1)).iter().flat_map(|b| records(b)).collect();
    assert!(
        written.contains(&(Record::Committed { slot: 3 }, vec![])),
        "{written:?}"
    );
    // The same records without the watermark record.
    let without: Vec<_> = written
        .into_iter()
        .filter(|(r, _)| !matches!(r, Record::Committed { .. }))
        .collect();
    let batches = [batch_of(&without)];
    let restarted = recover(2, &batches, 0).unwrap();
    assert_eq!(restarted.decided(), 3);
    assert_eq!(restarted.decided_value(2), Some(Some(&v("c"))));
    assert_eq!(restarted.decided_value(3), None);
}

/// A restart whose application applied exactly the decided slots needs no
/// snapshot record and keeps the decided values in memory, to answer peers
/// that lag. (Mutant: `>` to `>=` in `Recovery::finish`.)
#[test]
fn a_restart_with_every_decided_slot_applied_keeps_them_and_writes_nothing() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), LEADER, 0, 0, &["a", "b"]).unwrap();
    append(&mut r, at(1), LEADER, 2, 2, &[]).unwrap();
    let batches = sync(&mut r, at(1));
    let mut restarted = recover(2, &batches, 2).unwrap();
    assert_eq!(restarted.decided(), 2);
    assert_eq!(restarted.log_start(), 0);
    assert_eq!(restarted.decided_value(0), Some(Some(&v("a"))));
    assert_eq!(restarted.poll_persist(&mut [0u8; 256]), None);
    assert_eq!(restarted.poll_event(), None, "nothing to deliver again");
}

/// A first boot (`Replica::new`) of the configured initial leader leads
/// at once with round 0, and the others follow it; a recovery from no
/// records at all is not a first boot (see `tests/storage_loss.rs`).
#[test]
fn a_first_boot_leads_with_round_zero() {
    let mut leader = R::new(config(1, Some(1)), at(0)).unwrap();
    assert!(leader.is_leader());
    assert_eq!(leader.promised(), Some(LEADER));
    assert_eq!(leader.poll_event(), Some(Event::LeadershipAcquired { ballot: LEADER }));
    let follower = R::new(config(2, Some(1)), at(0)).unwrap();
    assert!(!follower.is_leader());
    assert_eq!(follower.leader(), Some(NodeId(1)));
    let recovered = recover(1, &[], 0).unwrap();
    assert!(!recovered.is_leader() && recovered.is_amnesiac());
}
