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

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import cvxpy as cp
import numpy as np
import scipy.sparse as sp
from cvxpy import settings as cps
from cvxpy.reductions.solvers.conic_solvers.conic_solver import ConicSolver
from cvxpy.reductions.solvers.solver_inverse_data import SolverInverseData

from optimizer.core import kernels
from optimizer.core.errors import SolverFailed
from optimizer.core.model import BIG, ProblemData

# Compiled problems by structure, least recently used first. A batch over a firm's book
# compiles one structure per household and forecast year; keeping them lets the next scenario or
# re-run of a household skip cvxpy's compilation (tens of milliseconds for a small household,
# more than the solves). Bounded by count and by an estimate of the memory each holds
# (:meth:`CompiledModel.nbytes`; measured: 0.6 MB for a two-account household of 40 lots, 3.3 MB
# for 130 securities and 150 lots, 6.7 MB for the 2,000-lot transition).
_CACHE_SIZE = 128
_CACHE_BYTES = 512 * 2**20
_cache: OrderedDict[tuple[Any, ...], CompiledModel] = OrderedDict()
_cache_lock = threading.Lock()

SOLVER_DEFAULTS: dict[str, dict[str, Any]] = {
    "CLARABEL": {
        "tol_gap_abs": 1e-9,
        "tol_gap_rel": 1e-9,
        "tol_feas": 1e-9,
        "max_iter": 200,
        "max_threads": 1,
    },
    "SCS": {"eps_abs": 1e-7, "eps_rel": 1e-7, "max_iters": 200000},
}

_BOUNDS = ("xu", "bu")  # the parameters that change between the solves of one run

# a run's solve function: the bounds xu, bu -> the continuous solution
BoundsSolve = Callable[[np.ndarray, np.ndarray], "ContinuousSolution"]

# reductions between our cvxpy problem and the solver that keep variable and constraint ids and
# values as they are (so the solver's primal and dual vectors map straight back)
_PLAIN_REDUCTIONS = {"Dcp2Cone", "CvxAttr2Constr", "EliminateZeroSized", "ConeMatrixStuffing"}


@dataclass
class ContinuousSolution:
    """Solution of one continuous solve (weights) with the dual values needed for facts."""

    status: str
    x: np.ndarray
    b: np.ndarray
    objective: float
    solve_time: float
    iterations: int
    duals: Mapping[str, np.ndarray] = field(default_factory=dict)


def _structure_key(pd: ProblemData, solver: str) -> tuple[Any, ...]:
    """What the compiled problem depends on: the solver, the lots' securities and accounts,
    the sizes, the risk labels' and classes' incidence matrices, the factor's shape and which
    optional constraint blocks exist (the bytes themselves: a dictionary key, no digest)."""
    parts: list[Any] = [solver, pd.n, pd.n_acc, _int64_bytes(pd.lot_sec), _int64_bytes(pd.lot_acc)]
    for mat in (pd.D, pd.Mc):
        m = mat if isinstance(mat, sp.csr_matrix) else sp.csr_matrix(mat)
        parts += [m.shape, m.indptr.tobytes(), m.indices.tobytes(), m.data.tobytes()]
    parts += [pd.Gt.shape, pd.has_pair_max, pd.cash_lo > -BIG or pd.cash_hi < BIG, _class_rows(pd)]
    return tuple(parts)


def _int64_bytes(arr: np.ndarray) -> bytes:
    return np.ascontiguousarray(arr, dtype=np.int64).tobytes()


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
        self.compiled: SolverData | None = None
        self._fallback = False
        self.L, self.P = L, P

    def nbytes(self) -> int:
        """Estimated memory held (bytes): the cvxpy problem and its compiled tensors, which
        measured at about 0.5 MB plus five times the tensors' own size."""
        tensors = 0 if self.compiled is None else self.compiled.nbytes
        return 2**19 + 6 * tensors

    def is_dpp(self) -> bool:
        """True when the problem follows the DPP rules (so its compilation is reused)."""
        return bool(self.problem.is_dpp())

    def assign(self, values: dict[str, Any]) -> None:
        """Set parameter values (missing optional ones are ignored)."""
        for name, val in values.items():
            if name in self.par:
                self.par[name].value = val

    def _compile(self, values: dict[str, Any]) -> float:
        """Compile on first use (the caller holds ``self.lock``); the seconds it took."""
        if self.compiled is not None or self._fallback:
            return 0.0
        t0 = time.perf_counter()
        self.assign(values)
        self.compiled = SolverData.build(self)
        self._fallback = self.compiled is None
        return time.perf_counter() - t0

    def solver_for(
        self, values: dict[str, Any], options: dict[str, Any]
    ) -> tuple[BoundsSolve, float]:
        """A solve function for one run: every parameter is fixed to ``values`` but the bounds,
        which each call passes (``solve(xu, bu)``), and the seconds spent compiling now (the
        first use of a new structure).

        With Clarabel called directly (:class:`RunSolver`) whatever does not depend on the
        bounds (the parameter vector, A's values, q, the settings) is computed here once, so
        the run's re-solves only make ``b``; otherwise each call goes through :meth:`solve`.
        """
        with self.lock:
            compile_time = self._compile(values)
            compiled = self.compiled
            direct = compiled.run_solver(self, values, options) if compiled is not None else None
        if direct is not None:
            return direct.solve, compile_time

        def through_model(xu: np.ndarray, bu: np.ndarray) -> ContinuousSolution:
            return self.solve({**values, "xu": xu, "bu": bu}, options)

        return through_model, compile_time

    def solve(self, values: dict[str, Any], options: dict[str, Any]) -> ContinuousSolution:
        """Assign ``values`` and solve; raise :class:`SolverFailed` on a numerical failure.

        The first solve compiles the problem through cvxpy (``get_problem_data``: the DPP
        parameter-to-solver-data tensors). Every solve then applies the parameter vector to those
        tensors with numpy, hands the data to the solver (Clarabel directly, SCS through cvxpy's
        interface) and maps the primal and dual vectors back by variable and constraint id
        (:class:`SolverData`), a new solver object every time, which skips
        cvxpy's per-solve Python work (parameter validation, reduction chain, unpacking) without
        changing the data the solver receives. A problem whose compiled form does not fit that
        mapping falls back to ``problem.solve``.
        """
        with self.lock:
            self._compile(values)
            if self.compiled is not None:
                sol = self.compiled.solve(values, options)
            else:
                sol = self._solve_cvxpy(values, options)
            self.solves += 1
            return sol

    def _solve_cvxpy(self, values: dict[str, Any], options: dict[str, Any]) -> ContinuousSolution:
        self.assign(values)
        t0 = time.perf_counter()
        try:
            # no warm start: a solve must not depend on what was solved before (repeatability)
            self.problem.solve(solver=self.solver, warm_start=False, **options)
        except cp.error.SolverError as exc:
            raise SolverFailed(f"{self.solver} failed: {exc}") from None
        elapsed = time.perf_counter() - t0
        status = str(self.problem.status)
        stats = self.problem.solver_stats
        solve_time = float(stats.solve_time) if stats and stats.solve_time else elapsed
        if stats and stats.setup_time:
            solve_time += float(stats.setup_time)
        iters = int(stats.num_iters) if stats and stats.num_iters is not None else 0
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE, cp.UNBOUNDED):
            return _infeasible_solution(self.L, self.P, solve_time, iters)
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


def _infeasible_solution(L: int, P: int, solve_time: float, iters: int) -> ContinuousSolution:
    return ContinuousSolution(
        status="infeasible",
        x=np.zeros(L),
        b=np.zeros(P),
        objective=float("inf"),
        solve_time=solve_time,
        iterations=iters,
    )


class SolverData:
    """cvxpy's compiled parameter-to-solver-data map of one :class:`CompiledModel`, applied
    with numpy.

    ``problem.get_problem_data`` compiles the DPP problem once into sparse tensors that map the
    parameter vector to the conic data ``(P, q, A, b)``. A solve then is: the parameter vector
    (values flattened in cvxpy's column order), three sparse matrix-vector products, the same
    data dictionary cvxpy's ``ConicSolver.apply`` would build (``A`` negated, ``b`` from the
    offset column), cvxpy's own ``solve_via_data`` and ``invert`` of the solver interface (status
    map, dual extraction), and slices of the solution vector by variable id. The reductions in
    between (:data:`_PLAIN_REDUCTIONS`) keep ids and values, so nothing else is to invert.
    """

    def __init__(
        self,
        conic: ConicSolver,
        inverse: Any,
        dims: Any,
        params: list[tuple[str, int, int, str]],
        n_par: int,
        const_col: int,
        a_map: tuple[sp.csr_matrix, np.ndarray, np.ndarray, tuple[int, int], int, np.ndarray],
        q_map: sp.csr_matrix,
        p_map: tuple[sp.csr_matrix, np.ndarray, np.ndarray, tuple[int, int]] | None,
        x_var: tuple[int, slice, slice],
        z_slices: dict[str, slice],
        cons: dict[str, int],
    ) -> None:
        self.conic = conic
        self.inverse: dict[Any, Any] = getattr(inverse, "inverse_data", inverse)
        self.stale_offset = float(inverse[cps.OFFSET])
        self.dims = dims
        self.params = params
        self.n_par = n_par
        self.const_col = const_col
        self.a_map = a_map
        self.q_map = q_map
        self.p_map = p_map
        self.x_id, self.x_sl, self.b_sl = x_var
        self.n_x = self.x_sl.stop - self.x_sl.start
        self.n_b = self.b_sl.stop - self.b_sl.start
        self.z_slices = z_slices
        self.cons = cons
        self.solver_name = conic.name()
        mats = [a_map[0], q_map] + ([p_map[0]] if p_map is not None else [])
        self.nbytes = sum(
            int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes) for m in mats
        ) + sum(int(a.nbytes) for a in (a_map[1], a_map[2], a_map[5]))
        self.direct = self.solver_name == "CLARABEL"
        self._p_const: sp.csc_matrix | None = None
        self._p_lite: _Csc | None = None
        self._a_lite: _Csc | None = None
        self._bounds_rhs_only = False
        self._b_map: tuple[sp.csr_matrix, np.ndarray, int] | None = None
        self._red_a: sp.csr_matrix | None = None
        self._bound_params = [p for p in params if p[0] in _BOUNDS]
        self._settings: dict[str, Any] = {}
        if self.direct:
            from cvxpy.reductions.solvers.conic_solvers.clarabel_conif import (
                dims_to_solver_cones,
            )

            self.cones = dims_to_solver_cones(dims)
            # P does not depend on the parameters (the risk term's parameters sit in A): keep
            # its upper triangle, as cvxpy's interface passes it
            if p_map is not None and not p_map[0][:, :-1].count_nonzero():
                p_red, p_idx, p_ptr, p_shape = p_map
                vec = np.zeros(p_red.shape[1])
                vec[-1] = 1.0
                full = sp.csc_array((p_red @ vec, p_idx, p_ptr), shape=p_shape)
                self._p_const = sp.triu(full).tocsc()
                self._p_lite = _Csc.of(self._p_const)
            # A's sparsity pattern is fixed: only its values change from solve to solve
            red, a_idx, a_ptr, a_shape, n_a, b_rows = a_map
            pattern = sp.csc_array((np.ones(n_a), a_idx, a_ptr), shape=a_shape)
            self._a_lite = _Csc(
                [], a_idx.tolist(), a_ptr.tolist(), a_shape, bool(pattern.has_canonical_format)
            )
            # the bounds xu, bu: their columns of the map reach b only (then a run's re-solves
            # with new bounds share A, P and q; see RunSolver)
            bound_cols = np.concatenate(
                [np.arange(col, col + size) for name, col, size, _ in params if name in _BOUNDS]
                or [np.zeros(0, dtype=int)]
            )
            self._bounds_rhs_only = not (
                red[:n_a][:, bound_cols].count_nonzero() or q_map[:, bound_cols].count_nonzero()
            )
            self._b_map = (sp.csr_matrix(red[n_a:]), b_rows, int(a_shape[0]))
            # the rows of the map that make A's values (a slice of a sparse matrix is a new
            # matrix: made once here, not per run)
            self._red_a = sp.csr_matrix(red[:n_a])
            self.nbytes += sum(
                int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes)
                for m in (self._red_a, self._b_map[0])
            )

    @classmethod
    def build(cls, model: CompiledModel) -> SolverData | None:
        """Compile ``model.problem`` (its parameters must have values); None if it does not fit."""
        from cvxpy.lin_ops.lin_op import CONSTANT_ID

        try:
            data, chain, inverse = model.problem.get_problem_data(model.solver, enforce_dpp=True)
        except cp.error.SolverError as exc:
            raise SolverFailed(f"{model.solver} failed: {exc}") from None
        if any(type(r).__name__ not in _PLAIN_REDUCTIONS for r in chain.reductions[:-1]):
            return None
        conic = chain.solver
        if not isinstance(conic, ConicSolver):
            return None
        prog = data[cps.PARAM_PROB]
        solver_inv = inverse[-1]
        by_id = {p.id: name for name, p in model.par.items()}
        params: list[tuple[str, int, int, str]] = []
        const_col = -1
        for pid, col in prog.param_id_to_col.items():
            if pid == CONSTANT_ID:
                const_col = int(col)
                continue
            if pid not in by_id:
                return None
            p = model.par[by_id[pid]]
            sign = "nonneg" if p.is_nonneg() else "nonpos" if p.is_nonpos() else ""
            params.append((by_id[pid], int(col), int(prog.param_id_to_size[pid]), sign))
        if const_col < 0:
            return None
        n_par = int(prog.total_param_size) + 1
        n_var = int(prog.x.size)
        prog.reduced_A.cache(keep_zeros=False)
        if prog.reduced_A.problem_data_index is None:
            return None
        indices, indptr, shape = prog.reduced_A.problem_data_index
        if shape != (shape[0], n_var + 1):
            return None
        n_a = int(indptr[n_var])
        a_map = (
            sp.csr_matrix(prog.reduced_A.reduced_mat),
            np.asarray(indices[:n_a]),
            np.asarray(indptr[: n_var + 1]),
            (int(shape[0]), n_var),
            n_a,
            np.asarray(indices[n_a : indptr[n_var + 1]]),
        )
        p_map = None
        if prog.P is not None:
            prog.reduced_P.cache(keep_zeros=False)
            if prog.reduced_P.problem_data_index is None:
                return None
            p_idx, p_ptr, p_shape = prog.reduced_P.problem_data_index
            p_map = (
                sp.csr_matrix(prog.reduced_P.reduced_mat),
                np.asarray(p_idx),
                np.asarray(p_ptr),
                (int(p_shape[0]), int(p_shape[1])),
            )
        col = prog.var_id_to_col
        if model.x.id not in col or model.b.id not in col:
            return None
        x_col, b_col = int(col[model.x.id]), int(col[model.b.id])
        x_var = (
            prog.x.id,
            slice(x_col, x_col + model.x.size),
            slice(b_col, b_col + model.b.size),
        )
        # where each constraint's dual sits in the solver's dual vector (equalities first)
        z_slices: dict[int, slice] = {}
        offset = 0
        for c in solver_inv[ConicSolver.EQ_CONSTR] + solver_inv[ConicSolver.NEQ_CONSTR]:
            z_slices[c.id] = slice(offset, offset + c.size)
            offset += c.size
        cons = {name: c.id for name, c in model.cons.items()}
        if not set(cons.values()) <= set(z_slices):
            return None
        return cls(
            conic,
            solver_inv,
            data[ConicSolver.DIMS],
            sorted(params, key=lambda t: t[1]),
            n_par,
            const_col,
            a_map,
            sp.csr_matrix(prog.q),
            p_map,
            x_var,
            {name: z_slices[cid] for name, cid in cons.items()},
            cons,
        )

    def parameter_vector(self, values: dict[str, Any]) -> np.ndarray:
        """cvxpy's flattened parameter vector (column-major values, constant 1 at the end)."""
        vec = np.zeros(self.n_par)
        vec[self.const_col] = 1.0
        for name, col, size, _sign in self.params:
            v = values[name]
            if size == 1 and type(v) is float:
                vec[col] = v
                continue
            flat = np.asarray(v, dtype=float).ravel(order="F")
            if flat.size != size:
                raise ValueError(f"parameter {name}: {flat.size} values for size {size}")
            vec[col : col + size] = flat
        # the signs, checked on the whole vector at once (the parameter is named on failure)
        nonneg, nonpos = self._sign_cols
        if (nonneg.size and vec[nonneg].min() < 0) or (nonpos.size and vec[nonpos].max() > 0):
            for name, col, size, sign in self.params:
                part = vec[col : col + size]
                if sign == "nonneg" and size and part.min() < 0:
                    raise ValueError(f"parameter {name} must be nonnegative")
                if sign == "nonpos" and size and part.max() > 0:
                    raise ValueError(f"parameter {name} must be nonpositive")
        return vec

    @functools.cached_property
    def _sign_cols(self) -> tuple[np.ndarray, np.ndarray]:
        """The columns of the vector that must be nonnegative and nonpositive."""

        def cols(want: str) -> np.ndarray:
            parts = [np.arange(c, c + n) for _, c, n, sign in self.params if sign == want]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.intp)

        return cols("nonneg"), cols("nonpos")

    def problem_data(self, values: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """The solver's data dictionary (as ``ConicSolver.apply`` builds it) and the offset."""
        vec = self.parameter_vector(values)
        red, a_idx, a_ptr, a_shape, n_a, b_rows = self.a_map
        flat = red @ vec
        A = sp.csc_array((-flat[:n_a], a_idx, a_ptr), shape=a_shape)
        b = np.zeros(a_shape[0])
        b[b_rows] = flat[n_a:]
        q_full = self.q_map @ vec
        data: dict[str, Any] = {
            cps.C: np.asarray(q_full[:-1], dtype=float),
            cps.A: A,
            cps.B: b,
            ConicSolver.DIMS: self.dims,
        }
        if self.p_map is not None:
            p_red, p_idx, p_ptr, p_shape = self.p_map
            data[cps.P] = sp.csc_array((p_red @ vec, p_idx, p_ptr), shape=p_shape)
        return data, float(q_full[-1])

    def solve(self, values: dict[str, Any], options: dict[str, Any]) -> ContinuousSolution:
        if self.direct:
            return self._solve_clarabel(values, options)
        data, offset = self.problem_data(values)
        L = self.x_sl.stop - self.x_sl.start
        P = self.b_sl.stop - self.b_sl.start
        try:
            raw = self.conic.solve_via_data(data, False, False, dict(options))
        except cp.error.SolverError as exc:
            raise SolverFailed(f"{self.solver_name} failed: {exc}") from None
        sol = self.conic.invert(raw, SolverInverseData(self.inverse, self.conic, dict(options)))
        attr = sol.attr
        solve_time = float(attr.get(cps.SOLVE_TIME) or 0.0) + float(attr.get(cps.SETUP_TIME) or 0.0)
        iters = int(attr.get(cps.NUM_ITERS) or 0)
        status = sol.status
        if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE, cp.UNBOUNDED):
            return _infeasible_solution(L, P, solve_time, iters)
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or self.x_id not in sol.primal_vars:
            raise SolverFailed(f"{self.solver_name} returned status {status}")
        xv = np.asarray(sol.primal_vars[self.x_id], dtype=float)
        duals = {
            name: np.atleast_1d(np.asarray(sol.dual_vars[cid], dtype=float))
            for name, cid in self.cons.items()
            if sol.dual_vars.get(cid) is not None
        }
        return ContinuousSolution(
            status="optimal" if status == cp.OPTIMAL else "optimal_inaccurate",
            x=np.clip(xv[self.x_sl], 0.0, None),
            b=np.clip(xv[self.b_sl], 0.0, None),
            objective=float(sol.opt_val) - self.stale_offset + offset,
            solve_time=solve_time,
            iterations=iters,
            duals=duals,
        )

    def clarabel_settings(self, options: dict[str, Any]) -> Any:
        """Clarabel's settings object for ``options`` (made once per set of options)."""
        _, CLARABEL = _clarabel()
        key = repr(sorted(options.items()))
        settings = self._settings.get(key)
        if settings is None:
            settings = CLARABEL.parse_solver_opts(False, dict(options))
            self._settings[key] = settings
        return settings

    def run_solver(
        self, model: CompiledModel | None, values: dict[str, Any], options: dict[str, Any]
    ) -> RunSolver | None:
        """The :class:`RunSolver` for ``values`` (every parameter but the bounds fixed), or None
        when this problem does not take that path (SCS; a P that depends on the parameters;
        bounds that reach more than ``b``). The caller holds ``model.lock``; the run solver
        counts its solves on ``model`` when given."""
        if not (
            self.direct
            and self._p_lite is not None
            and self._a_lite is not None
            and self._bounds_rhs_only
        ):
            return None
        return RunSolver(self, model, values, self.clarabel_settings(options))

    def _solve_clarabel(
        self, values: dict[str, Any], options: dict[str, Any]
    ) -> ContinuousSolution:
        """Clarabel called directly: what cvxpy's ``solve_via_data`` and ``invert`` do (a new
        solver per solve - no state carried between solves - the status map, the duals by
        constraint offset), without their per-call Python work."""
        fast = self.run_solver(None, values, options)  # the caller counts the solve
        if fast is not None:
            return fast.solve(values["xu"], values["bu"])
        data, offset = self.problem_data(values)
        P: Any
        if self._p_const is not None:
            P = self._p_const
        elif cps.P in data:
            P = sp.triu(data[cps.P]).tocsc()
        else:
            P = sp.csc_array((data[cps.C].size, data[cps.C].size))
        return _clarabel_solve(
            self,
            P,
            data[cps.C],
            data[cps.A],
            data[cps.B],
            self.clarabel_settings(options),
            offset,
        )


def _clarabel_solve(
    data: SolverData, P: Any, q: Any, A: Any, b: Any, settings: Any, offset: float
) -> ContinuousSolution:
    """One Clarabel solve of the conic data, read back as a :class:`ContinuousSolution`."""
    clarabel, CLARABEL = _clarabel()
    try:
        raw = clarabel.DefaultSolver(P, q, A, b, data.cones, settings).solve()
    except Exception as exc:  # whatever the solver raises becomes SolverFailed
        raise SolverFailed(f"CLARABEL failed: {exc}") from None
    status = CLARABEL.STATUS_MAP.get(str(raw.status), cp.SOLVER_ERROR)
    solve_time, iters = float(raw.solve_time), int(raw.iterations)
    if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE, cp.UNBOUNDED):
        return _infeasible_solution(data.n_x, data.n_b, solve_time, iters)
    if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise SolverFailed(f"CLARABEL returned status {status}")
    xv = np.array(raw.x, dtype=float)
    return ContinuousSolution(
        status="optimal" if status == cp.OPTIMAL else "optimal_inaccurate",
        x=np.maximum(xv[data.x_sl], 0.0),
        b=np.maximum(xv[data.b_sl], 0.0),
        objective=float(raw.obj_val) + offset,
        solve_time=solve_time,
        iterations=iters,
        duals=_Duals(raw, data.z_slices),
    )


def _float_vector(v: Any) -> np.ndarray:
    """``v`` as a float64 array (itself when it already is one)."""
    if type(v) is np.ndarray and v.dtype == np.float64:
        return v
    return np.asarray(v, dtype=float).ravel()


class RunSolver:
    """The Clarabel solves of one run: every parameter fixed but the bounds ``xu``/``bu``.

    The bounds only enter the right-hand side ``b`` (``x <= xu``, ``b <= bu``; checked on the
    compiled map when it is built), so the parameter vector, A's values, q and the objective
    offset are computed once here and every solve of the run (the direction-fixed solve, the
    re-solves after rounding, the "what lifting it would gain" re-solves) only writes the
    bounds into the vector and makes ``b``: the same numbers
    :meth:`SolverData.problem_data` gives, handed to Clarabel as Python lists (Clarabel
    copies them into Rust vectors element by element: a list is quicker to read than an
    array). Each solve is a new Clarabel solver: nothing carries over between solves.
    """

    def __init__(
        self, data: SolverData, model: CompiledModel | None, values: dict[str, Any], settings: Any
    ) -> None:
        assert data._red_a is not None and data._a_lite is not None and data._b_map is not None
        self._data = data
        self._model = model
        self._settings = settings
        vec = data.parameter_vector(values)  # checks every value (sizes, signs)
        flat = kernels.csr_matvec(data._red_a, vec)
        q_full = kernels.csr_matvec(data.q_map, vec)
        self._A = data._a_lite.with_data((-flat).tolist())
        self._q = q_full[:-1].tolist()
        self._offset = float(q_full[-1])
        self._vec = vec  # this run's own: each solve overwrites the bounds' columns
        cols = {name: (col, size) for name, col, size, _ in data._bound_params}
        (self._x0, self._n_x), (self._b0, self._n_b) = cols["xu"], cols["bu"]

    def solve(self, xu: np.ndarray, bu: np.ndarray) -> ContinuousSolution:
        """Solve with these bounds; raise :class:`SolverFailed` on a numerical failure."""
        data = self._data
        xu, bu = _float_vector(xu), _float_vector(bu)
        for name, arr, size in (("xu", xu, self._n_x), ("bu", bu, self._n_b)):
            if arr.shape != (size,):
                raise ValueError(f"parameter {name}: {arr.size} values for size {size}")
        red_b, b_rows, m_rows = data._b_map  # type: ignore[misc]
        b = kernels.bounds_rhs(
            self._vec,
            self._x0,
            xu,
            self._b0,
            bu,
            red_b.indptr,
            red_b.indices,
            red_b.data,
            b_rows,
            m_rows,
        )
        sol = _clarabel_solve(
            data, data._p_lite, self._q, self._A, b.tolist(), self._settings, self._offset
        )
        model = self._model
        if model is not None:
            with model.lock:
                model.solves += 1
        return sol


@functools.cache
def _clarabel() -> tuple[Any, Any]:
    """The ``clarabel`` module and cvxpy's Clarabel interface (imported on first use)."""
    import clarabel
    from cvxpy.reductions.solvers.conic_solvers.clarabel_conif import CLARABEL

    return clarabel, CLARABEL


class _Duals(Mapping[str, np.ndarray]):
    """The duals of a Clarabel solve by constraint name, read from the solver's ``z`` vector
    when first asked for (most solves of a run never are: only the final one's feed the
    binding-constraint facts)."""

    def __init__(self, raw: Any, slices: dict[str, slice]) -> None:
        self._raw: Any = raw
        self._slices = slices
        self._values: dict[str, np.ndarray] | None = None

    def _all(self) -> dict[str, np.ndarray]:
        if self._values is None:
            z = np.asarray(self._raw.z, dtype=float)
            self._values = {name: z[sl] for name, sl in self._slices.items()}
            self._raw = None
        return self._values

    def __getitem__(self, name: str) -> np.ndarray:
        return self._all()[name]

    def get(self, name: str, default: Any = None) -> Any:  # not Mapping's (try/except KeyError)
        return self._all().get(name, default)

    def __iter__(self) -> Iterator[str]:
        return iter(self._slices)

    def __len__(self) -> int:
        return len(self._slices)


@dataclass(frozen=True)
class _Csc:
    """A compressed-sparse-column matrix as Clarabel reads one (``data``, ``indices``,
    ``indptr``, ``shape``, ``has_canonical_format``), with Python lists."""

    data: list[float]
    indices: list[int]
    indptr: list[int]
    shape: tuple[int, int]
    has_canonical_format: bool

    @classmethod
    def of(cls, m: Any) -> _Csc:
        return cls(
            m.data.tolist(),
            m.indices.tolist(),
            m.indptr.tolist(),
            (int(m.shape[0]), int(m.shape[1])),
            bool(m.has_canonical_format),
        )

    def with_data(self, data: list[float]) -> _Csc:
        return _Csc(data, self.indices, self.indptr, self.shape, self.has_canonical_format)


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
        total = sum(m.nbytes() for m in _cache.values())
        while len(_cache) > 1 and (len(_cache) > _CACHE_SIZE or total > _CACHE_BYTES):
            _, dropped = _cache.popitem(last=False)
            total -= dropped.nbytes()
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
    DA = pd.DA
    h0 = pd.h0
    w0 = kernels.csr_matvec(pd.A, h0)  # A, DA and K are CSR (scipy's @ has a dispatch cost)
    K_all = pd.K
    # the risk term is lambda TE^2 on the value that stays invested (see optimizer.core.model)
    sq = np.sqrt(lam * pd.risk_scale)
    vals: dict[str, Any] = {
        "xu": np.asarray(xu, dtype=float),
        "bu": np.asarray(bu, dtype=float),
        "d0": kernels.csr_matvec(DA, h0) - pd.t_dev_w,
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
        "mwr": (pd.mw_sec_w if "max_weight" not in relax else np.full(pd.n, BIG)) - w0,
    }
    rows = list(_class_rows(pd))
    if rows:
        kh0 = kernels.csr_matvec(K_all, h0)[rows]
        lo = pd.class_lo_w[rows] if "class" not in relax else np.full(len(rows), -BIG)
        hi = pd.class_hi_w[rows] if "class" not in relax else np.full(len(rows), BIG)
        vals["klo"] = lo - kh0
        vals["khi"] = hi - kh0
    if pd.has_pair_max:
        vals["mhr"] = (pd.mw_pair if "max_weight" not in relax else np.full(pd.P, BIG)) - h0
    if pd.cash_lo > -BIG or pd.cash_hi < BIG:
        c0 = float(pd.cash0.sum())
        relax_cc = "cash_class" in relax
        vals["ccl"] = (-BIG if relax_cc else pd.cash_lo_w) - c0
        vals["cch"] = (BIG if relax_cc else pd.cash_hi_w) - c0
    return vals


def solver_options(name: str, user: dict[str, Any] | None = None) -> dict[str, Any]:
    """Default tolerances of ``name`` updated with the snapshot's ``solver.options``."""
    opts = dict(SOLVER_DEFAULTS.get(name, {}))
    opts.update(user or {})
    return opts
