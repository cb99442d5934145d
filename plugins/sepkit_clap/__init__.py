"""Plugin: CLAP (contrastive language-audio pretraining) as a text encoder and an audio encoder.

Two implementations of the same model, each registered under both kinds (one class serves both
roles, as ``sepkit.interfaces`` describes):

- ``clap-laion``: LAION-CLAP through the ``laion-clap`` package (HTSAT audio branch, RoBERTa text
  branch), loading LAION ``.pt`` checkpoints and the query encoder of AudioSep's checkpoint;
- ``clap-hf``: transformers' ``ClapModel`` from a local directory.

``clap-laion-patches`` (audio encoder only) is the same LAION-CLAP audio branch giving HTSAT's
last-layer patch tokens before pooling instead of clip embeddings (HSM-TSS's Ours_local_CLAP).

Both never download: RoBERTa and the tokenizer come from a local directory, or random weights are
built from RoBERTa-base's configuration. This module imports neither torch nor laion_clap.
"""

from sepkit.hookspecs import hookimpl

# Test sizes. laion_clap fixes the text projection's input at 768 (RoBERTa-base's width) and
# HTSAT's sizes per amodel, so its smallest instance is HTSAT-tiny with a one-layer RoBERTa.
TINY_LAION = "amodel: HTSAT-tiny\nroberta: {num_hidden_layers: 1, intermediate_size: 64, vocab_size: 300}"
TINY_HF = (
    "text_config: {num_hidden_layers: 1, hidden_size: 32, num_attention_heads: 2, intermediate_size: 64, "
    "vocab_size: 300}\n"
    "audio_config: {depths: [1, 1, 1, 1], patch_embeds_hidden_size: 8, hidden_size: 64, "
    "num_attention_heads: [1, 1, 2, 2]}"
)

LAION_SUMMARY = (
    "LAION-CLAP (laion-clap package; HTSAT + RoBERTa, 512-d): {role}; reads LAION .pt and AudioSep's query_encoder"
)
HF_SUMMARY = "CLAP through transformers' ClapModel from a local directory (512-d): {role}"
TEXT_ROLE = "projected, normalised text embedding (pooled) and projected token states"
AUDIO_ROLE = "one embedding per 10 s window at 48 kHz (frames), clip embedding (pooled)"
TINY_PATCHES = "amodel: HTSAT-tiny"
PATCHES_SUMMARY = (
    "LAION-CLAP's HTSAT last-layer patch tokens before pooling (HSM-TSS Ours_local_CLAP): time-major, 2 mel bands x "
    "32 steps per 10 s window, 6.4 tokens/s, 1024-d (HTSAT-base); reads LAION .pt and AudioSep's query_encoder"
)


@hookimpl
def sepkit_register(registry):
    laion, hf = "sepkit_clap.laion_encoder:LaionClapEncoder", "sepkit_clap.hf_encoder:HFClapEncoder"
    registry.register("text_encoder", "clap-laion", laion, LAION_SUMMARY.format(role=TEXT_ROLE), TINY_LAION)
    registry.register("audio_encoder", "clap-laion", laion, LAION_SUMMARY.format(role=AUDIO_ROLE), TINY_LAION)
    patches = "sepkit_clap.patches:ClapPatchEncoder"
    registry.register("audio_encoder", "clap-laion-patches", patches, PATCHES_SUMMARY, TINY_PATCHES)
    registry.register("text_encoder", "clap-hf", hf, HF_SUMMARY.format(role=TEXT_ROLE), TINY_HF)
    registry.register("audio_encoder", "clap-hf", hf, HF_SUMMARY.format(role=AUDIO_ROLE), TINY_HF)
