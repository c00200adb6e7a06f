"""The code location loads; every asset has a described check and a code version; one partitions definition;
transforms stay dagster-free."""
import subprocess
import sys

from assets.support.partitions import PARTITIONED_ASSETS, quarterly_partitions
from pipelines.definitions import ALL_ASSETS, STAGES, defs


def _specs():
    return [spec for assets_def in ALL_ASSETS for spec in assets_def.specs]


def test_definitions_load():
    repo = defs.get_repository_def()
    assert repo.asset_graph.get_all_asset_keys()


def test_every_asset_has_a_check():
    checked = {key.asset_key for assets_def in ALL_ASSETS for key in assets_def.check_keys}
    unchecked = [spec.key.to_user_string() for spec in _specs() if spec.key not in checked]
    assert not unchecked


def test_one_partitions_definition():
    found = {id(spec.partitions_def) for spec in _specs() if spec.partitions_def is not None}
    assert found == {id(quarterly_partitions)}


def test_groups_are_stage_names_in_flow_order():
    stages = [m.__name__.rsplit(".", 1)[-1] for m in STAGES]
    groups = {spec.group_name for spec in _specs()}
    assert groups <= set(stages)
    assert stages.index("ingest") < stages.index("validate") < stages.index("cube") < stages.index("publish")


def test_every_asset_has_a_description_and_a_code_version():
    assert all(spec.description for spec in _specs())
    assert all(spec.code_version for spec in _specs())


def test_every_check_has_a_description():
    checks = [spec for assets_def in ALL_ASSETS for spec in assets_def.check_specs]
    assert checks and all(spec.description for spec in checks), [s.name for s in checks if not s.description]


def test_the_partitioned_assets_are_those_stamped_per_quarter():
    partitioned = {spec.key.to_user_string() for spec in _specs() if spec.partitions_def is not None}
    assert partitioned == set(PARTITIONED_ASSETS)


def test_the_jobs_are_the_release_and_its_rebase():
    repo = defs.get_repository_def()
    assert {job.name for job in repo.get_all_jobs()} >= {"quarterly_release", "rebase_release"}


def test_transforms_do_not_import_dagster(tmp_path):
    # a script file, not `python -c`: pyspark, when installed, exits 0 in a __main__ without __file__
    script = tmp_path / "probe.py"
    script.write_text("import sys, importlib, pkgutil, assets.transforms as t\n"
                      "found = [m.name for m in pkgutil.walk_packages(t.__path__, 'assets.transforms.')]\n"
                      "for name in found:\n"
                      "    importlib.import_module(name)\n"
                      "assert 'dagster' not in sys.modules, 'a transform imports dagster'\n"
                      "assert 'assets.transforms.ingest.read' in found\n"
                      "print('probed', len(found))\n")
    out = subprocess.run([sys.executable, str(script)], check=True, capture_output=True, text=True).stdout
    assert out.startswith("probed")


def test_loading_the_code_location_leaves_great_expectations_to_the_runs(tmp_path):
    """The UI's code server loads the definitions often; GX (about 2 s) is imported by a run's validator process."""
    script = tmp_path / "probe.py"
    script.write_text("import sys, pipelines.definitions\n"
                      "print('great_expectations' in sys.modules)\n")
    out = subprocess.run([sys.executable, str(script)], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"


def test_cli_help_explains_every_option():
    out = subprocess.run([sys.executable, "-m", "pipelines", "run", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for option in ("--raw", "--out", "--base", "--products"):
        assert option in out
    out = subprocess.run([sys.executable, "-m", "pipelines", "demo-data", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "--rows" in out and "--out" in out
