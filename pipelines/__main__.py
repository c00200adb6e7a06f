import sys
import time

started = time.perf_counter()
from pipelines.cli import main, preload  # noqa: E402

if sys.argv[1:2] in (["run"], ["rebase"]):
    preload()
sys.exit(main(started=started))
