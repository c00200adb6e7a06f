"""Spark engine: the row-level stages (raw rows -> account usage + quarantine, account usage -> usage cube) in
PySpark, for data beyond one machine. The small, per-cell index arithmetic stays in polars.

    spark = session()                                   # local[*] unless spark.master is configured
    usage, quarantine = account_usage(spark, inventory, "2020Q1", ref, scratch)   # LazyFrames over Spark's Parquet
    cube = build_cube(spark, [path_of_account_usage_parquet, ...], ref)           # a small polars DataFrame

The rules are `assets.transforms.ingest` / `validate` / `cube`'s, written in Spark SQL functions; the results
equal the polars engine's (amounts summed as DECIMAL(38,9), so exactly). Where Spark differs from polars it is in
text clean-up of exotic input: codes are trimmed, Unicode format characters removed and full-width ASCII folded
(NFKC's effect on codes), not full NFKC; text dates use Spark's ISO parser.

The cluster is whatever `spark.master` says: `spark-defaults.conf` (SPARK_CONF_DIR), `PYSPARK_SUBMIT_ARGS`, or
`SPARK_MASTER` in the environment; nothing set means `local[*]`. Raw files and the scratch directory must then be
on storage every executor reads (a shared file system, or an object store URL Spark is configured for).
No dagster import.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import polars as pl

from assets.transforms.cube import CUBE_SCHEMA, geo_membership
from assets.transforms.ingest.read import CST, END_DATE, FIRST_DATE, file_format
from assets.transforms.reference import Reference
from assets.transforms.validate import ACCOUNT_USAGE_SCHEMA, MAX_AMOUNT, QUARANTINE_COLUMNS

DECIMAL = "decimal(38,9)"
_FULL_WIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
_ASCII = "".join(chr(c) for c in range(0x21, 0x7F)) + " "


def session(master: str | None = None, app: str = "yunzhi"):
    """The Spark session: `master` or SPARK_MASTER if given, else Spark's own configuration (default local[*])."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app)
    master = master or os.environ.get("SPARK_MASTER")
    if master:
        builder = builder.master(master)
    builder = (builder.config("spark.sql.session.timeZone", CST)
               .config("spark.sql.ansi.enabled", "false")  # invalid text -> null, as polars' strict=False
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.parquet.datetimeRebaseModeInRead", "CORRECTED")
               .config("spark.sql.parquet.int96RebaseModeInRead", "CORRECTED"))
    if not os.environ.get("PYSPARK_SUBMIT_ARGS") and not master and not os.environ.get("SPARK_CONF_DIR"):
        builder = (builder.master("local[*]").config("spark.ui.enabled", "false")
                   .config("spark.sql.shuffle.partitions", str(max(4, 2 * (os.cpu_count() or 2))))
                   .config("spark.driver.memory", os.environ.get("YUNZHI_SPARK_DRIVER_MEMORY", "2g")))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _clean_code(c):
    from pyspark.sql import functions as F

    return F.trim(F.regexp_replace(F.translate(c, _FULL_WIDTH, _ASCII), r"\p{Cf}+", ""))


def _clean_account(c):
    from pyspark.sql import functions as F

    return F.regexp_replace(c, r"^[\s\p{Cf}]+|[\s\p{Cf}]+$", "")


def _read_file(spark, path: str, source_file: str):
    """One raw file in the uniform raw schema (as `ingest.normalise_file`), with its 1-based source_row."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if file_format(Path(path)) == "csv":
        df = (spark.read.option("header", True).option("inferSchema", False).option("mode", "PERMISSIVE")
              .option("encoding", "UTF-8").csv(path))
        df = df.toDF(*[c.lstrip("\ufeff").strip() for c in df.columns])
        indexed = df.rdd.zipWithIndex().map(lambda r: (*r[0], r[1] + 1))
        df = spark.createDataFrame(indexed, T.StructType([*df.schema.fields, T.StructField("source_row", T.LongType())]))
    else:
        df = (spark.read.parquet(path)
              .withColumn("source_row", F.col("_metadata.row_index") + F.lit(1)))
    types = dict(df.dtypes)

    def text(name):
        if name not in types:
            return F.lit(None).cast("string")
        if types[name] == "date":
            return F.date_format(F.col(name), "yyyy-MM-dd")
        return F.col(name).cast("string")

    kind = types["usage_date"]
    if kind == "date":
        date = F.col("usage_date")
    elif kind.startswith("timestamp"):
        date = F.to_date(F.col("usage_date"))  # instants in the session zone (China Standard Time)
    else:
        raw = F.trim(F.col("usage_date").cast("string"))
        zulu = F.regexp_replace(raw, "[Zz]$", "+00:00")
        date = F.when(F.length(raw) == 10, F.to_date(raw, "yyyy-MM-dd")).otherwise(
            F.when(raw.rlike(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}"), F.to_date(zulu.cast("timestamp"))))
    date = F.when((date >= F.lit(FIRST_DATE)) & (date < F.lit(END_DATE)), date)
    numeric = types["amount"] in ("double", "float", "int", "bigint", "smallint", "tinyint") or \
        types["amount"].startswith("decimal")
    amount_text = F.trim(text("amount"))
    return df.select(
        date.alias("usage_date"), text("usage_date").alias("usage_date_raw"),
        *(F.trim(text(c)).alias(c) for c in ("account_id", "region_code", "industry", "product", "metric")),
        (F.col("amount").cast("double") if numeric else amount_text.cast("double")).alias("amount"),
        (F.lit(None).cast("string") if numeric else amount_text).alias("amount_raw"),
        F.lit(source_file).alias("source_file"), F.col("source_row").cast("long"),
        text("customer_id").alias("customer_id"))


def read_raw(spark, inventory: pl.DataFrame, quarters: list[str]):
    """All ingested files holding any of `quarters` (pruned by the inventory), restricted to their rows, with
    the row's `quarter`."""
    from functools import reduce

    from pyspark.sql import functions as F

    frames = [_read_file(spark, e["path"], e["source_file"])
              for e in inventory.filter(pl.col("status") == "ingested").iter_rows(named=True)
              if set(quarters) & set(e["quarters"] or [])]
    if not frames:
        return None
    rows = reduce(lambda a, b: a.unionByName(b), frames)
    label = F.concat(F.year("usage_date").cast("string"), F.lit("Q"), F.quarter("usage_date").cast("string"))
    return rows.withColumn("quarter", label).where(F.col("quarter").isin(list(quarters)))


_LOOKUPS: dict = {}


def _lookup(spark, frame: pl.DataFrame, name: str = ""):
    from pyspark.sql import functions as F

    key = (id(spark), name, frame.height, tuple(frame.columns)) if name else None
    if key is None or key not in _LOOKUPS:
        df = F.broadcast(spark.createDataFrame(frame.to_arrow()))
        if key is None:
            return df
        _LOOKUPS[key] = df
    return _LOOKUPS[key]


def classify(spark, rows, ref: Reference):
    """`validate.classify_rows` in Spark: resolved codes and the first reason that applies (null = good)."""
    from pyspark.sql import functions as F

    regions = _lookup(spark, ref.region_lookup().rename({"code": "region_key"}), "regions")
    industries = _lookup(spark, ref.industry_lookup().rename({"spelling": "industry_key", "code": "industry_code"}),
                         "industries")
    products = _lookup(spark, ref.product_lookup().rename({"product": "product_key"}), "products")
    resolved = (rows
                .withColumn("region_key", F.regexp_replace(_clean_code(F.col("region_code")), r"\.0+$", ""))
                .withColumn("industry_key", F.lower(_clean_code(F.col("industry"))))
                .withColumn("product_key", F.lower(_clean_code(F.col("product"))))
                .withColumn("metric_key", F.lower(_clean_code(F.col("metric"))))
                .withColumn("account_key", _clean_account(F.col("account_id")))
                .withColumn("customer_key", _clean_account(F.col("customer_id")))
                .withColumn("customer_key", F.when(F.col("customer_key") != "", F.col("customer_key")))
                .join(regions, "region_key", "left").join(industries, "industry_key", "left")
                .join(products, "product_key", "left"))

    def blank(c):
        return c.isNull() | (c == "")

    metric = F.col("metric_key")
    has_metric = ~blank(metric)
    amount = F.col("amount")
    reason = (F.when(F.col("usage_date").isNull(), "invalid_date")
              .when(blank(F.col("account_key")), "missing_account")
              .when(blank(F.col("region_key")), "missing_region")
              .when(F.col("geo_code").isNull(), "unknown_region")
              .when(~blank(F.col("industry_key")) & F.col("industry_code").isNull(), "unknown_industry")
              .when(has_metric & ~metric.isin("cloud", "ai"), "invalid_metric")
              .when(~has_metric & F.col("product_metric").isNull(), "unknown_product")
              .when(has_metric & F.col("product_metric").isNotNull() & (F.col("product_metric") != metric),
                    "metric_conflict")
              .when(amount.isNull() | F.isnan(amount) | (F.abs(amount) == float("inf")) | (amount < 0)
                    | (amount > MAX_AMOUNT), "invalid_amount"))
    return resolved.select(
        "*", reason.alias("reason"),
        F.coalesce(F.col("industry_code"), F.lit("other")).alias("industry_code_"),
        F.when(has_metric, metric).otherwise(F.col("product_metric")).alias("metric_code"),
    ).drop("industry_code").withColumnRenamed("industry_code_", "industry_code")


def _scratch(base: str | Path) -> str:
    path = Path(base) / f"spark-{uuid.uuid4().hex[:12]}"
    return str(path)


def account_usage(spark, inventory: pl.DataFrame, quarters: list[str], ref: Reference,
                  scratch: str | Path) -> dict[str, tuple[pl.LazyFrame, pl.LazyFrame]]:
    """Each quarter's account usage and quarantine, computed by Spark from the raw files (one job for them all).

    Both are written by Spark as Parquet under `scratch` (partitioned by quarter) and returned as polars
    LazyFrames over those files, in the polars engine's schemas: {quarter: (usage, quarantine)}.
    """
    from pyspark.sql import functions as F

    quarantine_schema = {c: (pl.Int64 if c == "source_row" else pl.String) for c in QUARANTINE_COLUMNS}
    rows = read_raw(spark, inventory, quarters)
    if rows is None:
        return {q: (pl.LazyFrame(schema=ACCOUNT_USAGE_SCHEMA), pl.LazyFrame(schema=quarantine_schema))
                for q in quarters}
    classified = classify(spark, rows, ref).persist()
    out = _scratch(scratch)
    try:
        (classified.where(F.col("reason").isNull())
         .groupBy("quarter", F.col("metric_code").alias("metric"), "geo_code", "province_code",
                  F.col("industry_code").alias("industry"), F.col("account_key").alias("account_id"),
                  F.col("customer_key").alias("customer_id"))
         .agg(F.sum(F.col("amount").cast(DECIMAL)).cast(DECIMAL).alias("amount"), F.count(F.lit(1)).alias("rows"))
         .repartition("quarter").write.partitionBy("quarter").mode("overwrite").parquet(f"{out}/usage"))
        (classified.where(F.col("reason").isNotNull())
         .select("quarter", "source_file", "source_row", "reason",
                 F.col("usage_date_raw").alias("usage_date"), "account_id", "region_code", "industry", "product",
                 "metric", F.coalesce(F.col("amount_raw"), F.col("amount").cast("string")).alias("amount"))
         .withColumn("quarter_", F.col("quarter"))
         .repartition("quarter_").write.partitionBy("quarter_").mode("overwrite").parquet(f"{out}/quarantine"))
    finally:
        classified.unpersist()
    result = {}
    for q in quarters:
        files = list(Path(out, "usage", f"quarter={q}").glob("*.parquet"))
        usage = (pl.scan_parquet(files, hive_partitioning=False)
                 .cast(ACCOUNT_USAGE_SCHEMA).select(list(ACCOUNT_USAGE_SCHEMA))
                 if files else pl.LazyFrame(schema=ACCOUNT_USAGE_SCHEMA))
        bad = list(Path(out, "quarantine", f"quarter_={q}").glob("*.parquet"))
        quarantine = (pl.scan_parquet(bad, hive_partitioning=False).with_columns(pl.col("source_row").cast(pl.Int64))
                      .select(list(QUARANTINE_COLUMNS)).sort("source_file", "source_row")
                      if bad else pl.LazyFrame(schema=quarantine_schema))
        result[q] = (usage, quarantine)
    return result


def build_cubes(spark, usage_paths: dict[str, list[str | Path]], ref: Reference) -> dict[str, pl.DataFrame]:
    """`cube.build_cube` in Spark for several periods at once, each over its account-usage Parquet files (a year
    over its four quarters' files): {period: the period's (small) cube, back in polars}."""
    from functools import reduce

    from pyspark.sql import Window
    from pyspark.sql import functions as F

    members = _lookup(spark, geo_membership(ref), "members")
    frames = [spark.read.parquet(*[str(p) for p in paths])
              .select(F.lit(period).alias("period"), "metric", "geo_code", "industry", "account_id",
                      # the contributor: the customer, or the account itself (prefixes keep the two apart)
                      F.when(F.col("customer_id").isNull(), F.concat(F.lit("a:"), F.col("account_id")))
                      .otherwise(F.concat(F.lit("c:"), F.col("customer_id"))).alias("contributor"),
                      F.col("amount").cast(DECIMAL).alias("amount"))
              for period, paths in usage_paths.items() if paths]
    cubes = {period: pl.DataFrame(schema=CUBE_SCHEMA) for period in usage_paths}
    if not frames:
        return cubes
    per_account = reduce(lambda a, b: a.unionByName(b), frames).join(members, "geo_code")
    both = per_account.unionByName(per_account.withColumn("industry", F.lit("all")))
    cells = ["period", "metric", "geo_level", "entity", "industry"]
    accounts = (both.groupBy(*cells, "account_id").agg(F.sum("amount").cast(DECIMAL).alias("amount"))
                .groupBy(*cells)
                .agg(F.sum("amount").cast(DECIMAL).alias("amount"),
                     F.count(F.when(F.col("amount") > 0, 1)).alias("accounts")))
    by_size = Window.partitionBy(*cells).orderBy(F.col("amount").desc())
    contributors = (both.groupBy(*cells, "contributor").agg(F.sum("amount").cast(DECIMAL).alias("amount"))
                    .withColumn("n", F.row_number().over(by_size))
                    .groupBy(*cells)
                    .agg(F.count(F.when(F.col("amount") > 0, 1)).alias("contributors"),
                         F.max(F.when(F.col("n") == 1, F.col("amount"))).alias("top_contributor_amount"),
                         F.coalesce(F.max(F.when(F.col("n") == 2, F.col("amount"))), F.lit(0).cast(DECIMAL))
                         .alias("second_contributor_amount")))
    cube = accounts.join(contributors, cells).withColumnRenamed("entity", "geo_code")
    table = pl.from_arrow(cube.toArrow())
    for (period,), frame in table.partition_by("period", as_dict=True).items():
        cubes[period] = (frame.cast({c: pl.Decimal(38, 9) for c in ("amount", "top_contributor_amount",
                                                                    "second_contributor_amount")})
                         .cast(CUBE_SCHEMA).select(list(CUBE_SCHEMA))
                         .sort("metric", "geo_level", "geo_code", "industry"))
    return cubes


def build_cube(spark, usage_paths: list[str | Path], ref: Reference) -> pl.DataFrame:
    """`cube.build_cube` in Spark over account-usage Parquet files: the (small) cube comes back to polars."""
    return build_cubes(spark, {"_": list(usage_paths)}, ref)["_"]


def clear_scratch(scratch: str | Path) -> None:
    shutil.rmtree(scratch, ignore_errors=True)
