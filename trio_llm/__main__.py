"""``python -m trio_llm`` runs the ``trio-llm`` command."""

import sys

from ._cli import main

sys.exit(main())
