"""The Python examples in README.md and docs/*.md run.

Every fenced ```` ```python ```` block of a file runs, in order and in one namespace (later blocks
use names defined by earlier ones), in a fresh temporary working directory. A block fenced as
```` ```python no-run ```` is not collected at all: it is for examples that need resources a test
cannot have (a real bucket, a large dataset). There is one test per document, so a document
without Python blocks simply runs nothing.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted(p for p in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")] if p.is_file())

_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    """One runnable code block: its source and the line where it starts in the document."""

    line: int
    source: str


def python_blocks(text: str) -> list[Block]:
    """The runnable ``python`` blocks of a Markdown text, in order (``python no-run`` excluded)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, indent = m["fence"], m["indent"]
        words = m["info"].split()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence) and lines[j].strip().strip(fence[0]) == ""
        ):
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line)
            j += 1
        if words[:1] == ["python"] and "no-run" not in words[1:]:
            blocks.append(Block(line=i + 2, source=textwrap.dedent("\n".join(body)) + "\n"))
        i = j + 1
    return blocks


def test_python_blocks_extraction() -> None:
    text = (
        "intro\n"
        "```python\nx = 1\n```\n"
        "```python no-run\nraise SystemExit('not collected')\n```\n"
        "```bash\necho no\n```\n"
        "- a list item:\n\n"
        "  ```python\n  y = x + 1\n  ```\n"
        "````python\nprint('```')\n````\n"
    )
    blocks = python_blocks(text)
    assert [b.source for b in blocks] == ["x = 1\n", "y = x + 1\n", "print('```')\n"]
    assert [b.line for b in blocks] == [3, 14, 17]


def test_a_failing_block_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("```python\nvalue = 1\n```\n\n```python\nassert value == 2\n```\n")
    with pytest.raises(AssertionError):
        run_document(doc, tmp_path, monkeypatch)


def run_document(path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run every block of ``path`` in ``workdir``; return how many ran."""
    monkeypatch.chdir(workdir)
    namespace: dict[str, object] = {"__name__": "__main__"}
    blocks = python_blocks(path.read_text(encoding="utf-8"))
    for block in blocks:
        code = compile(block.source, f"{path.name}:{block.line}", "exec")
        exec(code, namespace)
    return len(blocks)


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(p.relative_to(ROOT)) for p in DOCUMENTS])
def test_document_examples_run(
    document: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_document(document, tmp_path, monkeypatch)  # fails on the first exception


def test_rules_md_lists_the_rule_table() -> None:
    from cellmap_schemas.rules import all_rules, markdown_table

    text = (ROOT / "docs" / "rules.md").read_text()
    start = text.index("<!-- rules:start")
    start = text.index("\n", start) + 1
    end = text.index("<!-- rules:end -->")
    assert text[start:end] == markdown_table(all_rules()), (
        "docs/rules.md is stale: regenerate the table with `cellmap-schemas rules --markdown`"
    )
