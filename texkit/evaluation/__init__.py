"""``texkit eval``: did a fine-tune work on prompts, seeds and meshes it was not trained on?

The modules, in the order the command uses them:

- `texkit.evaluation.spec`: the eval spec (TOML) and its pydantic model;
- `texkit.evaluation.plan`: adapters found, painting settings resolved, items named;
- `texkit.evaluation.run`: painting and scoring in batches, resumable, atomic item folders;
- `texkit.evaluation.stats`: paired bootstrap confidence interval and win rate;
- `texkit.evaluation.summary`: ``summary.json``, ``summary.csv``, ``summary.md``;
- `texkit.evaluation.page`: ``eval.html`` with one paired plot per metric and the textures side by side.
"""

from __future__ import annotations

from texkit.evaluation.plan import EvalPlan, plan_eval
from texkit.evaluation.run import EvalResult, run_eval
from texkit.evaluation.spec import EvalSpec, MetricSpec, load_spec

__all__ = ["EvalSpec", "MetricSpec", "load_spec", "EvalPlan", "plan_eval", "EvalResult", "run_eval"]
