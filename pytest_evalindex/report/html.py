"""The self-contained HTML case-analysis report.

One file, no network: the stylesheet and script (``assets/report.css``, ``assets/report.js``)
are inlined, and the data is a JSON block the script draws from. Model output is untrusted,
so the page is safe by construction on three levels:

* the JSON block escapes ``<``, ``>``, ``&``, U+2028 and U+2029 as ``\\u003c`` and so on, so
  no string in the data can close the block (``</script>``) or open a comment;
* the script builds the page with DOM calls and ``textContent`` only, never from markup;
* a Content-Security-Policy allows exactly the one inline script and stylesheet (by hash)
  and no connection, font or frame, so even a mistake could not load or run anything else.

The data block holds ``{"title", "results", "shared_texts", "comparison", "base"}``:
``results`` is the results document with long prompt messages that several samples share
replaced by ``{"$shared": k}`` (``shared_texts[k]``), and ``base`` the base run's answers,
slimmed to :data:`BASE_SAMPLE_FIELDS`. Once the sample table is drawn the page sets
``window.__evalindexReady`` (milliseconds since navigation start); ``window.__evalindex``
has ``setFilters({...})`` (returns the milliseconds the filter took), ``sortBy(column)`` and
``visibleCount()`` for benchmarks and tests.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
import json
import math
import os
import re
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from pytest_evalindex.results.schema import Comparison, Results, Sample

# the fields of a base-run sample the report shows next to the new run's answer
BASE_SAMPLE_FIELDS = ("id", "outcome", "score", "response", "reasoning", "explanation")
# a prompt message at least this long that several samples share (a system prompt, few-shot
# examples) is stored once in the page and referred to by position
SHARED_TEXT_MIN_CHARS = 64

# characters that must not appear literally inside a <script> element; a lone surrogate
# cannot be written as UTF-8 at all. Inside JSON they can only occur in strings, where a
# \uXXXX escape means the same character.
_UNSAFE_IN_SCRIPT = re.compile("[<>&\u2028\u2029\ud800-\udfff]")


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe as the text of a ``<script>`` element.

    Non-finite floats (which ``JSON.parse`` rejects) become ``null``; objects JSON does not
    know are written with ``str``.
    """
    try:
        text = _dumps(value)
    except ValueError:  # NaN or infinity somewhere
        text = _dumps(_finite(value))
    return _UNSAFE_IN_SCRIPT.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def render_html(
    results: Results,
    comparison: Comparison | None = None,
    *,
    base_results: Results | None = None,
    title: str | None = None,
) -> str:
    """The report for a results document as one HTML page.

    ``comparison`` is a comparison document (base vs these results): the tables gain base,
    delta, interval and p columns and the flipped samples are listed. ``base_results``, the
    base run's results document, adds the base run's answers next to the new ones.
    """
    index = results.get("index") or {}
    page_title = title or f"{index.get('name') or 'evalindex'} · evalindex report"
    samples, shared_texts = share_prompt_texts(results.get("samples") or [])
    payload = {
        "title": title,
        "results": {**results, "samples": samples} if shared_texts else results,
        "shared_texts": shared_texts,
        "comparison": comparison,
        "base": _base_payload(results, comparison, base_results),
    }
    css, js = _asset("report.css"), _asset("report.js")
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src '{_csp_hash(js)}'",
            f"style-src '{_csp_hash(css)}'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f"<title>{html.escape(page_title)}</title>\n",
            f"<style>{css}</style>\n</head>\n<body>\n",
            "<noscript><p>This report is drawn by JavaScript; enable it to see the results."
            "</p></noscript>\n",
            '<main id="app"></main>\n',
            '<script type="application/json" id="evalindex-data">',
            script_json(payload),
            "</script>\n",
            f"<script>{js}</script>\n</body>\n</html>\n",
        ]
    )


def write_html(
    path: str | os.PathLike[str],
    results: Results,
    comparison: Comparison | None = None,
    *,
    base_results: Results | None = None,
    title: str | None = None,
) -> Path:
    """Render the report and write it to ``path`` atomically (a reader never sees half a
    file); parent directories are created. Returns the path."""
    target = Path(path)
    document = render_html(results, comparison, base_results=base_results, title=title)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8", newline="\n") as file:
            file.write(document)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def share_prompt_texts(
    samples: Sequence[Sample],
) -> tuple[Sequence[Mapping[str, Any]], list[str]]:
    """Samples whose repeated prompt messages are replaced by ``{"$shared": k}``, and the
    list of those texts (k is the position); the input is not modified.

    Few-shot prefixes and system prompts repeat on every sample of a dataset and can be
    most of a report's bytes; the page puts them back when it loads.
    """
    counts = Counter(text for sample in samples for text in _message_texts(sample.get("input")))
    shared = [text for text, count in counts.items() if count > 1]
    if not shared:
        return samples, []
    position = {text: k for k, text in enumerate(shared)}
    # the page's own shape: a message's content may be {"$shared": k}
    compacted: list[Mapping[str, Any]] = []
    for sample in samples:
        page_sample: Mapping[str, Any] = sample
        if any(text in position for text in _message_texts(sample.get("input"))):
            messages: list[Any] = sample["input"]
            page_sample = {
                **sample,
                "input": [
                    {**message, "content": {"$shared": position[message["content"]]}}
                    if isinstance(message, Mapping)
                    and isinstance(message.get("content"), str)
                    and message["content"] in position
                    else message
                    for message in messages
                ],
            }
        compacted.append(page_sample)
    return compacted, shared


def _message_texts(messages: Any) -> list[str]:
    """The long text contents of a list of chat messages."""
    if not isinstance(messages, list):
        return []
    return [
        content
        for message in messages
        if isinstance(message, Mapping)
        and isinstance(content := message.get("content"), str)
        and len(content) >= SHARED_TEXT_MIN_CHARS
    ]


def _dumps(value: Any) -> str:
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=str
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _base_payload(
    results: Results,
    comparison: Comparison | None,
    base_results: Results | None,
) -> dict[str, Any] | None:
    """The base run's answers for the samples this report shows, and the base's label."""
    if base_results is None:
        return None
    wanted = {str(sample.get("id")) for sample in results.get("samples") or ()}
    samples = [
        {key: value for key, value in sample.items() if key in BASE_SAMPLE_FIELDS}
        for sample in base_results.get("samples") or ()
        if str(sample.get("id")) in wanted
    ]
    label = None
    if comparison is not None:
        label = (comparison.get("base") or {}).get("label")
    if not label:
        label = (base_results.get("run") or {}).get("model") or "base"
    return {"label": str(label), "samples": samples}


@functools.cache
def _asset(name: str) -> str:
    text = (resources.files("pytest_evalindex.report") / "assets" / name).read_text("utf-8")
    # inlined verbatim, so the asset itself must not be able to end its element early
    forbidden = ("</script", "<!--", "<script") if name.endswith(".js") else ("</style",)
    for sequence in forbidden:
        if sequence in text.lower():
            raise RuntimeError(f"report asset {name} contains {sequence!r}")
    return text


def _csp_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode("ascii")
