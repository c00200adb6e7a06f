"""Settings: one resource, read when a run starts; defaults run the demo."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field, PrivateAttr

from assets.transforms.reference import Reference, load_reference


class Settings(dg.ConfigurableResource):
    """Where the raw input and the release live, and the method's choices."""

    release_dir: str = Field(description="Release directory: published files at its top, working state in state/")
    raw_path: str = Field(default="", description="Raw usage: a Parquet or CSV file, or a directory of them")
    base_period: str = Field(default="", pattern=r"^(\d{4}Q[1-4])?$",
                             description="Base quarter such as 2020Q1; empty = the earliest in the data")
    products_path: str = Field(default="", description="Product catalogue CSV; empty = seeds/products.csv")
    seeds_dir: str = Field(default="", description="Reference data folder; empty = the project's seeds/")
    tier_scheme: Literal["five", "six"] = Field(default="five", description="'five' (新一线 folded into 二线, as the "
                                                                      "source) or 'six' (CBN)")
    tier_vintage: str = Field(default="", description="city_tiers.csv vintage; empty = the default one")
    allow_empty_quarters: bool = Field(default=False, description="Publish zeros for a quarter with no rows inside the range")
    sample_rows: int = Field(default=10_000, description="Rows sampled per quarter for the row-level GX suites")
    engine: Literal["polars", "spark"] = Field(default="polars", description="Row-level engine of account_usage and usage_cube: 'polars' "
                                                      "(streaming, this machine) or 'spark' (PySpark; spark.master "
                                                      "from Spark's own configuration, default local[*])")
    revision_reason: str = Field(default="late data", description="Reason logged in revisions.parquet for values "
                                                                  "this run changes ('late data', 'rebase', ...)")
    privacy_k: int = Field(default=5, description="Suppress a cell below national level with usage and fewer "
                                                "than this many active accounts")
    privacy_dominance_percent: float = Field(default=85.0, description="Suppress a cell whose largest account "
                                                                      "holds more than this percent of it")

    _reference: Reference | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # a run's GX suites go to the validator process: started now, it loads GX while the first stages work
        from expectations import validator

        validator.start()

    def reference(self) -> Reference:
        if self._reference is None:
            self._reference = load_reference(self.seeds_dir or None, self.products_path or None, self.tier_scheme,
                                             self.tier_vintage or None)
        return self._reference

    @property
    def release(self) -> Path:
        return Path(self.release_dir)

    @property
    def state(self) -> Path:
        return self.release / "state"
