import sys

from pipelines.bench.cli import main

sys.exit(main())
