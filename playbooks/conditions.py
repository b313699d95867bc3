"""``when`` conditions of steps: a deliberately small language, checked at load time.

    condition  := clause (("and" | "or") clause)*        evaluated left to right, no parentheses
    clause     := ["not"] reference [operator literal]
    reference  := dotted name: params.repo, backend, previous.ok, steps.verify.problems
    operator   := == != < <= > >=
    literal    := 'text' | "text" | number | true | false | none

A bare reference is true when its value is truthy. A reference to something absent (a step that
was skipped, a parameter not given) is ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Condition", "parse_condition", "ROOTS"]

ROOTS = ("params", "steps", "previous", "backend", "vars")
_TOKEN = re.compile(r"""\s*(==|!=|<=|>=|<|>|'[^']*'|"[^"]*"|[A-Za-z0-9_.\-]+)""")
_OPERATORS = {"==", "!=", "<", "<=", ">", ">="}


@dataclass(frozen=True)
class _Clause:
    negate: bool
    reference: tuple[str, ...]
    operator: str | None
    literal: Any


@dataclass(frozen=True)
class Condition:
    text: str
    clauses: tuple[_Clause, ...]
    joins: tuple[str, ...]

    def evaluate(self, namespace: Mapping[str, Any]) -> bool:
        result = self._clause(self.clauses[0], namespace)
        for join, clause in zip(self.joins, self.clauses[1:]):
            value = self._clause(clause, namespace)
            result = (result and value) if join == "and" else (result or value)
        return result

    def references(self) -> list[tuple[str, ...]]:
        return [clause.reference for clause in self.clauses]

    @staticmethod
    def _clause(clause: _Clause, namespace: Mapping[str, Any]) -> bool:
        value = _lookup(namespace, clause.reference)
        if clause.operator is None:
            outcome = bool(value)
        else:
            outcome = _compare(value, clause.operator, clause.literal)
        return not outcome if clause.negate else outcome


def _lookup(namespace: Mapping[str, Any], reference: tuple[str, ...]) -> Any:
    value: Any = namespace
    for part in reference:
        if isinstance(value, Mapping):
            value = value.get(part)
        else:
            value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _compare(value: Any, operator: str, literal: Any) -> bool:
    if operator == "==":
        return bool(value == literal)
    if operator == "!=":
        return bool(value != literal)
    if value is None or literal is None:
        return False
    try:
        if operator == "<":
            return bool(value < literal)
        if operator == "<=":
            return bool(value <= literal)
        if operator == ">":
            return bool(value > literal)
        return bool(value >= literal)
    except TypeError:
        return False


def _literal(token: str) -> Any:
    if token[0] in "'\"":
        return token[1:-1]
    lowered = token.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        raise ValueError(f"{token!r} is not a literal (quote text: '{token}')") from None


def parse_condition(text: str) -> Condition:
    """Parse ``text``; ``ValueError`` says what is wrong."""
    tokens = []
    position = 0
    stripped = text.strip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if not match or match.end() == position:
            raise ValueError(f"cannot read the condition at {stripped[position:]!r}")
        tokens.append(match.group(1))
        position = match.end()
    if not tokens:
        raise ValueError("empty condition")
    clauses: list[_Clause] = []
    joins: list[str] = []
    index = 0
    while True:
        negate = False
        if index < len(tokens) and tokens[index] == "not":
            negate, index = True, index + 1
        if index >= len(tokens):
            raise ValueError(f"condition {text!r} ends where a name was expected")
        name = tokens[index]
        index += 1
        reference = tuple(name.split("."))
        if reference[0] not in ROOTS or not all(reference):
            raise ValueError(f"{name!r} does not start with one of {', '.join(ROOTS)}")
        operator = literal = None
        if index < len(tokens) and tokens[index] in _OPERATORS:
            operator = tokens[index]
            if index + 1 >= len(tokens):
                raise ValueError(f"condition {text!r} ends after {operator!r}")
            literal = _literal(tokens[index + 1])
            index += 2
        clauses.append(_Clause(negate, reference, operator, literal))
        if index >= len(tokens):
            break
        if tokens[index] not in ("and", "or"):
            raise ValueError(f"expected 'and' or 'or' in {text!r}, found {tokens[index]!r}")
        joins.append(tokens[index])
        index += 1
    return Condition(text, tuple(clauses), tuple(joins))
