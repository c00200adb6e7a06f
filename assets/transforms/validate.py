"""Validate: resolve each raw row's region, industry and metric, and give every bad row one reason.

The rules and their order are CONTRACT.md's "Quarantine" section; the first reason that applies wins.

Few distinct spellings recur over millions of rows, so each distinct spelling (full-width digits, stray spaces,
upper case and unknown codes included) is resolved once (`Codebook`), and the rows take the answers as small enums
(`lookup`, the row-by-row definition) or packed into one integer cell (`with_cells`, the bulk pass).
"""
from __future__ import annotations

import polars as pl

from assets.transforms.ingest.read import read_raw, unreadable_named
from assets.transforms.quarters import quarter_label
from assets.transforms.reference import Reference

REASONS = ("invalid_date", "missing_account", "missing_region", "unknown_region", "unknown_industry",
           "invalid_metric", "unknown_product", "metric_conflict", "invalid_amount")
REASON = pl.Enum(REASONS)  # in rule order: the first reason that applies to a row is the smallest that does
METRIC = pl.Enum(["cloud", "ai"])
QUARANTINE_COLUMNS = ("quarter", "source_file", "source_row", "reason", "usage_date", "account_id", "region_code",
                      "industry", "product", "metric", "amount")
# Amounts are summed as exact decimals (to 1e-9 yuan): float sums depend on the order rows arrive in, which a
# parallel, streaming engine does not fix, and reruns must publish byte-identical indices.
EXACT = pl.Decimal(38, 9)
ACCOUNT_USAGE_SCHEMA = {"metric": pl.String, "geo_code": pl.String, "province_code": pl.String,
                        "industry": pl.String, "account_id": pl.String, "customer_id": pl.String, "amount": EXACT,
                        "rows": pl.UInt32}


# An amount above this (yuan, one billing line) is not plausible (China's GDP is ~1.3e14 a year) -> invalid_amount.
# It also keeps every sum and 100 x sum far from float64 overflow (1e9 such rows sum to 1e24).
MAX_AMOUNT = 1e15
_ODD = r"[^\x21-\x7e]"  # anything but printable, non-space ASCII: only such values need Unicode cleaning


def _blank(expr: pl.Expr) -> pl.Expr:
    return expr.is_null() | (expr == "")


def _invalid_amount(amount: pl.Expr) -> pl.Expr:
    return amount.is_null() | ~amount.is_finite() | (amount < 0) | (amount > MAX_AMOUNT)


def _slot(expr: pl.Expr, height: int) -> pl.Expr:
    """An enum's physical index; null takes the last of `height` slots."""
    return expr.to_physical().cast(pl.UInt32).fill_null(height - 1)


def _only_odd(fix):
    """Apply `fix` to the values holding a non-ASCII or space character only, so clean data costs one scan."""
    def apply(series: pl.Series) -> pl.Series:
        idx = series.str.contains(_ODD).arg_true()
        return series if idx.len() == 0 else series.clone().scatter(idx, fix(series.gather(idx)))
    return apply


def clean_code(expr: pl.Expr) -> pl.Expr:
    """A code or name as matched against the seeds: NFKC (full-width digits and letters, ideographic spaces), no
    zero-width or other format characters (Unicode Cf), trimmed."""
    fix = _only_odd(lambda s: s.str.normalize("NFKC").str.replace_all(r"\p{Cf}+", "").str.strip_chars())
    return expr.map_batches(fix, return_dtype=pl.String, is_elementwise=True)


def clean_account(expr: pl.Expr) -> pl.Expr:
    """An account id is opaque (emoji and all; never folded, so distinct ids stay distinct); only whitespace and
    format characters at its ends are dropped, so an id of zero-width spaces is missing."""
    fix = _only_odd(lambda s: s.str.replace_all(r"^[\s\p{Cf}]+|[\s\p{Cf}]+$", ""))
    return expr.map_batches(fix, return_dtype=pl.String, is_elementwise=True)


class Codebook:
    """What each raw spelling of region, industry and product x metric means, as small enum-typed tables.

    `resolve` is the one definition of what a spelling means; `lookup` applies it to the distinct spellings of
    the rows (one cheap pass over four low-cardinality columns) and joins the answers to the rows.
    """

    KEYS = (("region_code",), ("industry",), ("product", "metric"))
    ANSWERS = (("geo_code", "region_reason"), ("industry_code", "industry_reason"), ("metric_code", "metric_reason"))

    def __init__(self, ref: Reference):
        self.regions = ref.region_lookup()
        self.industries = ref.industry_lookup()
        self.products = ref.product_lookup()
        self.geo = pl.Enum(sorted(set(self.regions["geo_code"])))
        self.province = pl.Enum(sorted(set(self.regions["province_code"])))
        self.industry = pl.Enum(sorted(set(self.industries["code"]) | {"other"}))

    def resolve(self, spellings: pl.DataFrame) -> pl.DataFrame:
        """Distinct spellings (one of `KEYS`' column sets, as text) -> what they mean, as enum columns."""
        frame = spellings.unique()
        if "region_code" in frame.columns:
            key = clean_code(pl.col("region_code")).str.replace(r"\.0+$", "")
            return (frame.with_columns(key.alias("_key"))
                    .join(self.regions, left_on="_key", right_on="code", how="left")
                    .select("region_code", pl.col("geo_code").cast(self.geo),
                            pl.col("province_code").cast(self.province),
                            pl.when(_blank(pl.col("_key"))).then(pl.lit("missing_region"))
                            .when(pl.col("geo_code").is_null()).then(pl.lit("unknown_region"))
                            .cast(REASON).alias("region_reason")))
        if "industry" in frame.columns:
            key = clean_code(pl.col("industry")).str.to_lowercase()
            return (frame.with_columns(key.alias("_key"))
                    .join(self.industries, left_on="_key", right_on="spelling", how="left")
                    .select("industry",
                            pl.when(_blank(pl.col("_key"))).then(pl.lit("other")).otherwise(pl.col("code"))
                            .cast(self.industry).alias("industry_code"),
                            pl.when(~_blank(pl.col("_key")) & pl.col("code").is_null())
                            .then(pl.lit("unknown_industry")).cast(REASON).alias("industry_reason")))
        # a metric said is blank (take the product's), cloud, ai, or anything else (invalid)
        said = clean_code(pl.col("metric")).str.to_lowercase()
        implied = pl.col("product_metric")
        return (frame.with_columns(clean_code(pl.col("product")).str.to_lowercase().alias("_key"),
                                   pl.when(~_blank(said)).then(said).alias("_said"))
                .join(self.products, left_on="_key", right_on="product", how="left")
                .select("product", "metric",
                        pl.coalesce("_said", implied).cast(METRIC, strict=False).alias("metric_code"),
                        pl.when(pl.col("_said").is_not_null() & ~pl.col("_said").is_in(["cloud", "ai"]))
                        .then(pl.lit("invalid_metric"))
                        .when(pl.col("_said").is_null() & implied.is_null()).then(pl.lit("unknown_product"))
                        .when(pl.col("_said").is_not_null() & implied.is_not_null() & (implied != pl.col("_said")))
                        .then(pl.lit("metric_conflict")).cast(REASON).alias("metric_reason")))

    def _cell_parts(self) -> dict[str, pl.DataFrame]:
        """Each part of a packed cell, most significant first: slot number (the enum's physical index; the last
        slot is null) -> value."""
        parts = {"metric_code": METRIC, "geo_code": self.geo, "industry_code": self.industry, "reason": REASON}
        return {name: pl.DataFrame({f"_{name}": range(len(dtype.categories) + 1), name: [*dtype.categories, None]},
                                   schema={f"_{name}": pl.UInt32, name: pl.String})
                for name, dtype in parts.items()}

    def _spellings(self, rows: pl.LazyFrame) -> list[tuple[pl.DataFrame, pl.Expr]]:
        """Per key set (`KEYS`): its distinct spellings, every pair for product x metric, each column's in enum order
        with null last, product first; and each row's slot in that table. The spellings are read now: one cheap
        pass over four low-cardinality columns."""
        columns = [c for keys in self.KEYS for c in keys]
        distinct = dict(zip(columns, (frame.to_series().drop_nulls() for frame in pl.collect_all(
            [rows.select(pl.col(c).unique()) for c in columns], engine="streaming"))))
        out = []
        for keys in self.KEYS:
            table, row_slot = None, pl.lit(0, dtype=pl.UInt32)
            for key in keys:  # product x metric: every pair of distinct spellings (a few hundred)
                slots = pl.concat([distinct[key], pl.Series(key, [None], pl.String)]).to_frame()
                table = slots if table is None else table.join(slots, how="cross", maintain_order="left_right")
                row_slot = row_slot * slots.height + _slot(pl.col(key).cast(pl.Enum(distinct[key])), slots.height)
            out.append((table, row_slot))
        return out

    def with_cells(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        """`rows` with `_cell`: metric, geo and industry (what the row's spellings mean) and the first reason that
        applies, packed as `_cell_parts` lays them out, as one integer is cheaper to hash beside the account id
        than four columns. The same answers as `lookup` and `_classify`, row by row.

        What each spelling means, resolved once and packed with its reason, sits in a small table at the
        spelling's slot, from which each row gathers: a small hash probe per column and row (its spelling's enum
        slot), cheaper than joining the answers to the rows (a 23.6M-row quarter's pass took 0.6 s less).
        """
        height = {name: table.height for name, table in self._cell_parts().items()}
        answers = {}
        for (table, row_slot), keys, (part, reason) in zip(self._spellings(rows), self.KEYS, self.ANSWERS):
            meaning = table.join(self.resolve(table), on=list(keys), how="left", nulls_equal=True,
                                 maintain_order="left")
            packed = meaning.select(_slot(pl.col(part), height[part]) * height["reason"]
                                    + _slot(pl.col(reason), height["reason"])).to_series()
            answers[f"_{part}"] = pl.lit(packed).gather(row_slot)
        first_reason = pl.min_horizontal(  # nulls (no such reason) are skipped
            pl.when(pl.col("usage_date").is_null()).then(REASONS.index("invalid_date")),
            pl.when(_blank(pl.col("account_id"))).then(REASONS.index("missing_account")),
            *(pl.col(name) % height["reason"] for name in answers),
            pl.when(_invalid_amount(pl.col("amount"))).then(REASONS.index("invalid_amount")))
        cell = pl.lit(0, dtype=pl.UInt32)
        for part in list(height)[:-1]:  # as `_cell_parts`, most significant first; the reason is last
            cell = cell * height[part] + pl.col(f"_{part}") // height["reason"]
        cell = cell * height["reason"] + first_reason.cast(pl.UInt32)
        return rows.with_columns(**answers).with_columns(cell.alias("_cell")).drop(*answers)

    def decode_cells(self, groups: pl.DataFrame) -> pl.DataFrame:
        """Groups keyed by a packed `_cell` -> metric, geo_code, province_code, industry and reason (text)."""
        parts, rest, slots = self._cell_parts(), pl.col("_cell"), {}
        for name, table in reversed(parts.items()):
            slots[f"_{name}"] = rest % table.height
            rest = rest // table.height
        decoded = groups.select(pl.col("_cell").unique()).with_columns(**slots)
        for table in parts.values():
            decoded = decoded.join(table, on=table.columns[0], how="left")
        provinces = self.regions.select("geo_code", "province_code").unique("geo_code")
        decoded = decoded.join(provinces, on="geo_code", how="left").select(
            "_cell", pl.col("metric_code").alias("metric"), "geo_code", "province_code",
            pl.col("industry_code").alias("industry"), "reason")
        return groups.join(decoded, on="_cell", how="left").drop("_cell")

    def lookup(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        """`rows`, in their order, with what their spellings mean beside them."""
        for (spellings, _), keys in zip(self._spellings(rows), self.KEYS):
            rows = rows.join(self.resolve(spellings).lazy(), on=list(keys), how="left", nulls_equal=True,
                             maintain_order="left")
        return rows


def _classify(rows: pl.LazyFrame, book: Codebook, account: pl.Expr) -> pl.LazyFrame:
    """Rows with `geo_code`, `province_code`, `industry_code`, `metric_code` (enums) and `reason` (null = good)."""
    rows = book.lookup(rows)
    reason = pl.coalesce(
        pl.when(pl.col("usage_date").is_null()).then(pl.lit("invalid_date", dtype=REASON)),
        pl.when(_blank(account)).then(pl.lit("missing_account", dtype=REASON)),
        "region_reason", "industry_reason", "metric_reason",
        pl.when(_invalid_amount(pl.col("amount"))).then(pl.lit("invalid_amount", dtype=REASON)),
    )
    return rows.with_columns(reason.alias("reason")).drop("region_reason", "industry_reason", "metric_reason")


def codebook(ref: Reference | Codebook) -> Codebook:
    return ref if isinstance(ref, Codebook) else Codebook(ref)


def customer_key(expr: pl.Expr) -> pl.Expr:
    """A customer id cleaned as an account id is; empty means none (the account is its own customer)."""
    cleaned = clean_account(expr)
    return pl.when(_blank(cleaned)).then(None).otherwise(cleaned)


def with_customer(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Rows in the raw schema, with `customer_id` (null) if they were built without one."""
    return rows if "customer_id" in rows.collect_schema() else rows.with_columns(
        pl.lit(None, pl.String).alias("customer_id"))


def classify_rows(rows: pl.LazyFrame, ref: Reference | Codebook) -> pl.LazyFrame:
    """Each row with its cleaned `account_key` and `customer_key`, resolved `geo_code`, `province_code`,
    `industry_code` and `metric_code` (text), and `reason` (null = good): the row-by-row definition of the rules."""
    classified = _classify(with_customer(rows).with_columns(clean_account(pl.col("account_id")).alias("account_key"),
                                             customer_key(pl.col("customer_id")).alias("customer_key")),
                           codebook(ref), pl.col("account_key"))
    return classified.with_columns(pl.col("geo_code", "province_code", "metric_code", "reason").cast(pl.String),
                                   pl.col("industry_code").cast(pl.String).fill_null("other"))


def aggregate_account_usage(classified: pl.LazyFrame) -> pl.LazyFrame:
    """Good rows summed per metric x city-level geo x industry x account, with how many raw rows each holds."""
    return (classified.filter(pl.col("reason").is_null())
            .group_by(pl.col("metric_code").alias("metric"), "geo_code", "province_code",
                      pl.col("industry_code").alias("industry"), pl.col("account_key").alias("account_id"),
                      pl.col("customer_key").alias("customer_id"))
            .agg(pl.col("amount").cast(EXACT).sum(), pl.len().cast(pl.UInt32).alias("rows")))


def _records(frame: pl.LazyFrame | pl.DataFrame):
    """Quarantine records: the values as read (text), where they came from, the reason."""
    read_date = pl.coalesce(pl.col("usage_date_raw"), pl.col("usage_date").dt.to_string("%Y-%m-%d"))
    return frame.select(quarter_label(pl.col("usage_date")).alias("quarter"), pl.col("source_file").cast(pl.String),
                        "source_row", pl.col("reason").cast(pl.String), read_date.alias("usage_date"), "account_id",
                        "region_code", "industry", "product", "metric",
                        pl.coalesce(pl.col("amount_raw"), pl.col("amount").cast(pl.String)).alias("amount"))


def select_quarantine(classified: pl.LazyFrame) -> pl.LazyFrame:
    """Bad rows with their values as read (text), where they came from, and their reason."""
    return _records(classified.filter(pl.col("reason").is_not_null()))


def usage_and_quarantine(rows: pl.LazyFrame, ref: Reference | Codebook) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`aggregate_account_usage` and `select_quarantine` of the rows, reading them once in the common case.

    One streaming pass sums every row per account and cell; bad rows land in cells of their own (keyed by
    reason). The cell is one integer packing metric, geo, industry and reason, as hashing it beside the account id
    is cheaper than hashing four enum columns. Account ids are cleaned after summing, once per group instead of
    once per row: ids that differ only by spaces at their ends are merged then. Only if some rows were bad, or
    some ids are nothing but spaces, are the rows of those accounts (few) read again and classified row by row,
    which lists each bad row with its own record, in input order (files in path order, then row).
    """
    book = codebook(ref)
    rows = with_customer(rows)
    groups = (book.with_cells(rows)
              .group_by("_cell", "account_id", "customer_id")
              .agg(pl.col("amount").cast(EXACT, strict=False).sum(), pl.len().cast(pl.UInt32).alias("rows"))
              .collect(engine="streaming"))
    groups = book.decode_cells(groups).with_columns(clean_account(pl.col("account_id")).alias("_clean"),
                                                    customer_key(pl.col("customer_id")).alias("customer_id"))
    bad = pl.col("reason").is_not_null()
    suspects = groups.filter(bad | _blank(pl.col("_clean")))
    usage = groups.filter(~bad & ~_blank(pl.col("_clean")))
    quarantine = pl.DataFrame(schema={c: pl.Int64 if c == "source_row" else pl.String for c in QUARANTINE_COLUMNS})
    if suspects.height:
        ids = suspects["account_id"].drop_nulls().unique().implode()
        # read once, then classified in memory: classifying reads its input once per spelling column
        again = rows.filter(pl.col("account_id").is_in(ids) | _blank(pl.col("account_id"))).collect()
        # source_file is an enum in path order (read_raw), so this is input order
        quarantine = _records(classify_rows(again.lazy(), book).filter(pl.col("reason").is_not_null())
                              .sort("source_file", "source_row")).collect()
    if (usage["_clean"] != usage["account_id"]).any() or usage["customer_id"].is_not_null().any():
        usage = (usage.with_columns(pl.col("_clean").alias("account_id"))
                 .group_by("metric", "geo_code", "province_code", "industry", "account_id", "customer_id")
                 .agg(pl.col("amount").sum(), pl.col("rows").sum()))
    return usage.select(list(ACCOUNT_USAGE_SCHEMA)), quarantine


def validate_quarter(inventory: pl.DataFrame, quarter: str, ref: Reference | Codebook
                     ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One quarter of the release's raw files: its good rows summed per account and cell, and its bad rows with one
    reason each (`usage_and_quarantine`); a page that cannot be decoded is an InputError naming file and column."""
    with unreadable_named(inventory, [quarter]):
        return usage_and_quarantine(read_raw(inventory, [quarter]), ref)
