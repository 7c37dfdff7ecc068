"""``python -m rnnkit.cli ...`` (what torchrun launches)."""

from rnnkit.cli import main

raise SystemExit(main())
