"""Sub-commands of `python -m tutorial_lib`; each module has `add_arguments` and `run`."""
