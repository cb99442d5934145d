"""Webdataset-style tar shards: writing, reading back, and splitting over ranks and workers."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest
import soundfile
from torch.utils.data import DataLoader

from sepkit.data.manifest import ClipRecord, read_clips, write_jsonl
from sepkit.data.shards import ShardDataset, assign_shards, read_shard, sample_key, write_shards
from sepkit.errors import SepkitError


@pytest.fixture()
def manifest(tmp_path):
    """Five clips (mono and stereo, one FLAC) with ids that are not tar-safe; the last is in "val"."""
    (tmp_path / "audio").mkdir()
    clips = []
    for i in range(5):
        name = "clip3.flac" if i == 3 else f"clip.{i}.wav"
        wave = np.random.default_rng(i).standard_normal((1600 + 100 * i, 1 + i % 2)).astype(np.float32) * 0.1
        soundfile.write(str(tmp_path / "audio" / name), wave, 16000, subtype=None if i == 3 else "FLOAT")
        split = "train" if i < 4 else "val"
        clips.append(
            ClipRecord(f"c/{i}.x", f"audio/{name}", len(wave) / 16000, 16000, [f"t{i}"], [f"cap {i}"], split, {"n": i})
        )
    write_jsonl(tmp_path / "clips.jsonl", clips)
    return tmp_path / "clips.jsonl"


def test_write_and_read_back(manifest, tmp_path):
    summary = write_shards(manifest, tmp_path / "shards", shard_size=2)
    assert summary["clips"] == 5 and summary["files"] == ["shard-000000.tar", "shard-000001.tar", "shard-000002.tar"]
    with tarfile.open(tmp_path / "shards" / "shard-000000.tar") as tar:
        assert tar.getnames() == ["000000-c_0_x.json", "000000-c_0_x.wav", "000001-c_1_x.json", "000001-c_1_x.wav"]
    samples = list(ShardDataset(tmp_path / "shards", rank=0, world_size=1))
    clips = read_clips(manifest)
    assert [s["id"] for s in samples] == [c.id for c in clips]
    for sample, clip in zip(samples, clips):
        wave, sr = soundfile.read(str(manifest.parent / clip.path), dtype="float32", always_2d=True)
        np.testing.assert_array_equal(sample["wave"], wave.T)
        assert sample["sample_rate"] == sr and sample["tags"] == clip.tags and sample["provenance"] == clip.provenance
        assert sample["path"] == clip.path and sample["key"] == sample_key(clips.index(clip), clip.id)
    again = write_shards(manifest, tmp_path / "again", shard_size=2)
    assert again["bytes"] == summary["bytes"]
    first = (tmp_path / "shards" / "shard-000001.tar").read_bytes()
    assert first == (tmp_path / "again" / "shard-000001.tar").read_bytes()  # reproducible bytes
    index = json.loads((tmp_path / "shards" / "shards.json").read_text())
    assert [s["count"] for s in index["shards"]] == [2, 2, 1]


def test_split_filter_and_bad_input(manifest, tmp_path):
    write_shards(manifest, tmp_path / "shards", shard_size=2)
    assert [s["id"] for s in ShardDataset(tmp_path / "shards", split="val", rank=0, world_size=1)] == ["c/4.x"]
    with pytest.raises(SepkitError, match="no shards"):
        ShardDataset(tmp_path / "nothing")
    (tmp_path / "bad.tar").write_bytes(b"not a tar")
    with pytest.raises(SepkitError, match="not a readable tar"):
        list(read_shard(tmp_path / "bad.tar"))
    with pytest.raises(SepkitError, match="empty"):
        (tmp_path / "empty.jsonl").write_text("")
        write_shards(tmp_path / "empty.jsonl", tmp_path / "x")


def test_ranks_and_workers_read_disjoint_shards(manifest, tmp_path):
    write_shards(manifest, tmp_path / "shards", shard_size=1)  # 5 shards of one clip
    ranks = [ShardDataset(tmp_path / "shards", rank=r, world_size=2, shuffle=True, seed=4) for r in (0, 1)]
    names = [{p.name for p in d.slot_shards()} for d in ranks]
    assert not names[0] & names[1] and len(names[0] | names[1]) == 5
    ids = [[s["id"] for s in d] for d in ranks]
    assert len(ids[0]) == len(ids[1]) == 2 and not set(ids[0]) & set(ids[1])  # equalised: 2 each
    assert assign_shards(list(range(8)), rank=1, world_size=2, worker=1, num_workers=2) == [3, 7]
    workers = DataLoader(ranks[1], batch_size=None, num_workers=2)  # each worker reads its own shards
    got = [s["id"] for s in workers]
    ids_in = {p.name: [s["id"] for s in read_shard(p)] for p in ranks[0].paths}
    mine = {i for w in (0, 1) for p in ranks[1].slot_shards(w, 2) for i in ids_in[p.name]}
    theirs = {i for w in (0, 1) for p in ranks[0].slot_shards(w, 2) for i in ids_in[p.name]}
    assert len(got) == len(set(got)) == 2 and set(got) <= mine and not mine & theirs
