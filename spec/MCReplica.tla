------------------------------ MODULE MCReplica ------------------------------
(* Model-checking harness: symmetry and the bound on the message set.      *)
EXTENDS Replica

CONSTANT MaxMsgs   \* the network holds at most this many distinct messages

\* The nodes other than the initial leader are interchangeable, and so are
\* the values: the product of the two permutation groups.
NodePerms == {[x \in Nodes |-> IF x = InitLeader THEN x ELSE p[x]] :
                 p \in Permutations(Nodes \ {InitLeader})}
Symmetry == {[x \in Nodes \cup Values |-> IF x \in Nodes THEN p[x] ELSE q[x]] :
                 p \in NodePerms, q \in Permutations(Values)}

\* A bounded bag: states with more distinct messages are not explored.  The
\* parts of a promise count as one message when they agree on acceptor,
\* candidate, ballot, watermark and `beyond` (the parts of one answer
\* encoded at one instant do), so the bound means what it meant when a
\* promise was one message.
PromiseAnswers == {<<m.src, m.dst, m.bal, m.dec, m.beyond>> :
                      m \in {p \in msgs : p.type = "Promise"}}
MsgCost == Cardinality({m \in msgs : m.type # "Promise"}) + Cardinality(PromiseAnswers)
MsgBound == MsgCost <= MaxMsgs
==============================================================================
