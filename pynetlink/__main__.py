"""``python -m pynetlink``: the ``pynetlink`` command."""
import sys

from .cli import main

sys.exit(main())
