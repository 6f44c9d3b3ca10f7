------------------------------- MODULE MCTraceA -------------------------------
(***************************************************************************)
(* The counterexample of fault A from issue #12 (5 nodes), replayed step   *)
(* by step: TLC explores only the behaviours that follow this script.      *)
(* With Bugs = {"LeaderLearns"} the last step breaks Agreement; with the   *)
(* fix, n1 steps down to learn and the script stops at step 34 (deadlock). *)
(*                                                                         *)
(* Ballots: 0 = the issue's (1,2) (n2 is the initial leader, so it leads   *)
(* without phase 1, as (1,2) did after its phase 1), 1 = (2,1), 2 = (2,2). *)
(***************************************************************************)
EXTENDS Replica

CONSTANTS n1, n2, n3, n4, n5, v100, v111, v222

VARIABLE k   \* steps of the script taken

P(n)            == [a |-> "Persist", n |-> n]
Prop(n, v)      == [a |-> "Propose", n |-> n, v |-> v]
Send(n, f)      == [a |-> "SendAppend", n |-> n, f |-> f]
Acc(n, l, b, f) == [a |-> "OnAppend", n |-> n, l |-> l, b |-> b, f |-> f]
Camp(n, b)      == [a |-> "Campaign", n |-> n, b |-> b]
Prom(n, c)      == [a |-> "PromisePrepare", n |-> n, c |-> c]
WinQ(n, Q)      == [a |-> "Win", n |-> n, q |-> Q]
Commit(n, d)    == [a |-> "LeaderCommit", n |-> n, d |-> d]
Answer(n, r)    == [a |-> "OnCatchUp", n |-> n, r |-> r]
Learn(n, r)     == [a |-> "OnLearn", n |-> n, r |-> r]

Script == <<
  P(n2), Prop(n2, v100), P(n2), Send(n2, 0),          \* 1-4: (1,2) proposes 100
  Acc(n3, n2, 0, 0), P(n3), Acc(n4, n2, 0, 0), P(n4), \* 5-8: n3, n4 accept
  Commit(n2, 1),                                      \* 9: n2 decides slot 0 = 100
  Send(n2, 1), Acc(n1, n2, 0, 1), P(n1),              \* 10-12: n1 missed it: CatchUp{0}
  Camp(n1, 1), P(n1),                                 \* 13-14: n1 campaigns (2,1)
  Prom(n3, n1), P(n3), Prom(n5, n1), P(n5),           \* 15-18
  WinQ(n1, {n1, n3, n5}),                             \* 19: n1 wins, 100 at slot 0
  Prop(n1, v111), P(n1), Send(n1, 0),                 \* 20-22: 111 at slot 1
  Acc(n5, n1, 1, 0), P(n5),                           \* 23-24: only n5 accepts
  Camp(n2, 2), P(n2),                                 \* 25-26: n2 campaigns (2,2)
  Prom(n3, n2), P(n3), Prom(n4, n2), P(n4),           \* 27-30
  WinQ(n2, {n2, n3, n4}),                             \* 31: n2 wins from slot 1
  Prop(n2, v222), P(n2), Send(n2, 1),                 \* 32-34: 222 at slot 1
  Acc(n3, n2, 2, 1), P(n3), Acc(n4, n2, 2, 1), P(n4), \* 35-38
  Commit(n2, 2),                                      \* 39: n2 decides slot 1 = 222
  Answer(n2, n1),                                     \* 40: the held-back CatchUp{0}
  Learn(n1, n2),                                      \* 41: n1, still leading, learns
  Send(n1, 2),                                        \* 42: Append{(2,1), commit 2}
  Acc(n5, n1, 1, 2)                                   \* 43: n5 decides 111 at slot 1
>>

Do(t) ==
    CASE t.a = "Persist"      -> Persist(t.n)
      [] t.a = "Propose"      -> Propose(t.n, t.v)
      [] t.a = "SendAppend"   -> SendAppend(t.n, t.f)
      [] t.a = "Campaign"     -> Campaign(t.n, t.b)
      [] t.a = "Win"          -> WinWith(t.n, t.q)
      [] t.a = "LeaderCommit" -> LeaderCommit(t.n, t.d)
      [] t.a = "OnAppend"     -> \E m \in msgs : /\ m.type = "Append" /\ m.src = t.l
                                                 /\ m.bal = t.b /\ m.first = t.f
                                                 /\ OnAppend(t.n, m)
      [] t.a = "PromisePrepare" -> \E m \in msgs : /\ m.type = "Prepare" /\ m.src = t.c
                                                   /\ PromisePrepare(t.n, m)
      [] t.a = "OnCatchUp"    -> \E m \in msgs : /\ m.type = "CatchUp" /\ m.src = t.r
                                                 /\ OnCatchUp(t.n, m)
      [] t.a = "OnLearn"      -> \E m \in msgs : /\ m.type = "Learn" /\ m.src = t.r
                                                 /\ OnLearn(t.n, m)

TraceInit == Init /\ k = 0
TraceNext == \/ k < Len(Script) /\ Do(Script[k + 1]) /\ k' = k + 1
             \/ k = Len(Script) /\ UNCHANGED <<vars, k>>   \* done: no deadlock
TraceSpec == TraceInit /\ [][TraceNext]_<<vars, k>>

\* Reported as violated once the whole script was replayed.
ScriptNotDone == k < Len(Script)
==============================================================================
