"""Every mini recipe that ships trained weights builds with them and separates (the files load strictly)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sepkit.pipeline import build_pipeline
from sepkit.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(
    p.relative_to(REPO / "recipes").with_suffix("").as_posix()
    for p in (REPO / "recipes" / "mini").glob("*.yaml")
    if load_recipe(str(p)).checkpoint_path() is not None
)


def test_the_trained_mini_systems_are_all_here():
    trained = {"audiosep", "hsm_tss", "hsm_tss_ours_local", "lass", "sgn", "opensep", "hybrid_sep", "sgn_hsm"}
    assert {f"mini/{name}" for name in trained} <= set(SHIPPED)


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_load_and_separate(name):
    recipe = load_recipe(name)
    assert recipe.checkpoint_path().is_file(), f"{name}: its checkpoint {recipe.checkpoint_path()} is not in the repo"
    pipeline = build_pipeline(recipe).eval()
    rate = pipeline.sample_rate
    mixture = 0.1 * torch.randn(1, rate, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        (out,) = pipeline.separate([mixture], [rate], "extract a cello playing")
    assert out.shape == mixture.shape and bool(torch.isfinite(out).all())
