"""The three EnCodec / TF-Codec codec plugins pass the codec contract (tiny configs, random weights)."""

from sepkit.testing import CodecContract


class TestHFEncodec(CodecContract):
    name = "encodec"
    config = "hidden_size: 16\nnum_filters: 4\nupsampling_ratios: [4, 4, 4]\nnum_lstm_layers: 1\ncodebook_size: 64"


class TestAudiocraftEncodec(CodecContract):
    name = "audiocraft-encodec"
    config = (
        "preset: encodec_base_causal\nsample_rate: 16000\nn_filters: 4\nratios: [4, 4, 4]\ndimension: 16\n"
        "lstm: 1\nn_q: 4\nbins: 64\nnum_codebooks: 4"
    )


class TestTFCodec(CodecContract):
    name = "tfcodec"
    config = "channels: [4, 8, 8, 8]\ntcm_channels: 16\ntcm_blocks: 2\nlatent_dim: 32\nnum_groups: 4\ncodebook_size: 64"
