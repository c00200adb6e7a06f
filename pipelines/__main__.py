import sys

from pipelines.cli import main, preload

if sys.argv[1:2] in (["run"], ["rebase"]):
    preload()
sys.exit(main())
