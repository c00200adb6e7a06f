"""Privacy (CONTRACT.md "Privacy"): primary and complementary suppression, attackers over the published tables,
and no account id anywhere published or logged.

Unit tests run `disclose` on tiny hand-made tables; the attacker tests play against a release the CLI publishes
from a small random input where many cells are small. The attackers here are written independently of
assets/transforms/privacy.py: they build the published hierarchies from the seeds (or the tiny hierarchy) with
plain Python.
"""
from __future__ import annotations

import datetime as dt
import json
import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from assets.transforms.privacy import audit, blank, disclose, earlier_versions, exposed_cells, suppression_flags
from assets.transforms.reference import load_reference

KEY = ["metric", "period", "period_type", "geo_level", "geo_code", "industry"]
INDUSTRIES = ["finance", "gaming", "other"]
QUARTERS = ["2020Q1", "2020Q2", "2020Q3", "2020Q4"]

# ------------------------------------------------------------------------------------- a tiny hierarchy
# Two provinces; 130000 has three cities and its unallocated rows, 140000 two cities. Tiers and two overlapping
# clusters cut across provinces.
CITIES = {"130100": "130000", "130200": "130000", "130300": "130000", "130000U": "130000",
          "140100": "140000", "140200": "140000"}
TIERS = {"130100": "tier1", "140100": "tier1", "130200": "tier2", "140200": "tier2",
         "130300": "unallocated", "130000U": "unallocated"}
CLUSTERS = {"c1": ["130100", "130200"], "c2": ["130200", "140100"]}


def membership() -> pl.DataFrame:
    rows = []
    for city, province in CITIES.items():
        rows += [(city, "national", "CN"), (city, "province", province), (city, "city", city),
                 (city, "tier", TIERS[city])]
    rows += [(city, "cluster", cluster) for cluster, members in CLUSTERS.items() for city in members]
    return pl.DataFrame(rows, schema=["geo_code", "geo_level", "entity"], orient="row")


def tiny_equations() -> list[tuple[str, tuple, list[tuple]]]:
    """(kind, parent, children) of the tiny hierarchy, entity level: (geo_level, geo_code)."""
    eqs = [("national", ("national", "CN"), [("province", p) for p in sorted(set(CITIES.values()))]),
           ("national", ("national", "CN"), [("city", c) for c in CITIES]),
           ("national", ("national", "CN"), [("tier", t) for t in sorted(set(TIERS.values()))])]
    for p in sorted(set(CITIES.values())):
        eqs.append(("province", ("province", p), [("city", c) for c, q in CITIES.items() if q == p]))
    for t in sorted(set(TIERS.values())):
        eqs.append(("tier", ("tier", t), [("city", c) for c, u in TIERS.items() if u == t]))
    for cl, members in CLUSTERS.items():
        eqs.append(("cluster", ("cluster", cl), [("city", c) for c in members]))
    return eqs


def table(usage: list[tuple], periods: list[str] = QUARTERS, years: bool = True) -> pl.DataFrame:
    """The full index grid from account rows (period, city, industry, account, amount[, customer]), like the cube
    does: amount summed, accounts distinct with amount > 0, contributors (customers; an account without one is its
    own) and their two largest totals; complete years summed from their quarters."""
    rows = [(*r, r[3]) if len(r) == 5 else r for r in usage]
    u = pl.DataFrame(rows, schema=["period", "city", "industry", "account", "amount", "customer"], orient="row")
    mem = membership()
    years_done = sorted({p[:4] for p in periods if all(f"{p[:4]}Q{i}" in periods for i in range(1, 5))}) \
        if years else []
    u = pl.concat([u.with_columns(pl.lit("quarter").alias("period_type"))]
                  + [u.filter(pl.col("period").str.starts_with(y)).with_columns(pl.lit(y).alias("period"),
                                                                              pl.lit("year").alias("period_type"))
                     for y in years_done])
    u = u.join(mem, left_on="city", right_on="geo_code")
    u = pl.concat([u, u.with_columns(pl.lit("all").alias("industry"))])
    cell = ["period", "period_type", "geo_level", "entity", "industry"]
    accounts = (u.group_by(*cell, "account").agg(pl.col("amount").sum())
                .group_by(cell).agg(pl.col("amount").sum(), (pl.col("amount") > 0).sum().cast(pl.Int64)
                                    .alias("accounts")))
    customers = (u.group_by(*cell, "customer").agg(pl.col("amount").sum())
                 .group_by(cell).agg((pl.col("amount") > 0).sum().cast(pl.Int64).alias("contributors"),
                                     pl.col("amount").max().alias("top_contributor_amount"),
                                     pl.col("amount").sort(descending=True).get(1, null_on_oob=True)
                                     .alias("second_contributor_amount")))
    cells = accounts.join(customers, on=cell).rename({"entity": "geo_code"})
    entities = mem.select("geo_level", pl.col("entity").alias("geo_code")).unique()
    pt = pl.DataFrame({"period": periods + years_done,
                       "period_type": ["quarter"] * len(periods) + ["year"] * len(years_done)})
    grid = (pt.join(entities, how="cross").join(pl.DataFrame({"industry": ["all", *INDUSTRIES]}), how="cross"))
    return (grid.join(cells, on=["period", "period_type", "geo_level", "geo_code", "industry"], how="left")
            .with_columns(pl.col("amount").fill_null(0.0), pl.col("accounts").fill_null(0),
                          pl.col("contributors").fill_null(0),
                          pl.col("top_contributor_amount", "second_contributor_amount").fill_null(0.0))
            .with_columns(pl.lit("cloud").alias("metric"), pl.col("amount").alias("value"),
                          pl.col("geo_code").alias("geo_name"), pl.col("geo_code").alias("geo_name_en"),
                          pl.col("geo_code").alias("geo_name_short"),
                          pl.lit("ok").alias("status"), pl.lit("2020Q1").alias("base_period")))


def busy(period: str, city: str, industry: str, n: int = 8, amount: float = 100.0, tag: str = "") -> list[tuple]:
    """n equal accounts in one cell: safe on its own (n >= k, no dominance)."""
    return [(period, city, industry, f"a{tag}{city}{industry}{i}", amount) for i in range(n)]


def everywhere(periods=QUARTERS) -> list[tuple]:
    """Every city x industry x quarter busy, so only the cells a test adds are small."""
    return [r for p in periods for c in CITIES for i in INDUSTRIES for r in busy(p, c, i, tag=p)]


def status(out: pl.DataFrame, period: str, level: str, code: str, industry: str) -> str:
    row = out.filter((pl.col("period") == period) & (pl.col("geo_level") == level) & (pl.col("geo_code") == code)
                     & (pl.col("industry") == industry))
    assert row.height == 1
    return row["status"].item()


def suppressed_keys(out: pl.DataFrame) -> set[tuple]:
    return set(out.filter(pl.col("status") == "suppressed").select(KEY).iter_rows())


# ------------------------------------------------------------------------------------- attackers
def subtraction_attack(out: pl.DataFrame, equations: list[tuple[str, tuple, list[tuple]]],
                       industries: list[str]) -> list[tuple]:
    """Every published parent minus its published children: the suppressed cells isolated (exactly one
    suppressed cell in a parent + children set) in the geo, industry and time hierarchies."""
    status_of = {tuple(r[:6]): r[6] for r in out.select(*KEY, "status").iter_rows()}
    value_of = {tuple(r[:6]): r[6] for r in out.select(*KEY, "value").iter_rows()}
    periods = sorted(set(out.select("metric", "period", "period_type").iter_rows()))
    found = []

    def check(cells, national_parent=False):
        hidden = [c for c in cells if status_of.get(c) == "suppressed"]
        # the only cell with usage under a national cell is disclosed by the national cell itself (always
        # published; zero cells are published as 0): inherent, not a failure of complementary suppression
        if national_parent and all(value_of.get(c) == 0 for c in cells[1:] if c not in hidden):
            return
        if len(hidden) == 1:
            found.append(hidden[0])

    for metric, period, ptype in periods:
        for industry in ["all", *industries]:
            for _, parent, children in equations:
                check([(metric, period, ptype, *e, industry) for e in [parent, *children]],
                      national_parent=parent[0] == "national")
        for level, code in {(k[3], k[4]) for k in status_of if k[0] == metric and k[1] == period}:
            check([(metric, period, ptype, level, code, i) for i in ["all", *industries]])
    for key in [k for k in status_of if k[2] == "year"]:
        check([key] + [(key[0], f"{key[1]}Q{i}", "quarter", *key[3:]) for i in range(1, 5)])
    return found


def linear_attack(out: pl.DataFrame, amounts: pl.DataFrame, equations, industries) -> list[tuple]:
    """The whole linear system: a suppressed cell is recoverable iff its unit vector lies in the row space of
    the published constraints restricted to the suppressed cells (null-space test)."""
    hidden = sorted(suppressed_keys(out))
    col = {k: i for i, k in enumerate(hidden)}
    keys = set(out.select(KEY).iter_rows())
    rows = []

    def add(parent, children):
        row = np.zeros(len(hidden))
        for sign, cells in ((1.0, [parent]), (-1.0, children)):
            for c in cells:
                if c in col:
                    row[col[c]] += sign
        if row.any():
            rows.append(row)

    periods = sorted(set(out.select("metric", "period", "period_type").iter_rows()))
    for metric, period, ptype in periods:
        for industry in ["all", *industries]:
            for _, parent, children in equations:
                add((metric, period, ptype, *parent, industry), [(metric, period, ptype, *c, industry)
                                                                  for c in children])
        for level, code in {(k[3], k[4]) for k in keys if k[0] == metric and k[1] == period}:
            add((metric, period, ptype, level, code, "all"), [(metric, period, ptype, level, code, i)
                                                              for i in industries])
    for key in [k for k in keys if k[2] == "year"]:
        add(key, [(key[0], f"{key[1]}Q{i}", "quarter", *key[3:]) for i in range(1, 5)])
    if not hidden:
        return []
    a = np.array(rows) if rows else np.zeros((0, len(hidden)))
    _, sv, vt = np.linalg.svd(a, full_matrices=True)
    rank = int((sv > 1e-9).sum())
    null = vt[rank:]
    recoverable = np.abs(null).max(axis=0) < 1e-9 if null.size else np.ones(len(hidden), dtype=bool)
    return [hidden[i] for i in np.flatnonzero(recoverable)]


# ------------------------------------------------------------------------------------- primary suppression
def test_fewer_than_k_accounts_is_suppressed_and_k_is_a_setting():
    usage = everywhere() + busy("2020Q1", "130100", "finance", n=4, tag="x")  # 8 + 4 accounts: safe
    small = [r for r in usage if not (r[0] == "2020Q1" and r[1] == "130200" and r[2] == "gaming")]
    small += busy("2020Q1", "130200", "gaming", n=4, tag="y")
    out = disclose(table(small), membership=membership())
    assert status(out, "2020Q1", "city", "130200", "gaming") == "suppressed"
    flags = suppression_flags(table(small), membership=membership())
    primary = set(flags.filter(pl.col("primary")).select(KEY).iter_rows())
    assert primary == {("cloud", "2020Q1", "quarter", "city", "130200", "gaming")}  # 12 accounts: not primary
    relaxed = disclose(table(small), k=4, membership=membership())
    assert status(relaxed, "2020Q1", "city", "130200", "gaming") == "ok"
    assert not suppressed_keys(relaxed)


def test_the_p_percent_rule_suppresses_and_p_is_a_setting():
    usage = [r for r in everywhere() if not (r[0] == "2020Q2" and r[1] == "140200" and r[2] == "other")]
    usage += busy("2020Q2", "140200", "other", n=9, amount=10.0, tag="z") + [("2020Q2", "140200", "other", "big", 900.0)]
    # 990 - 900 - 10 = 80 < 10% of 900: the second contributor learns the first to within 10%
    out = disclose(table(usage), membership=membership())
    assert status(out, "2020Q2", "city", "140200", "other") == "suppressed"
    assert status(disclose(table(usage), p=5.0, membership=membership()),  # 80 >= 5% of 900
                  "2020Q2", "city", "140200", "other") == "ok"


def test_a_contributor_is_a_customer_not_an_account():
    """One customer with five accounts is one contributor: below k = 5 although the cell has 5 accounts."""
    cell = ("2020Q3", "130100", "gaming")
    usage = [r for r in everywhere() if r[:3] != cell]
    usage += [(*cell, f"acct{i}", 100.0, "customer-1") for i in range(5)] + [(*cell, "acct9", 100.0)]
    t = table(usage)
    row = t.filter((pl.col("period") == "2020Q3") & (pl.col("geo_code") == "130100") & (pl.col("industry") == "gaming"))
    assert row["accounts"].item() == 6 and row["contributors"].item() == 2
    out = disclose(t, membership=membership())
    assert status(out, *cell[:1], "city", *cell[1:]) == "suppressed"
    # the same accounts as their own customers: 6 contributors of 100, safe
    alone = disclose(table([r for r in everywhere() if r[:3] != cell]
                           + [(*cell, f"acct{i}", 100.0) for i in range(6)]), membership=membership())
    assert status(alone, *cell[:1], "city", *cell[1:]) == "ok"


def test_cells_without_usage_are_zero_not_suppressed_and_national_never():
    usage = [("2020Q1", "130100", "finance", "solo", 50.0)]  # one account in the whole country
    out = disclose(table(usage, periods=["2020Q1"]), membership=membership())
    zero = out.filter((pl.col("geo_code") == "140100") & (pl.col("industry") == "gaming"))
    assert zero["status"].to_list() == ["ok"] and zero["value"].to_list() == [0.0] and zero["accounts"].to_list() == [0]
    national = out.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all"))
    assert (national["status"] == "ok").all() and national["value"].is_not_null().all()
    assert status(out, "2020Q1", "city", "130100", "finance") == "suppressed"
    # national x industry is a cell like any other: one customer, so it is suppressed
    assert status(out, "2020Q1", "national", "CN", "finance") == "suppressed"


def test_suppressed_cells_have_null_value_and_accounts_and_published_columns():
    out = disclose(_one_small("2020Q3", "130300", "gaming"), membership=membership())
    from assets.transforms.indices import INDEX_COLUMNS
    assert out.columns == INDEX_COLUMNS
    hidden = out.filter(pl.col("status") == "suppressed")
    assert hidden.height and hidden["value"].is_null().all() and hidden["accounts"].is_null().all()
    assert out.filter(pl.col("status") == "ok")["value"].is_not_null().all()


# ------------------------------------------------------------------------------------- complementary
def _one_small(period: str, city: str, industry: str) -> pl.DataFrame:
    usage = [r for r in everywhere() if not (r[0] == period and r[1] == city and r[2] == industry)]
    usage += busy(period, city, industry, n=2, tag="s")
    return table(usage)


def test_one_small_city_gets_complements_in_every_hierarchy():
    out = disclose(_one_small("2020Q2", "130200", "finance"), membership=membership())
    hidden = suppressed_keys(out)
    q = [k for k in hidden if k[1] == "2020Q2"]
    assert ("cloud", "2020Q2", "quarter", "city", "130200", "finance") in hidden
    # industry: another industry (or `all`) of 130200 in 2020Q2
    assert any(k[3:5] == ("city", "130200") and k[5] != "finance" for k in q)
    # geo: another cell of province 130000 (a sibling city or the province), tier2 and both clusters
    assert any(k[5] == "finance" and k[4] != "130200" and (k[4] in ("130000", "130100", "130300", "130000U"))
               for k in q)
    assert any(k[5] == "finance" and k[4] != "130200" and k[4] in ("tier2", "140200") for k in q)
    for cluster, members in CLUSTERS.items():
        assert any(k[5] == "finance" and k[4] != "130200" and k[4] in (cluster, *members) for k in q)
    # time: the complement is the year, never another quarter
    assert ("cloud", "2020", "year", "city", "130200", "finance") in hidden
    assert not [k for k in hidden if k[2] == "quarter" and k[1] != "2020Q2"]
    assert not subtraction_attack(out, tiny_equations(), INDUSTRIES)


def test_a_province_alone_under_national_brings_another_province():
    out = disclose(_one_small("2020Q1", "140100", "gaming"), membership=membership())
    hidden = suppressed_keys(out)
    provinces = [k for k in hidden if k[1] == "2020Q1" and k[3] == "province" and k[5] == "gaming"]
    assert len(provinces) != 1
    assert not [k for k in hidden if k[3] == "national" and k[5] == "all"]
    assert not subtraction_attack(out, tiny_equations(), INDUSTRIES)


def test_a_cluster_minus_its_other_members_reveals_nothing():
    # 130200 is in both clusters; make it small in 2020Q4
    out = disclose(_one_small("2020Q4", "130200", "other"), membership=membership())
    hidden = suppressed_keys(out)
    for cluster, members in CLUSTERS.items():
        cells = [("cloud", "2020Q4", "quarter", "cluster", cluster, "other")] + \
                [("cloud", "2020Q4", "quarter", "city", m, "other") for m in members]
        assert sum(c in hidden for c in cells) >= 2


def test_later_quarters_never_change_an_earlier_quarter():
    early = [r for r in everywhere() if r[0] != "2020Q4"] + busy("2020Q2", "130100", "gaming", n=1, tag="e")
    late = early + [r for r in everywhere(["2020Q4"])] + busy("2020Q4", "140100", "other", n=2, tag="l")
    three = disclose(table(early, periods=QUARTERS[:3]), membership=membership())
    four = disclose(table(late), membership=membership())
    first = four.filter(pl.col("period").is_in(QUARTERS[:3]))
    assert three.equals(first)


def test_reruns_and_row_order_give_identical_output():
    rng = random.Random(3)
    usage = everywhere() + [(rng.choice(QUARTERS), rng.choice(list(CITIES)), rng.choice(INDUSTRIES), f"r{i}",
                             rng.uniform(1, 50)) for i in range(60)]
    t = table(usage)
    out = disclose(t, membership=membership())
    assert out.equals(disclose(t.sample(fraction=1.0, shuffle=True, seed=7), membership=membership()))
    assert out.equals(disclose(t, membership=membership()))


def _random_table(seed: int) -> pl.DataFrame:
    rng = random.Random(seed)
    accounts = [f"acct{i}" for i in range(rng.randint(6, 30))]
    usage = [(rng.choice(QUARTERS), rng.choice(list(CITIES)), rng.choice(INDUSTRIES), rng.choice(accounts),
              round(rng.lognormvariate(3, 1.5), 2)) for _ in range(rng.randint(20, 120))]
    return table(usage)


@pytest.mark.parametrize("seed", range(12))
def test_random_tiny_tables_resist_the_subtraction_attack(seed):
    t = _random_table(seed)
    flags = suppression_flags(t, membership=membership())
    out = disclose(t, membership=membership())
    assert flags.filter(pl.col("primary") & ~pl.col("suppressed")).height == 0
    assert not subtraction_attack(out, tiny_equations(), INDUSTRIES)
    assert exposed_cells(out, membership()).height == 0


@pytest.mark.parametrize("seed", range(3))
def test_random_tiny_tables_resist_an_attacker_solving_the_whole_linear_system(seed):
    t = _random_table(seed)
    out = disclose(t, membership=membership())
    assert not linear_attack(out, t, tiny_equations(), INDUSTRIES)


def test_the_linear_attacker_finds_what_subtraction_finds():
    """The stronger attacker is sound: on a table published without complements it recovers the lone cell."""
    t = _one_small("2020Q2", "130200", "finance")
    naive = t.with_columns(pl.when((pl.col("period") == "2020Q2") & (pl.col("geo_code") == "130200")
                                   & (pl.col("industry") == "finance")).then(pl.lit("suppressed"))
                           .otherwise(pl.col("status")).alias("status"))
    lone = ("cloud", "2020Q2", "quarter", "city", "130200", "finance")
    assert lone in subtraction_attack(naive, tiny_equations(), INDUSTRIES)
    assert linear_attack(naive, t, tiny_equations(), INDUSTRIES) == [lone]


# ------------------------------------------------------------------------------------- the LP attacker
def all_equations(keys: set[tuple], equations, industries) -> list[tuple[tuple, list[tuple]]]:
    """(parent, children) of every published equation over `keys`: geo, industries -> all, quarters -> year."""
    out = []
    for metric, period, ptype in sorted({k[:3] for k in keys}):
        for industry in ["all", *industries]:
            out += [((metric, period, ptype, *parent, industry), [(metric, period, ptype, *c, industry)
                                                                 for c in children])
                    for _, parent, children in equations]
        for level, code in sorted({k[3:5] for k in keys if k[:3] == (metric, period, ptype)}):
            out.append(((metric, period, ptype, level, code, "all"),
                        [(metric, period, ptype, level, code, i) for i in industries]))
    out += [(k, [(k[0], f"{k[1]}Q{i}", "quarter", *k[3:]) for i in range(1, 5)]) for k in keys if k[2] == "year"]
    return [(parent, children) for parent, children in out if all(c in keys for c in [parent, *children])]


def lp_intervals(value: dict, hidden: set, lower: dict, equations,
                 of: set | None = None) -> dict[tuple, tuple[float, float]]:
    """Min and max of every hidden cell (or of the hidden cells in `of`) with scipy's HiGHS, from the equations with
    the other cells as constants and every cell >= its lower bound: the attacker, written without the project's
    code. Solved in moves y = x - value of the hidden cells (the equations then read A y = 0 exactly, whatever the
    float rounding of the published sums) on a sparse A."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix

    cols = sorted(hidden)
    at = {c: i for i, c in enumerate(cols)}
    rows = []  # each equation over the hidden cells: {column: coefficient}
    for parent, children in equations:
        row = {}
        for sign, cell in [(1.0, parent)] + [(-1.0, c) for c in children]:
            if cell in at:
                row[at[cell]] = row.get(at[cell], 0.0) + sign
        if any(row.values()):
            rows.append(row)
    a = csr_matrix(([v for row in rows for v in row.values()],
                    ([e for e, row in enumerate(rows) for _ in row], [j for row in rows for j in row])),
                   shape=(len(rows), len(cols)))
    bounds = [(lower.get(c, 0.0) - value[c], None) for c in cols]
    found = {}
    for cell, i in at.items():
        if of is not None and cell not in of:
            continue
        ends = []
        for sign in (1.0, -1.0):
            c = np.zeros(len(cols))
            c[i] = sign
            res = linprog(c, A_eq=a, b_eq=np.zeros(a.shape[0]), bounds=bounds, method="highs")
            assert res.status in (0, 3), res.message
            ends.append(np.inf if res.status == 3 else value[cell] + sign * res.fun)
        found[cell] = (ends[0], ends[1])
    return found


def _sparse_usage(seed: int) -> list[tuple]:
    """Sparse rows the project never saw: few accounts, some of them one customer's, some customers dominant."""
    rng = random.Random(1000 + seed)
    customers = [f"cust{i}" for i in range(rng.randint(3, 9))]
    accounts = {f"acct{i}": (rng.choice(customers) if rng.random() < 0.6 else None) for i in range(rng.randint(8, 25))}
    rows = []
    for _ in range(rng.randint(40, 160)):
        account = rng.choice(list(accounts))
        amount = round(rng.lognormvariate(2, 2.0), 2) * (20 if rng.random() < 0.05 else 1)
        row = (rng.choice(QUARTERS), rng.choice(list(CITIES)), rng.choice(INDUSTRIES), account, amount)
        rows.append((*row, accounts[account]) if accounts[account] else row)
    return rows


def _sensitive(usage: list[tuple], keys: set[tuple], k: int = 5, p: float = 10.0) -> set[tuple]:
    """The primary rules, computed here from the rows: per cell the customers' totals."""
    tiers, clusters = TIERS, CLUSTERS
    totals: dict = defaultdict(lambda: defaultdict(float))
    for period, city, industry, account, amount, *customer in usage:
        who = customer[0] if customer else account
        geos = [("national", "CN"), ("province", CITIES[city]), ("city", city), ("tier", tiers[city])]
        geos += [("cluster", c) for c, members in clusters.items() if city in members]
        for ptype, per in (("quarter", period), ("year", period[:4])):
            for geo in geos:
                for ind in (industry, "all"):
                    totals[("cloud", per, ptype, *geo, ind)][who] += amount
    out = set()
    for key, by in totals.items():
        if key not in keys or (key[3] == "national" and key[5] == "all"):
            continue
        amounts = sorted((a for a in by.values() if a > 0), reverse=True)
        if not amounts:
            continue
        top, second = amounts[0], (amounts[1] if len(amounts) > 1 else 0.0)
        if len(amounts) < k or sum(amounts) - top - second < p / 100 * top:
            out.add(key)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_sparse_random_releases_withstand_an_lp_attacker(seed):
    """Every suppressed cell keeps an interval (none is determined exactly), and every sensitive cell's reaches
    q = p = 10% below and above its value, or as far as the table allows at all: what an attacker could not do
    better even if every cell but national x `all` and the zero cells were hidden."""
    usage = _sparse_usage(seed)
    t = table(usage)
    out = disclose(t, membership=membership())
    value = {tuple(r[:6]): r[6] for r in t.select(*KEY, "value").iter_rows()}
    keys = set(value)
    eqs = all_equations(keys, tiny_equations(), INDUSTRIES)
    hidden = suppressed_keys(out)
    sensitive = _sensitive(usage, keys)
    assert sensitive and sensitive <= hidden
    found = lp_intervals(value, hidden, {}, eqs)
    exact = [c for c, (lo, hi) in found.items() if hi - lo <= 1e-6 * max(1.0, value[c])]
    assert not exact, f"{len(exact)} suppressed cells determined exactly, e.g. {exact[:3]}"
    hideable = {c for c in keys if value[c] > 0 and not (c[3] == "national" and c[5] == "all")}
    best = lp_intervals(value, hideable, {}, eqs, of=sensitive)  # as far as the table allows at all
    short = []
    for cell in sensitive:
        lo, hi = found[cell]
        want_down = min(0.1 * value[cell], value[cell] - best[cell][0])
        want_up = min(0.1 * value[cell], best[cell][1] - value[cell])
        if lo > value[cell] - want_down * (1 - 1e-6) or hi < value[cell] + want_up * (1 - 1e-6):
            short.append((cell, value[cell], lo, hi))
    assert not short, f"{len(short)} sensitive cells with an interval narrower than 10%, e.g. {short[:3]}"


def test_a_cell_suppressed_once_stays_suppressed_and_earlier_values_are_known():
    """Late data in 2020Q2 makes a suppressed cell safe and a published one small: the first stays suppressed;
    the second's earlier published value is a lower bound the attacker knows, and the audit uses it."""
    first = [r for r in everywhere() if r[:3] != ("2020Q2", "130300", "gaming")]
    first += busy("2020Q2", "130300", "gaming", n=2, tag="s")
    before = disclose(table(first), membership=membership())
    assert status(before, "2020Q2", "city", "130300", "gaming") == "suppressed"
    previous = earlier_versions(before, None, "2020Q1")
    late = first + busy("2020Q2", "130300", "gaming", n=8, tag="late")  # now 10 accounts: not sensitive
    late += [("2020Q2", "140200", "finance", "whale", 50_000.0)]  # one customer dominates a published cell
    flags = suppression_flags(table(late), membership=membership(), previous=previous)
    after = blank(flags)
    assert status(after, "2020Q2", "city", "130300", "gaming") == "suppressed"  # never lifted
    assert suppressed_keys(before) <= suppressed_keys(after)
    whale = flags.filter((pl.col("period") == "2020Q2") & (pl.col("geo_code") == "140200")
                         & (pl.col("industry") == "finance")).row(0, named=True)
    assert whale["primary"] and whale["suppressed"] and whale["known_lower"] == 800.0  # 8 x 100 published before
    # the down move it can keep stops at what was published before: 10% of 50,800 is more than 50,000
    assert whale["protect_down"] == pytest.approx(0.1 * whale["value"])
    found = audit(flags, membership())
    assert not found["short"].any()
    lo = found.filter((pl.col("period") == "2020Q2") & (pl.col("geo_code") == "140200")
                      & (pl.col("industry") == "finance"))["lo"].item()
    assert lo >= 800.0 - 1e-6
    # without the earlier version an attacker would know less: the same cell's interval reaches lower
    alone = audit(suppression_flags(table(late), membership=membership()), membership())
    assert not alone["short"].any()


def test_a_release_under_the_retired_dominance_rule_stops_with_one_line(tmp_path):
    from assets.transforms.errors import InputError
    from assets.transforms.release import ReleaseSettings, read_settings, settings_path, write_settings
    from pipelines.cli import parser

    path = write_settings(ReleaseSettings(), settings_path(tmp_path))
    assert read_settings(tmp_path).privacy_p == 10.0 and read_settings(tmp_path).privacy_k == 5
    stored = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**stored, "privacy_dominance_percent": 85.0}), encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_settings(tmp_path)
    message = str(error.value)
    assert "\n" not in message and "privacy_dominance_percent" in message and "privacy_p" in message
    args = parser().parse_args(["run", "--out", "x", "--privacy-p", "20", "--privacy-protection-percent", "5"])
    assert (args.privacy_p, args.privacy_protection_percent) == (20.0, 5.0)


# ------------------------------------------------------------------------------------- a published release
ACCOUNT_PREFIX = "ACCT-5e1f-"
CUSTOMER_PREFIX = "CUST-77a0-"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """One CLI run over a small random input (2020Q1..2021Q1) where most cells are small."""
    from pipelines.cli import main

    ref = load_reference()
    rng = np.random.default_rng(5)
    cities = ref.city_geo().filter(pl.col("province_code").is_in(["130000", "320000", "440000", "610000"])
                                   & ~pl.col("geo_code").str.ends_with("U"))["geo_code"].to_list()
    regions = cities + ["130000", "440000", "110000", "310000"]
    industries = ref.industries["code"].to_list()
    quarters = [(2020, 1), (2020, 4), (2020, 7), (2020, 10), (2021, 1)]
    n = 3000
    month = [quarters[i] for i in rng.integers(0, len(quarters), n)]
    raw = pl.DataFrame({
        "usage_date": [dt.date(y, m + int(d) // 28, 1 + int(d) % 28) for (y, m), d in zip(month, rng.integers(0, 84, n))],
        "account_id": [f"{ACCOUNT_PREFIX}{int(i):04d}" for i in rng.integers(0, 250, n)],
        "region_code": [regions[int(i)] for i in rng.integers(0, len(regions), n)],
        "industry": [industries[int(i)] for i in rng.integers(0, len(industries), n)],
        "metric": np.array(["cloud", "ai"])[rng.integers(0, 2, n)],
        "product": ["anything"] * n,
        "amount": np.round(rng.lognormal(5, 2, n), 2),
    })
    # customers: accounts 0-99 in groups of five (one contributor each), the others their own
    raw = raw.with_columns(pl.when(pl.col("account_id").str.slice(len(ACCOUNT_PREFIX)).cast(pl.Int64) < 100)
                           .then(pl.lit(CUSTOMER_PREFIX) + (pl.col("account_id").str.slice(len(ACCOUNT_PREFIX))
                                                            .cast(pl.Int64) // 5).cast(pl.String))
                           .alias("customer_id"))
    root = tmp_path_factory.mktemp("privacy")
    raw_path = root / "raw.parquet"
    raw.write_parquet(raw_path)
    out = root / "release"
    assert main(["run", "--raw", str(raw_path), "--out", str(out)]) == 0
    return {"out": out, "raw": raw, "ref": ref}


def release_equations(ref) -> list[tuple[str, tuple, list[tuple]]]:
    """The published geo hierarchies, built from the seeds: national = provinces = cities = tiers;
    province = its cities (unallocated included); tier = its cities; cluster = its members."""
    geo = ref.city_geo()
    tiers = ref.city_tier()
    eqs = [("national", ("national", "CN"), [("province", p) for p in ref.provinces["code"]]),
           ("national", ("national", "CN"), [("city", c) for c in geo["geo_code"]]),
           ("national", ("national", "CN"), [("tier", t) for t in ref.tier_names()["geo_code"]])]
    by_province, by_tier, by_cluster = defaultdict(list), defaultdict(list), defaultdict(list)
    for code, province in geo.select("geo_code", "province_code").iter_rows():
        by_province[province].append(("city", code))
    for code, tier in tiers.iter_rows():
        by_tier[tier].append(("city", code))
    for cluster, city in ref.clusters.select("cluster_code", "city_code").iter_rows():
        by_cluster[cluster].append(("city", city))
    eqs += [("province", ("province", p), c) for p, c in by_province.items()]
    eqs += [("tier", ("tier", t), c) for t, c in by_tier.items()]
    eqs += [("cluster", ("cluster", k), c) for k, c in by_cluster.items()]
    return eqs


def test_release_subtraction_attack_isolates_no_suppressed_cell(release):
    out = pl.read_parquet(release["out"] / "indices.parquet")
    hidden = out.filter(pl.col("status") == "suppressed")
    assert hidden.height > 100, "the fixture should make many cells small"
    assert hidden["value"].is_null().all() and hidden["accounts"].is_null().all()
    assert (out.filter((pl.col("geo_level") == "national") & (pl.col("industry") == "all"))["status"] == "ok").all()
    industries = release["ref"].industries["code"].to_list()
    assert not subtraction_attack(out, release_equations(release["ref"]), industries)
    # every year with a suppressed quarter is suppressed; no quarter is anyone's complement in time
    years = out.filter(pl.col("period_type") == "year")
    quarters = (out.filter(pl.col("period").str.starts_with("2020") & (pl.col("period_type") == "quarter"))
                .group_by("metric", "geo_level", "geo_code", "industry")
                .agg((pl.col("status") == "suppressed").any().alias("any_q")))
    joined = years.join(quarters, on=["metric", "geo_level", "geo_code", "industry"])
    assert (joined["any_q"] == (joined["status"] == "suppressed")).all()


def test_the_bench_privacy_engine_does_the_release_s_privacy_work(release):
    """`bench --engines release,privacy` times the privacy stage alone on what the release stored: with the release's
    own settings it suppresses exactly the cells the release published as suppressed."""
    from pipelines.bench.engines import privacy_stage

    out = pl.read_parquet(release["out"] / "indices.parquet")
    done = privacy_stage(release["out"])
    assert done["cells"] == out.height and done["short"] == 0
    assert done["suppressed"] == out.filter(pl.col("status") == "suppressed").height


def test_release_checks_passed_and_are_recorded(release):
    quality = json.loads((release["out"] / "quality.json").read_text(encoding="utf-8"))
    assert quality["privacy"]["failed"] == 0 and quality["privacy"]["checks_run"] >= 5


def _strings_in(frame: pl.DataFrame) -> set[str]:
    values = set()
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            values |= set(frame[name].drop_nulls().unique().to_list())
    return values


def test_no_account_id_is_published_or_logged(release):
    out: Path = release["out"]
    ids = set(release["raw"]["account_id"].unique().to_list())
    assert ids
    for name in ("indices.parquet", "derived.parquet"):
        if (out / name).exists():
            leaked = _strings_in(pl.read_parquet(out / name)) & ids
            assert not leaked, f"{name} holds account ids"
    published = [out / "quality.json", out / "manifest.json"]
    published += [p for p in (out / "report").rglob("*") if p.is_file()] if (out / "report").exists() else []
    # Dagster: event logs (asset metadata, check metadata, previews), run storage and captured compute logs
    logged = [p for p in (out / ".dagster").rglob("*") if p.is_file()]
    assert published[0].exists() and published[1].exists() and logged
    for path in published + logged:
        data = path.read_bytes()
        assert ACCOUNT_PREFIX.encode() not in data, f"{path} holds an account id"
        assert CUSTOMER_PREFIX.encode() not in data, f"{path} holds a customer id"
    import dagster as dg

    instance = dg.DagsterInstance.from_config(str(out / ".dagster"))
    runs = instance.get_runs()
    assert runs
    for run in runs:
        for entry in instance.all_logs(run.run_id):
            assert ACCOUNT_PREFIX not in repr(entry) and CUSTOMER_PREFIX not in repr(entry)
            # tables of every cell before suppression show no preview: only the disclosed table may
            event = entry.dagster_event
            if event is not None and event.event_type_value == "ASSET_MATERIALIZATION":
                materialization = event.event_specific_data.materialization
                if materialization.asset_key.path[-1] in ("usage_cube", "quarterly_indices", "annual_indices"):
                    assert "preview" not in materialization.metadata
