"""``cellmap-schemas check``: every verdict on one node, as ``scan`` gives it for that node."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from cyclopts import Parameter

from cellmap_schemas.cli._common import (
    EXIT_INVALID,
    EXIT_OK,
    Ignore,
    Select,
    StorageOptions,
    Strict,
    guard,
    options,
    print_json,
    storage_options,
    write_stdout,
)

if TYPE_CHECKING:
    from cellmap_schemas._scan import NodeResult

__all__ = ["check"]


def check(
    url: str,
    model: str | None = None,
    /,
    *,
    strict: Strict = False,
    select: Select = None,
    ignore: Ignore = None,
    format: Annotated[Literal["text", "json"], Parameter(name="--format")] = "text",
    storage_option: StorageOptions = None,
) -> int:
    """Judge the array or group at URL and report every problem.

    Without MODEL the node is judged by every model whose markers it carries
    (a COSEM group by COSEM and by Neuroglancer N5); with MODEL (a name listed
    by `cellmap-schemas models`) by that model, whatever the node carries.
    The node is read with the members its verdicts depend on. Each problem
    names its rule (see `cellmap-schemas rules`); errors fail the node,
    warnings only with --strict. The verdicts are those `scan` gives.

    For example:
      cellmap-schemas check /data/hela.n5/em/fibsem-uint16
      cellmap-schemas check /data/hela.n5/em/fibsem-uint16 multiscale.cosem.Group
      cellmap-schemas check s3://bucket/hela.n5/em/s0 multiscale.cosem.Array
      cellmap-schemas check crops.zarr/crop1 --format json | jq .results

    Exit status: 0 valid, 1 invalid (or no model applies), 2 unreadable
    (missing, not N5/Zarr, storage error), unknown model or bad usage.

    Parameters
    ----------
    url: str
        Local path or s3://, gs://, http(s):// URL of an array or group.
    model: str | None
        Model name, e.g. multiscale.cosem.Group (see `cellmap-schemas models`).
        Default: every model whose markers the node carries.
    strict: bool
        Warnings fail the node too.
    select: list[str] | None
        Only these rules count: IDs or prefixes (repeatable).
    ignore: list[str] | None
        Drop these rules: IDs or prefixes (repeatable).
    format: Literal["text", "json"]
        text: a line per verdict and per problem; json: the node record of `scan --format json`.
    storage_option: list[str] | None
        fsspec storage option key=value (repeatable).
    """
    status = [EXIT_OK]
    with guard(url, status):
        from cellmap_schemas.registry import resolve
        from cellmap_schemas.synchronous import judge

        models = [resolve(model).name] if model is not None else None
        node = judge(
            url,
            models,
            options=options(strict, select, ignore),
            storage_options=storage_options(storage_option),
        )
        if format == "json":
            import msgspec

            print_json(msgspec.json.encode(node))
        else:
            write_stdout(_text(url, node))
        status[0] = EXIT_OK if node.status == "valid" else EXIT_INVALID
    return status[0]


def _text(url: str, node: NodeResult) -> str:
    if not node.results:
        return f"{url}: no model applies (the node carries no model's markers); nothing judged\n"
    lines = []
    for name, result in node.results.items():
        n_err, n_warn = len(result.errors), len(result.warnings)
        counts = [f"{n_err} error{'s' if n_err != 1 else ''}"] if n_err else []
        counts += [f"{n_warn} warning{'s' if n_warn != 1 else ''}"] if n_warn else []
        verdict = "valid" if result.valid else "invalid"
        lines.append(f"{url}: {verdict} {name}" + (f" ({', '.join(counts)})" if counts else ""))
        for f in result.errors:
            lines.append(f"  {f.loc or '(root)'}: {f.msg} [{f.rule}]")
        for f in result.warnings:
            lines.append(f"  warning: {f.loc or '(root)'}: {f.msg} [{f.rule}]")
    return "\n".join(lines) + "\n"
