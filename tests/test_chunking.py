import pytest
import torch

from sepkit.chunking import gather_chunks, overlap_add, plan_chunks


def test_short_row_is_one_chunk():
    assert [(c.start, c.length) for c in plan_chunks([50], chunk=100, overlap=10)] == [(0, 50)]


def test_chunks_cover_row_with_overlap():
    chunks = plan_chunks([250], chunk=100, overlap=20)
    assert [(c.start, c.length) for c in chunks] == [(0, 100), (80, 100), (160, 90)]
    assert chunks[-1].start + chunks[-1].length == 250


def test_chunk_must_exceed_twice_overlap():
    with pytest.raises(ValueError):
        plan_chunks([10], chunk=20, overlap=10)


@pytest.mark.parametrize("length", [1, 99, 100, 101, 257, 1000])
def test_identity_roundtrip(length):
    torch.manual_seed(0)
    rows = [torch.randn(length), torch.randn(length // 2 + 1)]
    chunks = plan_chunks([r.numel() for r in rows], chunk=100, overlap=16)
    batch, lengths = gather_chunks(rows, chunks)
    assert batch.shape == (len(chunks), max(c.length for c in chunks))
    assert lengths.tolist() == [c.length for c in chunks]
    out = overlap_add(batch, chunks, [r.numel() for r in rows], overlap=16)
    for r, o in zip(rows, out):
        torch.testing.assert_close(o, r)


def test_crossfade_blends_disagreeing_chunks():
    # chunk outputs of 0 then 1: the overlap region must ramp from 0 to 1, not jump
    chunks = plan_chunks([180], chunk=100, overlap=20)
    outputs = torch.stack([torch.zeros(100), torch.ones(100)])
    (row,) = overlap_add(outputs, chunks, [180], overlap=20)
    assert torch.all(row[:80] == 0) and torch.all(row[100:] == 1)
    ramp = row[80:100]
    assert torch.all(ramp[1:] > ramp[:-1]) and 0 < ramp[0] < 0.1 and 0.9 < ramp[-1] < 1
