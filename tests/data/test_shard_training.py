"""Training data read from tar shards equals the same clips read from files."""

import numpy as np
import pytest
import soundfile as sf
import torch

from sepkit.data.dataset import dataset_from_config
from sepkit.data.manifest import ClipRecord, write_jsonl
from sepkit.data.shard_index import ShardClipCache, ShardIndex
from sepkit.data.shards import write_shards
from sepkit.errors import SepkitError
from sepkit.train.config import SplitConfig

SR = 16000
TAGS = ["violin", "rain", "siren", "piano", "wind", "flute"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("shard-corpus")
    rng = np.random.default_rng(0)
    clips = []
    for i, tag in enumerate(TAGS):
        t = np.arange(SR) / SR
        wave = (0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.05 * rng.standard_normal(SR)).astype(np.float32)
        sf.write(root / f"{tag}.wav", wave, SR, subtype="FLOAT")
        clips.append(ClipRecord(f"{tag}-0", f"{tag}.wav", 1.0, SR, [tag], [f"a {tag}", tag, f"{tag} sound"], "train"))
    write_jsonl(root / "train.jsonl", clips)
    write_shards(root / "train.jsonl", root / "shards", shard_size=4)
    return root


def test_index_reads_clips_in_place(corpus):
    index = ShardIndex(corpus / "shards")
    assert sorted(c.id for c in index.clips) == sorted(f"{t}-0" for t in TAGS)
    assert all("#" in c.path and c.path.startswith("shard-") for c in index.clips)
    cache = ShardClipCache(index, SR)
    for clip in index.clips:
        original, _ = sf.read(corpus / f"{clip.tags[0]}.wav", dtype="float32")
        np.testing.assert_array_equal(cache.load(clip.path), original)


def test_dataset_from_shards_equals_dataset_from_files(corpus):
    common = dict(protocol="dcase", length=8, seconds=1.0)
    from_files = dataset_from_config(SplitConfig(clips=str(corpus / "train.jsonl"), **common), "train", SR, None, 5)
    from_shards = dataset_from_config(SplitConfig(shards=str(corpus / "shards"), **common), "train", SR, None, 5)
    assert len(from_files) == len(from_shards) == 8
    for i in range(8):
        a, b = from_files[i], from_shards[i]
        assert a["description"] == b["description"] and a["task"] == b["task"]
        torch.testing.assert_close(torch.as_tensor(a["mixture"]), torch.as_tensor(b["mixture"]))
        torch.testing.assert_close(torch.as_tensor(a["target"]), torch.as_tensor(b["target"]))


def test_bad_shard_folder(tmp_path):
    with pytest.raises(SepkitError, match="no shards"):
        ShardIndex(tmp_path)
    (tmp_path / "shard-000000.tar").write_bytes(b"not a tar file at all" * 50)
    with pytest.raises(SepkitError, match="not readable"):
        ShardIndex(tmp_path)
