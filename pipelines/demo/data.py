"""Default (demo) raw dataset: synthetic billing rows calibrated to the source's published figures.

    write_demo_raw(out, rows=2_000_000, seed=2021) -> dict

writes raw usage for 2020Q1..2021Q1 as hive-partitioned Parquet (``out/quarter=2020Q1/part-00000.parquet``, more
parts for big ``rows``), atomically (a temporary sibling directory renamed into place).

Shape (see the module constants):
  * targets come from ``pipelines.demo.calibration.build_targets``: value[metric, quarter, cell, industry] in index
    points; a cell (metric x quarter x geo cell x industry) is a *slot*; the amounts of the good rows of a slot add up
    to value * POINT_YUAN[metric] (the last row of each slot takes the floating-point remainder).
  * accounts: about ``min(rows // 10, 2_000_000)`` (ACCOUNTS_PER_ROW, MAX_ACCOUNTS), spread over the (geo cell,
    industry) pairs in proportion to size**0.6, at least one per pair; each account has one location (one
    region_code spelling: city code, one of its county codes, a municipality placeholder or a retired code, or a
    bare province code for a province's unallocated share), one industry label (code, Chinese name or alias; null or
    empty for some ``other`` accounts), a set of 1-3 cloud products and 1-2 AI products, a heavy-tailed size
    (Pareto) and a contiguous activity window of quarters (early accounts churn, late ones join).
  * rows: exactly ``rows`` rows in total, of which BAD_PER_KIND (=10) per quarantine reason are bad when
    rows >= 10_000 (so good rows = rows - 90); each slot gets >= 1 row, rows spread as value**0.6; the first rows of a
    slot go to distinct active accounts, the rest mostly to the large ones; dates uniform over the quarter;
    ``metric`` is null for ~30 % of rows (the product catalogue decides).
  * streaming: slots are generated in chunks of about CHUNK_ROWS rows (numpy, vectorised) and appended with a
    pyarrow ParquetWriter; a part file holds at most PART_ROWS rows.  Memory is bounded by the chunk size and the
    account table (<= 2M accounts).

Sparse (``sparse=True``, ``demo-data --sparse``): the same targets, spread so that privacy has work to do: a slot
may get a single row (no MIN_SLOT_ROWS floor), a (cell, industry) pair as few as one account, accounts by size**0.9
(small pairs get few), account sizes uncapped and rows not capped at their cell's mean (dominant customers), and a
``customer_id`` column: about half the accounts share a customer with the next accounts of their pair (up to 4),
and SHARED_CUSTOMER_SHARE of them belong to one of a few customers spread over many pairs.

Deterministic: same (rows, seed, sparse, seeds/) -> byte-identical files.  No dagster import.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import polars as pl

from assets.transforms.publish import DATASET_NOTE
from pipelines.demo import calibration as cal

ACCOUNTS_PER_ROW = 0.1
MAX_ACCOUNTS = 2_000_000
CHUNK_ROWS = 1_000_000
PART_ROWS = 5_000_000
METRIC_NULL_SHARE = 0.30
BAD_PER_KIND = 10
BAD_MIN_ROWS = 10_000
BAD_KINDS = (
    "invalid_date", "missing_account", "missing_region", "unknown_region", "unknown_industry",
    "invalid_metric", "unknown_product", "metric_conflict", "invalid_amount",
)
ROW_WEIGHT_EXP = 0.6          # rows per slot ~ value ** 0.6
ACCOUNT_WEIGHT_EXP = 0.6      # accounts per (cell, industry) ~ size ** 0.6
MIN_SLOT_ROWS = 12            # rows per non-empty cell x quarter, when the row budget allows
MIN_COMBO_ACCOUNTS = 10       # accounts per (cell, industry): >= 5 active in every quarter of its window
PARETO_ALPHA = 1.3            # account size tail
ACCOUNT_SIZE_CAP = 12.0       # cap of an account's size relative to the smallest (keeps any account < 85 % of a cell)

# region_code spelling of an account located in a city: city code / county / placeholder-or-retired code
REGION_VARIANT_P = (0.72, 0.20, 0.08)
# industry label: code / Chinese name / alias
INDUSTRY_LABEL_P = (0.6, 0.3, 0.1)
# `other` accounts: "other" / "其他" / null / ""
OTHER_LABEL_P = (0.4, 0.2, 0.25, 0.15)

SCHEMA = pa.schema([
    ("usage_date", pa.date32()),
    ("account_id", pa.string()),
    ("region_code", pa.string()),
    ("industry", pa.string()),
    ("product", pa.string()),
    ("metric", pa.string()),
    ("amount", pa.float64()),
])
SPARSE_SCHEMA = SCHEMA.append(pa.field("customer_id", pa.string()))
SPARSE_ACCOUNT_WEIGHT_EXP = 0.9   # sparse: accounts per (cell, industry) ~ size ** 0.9 (small pairs get few)
SHARED_CUSTOMER_SHARE = 0.05      # sparse: accounts of one of a few customers spread over many pairs


def _quarter_bounds(q: str) -> tuple[dt.date, int]:
    y, n = int(q[:4]), int(q[-1])
    start = dt.date(y, 3 * n - 2, 1)
    end = dt.date(y + (n == 4), (3 * n) % 12 + 1, 1)
    return start, (end - start).days


_EPOCH = dt.date(1970, 1, 1)


# ---------------------------------------------------------------------------------------------------------------
# reference data: spellings of every cell's region code
# ---------------------------------------------------------------------------------------------------------------
def _region_spellings(seeds_dir: Path, seeds: cal.Seeds) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """cell -> (primary codes, county codes, placeholder/retired codes)."""
    counties = pl.read_csv(seeds_dir / "counties.csv", schema_overrides={"code": pl.Utf8, "city_code": pl.Utf8})
    xw = pl.read_csv(seeds_dir / "region_crosswalk.csv",
                     schema_overrides={"old_code": pl.Utf8, "new_code": pl.Utf8})
    city_codes = set(seeds.cities["code"].to_list())
    county_city = dict(zip(counties["code"].to_list(), counties["city_code"].to_list()))
    current = city_codes | set(seeds.provinces["code"].to_list()) | set(county_city)
    # retired codes with exactly one successor, resolved (through chains) to a current city
    succ: dict[str, list[str]] = {}
    for o, n in zip(xw["old_code"].to_list(), xw["new_code"].to_list()):
        succ.setdefault(o, []).append(n)

    def resolve(code: str, depth: int = 0) -> str | None:
        if code in city_codes:
            return code
        if code in county_city:
            return county_city[code]
        if depth < 8 and code in succ and len(set(succ[code])) == 1:
            return resolve(succ[code][0], depth + 1)
        return None

    retired: dict[str, list[str]] = {}
    for o in sorted(succ):
        if o in current or o.endswith("0000"):
            continue
        c = resolve(o)
        if c is not None:
            retired.setdefault(c, []).append(o)
    by_city: dict[str, list[str]] = {}
    for code, c in sorted(county_city.items()):
        if code != c:
            by_city.setdefault(c, []).append(code)
    out: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for row in seeds.provinces.iter_rows(named=True):
        p = row["code"]
        out[p + "U"] = ([p], [], [])
    for row in seeds.cities.iter_rows(named=True):
        c = row["code"]
        special = list(retired.get(c, []))
        if c == row["province_code"]:                     # municipality: 市辖区 / 县 placeholders mean the city
            special = [c[:2] + "0100"] + ([c[:2] + "0200"] if c.startswith("50") else []) + special
            # only placeholders that do not collide with a real code
            special = [s for s in special if s not in county_city or county_city[s] == c]
        out[c] = ([c], by_city.get(c, []), special)
    return out


# ---------------------------------------------------------------------------------------------------------------
# plan: slots, accounts
# ---------------------------------------------------------------------------------------------------------------
class _Plan:
    pass


def _plan(rows: int, seed: int, seeds_dir: Path, sparse: bool = False) -> _Plan:
    seeds = cal.load_seeds(seeds_dir)
    targets = cal.build_targets(seeds_dir)
    products = pl.read_csv(seeds_dir / "products.csv")
    inds = seeds.industries
    n_bad = BAD_PER_KIND * len(BAD_KINDS) if rows >= BAD_MIN_ROWS else 0
    good = rows - n_bad

    q_index = {q: i for i, q in enumerate(cal.QUARTERS)}
    targets = targets.with_columns(
        pl.col("quarter").replace_strict(q_index, return_dtype=pl.Int64).alias("q"),
        pl.col("metric").replace_strict({"cloud": 0, "ai": 1}, return_dtype=pl.Int64).alias("m"),
    )
    combos = (targets.group_by("cell", "industry").agg(pl.col("value").sum().alias("size"))
              .sort("cell", "industry").with_row_index("combo"))
    slots = (targets.join(combos.select("cell", "industry", "combo"), on=["cell", "industry"])
             .sort("q", "m", "combo"))
    n_slots = slots.height
    if good < n_slots:
        raise ValueError(f"rows={rows} is too small: the calibration has {n_slots} non-empty cells, "
                         f"each needs at least one row (use rows >= {n_slots + n_bad})")

    # rows per slot: at least MIN_SLOT_ROWS where the row budget allows (so a cell has enough distinct accounts
    # to be published, not suppressed), the rest by value ** ROW_WEIGHT_EXP (largest remainder, deterministic)
    floor_rows = 1 if sparse else int(max(1, min(MIN_SLOT_ROWS, good // (2 * n_slots))))
    val = slots["value"].to_numpy()
    w = val ** ROW_WEIGHT_EXP
    extra = (good - floor_rows * n_slots) * w / w.sum()
    n_rows = floor_rows + np.floor(extra).astype(np.int64)
    short = good - int(n_rows.sum())
    if short:
        order = np.lexsort((np.arange(n_slots), -(extra - np.floor(extra))))
        n_rows[order[:short]] += 1
    assert int(n_rows.sum()) == good

    # accounts per combo
    n_acc_target = int(min(max(rows * ACCOUNTS_PER_ROW, 1), MAX_ACCOUNTS))
    csize = combos["size"].to_numpy()
    cw = csize ** (SPARSE_ACCOUNT_WEIGHT_EXP if sparse else ACCOUNT_WEIGHT_EXP)
    n_acc = np.maximum(min(MIN_COMBO_ACCOUNTS, floor_rows), np.floor(n_acc_target * cw / cw.sum())).astype(np.int64)
    # never more accounts than rows in the combo's biggest slot of its thinnest quarter (no idle accounts: in
    # every quarter the biggest slot reaches every account active then, and the windows cover all accounts)
    max_rows = (pl.DataFrame({"combo": slots["combo"].to_numpy(), "q": slots["q"].to_numpy(), "n": n_rows})
                .group_by("combo", "q").agg(pl.col("n").max())
                .group_by("combo").agg(pl.col("n").min()).sort("combo")["n"].to_numpy())
    n_acc = np.maximum(1, np.minimum(n_acc, max_rows))
    acc_start = np.concatenate([[0], np.cumsum(n_acc)[:-1]])
    n_accounts = int(n_acc.sum())

    rng = np.random.default_rng([seed, 0xACC])
    acc_combo = np.repeat(np.arange(combos.height), n_acc)
    size = np.minimum((1.0 - rng.random(n_accounts)) ** (-1.0 / PARETO_ALPHA), np.inf if sparse else ACCOUNT_SIZE_CAP)
    acc_hash = rng.integers(0, 2**31 - 1, n_accounts)
    perm = rng.permutation(n_accounts) + 1
    acc_ids = pc.binary_join_element_wise(
        "acct-", pc.utf8_lpad(pc.cast(pa.array(perm), pa.string()), 7, "0"), "")

    # region spelling of each account
    spell = _region_spellings(seeds_dir, seeds)
    cells = combos["cell"].to_list()
    flat: list[str] = []
    offs = np.zeros((combos.height, 3), np.int64)
    lens = np.zeros((combos.height, 3), np.int64)
    cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for ci, c in enumerate(cells):
        if c not in cache:
            o, l = [], []
            for lst in spell[c]:
                o.append(len(flat))
                l.append(len(lst))
                flat.extend(lst)
            cache[c] = (np.array(o), np.array(l))
        offs[ci], lens[ci] = cache[c]
    u = rng.random(n_accounts)
    kind = np.where(u < REGION_VARIANT_P[0], 0, np.where(u < REGION_VARIANT_P[0] + REGION_VARIANT_P[1], 1, 2))
    kl = lens[acc_combo, kind]
    kind = np.where(kl > 0, kind, 0)
    kl = lens[acc_combo, kind]
    within = np.floor(rng.random(n_accounts) * kl).astype(np.int64)
    # the first special-spelling account of each cell uses the first special spelling (a municipality's 市辖区
    # placeholder), so every kind of spelling occurs whatever the account count
    cell_id = np.unique(np.array(cells), return_inverse=True)[1][acc_combo]
    k2 = np.flatnonzero(kind == 2)
    _, first_k2 = np.unique(cell_id[k2], return_index=True)
    within[k2[first_k2]] = 0
    pick = offs[acc_combo, kind] + within
    acc_region = pa.array(flat, pa.string()).take(pa.array(pick))

    # industry label of each account
    labels: list[str | None] = []
    lab_off = {}
    for r in inds.iter_rows(named=True):
        alias = [a for a in (r["aliases"] or "").split("|") if a]
        lab_off[r["code"]] = len(labels)
        if r["code"] == "other":
            labels += [r["code"], r["name_zh"], None, ""]
        else:
            labels += [r["code"], r["name_zh"], alias[0] if alias else r["name_zh"]]
    combo_ind = combos["industry"].to_list()
    c_off = np.array([lab_off[i] for i in combo_ind])
    c_other = np.array([i == "other" for i in combo_ind])
    u = rng.random(n_accounts)
    k_reg = np.searchsorted(np.cumsum(INDUSTRY_LABEL_P)[:-1], u, side="right")
    k_oth = np.searchsorted(np.cumsum(OTHER_LABEL_P)[:-1], u, side="right")
    k = np.where(c_other[acc_combo], k_oth, k_reg)
    acc_industry = pa.array(labels, pa.string()).take(pa.array(c_off[acc_combo] + k))

    # activity windows per combo x quarter: accounts [lo, hi) of the combo are active
    # (relative to the quarters the combo has any slot in, so that every account falls in a used window)
    present = np.zeros((combos.height, 5), bool)
    present[slots["combo"].to_numpy(), slots["q"].to_numpy()] = True
    rank = np.cumsum(present, axis=1) - 1                      # position of each quarter among the present ones
    span = np.maximum(present.sum(axis=1) - 1, 1)[:, None]
    qn = np.clip(rank, 0, None)
    lo = np.floor(0.15 * n_acc[:, None] * qn / span).astype(np.int64)
    hi = n_acc[:, None] - np.floor(0.25 * n_acc[:, None] * (span - qn) / span).astype(np.int64)
    single = present.sum(axis=1) == 1
    lo[single], hi[single] = 0, n_acc[single, None]
    hi = np.maximum(hi, lo + 1)

    P = _Plan()
    P.sparse = sparse
    if sparse:  # customers: runs of up to 4 accounts of a pair, or one of a few customers across many pairs
        crng = np.random.default_rng([seed, 0xC05])
        starts = (crng.random(n_accounts) < 0.5) | (np.arange(n_accounts) == acc_start[acc_combo])
        group = np.cumsum(starts | (np.arange(n_accounts) - np.maximum.accumulate(
            np.where(starts, np.arange(n_accounts), 0)) >= 4)) - 1
        shared = crng.random(n_accounts) < SHARED_CUSTOMER_SHARE
        names = np.where(shared, crng.integers(0, 50, n_accounts), group)
        P.acc_customer = pc.binary_join_element_wise(
            pa.array(np.where(shared, "group-", "cust-").tolist()),
            pc.utf8_lpad(pc.cast(pa.array(names), pa.string()), 7, "0"), "")
    P.seeds = seeds
    P.slots = slots
    P.n_rows = n_rows
    P.n_bad = n_bad
    P.good = good
    P.n_acc = n_acc
    P.acc_start = acc_start
    P.lo, P.hi = lo, hi
    P.size = size
    P.acc_hash = acc_hash
    P.acc_ids, P.acc_region, P.acc_industry = acc_ids, acc_region, acc_industry
    P.n_accounts = n_accounts
    P.cloud_products = products.filter(pl.col("metric") == "cloud")["product"].to_list()
    P.ai_products = products.filter(pl.col("metric") == "ai")["product"].to_list()
    P.combos = combos
    return P


# ---------------------------------------------------------------------------------------------------------------
# row generation
# ---------------------------------------------------------------------------------------------------------------
def _chunk_table(P: _Plan, s0: int, s1: int, rng: np.random.Generator) -> pa.Table:
    sl = P.slots.slice(s0, s1 - s0)
    n = P.n_rows[s0:s1]
    total = int(n.sum())
    sid = np.repeat(np.arange(s1 - s0), n)
    first = np.concatenate([[0], np.cumsum(n)[:-1]])
    pos = np.arange(total) - first[sid]
    combo = sl["combo"].to_numpy()[sid]
    q = sl["q"].to_numpy()[sid]
    m = sl["m"].to_numpy()[sid]
    lo = P.lo[combo, q]
    n_act = P.hi[combo, q] - lo
    # first rows of a slot: distinct accounts; the rest lean (mildly) to the first accounts
    skew = np.floor(n_act * rng.random(total) ** 1.5).astype(np.int64)
    j = np.where(pos < n_act, pos, skew)
    acct = P.acc_start[combo] + lo + j
    w = P.size[acct] * np.exp(0.5 * rng.standard_normal(total))
    # no row above 2.5x its cell's mean row, so an account rarely holds 85% of a cell with a few rows (which
    # would suppress it, and with it its complements, in the published release)
    mean = np.bincount(sid, weights=w, minlength=s1 - s0) / n
    if not P.sparse:
        w = np.minimum(w, 2.5 * mean[sid])
    wsum = np.bincount(sid, weights=w, minlength=s1 - s0)
    yuan = sl["value"].to_numpy() * np.where(sl["m"].to_numpy() == 1, cal.POINT_YUAN["ai"], cal.POINT_YUAN["cloud"])
    amount = yuan[sid] * w / wsum[sid]
    last = first + n - 1
    others = np.bincount(sid, weights=amount, minlength=s1 - s0) - amount[last]
    amount[last] = np.maximum(yuan - others, 0.0)
    # dates: uniform over the quarter
    starts = np.array([(_quarter_bounds(qq)[0] - _EPOCH).days for qq in cal.QUARTERS])
    ndays = np.array([_quarter_bounds(qq)[1] for qq in cal.QUARTERS])
    day = starts[q] + np.floor(rng.random(total) * ndays[q]).astype(np.int64)
    # products: each account uses 1-3 cloud and 1-2 ai products of the catalogue
    h = P.acc_hash[acct]
    nc, na = len(P.cloud_products), len(P.ai_products)
    kc = 1 + h % 3
    ka = 1 + (h // 3) % 2
    kk = np.floor(rng.random(total) * np.where(m == 1, ka, kc)).astype(np.int64)
    pidx = np.where(m == 1, nc + ((h // 7) + kk * 3) % na, ((h // 11) + kk * 5) % nc)
    prod = pa.array(P.cloud_products + P.ai_products, pa.string()).take(pa.array(pidx))
    mnull = rng.random(total) < METRIC_NULL_SHARE
    midx = np.where(mnull, 2, m)
    metric = pa.array(["cloud", "ai", None], pa.string()).take(pa.array(midx))
    acct_pa = pa.array(acct)
    columns = [
        pa.array(day.astype(np.int32), pa.int32()).cast(pa.date32()),
        P.acc_ids.take(acct_pa),
        P.acc_region.take(acct_pa),
        P.acc_industry.take(acct_pa),
        prod,
        metric,
        pa.array(amount, pa.float64()),
    ]
    if P.sparse:
        return pa.Table.from_arrays([*columns, P.acc_customer.take(acct_pa)], schema=SPARSE_SCHEMA)
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def _bad_rows(P: _Plan, qi: int) -> pa.Table:
    """Two rows of each quarantine reason for quarter qi (10 per reason over 5 quarters); each has exactly one
    defect, so its reason is the one intended (first applicable in the contract's order)."""
    start, nd = _quarter_bounds(cal.QUARTERS[qi])
    cols: dict[str, list] = {f.name: [] for f in SCHEMA}
    good_acct = P.acc_ids[qi].as_py()
    good_region = "440300" if "440300" in set(P.seeds.cities["code"].to_list()) else P.seeds.cities["code"][0]
    cloud_p, ai_p = P.cloud_products[0], P.ai_products[0]
    per_q = BAD_PER_KIND * len(BAD_KINDS) // 5
    per_kind_here = [BAD_PER_KIND // 5] * len(BAD_KINDS)
    assert sum(per_kind_here) == per_q
    for kind, cnt in zip(BAD_KINDS, per_kind_here):
        for r in range(cnt):
            d = start + dt.timedelta(days=(7 * r + 3 * qi) % nd)
            row = dict(usage_date=d, account_id=good_acct, region_code=good_region, industry="finance",
                       product=ai_p, metric="ai", amount=100.0 + r)
            if kind == "invalid_date":
                row["usage_date"] = None
            elif kind == "missing_account":
                row["account_id"] = None if r % 2 == 0 else ""
            elif kind == "missing_region":
                row["region_code"] = None if r % 2 == 0 else ""
            elif kind == "unknown_region":
                row["region_code"] = ("999999", "719900")[r % 2]
            elif kind == "unknown_industry":
                row["industry"] = ("农业科技", "agritech")[r % 2]
            elif kind == "invalid_metric":
                row["metric"] = ("compute", "AI-X")[r % 2]
            elif kind == "unknown_product":
                row["product"], row["metric"] = f"unknown_product_{r}", None
            elif kind == "metric_conflict":
                row["product"], row["metric"] = cloud_p, "ai"
            elif kind == "invalid_amount":
                row["amount"] = (-12.5, float("nan"), float("inf"))[(r + qi) % 3]
            for k2, v in row.items():
                cols[k2].append(v)
    table = pa.Table.from_pydict(cols, schema=SCHEMA)
    return table.append_column("customer_id", pa.nulls(table.num_rows, pa.string())) if P.sparse else table


def write_demo_raw(out: str | Path, rows: int = 2_000_000, seed: int = 2021,
                   seeds_dir: str | Path | None = None, sparse: bool = False) -> dict:
    """Write the demo raw dataset to ``out`` (replaced atomically); `sparse`: the sparse variant (module
    docstring).  Returns a summary dict."""
    out = Path(out)
    seeds_dir = Path(seeds_dir) if seeds_dir is not None else cal.SEEDS_DIR
    P = _plan(int(rows), int(seed), seeds_dir, sparse)
    schema = SPARSE_SCHEMA if sparse else SCHEMA
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    files: list[str] = []
    per_quarter: dict[str, int] = {}
    try:
        q_arr = P.slots["q"].to_numpy()
        bounds = np.searchsorted(q_arr, np.arange(6))
        for qi, qlabel in enumerate(cal.QUARTERS):
            qdir = tmp / f"quarter={qlabel}"
            qdir.mkdir()
            s_lo, s_hi = int(bounds[qi]), int(bounds[qi + 1])
            # chunk boundaries: consecutive slots of about CHUNK_ROWS rows
            cum = np.cumsum(P.n_rows[s_lo:s_hi])
            cuts = [s_lo]
            while cuts[-1] < s_hi:
                base = int(cum[cuts[-1] - s_lo - 1]) if cuts[-1] > s_lo else 0
                nxt = s_lo + int(np.searchsorted(cum, base + CHUNK_ROWS, side="right"))
                cuts.append(min(max(nxt, cuts[-1] + 1), s_hi))
            part, writer, in_part, q_rows = 0, None, 0, 0
            for ci in range(len(cuts) - 1):
                rng = np.random.default_rng([seed, qi, ci])
                tbl = _chunk_table(P, cuts[ci], cuts[ci + 1], rng)
                if writer is not None and in_part + tbl.num_rows > PART_ROWS and in_part > 0:
                    writer.close()
                    part, writer, in_part = part + 1, None, 0
                if writer is None:
                    path = qdir / f"part-{part:05d}.parquet"
                    writer = pq.ParquetWriter(path, schema, compression="zstd")
                    files.append(str(path.relative_to(tmp)))
                writer.write_table(tbl, row_group_size=CHUNK_ROWS)
                in_part += tbl.num_rows
                q_rows += tbl.num_rows
            if P.n_bad:
                bad = _bad_rows(P, qi)
                if writer is None:
                    path = qdir / f"part-{part:05d}.parquet"
                    writer = pq.ParquetWriter(path, schema, compression="zstd")
                    files.append(str(path.relative_to(tmp)))
                writer.write_table(bad)
                q_rows += bad.num_rows
            if writer is not None:
                writer.close()
            per_quarter[qlabel] = q_rows
        # what the data is, for the release's provenance (a file the inventory does not read: it is neither
        # Parquet nor CSV, and its name starts with an underscore)
        (tmp / DATASET_NOTE).write_text(json.dumps({
            "synthetic": True, "generator": "yunzhi demo-data", "rows": int(sum(per_quarter.values())), "seed": seed,
            "description": "Synthetic billing rows generated by yunzhi, calibrated to reproduce the figures the "
                           "Tencent Research Institute's Cloud+AI whitepaper (2021) publishes; not real usage."},
            ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        if out.exists():
            trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            out.rename(trash)
            tmp.rename(out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {
        "path": str(out),
        "rows": int(sum(per_quarter.values())),
        "good_rows": int(P.good),
        "bad_rows": int(P.n_bad),
        "bad_per_reason": {k: (BAD_PER_KIND if P.n_bad else 0) for k in BAD_KINDS},
        "rows_per_quarter": per_quarter,
        "files": files,
        "accounts": int(P.n_accounts),
        "cells": int(P.slots.height),
        "seed": int(seed),
        "point_yuan": dict(cal.POINT_YUAN),
    }


if __name__ == "__main__":  # pragma: no cover
    import json
    import sys
    import time

    t0 = time.time()
    summary = write_demo_raw(sys.argv[1] if len(sys.argv) > 1 else "data/demo/raw",
                             int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000)
    summary["files"] = len(summary["files"])
    summary["seconds"] = round(time.time() - t0, 2)
    print(json.dumps(summary, ensure_ascii=False, indent=1))
