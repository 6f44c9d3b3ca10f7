------------------------------- MODULE MCTraceA -------------------------------
(***************************************************************************)
(* The counterexample of fault A from issue #12 (5 nodes), replayed step   *)
(* by step: TLC explores only the behaviours that follow this script.      *)
(* With Bugs = {"LeaderLearns"} (MCTraceA.cfg) the last step, 37, breaks   *)
(* Agreement.  With the fix (MCTraceA_fixed.cfg) n1 steps down to learn at *)
(* step 35 and the script stops there: step 36 needs a leader.             *)
(*                                                                         *)
(* Ballots: 0 = the issue's (1,2) (n2 is the initial leader, so it leads   *)
(* without phase 1, as (1,2) did after its phase 1), 1 = (2,1), 2 = (2,2). *)
(*                                                                         *)
(* Campaign and PromisePrepare sync their node's queue in the same step,   *)
(* so no Persist follows them (Persist needs a non-empty queue).           *)
(*                                                                         *)
(* The step counter is `pc`, not `k`: TLC 2.15 evaluates the LET name `k`  *)
(* of Replica's Persist, inside a next-state action, as a state variable  *)
(* `k` declared by an extending module (the evaluation error this harness *)
(* stopped with at its third state).                                      *)
(***************************************************************************)
EXTENDS Replica

CONSTANTS n1, n2, n3, n4, n5, v100, v111, v222

VARIABLE pc  \* steps of the script taken

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
  Camp(n1, 1),                                        \* 13: n1 campaigns (2,1)
  Prom(n3, n1), Prom(n5, n1),                         \* 14-15
  WinQ(n1, {n1, n3, n5}),                             \* 16: n1 wins, 100 at slot 0
  Prop(n1, v111), P(n1), Send(n1, 0),                 \* 17-19: 111 at slot 1
  Acc(n5, n1, 1, 0), P(n5),                           \* 20-21: only n5 accepts (both slots)
  Camp(n2, 2),                                        \* 22: n2 campaigns (2,2)
  Prom(n3, n2), Prom(n4, n2),                         \* 23-24
  WinQ(n2, {n2, n3, n4}),                             \* 25: n2 wins from slot 1
  Prop(n2, v222), P(n2), Send(n2, 1),                 \* 26-28: 222 at slot 1
  Acc(n3, n2, 2, 1), P(n3), Acc(n4, n2, 2, 1), P(n4), \* 29-32
  Commit(n2, 2),                                      \* 33: n2 decides slot 1 = 222
  Answer(n2, n1),                                     \* 34: the held-back CatchUp{0}
  Learn(n1, n2),                                      \* 35: n1, still leading, learns
  Send(n1, 2),                                        \* 36: Append{(2,1), commit 2}
  Acc(n5, n1, 1, 2)                                   \* 37: n5 decides 111 at slot 1
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

TraceInit == Init /\ pc = 0
TraceNext == \/ pc < Len(Script) /\ Do(Script[pc + 1]) /\ pc' = pc + 1
             \/ pc = Len(Script) /\ UNCHANGED <<vars, pc>>   \* done: no deadlock
TraceSpec == TraceInit /\ [][TraceNext]_<<vars, pc>>
\* With weak fairness the script runs as far as it can: a behaviour that
\* stops is one in which the next step is not enabled.
TraceSpecFair == TraceSpec /\ WF_<<vars, pc>>(TraceNext)

\* Reported as violated once the whole script was replayed.
ScriptNotDone == pc < Len(Script)

LearnStep == 35   \* Learn(n1, n2)
ASSUME Script[LearnStep] = Learn(n1, n2)

\* The fixed configuration (MCTraceA_fixed.cfg) checks, besides Agreement:
\* the replay reaches the Learn step (not vacuous) ...
ReachesLearn == <>(pc = LearnStep)
\* ... n1 is then a follower (fix A: it stepped down to learn) ...
LearnerFollows == pc >= LearnStep => role[n1] = "F"
\* ... and no step follows: Send(n1, 2) needs a leader.  Each of the two
\* invariants fails when the fix is absent.
StopsAtLearn == pc <= LearnStep
==============================================================================
