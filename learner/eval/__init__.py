"""The honest evaluation harness: benchmark cases through the same pipeline the editor uses.

Cases (``cases``) are materialised as small crates (``sandbox``), fixed by a named strategy
(``strategies``) through :func:`learner.fix.pipeline.fix_diagnostic`, graded from scratch with a
real compile (``grader``), recorded in the store (``runner``) and summarised with intervals
(``stats``, ``continual``, ``reports``). ``leakage`` refuses cases the learner trained on.

Nothing here imports torch at module level: strategies load the model only when they run.
"""

from __future__ import annotations

from learner.eval.cases import CaseFormatError, CaseSet, EvalCase, SkippedCase, load_cases
from learner.eval.grader import Grade, grade
from learner.stats import mcnemar_exact, pass_at_k, wilson_interval

__all__ = [
    "CaseFormatError",
    "CaseSet",
    "EvalCase",
    "Grade",
    "SkippedCase",
    "grade",
    "load_cases",
    "mcnemar_exact",
    "pass_at_k",
    "wilson_interval",
]
