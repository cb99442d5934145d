"""sepkit.waveforms: fitting decoded audio to lengths."""

import torch

from sepkit.waveforms import fit_length, keep_valid_duration


def test_fit_length_trims_and_pads():
    wave = torch.arange(1.0, 6.0)[None]
    assert fit_length(wave, 3).tolist() == [[1.0, 2.0, 3.0]]
    assert fit_length(wave, 7).tolist() == [[1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0]]


def test_keep_valid_duration_silences_each_rows_padding():
    wave = torch.ones(2, 100)  # 100 samples at 100 Hz = 1 s
    lengths = torch.tensor([10, 5])  # frames at 20 frames/s: 0.5 s and 0.25 s
    out = keep_valid_duration(wave, lengths, frame_rate=20.0, sample_rate=100)
    assert out.sum(-1).tolist() == [50.0, 25.0] and out.shape == (2, 100)
    assert keep_valid_duration(wave, lengths, 20.0, 100, num_samples=120).shape == (2, 120)
