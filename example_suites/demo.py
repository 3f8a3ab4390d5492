"""Run the quickstart index against a scripted stand-in model, end to end.

The stand-in is the project's loopback OpenAI-compatible server with canned answers
(example_suites/demo_answers.json, a few of them wrong on purpose), so this needs no API
key and no network. Extra arguments go to pytest, e.g. ``python example_suites/demo.py -n 2``.
To evaluate a real model instead:

    pytest --index example_suites/quickstart.yaml --index-base-url URL --index-model NAME
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pytest_evalindex.testing import FakeOpenAI

HERE = Path(__file__).resolve().parent


def main() -> int:
    answers = json.loads((HERE / "demo_answers.json").read_text("utf-8"))
    with FakeOpenAI(answers=answers, default="I do not know.", latency=0.05) as server:
        command = [
            sys.executable, "-m", "pytest",
            "--index", str(HERE / "quickstart.yaml"),
            "--index-base-url", server.base_url,
            "--index-model", "demo-canned-answers",
            *sys.argv[1:],
        ]  # fmt: skip
        return subprocess.call(command, cwd=HERE.parent)


if __name__ == "__main__":
    raise SystemExit(main())
