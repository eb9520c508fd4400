"""`python -m pipeline` is `vae`."""

import sys

from pipeline.cli import main

sys.exit(main())
