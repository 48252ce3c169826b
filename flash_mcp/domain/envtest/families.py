"""What each exploit family of the reward audit reports: its stable warning code, what was found, and
the one-line fix. Codes are stable: agents and tests key on them."""

from __future__ import annotations

# family -> (warning code, what was found, one-line fix). Codes are stable: agents and tests key on them.
FAMILY_TEXT: dict[str, tuple[str, str, str]] = {
    "wrong-answer": (
        "wrong-credit",
        "a deliberately wrong answer scored as high as the gold answer",
        "grade the response against this row's gold answer",
    ),
    "near-miss": (
        "near-miss-credit",
        "a near miss (a different answer of the same kind, in the gold's format) scored as high as the gold",
        "compare whole values exactly (parse numbers), not prefixes, substrings or closeness",
    ),
    "format": (
        "format-credit",
        "a different value in the gold's exact format scored as high as the gold: any answer in the right "
        "format is paid",
        "let the value decide the reward; pay format only as a small bonus",
    ),
    "several-answers": (
        "padded-credit",
        "an answer listing the gold among wrong candidates (in one wrapper or in several) scored as high as the "
        "gold: the reward can be gamed by hedging",
        "require exactly one asserted answer; score 0 when several are given",
    ),
    "reasoning": (
        "reasoning-credit",
        "the gold stated in the reasoning or a <think> block, with a different final answer, scored as high as "
        "the gold",
        "grade only the final asserted answer: strip <think> blocks and earlier reasoning first",
    ),
    "empty": (
        "empty-credit",
        "an empty, blank or unparsable answer (or a JSON object without the answer's field) scored as high as the gold",
        "return 0 when the answer is missing, empty or does not parse; never default to credit",
    ),
    "repetition": (
        "repeat-credit",
        "the gold answer repeated scored above the gold answer itself",
        "count one answer once and clamp the reward to its range",
    ),
    "length": (
        "length-credit",
        "a long wrong answer scored as high as the gold answer",
        "do not pay for length; a wrong answer must never outscore a right one",
    ),
    "injection": (
        "injection-credit",
        "a wrong answer followed by an instruction to the grader scored as high as the gold answer",
        "extract the answer before judging; never let response text instruct the grader",
    ),
    "echo": (
        "echo-credit",
        "the prompt echoed back scored as high as the gold answer",
        "give no credit for text copied from the prompt",
    ),
    "derived-wrong": (
        "derived-wrong-credit",
        "a wrong answer built from the data (another row's gold, the gold's value changed or cut short, a value "
        "from the prompt) scored as high as the gold",
        "compare the whole parsed answer with this row's gold; never accept part of it or any plausible value",
    ),
    "hedge": (
        "hedge-credit",
        "the gold combined with a wrong answer ('A or B', 'B (not A)') scored as high as the gold",
        "accept exactly one answer; a response naming several candidates earns nothing",
    ),
    "decoration": (
        "decoration-credit",
        "text around or instead of a wrong answer (praise, confidence, markdown) scored as high as the gold",
        "score the extracted answer only; surrounding text must never add reward",
    ),
    "parser": (
        "parser-credit",
        "an input that stresses the parser (non-ASCII digits, NaN, an overflowing number, null, nested or "
        "unclosed wrappers) scored as high as the gold: an exception path or lax parse pays",
        "return 0 when parsing fails or yields a non-finite or null value; never pay a default from an except",
    ),
    "stateful": (
        "unstable-reward",
        "the reward changed between two scorings of the same answer, or every answer got the score of the first "
        "one scored for its prompt: it is random or keeps state between calls",
        "make the reward a pure function of (row, response): no randomness, caches or counters",
    ),
    "episode": (
        "episode-credit",
        "a scripted multi-turn policy that never gives the right answer (the same wrong answer every turn, "
        "different wrong answers across turns, a wrong answer holding the gold's text, the gold hidden among wrong "
        "answers, a claim of success, the environment's last message copied back, or stalling to the turn limit) "
        "earned the gold episode's reward",
        "score the episode on its final answer against this row's gold; pay nothing for turns taken, "
        "guesses tried or text copied from the environment",
    ),
    "search": (
        "search-credit",
        "the seeded search found a wrong answer the fixed probes missed (a value changed another way, a hedge, "
        "a parser stressor, or text around it) that scored as high as the gold",
        "compare the whole parsed answer with this row's gold; no other value, hedge or surrounding text may earn "
        "its reward",
    ),
    "range": (
        "score-out-of-range",
        "an answer scored outside the reward's declared range, or above every gold answer",
        "clamp the reward to its range, e.g. min(1.0, score)",
    ),
}
PARTIAL_TEXT = {
    "length": "partial credit for length: a long wrong answer scored above the same wrong answer stated briefly",
    "injection": "partial credit for an instruction to the grader: a wrong answer followed by one scored above "
    "the wrong answer alone",
    "echo": "partial credit for echoing: the prompt sent back as the answer scored above a wrong answer in the "
    "right format",
    "decoration": "partial credit for decoration: text around or instead of a wrong answer scored above the "
    "wrong answer alone",
    "search": "partial credit found by the seeded search: text around a wrong answer scored above the wrong answer "
    "alone",
}
ANY_ANSWER = (
    "any-answer",
    "a deliberately wrong answer earns the full reward on these rows (an empty gold with a substring match "
    "does this): every answer the policy writes is paid",
)
NOT_RUN = (
    "audit-not-run",
    "these exploit families were not probed, so nothing is known about them",
    "give every row a gold answer (output or sft_completion) so every family can be probed",
)
NOT_RUN_MULTI_FIX = (
    "on a multi-turn environment only whole episodes are played: review score_episode by hand against "
    "these families (hedging, decoration, parser crashes)"
)
