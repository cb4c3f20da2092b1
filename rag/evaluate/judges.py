"""Judges: does a text support a claim? Each returns a score per claim, or None when it failed to judge.

- `builtin` (default): the answer path's own GroundingChecker (offline, deterministic).
- `nli:PATH`: a sentence-transformers CrossEncoder NLI model from a local path; the score is the
  probability of its "entailment" label (a single-output model's sigmoid otherwise).
- `llm[:BACKEND]`: a configured LLM asked for one word, yes or no; anything else is a parse failure,
  counted and reported, never turned into a score.
"""

from __future__ import annotations

import re
from typing import Protocol

import numpy as np

from rag.config import Settings
from rag.grounding import GroundingChecker

YES_NO = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


class Judge(Protocol):
    name: str
    threshold: float  # score >= threshold means supported
    parse_failures: int

    def scores(self, claims: list[str], evidence: str, question: str = "") -> list[float | None]:
        """Support score of each claim given the evidence text (and the question it answers, if any)."""


class BuiltinJudge:
    """The grounding checker of the answer path, on the evidence split into sentences."""

    name = "builtin"

    def __init__(self, checker: GroundingChecker):
        self.checker = checker
        self.threshold = checker.threshold
        self.parse_failures = 0

    def scores(self, claims: list[str], evidence: str, question: str = "") -> list[float | None]:
        sources = self.checker.document_sentences(evidence)
        return [v.score for v in self.checker.check(claims, sources, question=question)]


class NLIJudge:
    """A CrossEncoder NLI model given by path: P(entailment | evidence, claim)."""

    threshold = 0.5

    def __init__(self, path: str):
        from sentence_transformers import CrossEncoder

        try:
            self.model = CrossEncoder(path, device="cpu")
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot load NLI cross-encoder from {path}: {exc}") from exc
        labels = {i: str(name).lower() for i, name in (self.model.config.id2label or {}).items()}
        entail = [i for i, name in labels.items() if name.startswith("entail")]
        self.entailment = entail[0] if entail else None
        if self.model.num_labels > 1 and self.entailment is None:
            raise ValueError(f"{path}: none of the model's labels {sorted(labels.values())} is 'entailment'")
        self.name = f"nli:{path}"
        self.parse_failures = 0

    def scores(self, claims: list[str], evidence: str, question: str = "") -> list[float | None]:
        claims = [f"{question} {claim}".strip() if len(claim.split()) < 4 else claim for claim in claims]
        if not claims:
            return []
        logits = np.asarray(self.model.predict([(evidence, claim) for claim in claims], apply_softmax=False,
                                               convert_to_numpy=True), dtype=float)
        if logits.ndim == 1 or logits.shape[-1] == 1:
            return [float(1 / (1 + np.exp(-x))) for x in logits.reshape(-1)]
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = exp / exp.sum(axis=1, keepdims=True)
        return [float(p) for p in probabilities[:, self.entailment]]


class LLMJudge:
    """Asks an LLM backend "supported? yes or no" per claim, with strict parsing of the reply."""

    threshold = 0.5
    PROMPT = ("Passage:\n{evidence}\n\nClaim: {claim}\n\nIs the claim fully supported by the passage? "
              "Answer with exactly one word: yes or no.")

    def __init__(self, settings: Settings, backend: str | None = None, max_evidence_chars: int = 3000):
        from rag.llm import load_llm

        self.llm = load_llm(settings.llm, backend)
        self.name = f"llm:{self.llm.backend}:{self.llm.model}"
        self.max_evidence_chars = max_evidence_chars
        self.parse_failures = 0
        self.replies = 0

    def scores(self, claims: list[str], evidence: str, question: str = "") -> list[float | None]:
        claims = [f"{question} {claim}".strip() if len(claim.split()) < 4 else claim for claim in claims]
        results = []
        for claim in claims:
            prompt = self.PROMPT.format(evidence=evidence[: self.max_evidence_chars], claim=claim)
            reply = "".join(self.llm.stream([{"role": "user", "content": prompt}], 4))
            self.replies += 1
            results.append(parse_yes_no(reply))
            if results[-1] is None:
                self.parse_failures += 1
        return results


def parse_yes_no(reply: str) -> float | None:
    """1.0 for a reply starting with yes, 0.0 for no, None for anything else."""
    match = YES_NO.match(reply or "")
    return None if match is None else float(match.group(1).lower() == "yes")


def load_judge(spec: str, settings: Settings, checker: GroundingChecker) -> Judge:
    """`builtin`, `nli:PATH` or `llm[:BACKEND]`."""
    if spec == "builtin":
        return BuiltinJudge(checker)
    if spec.startswith("nli:"):
        return NLIJudge(spec[4:])
    if spec == "llm" or spec.startswith("llm:"):
        return LLMJudge(settings, spec[4:] or None)
    raise ValueError(f"unknown judge {spec!r}: use builtin, nli:PATH or llm[:BACKEND]")
