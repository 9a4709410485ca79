"""Attacks on another team's MLflow models, each from team-a's custom resource (issue 17
item 3).

The operator prefixes every experiment, registered-model name and ``models:/`` name with the
namespace (``team-a.zhufu-policy``), defaults included; so through Zhufu a team registers,
moves aliases of and loads only its own models. ``runs:/`` URIs, which can name any run, are
refused. Pods get MLflow credentials from a Secret by ``secretKeyRef``.
"""

from __future__ import annotations

import pytest
from tenancy import Cluster, env_of

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_registering_under_a_shared_name_lands_in_the_own_namespace(
        cluster: Cluster) -> None:
    """``registerAs: zhufu-policy`` used to add a version to (and move the ``grpo`` alias
    of) the model every team's GRPORun loads by default."""
    job = await cluster.job("GRPORun", "move-alias", {"registerAs": "zhufu-policy",
                                                       "experiment": "zhufu"})
    config = cluster.config(job)
    assert config["register_as"] == "team-a.zhufu-policy"
    assert config["experiment"] == "team-a.zhufu"


async def test_defaults_are_scoped_too(cluster: Cluster) -> None:
    """A GRPORun with no names at all: its default policy (``models:/zhufu-policy@sft``),
    registered name and experiment are the namespace's, not whatever another team
    registered last."""
    config = cluster.config(await cluster.job("GRPORun", "all-defaults", {}))
    assert config["policy"] == "models:/team-a.zhufu-policy@sft"
    assert config["register_as"] == "team-a.zhufu-policy"
    assert config["experiment"] == "team-a.zhufu"


async def test_another_teams_model_uri_names_an_own_model(cluster: Cluster) -> None:
    """``models:/team-b.zhufu-judge@champion`` is read as team-a's model of that name
    (harmless: it names nothing of team-b's)."""
    config = cluster.config(await cluster.job("GRPORun", "read-judge", {
        "rewards": [{"name": "judge", "model": "models:/team-b.zhufu-judge@champion"}]}))
    assert config["rewards"] == [{"name": "judge", "model":
                                  "models:/team-a.team-b.zhufu-judge@champion"}]


async def test_nested_section_names_are_scoped(cluster: Cluster) -> None:
    config = cluster.config(await cluster.job("CurationJob", "rm-section", {
        "rewardModel": {"registerAs": "zhufu-reward"}}))
    assert config["reward_model"]["register_as"] == "team-a.zhufu-reward"
    assert config["reward_model"]["experiment"] == "team-a.zhufu"


async def test_runs_uri_is_refused(cluster: Cluster) -> None:
    msg = await cluster.refused("GRPORun", "read-run", {"policy": "runs:/0123abcd/model"})
    assert msg.startswith("spec.policy: 'runs:/0123abcd/model': runs:/ URIs can name any "
                          "team's run"), msg


async def test_mlflow_credentials_come_from_a_secret(cluster: Cluster) -> None:
    env = env_of(await cluster.job("JudgeTraining", "mlflow-auth", {}))
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        assert env[var] == {"secretKeyRef": {"name": "zhufu-mlflow-auth", "key": var}}
