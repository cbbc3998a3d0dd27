"""The convex lot-level problem in cvxpy, DPP-parametrized and cached.

Variables (weights of the household value V):
    x (L)  sale weight per lot,           0 <= x <= xu
    b (P)  buy weight per (account, security) pair, 0 <= b <= bu
    d (m)  deviation from target in risk-label space
    u, v   epigraph variables of the tax function

Objective (weights; multiply by V for dollar-equivalents)::

    J = lambda * TE^2                                 TE^2 = |Gt d|^2 + |sig * d|^2
      + cx @ x + cb @ b                               bps cost + ticket-fee proxy -+ location drag
      + tax                                           tax = f + max(0, (kappa-1) f - c)
    f  = tau_L (R + R0) + (tau_S - tau_L) max(0, R_S + R0_S)   (omega folded in)
    c  = (1 - kappa) tau_S O / V                      O: ordinary-income loss offset ($)

``R = gN @ x`` is the realized net gain (taxable lots only), ``R_S = gS @ x`` its short-term part,
``R0``/``R0_S`` the year-to-date realized gains. ``f`` over-states the tax only when long-term
losses offset short-term gains (it then charges the LT rate instead of the ST rate on the
offset); it is convex, exact in every other case, and the reported tax is recomputed exactly.

Constraints::

    d == D A (b - S x) + d0                 deviation (d0 = D A h0 - t)
    gN @ x <= cap_net,  gS @ x <= cap_st    gain budgets (cap - ytd, weights)
    cash0 - floor + Ea (px * x) - Eb (pb * b) >= 0      per-account cash (no transfers)
    klo <= K (b - S x) <= khi               asset-class bounds and drift bands
    A (b - S x) <= mwr                      household max weight per security
    b - S x <= mhr                          per-account max weight (only when given)
    ccl <= 1'(px * x) - 1'(pb * b) <= cch   total cash bounds (IPS "cash" class, when given)

Every coefficient that changes between runs of the same *shape* is a cvxpy ``Parameter``, so
the compiled problem (cvxpy's parameter-to-solver-data map) is cached by structure and reused:
the direction fixing, the re-solves after rounding, the four scenarios and the warm re-solves of
an account with new prices all only assign new parameter values.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from optimizer.core.errors import SolverFailed
from optimizer.core.model import BIG, ProblemData

_CACHE_SIZE = 16
_cache: OrderedDict[str, CompiledModel] = OrderedDict()
_cache_lock = threading.Lock()

SOLVER_DEFAULTS: dict[str, dict[str, Any]] = {
    "CLARABEL": {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9, "max_iter": 200},
    "SCS": {"eps_abs": 1e-7, "eps_rel": 1e-7, "max_iters": 200000},
}


@dataclass
class ContinuousSolution:
    """Solution of one continuous solve (weights) with the dual values needed for facts."""

    status: str
    x: np.ndarray
    b: np.ndarray
    objective: float
    solve_time: float
    iterations: int
    duals: dict[str, np.ndarray] = field(default_factory=dict)


def _structure_key(pd: ProblemData, solver: str) -> str:
    h = hashlib.sha256()
    h.update(solver.encode())
    for arr in (pd.lot_sec, pd.lot_acc, pd.pair_acc, pd.pair_sec):
        h.update(np.ascontiguousarray(arr, dtype=np.int64).tobytes())
    for mat in (pd.D, pd.Mc):
        m = sp.csr_matrix(mat)
        h.update(repr(m.shape).encode())
        h.update(m.indptr.tobytes())
        h.update(m.indices.tobytes())
        h.update(np.ascontiguousarray(m.data).tobytes())
    h.update(repr((pd.Gt.shape, pd.has_pair_max, pd.cash_lo > -BIG or pd.cash_hi < BIG)).encode())
    h.update(repr(_class_rows(pd)).encode())
    return h.hexdigest()


def _class_rows(pd: ProblemData) -> tuple[int, ...]:
    """Indices of the asset classes that have at least one finite bound."""
    return tuple(int(c) for c in np.nonzero((pd.class_lo > -BIG) | (pd.class_hi < BIG))[0])


class CompiledModel:
    """One cvxpy problem for a given structure, with its parameters; solved many times."""

    def __init__(self, pd: ProblemData, solver: str) -> None:
        self.solver = solver
        self.lock = threading.Lock()
        L, P, n_acc = pd.L, pd.P, pd.n_acc
        m = pd.D.shape[0]
        r = pd.Gt.shape[0]
        self.rows = _class_rows(pd)
        self.has_cash_class = pd.cash_lo > -BIG or pd.cash_hi < BIG
        self.has_pair_max = pd.has_pair_max

        x = cp.Variable(L, name="x")
        b = cp.Variable(P, name="b")
        d = cp.Variable(m, name="d")
        u = cp.Variable(name="u")
        v = cp.Variable(name="v")
        self.x, self.b = x, b

        par = self.par = {
            "xu": cp.Parameter(L, nonneg=True, name="xu"),
            "bu": cp.Parameter(P, nonneg=True, name="bu"),
            "d0": cp.Parameter(m, name="d0"),
            "Gt": cp.Parameter((r, m), name="Gt"),
            "sig": cp.Parameter(m, nonneg=True, name="sig"),
            "cx": cp.Parameter(L, name="cx"),
            "cb": cp.Parameter(P, name="cb"),
            "ax": cp.Parameter(L, name="ax"),
            "a0": cp.Parameter(name="a0"),
            "ex": cp.Parameter(L, name="ex"),
            "e0": cp.Parameter(name="e0"),
            "a2x": cp.Parameter(L, name="a2x"),
            "a20": cp.Parameter(name="a20"),
            "k1": cp.Parameter(nonpos=True, name="k1"),
            "gN": cp.Parameter(L, name="gN"),
            "capN": cp.Parameter(name="capN"),
            "gS": cp.Parameter(L, name="gS"),
            "capS": cp.Parameter(name="capS"),
            "cf": cp.Parameter(n_acc, name="cf"),
            "px": cp.Parameter(L, nonneg=True, name="px"),
            "pb": cp.Parameter(P, nonneg=True, name="pb"),
            "mwr": cp.Parameter(pd.n, name="mwr"),
        }
        S = pd.S
        DA = sp.csr_matrix(pd.D @ pd.A)
        net = b - S @ x  # change of pair holdings
        cons: dict[str, cp.Constraint] = {
            "x_lo": x >= 0,
            "x_ub": x <= par["xu"],
            "b_lo": b >= 0,
            "b_ub": b <= par["bu"],
            "dev": d == DA @ net + par["d0"],
            "u1": u >= par["ex"] @ x + par["e0"],
            "u0": u >= 0,
            "v1": v >= par["a2x"] @ x + par["a20"] + par["k1"] * u,
            "v0": v >= 0,
            "gain_net": par["gN"] @ x <= par["capN"],
            "gain_st": par["gS"] @ x <= par["capS"],
            "cash": par["cf"]
            + pd.Ea @ cp.multiply(par["px"], x)
            - pd.Eb @ cp.multiply(par["pb"], b)
            >= 0,
            "max_weight": pd.A @ net <= par["mwr"],
        }
        if self.rows:
            K = sp.csr_matrix((pd.Mc @ pd.A)[list(self.rows)])
            par["klo"] = cp.Parameter(len(self.rows), name="klo")
            par["khi"] = cp.Parameter(len(self.rows), name="khi")
            cons["class_lo"] = K @ net >= par["klo"]
            cons["class_hi"] = K @ net <= par["khi"]
        if self.has_pair_max:
            par["mhr"] = cp.Parameter(P, name="mhr")
            cons["pair_max"] = net <= par["mhr"]
        if self.has_cash_class:
            par["ccl"] = cp.Parameter(name="ccl")
            par["cch"] = cp.Parameter(name="cch")
            flow = cp.sum(cp.multiply(par["px"], x)) - cp.sum(cp.multiply(par["pb"], b))
            cons["cash_class_lo"] = flow >= par["ccl"]
            cons["cash_class_hi"] = flow <= par["cch"]
        te2 = cp.sum_squares(par["Gt"] @ d) + cp.sum_squares(cp.multiply(par["sig"], d))
        tax = par["ax"] @ x + par["a0"] + u + v
        self.te2_expr = te2
        self.tax_expr = tax
        objective = te2 + par["cx"] @ x + par["cb"] @ b + tax
        self.cons = cons
        self.problem = cp.Problem(cp.Minimize(objective), list(cons.values()))
        self.solves = 0

    def is_dpp(self) -> bool:
        """True when the problem follows the DPP rules (so its compilation is reused)."""
        return bool(self.problem.is_dpp())

    def assign(self, values: dict[str, Any]) -> None:
        """Set parameter values (missing optional ones are ignored)."""
        for name, val in values.items():
            if name in self.par:
                self.par[name].value = val

    def solve(self, values: dict[str, Any], options: dict[str, Any]) -> ContinuousSolution:
        """Assign ``values`` and solve; raise :class:`SolverFailed` on a numerical failure."""
        with self.lock:
            self.assign(values)
            t0 = time.perf_counter()
            try:
                self.problem.solve(solver=self.solver, **options)
            except cp.error.SolverError as exc:
                raise SolverFailed(f"{self.solver} failed: {exc}") from None
            elapsed = time.perf_counter() - t0
            self.solves += 1
            status = str(self.problem.status)
            stats = self.problem.solver_stats
            solve_time = float(stats.solve_time) if stats and stats.solve_time else elapsed
            iters = int(stats.num_iters) if stats and stats.num_iters is not None else 0
            if not iters and stats and isinstance(stats.extra_stats, dict):
                iters = int(stats.extra_stats.get("info", {}).get("iter", 0))
            if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE, cp.UNBOUNDED):
                return ContinuousSolution(
                    status="infeasible",
                    x=np.zeros(self.x.shape[0]),
                    b=np.zeros(self.b.shape[0]),
                    objective=float("inf"),
                    solve_time=solve_time,
                    iterations=iters,
                )
            if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or self.x.value is None:
                raise SolverFailed(f"{self.solver} returned status {status}")
            duals = {
                name: np.atleast_1d(np.asarray(c.dual_value, dtype=float))
                for name, c in self.cons.items()
                if c.dual_value is not None
            }
            return ContinuousSolution(
                status="optimal" if status == cp.OPTIMAL else "optimal_inaccurate",
                x=np.clip(np.asarray(self.x.value, dtype=float), 0.0, None),
                b=np.clip(np.asarray(self.b.value, dtype=float), 0.0, None),
                objective=float(self.problem.value),
                solve_time=solve_time,
                iterations=iters,
                duals=duals,
            )


def compiled_model(pd: ProblemData, solver: str) -> CompiledModel:
    """The cached :class:`CompiledModel` for this structure and solver (built on first use)."""
    key = _structure_key(pd, solver)
    with _cache_lock:
        model = _cache.get(key)
        if model is not None:
            _cache.move_to_end(key)
            return model
    model = CompiledModel(pd, solver)
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def clear_cache() -> None:
    """Forget every compiled problem (tests and benchmarks use it to measure cold starts)."""
    with _cache_lock:
        _cache.clear()


def parameter_values(
    pd: ProblemData,
    xu: np.ndarray,
    bu: np.ndarray,
    *,
    use_ticket_proxy: bool = True,
    relax: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Numerical values of every parameter (see the module docstring for the formulas).

    ``relax`` names constraint families to lift (for the "what it costs" facts and the
    infeasibility diagnosis): ``gain_net``, ``gain_st``, ``cash``, ``class``, ``max_weight``,
    ``cash_class``.
    """
    st = pd.settings
    lam = max(st.risk_aversion, 0.0)
    omega = st.tax_weight
    kappa = st.loss_value_beyond_offset
    gN, gS, _ = pd.lot_gain_ratios()
    tau_s, tau_l = pd.tau_s, pd.tau_l
    ytd = pd.ytd_s_w + pd.ytd_l_w
    ax = omega * tau_l * gN
    a0 = omega * tau_l * ytd
    ex = omega * (tau_s - tau_l) * gS
    e0 = omega * (tau_s - tau_l) * pd.ytd_s_w
    c = (1.0 - kappa) * omega * tau_s * pd.offset_w
    proxy = pd.proxy_rate if use_ticket_proxy else 0.0
    drag_pair = pd.pair_drag()
    drag_lot = drag_pair[pd.lot_acc * pd.n + pd.lot_sec] if pd.L else np.zeros(0)
    k_lot, k_pair = pd.lot_k(), pd.pair_k()
    DA = pd.D @ pd.A
    h0 = pd.h0
    w0 = pd.A @ h0
    K_all = pd.Mc @ pd.A
    sq = np.sqrt(lam)
    vals: dict[str, Any] = {
        "xu": np.asarray(xu, dtype=float),
        "bu": np.asarray(bu, dtype=float),
        "d0": DA @ h0 - pd.t_dev,
        "Gt": sq * pd.Gt,
        "sig": sq * pd.sig,
        "cx": k_lot + proxy - drag_lot,
        "cb": k_pair + proxy + drag_pair,
        "ax": ax,
        "a0": a0,
        "ex": ex,
        "e0": e0,
        "a2x": (kappa - 1.0) * ax,
        "a20": (kappa - 1.0) * a0 - c,
        "k1": kappa - 1.0,
        "gN": gN,
        "capN": BIG if "gain_net" in relax else pd.cap_net_w,
        "gS": gS,
        "capS": BIG if "gain_st" in relax else pd.cap_st_w,
        "cf": pd.cash0 - pd.floor + (BIG if "cash" in relax else 0.0),
        "px": 1.0 - k_lot,
        "pb": 1.0 + k_pair,
        "mwr": (pd.mw_sec if "max_weight" not in relax else np.full(pd.n, BIG)) - w0,
    }
    rows = list(_class_rows(pd))
    if rows:
        kh0 = (K_all @ h0)[rows]
        lo = pd.class_lo[rows] if "class" not in relax else np.full(len(rows), -BIG)
        hi = pd.class_hi[rows] if "class" not in relax else np.full(len(rows), BIG)
        vals["klo"] = lo - kh0
        vals["khi"] = hi - kh0
    if pd.has_pair_max:
        vals["mhr"] = (pd.mw_pair if "max_weight" not in relax else np.full(pd.P, BIG)) - h0
    if pd.cash_lo > -BIG or pd.cash_hi < BIG:
        c0 = float(pd.cash0.sum())
        relax_cc = "cash_class" in relax
        vals["ccl"] = (-BIG if relax_cc else pd.cash_lo) - c0
        vals["cch"] = (BIG if relax_cc else pd.cash_hi) - c0
    return vals


def solver_options(name: str, user: dict[str, Any] | None = None) -> dict[str, Any]:
    """Default tolerances of ``name`` updated with the snapshot's ``solver.options``."""
    opts = dict(SOLVER_DEFAULTS.get(name, {}))
    opts.update(user or {})
    return opts
