"""AA-LCR: Artificial Analysis Long Context Reasoning — questions over sets of long
documents (about 100k tokens a set) that need reasoning across them.

Layout (HF ``ArtificialAnalysis/AA-LCR``, ``AA-LCR_Dataset.csv``): ``question_id``,
``document_category`` (e.g. ``Company Reports``), ``document_set_id``, ``question``,
``answer``, ``data_source_filenames``, ``data_source_urls``, ``input_tokens``. The
documents themselves ship apart (``AA-LCR_extracted-text.zip``); they are read from either

- the row: a ``documents`` column (a list of texts) or a ``document``/``context`` column
  (one text), for a file that carries them inline; or
- ``args.documents_dir``: the folder the zip was extracted to (relative to the spec),
  laid out ``<documents_dir>/<document_category>/<document_set_id>/<one text file per
  document>``; the files are read in name order.

The record id is ``question_id``, else the row position; the subset is
``document_category``, else ``args.subset``. The frozen test set carries the documents in
the prompt, so it runs without the folder.

Default scorer ``judge`` with the ``binary`` template (CORRECT/INCORRECT against the
official answer); main metric: the judge's CORRECT. Zero-shot only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_evalindex.data.adapters._common import (
    Benchmark,
    as_list,
    field_path,
    present,
    text,
    where,
)
from pytest_evalindex.errors import EvalIndexError
from pytest_evalindex.testset.records import Record, ScorerRef

if TYPE_CHECKING:
    from pytest_evalindex.spec.index import Leaf

INLINE_LIST_FIELDS = ("documents",)
INLINE_TEXT_FIELDS = ("document", "context")


def format_documents(documents: list[str]) -> str:
    return "\n\n".join(
        f"[Document {number} begins]\n{document.strip()}\n[Document {number} ends]"
        for number, document in enumerate(documents, start=1)
    )


def long_context_prompt(documents: list[str], question: str) -> str:
    return (
        "Read the documents below, then answer the question that follows them.\n\n"
        f"{format_documents(documents)}\n\n"
        f"Question: {question}\n\n"
        "Answer from what the documents say, reasoning across them where needed. End with "
        "your final answer stated plainly."
    )


class AALCR(Benchmark):
    name = "aa_lcr"
    default_scorer = ScorerRef(name="judge", args={"template": "binary"})
    subset_fields: ClassVar[tuple[str, ...]] = ("document_category",)

    def layout_hint(self) -> str:
        return "'question_id', 'document_category', 'document_set_id', 'question' and 'answer'"

    def check(self, leaf: Leaf) -> None:
        super().check(leaf)
        folder = leaf.args.get("documents_dir")
        if folder is None:
            return
        path = self._documents_dir(leaf.args, leaf.spec_file)
        if not isinstance(folder, str) or path is None or not path.is_dir():
            raise EvalIndexError(
                f"args.documents_dir {folder!r} is not a folder; it should be where "
                "AA-LCR_extracted-text.zip was extracted (relative to the spec)",
                file=leaf.spec_file,
                field=field_path(leaf, "args.documents_dir"),
            )

    @staticmethod
    def _documents_dir(args: dict[str, Any], spec_file: Path | None) -> Path | None:
        folder = args.get("documents_dir")
        if not isinstance(folder, str) or not folder:
            return None
        base = Path(spec_file).parent if spec_file else Path.cwd()
        return (base / folder).resolve()

    def record_id(self, row: dict[str, Any], position: int) -> str:
        value = row.get("question_id")
        return text(value).strip() if present(value) else str(position)

    def documents(self, row: dict[str, Any], position: int) -> list[str]:
        for column in INLINE_LIST_FIELDS:
            listed = as_list(row.get(column))
            if listed:
                return [text(item) for item in listed]
        for column in INLINE_TEXT_FIELDS:
            if present(row.get(column)):
                return [text(row[column])]
        folder = self._documents_dir(self.args, self.spec_file)
        if folder is None:
            raise EvalIndexError(
                f"{where(position)} carries no documents; set args.documents_dir to the "
                "folder of the extracted AA-LCR texts, or add a 'documents' column",
                file=self.source,
            )
        category = text(self.required(row, "document_category", position)).strip()
        set_id = text(self.required(row, "document_set_id", position)).strip()
        set_folder = folder / category / set_id
        files = (
            sorted(p for p in set_folder.iterdir() if p.is_file() and not p.name.startswith("."))
            if set_folder.is_dir()
            else []
        )
        if not files:
            raise EvalIndexError(
                f"{where(position)}: no document files in {set_folder}", file=self.source
            )
        return [path.read_text(encoding="utf-8", errors="replace") for path in files]

    def to_record(self, row: dict[str, Any], position: int, leaf: Leaf) -> Record:
        question = text(self.required(row, "question", position)).strip()
        answer = text(self.required(row, "answer", position)).strip()
        documents = self.documents(row, position)
        metadata: dict[str, Any] = {"question": question, "documents": len(documents)}
        if present(row.get("document_set_id")):
            metadata["document_set_id"] = text(row["document_set_id"])
        return self.build(
            leaf,
            row,
            position,
            prompt=long_context_prompt(documents, question),
            target=answer,
            metadata=metadata,
            template_values={"documents": format_documents(documents)},
        )


ADAPTER = AALCR()
