"""Plugin: HSM-TSS's two non-autoregressive separation stages and their training system.

Registers the separators ``hsm-local`` (the local-semantic stage H2 over AudioMAE patch tokens,
with an optional ``global_stage`` sub-section) and ``hsm-global`` (the global-semantic stage H1
over the Q-Audio feature; a building block, also usable alone), and the training system ``hsm``
(``stage: global | local | joint``). This module imports neither torch nor the model code.
"""

from sepkit.hookspecs import hookimpl

TINY_GLOBAL = "input_dim: 32\nquery_dim: 24\nglobal_dim: 16\nhidden: 32\ndepth: 2\nheads: 4"
TINY_LOCAL = (
    "input_dim: 32\nquery_dim: 24\nglobal_dim: 16\nhidden: 32\ndepth: 2\nheads: 4\nnum_patches: 64\n"
    "global_stage: {name: hsm-global, hidden: 32, depth: 2, heads: 4}"
)


@hookimpl
def sepkit_register(registry):
    registry.register(
        "separator",
        "hsm-local",
        "sepkit_hsm.local_stage:LocalSeparator",
        summary="HSM-TSS local-semantic separation: 12-layer NAR transformer over AudioMAE patch tokens with "
        "[G, caption, task] tokens in context; optional global_stage (hsm-global) predicts G from G_mix",
        example=TINY_LOCAL,
    )
    registry.register(
        "separator",
        "hsm-global",
        "sepkit_hsm.global_stage:GlobalSeparator",
        summary="HSM-TSS global-semantic separation: 6-layer NAR transformer, [G_mix, caption, task, output "
        "token] -> target global feature G_hat (mixture's AudioFeatures.pooled in, one frame out)",
        example=TINY_GLOBAL,
    )
    registry.register(
        "system",
        "hsm",
        "sepkit_hsm.system:HSMSystem",
        summary="HSM-TSS separation training over frozen text/audio encoders: stage global (1 - cos + L1 to the "
        "target's global feature), local (L1 to the target's patch tokens given G_tgt) or joint (switcher p_gt 0.1)",
    )
