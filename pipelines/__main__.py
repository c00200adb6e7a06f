import sys

from expectations import validator

if sys.argv[1:2] in (["run"], ["rebase"]):
    validator.start()  # GX loads on the other core while Dagster is imported; the run's first suite needs it

from pipelines.cli import main  # noqa: E402

sys.exit(main(exits_after=True))
