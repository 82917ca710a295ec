"""`python tests/tiny_cli.py ARGS...`: the command line with the toy-cardiac presets made tiny.

For tests that need a real process (signals, locks): the same `tutorial_lib.cli.main`, with the
toy-cardiac presets shrunk to the tiny runs of tests/tiny_runs.py (`TINY_EPOCHS` epochs, default 2).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from tiny_runs import tiny_config  # noqa: E402

from tutorial_lib import presets  # noqa: E402
from tutorial_lib.cli import main  # noqa: E402

if __name__ == "__main__":
    epochs = int(os.environ.get("TINY_EPOCHS", "2"))
    for method in ("ce", "descriptors"):
        name = f"toy-cardiac-{method}"
        presets.PRESETS[name] = dataclasses.replace(tiny_config(method), name=name, epochs=epochs)
        presets.FAST_OVERRIDES[name] = {"epochs": epochs}
    raise SystemExit(main(sys.argv[1:]))
