"""Q-Audio passes the text-encoder and audio-encoder contracts (tiny Q-Former over a tiny AudioMAE and FLAN-T5)."""

from sepkit.testing import AudioEncoderContract, SystemContract, TextEncoderContract

TINY = (
    "hidden: 32\nnum_layers: 1\nnum_heads: 4\nffn_dim: 64\nitc_dim: 16\nmax_text_tokens: 64\n"
    "audio_encoder: {name: audiomae, embed_dim: 32, depth: 1, num_heads: 4, target_frames: 128, num_mel_bins: 32}\n"
    "text_encoder: {name: flan-t5, d_model: 32, num_layers: 1, num_heads: 4, d_kv: 8, d_ff: 64, vocab_size: 512, "
    "max_length: 32}"
)


class TestQAudioText(TextEncoderContract):
    name = "qaudio"
    config = TINY + "\npart: text"


class TestQAudioAudio(AudioEncoderContract):
    name = "qaudio"
    config = TINY + "\npart: audio"


class TestQAudioBothAsText(TextEncoderContract):
    name = "qaudio"
    config = TINY


class TestQAudioBothAsAudio(AudioEncoderContract):
    name = "qaudio"
    config = TINY


class TestQAudioSystem(SystemContract):
    name = "qaudio"
