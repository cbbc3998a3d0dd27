"""Exceptions raised by the optimizer core.

Every error carries a one-line, human-readable message (``str(exc)``) that the command line
prints without a traceback, plus structured fields for programmatic use.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class OptimizerError(Exception):
    """Base class of every error the optimizer core raises on purpose."""

    def as_dict(self) -> dict[str, object]:
        """Structured form (JSON-serializable) of the error."""
        return {"error": type(self).__name__, "message": str(self)}


class InvalidSnapshot(OptimizerError):
    """The input snapshot is malformed; ``field`` names the offending field (a JSON path)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"invalid snapshot: {field}: {problem}")

    def as_dict(self) -> dict[str, object]:
        return {"error": "InvalidSnapshot", "field": self.field, "message": str(self)}


@dataclass(frozen=True)
class Conflict:
    """One constraint that takes part in an infeasibility, in words and as numbers."""

    constraint: str
    text: str
    shortfall: str = ""
    details: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"constraint": self.constraint, "text": self.text}
        if self.shortfall:
            out["shortfall"] = self.shortfall
        if self.details:
            out["details"] = dict(sorted(self.details.items()))
        return out


class InfeasibleProblem(OptimizerError):
    """No trade list satisfies every hard constraint; ``conflicts`` names the ones that clash."""

    def __init__(self, summary: str, conflicts: list[Conflict] | None = None) -> None:
        self.summary = summary
        self.conflicts = list(conflicts or [])
        words = "; ".join(c.text for c in self.conflicts)
        super().__init__(f"infeasible: {summary}" + (f" ({words})" if words else ""))

    def as_dict(self) -> dict[str, object]:
        return {
            "error": "InfeasibleProblem",
            "message": str(self),
            "summary": self.summary,
            "conflicts": [c.as_dict() for c in self.conflicts],
        }


class SolverFailed(OptimizerError):
    """The numerical solver did not return a usable solution (not an infeasibility proof)."""


class CheckFailed(OptimizerError):
    """The independent checker rejected a proposed trade list; it is never returned as feasible."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = list(violations)
        super().__init__(
            "result failed the independent hard-constraint check: " + "; ".join(violations[:5])
        )

    def as_dict(self) -> dict[str, object]:
        return {"error": "CheckFailed", "message": str(self), "violations": self.violations}
