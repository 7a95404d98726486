"""``python -m streamcolor`` is the ``streamcolor`` command."""

import sys

from streamcolor.cli import main

sys.exit(main())
