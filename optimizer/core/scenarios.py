"""Scenario presets and the resolution of objective knobs.

A scenario only changes *preferences* (how much tracking error, tax and cost weigh against each
other, how valuable an extra loss is, whether short-term gains are avoided). Hard limits given by
the adviser in the snapshot (gain budgets, restrictions, cash floors, ``no_short_term_gains``)
apply in every scenario and can only be tightened by a preset, never loosened.

Resolution order for each knob: explicit ``overrides`` > the named preset > the snapshot's
``objective`` section > the mode default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from optimizer.core.errors import InvalidSnapshot

PRESETS: dict[str, dict[str, Any]] = {
    # minimize tax: tracking error weighs little, short-term gains are avoided
    "conservative": {
        "risk_aversion": 2.0,
        "tax_weight": 2.0,
        "loss_value_beyond_offset": 0.0,
        "no_short_term_gains": True,
    },
    "moderate": {
        "risk_aversion": 20.0,
        "tax_weight": 1.0,
        "loss_value_beyond_offset": 0.0,
        "no_short_term_gains": False,
    },
    # complete most of the transition: tracking error dominates
    "aggressive": {
        "risk_aversion": 200.0,
        "tax_weight": 1.0,
        "loss_value_beyond_offset": 0.0,
        "no_short_term_gains": False,
    },
    # harvest losses to offset gains; extra losses are banked at half their value
    "tax_sensitive": {
        "risk_aversion": 10.0,
        "tax_weight": 1.5,
        "loss_value_beyond_offset": 0.5,
        "no_short_term_gains": True,
    },
}
PRESET_NAMES: tuple[str, ...] = ("conservative", "moderate", "aggressive", "tax_sensitive")

MODE_DEFAULTS: dict[str, dict[str, float]] = {
    "rebalance": {"risk_aversion": 20.0, "tax_weight": 1.0, "loss_value_beyond_offset": 0.0},
    "transition": {"risk_aversion": 20.0, "tax_weight": 1.0, "loss_value_beyond_offset": 0.0},
    "harvest": {"risk_aversion": 20.0, "tax_weight": 1.0, "loss_value_beyond_offset": 0.5},
    "raise_cash": {"risk_aversion": 20.0, "tax_weight": 1.0, "loss_value_beyond_offset": 0.0},
    "invest_cash": {"risk_aversion": 20.0, "tax_weight": 1.0, "loss_value_beyond_offset": 0.0},
}

OVERRIDABLE = ("risk_aversion", "tax_weight", "loss_value_beyond_offset", "no_short_term_gains")


@dataclass(frozen=True)
class Settings:
    """Resolved objective knobs for one run.

    - ``risk_aversion`` lambda: weight of TE^2 (annual variance, weight^2) in the objective.
    - ``tax_weight`` omega: weight of the tax term (dollars / household value).
    - ``loss_value_beyond_offset`` kappa in [0, 1].
    - ``no_short_term_gains``: forbid selling any lot with a short-term gain.
    """

    scenario: str
    risk_aversion: float
    tax_weight: float
    loss_value_beyond_offset: float
    no_short_term_gains: bool


def resolve_settings(
    snapshot: Any, scenario: str | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Resolve the knobs of one run (see the module docstring for the order)."""
    name = scenario if scenario is not None else snapshot.scenario
    base: dict[str, Any] = dict(MODE_DEFAULTS[snapshot.mode])
    obj = snapshot.objective
    if obj.risk_aversion is not None:
        base["risk_aversion"] = float(obj.risk_aversion)
    if obj.tax_weight is not None:
        base["tax_weight"] = float(obj.tax_weight)
    if obj.loss_value_beyond_offset is not None:
        base["loss_value_beyond_offset"] = float(obj.loss_value_beyond_offset)
    base["no_short_term_gains"] = False
    if name is not None:
        if name not in PRESETS:
            raise InvalidSnapshot(
                "scenario", f"unknown scenario {name!r}; one of {', '.join(PRESETS)}"
            )
        base.update(PRESETS[name])
    for key, value in (overrides or {}).items():
        if key not in OVERRIDABLE:
            raise InvalidSnapshot(f"overrides.{key}", "not an adjustable scenario knob")
        base[key] = value
    kappa = float(base["loss_value_beyond_offset"])
    if not 0.0 <= kappa <= 1.0:
        raise InvalidSnapshot("overrides.loss_value_beyond_offset", "must be in [0, 1]")
    for key in ("risk_aversion", "tax_weight"):
        if float(base[key]) < 0:
            raise InvalidSnapshot(f"overrides.{key}", "must be >= 0")
    return Settings(
        scenario=name if name is not None else ("custom" if overrides else "default"),
        risk_aversion=float(base["risk_aversion"]),
        tax_weight=float(base["tax_weight"]),
        loss_value_beyond_offset=kappa,
        no_short_term_gains=bool(base["no_short_term_gains"])
        or snapshot.budgets.no_short_term_gains,
    )
