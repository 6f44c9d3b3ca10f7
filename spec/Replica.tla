------------------------------- MODULE Replica -------------------------------
(***************************************************************************)
(* The Multi-Paxos replica of paxos-core/src/replica, as implemented, with *)
(* the fixed rules of issue #12 (A, C, D).  Each known fault can be        *)
(* switched back on through the constant Bugs, so that TLC shows it bites. *)
(*                                                                         *)
(* One node = volatile state (role, promise, cells, watermarks, the queue *)
(* of records not yet durable with the replies waiting on them) plus its   *)
(* durable state `disk`, which is what replay (persist.rs) rebuilds from   *)
(* the records made durable so far, folded in order.  A crash replaces the *)
(* volatile state by the replay of `disk`; a wipe empties `disk` first.   *)
(*                                                                         *)
(* The network is the set `msgs`: a message is never removed, so every     *)
(* message may be delivered any number of times, late, or never.           *)
(*                                                                         *)
(* Ballots are the integers 0..MaxBallot, in their order; ballot 0 is the  *)
(* round-0 ballot of InitLeader; a ballot >= 1 belongs to the first node   *)
(* that campaigns with it (`owner`).  Any assignment of owners to an       *)
(* increasing sequence of ballots is realised by the code's (round, node)  *)
(* ballots, so this loses no behaviour and keeps the non-initial nodes     *)
(* symmetric.  docs/spec.md maps every action to the code.                 *)
(***************************************************************************)
EXTENDS Integers, Sequences, FiniteSets, TLC

CONSTANTS
    Nodes,        \* the members
    Values,       \* values clients propose
    InitLeader,   \* the configured initial leader (round 0)
    NoOp,         \* the value None: a no-op filling a gap
    Nil,          \* no node
    MaxBallot,    \* ballots are 0..MaxBallot
    NSlots,       \* slots are 0..NSlots-1
    W,            \* the log window (W >= NSlots: the window never slides)
    MaxCrashes,   \* crash-restarts (durable state kept), in all
    MaxWipes,     \* crash-restarts with storage lost, in all
    MaxSnapshots, \* snapshot installations, in all
    PersistGrain, \* "record" or "reply": see Persist
    EagerSync,    \* TRUE: an acceptor syncs right after each append (OnAppend)
    Bugs          \* the faults switched back on (see BugNames)

BugNames == {"LeaderLearns",             \* fault A
             "UnrecordedLearnWatermark", \* fault C
             "AmnesiacVotes",            \* fault D
             "AmnesiaNotRecorded",       \* fix D taken literally (see docs)
             "AcceptBelowPromise",       \* classic: accept under a lower ballot
             "RevealBeforeDurable",      \* replies leave before their records
             "SnapshotDropsPendingVotes", \* fault E: see InstallSnapshot
             "VoteLeavesBeforeSnapshot", \* fault E's other half (fault H)
             "CountPartialPromise"}       \* a promise counted on its first part

ASSUME Bugs \subseteq BugNames
ASSUME InitLeader \in Nodes /\ NoOp \notin Values /\ Nil \notin Nodes
ASSUME PersistGrain \in {"record", "reply"} /\ EagerSync \in BOOLEAN
ASSUME W >= NSlots /\ NSlots >= 1 /\ MaxBallot >= 1

Bug(x) == x \in Bugs

Ballots  == 0..MaxBallot
Slots    == 0..(NSlots - 1)
Vals     == Values \cup {NoOp}
NoBallot == -1   \* no promise (None); the ballot of a learned cell (None)
NoCell   == -2   \* the ballot field of an empty cell
Empty    == [bal |-> NoCell, val |-> NoOp]
IsVote(c)    == c.bal >= 0
IsLearned(c) == c.bal = NoBallot
Max(a, b) == IF a > b THEN a ELSE b
Min(a, b) == IF a < b THEN a ELSE b
SetMax(S) == CHOOSE x \in S : \A y \in S : y <= x
SetMin(S) == CHOOSE x \in S : \A y \in S : x <= y

QuorumSize == (Cardinality(Nodes) \div 2) + 1
Quorums    == {Q \in SUBSET Nodes : Cardinality(Q) = QuorumSize}
\* Replica::MAX_IN_FLIGHT: half the window.
MaxInFlight == IF W > 1 THEN W \div 2 ELSE 1

EmptyDisk == [prom |-> NoBallot, cells |-> [s \in Slots |-> Empty],
              dec |-> 0, start |-> 0, learner |-> FALSE]

VARIABLES
    role,      \* "F"ollower, "C"andidate, "L"eader, "A"mnesiac learner
    promised,  \* volatile promise (NoBallot = None)
    cell,      \* cell[n][s]: [bal, val]; bal NoCell: empty, NoBallot: learned
    decided,   \* every slot below is decided
    start,     \* slots below left memory (snapshot)
    bal,       \* the campaign's / lead's ballot (NoBallot for a follower)
    from,      \* the campaign's from (its decided watermark at start)
    next,      \* the leader's next_slot
    pend,      \* records queued, not yet durable, with the replies waiting
               \* on them ("Send" markers): the persists and outbox queues
    disk,      \* the replayed durable state
    owner,     \* owner[b]: the node campaigning with ballot b
    msgs,      \* every message ever sent
    decidedAt, \* ghost: decidedAt[s] = values any node ever held decided
    crashes, wipes, snaps  \* counters

vars == <<role, promised, cell, decided, start, bal, from, next, pend, disk,
          owner, msgs, decidedAt, crashes, wipes, snaps>>

-----------------------------------------------------------------------------
(* Records (persist.rs PersistItem) and the queue.                         *)

PromisedRec(b)      == [t |-> "Promised", b |-> b]
EntriesRec(lo, hi)  == [t |-> "Entries", lo |-> lo, hi |-> hi]
CommittedRec(s)     == [t |-> "Committed", s |-> s]
SnapshotRec(s)      == [t |-> "Snapshot", s |-> s]
LearnerRec          == [t |-> "Learner"]  \* fix D as modelled: see docs
Marker(d)           == [t |-> "Send", d |-> d]

\* queue_persist merges a record into the newest queued record of its kind.
Mergeable(x, r) ==
    \/ x.t = "Entries" /\ r.t = "Entries" /\ r.lo <= x.hi /\ r.hi >= x.lo
    \/ x.t = "Committed" /\ r.t = "Committed"
    \/ x.t = "Promised" /\ r.t = "Promised"
Merge(x, r) ==
    CASE x.t = "Entries"   -> EntriesRec(Min(x.lo, r.lo), Max(x.hi, r.hi))
      [] x.t = "Committed" -> CommittedRec(Max(x.s, r.s))
      [] x.t = "Promised"  -> PromisedRec(Max(x.b, r.b))
LastRec(q) == LET I == {i \in 1..Len(q) : q[i].t # "Send"}
              IN IF I = {} THEN 0 ELSE SetMax(I)
QueueRec(q, r) ==
    LET i == LastRec(q)
    IN IF i > 0 /\ Mergeable(q[i], r) THEN [q EXCEPT ![i] = Merge(q[i], r)]
                                      ELSE Append(q, r)

\* A reply waits for every record queued before it (needs = issued).
\* With nothing queued it leaves at once.
Waits(q)       == q # <<>> /\ ~Bug("RevealBeforeDurable")
\* A reply already queued is not queued twice: the network is a set, so a
\* second copy would only send the same message again.
QueueSend(q, d) == IF Waits(q) /\ \A i \in 1..Len(q) : q[i] # Marker(d)
                   THEN Append(q, Marker(d)) ELSE q

(* A promise leaves in parts (transmit.rs encode_pending, values being     *)
(* handles to payloads of any size): the answer to Prepare(b, from, until) *)
(* is a run of parts Promise{b, dec, beyond, first, end}, the first from  *)
(* `from`, each next one at the previous `end`, the last ending at        *)
(* `until`; a part carries the acceptor's votes below b in first..end-1.  *)
(* The spec emits the finest split: one part per slot of from..until that *)
(* exists, the last of them also answering for the rest of the range (no  *)
(* cells there: a part of its own would carry nothing but `dec` and       *)
(* `beyond`, which the last slot's part encoded at the same instant       *)
(* carries too), or one part for the whole range when none of its slots   *)
(* exists.  Any coarser split the code makes is a run of these encoded at *)
(* one instant, and the candidate's handling of a coarse part is that of  *)
(* its fine parts taken together (see WinWith), so this loses no          *)
(* behaviour.  (The code's part carries a `complete` flag rather than     *)
(* `end`: a part that is not the last answers up to its last entry, where *)
(* the next part starts.)                                                  *)
PartRanges(f, u) ==
    LET last == Min(u, NSlots) - 1   \* the range's last slot that exists
    IN IF f > last THEN {<<f, u>>}
       ELSE {<<s, s + 1>> : s \in f..(last - 1)} \cup {<<last, u>>}

PromisePart(d, r, cl, dc) ==
    [type  |-> "Promise", src |-> d.src, dst |-> d.dst, bal |-> d.bal,
     dec   |-> dc,
     beyond |-> \E s \in Slots : s >= d.until /\ IsVote(cl[s]),
     first |-> r[1], end |-> r[2],
     ent   |-> [s \in Slots |->
                 IF r[1] <= s /\ s < r[2] /\ IsVote(cl[s]) /\ cl[s].bal < d.bal
                 THEN cl[s] ELSE Empty]]

\* Every part is encoded when it leaves, under the rule of the whole
\* promise: a part whose ballot is no longer the promise is dropped
\* (stale).  So is one encoded after this acceptor voted under that
\* ballot: the candidate already won, and on_promise ignores promises
\* unless their node is a candidate of that ballot (it never is again):
\* the message could have no effect.
PromiseParts(d, pr, cl, dc) ==
    IF pr # d.bal \/ \E s \in Slots : cl[s].bal >= d.bal THEN {}
    ELSE {PromisePart(d, r, cl, dc) : r \in PartRanges(d.from, d.until)}

\* A queued reply is encoded when it leaves (transmit.rs encode_pending).
Encode(d, rl, pr, cl, dc, bl) ==
    CASE d.type = "Prepare" ->
            IF rl = "C" /\ bl = d.bal THEN {d} ELSE {}
      [] d.type = "PromiseD" -> PromiseParts(d, pr, cl, dc)
      [] OTHER -> {d}
\* Messages a handler sends now (queue was empty): encoded from `st`.
SendNow(q, d, rl, pr, cl, dc, bl) ==
    IF Waits(q) THEN {} ELSE Encode(d, rl, pr, cl, dc, bl)

RECURSIVE LeadingSends(_, _)
LeadingSends(q, i) == IF i <= Len(q) /\ q[i].t = "Send" THEN LeadingSends(q, i + 1)
                                                        ELSE i - 1

-----------------------------------------------------------------------------
(* Replay (persist.rs replay, replay_values), one record at a time. An     *)
(* Entries record is encoded from the cells when written (poll_persist).   *)

RECURSIVE ApplyEntries(_, _, _, _)
ApplyEntries(d, c, s, hi) ==
    IF s >= hi THEN d ELSE
    LET x  == c[s]
        d1 == IF x.bal = NoCell THEN d   \* left memory: nothing written
              ELSE [d EXCEPT !.cells[s] = x,
                             !.prom = IF IsVote(x) THEN Max(@, x.bal) ELSE @,
                             \* a Learned run contiguous with the watermark
                             !.dec  = IF IsLearned(x) /\ @ = s THEN s + 1 ELSE @]
    IN ApplyEntries(d1, c, s + 1, hi)

ApplyRec(d, r, c) ==
    CASE r.t = "Promised"  -> [d EXCEPT !.prom = Max(@, r.b)]
      [] r.t = "Committed" -> [d EXCEPT !.dec = Max(@, r.s)]
      [] r.t = "Snapshot"  ->
            IF r.s <= d.start THEN d
            ELSE [d EXCEPT !.dec = Max(@, r.s), !.start = r.s,
                           !.cells = [s \in Slots |-> IF s < r.s THEN Empty ELSE @[s]]]
      [] r.t = "Learner"   -> [d EXCEPT !.learner = TRUE]
      [] r.t = "Entries"   -> ApplyEntries(d, c, r.lo, r.hi)

\* A sync of the whole queue (campaign and promise, see Campaign): the
\* durable state after every record of q, and the replies q released.
RECURSIVE DiskAfter(_, _, _)
DiskAfter(d, q, c) ==
    IF q = <<>> THEN d
    ELSE DiskAfter(IF Head(q).t = "Send" THEN d ELSE ApplyRec(d, Head(q), c), Tail(q), c)
SendsIn(q, rl, pr, cl, dc, bl) ==
    UNION {Encode(q[i].d, rl, pr, cl, dc, bl) : i \in {j \in 1..Len(q) : q[j].t = "Send"}}

NoRecords(d) == d.prom = NoBallot /\ d.start = 0 /\ ~d.learner
                /\ \A s \in Slots : d.cells[s] = Empty

-----------------------------------------------------------------------------
(* Helpers shared by the actions.                                          *)

\* advance_decided: every slot below commit holding a vote under b, up to
\* the first that does not.
RECURSIVE AdvDec(_, _, _, _)
AdvDec(c, d, b, commit) ==
    IF d < commit /\ d < NSlots /\ c[d].bal = b THEN AdvDec(c, d + 1, b, commit)
                                              ELSE d

\* The values of s..hi-1 while cells exist and pass keep (put_values).
RECURSIVE ValuesFrom(_, _, _, _, _)
ValuesFrom(c, s, hi, b, dec) ==
    IF s < hi /\ c[s].bal # NoCell /\ (c[s].bal = b \/ s < dec)
    THEN <<c[s].val>> \o ValuesFrom(c, s + 1, hi, b, dec)
    ELSE <<>>

Voted(a, s, b) ==
    \E m \in msgs : m.type = "Accepted" /\ m.src = a /\ m.bal = b
                    /\ m.first <= s /\ s < m.first + m.count
\* A quorum accepted (s, b): by Accepted messages, or the owner's own vote
\* once its record is durable (leader.rs on_durable, self_votes).
ChosenAt(s, b, ldr) ==
    \E Q \in Quorums : \A a \in Q :
        Voted(a, s, b) \/ (a = ldr /\ disk[ldr].cells[s].bal = b)

\* decidedAt records, after each step, the value of every cell any node
\* holds decided.
Ghost ==
    decidedAt' = [s \in Slots |-> decidedAt[s] \cup
                    {cell'[n][s].val : n \in {x \in Nodes : start'[x] <= s /\ s < decided'[x]}}]

\* A step whose only effect is to send m.  Sending a message already sent
\* changes nothing (the network is a set): that stuttering step is left
\* out, which spares TLC generating it again and again.
Emit(m) == m \notin msgs /\ msgs' = msgs \cup {m}

Follow(n) == /\ role' = [role EXCEPT ![n] = "F"]
             /\ bal' = [bal EXCEPT ![n] = NoBallot]
             /\ from' = [from EXCEPT ![n] = 0]
             /\ next' = [next EXCEPT ![n] = 0]

-----------------------------------------------------------------------------
Init ==
    \* Replica::new for every member; the initial leader queues its
    \* round-0 promise and leads without phase 1 (start_fresh).
    /\ role     = [n \in Nodes |-> IF n = InitLeader THEN "L" ELSE "F"]
    /\ promised = [n \in Nodes |-> IF n = InitLeader THEN 0 ELSE NoBallot]
    /\ cell     = [n \in Nodes |-> [s \in Slots |-> Empty]]
    /\ decided  = [n \in Nodes |-> 0]
    /\ start    = [n \in Nodes |-> 0]
    /\ bal      = [n \in Nodes |-> IF n = InitLeader THEN 0 ELSE NoBallot]
    /\ from     = [n \in Nodes |-> 0]
    /\ next     = [n \in Nodes |-> 0]
    /\ pend     = [n \in Nodes |-> IF n = InitLeader THEN <<PromisedRec(0)>> ELSE <<>>]
    /\ disk     = [n \in Nodes |-> EmptyDisk]
    /\ owner    = [b \in Ballots |-> IF b = 0 THEN InitLeader ELSE Nil]
    /\ msgs     = {}
    /\ decidedAt = [s \in Slots |-> {}]
    /\ crashes = 0 /\ wipes = 0 /\ snaps = 0

-----------------------------------------------------------------------------
(* The driver makes queued records durable, oldest first (poll_persist + *)
(* persisted), then releases the replies that waited on them              *)
(* (poll_transmit).  PersistGrain "record": one record per step, so any   *)
(* prefix of the queue may be durable at a crash.  "reply": every record  *)
(* up to the next waiting reply (or the whole queue) in one step: the     *)
(* durable prefixes are those at which a reply leaves.                    *)
RECURSIVE ApplyRecs(_, _, _, _)
ApplyRecs(d, q, k, c) == IF k = 0 THEN d
                         ELSE ApplyRecs(ApplyRec(d, Head(q), c), Tail(q), k - 1, c)

PersistCount(q) ==
    IF PersistGrain = "record" THEN 1
    ELSE LET I == {i \in 1..Len(q) : q[i].t = "Send"}
         IN IF I = {} THEN Len(q) ELSE SetMin(I) - 1

Persist(n) ==
    /\ pend[n] # <<>>
    /\ LET c == PersistCount(pend[n])
           q == SubSeq(pend[n], c + 1, Len(pend[n]))
           k == LeadingSends(q, 1)
       IN /\ disk' = [disk EXCEPT ![n] = ApplyRecs(@, pend[n], c, cell[n])]
          /\ pend' = [pend EXCEPT ![n] = SubSeq(q, k + 1, Len(q))]
          /\ msgs' = msgs \cup UNION {Encode(q[i].d, role[n], promised[n], cell[n],
                                            decided[n], bal[n]) : i \in 1..k}
    /\ UNCHANGED <<decidedAt, role, promised, cell, decided, start, bal, from, next, owner, crashes, wipes, snaps>>

(* leader.rs start_campaign (on an election timeout, or a leader's         *)
(* re-campaign after a NACK: step_down then start_campaign).  Any ballot   *)
(* above the promise that no other node uses (the code takes the next one  *)
(* above max(promised, seen)).  The Prepare waits for the self-promise to  *)
(* be durable; the model syncs the queue in the same step (a crash before  *)
(* that sync only loses a promise nothing revealed).                       *)
Campaign(n, b) ==
    /\ role[n] \in {"F", "C", "L"}
    /\ b >= 1 /\ b > promised[n] /\ owner[b] \in {Nil, n}
    /\ LET d == [type |-> "Prepare", src |-> n, bal |-> b,
                 from |-> decided[n], until |-> start[n] + W]
           q == QueueRec(pend[n], PromisedRec(b))
       IN /\ disk' = [disk EXCEPT ![n] = DiskAfter(@, q, cell[n])]
          /\ pend' = [pend EXCEPT ![n] = <<>>]
          /\ msgs' = msgs \cup SendsIn(q, "C", b, cell[n], decided[n], b) \cup {d}
    /\ promised' = [promised EXCEPT ![n] = b]
    /\ owner' = [owner EXCEPT ![b] = n]
    /\ role' = [role EXCEPT ![n] = "C"]
    /\ bal' = [bal EXCEPT ![n] = b]
    /\ from' = [from EXCEPT ![n] = decided[n]]
    /\ next' = [next EXCEPT ![n] = 0]
    /\ UNCHANGED <<decidedAt, cell, decided, start, crashes, wipes, snaps>>

\* acceptor.rs refuse: a NACK naming the promise and watermark as of now.
Refuse(n, m) ==
    LET d == [type |-> "Nack", src |-> n, dst |-> m.src, bal |-> m.bal,
              prom |-> promised[n], dec |-> decided[n]]
    IN /\ pend' = [pend EXCEPT ![n] = QueueSend(@, d)]
       /\ msgs' = msgs \cup SendNow(pend[n], d, role[n], promised[n], cell[n], decided[n], bal[n])
       /\ UNCHANGED <<decidedAt, role, promised, cell, decided, start, bal, from, next, disk,
                      owner, crashes, wipes, snaps>>

(* acceptor.rs on_prepare.  A prepare below the promise is refused (NACK  *)
(* naming the promise and watermark).  A leader refuses, unless it has     *)
(* stepped down meanwhile (leader_tick: cut off from a quorum), which the  *)
(* model folds into the promise; the lease/recent-leader refusal is not    *)
(* modelled (it only refuses more).                                         *)
RefusePrepare(n, m) ==
    /\ m.type = "Prepare" /\ m.src # n /\ role[n] # "A"
    /\ m.bal < promised[n] \/ (role[n] = "L" /\ m.bal # promised[n])
    \* Only a NACK from a node ahead of the candidate is sent: any other
    \* NACK only counts towards a quorum of NACKs, on which the candidate
    \* abandons; not winning is always possible in the model anyway.
    /\ decided[n] > m.from
    /\ Refuse(n, m)

\* The answer of n to Prepare m, queued (Pending::Promise).
PromiseD(n, m) == [type |-> "PromiseD", src |-> n, dst |-> m.src, bal |-> m.bal,
                   from |-> m.from, until |-> m.until]

PromisePrepare(n, m) ==
    /\ m.type = "Prepare" /\ m.src # n /\ role[n] # "A"
    /\ m.bal >= promised[n]
    /\ LET b == m.bal
           renewal == b = promised[n]
           q  == IF renewal THEN pend[n] ELSE QueueRec(pend[n], PromisedRec(b))
           rl == IF renewal THEN role[n] ELSE "F"
           bl == IF renewal THEN bal[n] ELSE NoBallot
           d  == PromiseD(n, m)
       IN \* the promise leaves once its record is durable: synced at once
          /\ disk' = [disk EXCEPT ![n] = DiskAfter(@, q, cell[n])]
          /\ pend' = [pend EXCEPT ![n] = <<>>]
          /\ msgs' = msgs \cup SendsIn(Append(q, Marker(d)), rl, b, cell[n], decided[n], bl)
          /\ promised' = [promised EXCEPT ![n] = b]
          /\ IF renewal THEN UNCHANGED <<role, bal, from, next>> ELSE Follow(n)
          /\ UNCHANGED <<decidedAt, cell, decided, start, owner,
                         crashes, wipes, snaps>>

(* The parts of one answer may leave at different times: the code queues  *)
(* the rest of an answer again (Pending::Promise from the next slot) and  *)
(* encodes it when it leaves.  The spec lets any part of an answer        *)
(* already begun be encoded again at any later time, from the acceptor's  *)
(* state then and under the same rule (its promise still the ballot, no   *)
(* vote under it), without the sync a renewed PromisePrepare makes.  With *)
(* the candidate's freedom to combine parts (WinWith), parts of one       *)
(* answer encoded at different times and parts of different answers to   *)
(* the same ballot are all explored.                                      *)
PromiseLatePart(n, m) ==
    /\ m.type = "Prepare" /\ m.src # n /\ promised[n] = m.bal
    /\ \E p \in msgs : p.type = "Promise" /\ p.src = n /\ p.dst = m.src /\ p.bal = m.bal
    /\ \E p \in PromiseParts(PromiseD(n, m), promised[n], cell[n], decided[n]) : Emit(p)
    /\ UNCHANGED <<decidedAt, role, promised, cell, decided, start, bal, from, next, pend,
                   disk, owner, crashes, wipes, snaps>>

\* The parts a candidate may merge: of its ballot, from a node not ahead
\* of it (a part with a watermark above `from`, or `beyond`, makes it
\* abandon: AbandonOnPromise).
GoodParts(n) ==
    {m \in msgs : m.type = "Promise" /\ m.dst = n /\ m.bal = bal[n]
                  /\ m.dec <= from[n] /\ ~m.beyond}

(* leader.rs on_promise + maybe_win: the candidate wins on the first       *)
(* quorum of promises it receives (its own counts once durable).  `best`  *)
(* is, per slot, the highest vote merged from the parts (see WinWith).    *)
DoWin(n, best) ==
    LET b == bal[n]
        f == from[n]
        u == start[n] + W
        Own(s)  == f <= s /\ s < u /\ IsVote(cell[n][s]) /\ cell[n][s].bal < b
        end == SetMax({f, decided[n]} \cup {s + 1 : s \in {s \in Slots : best[s] # Empty \/ Own(s)}})
        Choice(s) ==
            LET own == cell[n][s]
                rep == best[s]
            IN IF own # Empty /\ s < decided[n] THEN own.val
               ELSE IF IsVote(own) /\ rep # Empty /\ own.bal >= rep.bal THEN own.val
               ELSE IF rep # Empty THEN rep.val
               ELSE IF own # Empty THEN own.val
               ELSE NoOp
    IN /\ end <= u
       /\ cell' = [cell EXCEPT ![n] = [s \in Slots |->
                      IF f <= s /\ s < end THEN [bal |-> b, val |-> Choice(s)] ELSE @[s]]]
       /\ pend' = [pend EXCEPT ![n] = IF end > f THEN QueueRec(@, EntriesRec(f, end)) ELSE @]
       /\ role' = [role EXCEPT ![n] = "L"]
       /\ next' = [next EXCEPT ![n] = end]

BestOf(S) == IF S = {} THEN Empty ELSE CHOOSE e \in S : \A e2 \in S : e2.bal <= e.bal

(* leader.rs on_promise: a part is merged as it arrives (its votes       *)
(* compete for the best per slot) and notes the slots it answers for; a   *)
(* peer's promise counts once its parts answered for every slot of         *)
(* from..until.  With the finest split, that is: for every slot of the    *)
(* range, some good part of that peer covering it, each from any answer   *)
(* and any time (whatever the order in which the code takes them).  The   *)
(* votes of parts from peers not counted (yet) are merged too: for a node *)
(* outside the quorum, any good part covering a slot may have been merged *)
(* there, or none.  CountPartialPromise counts a peer on its first part   *)
(* alone, with only that part's votes (the code's bug counts it on        *)
(* whichever part arrives first; the part at `from` arriving first is     *)
(* one of its behaviours).                                                *)
WinWith(n, Q) ==
    /\ role[n] = "C"
    /\ LET others == Q \ {n}
           peers == Nodes \ {n}
           f == from[n]
           u == start[n] + W
           G(a) == {p \in GoodParts(n) : p.src = a}
           Merged(a) == IF Bug("CountPartialPromise")
                        THEN IF a \in others THEN {p \in G(a) : p.first = f} ELSE {}
                        ELSE G(a)
           Counts(a) ==
               IF Bug("CountPartialPromise") \/ f >= u THEN \E p \in G(a) : p.first = f
               ELSE \A s \in f..(u - 1) : \E p \in G(a) : p.first <= s /\ s < p.end
           \* the entries merged from a at s: one per merged part covering s
           \* (all equal: PartsAgree), or none if a is not counted
           Reports(a, s) ==
               LET E == {p.ent[s] : p \in {p \in Merged(a) : p.first <= s /\ s < p.end}}
               IN IF a \in others /\ E # {} THEN E ELSE E \cup {Empty}
           Bests(s) ==
               {BestOf({r[a] : a \in peers} \ {Empty}) :
                  r \in {r \in [peers -> UNION {Reports(a, s) : a \in peers}] :
                           \A a \in peers : r[a] \in Reports(a, s)}}
       IN /\ n \in Q => disk[n].prom >= bal[n]
          /\ \A a \in others : Counts(a)
          /\ \E best \in [Slots -> UNION {Bests(s) : s \in Slots}] :
               /\ \A s \in Slots : best[s] \in Bests(s)
               /\ DoWin(n, best)
    /\ UNCHANGED <<promised, decided, start, bal, from, disk, owner, msgs, crashes, wipes, snaps>>
    /\ Ghost

Win(n) == \E Q \in Quorums : WinWith(n, Q)

\* on_promise: a part (any part) from a node that is ahead: abandon, catch up.
AbandonOnPromise(n, m) ==
    /\ role[n] = "C" /\ m.type = "Promise" /\ m.dst = n /\ m.bal = bal[n]
    /\ m.dec > from[n] \/ m.beyond
    /\ Follow(n)
    /\ msgs' = msgs \cup {[type |-> "CatchUp", src |-> n, dst |-> m.src, from |-> decided[n]]}
    /\ UNCHANGED <<decidedAt, promised, cell, decided, start, pend, disk, owner,
                   crashes, wipes, snaps>>

\* on_nack: a candidate refused by a node that is ahead abandons, catches up.
OnNack(n, m) ==
    /\ role[n] = "C" /\ m.type = "Nack" /\ m.dst = n /\ m.bal = bal[n]
    /\ m.dec > from[n]
    /\ Follow(n)
    /\ msgs' = msgs \cup {[type |-> "CatchUp", src |-> n, dst |-> m.src, from |-> decided[n]]}
    /\ UNCHANGED <<decidedAt, promised, cell, decided, start, pend, disk, owner,
                   crashes, wipes, snaps>>

(* leader.rs propose. *)
Propose(n, v) ==
    LET s == next[n] IN
    /\ role[n] = "L"
    /\ s < NSlots /\ s >= start[n] /\ s < start[n] + W
    /\ s < decided[n] + MaxInFlight
    /\ ~Bug("LeaderLearns") => s >= decided[n]   \* fix A: never below decided
    /\ cell' = [cell EXCEPT ![n][s] = [bal |-> bal[n], val |-> v]]
    /\ pend' = [pend EXCEPT ![n] = QueueRec(@, EntriesRec(s, s + 1))]
    /\ next' = [next EXCEPT ![n] = s + 1]
    /\ UNCHANGED <<role, promised, decided, start, bal, from, disk, owner, msgs,
                   crashes, wipes, snaps>>
    /\ Ghost

(* transmit.rs leader_broadcast: once the leader's promise of its ballot  *)
(* is durable (lead.ready), whether or not its own votes are.  `first` is *)
(* broadcast_from: any slot from the phase-1 from (retransmissions).      *)
SendAppend(n, f) ==
    /\ role[n] = "L" /\ disk[n].prom >= bal[n]
    /\ f \in from[n]..next[n]
    /\ Emit([type |-> "Append", src |-> n, bal |-> bal[n],
             commit |-> decided[n], first |-> f,
             vals |-> ValuesFrom(cell[n], f, next[n], bal[n], decided[n])])
    /\ UNCHANGED <<decidedAt, role, promised, cell, decided, start, bal, from, next, pend,
                   disk, owner, crashes, wipes, snaps>>

(* acceptor.rs accept_values, one value at a time. *)
RECURSIVE AcceptLoop(_, _, _, _, _)
AcceptLoop(n, m, i, d1, st) ==
    IF i > Len(m.vals) \/ st.stop THEN st ELSE
    LET s    == m.first + i - 1
        v    == m.vals[i]
        c    == st.cells[s]
        held == c # Empty
        nst ==
          IF s < start[n] THEN [st EXCEPT !.af = s + 1]
          ELSE IF s < d1 /\ held /\ c.val # v THEN [st EXCEPT !.stop = TRUE]
          \* fix C: a decided cell is acknowledged, never re-voted
          ELSE IF s < d1 /\ ~Bug("UnrecordedLearnWatermark") THEN [st EXCEPT !.cnt = @ + 1]
          ELSE IF held /\ c.val = v /\ c.bal = m.bal THEN [st EXCEPT !.cnt = @ + 1]
          ELSE IF s >= start[n] + W THEN [st EXCEPT !.stop = TRUE]
          ELSE [st EXCEPT !.cells[s] = [bal |-> m.bal, val |-> v],
                          !.lo = Min(@, s), !.hi = s + 1, !.cnt = @ + 1]
    IN AcceptLoop(n, m, i + 1, d1, nst)

(* acceptor.rs on_append (+ learner.rs learn_commit). *)
OnAppend(n, m) ==
    /\ m.type = "Append" /\ m.src # n /\ role[n] # "A"
    /\ IF m.bal < promised[n] /\ ~Bug("AcceptBelowPromise")
       THEN \* refused.  The NACK to an append is not put in the network:
            \* its only effects at the leader (step down, re-campaign) are
            \* steps a leader may take anyway in the model.
            FALSE
       ELSE
       LET b   == m.bal
           q1  == IF b > promised[n] THEN QueueRec(pend[n], PromisedRec(b)) ELSE pend[n]
           d1  == AdvDec(cell[n], decided[n], b, m.commit)
           q2  == IF d1 > decided[n] THEN QueueRec(q1, CommittedRec(d1)) ELSE q1
           st  == AcceptLoop(n, m, 1, d1, [cells |-> cell[n], af |-> m.first, cnt |-> 0,
                                          lo |-> NSlots, hi |-> 0, stop |-> FALSE])
           q3  == IF st.lo < st.hi THEN QueueRec(q2, EntriesRec(st.lo, st.hi)) ELSE q2
           pr  == Max(promised[n], b)
           ad  == [type |-> "Accepted", src |-> n, dst |-> m.src, bal |-> b,
                   first |-> st.af, count |-> st.cnt]
           \* An Accepted with no votes (the reply to a heartbeat) carries
           \* only the lease stamp, which is not modelled: not sent.
           q4  == IF st.cnt = 0 THEN q3 ELSE QueueSend(q3, ad)
           d2  == AdvDec(st.cells, d1, b, m.commit)
           q5  == IF d2 > d1 THEN QueueRec(q4, CommittedRec(d2)) ELSE q4
           cu  == IF d2 < m.commit
                  THEN {[type |-> "CatchUp", src |-> n, dst |-> m.src, from |-> d2]}
                  ELSE {}
           \* EagerSync: the same records and replies, synced in this step.
           qe  == LET x == IF st.cnt = 0 THEN q3 ELSE Append(q3, Marker(ad))
                  IN IF d2 > d1 THEN QueueRec(x, CommittedRec(d2)) ELSE x
       IN /\ promised' = [promised EXCEPT ![n] = pr]
          /\ Follow(n)
          /\ cell' = [cell EXCEPT ![n] = st.cells]
          /\ decided' = [decided EXCEPT ![n] = d2]
          /\ IF EagerSync
             THEN /\ disk' = [disk EXCEPT ![n] = DiskAfter(@, qe, st.cells)]
                  /\ pend' = [pend EXCEPT ![n] = <<>>]
                  /\ msgs' = msgs \cup SendsIn(qe, "F", pr, st.cells, d2, NoBallot) \cup cu
             ELSE /\ pend' = [pend EXCEPT ![n] = q5]
                  /\ msgs' = msgs \cup cu \cup
                       (IF st.cnt = 0 THEN {} ELSE SendNow(q3, ad, "F", pr, st.cells, d2, NoBallot))
                  /\ UNCHANGED disk
          /\ UNCHANGED <<start, owner, crashes, wipes, snaps>>
          /\ Ghost

(* Fix D: an amnesiac learner never accepts; a commit it lacks makes it   *)
(* ask the sender for the decided values.                                 *)
AmnesiacOnAppend(n, m) ==
    /\ m.type = "Append" /\ m.src # n /\ role[n] = "A"
    /\ m.commit > decided[n]
    /\ Emit([type |-> "CatchUp", src |-> n, dst |-> m.src, from |-> decided[n]])
    /\ UNCHANGED <<decidedAt, role, promised, cell, decided, start, bal, from, next, pend,
                   disk, owner, crashes, wipes, snaps>>

(* leader.rs on_accepted / add_votes / advance_commit: the leader's       *)
(* watermark moves over a prefix of slots that a quorum accepted under    *)
(* its ballot (its own vote counting once durable).  Receiving the        *)
(* Accepted messages one by one reaches any such prefix.                  *)
LeaderCommit(n, d) ==
    /\ role[n] = "L"
    /\ d \in (decided[n] + 1)..next[n]
    /\ \A s \in decided[n]..(d - 1) :
          /\ cell[n][s].bal = bal[n]
          /\ \E Q \in Quorums : \A a \in Q :
                \/ Voted(a, s, bal[n])
                \/ a = n /\ disk[n].cells[s] = cell[n][s]
    /\ decided' = [decided EXCEPT ![n] = d]
    /\ pend' = [pend EXCEPT ![n] = QueueRec(@, CommittedRec(d))]
    /\ UNCHANGED <<role, promised, cell, start, bal, from, next, disk, owner, msgs, crashes, wipes, snaps>>
    /\ Ghost

(* learner.rs on_catch_up: decided values from `from` while in memory.    *)
OnCatchUp(n, m) ==
    /\ m.type = "CatchUp" /\ m.dst = n
    /\ start[n] <= m.from /\ m.from < decided[n]
    /\ Emit([type |-> "Learn", src |-> n, dst |-> m.src, first |-> m.from,
             vals |-> ValuesFrom(cell[n], m.from, decided[n], NoCell, decided[n])])
    /\ UNCHANGED <<decidedAt, role, promised, cell, decided, start, bal, from, next, pend,
                   disk, owner, crashes, wipes, snaps>>

(* learner.rs on_learn: values continuing this node's decided prefix are  *)
(* stored as ballot-None cells.  Fix A: only a follower (or an amnesiac   *)
(* learner) learns: a leader or candidate ignores Learn; one that stepped *)
(* down meanwhile (timeout) learns as a follower, which the model folds   *)
(* into this step.  Fix C: a Committed record follows the values.         *)
RECURSIVE LearnLoop(_, _, _, _)
LearnLoop(n, m, i, st) ==
    IF i > Len(m.vals) THEN st ELSE
    LET s == m.first + i - 1
    IN IF s # st.dec THEN LearnLoop(n, m, i + 1, st)
       ELSE IF s >= start[n] + W THEN st
       ELSE LearnLoop(n, m, i + 1,
                      [st EXCEPT !.cells[s] = [bal |-> NoBallot, val |-> m.vals[i]],
                                 !.dec = s + 1])

OnLearn(n, m) ==
    /\ m.type = "Learn" /\ m.dst = n /\ m.first <= decided[n]
    /\ LET st == LearnLoop(n, m, 1, [cells |-> cell[n], dec |-> decided[n]])
           q1 == QueueRec(pend[n], EntriesRec(decided[n], st.dec))
       IN /\ st.dec > decided[n]
          /\ cell' = [cell EXCEPT ![n] = st.cells]
          /\ decided' = [decided EXCEPT ![n] = st.dec]
          /\ pend' = [pend EXCEPT ![n] =
                        IF Bug("UnrecordedLearnWatermark") THEN q1
                        ELSE QueueRec(q1, CommittedRec(st.dec))]
    /\ IF role[n] \in {"L", "C"} /\ ~Bug("LeaderLearns")
       THEN Follow(n)   \* stepped down first
       ELSE UNCHANGED <<role, bal, from, next>>   \* fault A: learns while leading
    /\ UNCHANGED <<promised, start, disk, owner, msgs, crashes, wipes, snaps>>
    /\ Ghost

(* Replica::install_snapshot: the application installed a snapshot of     *)
(* node r covering every slot below k (r's decided values).  Fix A: a     *)
(* leader or candidate steps down first.  The jump clears the cells below *)
(* k, so a queued Entries record for them writes nothing (write_entries   *)
(* skips slots that left memory); nothing queued may count on them        *)
(* (learner.rs jump_to_snapshot):                                          *)
(*  - fault E, SnapshotDropsPendingVotes: a watermark queued over them    *)
(*    must not reach disk before the snapshot, or a crash between the two *)
(*    leaves a decided slot without its value (DecidedKnown, records made *)
(*    durable one at a time).  Every watermark still queued, all below k, *)
(*    becomes the Snapshot record, in its place.                          *)
(*  - fault H, VoteLeavesBeforeSnapshot: a reply queued with them must    *)
(*    not leave once their empty record is durable, or it reveals a vote  *)
(*    no durable state backs (RevealedVotesDurable).  Every reply already *)
(*    queued waits for the Snapshot record too.                           *)
SnapshotFirst(q, k) ==
    LET Moved(x) == IF x.t = "Committed" /\ ~Bug("SnapshotDropsPendingVotes")
                    THEN SnapshotRec(k) ELSE x
        q2    == [i \in 1..Len(q) |-> Moved(q[i])]
        recs  == SelectSeq(q2, LAMBDA x : x.t # "Send")
        sends == SelectSeq(q2, LAMBDA x : x.t = "Send")
    IN IF Bug("VoteLeavesBeforeSnapshot") THEN QueueRec(q2, SnapshotRec(k))
       ELSE QueueRec(recs, SnapshotRec(k)) \o sends

InstallSnapshot(n, r, k) ==
    /\ snaps < MaxSnapshots /\ r # n
    /\ k > decided[n] /\ k <= decided[r]
    /\ IF role[n] \in {"L", "C"} /\ ~Bug("LeaderLearns") THEN Follow(n)
       ELSE UNCHANGED <<role, bal, from, next>>
    /\ pend' = [pend EXCEPT ![n] = SnapshotFirst(@, k)]
    /\ cell' = [cell EXCEPT ![n] = [s \in Slots |-> IF s < k THEN Empty ELSE @[s]]]
    /\ decided' = [decided EXCEPT ![n] = k]
    /\ start' = [start EXCEPT ![n] = k]
    /\ snaps' = snaps + 1
    /\ UNCHANGED <<promised, disk, owner, msgs, crashes, wipes>>
    /\ Ghost

(* Restart from durable state dk (persist.rs Recovery::finish).  `a` is   *)
(* the application's applied slot: beyond the watermark it is a jump.     *)
Restart(n, dk, a) ==
    /\ IF NoRecords(dk)
       THEN /\ cell' = [cell EXCEPT ![n] = [s \in Slots |-> Empty]]
            /\ decided' = [decided EXCEPT ![n] = 0]
            /\ start' = [start EXCEPT ![n] = 0]
            /\ IF Bug("AmnesiacVotes")
               THEN \* fault D: "nothing was ever written: a fresh start"
                    /\ role' = [role EXCEPT ![n] = IF n = InitLeader THEN "L" ELSE "F"]
                    /\ promised' = [promised EXCEPT ![n] = IF n = InitLeader THEN 0 ELSE NoBallot]
                    /\ bal' = [bal EXCEPT ![n] = IF n = InitLeader THEN 0 ELSE NoBallot]
                    /\ pend' = [pend EXCEPT ![n] = IF n = InitLeader THEN <<PromisedRec(0)>> ELSE <<>>]
               ELSE \* fix D: an amnesiac learner (recorded as such, see docs)
                    /\ role' = [role EXCEPT ![n] = "A"]
                    /\ promised' = [promised EXCEPT ![n] = NoBallot]
                    /\ bal' = [bal EXCEPT ![n] = NoBallot]
                    /\ pend' = [pend EXCEPT ![n] =
                                  IF Bug("AmnesiaNotRecorded") THEN <<>> ELSE <<LearnerRec>>]
       ELSE /\ role' = [role EXCEPT ![n] = IF dk.learner THEN "A" ELSE "F"]
            /\ promised' = [promised EXCEPT ![n] = dk.prom]
            /\ bal' = [bal EXCEPT ![n] = NoBallot]
            /\ IF a > dk.dec
               THEN /\ cell' = [cell EXCEPT ![n] = [s \in Slots |-> IF s < a THEN Empty ELSE dk.cells[s]]]
                    /\ decided' = [decided EXCEPT ![n] = a]
                    /\ start' = [start EXCEPT ![n] = a]
                    /\ pend' = [pend EXCEPT ![n] = <<SnapshotRec(a)>>]
               ELSE /\ cell' = [cell EXCEPT ![n] = dk.cells]
                    /\ decided' = [decided EXCEPT ![n] = dk.dec]
                    /\ start' = [start EXCEPT ![n] = dk.start]
                    /\ pend' = [pend EXCEPT ![n] = <<>>]
    /\ from' = [from EXCEPT ![n] = 0]
    /\ next' = [next EXCEPT ![n] = 0]

Crash(n, a) ==
    /\ crashes < MaxCrashes
    /\ a \in {disk[n].dec} \cup ((disk[n].dec + 1)..decided[n])
    /\ Restart(n, disk[n], a)
    /\ crashes' = crashes + 1
    /\ UNCHANGED <<disk, owner, msgs, wipes, snaps>>
    /\ Ghost

\* Storage lost: the node restarts from no records at all.
Wipe(n) ==
    /\ wipes < MaxWipes
    /\ disk' = [disk EXCEPT ![n] = EmptyDisk]
    /\ Restart(n, EmptyDisk, 0)
    /\ wipes' = wipes + 1
    /\ UNCHANGED <<owner, msgs, crashes, snaps>>
    /\ Ghost

-----------------------------------------------------------------------------
\* Node n handles some message of the network (named so that TLC's traces
\* name the handler).
PromisePrepareMsg(n) == \E m \in msgs : PromisePrepare(n, m)
PromiseLatePartMsg(n) == \E m \in msgs : PromiseLatePart(n, m)
RefusePrepareMsg(n) == \E m \in msgs : RefusePrepare(n, m)
OnAppendMsg(n) == \E m \in msgs : OnAppend(n, m)
AmnesiacOnAppendMsg(n) == \E m \in msgs : AmnesiacOnAppend(n, m)
AbandonOnPromiseMsg(n) == \E m \in msgs : AbandonOnPromise(n, m)
OnNackMsg(n) == \E m \in msgs : OnNack(n, m)
OnCatchUpMsg(n) == \E m \in msgs : OnCatchUp(n, m)
OnLearnMsg(n) == \E m \in msgs : OnLearn(n, m)

Step ==
    \/ \E n \in Nodes :
         \/ Persist(n)
         \/ Win(n)
         \/ Wipe(n)
         \/ \E b \in Ballots : Campaign(n, b)
         \/ \E v \in Values : Propose(n, v)
         \/ \E f \in Slots \cup {NSlots} : SendAppend(n, f)
         \/ \E d \in 1..NSlots : LeaderCommit(n, d)
         \/ \E a \in 0..NSlots : Crash(n, a)
         \/ \E r \in Nodes, k \in 1..NSlots : InstallSnapshot(n, r, k)
    \/ \E n \in Nodes :
         \/ PromisePrepareMsg(n)
         \/ PromiseLatePartMsg(n)
         \/ RefusePrepareMsg(n)
         \/ OnAppendMsg(n)
         \/ AmnesiacOnAppendMsg(n)
         \/ AbandonOnPromiseMsg(n)
         \/ OnNackMsg(n)
         \/ OnCatchUpMsg(n)
         \/ OnLearnMsg(n)

Next == Step

Spec == Init /\ [][Next]_vars

-----------------------------------------------------------------------------
(* Invariants.                                                             *)

\* No two different values decided for one slot, on any nodes, ever.
Agreement == \A s \in Slots : Cardinality(decidedAt[s]) <= 1

\* Only proposed values (or no-ops filling gaps) are decided: every value
\* decided was sent by a leader in an append (values enter only through
\* propose; recovery re-proposes values that were accepted).
Validity ==
    \A s \in Slots : \A v \in decidedAt[s] \ {NoOp} :
        \E m \in msgs : m.type = "Append" /\ \E i \in 1..Len(m.vals) : m.vals[i] = v

\* Every decided slot still in memory holds its value (volatile and after
\* replay: Recovery::finish refuses holes).
DecidedKnown ==
    \A n \in Nodes, s \in Slots :
        /\ start[n] <= s /\ s < decided[n] => cell[n][s] # Empty
        /\ disk[n].start <= s /\ s < disk[n].dec => disk[n].cells[s] # Empty

\* The commit-watermark rule: a leader's decided prefix above its phase-1
\* `from` holds its own ballot's values, each chosen under that ballot;
\* that is what the commit of its Append claims.
CommitWatermark ==
    \A n \in Nodes : role[n] = "L" =>
        \A s \in from[n]..(decided[n] - 1) :
            cell[n][s].bal = bal[n] /\ ChosenAt(s, bal[n], n)

\* Promises kept (state part): the volatile promise never below the
\* durable one, no vote above the promise.
PromiseBounds ==
    \A n \in Nodes :
        /\ promised[n] >= disk[n].prom
        /\ \A s \in Slots : cell[n][s].bal <= promised[n]
        /\ \A s \in Slots : disk[n].cells[s].bal <= disk[n].prom

\* Fix C's invariant: every learned (ballot None) cell is below the decided
\* watermark, in memory and after replay.
LearnedBelowDecided ==
    \A n \in Nodes, s \in Slots :
        /\ IsLearned(cell[n][s]) => s < decided[n]
        /\ IsLearned(disk[n].cells[s]) => s < disk[n].dec

\* A revealed vote (an Accepted message) stays in its acceptor's durable
\* state, as that vote or a later one, or under its durable watermark; so
\* every promise it makes after any restart reports it (or says decided).
\* A wiped node is exempt only while it is an amnesiac learner.
RevealedVotesDurable ==
    \A m \in msgs : m.type = "Accepted" =>
        \A s \in m.first..(m.first + m.count - 1) :
            \/ role[m.src] = "A"
            \/ disk[m.src].cells[s].bal >= m.bal
            \/ s < disk[m.src].dec
            \/ s < disk[m.src].start

\* The same on the messages: every promise part of that acceptor for a
\* higher ballot whose range covers the slot reports a vote at least as
\* high, or a decided watermark above the slot (then the candidate
\* abandons).
PromisesReportVotes ==
    LET P == {p \in msgs : p.type = "Promise" /\ p.first < NSlots /\ p.first < p.end}
    IN \A m \in msgs : m.type = "Accepted" =>
      \A p \in P : (p.src = m.src /\ p.bal > m.bal) =>
        \A s \in m.first..(m.first + m.count - 1) :
            (p.first <= s /\ s < p.end) =>
                \/ p.ent[s].bal >= m.bal
                \/ p.dec > s

\* Why promise parts may be combined: once an acceptor promised b, its
\* votes below b never change (it votes only at >= b afterwards, and no
\* part leaves once its promise passed b or it voted under b; the code
\* does send a part after a vote under b, but b's candidate has won by
\* then and no candidate of b remains to merge it), and a cell
\* that loses its vote (learned, cleared by a snapshot or a restart's
\* jump) is below the watermark the part then carries.  So two parts of
\* one acceptor for one ballot, encoded at any times, report the same vote
\* at every slot both cover at or above both their watermarks: the slots
\* a candidate merges (it merges only parts whose watermark is at most its
\* `from`).  Their combination is what one promise would have said.
PartsAgree ==
    LET P == {m \in msgs : m.type = "Promise" /\ m.first < NSlots /\ m.first < m.end}
    IN \A p, q \in P :
        (p.src = q.src /\ p.bal = q.bal /\ p # q) =>
            \A s \in Slots :
                (p.first <= s /\ s < p.end /\ q.first <= s /\ s < q.end
                 /\ p.dec <= s /\ q.dec <= s) => p.ent[s] = q.ent[s]

Safety == Agreement /\ Validity /\ DecidedKnown /\ CommitWatermark /\ PromiseBounds
          /\ LearnedBelowDecided /\ RevealedVotesDurable /\ PromisesReportVotes
          /\ PartsAgree

-----------------------------------------------------------------------------
(* Properties of steps.                                                    *)

\* Persist before reveal: every message sent is implied by its sender's
\* durable state when it leaves.  A revealed vote is implied by a durable
\* vote at least as high (records are encoded when written, so a vote
\* replaced before its record was written is written as the later vote:
\* the durable state is then a later state of the acceptor), or by the
\* durable watermark.
Implied(m) ==
    LET d == disk'[m.src] IN
    CASE m.type = "Prepare"  -> d.prom >= m.bal
      [] m.type = "Append"   -> d.prom >= m.bal
      [] m.type = "Nack"     -> d.prom >= m.prom
      [] m.type = "Promise"  -> d.prom >= m.bal /\
                                \A s \in Slots : IsVote(m.ent[s]) =>
                                    d.cells[s].bal >= m.ent[s].bal \/ s < d.dec
      [] m.type = "Accepted" -> d.prom >= m.bal /\
                                \A s \in m.first..(m.first + m.count - 1) :
                                    d.cells[s].bal >= m.bal \/ s < d.dec \/ s < d.start
      [] OTHER -> TRUE   \* CatchUp, Learn: decided values, facts
PersistBeforeReveal == [][\A m \in msgs' \ msgs : Implied(m)]_vars

\* Promises kept (steps): the durable promise never goes down (except a
\* wipe), and no vote is stored under a ballot below the promise.
PromisesKeptStep ==
    [][ (crashes' = crashes /\ wipes' = wipes) =>
          \A n \in Nodes :
            /\ disk'[n].prom >= disk[n].prom
            /\ \A s \in Slots : (cell'[n][s] # cell[n][s] /\ IsVote(cell'[n][s]))
                                   => cell'[n][s].bal >= promised[n] ]_vars

-----------------------------------------------------------------------------
TypeOK ==
    /\ role \in [Nodes -> {"F", "C", "L", "A"}]
    /\ promised \in [Nodes -> Ballots \cup {NoBallot}]
    /\ decided \in [Nodes -> 0..NSlots] /\ start \in [Nodes -> 0..NSlots]
    /\ \A n \in Nodes : start[n] <= decided[n]
    /\ \A n \in Nodes, s \in Slots : cell[n][s].val \in Vals
    /\ owner \in [Ballots -> Nodes \cup {Nil}]
=============================================================================
