#!/usr/bin/env python3
"""Regenerate ``docs/report.png``: the HTML report of ``examples/cellmap-bucket`` in Chromium.

Scans the example hierarchy with the real scan API, renders the page, opens the failing dataset
and its most frequent rule (``<details open>``, as a reader would), and takes a screenshot with
headless Chromium's ``--screenshot``. The absolute path of the checkout is shortened to
``examples/cellmap-bucket`` so the picture does not depend on where the repository lives.

    uv run python scripts/screenshot_report.py [--out docs/report.png] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import msgspec

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "cellmap-bucket"
ARGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
    "--force-device-scale-factor=1", "--virtual-time-budget=3000",
)  # fmt: skip


def page() -> str:
    """The example's report page, with a failing dataset and a rule opened."""
    from cellmap_schemas import scan
    from cellmap_schemas._scan.html import render_html

    raw = msgspec.json.encode(scan(str(EXAMPLE))).decode()
    raw = raw.replace(msgspec.json.encode(str(EXAMPLE)).decode()[1:-1], "examples/cellmap-bucket")
    report = msgspec.json.decode(raw)
    html = render_html(report)
    datasets = report["summary"]["datasets"]
    worst = max(range(len(datasets)), key=lambda i: datasets[i]["invalid"])
    html = html.replace(
        f'id="ds-{worst}" data-ds="{worst}">', f'id="ds-{worst}" data-ds="{worst}" open>'
    )
    return html.replace('<details class="rule"', '<details open class="rule"', 1)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=REPO / "docs" / "report.png")
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    p.add_argument("--size", default="1280,2200", help="window width,height in pixels")
    args = p.parse_args(argv)
    if not Path(args.chromium).exists():
        print(f"no chromium at {args.chromium} (run .ci/install-chromium.sh)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(tmp) / "report.html"
        html.write_text(page(), encoding="utf-8")
        out = args.out.resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [args.chromium, *ARGS, f"--window-size={args.size}", f"--screenshot={out}"]
        subprocess.run([*cmd, html.as_uri()], check=True, capture_output=True, timeout=120)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
