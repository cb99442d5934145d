"""The HSM-TSS plugin's components pass the contract suite a third-party plugin runs."""

from __future__ import annotations

import torch

from sepkit.interfaces import AudioFeatures
from sepkit.testing import SeparatorContract, SystemContract

STAGE = "hidden: 32\ndepth: 2\nheads: 4"
WIDTHS = "input_dim: 32\nquery_dim: 24\nglobal_dim: 16"


class GlobalFeatureContract(SeparatorContract):
    """The contract's random mixture features, plus G_mix in ``pooled`` [3, global_dim] (what qaudio adds)."""

    def make_mixture_features(self, component) -> AudioFeatures:
        features = super().make_mixture_features(component)
        g = torch.Generator().manual_seed(2)
        features.pooled = torch.randn(features.frames.shape[0], component.global_dim, generator=g)
        return features


class TestHSMLocal(GlobalFeatureContract):
    """hsm-local with its global stage (the full HSM-TSS separator)."""

    name = "hsm-local"
    config = f"{WIDTHS}\n{STAGE}\nnum_patches: 64\nglobal_stage: {{name: hsm-global, {STAGE.replace(chr(10), ', ')}}}"


class TestHSMLocalOnly(SeparatorContract):
    """hsm-local without a global stage (the paper's Ours_local): needs no pooled feature."""

    name = "hsm-local"
    config = f"{WIDTHS}\n{STAGE}\nnum_patches: 64"


class TestHSMGlobal(GlobalFeatureContract):
    name = "hsm-global"
    config = f"{WIDTHS}\n{STAGE}"


class TestHSMSystem(SystemContract):
    name = "hsm"
