"""Counting prompt tokens before a run, with the best tokenizer this machine has.

In order: tiktoken's ``o200k_base`` when tiktoken is installed and has its encoding (it
downloads it once, so it may be missing offline); else the embedded model's own tokenizer
(SmolLM2's, read from the GGUF file of the ``local`` extra without loading the weights);
else about four characters a token. Every one of them is an estimate for another model's
tokenizer; the plan says which was used.
"""

from __future__ import annotations

from pytest_evalindex.results.planning import APPROXIMATE, TokenCounter


def token_counter() -> TokenCounter:
    """The first tokenizer that works here (see the module's docstring)."""
    return _tiktoken() or _embedded_model() or APPROXIMATE


def _tiktoken() -> TokenCounter | None:
    try:
        import tiktoken  # type: ignore[import-not-found, unused-ignore]

        encoding = tiktoken.get_encoding("o200k_base")
    except Exception:  # not installed, or its encoding file cannot be had offline
        return None

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    return TokenCounter(count, "tiktoken o200k_base", exact=True)


def _embedded_model() -> TokenCounter | None:
    from pytest_evalindex.run import local_model

    if local_model.turned_off() or not local_model.is_available():
        return None
    try:
        vocabulary = _GgufVocabulary(str(local_model.model_path()))
    except Exception:  # a damaged install: the approximation still plans the run
        return None
    return TokenCounter(vocabulary.count, "the embedded model's tokenizer (SmolLM2)", exact=True)


class _GgufVocabulary:
    """The tokenizer of a GGUF file, loaded without its weights through llama.cpp's own
    functions (llama-cpp-python's ``Llama`` also makes a context, and llama.cpp prints
    its loading log on stderr, which the plan's output must not carry)."""

    def __init__(self, path: str) -> None:
        import ctypes

        import llama_cpp

        @llama_cpp.llama_log_callback
        def quiet(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            pass

        self._quiet = quiet  # llama.cpp keeps the pointer: the function must outlive it
        llama_cpp.llama_log_set(quiet, ctypes.c_void_p(0))
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        self._model = llama_cpp.llama_model_load_from_file(path.encode(), params)
        if not self._model:
            raise OSError(f"llama.cpp could not read the vocabulary of {path}")
        self._vocab = llama_cpp.llama_model_get_vocab(self._model)
        self._llama_cpp = llama_cpp

    def count(self, text: str) -> int:
        data = text.encode("utf-8")
        room = len(data) + 8  # never more tokens than bytes
        tokens = (self._llama_cpp.llama_token * room)()
        n = self._llama_cpp.llama_tokenize(self._vocab, data, len(data), tokens, room, False, False)
        return int(n) if n >= 0 else -int(n)
