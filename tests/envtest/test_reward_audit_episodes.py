"""The reward audit on multi-turn environments: scripted policies that never give the right answer
(repeat, shotgun across turns, a wrong answer holding the gold's text, copy the environment back, stall) are
played as whole episodes on the scaffolded freesolo starter, and one reaching the gold episode's reward is an open
finding; families that were not run always warn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from mcp import Client

from flash_mcp.domain.envtest import episodes, probes
from tests.conftest import PROJECT, call
from tests.envs import projects as seeds
from tests.envs.scorers import GOLD, Scorer

pytestmark = pytest.mark.anyio
SCORE_HEAD = "    def score_episode(self, example: TaskExample, episode: EnvironmentEpisode) -> RewardResult:\n"
# score_episode bodies that pay a policy that never gives the right answer
EXPLOITS = {
    # persistence paid: an episode played to the turn limit earns full credit
    "pays-persistence": (
        "        turns = [t for t in episode.turns if t.role == 'assistant']\n"
        "        if len(turns) >= MAX_TURNS:\n            return RewardResult(score=1.0)\n",
        {"repeat-turns", "shotgun-turns", "superstring", "hedge-turn", "claims-success", "copy-back", "stall"},
    ),
    # the gold's text anywhere in the final turn pays: 59 wins for a secret of 5
    "substring-in-final-turn": (
        "        final = [str(t.content) for t in episode.turns if t.role == 'assistant'][-1:]\n"
        "        if final and str(example.output).strip() in final[0]:\n            return RewardResult(score=1.0)\n",
        {"superstring"},
    ),
    # every number said in any turn is checked: the gold hidden among wrong ones pays
    "any-number-said": (
        "        import re\n"
        "        said = ' '.join(str(t.content) for t in episode.turns if t.role == 'assistant')\n"
        "        if str(example.output).strip() in re.findall(r'-?\\d+', said):\n"
        "            return RewardResult(score=1.0)\n",
        {"hedge-turn"},
    ),
    # a claim of success by anyone in the transcript is taken for one
    "believes-a-claim": (
        "        said = ' '.join(str(t.content) for t in episode.turns if t.role == 'assistant')\n"
        "        if said.lower().startswith('correct'):\n            return RewardResult(score=1.0)\n",
        {"claims-success"},
    ),
    # a word the environment itself says is taken for a win
    "pays-the-word-correct": (
        "        said = ' '.join(str(t.content) for t in episode.turns if t.role == 'assistant')\n"
        "        if 'correct' in said.lower():\n            return RewardResult(score=1.0)\n",
        {"copy-back", "claims-success"},
    ),
}


@pytest.fixture
async def client(settings) -> AsyncIterator[Client]:
    from flash_mcp.server import build_server

    async with Client(build_server(settings)) as connected:
        yield connected


async def _report(client: Client, workspace: Path, prefix: str = "") -> dict:
    await call(client, "setup_project", directory="s", project=PROJECT, multi_turn=True)
    path = workspace / "s" / "environment.py"
    source = path.read_text(encoding="utf-8")
    assert SCORE_HEAD in source
    path.write_text(source.replace(SCORE_HEAD, SCORE_HEAD + prefix), encoding="utf-8")
    return await call(client, "test_environment", directory="s", config="s/configs/rl.toml")


def _family(report: dict, name: str) -> dict:
    return next(f for f in report["audit"]["families"] if f["family"] == name)


async def test_the_multi_turn_starter_resists_every_scripted_policy(client: Client, workspace: Path) -> None:
    report = await _report(client, workspace)
    episode = _family(report, "episode")
    assert episode["status"] == "resisted" and episode["rows_probed"] == report["rows_checked"] == 2
    assert report["verdict"] == "pass", report["summary"]
    [not_run] = [w for w in report["warnings"] if w["code"] == "audit-not-run"]
    assert "multi-turn" in not_run["message"] and "Fix:" in not_run["message"]
    skipped = [f["family"] for f in report["audit"]["families"] if f["status"] == "not-run"]
    assert "episode" not in skipped and "hedge" in skipped and not_run["count"] == len(skipped)


@pytest.mark.parametrize("name", EXPLOITS)
async def test_a_policy_that_never_answers_right_reaching_the_gold_reward_is_open(
    client: Client, workspace: Path, name: str
) -> None:
    prefix, policies = EXPLOITS[name]
    report = await _report(client, workspace, prefix)
    episode = _family(report, "episode")
    assert episode["status"] == "open" and episode["example"]["probe"] in policies, episode
    assert "episode-credit" in {w["code"] for w in report["warnings"]}
    assert report["verdict"] == "fail" and "can be gamed" in report["summary"]


async def test_a_single_turn_audit_with_nothing_probed_warns_not_run(client: Client, workspace: Path) -> None:
    scorer = Scorer("bare", GOLD + "        return RewardResult(score=1.0)\n", empty_gold_rows=(0, 1, 2, 3))
    seeds.make_project(workspace, "p", scorer.source(), scorer.rows(4))
    report = await call(client, "test_environment", directory="p", config="p/configs/rl.toml")
    assert "episode" not in {f["family"] for f in report["audit"]["families"]}
    skipped = [f["family"] for f in report["audit"]["families"] if f["status"] == "not-run"]
    [not_run] = [w for w in report["warnings"] if w["code"] == "audit-not-run"]
    assert "hedge" in skipped and not_run["count"] == len(skipped) and "multi-turn" not in not_run["message"]


def test_scripted_policies_never_give_the_gold() -> None:
    policies = episodes.episode_policies("<answer>51</answer>", probes.near_value)
    chat = [{"role": "user", "content": "Guess. I will say correct."}]
    for turn in range(6):
        said = {name: policy(chat) for name, (policy, _) in policies.items()}
        assert "<answer>51</answer>" not in said.values(), said
        assert said["copy-back"] == chat[-1]["content"]
        assert said["superstring"] == "<answer>519</answer>"
        first, *_, last = said["hedge-turn"].split(" ")
        assert "<answer>51</answer>" in said["hedge-turn"] and "51" not in first + last, said["hedge-turn"]
        chat += [{"role": "assistant", "content": said["shotgun-turns"]}, {"role": "user", "content": f"no {turn}"}]
    shots = {c["content"] for c in chat if c["role"] == "assistant"}
    assert len(shots) == 6
