//! Leadership: round 0 at first boot, when a node campaigns, how a
//! candidate counts promises and refusals, what a new leader re-proposes
//! from the promises, and when a leader gives way to a new phase 1.

use paxos_core::codec::encode;
use paxos_core::replica::wire::{decode_header, Header, PromisedEntry};
use paxos_core::replica::{Config, Event, Replica};
use paxos_core::time::Instant;
use paxos_core::{Ballot, Bytes, NodeId};

mod common;
use common::*;

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

/// A candidate's prepare waits for its promise to be durable; if the
/// campaign ended (another leader appeared) or was replaced by a newer
/// one meanwhile, the stale prepare is not sent.
#[test]
fn a_prepare_of_an_abandoned_campaign_is_not_sent() {
    let prepares = |r: &mut R| {
        sent(r)
            .into_iter()
            .filter_map(|h| match h {
                Header::Prepare { ballot, .. } => Some(ballot),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // Ended: a leader with a higher ballot appends before the sync.
    let mut r = R::new(config(2, None), at(0)).unwrap();
    r.handle_timeout(at(1_000));
    append(&mut r, at(1_001), Ballot::new(5, NodeId(3)), 0, 0, &[]);
    sync(&mut r, at(1_001));
    assert_eq!(prepares(&mut r), vec![]);
    // Replaced: a second campaign starts before the first one's sync.
    let mut r = R::new(config(2, None), at(0)).unwrap();
    r.handle_timeout(at(1_000));
    r.handle_timeout(at(2_000));
    sync(&mut r, at(2_000));
    let sent = prepares(&mut r);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(Some(sent[0]), r.promised());
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
fn a_candidate_counts_its_own_promise_only_once_that_record_is_durable() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    let mut buf = vec![0u8; 512];
    let mut header = [0u8; 64];
    let prepare = Header::Prepare {
        ballot: Ballot::new(1, NodeId(3)),
        from: 0,
        until: 8,
    };
    r.handle_message(at(0), NodeId(3), encode(&prepare, &mut header).unwrap())
        .into_result()
        .unwrap();
    let earlier = r.poll_persist(&mut buf).unwrap().seq;
    r.handle_timeout(at(2_000));
    let own = r.poll_persist(&mut buf).unwrap().seq;
    let ballot = r.promised().unwrap();
    assert_eq!(ballot, Ballot::new(2, NodeId(2)));
    promise(&mut r, at(2_001), NodeId(3), ballot, 0, &[]);
    r.persisted(at(2_001), earlier).unwrap();
    assert!(!r.is_leader(), "its own promise is not durable yet");
    r.persisted(at(2_002), own).unwrap();
    assert!(r.is_leader());
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
            first: 0,
            complete: true,
        };
        r.handle_message(at(1_001), NodeId(3), &frame(&promise, &[]))
            .into_result()
            .unwrap();
        sync(&mut r, at(1_001));
        assert!(!r.is_leader(), "decided {decided}, beyond {beyond}");
        assert!(sent(&mut r).contains(&Header::CatchUp { from: 0 }));
    }
    // An up-to-date promise makes it leader.
    let mut r = R::new(config(2, None), at(0)).unwrap();
    r.handle_timeout(at(1_000));
    sync(&mut r, at(1_000));
    let ballot = r.promised().unwrap();
    promise(&mut r, at(1_001), NodeId(3), ballot, 0, &[]);
    assert!(r.is_leader());
    assert!(
        sync(&mut r, at(1_001)).is_empty(),
        "nothing to re-propose, nothing to write"
    );
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
    r.handle_message(at(2_001), NodeId(from), encode(&header, &mut buf).unwrap())
        .into_result()
        .unwrap();
}

fn promise5(r: &mut R5, from: u8, ballot: Ballot) {
    promise(r, at(2_002), NodeId(from), ballot, 0, &[]);
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
    // Its own promise is not durable yet: these two make the quorum.
    let low = [
        entry(0, Ballot::new(0, NodeId(1)), "a"),
        entry(1, Ballot::new(0, NodeId(1)), "c"),
    ];
    let high = [
        entry(0, Ballot::new(1, NodeId(3)), "b"),
        entry(9, Ballot::new(1, NodeId(3)), "x"),
    ];
    promise(&mut r, at(1_001), NodeId(1), ballot, 0, &low);
    promise(&mut r, at(1_001), NodeId(3), ballot, 0, &high);
    assert!(r.is_leader());
    assert_eq!(r.counters().invalid, 1, "slot 9 is beyond what it asked about");
    sync(&mut r, at(1_001));
    let appends = appended(&mut r);
    assert_eq!(appends[0], (0, vec![Some(v("b")), Some(v("c"))]), "{appends:?}");
    // Its own durable votes and one follower's decide them.
    accepted(&mut r, at(1_002), NodeId(1), ballot, 0, 2);
    assert_eq!(r.decided(), 2);
}

#[test]
fn a_candidate_with_decided_slots_places_reported_values_from_its_first_open_slot() {
    let mut r = R::new(config(2, None), at(0)).unwrap();
    r.handle_message(at(0), NodeId(1), &frame(&Header::Learn { first: 0 }, &["a", "b"]))
        .into_result()
        .unwrap();
    sync(&mut r, at(0));
    assert_eq!(r.decided(), 2);
    r.handle_timeout(at(1_000));
    sync(&mut r, at(1_000));
    sent(&mut r);
    let ballot = r.promised().unwrap();
    let reported = [
        entry(1, Ballot::new(0, NodeId(1)), "old"),
        entry(2, Ballot::new(0, NodeId(1)), "z"),
    ];
    promise(&mut r, at(1_001), NodeId(3), ballot, 2, &reported);
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
    append_synced(&mut r, at(1), Ballot::new(0, NodeId(1)), 0, 0, &["a", "o"]);
    append_synced(&mut r, at(2), Ballot::new(1, NodeId(1)), 0, 2, &["p"]);
    sent(&mut r);
    r.handle_timeout(at(2_000));
    sync(&mut r, at(2_000));
    sent(&mut r);
    let ballot = r.promised().unwrap();
    assert!(ballot > Ballot::new(1, NodeId(1)));
    // Slot 0 is offered decided while the campaign runs: dropped.
    r.handle_message(at(2_001), NodeId(1), &frame(&Header::Learn { first: 0 }, &["a"]))
        .into_result()
        .unwrap();
    sync(&mut r, at(2_001));
    assert_eq!((r.decided(), r.counters().stale), (0, 1));
    let reported = [
        // An older vote for a value that was not chosen.
        entry(0, Ballot::new(0, NodeId(3)), "q"),
        // Newer than this node's vote at slot 1, older than its vote at 2.
        entry(1, Ballot::new(1, NodeId(1)), "r"),
        entry(2, Ballot::new(0, NodeId(3)), "s"),
    ];
    promise(&mut r, at(2_002), NodeId(3), ballot, 0, &reported);
    assert!(r.is_leader());
    sync(&mut r, at(2_002));
    let appends = appended(&mut r);
    assert_eq!(
        appends[0],
        (0, vec![Some(v("q")), Some(v("r")), Some(v("p"))]),
        "{appends:?}"
    );
}

/// An `Accepted` from `from` echoing the stamp `stamp_ms`.
fn ack(r: &mut R, now: Instant, from: u8, ballot: Ballot, stamp_ms: u64) {
    accepted_stamped(r, now, NodeId(from), ballot, 0, 0, stamp_ms * 1_000);
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
    r.handle_message(at(20), NodeId(3), encode(&header, &mut buf).unwrap())
        .into_result()
        .unwrap();
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
