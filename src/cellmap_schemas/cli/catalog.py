"""``cellmap-schemas models`` and ``cellmap-schemas rules``: what the tool knows."""

from __future__ import annotations

from typing import Annotated

from cyclopts import Parameter

from cellmap_schemas.cli._common import EXIT_OK, print_json, write_stdout

__all__ = ["models", "rules"]

AsJson = Annotated[bool, Parameter(name="--json", negative=())]


def models(*, as_json: AsJson = False) -> int:
    """List the models `check` and `scan` know, with what each describes.

    A node is judged by every model whose markers (attribute paths) it
    carries; --json lists them.

    For example:
      cellmap-schemas models
      cellmap-schemas models --json | jq -r '.[] | select(.kind == "group") | .name'

    Exit status: 0.

    Parameters
    ----------
    as_json: bool
        Print a JSON list of {name, kind, description, markers} objects instead of a table.
    """
    from cellmap_schemas.registry import MODELS

    if as_json:
        import msgspec

        print_json(msgspec.json.encode([vars(info) for info in MODELS.values()]))
        return EXIT_OK
    width = max(len(name) for name in MODELS)
    write_stdout(
        "".join(
            f"{name:<{width}}  {info.kind:<5}  {info.description}\n"
            for name, info in MODELS.items()
        )
    )
    return EXIT_OK


def rules(
    *,
    as_json: AsJson = False,
    markdown: Annotated[bool, Parameter(name="--markdown", negative=())] = False,
) -> int:
    """List every rule a verdict can cite: ID, severity, summary and source.

    Errors (MUST) make a node invalid; warnings (SHOULD) do not, unless
    --strict. check and scan take IDs or prefixes in --select / --ignore.

    For example:
      cellmap-schemas rules
      cellmap-schemas rules --json | jq -r '.[] | select(.severity == "warning") | .id'

    Exit status: 0.

    Parameters
    ----------
    as_json: bool
        Print a JSON list of {id, severity, summary, source} objects instead of a table.
    markdown: bool
        Print the table as Markdown (the one in docs/rules.md).
    """
    from cellmap_schemas.rules import all_rules, markdown_table

    table = all_rules()
    if markdown:
        write_stdout(markdown_table(table))
        return EXIT_OK
    if as_json:
        import msgspec

        print_json(msgspec.json.encode([
            {"id": r.id, "severity": r.severity, "summary": r.summary, "source": r.source}
            for r in table
        ]))  # fmt: skip
        return EXIT_OK
    width = max(len(r.id) for r in table)
    write_stdout("".join(f"{r.id:<{width}}  {r.severity:<7}  {r.summary}\n" for r in table))
    return EXIT_OK
