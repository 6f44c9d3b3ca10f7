//! Replica tests written to kill mutants that cargo-mutants found
//! surviving (see `docs/mutants.md`): when an acceptor refuses to promise,
//! and which round-0 ballots it takes. Each drives one replica through its
//! public inputs and reads its replies off the wire.

use paxos_core::codec::encode;
use paxos_core::replica::wire::{decode_header, Header, Items, PromisedEntry};
use paxos_core::replica::{Config, LeaseConfig, ProposalId, Replica};
use paxos_core::time::{Duration, Instant};
use paxos_core::{Ballot, Bytes, NodeId};

mod common;
use common::*;

/// Hands `r` a prepare for `ballot` from its owner and returns the answer
/// sent back: a `Promise`, a `Nack`, or `None` when it was ignored.
fn prepare(r: &mut R, now: Instant, ballot: Ballot) -> Option<Header> {
    prepare_saving(r, now, ballot.node, ballot, &mut Vec::new())
}

/// [`prepare`] sent by `from`, keeping the records written in `disk`.
fn prepare_saving(r: &mut R, now: Instant, from: NodeId, ballot: Ballot, disk: &mut Vec<Vec<u8>>) -> Option<Header> {
    let mut buf = [0u8; 64];
    let frame = encode(
        &Header::Prepare {
            ballot,
            from: 0,
            until: 8,
        },
        &mut buf,
    )
    .unwrap();
    let _ = r.handle_message(now, from, frame);
    disk.extend(sync(r, now));
    let mut out = vec![0u8; R::MAX_MESSAGE_SIZE];
    let mut answer = None;
    while let Some(t) = r.poll_transmit(&mut out) {
        let (header, _) = decode_header::<Header>(&out[..t.len]).unwrap();
        if t.to.contains(from) && matches!(header, Header::Promise { .. } | Header::Nack { .. }) {
            answer = Some(header);
        }
    }
    answer
}

fn promised(answer: Option<Header>) -> bool {
    matches!(answer, Some(Header::Promise { .. }))
}

fn refused(answer: Option<Header>) -> bool {
    matches!(answer, Some(Header::Nack { .. }))
}

#[test]
fn round_zero_belongs_to_the_configured_initial_leader_alone() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    assert_eq!(prepare(&mut r, at(0), Ballot::new(0, NodeId(3))), None);
    assert_eq!(r.promised(), None);
    assert_eq!(r.counters().invalid, 1);

    let mut r = R::new(config(2, Some(3)), at(0)).unwrap();
    assert_eq!(
        prepare(&mut r, at(0), Ballot::new(0, NodeId(1))),
        None,
        "1 is not the initial leader"
    );
    assert!(promised(prepare(&mut r, at(0), Ballot::new(0, NodeId(3)))));
    assert_eq!(r.promised(), Some(Ballot::new(0, NodeId(3))));
}

#[test]
fn a_ballot_sent_by_another_node_than_its_owner_is_ignored_and_counted() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    let ballot = Ballot::new(1, NodeId(3));
    assert_eq!(prepare_saving(&mut r, at(0), NodeId(1), ballot, &mut Vec::new()), None);
    assert_eq!(r.promised(), None);
    assert_eq!(r.counters().invalid, 1);
    assert!(promised(prepare(&mut r, at(0), ballot)), "from its owner it is taken");
}

#[test]
fn a_follower_refuses_other_candidates_until_its_leader_was_silent_an_election_timeout() {
    let timeout = config(2, Some(1)).election_timeout.as_micros() / 1_000;
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    // The leader itself may always run a new phase 1.
    assert!(promised(prepare(&mut r, at(1), Ballot::new(1, NodeId(1)))));

    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    assert!(refused(prepare(&mut r, at(timeout - 1), Ballot::new(1, NodeId(3)))));
    assert_eq!(r.promised(), None);
    assert!(promised(prepare(&mut r, at(timeout), Ballot::new(1, NodeId(3)))));
}

#[test]
fn a_leader_refuses_every_other_candidate_however_long_it_was_silent() {
    let mut r = R::new(config(2, Some(2)), at(0)).unwrap();
    sync(&mut r, at(0));
    assert!(r.is_leader());
    assert!(refused(prepare(&mut r, at(10_000), Ballot::new(5, NodeId(3)))));
    assert_eq!(r.promised(), Some(Ballot::new(0, NodeId(2))));
}

#[test]
fn a_restarted_node_with_leases_promises_nothing_for_one_lease() {
    let lease = LeaseConfig {
        duration: Duration::from_millis(200),
        max_drift_ppm: 1_000,
    };
    let mut c = config(2, None);
    c.lease = Some(lease);
    let mut r = R::new(c.clone(), at(0)).unwrap();
    let mut disk = Vec::new();
    let ballot = Ballot::new(1, NodeId(1));
    assert!(promised(prepare_saving(&mut r, at(0), ballot.node, ballot, &mut disk)));

    let mut r = R::recover(c, at(1_000), disk.iter().map(|b| b.as_slice()), 0).unwrap();
    assert!(refused(prepare(&mut r, at(1_199), Ballot::new(2, NodeId(3)))));
    assert!(promised(prepare(&mut r, at(1_200), Ballot::new(2, NodeId(3)))));
}

#[test]
fn a_prepare_below_the_promise_is_refused_naming_the_promise() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    let high = Ballot::new(2, NodeId(3));
    assert!(promised(prepare(&mut r, at(0), high)));
    let answer = prepare(&mut r, at(0), Ballot::new(1, NodeId(1)));
    assert!(
        matches!(answer, Some(Header::Nack { promised: Some(p), .. }) if p == high),
        "{answer:?}"
    );
    assert_eq!(r.promised(), Some(high));
    // The same ballot again is a renewal, answered with a promise.
    assert!(promised(prepare(&mut r, at(0), high)));
}

#[test]
fn a_follower_keeps_its_leader_when_promising_that_leaders_new_ballot() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    while r.poll_event().is_some() {}
    assert!(promised(prepare(&mut r, at(1), Ballot::new(1, NodeId(1)))));
    assert_eq!(r.leader(), Some(NodeId(1)));
    assert!(r.poll_event().is_none(), "no leader change to report");
}

/// Hands `r` an append from `ballot`'s owner carrying `values` from slot
/// `first`; returns the records it wrote.
fn append(r: &mut R, now: Instant, ballot: Ballot, commit: u64, first: u64, values: &[&str]) -> Vec<Vec<u8>> {
    common::append(r, now, ballot, commit, first, values);
    sync(r, now)
}

#[test]
fn an_append_writes_records_only_for_what_it_changes() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    assert!(!append(&mut r, at(1), ballot, 0, 0, &["a"]).is_empty());
    assert_eq!(r.promised(), Some(ballot), "accepting implies the promise");
    // A heartbeat under the promised ballot changes nothing durable.
    assert_eq!(append(&mut r, at(2), ballot, 0, 1, &[]), Vec::<Vec<u8>>::new());
    // Its commit watermark is written, and nothing else.
    assert_eq!(append(&mut r, at(3), ballot, 1, 1, &[]).len(), 1);
    assert_eq!(r.decided(), 1);
}

#[test]
fn an_append_reaching_below_a_snapshot_skips_those_slots_and_accepts_the_rest() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    r.install_snapshot(at(0), 3).unwrap();
    sync(&mut r, at(0));
    let ballot = Ballot::new(0, NodeId(1));
    append(&mut r, at(1), ballot, 0, 1, &["a", "b", "c", "d"]);
    let accepted: Vec<Header> = sent(&mut r)
        .into_iter()
        .filter(|h| matches!(h, Header::Accepted { .. }))
        .collect();
    assert_eq!(
        accepted,
        [Header::Accepted {
            ballot,
            first: 3,
            count: 2,
            stamp: 0
        }]
    );
}

#[test]
fn a_new_leader_overwrites_an_undecided_vote() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), Ballot::new(0, NodeId(1)), 0, 0, &["a"]);
    sent(&mut r);
    let new = Ballot::new(1, NodeId(3));
    append(&mut r, at(2), new, 1, 0, &["b"]);
    assert!(sent(&mut r).contains(&Header::Accepted {
        ballot: new,
        first: 0,
        count: 1,
        stamp: 0
    }));
    assert_eq!(r.counters().invalid, 0);
    assert_eq!(r.decided_value(0), Some(Some(&Bytes::try_from("b").unwrap())));
}

#[test]
fn a_decided_slot_keeps_its_value_against_a_leader_that_contradicts_it() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    append(&mut r, at(1), ballot, 1, 0, &["a"]);
    assert_eq!(r.decided(), 1);
    append(&mut r, at(2), Ballot::new(1, NodeId(3)), 1, 0, &["b", "c"]);
    assert_eq!(r.decided_value(0), Some(Some(&Bytes::try_from("a").unwrap())));
    assert_eq!(r.counters().invalid, 1);
}

#[test]
fn values_beyond_the_window_are_refused_and_counted() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    let values = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    append(&mut r, at(1), ballot, 0, 0, &values);
    assert!(sent(&mut r).contains(&Header::Accepted {
        ballot,
        first: 0,
        count: 8,
        stamp: 0
    }));
    assert_eq!(r.counters().out_of_window, 2);
}

/// The promise `r` answers to a prepare from node 3 asking about
/// `from..until`, with the number of entries it reports.
fn promise_for(r: &mut R, now: Instant, ballot: Ballot, from: u64, until: u64) -> (Header, u32) {
    let header = Header::Prepare { ballot, from, until };
    let mut buf = [0u8; 64];
    assert_eq!(
        r.handle_message(now, ballot.node, encode(&header, &mut buf).unwrap()),
        None
    );
    sync(r, now);
    let mut out = vec![0u8; R::MAX_MESSAGE_SIZE];
    while let Some(t) = r.poll_transmit(&mut out) {
        let (header, rest) = decode_header::<Header>(&out[..t.len]).unwrap();
        if let Header::Promise { .. } = header {
            let items = Items::<PromisedEntry<Bytes<8>>>::new(rest).unwrap();
            return (header, items.remaining());
        }
    }
    panic!("no promise");
}

#[test]
fn a_renewed_promise_reports_no_vote_cast_under_its_own_ballot() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    append(&mut r, at(1), ballot, 0, 0, &["a"]);
    sent(&mut r);
    let (_, reported) = promise_for(&mut r, at(2), ballot, 0, 8);
    assert_eq!(reported, 0, "the vote came from this ballot's own leader");
    // A higher ballot learns of it.
    let (_, reported) = promise_for(&mut r, at(2_000), Ballot::new(1, NodeId(3)), 0, 8);
    assert_eq!(reported, 1);
}

#[test]
fn a_promise_says_whether_votes_lie_beyond_what_the_candidate_can_hold() {
    let beyond = |until: u64, learned: bool| {
        let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
        if learned {
            let header = Header::Learn { first: 0 };
            assert_eq!(
                r.handle_message(at(1), NodeId(1), &frame(&header, &["a", "b", "c"])),
                None
            );
        } else {
            append(&mut r, at(1), Ballot::new(0, NodeId(1)), 0, 0, &["a", "b", "c"]);
        }
        sync(&mut r, at(1));
        sent(&mut r);
        match promise_for(&mut r, at(2_000), Ballot::new(1, NodeId(3)), 0, until) {
            (Header::Promise { beyond, .. }, _) => beyond,
            other => panic!("{other:?}"),
        }
    };
    assert!(beyond(2, false), "slot 2 holds a vote");
    assert!(!beyond(3, false));
    assert!(!beyond(8, false));
    assert!(!beyond(1, true), "decided values learned are not votes");
}

/// Node 2 leads from the start and proposes `x` for slot 0; node 1 then
/// says slot 0 is decided with `learned`. Returns the proposal's id and
/// every event that follows, rendered.
fn leader_proposes_x_and_learns(learned: &str) -> (ProposalId, Vec<String>) {
    let mut r = R::new(config(2, Some(2)), at(0)).unwrap();
    sync(&mut r, at(0));
    while r.poll_event().is_some() {}
    let id = r.propose(at(1), v("x")).unwrap();
    sync(&mut r, at(1));
    assert_eq!(
        r.handle_message(at(2), NodeId(1), &frame(&Header::Learn { first: 0 }, &[learned])),
        None
    );
    assert_eq!((r.decided(), r.counters().stale), (0, 1));
    assert!(r.is_leader());
    sync(&mut r, at(2));
    let mut events = Vec::new();
    while let Some(e) = r.poll_event() {
        events.push(format!("{e:?}"));
    }
    (id, events)
}

/// A leader's watermark moves only with its own ballot's votes: decided
/// values offered by a peer, its own or another, are dropped (stale), and
/// its proposal stays in flight under its ballot.
#[test]
fn a_leader_drops_decided_values_offered_by_a_peer() {
    for learned in ["x", "y"] {
        let (_, events) = leader_proposes_x_and_learns(learned);
        assert!(events.is_empty(), "{learned}: {events:?}");
    }
}

#[test]
fn a_one_slot_window_still_keeps_one_proposal_in_flight() {
    type One = Replica<Bytes<8>, 1, 1>;
    assert_eq!(One::MAX_IN_FLIGHT, 1);
    assert_eq!(R::MAX_IN_FLIGHT, 4);
}

#[test]
fn a_node_that_saw_the_last_round_cannot_campaign_and_counts_it() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    let last = Ballot::new(u32::MAX, NodeId(3));
    assert!(promised(prepare(&mut r, at(0), last)));
    r.handle_timeout(at(60_000));
    assert_eq!(r.promised(), Some(last));
    assert_eq!(r.counters().invalid, 1);
}

#[test]
fn a_candidate_behind_a_promiser_gives_up_and_catches_up_from_it() {
    for (decided, beyond) in [(5, false), (0, true)] {
        let mut r = R::new(config(2, None), at(0)).unwrap();
        r.handle_timeout(at(1_000));
        sync(&mut r, at(1_000));
        sent(&mut r);
        let ballot = r.promised().unwrap();
        let promise = Header::Promise {
            ballot,
            decided,
            beyond,
        };
        assert_eq!(r.handle_message(at(1_001), NodeId(3), &frame(&promise, &[])), None);
        sync(&mut r, at(1_001));
        assert!(!r.is_leader(), "decided {decided}, beyond {beyond}");
        assert!(sent(&mut r).contains(&Header::CatchUp { from: 0 }));
    }
    // An up-to-date promise makes it leader.
    let mut r = R::new(config(2, None), at(0)).unwrap();
    r.handle_timeout(at(1_000));
    sync(&mut r, at(1_000));
    let ballot = r.promised().unwrap();
    let promise = Header::Promise {
        ballot,
        decided: 0,
        beyond: false,
    };
    assert_eq!(r.handle_message(at(1_001), NodeId(3), &frame(&promise, &[])), None);
    assert!(r.is_leader());
    assert!(
        sync(&mut r, at(1_001)).is_empty(),
        "nothing to re-propose, nothing to write"
    );
}

/// The slots and values of every append `r` sends now.
fn appended(r: &mut R) -> Vec<(u64, Vec<Option<Bytes<8>>>)> {
    let mut out = vec![0u8; R::MAX_MESSAGE_SIZE];
    let mut appends = Vec::new();
    while let Some(t) = r.poll_transmit(&mut out) {
        let (header, rest) = decode_header::<Header>(&out[..t.len]).unwrap();
        if let Header::Append { first, .. } = header {
            let items = Items::<Option<Bytes<8>>>::new(rest).unwrap();
            appends.push((first, items.map(Result::unwrap).collect()));
        }
    }
    appends
}

fn entry(slot: u64, ballot: Ballot, value: &str) -> PromisedEntry<Bytes<8>> {
    PromisedEntry {
        slot,
        ballot,
        value: Some(v(value)),
    }
}

#[test]
fn a_new_leader_re_proposes_the_highest_ballot_value_reported_for_each_slot() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    r.handle_timeout(at(1_000));
    let ballot = r.promised().unwrap();
    let promise = Header::Promise {
        ballot,
        decided: 0,
        beyond: false,
    };
    // Its own promise is not durable yet: these two make the quorum.
    let low = [
        entry(0, Ballot::new(0, NodeId(1)), "a"),
        entry(1, Ballot::new(0, NodeId(1)), "c"),
    ];
    let high = [
        entry(0, Ballot::new(1, NodeId(3)), "b"),
        entry(9, Ballot::new(1, NodeId(3)), "x"),
    ];
    assert_eq!(r.handle_message(at(1_001), NodeId(1), &frame_of(&promise, &low)), None);
    assert_eq!(r.handle_message(at(1_001), NodeId(3), &frame_of(&promise, &high)), None);
    assert!(r.is_leader());
    assert_eq!(r.counters().invalid, 1, "slot 9 is beyond what it asked about");
    sync(&mut r, at(1_001));
    let appends = appended(&mut r);
    assert_eq!(appends[0], (0, vec![Some(v("b")), Some(v("c"))]), "{appends:?}");
    // Its own durable votes and one follower's decide them.
    accepted(&mut r, at(1_002), NodeId(1), ballot, 0, 2);
    assert_eq!(r.decided(), 2);
}

/// Hands the leader `r` an `Accepted` from `from`.
fn accepted(r: &mut R, now: Instant, from: NodeId, ballot: Ballot, first: u64, count: u32) {
    let header = Header::Accepted {
        ballot,
        first,
        count,
        stamp: 0,
    };
    let mut buf = [0u8; 64];
    assert_eq!(r.handle_message(now, from, encode(&header, &mut buf).unwrap()), None);
}

#[test]
fn a_candidate_with_decided_slots_places_reported_values_from_its_first_open_slot() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    assert_eq!(
        r.handle_message(at(0), NodeId(1), &frame(&Header::Learn { first: 0 }, &["a", "b"])),
        None
    );
    sync(&mut r, at(0));
    assert_eq!(r.decided(), 2);
    r.handle_timeout(at(1_000));
    sync(&mut r, at(1_000));
    sent(&mut r);
    let ballot = r.promised().unwrap();
    let promise = Header::Promise {
        ballot,
        decided: 2,
        beyond: false,
    };
    let reported = [
        entry(1, Ballot::new(0, NodeId(1)), "old"),
        entry(2, Ballot::new(0, NodeId(1)), "z"),
    ];
    assert_eq!(
        r.handle_message(at(1_001), NodeId(3), &frame_of(&promise, &reported)),
        None
    );
    assert!(r.is_leader());
    assert_eq!(r.counters().invalid, 1, "slot 1 is decided here already");
    sync(&mut r, at(1_001));
    let appends = appended(&mut r);
    assert_eq!(appends[0], (2, vec![Some(v("z"))]), "{appends:?}");
}

/// A candidate drops decided values offered while it campaigns (its
/// watermark is where its phase 1 started) and, once it wins, keeps its own
/// votes where they are newer than the reported ones.
#[test]
fn a_new_leader_keeps_its_own_newer_votes_over_reported_ones() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), Ballot::new(0, NodeId(1)), 0, 0, &["a", "o"]);
    append(&mut r, at(2), Ballot::new(1, NodeId(1)), 0, 2, &["p"]);
    sent(&mut r);
    r.handle_timeout(at(2_000));
    sync(&mut r, at(2_000));
    sent(&mut r);
    let ballot = r.promised().unwrap();
    assert!(ballot > Ballot::new(1, NodeId(1)));
    // Slot 0 is offered decided while the campaign runs: dropped.
    assert_eq!(
        r.handle_message(at(2_001), NodeId(1), &frame(&Header::Learn { first: 0 }, &["a"])),
        None
    );
    sync(&mut r, at(2_001));
    assert_eq!((r.decided(), r.counters().stale), (0, 1));
    let promise = Header::Promise {
        ballot,
        decided: 0,
        beyond: false,
    };
    let reported = [
        // An older vote for a value that was not chosen.
        entry(0, Ballot::new(0, NodeId(3)), "q"),
        // Newer than this node's vote at slot 1, older than its vote at 2.
        entry(1, Ballot::new(1, NodeId(1)), "r"),
        entry(2, Ballot::new(0, NodeId(3)), "s"),
    ];
    assert_eq!(
        r.handle_message(at(2_002), NodeId(3), &frame_of(&promise, &reported)),
        None
    );
    assert!(r.is_leader());
    sync(&mut r, at(2_002));
    let appends = appended(&mut r);
    assert_eq!(
        appends[0],
        (0, vec![Some(v("q")), Some(v("r")), Some(v("p"))]),
        "{appends:?}"
    );
}

#[test]
fn a_leader_counts_its_own_vote_only_once_that_record_is_durable() {
    let mut r = R::new(config(2, Some(2)), at(0)).unwrap();
    sync(&mut r, at(0));
    let ballot = r.promised().unwrap();
    let mut buf = vec![0u8; 512];
    let a = r.propose(at(1), v("a")).unwrap();
    let first = r.poll_persist(&mut buf).unwrap().seq;
    let b_id = r.propose(at(1), v("b")).unwrap();
    let second = r.poll_persist(&mut buf).unwrap().seq;
    assert_ne!(a, b_id, "every proposal has its own id");
    assert_ne!(first, second);
    r.persisted(at(1), first).unwrap();
    accepted(&mut r, at(2), NodeId(1), ballot, 0, 2);
    assert_eq!(r.decided(), 1, "slot 1 lacks the leader's durable vote");
    r.persisted(at(2), second).unwrap();
    assert_eq!(r.decided(), 2);
}

#[test]
fn many_proposals_in_one_record_all_get_the_leaders_vote() {
    type Wide = Replica<Bytes<8>, 3, 64>;
    let mut r = Wide::new(config(2, Some(2)), at(0)).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut flush = |r: &mut Wide| {
        while let Some(p) = r.poll_persist(&mut buf) {
            r.persisted(at(1), p.seq).unwrap();
        }
    };
    flush(&mut r);
    let ballot = r.promised().unwrap();
    for i in 0..20u8 {
        r.propose(at(1), Bytes::from_slice(&[i]).unwrap()).unwrap();
    }
    flush(&mut r);
    let header = Header::Accepted {
        ballot,
        first: 0,
        count: 20,
        stamp: 0,
    };
    let mut frame = [0u8; 64];
    assert_eq!(
        r.handle_message(at(2), NodeId(1), encode(&header, &mut frame).unwrap()),
        None
    );
    assert_eq!(r.decided(), 20);
}

#[test]
fn a_candidate_counts_its_own_promise_only_once_that_record_is_durable() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    let mut buf = vec![0u8; 512];
    let mut header = [0u8; 64];
    let prepare = Header::Prepare {
        ballot: Ballot::new(1, NodeId(3)),
        from: 0,
        until: 8,
    };
    assert_eq!(
        r.handle_message(at(0), NodeId(3), encode(&prepare, &mut header).unwrap()),
        None
    );
    let earlier = r.poll_persist(&mut buf).unwrap().seq;
    r.handle_timeout(at(2_000));
    let own = r.poll_persist(&mut buf).unwrap().seq;
    let ballot = r.promised().unwrap();
    assert_eq!(ballot, Ballot::new(2, NodeId(2)));
    let promise = Header::Promise {
        ballot,
        decided: 0,
        beyond: false,
    };
    assert_eq!(r.handle_message(at(2_001), NodeId(3), &frame(&promise, &[])), None);
    r.persisted(at(2_001), earlier).unwrap();
    assert!(!r.is_leader(), "its own promise is not durable yet");
    r.persisted(at(2_002), own).unwrap();
    assert!(r.is_leader());
}

type R5 = Replica<Bytes<8>, 5, 8>;

/// Node 2 of five, campaigning with its own promise durable; returns its
/// ballot.
fn candidate_of_five() -> (R5, Ballot) {
    let ids: Vec<NodeId> = (1..=5).map(NodeId).collect();
    let mut r = R5::new(Config::new(NodeId(2), &ids).unwrap(), at(0)).unwrap();
    r.handle_timeout(at(2_000));
    let mut buf = vec![0u8; 512];
    while let Some(p) = r.poll_persist(&mut buf) {
        r.persisted(at(2_000), p.seq).unwrap();
    }
    let ballot = r.promised().unwrap();
    (r, ballot)
}

fn nack(r: &mut R5, from: u8, ballot: Ballot, decided: u64) {
    let header = Header::Nack {
        ballot,
        promised: Some(Ballot::new(ballot.round + 1, NodeId(from))),
        decided,
    };
    let mut buf = [0u8; 64];
    assert_eq!(
        r.handle_message(at(2_001), NodeId(from), encode(&header, &mut buf).unwrap()),
        None
    );
}

fn promise5(r: &mut R5, from: u8, ballot: Ballot) {
    let promise = Header::Promise {
        ballot,
        decided: 0,
        beyond: false,
    };
    assert_eq!(r.handle_message(at(2_002), NodeId(from), &frame(&promise, &[])), None);
}

#[test]
fn a_candidate_gives_up_only_once_refusals_leave_no_quorum() {
    // Five nodes, quorum three: two refusals (and a stale one) leave a
    // quorum possible.
    let (mut r, ballot) = candidate_of_five();
    nack(&mut r, 1, ballot, 0);
    nack(&mut r, 3, ballot, 0);
    nack(&mut r, 4, Ballot::new(ballot.round - 1, NodeId(4)), 0);
    promise5(&mut r, 4, ballot);
    promise5(&mut r, 5, ballot);
    assert!(r.is_leader());

    // Three refusals do not: later promises are ignored.
    let (mut r, ballot) = candidate_of_five();
    nack(&mut r, 1, ballot, 0);
    nack(&mut r, 3, ballot, 0);
    nack(&mut r, 4, ballot, 0);
    promise5(&mut r, 4, ballot);
    promise5(&mut r, 5, ballot);
    assert!(!r.is_leader());
}

#[test]
fn a_candidate_refused_by_a_node_that_decided_more_catches_up_from_it() {
    let (mut r, ballot) = candidate_of_five();
    nack(&mut r, 1, ballot, 5);
    let mut out = vec![0u8; R5::MAX_MESSAGE_SIZE];
    let mut catch_up = false;
    while let Some(t) = r.poll_transmit(&mut out) {
        let (header, _) = decode_header::<Header>(&out[..t.len]).unwrap();
        catch_up |= header == Header::CatchUp { from: 0 } && t.to.contains(NodeId(1));
    }
    assert!(catch_up);
    promise5(&mut r, 3, ballot);
    promise5(&mut r, 4, ballot);
    assert!(!r.is_leader(), "it gave up the campaign");
}

#[test]
fn a_leader_resends_undecided_values_after_the_retransmission_timeout_only() {
    let mut r = R::new(config(2, Some(2)), at(0)).unwrap();
    sync(&mut r, at(0));
    r.propose(at(10), v("a")).unwrap();
    sync(&mut r, at(10));
    let first = appended(&mut r);
    assert!(first.iter().any(|(_, values)| values == &[Some(v("a"))]), "{first:?}");
    r.handle_timeout(at(60));
    let heartbeat = appended(&mut r);
    assert!(
        !heartbeat.is_empty() && heartbeat.iter().all(|(_, v)| v.is_empty()),
        "{heartbeat:?}"
    );
    // The clock starts with the proposal at 10 ms (the pipeline was idle).
    r.handle_timeout(at(109));
    assert!(appended(&mut r).is_empty());
    r.handle_timeout(at(110));
    let resent = appended(&mut r);
    assert!(
        resent
            .iter()
            .any(|(first, values)| *first == 0 && values == &[Some(v("a"))]),
        "{resent:?}"
    );
}

/// Node 2 of three leading with ballot (0, 2), its promise durable.
fn leader() -> (R, Ballot) {
    let mut r = R::new(config(2, Some(2)), at(0)).unwrap();
    sync(&mut r, at(0));
    let ballot = r.promised().unwrap();
    (r, ballot)
}

/// An `Accepted` from `from` echoing the stamp `stamp_ms`.
fn ack(r: &mut R, now: Instant, from: u8, ballot: Ballot, stamp_ms: u64) {
    let header = Header::Accepted {
        ballot,
        first: 0,
        count: 0,
        stamp: stamp_ms * 1_000,
    };
    let mut buf = [0u8; 64];
    assert_eq!(
        r.handle_message(now, NodeId(from), encode(&header, &mut buf).unwrap()),
        None
    );
}

#[test]
fn a_leader_refused_for_a_higher_promise_while_it_hears_a_quorum_runs_phase_1_above_it() {
    let (mut r, ballot) = leader();
    ack(&mut r, at(10), 1, ballot, 10);
    let higher = Ballot::new(3, NodeId(3));
    let header = Header::Nack {
        ballot,
        promised: Some(higher),
        decided: 0,
    };
    let mut buf = [0u8; 64];
    assert_eq!(
        r.handle_message(at(20), NodeId(3), encode(&header, &mut buf).unwrap()),
        None
    );
    assert!(!r.is_leader());
    assert!(r.promised().unwrap() > higher, "campaigns above the refusal");
}

#[test]
fn a_leader_steps_down_once_no_quorum_echoed_within_an_election_timeout() {
    let (mut r, ballot) = leader();
    ack(&mut r, at(0), 1, ballot, 0);
    r.handle_timeout(at(299));
    assert!(r.is_leader());
    r.handle_timeout(at(300));
    assert!(!r.is_leader(), "node 1's echo of time 0 is stale at 300 ms");
}

#[test]
fn a_leader_with_undecided_slots_wakes_for_the_retransmission() {
    let (mut r, ballot) = leader();
    r.propose(at(10), v("a")).unwrap();
    sync(&mut r, at(10));
    sent(&mut r);
    r.handle_timeout(at(80));
    sent(&mut r);
    assert_eq!(r.poll_timeout(), at(110), "before the heartbeat at 130 ms");
    // Once decided, the new watermark goes out within an eighth of a
    // heartbeat interval.
    accepted(&mut r, at(90), NodeId(1), ballot, 0, 1);
    assert_eq!(r.decided(), 1);
    assert_eq!(r.poll_timeout(), at(90) + Duration::from_micros(6_250));
}

#[test]
fn a_follower_decides_exactly_up_to_the_commit_of_the_ballot_it_accepted() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    append(&mut r, at(1), ballot, 1, 0, &["a", "b"]);
    assert_eq!(r.decided(), 1, "slot 1 is accepted, not committed");
    // A new leader's commit says nothing of values accepted under another
    // ballot.
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    append(&mut r, at(1), ballot, 0, 0, &["a"]);
    append(&mut r, at(2), Ballot::new(1, NodeId(3)), 1, 1, &[]);
    assert_eq!(r.decided(), 0);
}

#[test]
fn a_follower_with_a_gap_asks_for_it_once_per_retransmission_timeout() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let ballot = Ballot::new(0, NodeId(1));
    let catch_ups = |r: &mut R, now: u64| {
        append(r, at(now), ballot, 3, 2, &[]);
        sent(r).iter().filter(|h| **h == Header::CatchUp { from: 0 }).count()
    };
    assert_eq!(catch_ups(&mut r, 10), 1);
    assert_eq!(catch_ups(&mut r, 60), 0);
    assert_eq!(catch_ups(&mut r, 109), 0);
    assert_eq!(catch_ups(&mut r, 110), 1);
}

#[test]
fn a_learn_run_that_starts_below_the_watermark_extends_it() {
    let mut r = R::new(config(2, Some(1)), at(0)).unwrap();
    let learn = Header::Learn { first: 0 };
    assert_eq!(r.handle_message(at(1), NodeId(1), &frame(&learn, &["a"])), None);
    assert_eq!(r.decided(), 1);
    assert_eq!(r.handle_message(at(2), NodeId(1), &frame(&learn, &["a", "b"])), None);
    assert_eq!(r.decided(), 2);
    // A run that starts beyond it leaves a gap: ignored.
    let later = Header::Learn { first: 3 };
    assert_eq!(r.handle_message(at(3), NodeId(1), &frame(&later, &["d"])), None);
    assert_eq!(r.decided(), 2);
}
