"""How good is a model: zero-shot synthesis, attribute co-prediction, reconstruction, and method-specific figures.

Each module here registers its evaluations with ``@evaluation`` (see ``suite``); ``studio eval`` runs them.
"""

from studio.evaluation.suite import EvalContext, EvaluationSkipped, evaluation, make_context, run_evaluations

__all__ = ["EvalContext", "EvaluationSkipped", "evaluation", "make_context", "run_evaluations"]
