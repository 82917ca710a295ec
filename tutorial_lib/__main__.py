"""`python -m tutorial_lib ...`: see tutorial_lib.cli."""

from tutorial_lib.cli import main

raise SystemExit(main())
