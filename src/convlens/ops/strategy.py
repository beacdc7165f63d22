"""Named algorithms for one op, the table that picks them, and the plan's explanation of the pick.

An op with several ways to compute the same result (a convolution, a fused conv + max-pool stage, a
max pooling) keeps each way as one :class:`Strategy` subclass: a ``name``, the ``roles`` it can play
(``forward``, ``kernel_grad``, ``input_grad``; pooling: ``forward``, ``input_grad``), ``applies(problem)``
returning None or a one-line reason why it cannot compute this problem, and ``measured``, the
measurement that justified adding it. Whether a strategy *applies* is a fact of arithmetic; whether it
is *chosen* is a speed question answered by the op's table of :class:`Rule` rows, tried in order per
role: the first row whose condition holds and whose strategy applies wins. Thresholds tuned on a
machine live in those rows (each with the measurement that set it), never in the strategies.

:class:`Registry` does the choosing once per plan (and dtype), honours forcing (``algorithm=NAME`` or a
``{role: NAME}`` mapping; forcing a strategy that does not apply is a :class:`~convlens.errors.ConfigError`
saying why) and records everything in a :class:`Choice` per role, which :class:`Explanation` prints.

Adding a speed-up = one Strategy subclass + one Rule row; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from convlens.errors import ConfigError

__all__ = ["Choice", "Explanation", "Registry", "Rule", "Strategy"]


class Strategy:
    """One algorithm of an op; subclasses set the class attributes and implement their roles.

    A plan makes one instance per chosen strategy (shared by the roles it plays, so a backward can reuse
    what the forward kept) with the op's problem description and the plan's buffers.
    """

    name: ClassVar[str] = ""
    roles: ClassVar[tuple[str, ...]] = ()
    summary: ClassVar[str] = ""
    measured: ClassVar[str] = ""

    @classmethod
    def applies(cls, problem: Any) -> str | None:
        """None when this strategy computes ``problem`` exactly, else a one-line reason why not."""
        return None


@dataclass(frozen=True)
class Rule:
    """One row of a selection table.

    Attributes:
        role: the role this row decides.
        algorithm: the strategy it picks when ``when(problem, chosen)`` holds and the strategy applies.
        condition: ``when`` in words (shown by ``explain()``).
        when: the condition; ``chosen`` maps the roles decided so far (forward first) to their names.
        measured: the measurement that set the condition (or why it has none).
    """

    role: str
    algorithm: str
    condition: str
    when: Callable[[Any, Mapping[str, str]], bool]
    measured: str


@dataclass(frozen=True)
class Choice:
    """How one role was decided.

    Attributes:
        role: ``forward``, ``kernel_grad`` or ``input_grad``.
        algorithm: the winner.
        how: ``'forced by ...'`` or ``'rule: <condition>'``.
        measured: the measurement behind the winning rule (empty when forced).
        applicable: every strategy with this role that applies, winner included.
        not_applicable: ``(name, reason)`` for the strategies with this role that do not apply.
        passed_over: ``(name, condition)`` of the earlier table rows whose strategy applies but whose
            condition did not hold (why an applicable strategy lost).
    """

    role: str
    algorithm: str
    how: str
    measured: str
    applicable: tuple[str, ...]
    not_applicable: tuple[tuple[str, str], ...]
    passed_over: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "role": self.role,
            "algorithm": self.algorithm,
            "how": self.how,
            "measured": self.measured,
            "applicable": list(self.applicable),
            "not_applicable": dict(self.not_applicable),
            "passed_over": dict(self.passed_over),
        }


@dataclass(frozen=True)
class Explanation:
    """What a plan chose for each role, and why (``print(plan.explain())``)."""

    title: str
    choices: tuple[Choice, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"title": self.title, "choices": [c.to_dict() for c in self.choices]}

    def __str__(self) -> str:
        lines = [self.title]
        for c in self.choices:
            lines.append(f"{c.role}: {c.algorithm}  ({c.how})")
            if c.measured:
                lines.append(f"  measured: {c.measured}")
            others = [name for name in c.applicable if name != c.algorithm]
            lines.append(f"  also applicable: {', '.join(others) if others else '-'}")
            if c.passed_over:
                lines.append(
                    "  rules before it that did not hold: " + "; ".join(f"{n} ({w})" for n, w in c.passed_over)
                )
            for name, reason in c.not_applicable:
                lines.append(f"  cannot run: {name} {reason}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # IPython shows the text
        printer.text(str(self))


class Registry:
    """The strategies of one op and its selection table.

    Args:
        op: the op's name, for messages (``'conv2d'``).
        roles: the roles a plan decides, in order.
        strategies: the strategy classes.
        rules: the selection table; for every role the last row must always hold for a strategy that
            always applies (the tests check it), so every problem gets a strategy.
    """

    def __init__(
        self, op: str, roles: Sequence[str], strategies: Sequence[type[Strategy]], rules: Sequence[Rule]
    ) -> None:
        self.op = op
        self.roles = tuple(roles)
        self.strategies: dict[str, type[Strategy]] = {s.name: s for s in strategies}
        self.rules = tuple(rules)
        for rule in self.rules:
            if rule.role not in self.roles or rule.algorithm not in self.strategies:
                raise ValueError(f"{op}: rule {rule} names an unknown role or strategy")  # a bug in the table

    def names(self) -> tuple[str, ...]:
        """Every strategy's name, in registration order."""
        return tuple(self.strategies)

    def forced_roles(self, request: str | Mapping[str, str], owner: str, source: str) -> dict[str, str]:
        """``{role: name}`` from ``'auto'``, a name (every role it plays) or a mapping; ConfigError when unknown."""
        if isinstance(request, str):
            if request == "auto":
                return {}
            strategy = self._strategy(request, owner, source)
            return {role: request for role in strategy.roles if role in self.roles}
        forced = {}
        for role, name in request.items():
            if role not in self.roles:
                raise ConfigError(f"{owner}: {source} names role {role!r}; the roles are {', '.join(self.roles)}.")
            strategy = self._strategy(name, owner, source)
            if role not in strategy.roles:
                raise ConfigError(
                    f"{owner}: {source} asks {name!r} for {role}, but it only computes {', '.join(strategy.roles)}."
                )
            forced[role] = name
        return forced

    def _strategy(self, name: Any, owner: str, source: str) -> type[Strategy]:
        if name not in self.strategies:
            raise ConfigError(
                f"{owner}: {source} must name a {self.op} algorithm ({', '.join(self.strategies)}) or 'auto', "
                f"got {name!r}."
            )
        return self.strategies[name]

    def select(self, problem: Any, forced: Mapping[str, str], owner: str, source: str) -> tuple[Choice, ...]:
        """Decide every role: the forced name (if it applies) or the first table row that holds."""
        chosen: dict[str, str] = {}
        choices = []
        for role in self.roles:
            candidates = [s for s in self.strategies.values() if role in s.roles]
            reasons = {s.name: s.applies(problem) for s in candidates}
            applicable = tuple(name for name, reason in reasons.items() if reason is None)
            not_applicable = tuple((name, reason) for name, reason in reasons.items() if reason is not None)
            passed_over: list[tuple[str, str]] = []
            if role in forced:
                name = forced[role]
                if reasons[name] is not None:
                    raise ConfigError(f"{owner}: {source} cannot run here: {name} {reasons[name]}.")
                how, measured = f"forced by {source}", ""
            else:
                for rule in self.rules:
                    if rule.role != role or rule.algorithm not in applicable:
                        continue
                    if rule.when(problem, chosen):
                        break
                    passed_over.append((rule.algorithm, rule.condition))
                else:  # pragma: no cover - the table's last rows always hold (tested)
                    raise RuntimeError(f"{self.op}: no rule of the selection table decides {role}")
                name, how, measured = rule.algorithm, f"rule: {rule.condition}", rule.measured
            chosen[role] = name
            choices.append(Choice(role, name, how, measured, applicable, not_applicable, tuple(passed_over)))
        return tuple(choices)
