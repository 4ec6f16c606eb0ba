"""``python -m checkpoint_zoo.cli``: the ``zoo`` command (git's merge drivers are configured to run it so)."""

import sys

from .main import main

sys.exit(main())
