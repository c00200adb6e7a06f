"""Privacy: which published cells must be hidden (CONTRACT.md "Privacy").

Primary suppression: a cell below national level with usage (amount > 0) and fewer than `k` active accounts, or
whose largest account holds more than `dominance` (a fraction) of it. Cells without usage are 0, never suppressed.

Complementary suppression: every published hierarchy is a set of linear equations between published cells:

- geo, per metric x period x industry: province = its cities (`<province>U` included), tier = its cities,
  cluster = its member cities (clusters overlap), national = provinces, = cities, = tiers;
- industry, per metric x period x entity: `all` = the 18 industries;
- time, per metric x complete year x entity x industry: year = its four quarters.

An equation with exactly one suppressed cell gives it away (parent minus published siblings), so every equation
must hold zero or at least two suppressed cells. Quarters are made safe on their own: while some quarter equation
holds exactly one suppressed cell, a complement is added to it (never a national cell, never a zero cell: those are
published as 0, so with no sibling with usage left the parent is taken), chosen deterministically: the smallest
amount, then the cell that closes the most open equations, then the published order of keys. This repeats to a fixed point. A quarter's equations involve only that quarter's
cells, so a quarter's pattern depends on that quarter's data alone: later data never changes an earlier quarter.

Years follow their quarters: a year cell is suppressed when it is itself primary or when any of its quarters is
suppressed, so the year is the complement in the time hierarchy and never a published quarter. This also makes
every year equation safe: a suppressed year cell has a suppressed quarter, whose quarter equation holds a second
suppressed cell, whose year cell is then suppressed too. (A primary year cell always has a primary quarter: fewer
than k accounts over the year means fewer in every quarter; an account above p% of the year is above p% in some
quarter.) `exposed_cells` audits a disclosed table against all equations.

The work is vectorised: the equations are one long (equation, cell) table built with polars joins, and each round
counts suppressed cells per equation with numpy bincounts.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from assets.transforms.indices import INDEX_COLUMNS, sort_index_rows

KEY = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
# Equation kinds, in the order each round completes them (geo first, then industry).
GEO_KINDS = ("province", "national_province", "tier", "national_tier", "cluster", "national_city")
KINDS = (*GEO_KINDS, "industry", "time")
KIND_CODE = {kind: i for i, kind in enumerate(KINDS)}
PARTITION_LEVELS = ("province", "tier")  # every city in exactly one entity: national = the sum of the level
MAX_ROUNDS = 100


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
    return (table.join(ids, on=["kind", "parent"]).select("geq", "kind", pl.col("level").alias("geo_level"),
                                                           "geo_code")
            .unique().sort("geq", "geo_level", "geo_code"))


def _codes(frame: pl.DataFrame, cols: list[str], name: str) -> tuple[pl.DataFrame, int]:
    values = frame.select(cols).unique().sort(cols).with_row_index(name)
    return frame.join(values.with_columns(pl.col(name).cast(pl.Int64)), on=cols, how="left"), values.height


def equation_rows(cells: pl.DataFrame, membership: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Every (equation, cell) pair of the published hierarchies: arrays eq, cid, kind code and the equation count.

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
                        pl.col("kind").replace_strict(KIND_CODE, return_dtype=pl.Int64)))
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
    return eq, cid, kind, n_eq


def _prepare(indices: pl.DataFrame) -> pl.DataFrame:
    return sort_index_rows(indices).with_row_index("cid").with_columns(pl.col("cid").cast(pl.Int64))


def primary(cells: pl.DataFrame, k: int, dominance: float) -> pl.Series:
    """Below national, with usage, and fewer than k active accounts or the largest account above p%."""
    return cells.select(((pl.col("geo_level") != "national") & (pl.col("amount") > 0)
                         & ((pl.col("accounts") < k)
                            | (pl.col("top_account_amount") > dominance * pl.col("amount"))))
                        .fill_null(False).alias("primary")).to_series()


def _rows_of(cells: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Positions, in the cid-sorted row order, of every equation row of `cells` (CSR gather)."""
    starts, ends = indptr[cells], indptr[cells + 1]
    lengths = ends - starts
    if not lengths.sum():
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - np.cumsum(np.r_[0, lengths[:-1]]), lengths)
    return np.arange(int(lengths.sum()), dtype=np.int64) + shift


def complementary(suppressed: np.ndarray, amount: np.ndarray, eligible: np.ndarray, eq: np.ndarray,
                  cid: np.ndarray, kind: np.ndarray, n_eq: int, kinds: tuple[str, ...] = KINDS[:-1]) -> np.ndarray:
    """Add complements until no equation of `kinds` holds exactly one suppressed cell (or none can be added).

    Each step takes one kind of equation; for every open equation (exactly one suppressed cell) of that kind it
    suppresses the first eligible cell by: usage before zero, smallest amount, most open equations closed, cid.
    """
    s = suppressed.copy()
    n = s.size
    active = np.isin(kind, [KIND_CODE[x] for x in kinds])
    eq, cid, kind = eq[active], cid[active], kind[active]
    by_cid = np.argsort(cid, kind="stable")
    eq_by_cid = eq[by_cid]
    indptr = np.searchsorted(cid[by_cid], np.arange(n + 1))
    count = np.bincount(eq, weights=s[cid], minlength=n_eq).astype(np.int64)
    zero = amount <= 0
    by_kind = [np.flatnonzero(kind == KIND_CODE[x]) for x in kinds]
    for _ in range(MAX_ROUNDS):
        added = 0
        for where in by_kind:
            open_eq = count == 1
            sel = where[open_eq[eq[where]]]
            sel = sel[~s[cid[sel]] & eligible[cid[sel]]]
            if not sel.size:
                continue
            r_eq, r_c = eq[sel], cid[sel]
            candidates = np.unique(r_c)
            rows = _rows_of(candidates, indptr)
            owner = np.repeat(candidates, indptr[candidates + 1] - indptr[candidates])
            closes = np.zeros(n, dtype=np.int64)
            np.add.at(closes, owner, open_eq[eq_by_cid[rows]])
            order = np.lexsort((r_c, -closes[r_c], amount[r_c], zero[r_c], r_eq))
            r_eq, r_c = r_eq[order], r_c[order]
            chosen = np.unique(r_c[np.flatnonzero(np.r_[True, r_eq[1:] != r_eq[:-1]])])
            s[chosen] = True
            count += np.bincount(eq_by_cid[_rows_of(chosen, indptr)], minlength=n_eq)
            added += chosen.size
        if not added:
            break
    return s


def suppression_flags(indices: pl.DataFrame, k: int = 5, dominance: float = 0.85,
                      membership: pl.DataFrame | None = None) -> pl.DataFrame:
    """The sorted table with `cid`, `primary` and `suppressed` (before values are blanked)."""
    cells = _prepare(indices)
    membership = infer_membership(cells) if membership is None else membership
    prim = primary(cells, k, dominance).to_numpy()
    eq, cid, kind, n_eq = equation_rows(cells, membership)
    amount = cells["amount"].fill_null(0.0).to_numpy()
    is_quarter = (cells["period_type"] == "quarter").to_numpy()
    # a zero cell is published as 0, never suppressed (CONTRACT.md): with no usage sibling left, the parent goes
    eligible = (cells["geo_level"] != "national").to_numpy() & is_quarter & (amount > 0)
    quarter_rows = is_quarter[cid]
    s = complementary(prim & is_quarter, amount, eligible, eq[quarter_rows], cid[quarter_rows],
                      kind[quarter_rows], n_eq)
    # The year follows its quarters (the time hierarchy's complement is always the year).
    time = kind == KIND_CODE["time"]
    any_quarter = np.bincount(eq[time], weights=(s & is_quarter)[cid[time]], minlength=n_eq) > 0
    years = np.zeros(s.size, dtype=bool)
    years[cid[time]] = any_quarter[eq[time]] & ~is_quarter[cid[time]]
    s = s | years | (prim & ~is_quarter)
    return cells.with_columns(pl.Series("primary", prim), pl.Series("suppressed", s))


def disclose(indices: pl.DataFrame, k: int = 5, dominance: float = 0.85,
             membership: pl.DataFrame | None = None) -> pl.DataFrame:
    """The published cells: suppressed ones get status `suppressed` and null value and accounts.

    `indices` holds every period (quarters and complete years) with the internal columns `amount`, `accounts`
    and `top_account_amount`; `membership` is the geo hierarchy (`cube.geo_membership(ref)`; inferred from the
    codes, city -> province -> national, when None).
    """
    flags = suppression_flags(indices, k, dominance, membership)
    return blank(flags)


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
    eq, cid, kind, n_eq = equation_rows(cells, membership)
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
