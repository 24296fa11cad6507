"""``python3 -m pynetlink.cni``: the plugin (``--install DIR``: its installer)."""
import sys

from .dispatch import main

sys.exit(main())
