"""Attacks on another team's storage, each from team-a's custom resource (issue 17 item 1).

The install maps each namespace to its S3 prefix (default ``s3://<bucket>/<namespace>/``;
team-b has its own bucket and Secret in ``ZHUFU_STORAGE``): a URI outside the namespace's
prefix is refused naming the field, and team-b's pods get team-b's credentials.
"""

from __future__ import annotations

import pytest
from tenancy import VICTIM, Cluster, env_of

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

OUTSIDE = "is outside this namespace's storage: resources in 'team-a' read and write only " \
    "under s3://zhufu/team-a/"


async def test_output_into_another_teams_prefix_is_refused(cluster: Cluster) -> None:
    """Overwrite team-b's curated pairs."""
    msg = await cluster.refused("CurationJob", "overwrite-outputs",
                                {"outputDir": "s3://zhufu/team-b/curation"})
    assert msg == f"spec.outputDir: 's3://zhufu/team-b/curation' {OUTSIDE}", msg


async def test_planted_checkpoint_for_resume_is_refused(cluster: Cluster) -> None:
    """``resume: auto`` from a checkpoint folder the attacker planted in team-b's space (or
    the attacker writing into team-b's checkpoints)."""
    msg = await cluster.refused("GRPORun", "plant-checkpoint", {
        "checkpointDir": "s3://zhufu/team-b/checkpoints/grpo", "resume": "auto"})
    assert msg.startswith("spec.checkpointDir: 's3://zhufu/team-b/checkpoints/grpo' is "
                          "outside"), msg


async def test_reading_another_teams_model_by_uri_is_refused(cluster: Cluster) -> None:
    msg = await cluster.refused("GRPORun", "read-policy",
                                {"policy": "s3://team-b-data/models/policy"})
    assert msg.startswith("spec.policy: 's3://team-b-data/models/policy' is outside"), msg


async def test_prefix_lookalike_is_refused(cluster: Cluster) -> None:
    """``s3://zhufu/team-a-evil/…`` starts with the text ``s3://zhufu/team-a`` but is
    another namespace's prefix."""
    msg = await cluster.refused("GRPORun", "lookalike", {
        "rewards": [{"name": "judge"}], "judgeRef": "s3://zhufu/team-a-evil/judge"})
    assert msg.startswith("spec.judgeRef: 's3://zhufu/team-a-evil/judge' is outside"), msg


async def test_nested_section_uri_is_checked(cluster: Cluster) -> None:
    msg = await cluster.refused("CurationJob", "nested-uri", {
        "rewardModel": {"data": "s3://zhufu/team-b/pairs.json"}})
    assert msg.startswith("spec.rewardModel.data: 's3://zhufu/team-b/pairs.json' is "
                          "outside"), msg


async def test_own_prefix_runs(cluster: Cluster) -> None:
    job = await cluster.job("CurationJob", "own-outputs",
                            {"outputDir": "s3://zhufu/team-a/curation"})
    assert cluster.config(job)["output_dir"] == "s3://zhufu/team-a/curation"
    assert env_of(job)["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "zhufu-s3", "key": "AWS_SECRET_ACCESS_KEY"}}


async def test_each_namespace_gets_its_own_s3_credentials(cluster: Cluster) -> None:
    """team-b's pods hold team-b's keys (a Secret in team-b named in ZHUFU_STORAGE), so a
    leak in one team's pod is not every team's keys."""
    job = await cluster.job("CurationJob", "team-b-run",
                            {"queue": "q", "outputDir": "s3://team-b-data/models/cur"},
                            namespace=VICTIM)
    env = env_of(job)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[var] == {"secretKeyRef": {"name": "team-b-s3", "key": var}}
