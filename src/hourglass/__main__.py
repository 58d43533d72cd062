"""``python -m hourglass ...`` (and ``torchrun ... -m hourglass ...``): the command line."""

import sys

from .cli import main

sys.exit(main())
