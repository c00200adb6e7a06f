"""Privacy: which published cells must be hidden (CONTRACT.md "Privacy").

Primary (sensitive) cells: every cell but national x `all`, with usage (amount > 0), and fewer than k contributors
or failing the p% rule: total - the two largest contributions < p% of the largest. A contributor is a customer
(the cube's `contributors`, `top_contributor_amount`, `second_contributor_amount`). Cells without usage are 0,
never suppressed; national x `all` is always published.

Every published hierarchy is a set of linear equations between cells (`equation_rows`):

- geo, per metric x period x industry: province = its cities (`<province>U` included), tier = its cities,
  cluster = its member cities (clusters overlap), national = provinces, = cities, = tiers;
- industry, per metric x period x entity: `all` = the 18 industries;
- time, per metric x complete year x entity x industry: year = its four quarters.

Complementary suppression (`assets/transforms/protection.py`) gives each sensitive cell an interval of at least
q% of its value below and above, under all these equations at once and x >= 0. Quarters are protected one by one
with their own cells only, so a quarter's pattern depends on its own data (and what earlier versions suppressed):
later data never changes an earlier quarter. A year cell is suppressed when any of its quarters is (the year is
the complement in time: a quarter's perturbation moves its year by as much, which keeps every year equation); a
sensitive year cell is then protected moving its year's cells and its quarters' suppressed cells only. `audit` is
the attacker: the LP interval of every sensitive cell from what the table publishes. `exposed_cells` is the
one-equation subtraction attack (a special case of the audit, kept for the tests).
"""
from __future__ import annotations

import time as time_module
from dataclasses import dataclass
from functools import partial

import numpy as np
import polars as pl

from assets.transforms.indices import INDEX_COLUMNS, sort_index_rows
from assets.transforms.protection import SHARED, SLACK, Block, Stats, attack, equation_matrix, protect_block

KEY = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
# Equation kinds, in the order each round completes them (geo first, then industry).
GEO_KINDS = ("province", "national_province", "tier", "national_tier", "cluster", "national_city")
KINDS = (*GEO_KINDS, "industry", "time")
KIND_CODE = {kind: i for i, kind in enumerate(KINDS)}
PARTITION_LEVELS = ("province", "tier")  # every city in exactly one entity: national = the sum of the level


def combine_periods(quarterly: list[pl.DataFrame], annual: pl.DataFrame | None) -> pl.DataFrame:
    """Quarters and complete years in one table, with the internal amount columns privacy needs."""
    frames = quarterly + ([annual] if annual is not None and annual.height else [])
    return sort_index_rows(pl.concat(frames))


def infer_membership(indices: pl.DataFrame) -> pl.DataFrame:
    """City -> province and national, from the codes alone (for tables built without the seeds)."""
    cities = indices.filter(pl.col("geo_level") == "city").select("geo_code").unique().sort("geo_code")
    return pl.concat([
        cities.select("geo_code", pl.lit("national").alias("geo_level"), pl.lit("CN").alias("entity")),
        cities.select("geo_code", pl.lit("province").alias("geo_level"),
                      (pl.col("geo_code").str.slice(0, 2) + "0000").alias("entity")),
        cities.select("geo_code", pl.lit("city").alias("geo_level"), pl.col("geo_code").alias("entity")),
    ])


def geo_equations(membership: pl.DataFrame) -> pl.DataFrame:
    """Entity-level geo equations: `geq`, `kind`, and each member (geo_level, geo_code), parent included.

    `membership` is `assets.transforms.cube.geo_membership`: each city-level geo_code -> (geo_level, entity).
    """
    members = membership.filter(pl.col("geo_level") != "city")
    sums = pl.concat([
        members.select("geo_level", pl.col("entity").alias("parent"), pl.col("geo_level").alias("level"),
                       pl.col("entity").alias("geo_code")).unique(),
        members.select("geo_level", pl.col("entity").alias("parent"), pl.lit("city").alias("level"), "geo_code"),
    ]).with_columns(pl.when(pl.col("geo_level") == "national").then(pl.lit("national_city"))
                    .otherwise(pl.col("geo_level")).alias("kind"))
    parts = []
    cities = membership.filter(pl.col("geo_level") == "city").select("geo_code").unique()
    for level in PARTITION_LEVELS:
        of_level = members.filter(pl.col("geo_level") == level)
        if not of_level.height or of_level.group_by("geo_code").len()["len"].max() != 1 \
                or of_level["geo_code"].n_unique() != cities.height:
            continue
        entities = of_level.select(pl.col("entity").alias("geo_code")).unique()
        parts.append(pl.concat([
            pl.DataFrame({"level": ["national"], "geo_code": ["CN"]}),
            entities.select(pl.lit(level).alias("level"), "geo_code"),
        ]).with_columns(pl.lit("national").alias("geo_level"), pl.lit("CN").alias("parent"),
                        pl.lit(f"national_{level}").alias("kind")))
    table = pl.concat([sums, *[p.select(sums.columns) for p in parts]])
    ids = (table.select("kind", "parent").unique().sort("kind", "parent").with_row_index("geq"))
    return (table.join(ids, on=["kind", "parent"])
            .select("geq", "kind", pl.col("level").alias("geo_level"), "geo_code",
                    (pl.col("level") == pl.col("geo_level")).alias("is_parent"))
            .unique().sort("geq", "geo_level", "geo_code"))


def _codes(frame: pl.DataFrame, cols: list[str], name: str) -> tuple[pl.DataFrame, int]:
    values = frame.select(cols).unique().sort(cols).with_row_index(name)
    return frame.join(values.with_columns(pl.col(name).cast(pl.Int64)), on=cols, how="left"), values.height


@dataclass(frozen=True)
class Equations:
    """Every (equation, cell) pair of the published hierarchies: equation, cell (cid), kind code, sign (+1 the
    parent, -1 a child), and the number of equation ids (some unused)."""

    eq: np.ndarray
    cid: np.ndarray
    kind: np.ndarray
    sign: np.ndarray
    n_eq: int


def equation_rows(cells: pl.DataFrame, membership: pl.DataFrame) -> Equations:
    """Every (equation, cell) pair of the published hierarchies.

    `cells` holds KEY and `cid` (its row number). An equation is kept only if all its cells are in the table.
    """
    frame = cells.select("cid", *KEY)
    frame, n_m = _codes(frame, ["metric"], "m_i")
    frame, n_p = _codes(frame, ["period", "period_type"], "p_i")
    frame, n_e = _codes(frame, ["geo_level", "geo_code"], "g_i")
    frame, n_i = _codes(frame, ["industry"], "i_i")
    geo = geo_equations(membership).with_columns(pl.col("geq").cast(pl.Int64))
    n_geq = int(geo["geq"].max()) + 1 if geo.height else 0
    expected = np.bincount(geo["geq"].to_numpy(), minlength=n_geq)
    geo_rows = (frame.join(geo, on=["geo_level", "geo_code"])
                .select((((pl.col("m_i") * n_p + pl.col("p_i")) * n_i + pl.col("i_i")) * n_geq
                         + pl.col("geq")).alias("eq"), "cid", "geq",
                        pl.col("kind").replace_strict(KIND_CODE, return_dtype=pl.Int64), "is_parent"))
    offset = n_m * n_p * n_i * max(n_geq, 1)
    ind_rows = frame.select((offset + (pl.col("m_i") * n_p + pl.col("p_i")) * n_e + pl.col("g_i")).alias("eq"),
                            "cid", (pl.col("industry") == "all").alias("parent"))
    offset += n_m * n_p * n_e
    years = (frame.filter(pl.col("period_type") == "year").select(pl.col("period").alias("year"))
             .unique().sort("year").with_row_index("y_i").with_columns(pl.col("y_i").cast(pl.Int64)))
    time_rows = (frame.with_columns(pl.col("period").str.slice(0, 4).alias("year"))
                 .join(years, on="year")
                 .select((offset + ((pl.col("m_i") * max(years.height, 1) + pl.col("y_i")) * n_e
                                    + pl.col("g_i")) * n_i + pl.col("i_i")).alias("eq"), "cid",
                         (pl.col("period_type") == "year").alias("parent")))
    n_eq = offset + n_m * max(years.height, 1) * n_e * n_i
    # Keep an equation only if all its cells are published: geo ones complete, one `all` (one year) each.
    g_eq, g_geq = geo_rows["eq"].to_numpy(), geo_rows["geq"].to_numpy()
    g_keep = np.bincount(g_eq, minlength=n_eq)[g_eq] == expected[g_geq]
    i_eq, i_parent = ind_rows["eq"].to_numpy(), ind_rows["parent"].to_numpy()
    i_keep = ((np.bincount(i_eq, weights=i_parent, minlength=n_eq)[i_eq] == 1)
              & (np.bincount(i_eq, minlength=n_eq)[i_eq] > 1))
    t_eq, t_parent = time_rows["eq"].to_numpy(), time_rows["parent"].to_numpy()
    t_keep = ((np.bincount(t_eq, weights=t_parent, minlength=n_eq)[t_eq] == 1)
              & (np.bincount(t_eq, minlength=n_eq)[t_eq] == 5))
    eq = np.concatenate([g_eq[g_keep], i_eq[i_keep], t_eq[t_keep]])
    cid = np.concatenate([geo_rows["cid"].to_numpy()[g_keep], ind_rows["cid"].to_numpy()[i_keep],
                          time_rows["cid"].to_numpy()[t_keep]]).astype(np.int64)
    kind = np.concatenate([geo_rows["kind"].to_numpy()[g_keep],
                           np.full(int(i_keep.sum()), KIND_CODE["industry"], dtype=np.int64),
                           np.full(int(t_keep.sum()), KIND_CODE["time"], dtype=np.int64)])
    parent = np.concatenate([geo_rows["is_parent"].to_numpy()[g_keep], i_parent[i_keep], t_parent[t_keep]])
    return Equations(eq, cid, kind, np.where(parent, 1.0, -1.0), n_eq)


def _prepare(indices: pl.DataFrame) -> pl.DataFrame:
    return sort_index_rows(indices).with_row_index("cid").with_columns(pl.col("cid").cast(pl.Int64))


def primary(cells: pl.DataFrame, k: int, p: float) -> pl.Series:
    """Every cell but national x `all`, with usage, and fewer than k contributors or failing the p% rule (the
    total minus its two largest contributions below p% of the largest)."""
    rest = pl.col("amount") - pl.col("top_contributor_amount") - pl.col("second_contributor_amount")
    return cells.select((~((pl.col("geo_level") == "national") & (pl.col("industry") == "all"))
                         & (pl.col("amount") > 0)
                         & ((pl.col("contributors") < k) | (rest < p / 100.0 * pl.col("top_contributor_amount"))))
                        .fill_null(False).alias("primary")).to_series()


def _blocks(cells: pl.DataFrame) -> np.ndarray:
    return cells.select(pl.struct("metric", "period").rank("dense") - 1).to_series().to_numpy().astype(np.int64)


def _grouped(keys: np.ndarray, n: int) -> list[np.ndarray]:
    """Positions of `keys` (0..n-1) grouped by key, each group ascending."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(n + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(n)]


def suppression_flags(indices: pl.DataFrame, k: int = 5, p: float = 10.0, q: float | None = None,
                      membership: pl.DataFrame | None = None, previous: pl.DataFrame | None = None,
                      stats: Stats | None = None) -> pl.DataFrame:
    """The sorted table with `cid`, `primary`, `suppressed`, the protection reached (`protect_down`,
    `protect_up`, value units) and `known_lower` (before values are blanked).

    `previous` (KEY, `was_suppressed`, `known_lower`): what earlier versions of the release published; a cell
    suppressed then stays suppressed, and a value published then (same base) is a lower bound the attacker knows.
    Quarters are protected each on its own (its cells only: the year is the complement in time), then each year
    moving its own cells and its quarters' suppressed cells only, so no published quarter ever changes.
    """
    stats = stats if stats is not None else Stats()
    q = p if q is None else q
    cells = _prepare(indices)
    if previous is not None and previous.height:
        cells = cells.join(previous.select(*KEY, "was_suppressed", "known_lower"), on=KEY, how="left",
                           maintain_order="left")
    else:
        cells = cells.with_columns(pl.lit(None, pl.Boolean).alias("was_suppressed"),
                                   pl.lit(None, pl.Float64).alias("known_lower"))
    cells = cells.with_columns(pl.col("was_suppressed").fill_null(False), pl.col("known_lower").fill_null(0.0))
    membership = infer_membership(cells) if membership is None else membership
    prim = primary(cells, k, p).to_numpy()
    eqs = equation_rows(cells, membership)
    n = cells.height
    a = equation_matrix(eqs.eq, eqs.cid, eqs.sign, eqs.n_eq, n)
    x = cells["value"].fill_null(0.0).to_numpy().astype(float)
    lb = np.minimum(cells["known_lower"].to_numpy(), x)
    fixed = ((cells["geo_level"] == "national") & (cells["industry"] == "all")).to_numpy() | (x <= 0)
    is_quarter = (cells["period_type"] == "quarter").to_numpy()
    s = (prim | cells["was_suppressed"].to_numpy()) & ~fixed
    down, up = np.zeros(n), np.zeros(n)
    block = _blocks(cells)
    n_blocks = int(block.max()) + 1 if n else 0
    cells_of = _grouped(block, n_blocks)
    time = eqs.kind == KIND_CODE["time"]
    eq_block = np.full(eqs.n_eq, -1)
    eq_block[eqs.eq[~time]] = block[eqs.cid[~time]]
    # equation ids of each block (time equations and unused ids go to an extra group, dropped)
    rows_of = _grouped(np.where(eq_block < 0, n_blocks, eq_block), n_blocks + 1)[:n_blocks]

    def run(cols: np.ndarray, rows: np.ndarray, sensitive: np.ndarray, known=None) -> Block | None:
        nonlocal s
        targets = [(int(c), min(q / 100.0 * x[c], x[c] - lb[c]), q / 100.0 * x[c]) for c in sensitive]
        if not targets:
            return None
        block = Block(a, rows, cols, x, lb)
        s, reached = protect_block(block, targets, s, stats, known, group)
        block.release()
        for c, (dn, u) in reached.items():
            down[c], up[c] = dn, u
        return block

    group = _sub_tables(cells, membership)
    t0 = time_module.perf_counter()
    quarter_blocks = [b for b in range(n_blocks) if is_quarter[cells_of[b][0]]]
    solved = {}
    for b in quarter_blocks:
        members = cells_of[b]
        solved[b] = run(members[~fixed[members]], rows_of[b], members[prim[members]])
    # the year follows its quarters: a quarter's d moves its year cell by as much (year = sum of its quarters)
    t_eq, t_cid = eqs.eq[time], eqs.cid[time]
    any_quarter = np.bincount(t_eq, weights=(s & is_quarter)[t_cid], minlength=eqs.n_eq) > 0
    follows = np.zeros(n, dtype=bool)
    follows[t_cid] = any_quarter[t_eq] & ~is_quarter[t_cid]
    s |= follows & ~fixed
    # each year cell's quarter cells: a quarter's witnesses move the year cell by as much, and the quarters'
    # witnesses add up (their cells are disjoint), so a year cell may need no LP of its own
    t_parent = eqs.sign[time] > 0
    year_of_eq = np.full(eqs.n_eq, -1)
    year_of_eq[t_eq[t_parent]] = t_cid[t_parent]
    quarters_of: dict[int, list[tuple[int, int]]] = {}
    for e, c in zip(t_eq[~t_parent], t_cid[~t_parent]):
        quarters_of.setdefault(int(year_of_eq[e]), []).append((int(block[c]), int(c)))
    stats.seconds["quarters"] = time_module.perf_counter() - t0
    t0 = time_module.perf_counter()
    metric_period = cells.select("metric", "period").to_numpy()
    for b in range(n_blocks):
        members = cells_of[b]
        if is_quarter[members[0]] or not prim[members].any():
            continue
        metric, year = metric_period[members[0]]
        quarters = [qb for qb in quarter_blocks if metric_period[cells_of[qb][0]][0] == metric
                    and str(metric_period[cells_of[qb][0]][1]).startswith(year)]
        q_cells = np.concatenate([cells_of[qb] for qb in quarters]) if quarters else np.zeros(0, np.int64)
        cols = np.concatenate([members[~fixed[members]], q_cells[s[q_cells]]])
        year_time = np.unique(t_eq[np.isin(t_cid, members)])
        rows = np.concatenate([rows_of[b], *[rows_of[qb] for qb in quarters], year_time])
        run(np.sort(cols), rows, members[prim[members]], partial(_from_quarters, quarters_of, solved))
    stats.seconds["years"] = time_module.perf_counter() - t0
    return cells.with_columns(pl.Series("primary", prim), pl.Series("suppressed", s), pl.Series("protect_down", down),
                              pl.Series("protect_up", up), pl.Series("known_lower", lb))


def earlier_versions(indices: pl.DataFrame | None, revisions: pl.DataFrame | None, base: str) -> pl.DataFrame:
    """What earlier published versions of a release say about each cell: `was_suppressed` (in any version) and
    `known_lower`, the largest value published for it against the same base (late data only adds non-negative
    amounts under a frozen base, so an earlier value is a lower bound of today's; values from before a rebase are
    on another scale and are left out)."""
    schema = {**{k: pl.String for k in KEY}, "was_suppressed": pl.Boolean, "known_lower": pl.Float64}
    if indices is None or not indices.height:
        return pl.DataFrame(schema=schema)
    same_base = bool((indices["base_period"] == base).all())
    seen = [indices.select(*KEY, (pl.col("status") == "suppressed").alias("was_suppressed"),
                           pl.when(pl.col("status") == "ok").then(pl.col("value")).alias("known_lower"))]
    if revisions is not None and revisions.height:
        rebased = revisions.with_row_index("_i").filter(pl.col("reason") == "rebase")["_i"]
        since = int(rebased.max()) + 1 if rebased.len() else 0
        for which in ("old", "new"):
            seen.append(revisions.with_row_index("_i").select(
                *KEY, (pl.col(f"{which}_status") == "suppressed").alias("was_suppressed"),
                pl.when((pl.col(f"{which}_status") == "ok") & (pl.col("_i") >= since))
                .then(pl.col(f"{which}_value")).alias("known_lower")))
    known = (pl.concat(seen).group_by(KEY).agg(pl.col("was_suppressed").any(), pl.col("known_lower").max())
             .with_columns(pl.col("known_lower") if same_base else pl.lit(None, pl.Float64).alias("known_lower")))
    return known.select(list(schema)).cast(schema).sort(KEY)


def _sub_tables(cells: pl.DataFrame, membership: pl.DataFrame) -> np.ndarray:
    """Each cell's sub-table for `protect_block`: a province's cells and its cities' (any industry) form one,
    tiers, clusters and national cells belong to every one (SHARED)."""
    province = (membership.filter(pl.col("geo_level") == "province")
                .select("geo_code", pl.col("entity").alias("_province")))
    provinces = province.select("_province").unique().sort("_province").with_row_index("_g")
    tagged = (cells.select("geo_level", "geo_code")
              .join(province, on="geo_code", how="left", maintain_order="left")
              .with_columns(pl.when(pl.col("geo_level") == "province").then(pl.col("geo_code"))
                            .when(pl.col("geo_level") == "city").then(pl.col("_province")).alias("_province"))
              .join(provinces, on="_province", how="left", maintain_order="left"))
    return tagged.select(pl.col("_g").cast(pl.Int64).fill_null(SHARED)).to_series().to_numpy()


def _from_quarters(quarters_of: dict, solved: dict, cell: int, s: int) -> float:
    """How far the quarters' witnesses, added up, move year cell `cell` in direction s."""
    total = 0.0
    for b, c in quarters_of.get(cell, ()):
        block = solved.get(b)
        if block is not None and c in block.pos:
            total += block.reach(block.pos[c], s)
    return total


def disclose(indices: pl.DataFrame, k: int = 5, p: float = 10.0, q: float | None = None,
             membership: pl.DataFrame | None = None, previous: pl.DataFrame | None = None) -> pl.DataFrame:
    """The published cells: suppressed ones get status `suppressed` and null value and accounts.

    `indices` holds every period (quarters and complete years) with the internal columns `amount`, `accounts`,
    `contributors`, `top_contributor_amount` and `second_contributor_amount`; `membership` is the geo hierarchy
    (`cube.geo_membership(ref)`; inferred from the codes, city -> province -> national, when None).
    """
    return blank(suppression_flags(indices, k, p, q, membership, previous))


def audit(flags: pl.DataFrame, membership: pl.DataFrame | None = None,
          stats: Stats | None = None) -> pl.DataFrame:
    """The attacker against the table as published: for every sensitive cell, the LP interval of its value from
    every published equation at once, the published values and the known lower bounds (`attack`).

    `flags` is `suppression_flags`' table; returns KEY, value, lo, hi, the protection asked (`protect_down`,
    `protect_up`) and `short` (the interval falls short of it), one row per sensitive cell.
    """
    cells = _prepare(flags.drop("cid"))
    membership = infer_membership(cells) if membership is None else membership
    eqs = equation_rows(cells, membership)
    a = equation_matrix(eqs.eq, eqs.cid, eqs.sign, eqs.n_eq, cells.height)
    hidden = cells["suppressed"].to_numpy()
    value = cells["value"].fill_null(0.0).to_numpy().astype(float)
    prim = cells["primary"].to_numpy() & hidden
    need_down = np.where(prim, cells["protect_down"].to_numpy(), 0.0)
    need_up = np.where(prim, cells["protect_up"].to_numpy(), 0.0)
    lo, hi = attack(a, value, hidden, cells["known_lower"].to_numpy(), need_down, need_up, stats)
    out = cells.select(*KEY, "primary", "suppressed", "protect_down", "protect_up").with_columns(
        pl.Series("value", value), pl.Series("lo", lo), pl.Series("hi", hi))
    slack = SLACK * pl.col("value")
    down_short = (pl.col("protect_down") > 0) & ~(pl.col("lo") <= pl.col("value") - pl.col("protect_down") + slack)
    up_short = (pl.col("protect_up") > 0) & ~(pl.col("hi") >= pl.col("value") + pl.col("protect_up") - slack)
    return (out.filter("primary")
            .with_columns((~pl.col("suppressed") | down_short | up_short).alias("short"))
            .drop("primary", "suppressed"))


def blank(flags: pl.DataFrame) -> pl.DataFrame:
    s = pl.col("suppressed")
    return flags.with_columns(pl.when(s).then(None).otherwise(pl.col("value")).alias("value"),
                              pl.when(s).then(None).otherwise(pl.col("accounts")).alias("accounts"),
                              pl.when(s).then(pl.lit("suppressed")).otherwise(pl.col("status")).alias("status")
                              ).select(INDEX_COLUMNS)


def exposed_cells(disclosed: pl.DataFrame, membership: pl.DataFrame | None = None,
                  include_inherent: bool = False) -> pl.DataFrame:
    """The subtraction attack: every equation of the published hierarchies holding exactly one suppressed cell.

    Returns the exposed cell's key and the equation's kind (empty when the table is safe). A cell that is the only
    one with usage under a national cell is disclosed by the national cell itself, which is always published;
    neither zero cells (published as 0) nor national cells may hide it, so such equations are left out unless
    `include_inherent`.
    """
    cells = _prepare(disclosed.select(KEY))
    membership = infer_membership(cells) if membership is None else membership
    eqs = equation_rows(cells, membership)
    eq, cid, kind, n_eq = eqs.eq, eqs.cid, eqs.kind, eqs.n_eq
    published = _prepare(disclosed)
    s = (published["status"] == "suppressed").to_numpy()
    count = np.bincount(eq, weights=s[cid], minlength=n_eq)
    hit = (count[eq] == 1) & s[cid]
    if not include_inherent:
        nonzero = s | (published["value"].fill_null(0.0) != 0).to_numpy()
        national = np.isin(kind, [KIND_CODE[k] for k in GEO_KINDS if k.startswith("national")])
        inherent = national & (np.bincount(eq, weights=nonzero[cid], minlength=n_eq)[eq] <= 2)
        hit &= ~inherent
    found = pl.DataFrame({"cid": cid[hit], "kind": np.array(KINDS, dtype=object)[kind[hit]].astype(str)},
                         schema={"cid": pl.Int64, "kind": pl.String})
    return (found.join(cells, on="cid").select(*KEY, "kind").unique().sort(*KEY, "kind"))
