"""Bound parameters: ``:name`` (named) or ``?`` (qmark), bound at execute time.

A plan records which parameter each slot holds; binding turns the execute-time
parameters into a tuple of JSON values, one per slot. The plan itself never holds a
value, so a cached plan cannot leak one execution's values into the next.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import errors
from .collation import PLAIN_TYPES, check_value

__all__ = ["Parameters", "Params"]

#: What execute() receives: a mapping for named parameters, a sequence for qmark.
Params = Mapping[str, Any] | Sequence[Any] | None


@dataclass(frozen=True, slots=True)
class Parameters:
    """The parameters a statement expects: ``names`` per slot, or ``count`` positional."""

    names: tuple[str, ...] = ()
    positional: bool = False

    def bind(self, params: Params) -> tuple[Any, ...]:
        """The bound values, one per slot, checked to be JSON values."""
        if self.positional:
            if params is None or isinstance(params, Mapping | str | bytes):
                if not self.names and not params:
                    return ()
                raise errors.ProgrammingError(
                    f"this statement has {len(self.names)} '?' parameters: pass a sequence"
                )
            if len(params) != len(self.names):
                raise errors.ProgrammingError(
                    f"this statement has {len(self.names)} '?' parameters, {len(params)} were given"
                )
            return tuple(check_value(v, f"parameter {i}") for i, v in enumerate(params, start=1))
        if not self.names:
            return ()
        if not isinstance(params, Mapping):
            raise errors.ProgrammingError(
                "this statement uses named parameters (:name): pass a mapping, not "
                f"{type(params).__name__}"
            )
        try:
            values = [params[n] for n in self.names]
        except KeyError as err:
            raise errors.ProgrammingError(f"no value given for parameter :{err.args[0]}") from None
        return tuple(
            v if type(v) in PLAIN_TYPES else check_value(v, f"parameter :{n}")
            for n, v in zip(self.names, values, strict=True)
        )
