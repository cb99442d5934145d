"""evaluate_mixtures with oracle and identity separators: exact, known scores per task."""

import numpy as np
import pytest
import soundfile as sf
import torch

from sepkit.data.manifest import ClipCache, InstructionRef, MixtureRecord, SourceRef, instruction_target, render_mixture
from sepkit.evaluation import evaluate_mixtures

SR = 8000


@pytest.fixture()
def manifest(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.wav", 0.2 * rng.standard_normal(SR).astype(np.float32), SR, subtype="FLOAT")
    record = MixtureRecord(
        id="m0",
        protocol="hsm_tss",
        split="test",
        seconds=1.0,
        sample_rate=SR,
        sources=[SourceRef("a", "a.wav", 1.0, tags=["violin"]), SourceRef("b", "b.wav", 0.5, tags=["rain"])],
        instructions=[InstructionRef("extract", "extract the violin", "violin", [0]),
                      InstructionRef("remove", "remove the rain", "rain", [0])],
    )  # fmt: skip
    return [record], ClipCache(SR, base_dir=tmp_path)


class Oracle:
    """Returns each instruction's true target: a perfect separator."""

    def __init__(self, record, cache):
        self.mixture, self.sources = render_mixture(record, cache)
        self.record = record

    def separate(self, waves, rates, query):
        index = [i.text for i in self.record.instructions].index(query)
        return [torch.from_numpy(instruction_target(self.record, self.sources, index))[None]]


class Identity:
    """Returns the mixture: no separation at all."""

    def separate(self, waves, rates, query):
        return [waves[0].clone()]


def test_oracle_scores_high_and_identity_scores_zero_improvement(manifest):
    records, cache = manifest
    oracle = evaluate_mixtures(Oracle(records[0], cache), records, cache, progress=False)
    assert oracle["count"] == {"extract": 1, "remove": 1, "all": 2}
    assert oracle["mean"]["extract"]["si_sdr"] > 80 and oracle["mean"]["remove"]["si_sdr"] > 80
    identity = evaluate_mixtures(Identity(), records, cache, progress=False)
    for task in ("extract", "remove"):
        assert abs(identity["mean"][task]["si_sdri"]) < 1e-9 and abs(identity["mean"][task]["sdri"]) < 1e-9
    # the mixture is violin + 0.5 rain: about 6 dB SDR for the violin target
    assert 4 < identity["mean"]["extract"]["sdr"] < 8
    assert [r["task"] for r in identity["rows"]] == ["extract", "remove"]
