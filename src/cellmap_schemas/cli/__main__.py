"""``python -m cellmap_schemas.cli``: the command line, as the console script runs it."""

from cellmap_schemas.cli import main

main()
