"""Plugin: Q-Audio (HSM-TSS sec. III-B2), a BLIP-2 Q-Former-style audio-text aligner over frozen encoders.

Registers ``qaudio`` as both a text encoder and an audio encoder (one class, ``part: audio | text
| both``; frames are the frozen AudioMAE's patch tokens, pooled the global feature G) and the
training system ``qaudio`` (ITC + ITM + ITG pretraining of the Q-Former). This module imports
neither torch nor the model code.
"""

from sepkit.hookspecs import hookimpl

# Test sizes: a 1-layer 32-d Q-Former over a tiny AudioMAE and a tiny random FLAN-T5 (stand-in tokenizer).
TINY = (
    "hidden: 32\nnum_layers: 1\nnum_heads: 4\nffn_dim: 64\nitc_dim: 16\nmax_text_tokens: 64\n"
    "audio_encoder: {name: audiomae, embed_dim: 32, depth: 1, num_heads: 4, target_frames: 128, num_mel_bins: 32}\n"
    "text_encoder: {name: flan-t5, d_model: 32, num_layers: 1, num_heads: 4, d_kv: 8, d_ff: 64, vocab_size: 512, "
    "max_length: 32}"
)
TARGET = "sepkit_qaudio.encoder:QAudioEncoder"
SUMMARY = "Q-Audio (Q-Former, 2 layers, 768, one query) over frozen AudioMAE + FLAN-T5: {role}"
TEXT_ROLE = "text-branch token states and [CLS] feature (part: text | both)"
AUDIO_ROLE = "AudioMAE patch tokens as frames, global feature G as pooled (part: audio | both)"


@hookimpl
def sepkit_register(registry):
    registry.register("text_encoder", "qaudio", TARGET, SUMMARY.format(role=TEXT_ROLE), TINY)
    registry.register("audio_encoder", "qaudio", TARGET, SUMMARY.format(role=AUDIO_ROLE), TINY)
    registry.register(
        "system",
        "qaudio",
        "sepkit_qaudio.system:QAudioPretrainingSystem",
        summary="Q-Audio pretraining of a qaudio (part: both) model: ITC + ITM (hard negatives) + ITG, "
        "frozen audio and text encoders",
    )
