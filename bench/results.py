"""Write a benchmark's result into docs/benchmarks.md, replacing the one it wrote before.

docs/benchmarks.md holds current results only. Each benchmark (or each of its modes) owns one
block, ``<!-- result: NAME -->`` … ``<!-- /result: NAME -->``, under its ``## `` section;
``write_result`` replaces that block (or adds it at the end of the section the first time) with
the new table and a header that records the command, commit, date and machine load. The history
of results is git's.
"""

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from keras_models.utils.atomic import write_text

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def load_average():
    """The 1-minute load average as text (the machine must be otherwise idle for a timing)."""
    return f"{os.getloadavg()[0]:.2f}"


def provenance(load_at_start):
    """One line: command, commit, UTC date, machine, and the load at the start and the end."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=DOC.parent).stdout.strip() or "not recorded"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, cwd=DOC.parent).stdout.strip()
    command = " ".join(["python", *sys.argv])
    return (f"Command: `{command}`. Commit {commit}{' (with uncommitted changes)' if dirty else ''}"
            f", {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
            f"{platform.processor() or platform.machine()} with {os.cpu_count()} cores; "
            f"load average {load_at_start} at the start, {load_average()} at the end.")


def write_result(section, name, text, doc=DOC):
    """Put ``text`` as the result block ``name`` of the ``## section`` of ``doc``."""
    page = doc.read_text(encoding="utf-8")
    opening, closing = f"<!-- result: {name} -->", f"<!-- /result: {name} -->"
    block = f"{opening}\n{text.strip()}\n{closing}"
    if opening in page:
        start, end = page.index(opening), page.index(closing) + len(closing)
        page = page[:start] + block + page[end:]
    else:
        heading = page.index(f"## {section}")
        end = page.find("\n## ", heading + 3)
        end = len(page) if end < 0 else end
        page = page[:end].rstrip("\n") + "\n\n" + block + "\n" + page[end:]
    write_text(doc, page)
