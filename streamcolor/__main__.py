"""``python -m streamcolor`` is the ``streamcolor`` command."""

import sys

from .cli import main

sys.exit(main())
