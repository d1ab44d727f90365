"""`python -m helpers.tabular ...`: see helpers.tabular.cli."""
import sys

from helpers.tabular.cli import main

sys.exit(main())
