"""Held-out checks for this environment, run by `flash env eval` against a trained model.

Push this file beside environment.py; the run names the published environment, so
`flash env eval RUN_ID/final` needs no local path.
"""

from __future__ import annotations

from flash.envs.meta.evaluations import BaseEvalSuite, EvalCase, EvalResult


class StarterEvaluationSuite(BaseEvalSuite):
    name = "starter"

    def __init__(self, environment=None):
        self.environment = environment

    def cases(self):
        return [EvalCase(id="addition", input="What is 7 + 5?", expected="12")]

    def score(self, case, response):
        if self.environment is None:
            return super().score(case, response)
        example = dict(case.metadata or {})
        example.update(input=case.input, output=case.expected)
        # Pass/fail comes from grade(), the environment's own success decision: a shaped
        # reward can pay partial credit for a wrong answer. This scores twice; if your scorer
        # calls a paid judge, score once and build the EvalResult from that result.
        return EvalResult(
            case_id=case.id or "case",
            passed=self.environment.grade(response, example),
            score=float(self.environment.reward(response, example)),
            response=response,
        )


def load_evaluations(environment=None):
    return [StarterEvaluationSuite(environment)]
