"""A record of the frozen test set: one prompt, its target and how to score it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str


class ScorerRef(BaseModel):
    """Which scorer grades a record: a built-in name or ``package.module:function``."""

    model_config = ConfigDict(extra="forbid")

    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    # a sample passes when its score reaches this
    threshold: float = Field(default=1.0, ge=0.0, le=1.0)


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    dataset: str
    subset: str = "default"
    task_type: str = "default"
    tags: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    weight: float = 1.0
    input: list[Message]
    target: str | list[str] | None = None
    choices: list[str] | None = None
    scorer: ScorerRef
    metadata: dict[str, Any] = Field(default_factory=dict)

    def prompt_text(self) -> str:
        """The conversation as plain text, for reports and ``-k`` matching."""
        return "\n".join(f"{m.role}: {m.content}" for m in self.input)
