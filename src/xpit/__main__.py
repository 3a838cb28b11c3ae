"""``python -m xpit``: the same as the ``xpit`` console command."""

from xpit.cli import main

raise SystemExit(main())
