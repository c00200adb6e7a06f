import sys

from pipelines.cli import main

sys.exit(main(exits_after=True))
