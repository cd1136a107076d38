"""(model name, request facts) -> route, on every request, for ``RuleSet.resolve``.

Answers are cached per model name. When a name's first matching route has no ``when``, the
answer is that route whatever the facts, so a model-only config costs one dict lookup, as
before conditions existed. Otherwise the cache holds the name's ``Candidates``: the matching
routes in order, up to and including the first without ``when`` (nothing after it can be
reached). Candidates then pick by the facts in two steps, each indexed so that a thousand
conditional routes on one model stay as fast as three:

- per (request class, server tools), 14 combinations, the routes whose conditions on those
  two hold, computed on first use;
- among those, the agent_type globs as one ``Matcher`` (exact names in a dict, globs grouped
  by prefix), the routes without agent_type ending the search.

Names whose candidates are the same routes share one ``Candidates``, so a flood of new model
names matching ``claude-*`` does not build the indexes again for each.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Generic, Protocol, TypeAlias, TypeVar

from rules.conditions import Conditions, RequestFacts
from rules.matching import _CACHE_LIMIT, Matcher

__all__ = ["NO_ROUTE", "Answer", "Candidates", "Resolver", "Routable"]


class Routable(Protocol):
    """What resolution reads of a route (``rules.model.Route``, which uses this module)."""

    @property
    def match(self) -> tuple[str, ...]: ...

    @property
    def when(self) -> Conditions | None: ...


Route = TypeVar("Route", bound=Routable)

_NO_FACTS = RequestFacts()


class _Choice(Generic[Route]):
    """The candidates that apply for one (request class, server tools), by agent type."""

    __slots__ = ("agent_routes", "fallback", "matcher")

    def __init__(self, candidates: Sequence[Route], request_class: str, server_tools: bool) -> None:
        agent_routes: list[Route] = []
        self.fallback: Route | None = None  # the first that applies whatever the agent type
        for route in candidates:
            when = route.when
            if when is not None and not when.holds_apart_from_agent(request_class, server_tools):
                continue
            if when is None or when.agent_type is None:
                self.fallback = route
                break
            agent_routes.append(route)
        self.agent_routes = tuple(agent_routes)
        self.matcher = (
            Matcher([r.when.agent_type if r.when and r.when.agent_type else () for r in agent_routes])
            if agent_routes
            else None
        )

    def pick(self, agent_type: str | None) -> Route | None:
        if agent_type is None or self.matcher is None:
            return self.fallback
        index = self.matcher.resolve(agent_type)
        return self.fallback if index < 0 else self.agent_routes[index]


class Candidates(Generic[Route]):
    """The routes a model name may reach, in order; ``pick(facts)`` chooses among them."""

    __slots__ = ("_choices", "routes")

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self.routes = routes
        self._choices: dict[tuple[str, bool], _Choice[Route]] = {}  # at most 14 entries

    def pick(self, facts: RequestFacts | None) -> Route | None:
        """The first candidate whose conditions hold for ``facts`` (None: no hint headers)."""
        if facts is None:
            facts = _NO_FACTS
        key = (facts.request_class, facts.server_tools)
        choice = self._choices.get(key)
        if choice is None:
            choice = self._choices[key] = _Choice(self.routes, *key)
        return choice.pick(facts.agent_type)


# A cached answer: the route whatever the facts, NO_ROUTE, or the candidates to pick from. Not
# None for "no route", so that a plain dict.get tells a miss of the cache (an exception costs
# more than the whole cached lookup).
NO_ROUTE: tuple[()] = ()
Answer: TypeAlias = "Route | Candidates[Route] | tuple[()]"


class Resolver(Generic[Route]):
    """The per-name cache behind ``RuleSet.resolve``; ``answers`` is read directly there."""

    __slots__ = ("_matcher", "_routes", "_shared", "_unconditional", "answers")

    def __init__(self, routes: tuple[Route, ...]) -> None:
        self._routes = routes
        self._matcher = Matcher([r.match for r in routes])
        # The routes without `when` alone, to find where a name's candidates end; built on
        # first use: model-only configs never need it.
        self._unconditional: Matcher | None = None
        self.answers: dict[str, Answer[Route]] = {}
        self._shared: dict[tuple[int, ...], Candidates[Route]] = {}

    def answer(self, model: str) -> Answer[Route]:
        """The answer for ``model``, computed and cached (the cache stays bounded)."""
        routes = self._routes
        first = self._matcher.find(model)
        found: Answer[Route]
        if first < 0:
            found = NO_ROUTE
        elif routes[first].when is None:
            found = routes[first]
        else:
            found = self._candidates(model)
        if len(self.answers) >= _CACHE_LIMIT:
            self.answers.clear()  # model names are few; a flood of distinct ones must not grow memory
        self.answers[model] = found
        return found

    def _candidates(self, model: str) -> Candidates[Route]:
        if self._unconditional is None:
            self._unconditional = Matcher([() if r.when else r.match for r in self._routes])
        matching = self._matcher.find_all(model)
        last = self._unconditional.find(model)
        # The first matching route without `when` always applies: nothing after it is reached.
        key = tuple(matching if last < 0 else matching[: bisect.bisect_right(matching, last)])
        shared = self._shared.get(key)
        if shared is None:
            if len(self._shared) >= _CACHE_LIMIT:
                self._shared.clear()
            shared = self._shared[key] = Candidates(tuple(self._routes[i] for i in key))
        return shared
