"""`python -m helpers.tabular ...`: see helpers.tabular.cli."""
import sys

from .cli import main

sys.exit(main())
