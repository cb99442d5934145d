"""Plugin: codec embeddings as separation features (HSM-TSS ablation "Ours_acoustic").

Registers the audio encoder ``codec-latents`` (a codec's frame embeddings, ``CodecFrames.latents``
[B, F, G * c] at its frame rate) and the decoder ``codec-latents`` (nearest code of each codebook
group, then the codec's decoder). Both wrap any registered codec that exposes per-group codebooks
(``codec_space``: tfcodec does; encodec and mulaw are refused with a clear error).
This module imports neither torch nor the model code.
"""

from sepkit.hookspecs import hookimpl

# A small instance: the tiny TF-Codec of the tfcodec plugin's own tests (4 groups x 64 codes, 50 Hz).
TINY = (
    "codec: {name: tfcodec, channels: [4, 8, 8, 8], tcm_channels: 16, tcm_blocks: 2, latent_dim: 32, num_groups: 4, "
    "codebook_size: 64}"
)


@hookimpl
def sepkit_register(registry):
    registry.register(
        "audio_encoder",
        "codec-latents",
        "sepkit_codecfeat.encoder:CodecLatentEncoder",
        summary="a codec's frame embeddings (CodecFrames.latents: the chosen code vectors of its G groups, "
        "[B, F, G * c] at the codec frame rate; tfcodec: 1920-d at 50 Hz) for HSM-TSS Ours_acoustic",
        example=TINY,
    )
    registry.register(
        "decoder",
        "codec-latents",
        "sepkit_codecfeat.decoder:CodecLatentDecoder",
        summary="codec embeddings [B, F, G * c] -> nearest code per group of the codec's codebooks -> the codec's "
        "decoder (HSM-TSS Ours_acoustic)",
        example=TINY,
    )
