"""Protection by linear programming: complementary suppression that withstands an attacker who solves every
published equation at once, and that attacker (the audit). numpy/scipy, and the HiGHS solver through `highspy`
(its public API: a model loaded once per problem, then warm-started as bounds and costs change; scipy's
`linprog(method="highs")` for the rare one-off LP). No dagster.

The published table is a set of cells x >= 0 tied by equations A x = 0 (`privacy.equation_rows`: every geo
hierarchy, industries -> `all`, quarters -> year). An attacker who knows the published cells and solves every
equation at once learns, for a suppressed cell i, the interval [min x_i, max x_i] over all x >= lb that agree with
what is published (lb: 0, or a value the cell had in an earlier version).

**Protection** (`protect_block`): for each sensitive cell i and each direction s (up, down) find a perturbation d with
A d = 0, d_i = s t_i, x + d >= lb, minimising sum_j c_j |d_j| where c_j = 0 for cells already suppressed and
c_j = x_j / mean + 0.01 for published ones (the suppressed total, ties to fewer cells); then suppress every cell
with d_j != 0 (Fischetti-Salazar's / Kelly's model, solved as an LP per cell and direction; a city's or
province's cell first within its province's sub-table, HiTaS-like, the whole block only if that fails). x + d is a
table that agrees with everything published and puts cell i t_i away from its value, and it stays so when more
cells are suppressed: protection holds by construction, whatever the order. Each d found is kept as a witness: a
later cell that some kept d (scaled, or negated) already moves far enough needs no LP.

`t_i = q x_i`, unless the table cannot give that much with every movable cell hidden (a cell that equals the
national total, whose cells are always published, or a down move stopped by an earlier published value): then
t_i is the most it can give (an LP maximising the move), and the cell is counted as limited.

**The attacker** (`attack`): the suppressed cells, linked by the equations that hold them, fall into connected
components; each component's equations with published values as constants bound its cells exactly as the whole
system does. For every sensitive cell the LP min and max of its value; every LP solution is a feasible table, so
it also witnesses bounds of the other cells of its component, and an LP is solved only where no witness suffices
(first one LP pushing every open cell of the component at once, then one per cell still open).
"""
from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass, field

import highspy
import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.sparse.csgraph import connected_components

ZERO = 1e-7  # |d_j| / t above this moves cell j
SLACK = 1e-6  # relative: an interval within this of its target reaches it
BATCH_ROUNDS = 20  # LPs that push every open cell of a component at once, before one LP per cell
SHARED = -2  # `protect_block`'s group of cells in every sub-table
MARGIN = 1.01  # protection aims 1% beyond its target, so solver tolerances never leave it short


@dataclass
class Stats:
    """What protection and the attack cost: LPs solved, cells settled by a witness, limited cells."""

    lps: int = 0
    witnessed: int = 0
    limited: int = 0
    seconds: dict = field(default_factory=dict)


def equation_matrix(eq: np.ndarray, cid: np.ndarray, sign: np.ndarray, n_eq: int, n: int) -> sp.csr_matrix:
    """A (equations x cells): +1 for the parent, -1 for each child; A x = 0 on a consistent table."""
    return sp.csr_matrix((sign.astype(float), (eq, cid)), shape=(n_eq, n))


def _costs(x: np.ndarray) -> np.ndarray:
    mean = float(x[x > 0].mean()) if (x > 0).any() else 1.0
    return x / mean + 0.01


class Block:
    """One independent protection problem: the movable cells `cols` and the equations `rows` that bind them.

    The LP (variables u, v >= 0, d = u - v, in units of the move t) is loaded into HiGHS once; each cell and
    direction changes only bounds and costs, so HiGHS starts from the last optimal basis (warm start)."""

    def __init__(self, a: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, x: np.ndarray, lb: np.ndarray):
        self.cols = cols
        self._source = (a, rows, x, lb)
        self.parts: dict[int, Block] = {}
        sub = a[rows][:, cols].tocsr()
        self.a = sub[np.diff(sub.indptr) > 0]
        self.x, self.room = x[cols], np.maximum(x[cols] - lb[cols], 0.0)
        self.pos = {int(c): i for i, c in enumerate(cols)}
        self.cost = _costs(self.x)
        self.moves: dict[int, list[tuple[int, float]]] = {}  # local cell -> (witness, its move there)
        self.scale: list[tuple[float, float]] = []  # witness -> how far it and its negation can be scaled
        self.highs = None
        self._fixed: int | None = None
        self._free = np.zeros(cols.size, dtype=bool)  # cells whose cost is already 0 in the loaded LP

    def reach(self, i: int, s: int) -> float:
        """How far (value units) the kept witnesses, scaled or negated, move local cell i in direction s."""
        best = 0.0
        for w, move in self.moves.get(i, ()):
            up, down = self.scale[w]
            best = max(best, (up if s * move > 0 else down) * abs(move))
        return best

    def keep(self, d: np.ndarray) -> None:
        """Keep d (value units, zero where it does not move) as a witness."""
        w = len(self.scale)
        neg, pos = d < 0, d > 0
        self.scale.append((float(np.min(self.room[neg] / -d[neg])) if neg.any() else np.inf,
                           float(np.min(self.room[pos] / d[pos])) if pos.any() else np.inf))
        for i in np.flatnonzero(d):
            self.moves.setdefault(int(i), []).append((w, float(d[i])))

    def _load(self) -> None:
        m = self.cols.size
        self.unit = float(np.median(self.x[self.x > 0])) if (self.x > 0).any() else 1.0  # a typical cell = 1
        self.highs = _loaded(sp.hstack([self.a, -self.a]).tocsc(), np.concatenate([self.cost, self.cost]),
                             np.zeros(2 * m), np.concatenate([np.full(m, highspy.kHighsInf), self.room / self.unit]))
        self._inf = highspy.kHighsInf
        self._optimal = highspy.HighsModelStatus.kOptimal

    def solve(self, i: int, s: int, t: float, free: np.ndarray, stats: Stats) -> np.ndarray | None:
        """The cheapest move d (value units) with d_i = s t, A d = 0 and x + d >= lb, or None if there is none.

        Between two solves only cell i's bounds (the last cell's are restored) and the costs of cells suppressed
        since change, so HiGHS starts from the last basis."""
        if self.highs is None:
            self._load()
        m = self.cols.size
        if self._fixed is not None:  # restore the last cell's bounds
            j = self._fixed
            self.highs.changeColsBounds(2, np.array([j, m + j], np.int32), np.zeros(2),
                                        np.array([self._inf, self.room[j] / self.unit]))
        value = t / self.unit
        lower, upper = (np.array([value, 0.0]), np.array([value, 0.0])) if s > 0 else \
            (np.array([0.0, value]), np.array([0.0, value]))
        self.highs.changeColsBounds(2, np.array([i, m + i], np.int32), lower, upper)
        self._fixed = i
        newly = np.flatnonzero(free & ~self._free)
        if newly.size:
            both = np.concatenate([newly, m + newly]).astype(np.int32)
            self.highs.changeColsCost(both.size, both, np.zeros(both.size))
            self._free |= free
        stats.lps += 1
        self.highs.run()
        if self.highs.getModelStatus() != self._optimal:
            return None
        values = np.asarray(self.highs.getSolution().col_value)
        return (values[:m] - values[m:]) * self.unit

    def release(self) -> None:
        """Free the solver (the witnesses stay)."""
        self.highs = None
        self.parts = {}

    def part(self, cols: np.ndarray, key: int) -> Block:
        """The sub-table of this block's cells `cols` (loaded once per key): a move found there, every other cell
        kept still, is a move of the whole block."""
        if key not in self.parts:
            a, rows, x, lb = self._source
            self.parts[key] = Block(a, rows, cols, x, lb)
        return self.parts[key]

    def most(self, i: int, s: int, t: float, stats: Stats) -> float:
        """The largest move of local cell i in direction s (at most t) the table allows with every cell hidden."""
        m = self.cols.size
        c = np.zeros(2 * m)
        c[i if s > 0 else m + i] = -1.0
        hi = np.concatenate([np.full(m, np.inf), self.room / t])
        hi[i] = 1.0 if s > 0 else 0.0
        hi[m + i] = min(1.0, self.room[i] / t) if s < 0 else 0.0
        bounds = np.column_stack([np.zeros(2 * m), hi])
        a_eq = sp.hstack([self.a, -self.a]).tocsc()
        stats.lps += 1
        res = linprog(c, A_eq=a_eq, b_eq=np.zeros(a_eq.shape[0]), bounds=bounds, method="highs")
        return float(-res.fun) * t if res.status == 0 else 0.0


def protect_block(block: Block, targets: list[tuple[int, float, float]], suppressed: np.ndarray,
                  stats: Stats, known=None, group: np.ndarray | None = None
                  ) -> tuple[np.ndarray, dict[int, tuple[float, float]]]:
    """Protect each (cell, down target, up target) of a block in turn; returns the suppressed mask (global) and
    each cell's protection as reached (down, up). `known(cell, s)`: how far moves found elsewhere (a year's
    quarters) already move the cell in direction s.

    `group` (per global cell: a sub-table id >= 0, SHARED for cells in every sub-table, else -1): a cell of a
    group is first protected within its sub-table (its group's cells and the shared ones, the others kept
    still: as sound, and far smaller, as HiTaS' sub-tables); only if that has no move is the whole block solved.
    """
    reached = {}

    def solve(i: int, cell: int, s: int, aim: float) -> np.ndarray | None:
        g = int(group[cell]) if group is not None else -1
        if g >= 0:
            member = (group[block.cols] == g) | (group[block.cols] == SHARED)
            part = block.part(block.cols[member], g)
            d = part.solve(part.pos[cell], s, aim, suppressed[part.cols], stats)
            if d is not None:
                whole = np.zeros(block.cols.size)
                whole[np.flatnonzero(member)] = d
                return whole
        return block.solve(i, s, aim, suppressed[block.cols], stats)

    for cell, *want in targets:
        i = block.pos[cell]
        got = []
        for s, t in zip((-1, 1), want):
            if t <= 0:
                got.append(0.0)
                continue
            if block.reach(i, s) >= t * (1 - SLACK) or (known is not None and known(cell, s) >= t * (1 - SLACK)):
                stats.witnessed += 1
                got.append(t)
                continue
            aim = t * MARGIN
            d = solve(i, cell, s, aim)
            if d is None:  # the table allows less: as much as it allows (just inside, for the solver)
                stats.limited += 1
                t = aim = block.most(i, s, t, stats) * (1 - SLACK / 10)
                d = block.solve(i, s, aim, suppressed[block.cols], stats) if aim > 0 else None
                if d is None:
                    got.append(0.0)
                    continue
            moved = np.abs(d) > ZERO * aim
            suppressed[block.cols[moved]] = True
            block.keep(np.where(moved, d, 0.0))
            got.append(t)
        reached[cell] = (got[0], got[1])
    return suppressed, reached


def attack(a: sp.csr_matrix, value: np.ndarray, suppressed: np.ndarray, lb: np.ndarray, need_down: np.ndarray,
           need_up: np.ndarray, stats: Stats | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The attacker's interval (lo, hi) of every suppressed cell with a need (need_down or need_up > 0; nan
    elsewhere): the LP min and max of its value over every table that agrees with the published cells (constants)
    under every equation at once, with every cell >= lb.

    That set of tables is the true table plus the moves y of the suppressed cells with A y = 0 and x + y >= lb, so
    the LPs are solved in moves (each in units of the cell's value): the same intervals, without the float
    rounding of published sums making the equations disagree by 1e-13. An LP solution is a table the attacker
    cannot rule out, so it bounds every cell of its component; a cell already shown as far as needed by another
    cell's solution needs no LP of its own (its bound is then reported as that far, not further).
    """
    stats = stats or Stats()
    n = value.size
    lo, hi = np.full(n, np.nan), np.full(n, np.nan)
    hidden = np.flatnonzero(suppressed)
    asked = np.flatnonzero(suppressed & ((need_down > 0) | (need_up > 0)))
    if not asked.size:
        return lo, hi
    a_h = a[:, hidden].tocsr()
    a_h = a_h[np.diff(a_h.indptr) > 0]
    k = hidden.size
    graph = sp.bmat([[None, a_h.T.astype(bool)], [a_h.astype(bool), None]], format="csr")
    _, label = connected_components(graph, directed=False)
    cell_label, eq_label = label[:k], label[k:]
    local = np.full(n, -1)
    local[hidden] = np.arange(k)
    for comp in np.unique(cell_label[local[asked]]):
        members = np.flatnonzero(cell_label == comp)
        glob = hidden[members]
        sub = a_h[np.flatnonzero(eq_label == comp)][:, members].tocsc()
        x = value[glob]
        unit = float(np.median(x[x > 0])) if (x > 0).any() else 1.0  # moves in units of a typical cell
        solver = _attacker(sub, (lb[glob] - x) / unit)
        seen_lo, seen_hi = x.copy(), x.copy()
        idx = np.arange(glob.size, dtype=np.int32)
        ask = np.flatnonzero(np.isin(glob, asked))
        want_down, want_up = need_down[glob], need_up[glob]

        def solve(c: np.ndarray) -> str:
            nonlocal seen_lo, seen_hi
            solver.changeColsCost(glob.size, idx, c)
            stats.lps += 1
            solver.run()
            status = solver.getModelStatus()
            if status == highspy.HighsModelStatus.kOptimal:
                table = x + np.asarray(solver.getSolution().col_value) * unit
                seen_lo, seen_hi = np.minimum(seen_lo, table), np.maximum(seen_hi, table)
                return "optimal"
            if status == highspy.HighsModelStatus.kUnbounded:
                return "unbounded"
            raise RuntimeError(f"the attacker's LP failed: {solver.modelStatusToString(status)}")

        for s in (1, -1):
            def open_cells() -> np.ndarray:
                if s == 1:
                    return ask[(want_down[ask] > 0) & (seen_lo[ask] > x[ask] - want_down[ask] * (1 - SLACK))]
                return ask[(want_up[ask] > 0) & (seen_hi[ask] < x[ask] + want_up[ask] * (1 - SLACK))]

            # first all open cells at once (each weighted by 1/value): one LP often settles many of them
            todo = open_cells()
            for _ in range(BATCH_ROUNDS):
                if todo.size < 2:
                    break
                c = np.zeros(glob.size)
                c[todo] = s * unit / np.maximum(x[todo], 1e-300)
                if solve(c) != "optimal":
                    break
                left = open_cells()
                if left.size == todo.size:
                    break
                todo = left
            stats.witnessed += int(ask.size - open_cells().size)
            # then each cell still open on its own: its exact bound
            for i in open_cells():
                c = np.zeros(glob.size)
                c[i] = s
                if solve(c) == "unbounded":
                    seen_hi[i] = np.inf
        lo[glob], hi[glob] = seen_lo, seen_hi
    return lo, hi


PRIMAL_SIMPLEX = 4  # HiGHS' option simplex_strategy: 4 is the primal simplex


def _attacker(sub: sp.csc_matrix, lower: np.ndarray):
    """HiGHS loaded with {y: sub y = 0, y >= lower}; each LP then changes only the objective (warm start). A new
    objective leaves the last optimal basis primal feasible but not dual feasible, so the primal simplex goes on
    from it where the dual simplex (HiGHS' usual choice) must first regain dual feasibility: on the privacy test's
    release (8,031 hidden cells) the audit took 1.7 s instead of 10.6 s."""
    solver = _loaded(sub, np.zeros(sub.shape[1]), lower, np.full(sub.shape[1], highspy.kHighsInf))
    solver.setOptionValue("simplex_strategy", PRIMAL_SIMPLEX)
    return solver


def _loaded(matrix: sp.csc_matrix, cost: np.ndarray, lower: np.ndarray, upper: np.ndarray):
    """A quiet HiGHS instance holding the LP min cost.x subject to matrix x = 0 and lower <= x <= upper."""
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, lower, upper
    lp.row_lower_ = lp.row_upper_ = np.zeros(matrix.shape[0])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = matrix.indptr, matrix.indices, matrix.data
    solver = _highs()
    solver.passModel(lp)
    return solver


_quiet = []


def _highs():
    """A HiGHS instance with logging off. Its first construction in a process prints HiGHS' banner on the C
    stdout before any option can be set, so that one is made with file descriptor 1 pointed at /dev/null."""
    if _quiet:
        solver = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                solver = highspy.Highs()
                ctypes.CDLL(None).fflush(None)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _quiet.append(True)
    solver.setOptionValue("output_flag", False)
    solver.setOptionValue("random_seed", 0)
    solver.setOptionValue("threads", 1)
    return solver
