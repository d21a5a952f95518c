"""Disclosure control of linked count tables: secondary suppression and its LP audit.

A table is a vector of node values (cells, then their subtotals, then the grand total) and
a list of equations ``parent = sum(children)``. Some nodes are suppressed by the primary rule
(the caller's); this module suppresses more until no suppressed node can be pinned down by
subtraction, then audits the result with linear programming (docs/methods.md §6, docs/privacy.md §5).

The attacker's knowledge of each suppressed node is an interval ``[lower, upper]`` given by
the caller. In the classic frequency-rule setting it is ``[0, inf)``. In the noisy public
release (see :func:`noisy_bounds`) a node suppressed because its noisy value fell below its
display threshold lies in ``[noise floor, threshold - 1]`` and a node suppressed only to
protect others lies in ``[threshold, inf)``: the audit assumes the attacker knows which is
which, although the public release never says.

Every suppressed node must keep a feasible interval at least ``k`` wide under all published
values, all equations and those bounds; a table that cannot reach that raises
:class:`DisclosureError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from geo_monitor.errors import DisclosureError
from geo_monitor.privacy.noise import display_threshold, noise_floor

Equation = tuple[int, np.ndarray]  # (parent node, child nodes)


@dataclass(frozen=True)
class Hierarchy:
    """Nodes of a two- or three-level table and its equations.

    Nodes are the ``n`` leaves, then one subtotal per parent code (if any), then the total.
    ``size`` is the number of leaves summed by each node.
    """

    values: np.ndarray
    equations: list[Equation]
    size: np.ndarray
    n_leaves: int
    n_parents: int

    @property
    def top(self) -> int:
        """Index of the grand total."""
        return len(self.values) - 1


def hierarchy(leaves: np.ndarray, parent_of_leaf: np.ndarray | None = None, n_parents: int = 0) -> Hierarchy:
    """Build the table of leaves, their subtotals by parent code (0..n_parents-1) and the total.

    Totals are sums of all leaves, so every published parent equals the sum of its children.
    """
    leaves = np.asarray(leaves, dtype=np.int64)
    n = len(leaves)
    equations: list[Equation] = []
    if parent_of_leaf is None:
        values = np.append(leaves, leaves.sum())
        size = np.append(np.ones(n, dtype=np.int64), n)
        equations.append((n, np.arange(n)))
        return Hierarchy(values, equations, size, n, 0)
    parent_of_leaf = np.asarray(parent_of_leaf)
    counts = np.bincount(parent_of_leaf, minlength=n_parents)
    if (counts == 0).any():
        raise ValueError(f"parents {np.flatnonzero(counts == 0).tolist()} have no leaves")
    subtotals = np.bincount(parent_of_leaf, weights=leaves, minlength=n_parents).astype(np.int64)
    values = np.concatenate([leaves, subtotals, [subtotals.sum()]])
    size = np.concatenate([np.ones(n, dtype=np.int64), counts, [n]])
    equations = [(n + p, np.flatnonzero(parent_of_leaf == p)) for p in range(n_parents)]
    equations.append((n + n_parents, n + np.arange(n_parents)))
    return Hierarchy(values, equations, size, n, n_parents)


def noisy_bounds(values: np.ndarray, thresholds: np.ndarray,
                 floors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (primary, lower, upper) for noisy values shown only from their thresholds.

    Primary nodes (value below threshold) lie in [floor, threshold - 1]; the floor is
    lowered to the value itself in the rare case the noise went deeper, so the true table
    stays feasible. Other nodes, if suppressed later, lie in [threshold, inf).
    """
    values = np.asarray(values, dtype=np.int64)
    primary = values < thresholds
    lower = np.where(primary, np.minimum(floors, values), thresholds).astype(float)
    upper = np.where(primary, np.asarray(thresholds, dtype=float) - 1, np.inf)
    return primary, lower, upper


# --- one equation at a time ------------------------------------------------------------------


def _leave_one_out(terms: np.ndarray) -> np.ndarray:
    """Return, for each i, the sum of the other terms (infinite terms of one sign allowed)."""
    infinite = np.isinf(terms)
    finite_sum = terms[~infinite].sum()
    n_inf = infinite.sum()
    if n_inf == 0:
        return finite_sum - terms
    sign = np.sign(terms[infinite][0])
    out = np.full(len(terms), sign * np.inf)
    if n_inf == 1:
        out[infinite] = finite_sum
    return out


def equation_intervals(equation: Equation, values: np.ndarray, suppressed: np.ndarray, lower: np.ndarray,
                       upper: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (members, low, high): what this equation alone tells of its suppressed members."""
    parent, children = equation
    members = np.append(children, parent)
    coef = np.append(np.ones(len(children)), -1.0)
    hidden = suppressed[members]
    rhs = -float(np.dot(coef[~hidden], values[members[~hidden]]))
    nodes, c = members[hidden], coef[hidden]
    term_min = np.where(c > 0, lower[nodes], -upper[nodes])
    term_max = np.where(c > 0, upper[nodes], -lower[nodes])
    with np.errstate(invalid="ignore"):
        low_c = rhs - _leave_one_out(term_max)  # bounds of c_i * x_i
        high_c = rhs - _leave_one_out(term_min)
    low = np.where(c > 0, low_c, -high_c)
    high = np.where(c > 0, high_c, -low_c)
    return nodes, np.maximum(low, lower[nodes]), np.minimum(high, upper[nodes])


def _candidate(equation: Equation, values: np.ndarray, suppressed: np.ndarray,
               prefer: np.ndarray) -> int | None:
    """Pick the next member to suppress.

    A published child suppressed last time first, else the smallest published child; the
    parent only when no child is left.
    """
    parent, children = equation
    open_children = children[~suppressed[children]]
    if len(open_children):
        order = np.lexsort((open_children, values[open_children], ~prefer[open_children]))
        return int(open_children[order[0]])
    return None if suppressed[parent] else parent


def _width(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    # Counts are integers: an interval [0.2, 4.9] holds the integers 1..4.
    return np.floor(high + 1e-7) - np.ceil(low - 1e-7)


def secondary_suppression(values: np.ndarray, suppressed: np.ndarray, equations: list[Equation],
                          lower: np.ndarray, upper: np.ndarray, k: int,
                          prefer: np.ndarray | None = None) -> np.ndarray:
    """Suppress more members until each equation alone leaves every suppressed member k wide.

    Iterates over all equations to a fixed point (a suppressed parent is a member of the
    equation above it, so suppression cascades upward). Returns the new mask.
    """
    suppressed = np.asarray(suppressed, dtype=bool).copy()
    prefer = np.zeros(len(values), dtype=bool) if prefer is None else np.asarray(prefer, dtype=bool)
    changed = True
    while changed:
        changed = False
        for equation in equations:
            while True:
                _, low, high = equation_intervals(equation, values, suppressed, lower, upper)
                if not len(low) or _width(low, high).min() >= k:
                    break
                pick = _candidate(equation, values, suppressed, prefer)
                if pick is None:
                    break
                suppressed[pick] = changed = True
    return suppressed


# --- all equations at once: the LP audit -----------------------------------------------------


def lp_intervals(values: np.ndarray, suppressed: np.ndarray, equations: list[Equation], lower: np.ndarray,
                 upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (low, high) of every node: min and max under published values, equations and bounds.

    Published nodes get their value. Suppressed nodes with the same bounds and the same
    place in every equation are interchangeable, so one pair of LPs serves each such class.
    """
    values = np.asarray(values, dtype=np.int64)
    suppressed = np.asarray(suppressed, dtype=bool)
    low, high = values.astype(float), values.astype(float)
    hidden = np.flatnonzero(suppressed)
    if not len(hidden):
        return low, high
    column = {int(node): j for j, node in enumerate(hidden)}
    rows, rhs = [], []
    signature: list[list[tuple[int, float]]] = [[] for _ in hidden]
    for parent, children in equations:
        members = np.append(children, parent)
        coef = np.append(np.ones(len(children)), -1.0)
        mask = suppressed[members]
        if not mask.any():
            continue
        row = np.zeros(len(hidden))
        for node, c in zip(members[mask], coef[mask], strict=True):
            row[column[int(node)]] = c
            signature[column[int(node)]].append((len(rows), c))
        rows.append(row)
        rhs.append(-float(np.dot(coef[~mask], values[members[~mask]])))
    a_eq, b_eq = np.array(rows), np.array(rhs)
    bounds = [(None if math.isinf(lower[n]) else lower[n], None if math.isinf(upper[n]) else upper[n])
              for n in hidden]
    solved: dict[tuple, tuple[float, float]] = {}
    for j, node in enumerate(hidden):
        key = (tuple(signature[j]), lower[node], upper[node])
        if key not in solved:
            ends = []
            for sense in (1.0, -1.0):
                objective = np.zeros(len(hidden))
                objective[j] = sense
                result = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
                if result.status == 3:  # unbounded in that direction
                    ends.append(-sense * np.inf)
                elif result.status != 0:
                    raise DisclosureError(f"disclosure audit LP failed ({result.message}); the table is inconsistent")
                else:
                    ends.append(sense * result.fun)
            solved[key] = (ends[0], ends[1])
        low[node], high[node] = solved[key]
    return low, high


@dataclass(frozen=True)
class Protection:
    """The outcome of protecting a table: what is suppressed, why, and the audited intervals."""

    suppressed: np.ndarray
    primary: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def secondary(self) -> np.ndarray:
        """Nodes suppressed only to protect others."""
        return self.suppressed & ~self.primary


def protect(values: np.ndarray, primary: np.ndarray, equations: list[Equation], lower: np.ndarray,
            upper: np.ndarray, k: int, prefer: np.ndarray | None = None) -> Protection:
    """Apply secondary suppression, audit it by LP, and suppress more until the audit passes.

    Raises
    ------
    DisclosureError
        When some suppressed node stays narrower than ``k`` and nothing more can be suppressed.
    """
    values = np.asarray(values, dtype=np.int64)
    primary = np.asarray(primary, dtype=bool)
    prefer = np.zeros(len(values), dtype=bool) if prefer is None else np.asarray(prefer, dtype=bool)
    suppressed = primary.copy()
    for _ in range(len(values) + 1):
        suppressed = secondary_suppression(values, suppressed, equations, lower, upper, k, prefer)
        low, high = lp_intervals(values, suppressed, equations, lower, upper)
        failing = np.flatnonzero(suppressed & (_width(low, high) < k))
        if not len(failing):
            return Protection(suppressed, primary, low, high)
        grew = False
        for node in failing:
            # Widen a failing node through its sibling set first, then through its children.
            for equation in sorted((e for e in equations if node in e[1] or node == e[0]),
                                   key=lambda e: node == e[0]):
                pick = _candidate(equation, values, suppressed, prefer)
                if pick is not None:
                    suppressed[pick] = grew = True
                    break
        if not grew:
            break
    raise DisclosureError(
        f"{len(failing)} suppressed count(s) could still be narrowed to less than k = {k} by subtraction "
        f"(nodes {failing[:10].tolist()}); the release is refused"
    )


# --- the release's tables: noisy counts shown only from their display thresholds ---------------


@dataclass(frozen=True)
class ProtectedTable:
    """A hierarchy of noisy counts, its display thresholds and its suppression."""

    table: Hierarchy
    thresholds: np.ndarray
    protection: Protection


def protect_noisy(leaves: np.ndarray, parent_of_leaf: np.ndarray | None = None, n_parents: int = 0, *,
                  scale: float, k: int, delta: float, prefer: np.ndarray | None = None) -> ProtectedTable:
    """Protect noisy leaves and their sums: threshold each node, then secondary suppression and audit.

    A node summing ``m`` leaves is shown only when its noisy value reaches
    ``k - 1 + j_m``, the smallest level a true count of ``k - 1`` reaches with probability at
    most ``delta`` under the sum of ``m`` draws of discrete Laplace noise of this scale.
    """
    table = hierarchy(leaves, parent_of_leaf, n_parents)
    sizes = table.size.tolist()
    thresholds = np.array([display_threshold(k, scale, m, delta) for m in sizes], dtype=np.int64)
    floors = np.array([noise_floor(scale, m, delta) for m in sizes], dtype=np.int64)
    primary, lower, upper = noisy_bounds(table.values, thresholds, floors)
    protection = protect(table.values, primary, table.equations, lower, upper, k, prefer)
    return ProtectedTable(table, thresholds, protection)
