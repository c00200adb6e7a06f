"""A release's settings and rules as data: what every run reads, whatever launched it (CONTRACT.md "Partitions, base
and runs").

- `ReleaseSettings`: written to DIR/state/settings.json when the release is created. Until its first publication
  a run's settings replace them; from then on the method's settings are frozen (a run that contradicts one stops
  before it writes anything, naming the setting), the base changes only through a rebase, and the others may be
  adjusted by a run (kept at its publication).
- Fingerprints: a quarter's outputs are computed from its raw files, the base quarter's files, the base and the
  frozen settings; each stored output carries the fingerprint it was computed from (`assets.support.io`), so a
  quarter whose inputs changed since is `stale`, whatever launched the runs that left it so.
- Publishing: the published files are staged, then swapped in (`swap_in`) under a journal that a later run
  completes (`finish_interrupted_swaps`) if this one was killed halfway.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from assets.transforms.errors import InputError
from assets.transforms.files import write_json_atomic
from assets.transforms.ingest.inventory import data_quarters
from assets.transforms.reference import Reference, load_reference

SETTINGS_FILE = "settings.json"  # under DIR/state
MANIFEST = "manifest.json"  # a release is published once its manifest is at DIR's top
STAMP_INPUTS, STAMP_RUN = b"yunzhi.inputs", b"yunzhi.run_id"  # Parquet key-value metadata of every stored output
STAGING = "staging"  # under DIR/state: one directory per publishing run
JOURNAL = "SWAP.json"  # in a staging directory: the moves of a swap that has begun


@dataclass(frozen=True)
class ReleaseSettings:
    """The settings of a release (defaults: the method as the source publishes it)."""

    raw_path: str = ""  # the release's raw input: what a run that names none reads, what the landing sensor watches
    base_period: str = ""  # "" until the first publication fixes it at the earliest quarter with data
    products_path: str = ""  # "" = seeds/products.csv
    seeds_dir: str = ""  # "" = the project's seeds/
    tier_scheme: str = "five"
    tier_vintage: str = ""  # fixed at creation to the seeds' default vintage
    engine: str = "polars"
    privacy_k: int = 5  # a sensitive cell has fewer contributors (customers) than this
    privacy_p: float = 10.0  # ... or fails the p% rule: total - the two largest < p% of the largest
    privacy_protection_percent: float = 0.0  # q: a sensitive cell's interval reaches q% each way; 0 = p
    allow_empty_quarters: bool = False
    max_quarantine_share: float = 5.0  # percent of a delivery's rows; above it the run stops before publishing
    national_change_factor: float = 3.0  # a national series moving more than x this (or / this) in a quarter: warn
    sample_rows: int = 10_000
    # growth ranks leave out entities whose reference value is below this many index points (a tiny base would top
    # the list): 0.001 = 1/100,000 of the base quarter's national total, below every base in METHOD.md's growth
    # top 10s (the smallest, 克拉玛依's AI in 2020Q1, is about 0.0027)
    growth_rank_min_reference: float = 0.001

    @property
    def protection_percent(self) -> float:
        """q as privacy applies it: privacy_protection_percent, or p where that is 0."""
        return self.privacy_protection_percent or self.privacy_p

    def reference(self) -> Reference:
        """The seeds and products this release is computed with, in its tier scheme and vintage."""
        return load_reference(self.seeds_dir or None, self.products_path or None, self.tier_scheme,
                              self.tier_vintage or None)


FIELDS = tuple(f.name for f in dataclasses.fields(ReleaseSettings))
# Settings of the method: every published value depends on them, so a release keeps them for its whole life.
FROZEN = ("products_path", "seeds_dir", "tier_scheme", "tier_vintage", "engine", "privacy_k", "privacy_p",
          "privacy_protection_percent", "growth_rank_min_reference")
# Settings of earlier versions of the project that a release can no longer be continued under: name -> why.
RETIRED = {"privacy_dominance_percent": "the (1, k%) dominance rule is replaced by the p% rule (privacy_p, default "
                                        "10), so this release's suppression cannot be continued; publish into a new "
                                        "directory"}
# Settings a run may adjust (kept from its publication on); the base changes only through a rebase.
ADJUSTABLE = ("allow_empty_quarters", "max_quarantine_share", "national_change_factor", "sample_rows")
PATHS = ("raw_path", "products_path", "seeds_dir")


@dataclass(frozen=True)
class Release:
    """What a run knows of its release: where it is, its settings, and what this run was asked to do."""

    directory: Path
    settings: ReleaseSettings
    published: bool
    delivery: str  # the raw path this run inventories (its own, or the release's raw_path)
    rebase_to: str = ""  # a rebase run: the new base quarter

    @property
    def state(self) -> Path:
        return self.directory / "state"

    def base(self, inventory: pl.DataFrame | None = None) -> str:
        """The base quarter of this run: the rebase's, the release's, or (first publication) the earliest quarter."""
        if self.rebase_to or self.settings.base_period:
            return self.rebase_to or self.settings.base_period
        return data_quarters(inventory)[0] if inventory is not None else ""

    @property
    def rebases(self) -> bool:
        """Whether this run moves the base (a rebase to the same quarter only takes in its new data)."""
        return bool(self.rebase_to) and self.rebase_to != self.settings.base_period

    def published_settings(self, base: str) -> ReleaseSettings:
        """The settings this run publishes: its own, with the base it computed against."""
        return dataclasses.replace(self.settings, base_period=base)


def settings_path(release_dir: str | Path) -> Path:
    return Path(release_dir) / "state" / SETTINGS_FILE


def is_published(release_dir: str | Path) -> bool:
    """Whether the release has been published (by this project: its manifest and its settings are there)."""
    return (Path(release_dir) / MANIFEST).exists() and settings_path(release_dir).exists()


def read_settings(release_dir: str | Path) -> ReleaseSettings | None:
    path = settings_path(release_dir)
    if not path.exists():
        return None
    stored = json.loads(path.read_text(encoding="utf-8"))
    for name, why in RETIRED.items():
        if name in stored:
            raise InputError(f"{path}: {name} is retired: {why}")
    return ReleaseSettings(**{k: v for k, v in stored.items() if k in FIELDS})


def write_settings(settings: ReleaseSettings, path: str | Path) -> Path:
    return write_json_atomic(dataclasses.asdict(settings), path)


def _normalised(name: str, value):
    if name in PATHS and value:
        return str(Path(value).expanduser().resolve())
    if name in ("privacy_p", "privacy_protection_percent", "max_quarantine_share", "national_change_factor",
                "growth_rank_min_reference"):
        return float(value)
    return value


def default_tier_vintage(seeds_dir: str | Path) -> str:
    """The city-tier list a release uses unless it names one: the earliest vintage (the closest to the source's)."""
    tiers = pl.read_csv(Path(seeds_dir) / "city_tiers.csv", columns=["vintage"], infer_schema=False)
    return min(tiers["vintage"].unique().to_list())


def _contradiction(name: str, ours, theirs, release_dir: Path) -> str:
    if name == "base_period":
        return (f"base_period is {ours} in this release, not {theirs}: to change it run python -m pipelines rebase "
                f"--to {theirs} --out {release_dir} (or launch rebase_release with rebase_to: {theirs})")
    return (f"{name} is {ours!r} in this release, not {theirs!r}: a release keeps its settings "
            f"({settings_path(release_dir)}); publish into a new directory to use {theirs!r}")


def open_release(release_dir: str | Path, given: dict, seeds_default: str | Path, rebase_to: str = "",
                 job: str = "", run_quarters: list[str] | None = None, all_quarters: list[str] | None = None,
                 write: bool = True) -> Release:
    """The release a run works on, with its settings reconciled with the run's (`given`: the settings the run names;
    None or absent = as the release says). Raises InputError (one line naming each setting) if the run contradicts
    the release; else, with `write`, creates or updates the settings of a release not yet published."""
    directory = Path(release_dir).resolve()
    given = {k: _normalised(k, v) for k, v in given.items() if k in FIELDS and v is not None and v != ""}
    stored, published = read_settings(directory), is_published(directory)
    delivery = given.get("raw_path") or (stored.raw_path if stored else "")
    if rebase_to and not published:
        raise InputError(f"{directory}: nothing to rebase: no published release there (run python -m pipelines run "
                         f"--raw PATH --out {directory} --base {rebase_to} first)")
    if job == "rebase_release" and not rebase_to:
        raise InputError(f"{directory}: rebase_release needs rebase_to, the new base quarter (launchpad: "
                         "resources.settings.config.rebase_to)")
    if rebase_to and run_quarters is not None and all_quarters and set(run_quarters) != set(all_quarters):
        raise InputError(f"{directory}: a rebase recomputes every quarter: launch it over all partitions "
                         f"({all_quarters[0]}..{all_quarters[-1]}), not {run_quarters[0]}..{run_quarters[-1]}")
    if stored is not None and published:
        wrong = [_contradiction(k, getattr(stored, k), given[k], directory)
                 for k in ("base_period", *FROZEN) if k in given and given[k] != getattr(stored, k)]
        if wrong:
            raise InputError("; ".join(wrong))
        settings = dataclasses.replace(stored, **{k: given[k] for k in ADJUSTABLE if k in given})
    else:  # a new release, or one not yet published: the run's settings are the release's
        values = {**(dataclasses.asdict(stored) if stored else {}), **given}
        settings = ReleaseSettings(**values)
        if not settings.tier_vintage:
            settings = dataclasses.replace(
                settings, tier_vintage=default_tier_vintage(settings.seeds_dir or seeds_default))
        if settings != stored and write:
            write_settings(settings, settings_path(directory))
    if not delivery:
        raise InputError(f"{directory}: no raw input: name one (--raw PATH, or raw_path in the launchpad)")
    return Release(directory, settings, published, delivery, rebase_to)


# --------------------------------------------------------------------------------------------- fingerprints
def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def method_fingerprint(settings: ReleaseSettings) -> str:
    """The settings every quarter's values depend on (the frozen ones)."""
    return _digest({k: getattr(settings, k) for k in FROZEN})


def quarter_files(inventory: pl.DataFrame) -> dict[str, list[str]]:
    """Each quarter's ingested files, by content hash (sorted)."""
    rows = (inventory.filter(pl.col("status") == "ingested").select("sha256", "quarters").explode("quarters")
            .drop_nulls("quarters").group_by("quarters").agg(pl.col("sha256").unique().sort()))
    return dict(zip(rows["quarters"], (list(h) for h in rows["sha256"])))


def quarter_fingerprints(inventory: pl.DataFrame, settings: ReleaseSettings, base: str) -> dict[str, str]:
    """Per quarter of the data: what its outputs are computed from (its files, the base quarter's files, the base
    and the method's settings), as one digest."""
    files, method = quarter_files(inventory), method_fingerprint(settings)
    return {q: _digest(method, base, files.get(base, []), files.get(q, [])) for q in data_quarters(inventory)}


def read_stamps(path: str | Path) -> dict[str, str]:
    """What a stored output was computed from: its inputs' fingerprint (partitioned outputs) and its run id."""
    try:
        metadata = pq.read_metadata(path).metadata or {}
    except (OSError, ValueError):
        return {}
    return {key.decode(): value.decode() for key, value in metadata.items() if key.startswith(b"yunzhi.")}


def stale_quarters(state: Path, assets: tuple[str, ...], expected: dict[str, str]) -> list[str]:
    """The quarters any of whose stored outputs (`assets`, partitioned) were not computed from the `expected`
    fingerprints, or are missing."""
    stale = []
    for quarter, fingerprint in sorted(expected.items()):
        for asset in assets:
            if read_stamps(state / "assets" / asset / f"{quarter}.parquet").get(STAMP_INPUTS.decode()) != fingerprint:
                stale.append(quarter)
                break
    return stale


def unpublished_quarters(release_dir: str | Path, expected: dict[str, str]) -> list[str]:
    """The quarters whose published values were not computed from the `expected` fingerprints (a run that computed
    them was stopped before it published), by the published manifest."""
    manifest = Path(release_dir) / MANIFEST
    published = json.loads(manifest.read_text(encoding="utf-8")).get("quarter_inputs", {}) if manifest.exists() else {}
    return sorted(q for q, fingerprint in expected.items() if published.get(q) != fingerprint)


def outdated_outputs(state: Path, assets: tuple[str, ...], run_id: str) -> list[str]:
    """Of the unpartitioned `assets`, those whose stored output another run wrote (or none did)."""
    return [a for a in assets if read_stamps(state / "assets" / f"{a}.parquet").get(STAMP_RUN.decode()) != run_id]


def new_quarters(previous: pl.DataFrame | None, inventory: pl.DataFrame) -> list[str]:
    """Quarters that files new to the release (or overwritten in place) add rows to, or take rows from."""
    if previous is None:
        return data_quarters(inventory)
    known = set(previous.filter(pl.col("status") == "ingested")["sha256"])
    fresh = inventory.filter((pl.col("status") == "ingested") & ~pl.col("sha256").is_in(list(known)))
    gone = inventory.filter(pl.col("status") == "replaced").join(
        previous.filter(pl.col("status") == "ingested"), on=["path", "sha256"], how="semi")
    return sorted(set(fresh["quarters"].explode().drop_nulls()) | set(gone["quarters"].explode().drop_nulls()))


def check_delivery(release: Release, previous: pl.DataFrame | None, inventory: pl.DataFrame) -> list[str]:
    """The release's quarters after this delivery; an InputError (one line) for an empty quarter inside them (unless
    allowed), a base quarter without rows, or new data for a frozen base quarter outside a rebase."""
    quarters = data_quarters(inventory)
    with_rows = set(inventory.filter(pl.col("status") == "ingested")["quarters"].explode().drop_nulls())
    empty = [q for q in quarters if q not in with_rows]
    if empty and not release.settings.allow_empty_quarters:
        raise InputError(f"{release.delivery}: no rows in quarter {empty[0]} inside {quarters[0]}..{quarters[-1]} "
                         "(column 'usage_date'; --allow-empty-quarters publishes zeros)")
    base = release.base(inventory)
    if base not in with_rows:
        raise InputError(f"{release.delivery}: no rows in the base quarter {base} (column 'usage_date')")
    if release.published and not release.rebase_to and base in new_quarters(previous, inventory):
        raise InputError(f"{release.delivery}: new data for the base quarter {base}; the base is frozen, so "
                         f"recompute every period with: python -m pipelines rebase --to {base} --out "
                         f"{release.directory}")
    return quarters


# --------------------------------------------------------------------------------------------- publishing
def staging_dir(state: Path, run_id: str) -> Path:
    return state / STAGING / run_id


def swap_in(staging: Path, release_dir: Path, moves: list[tuple[str, str]], removals: list[str] = ()) -> None:
    """Move the staged files (`moves`: staged name -> path under the release) into place and remove `removals`
    (paths under the release that this publication leaves out, such as a report it did not draw). The journal is
    written first, so a swap that a kill interrupts is completed by the next run (`finish_interrupted_swaps`)."""
    write_json_atomic({"moves": moves, "removals": list(removals)}, staging / JOURNAL)
    _apply(staging, release_dir, moves, removals)


def _apply(staging: Path, release_dir: Path, moves: list, removals: list) -> None:
    for name, target in moves:
        source, destination = staging / name, release_dir / target
        if not source.exists():  # moved already: a swap being completed
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir() and destination.exists():  # a directory is swapped in two renames; the journal covers it
            os.replace(destination, staging / f".replaced-{name}")
        os.replace(source, destination)
    for target in removals:
        path = release_dir / target
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    shutil.rmtree(staging, ignore_errors=True)


def finish_interrupted_swaps(state: Path, release_dir: Path) -> list[str]:
    """Complete any swap a killed run began (its journal is there); drop staging a run left before swapping."""
    finished = []
    root = state / STAGING
    for staging in sorted(root.iterdir()) if root.exists() else []:
        journal = staging / JOURNAL
        if journal.exists():
            swap = json.loads(journal.read_text(encoding="utf-8"))
            _apply(staging, release_dir, swap["moves"], swap["removals"])
            finished.append(staging.name)
        else:
            shutil.rmtree(staging, ignore_errors=True)
    return finished
