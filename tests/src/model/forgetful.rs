//! What the two stateright models share: [`Forgetful`], the actor model
//! wrapper that holds their properties and a bug scenario's restrictions,
//! the network they start from, and their actors' node ids.

use paxos_core::NodeId;
use stateright::actor::{Actor, ActorModel, ActorModelAction, ActorModelState, Envelope, Id, Network, Out};
use stateright::{Expectation, Model, Property};
use std::borrow::Cow;
use std::fmt;

/// An empty unordered network, duplicating or not. A network that
/// delivers every message at most once explores a subset of the behaviours
/// of one that may duplicate: a counterexample found there is one here.
pub(crate) fn network<M: Clone + Eq + core::hash::Hash + Ord>(duplicating: bool) -> Network<M> {
    if duplicating {
        Network::new_unordered_duplicating([])
    } else {
        Network::new_unordered_nonduplicating([])
    }
}

pub(crate) fn node_id(id: Id) -> NodeId {
    NodeId(usize::from(id) as u8)
}

/// An [`ActorModel`] whose states forget which message was delivered last.
///
/// stateright's duplicating network remembers the last message it
/// delivered, only so that a delivery that changes nothing still leads to
/// a different state. It has no effect on what can happen next, so states
/// that differ only there are one state; keeping it would store every
/// state once per message that can lead to it. This wrapper clears it after
/// every step and otherwise delegates; it also holds the properties, which
/// are therefore written against it, and the restrictions of a bug
/// scenario (`Forgetful::restricted`).
pub struct Forgetful<A, C, H>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    H: Clone + fmt::Debug + core::hash::Hash,
{
    inner: ActorModel<A, C, H>,
    properties: Vec<Property<Self>>,
    /// Which messages may be purged once delivering them does nothing (see
    /// `Forgetful::purging`).
    purgeable: fn(&C, &Envelope<A::Msg>) -> bool,
    /// Which actions the scenario allows (see `Forgetful::restricted`).
    allowed: Allowed<A, C, H>,
}

impl<A, C, H> Forgetful<A, C, H>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    H: Clone + fmt::Debug + core::hash::Hash,
{
    pub(crate) fn new(inner: ActorModel<A, C, H>) -> Self {
        Forgetful {
            inner,
            properties: Vec::new(),
            purgeable: |_, _| false,
            allowed: |_, _, _| true,
        }
    }

    /// Allows only the actions for which `allowed` holds in the state they
    /// leave (a crash only at some moments, a delivery only later). The
    /// checker then explores a subset of the behaviours, so a
    /// counterexample it finds is still one of the unrestricted model.
    pub(crate) fn restricted(mut self, allowed: Allowed<A, C, H>) -> Self {
        self.allowed = allowed;
        self
    }

    /// After every step, removes from the network each message for which
    /// `purgeable` holds and whose delivery would now change nothing
    /// (stateright finds such a delivery a no-op). That is sound only for
    /// messages that, once a no-op at their destination, stay a no-op for
    /// ever: then they can never influence anything again, and keeping
    /// them would only tell apart states that behave the same. Each model
    /// says why that holds for the messages it names.
    pub(crate) fn purging(mut self, purgeable: fn(&C, &Envelope<A::Msg>) -> bool) -> Self {
        self.purgeable = purgeable;
        self
    }

    /// Purges the messages to or from `actor` (the only ones a step of
    /// `actor` can have made no-ops, or sent).
    pub(crate) fn purge(&self, state: &mut ActorModelState<A, H>, actor: Id) {
        let Network::UnorderedDuplicating(set, _) = &state.network else {
            return;
        };
        let stale: Vec<Envelope<A::Msg>> = set
            .iter()
            .filter(|env| (env.src == actor || env.dst == actor) && (self.purgeable)(&self.inner.cfg, env))
            .filter(|env| {
                // What stateright's own delivery finds a no-op: the actor's
                // state untouched and nothing to do.
                let index = usize::from(env.dst);
                let (Some(actor), Some(current)) = (self.inner.actors.get(index), state.actor_states.get(index)) else {
                    return false;
                };
                let mut after = Cow::Borrowed(&**current);
                let mut out = Out::new();
                actor.on_msg(env.dst, &mut after, env.src, env.msg.clone(), &mut out);
                matches!(after, Cow::Borrowed(_)) && out.is_empty()
            })
            .cloned()
            .collect();
        if let Network::UnorderedDuplicating(set, _) = &mut state.network {
            for env in &stale {
                set.remove(env);
            }
        }
    }

    /// The model's configuration.
    pub fn cfg(&self) -> &C {
        &self.inner.cfg
    }

    pub(crate) fn property(
        mut self,
        expectation: Expectation,
        name: &'static str,
        condition: fn(&Self, &ActorModelState<A, H>) -> bool,
    ) -> Self {
        self.properties.push(Property {
            expectation,
            name,
            condition,
        });
        self
    }
}

impl<A, C, H> Model for Forgetful<A, C, H>
where
    A: Actor,
    A::Msg: Ord,
    A::Timer: Ord,
    H: Clone + fmt::Debug + core::hash::Hash,
{
    type State = ActorModelState<A, H>;
    type Action = ActorModelAction<A::Msg, A::Timer, A::Random>;

    fn init_states(&self) -> Vec<Self::State> {
        self.inner.init_states()
    }

    fn actions(&self, state: &Self::State, actions: &mut Vec<Self::Action>) {
        self.inner.actions(state, actions);
        actions.retain(|a| (self.allowed)(&self.inner.cfg, state, a));
    }

    fn next_state(&self, last: &Self::State, action: Self::Action) -> Option<Self::State> {
        let actor = match &action {
            ActorModelAction::Deliver { dst, .. } => Some(*dst),
            ActorModelAction::Timeout(id, _) | ActorModelAction::Crash(id) | ActorModelAction::Recover(id) => Some(*id),
            _ => None,
        };
        let mut next = self.inner.next_state(last, action)?;
        if let Network::UnorderedDuplicating(_, last_delivered) = &mut next.network {
            *last_delivered = None;
        }
        if let Some(actor) = actor {
            self.purge(&mut next, actor);
        }
        Some(next)
    }

    fn format_action(&self, action: &Self::Action) -> String {
        self.inner.format_action(action)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        self.properties.clone()
    }

    fn within_boundary(&self, state: &Self::State) -> bool {
        Model::within_boundary(&self.inner, state)
    }
}

/// Which actions of an actor model a scenario allows in a state.
pub(crate) type Allowed<A, C, H> = fn(
    &C,
    &ActorModelState<A, H>,
    &ActorModelAction<<A as Actor>::Msg, <A as Actor>::Timer, <A as Actor>::Random>,
) -> bool;
