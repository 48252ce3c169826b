"""Held-out checks for this multi-turn environment, run by `flash env eval`.

`flash env eval` sends one prompt and grades one reply by default, so these cases check
the FIRST action: given the opening prompt, does the model answer with the single integer
`step_episode` can read? To grade whole episodes instead, set `grades_episodes = True` and
define `score(self, case, response, state)`; each case then costs one generation per turn.

Do not grade these with `environment.reward(response, example)`: without episode state
that scores an empty transcript and can pass an unrelated answer.
"""

from __future__ import annotations

from flash.envs.meta.evaluations import BaseEvalSuite, EvalCase, EvalResult

LOW, HIGH = 1, 100


class StarterFirstActionSuite(BaseEvalSuite):
    name = "starter-first-action"

    def __init__(self, environment=None):
        self.environment = environment

    def cases(self):
        # `input` is a dataset row's input: `flash env eval` builds the prompt through the
        # environment's own start_episode, exactly as training does.
        return [
            EvalCase(
                id="opening-guess",
                input=f"I picked a secret whole number between {LOW} and {HIGH}.",
            )
        ]

    def score(self, case, response):
        try:
            guess = int(response.strip().split()[0])
        except (ValueError, IndexError):
            return EvalResult(
                case_id=case.id,
                passed=False,
                score=0.0,
                response=response,
                reason="first turn is not a single integer, so step_episode cannot read it",
            )
        in_range = LOW <= guess <= HIGH
        return EvalResult(
            case_id=case.id,
            passed=in_range,
            score=1.0 if in_range else 0.0,
            response=response,
            reason=None if in_range else f"guess {guess} is outside {LOW}-{HIGH}",
        )


def load_evaluations(environment=None):
    return [StarterFirstActionSuite(environment)]
