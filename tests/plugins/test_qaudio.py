"""The Q-Audio plugin: shapes, attention masks, hard negatives, losses, parts, checkpoints, parameter counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import yaml

from sepkit.checkpoint import save_checkpoint
from sepkit.errors import SepkitError
from sepkit.plugins import get_registry

TINY_AUDIOMAE = {"name": "audiomae", "embed_dim": 32, "depth": 1, "num_heads": 4, "target_frames": 128,
                 "num_mel_bins": 32}  # fmt: skip
TINY_T5 = {"name": "flan-t5", "d_model": 32, "num_layers": 1, "num_heads": 4, "d_kv": 8, "d_ff": 64,
           "vocab_size": 512, "max_length": 32}  # fmt: skip
TINY = {"hidden": 32, "num_layers": 2, "num_heads": 4, "ffn_dim": 64, "itc_dim": 16, "max_text_tokens": 64,
        "audio_encoder": TINY_AUDIOMAE, "text_encoder": TINY_T5}  # fmt: skip
TEXTS = ["a dog barking", "violin", "the sound of heavy rain falling on a roof"]


def build(part: str = "both", seed: int = 0, **config):
    torch.manual_seed(seed)
    return get_registry().build("audio_encoder", {"name": "qaudio", **TINY, "part": part, **config}).eval()


@pytest.fixture(scope="module")
def model():
    return build()


def waves(rows: int = 3, seconds: float = 1.0, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    wave = 0.1 * torch.randn(rows, int(16000 * seconds), generator=generator)
    lengths = torch.linspace(0.5 * wave.shape[1], wave.shape[1], rows).long()
    return wave, lengths


# --- shapes ----------------------------------------------------------------------------------
def test_shapes_of_both_roles(model):
    with torch.no_grad():
        text = model.encode_text(TEXTS)
        wave, lengths = waves()
        audio = model.encode_audio(wave, lengths)
        mae = model.audio_encoder.encode_audio(wave, lengths)
    assert model.embed_dim == 32 and text.tokens.shape[0] == 3 and text.tokens.shape[2] == 32
    assert text.pooled.shape == (3, 32) and text.mask.shape == text.tokens.shape[:2]
    assert bool((text.tokens[~text.mask] == 0).all())
    # frames are the frozen AudioMAE's tokens, unchanged; pooled is G [B, hidden]
    assert torch.equal(audio.frames, mae.frames) and torch.equal(audio.lengths, mae.lengths)
    assert audio.frame_rate == mae.frame_rate == model.frame_rate and model.representation == "audiomae_patches"
    assert model.output_dim == 32 and model.sample_rate == 16000 and audio.pooled.shape == (3, 32)
    with torch.no_grad():
        e_text, e_audio = model.embed_text(TEXTS), model.embed_audio(wave, lengths)
    assert e_text.shape == (3, 16) and e_audio.shape == (3, 16)
    assert torch.allclose(e_text.norm(dim=-1), torch.ones(3)) and torch.allclose(e_audio.norm(dim=-1), torch.ones(3))
    table = model.task_token_embeddings()
    pieces = model.text_encoder.task_token_embeddings()
    assert set(table) == {"extract", "remove"}
    assert all(table[t].shape == (pieces[t].shape[0], 32) for t in table)


def test_global_feature_ignores_audio_padding(model):
    wave, _ = waves(1, 1.0)
    lengths = torch.tensor([8000])
    padded = wave.clone()
    padded[:, 8000:] = 0.0
    with torch.no_grad():
        a = model.encode_audio(wave[:, :8000], lengths).pooled
        b = model.encode_audio(padded, lengths).pooled
    assert torch.allclose(a, b, atol=1e-5)


# --- masks -------------------------------------------------------------------------------------
def test_attention_masks_follow_blip2():
    from sepkit_qaudio.qformer import attention_mask

    text_mask = torch.tensor([[True, True, True, False]])
    uni = attention_mask("unimodal", 1, text_mask)[0]
    assert not uni[0, 1:].any() and not uni[1:, 0].any()  # query and text never see each other
    assert uni[1:4, 1:4].all() and not uni[:, 4].any()  # text sees text, nobody sees padding
    bi = attention_mask("bidirectional", 1, text_mask)[0]
    assert bi[:, :4].all() and not bi[:, 4].any()
    causal = attention_mask("causal", 1, text_mask)[0]
    assert causal[0, 0] and not causal[0, 1:].any()  # the query sees only itself
    assert causal[1:, 0].all()  # every text token sees the query
    expected = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    assert torch.equal(causal[1:4, 1:4], expected)


def _qformer_inputs(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    audio = torch.randn(2, 10, 32, generator=generator)
    rows = torch.randn(2, 5, 32, generator=generator)
    x, mask = model.qformer.text_inputs(rows, torch.ones(2, 5, dtype=torch.bool))
    return audio, x, mask


def test_query_cannot_see_text_in_itc_but_can_in_itm(model):
    qf = model.qformer
    audio, x, mask = _qformer_inputs(model)
    changed = x.clone()
    changed[:, 2:] += torch.randn(changed[:, 2:].shape)  # not a constant: LayerNorm would remove it
    with torch.no_grad():
        alone, _ = qf(audio=audio, mode="unimodal")
        q1, t1 = qf(audio=audio, text=x, text_mask=mask, mode="unimodal")
        q2, t2 = qf(audio=audio, text=changed, text_mask=mask, mode="unimodal")
        _, t_alone = qf(text=x, text_mask=mask, mode="unimodal")
        m1, _ = qf(audio=audio, text=x, text_mask=mask, mode="bidirectional")
        m2, _ = qf(audio=audio, text=changed, text_mask=mask, mode="bidirectional")
    assert torch.allclose(q1, alone, atol=1e-5) and torch.allclose(q1, q2, atol=1e-6)
    assert torch.allclose(t1, t_alone, atol=1e-5)  # and text cannot see the query
    assert not torch.allclose(m1, m2, atol=1e-4)


def test_itg_mask_is_causal(model):
    qf = model.qformer
    audio, x, mask = _qformer_inputs(model)
    changed = x.clone()
    changed[:, 4:] += torch.randn(changed[:, 4:].shape)  # text tokens 3.. (branch position 0 is [CLS])
    other_audio = audio + torch.randn(audio.shape)
    with torch.no_grad():
        q1, t1 = qf(audio=audio, text=x, text_mask=mask, mode="causal")
        q2, t2 = qf(audio=audio, text=changed, text_mask=mask, mode="causal")
        _, t3 = qf(audio=other_audio, text=x, text_mask=mask, mode="causal")
    assert torch.allclose(q1, q2, atol=1e-6) and torch.allclose(t1[:, :4], t2[:, :4], atol=1e-5)
    assert not torch.allclose(t1[:, 4:], t2[:, 4:], atol=1e-4)
    assert (t1 - t3).abs().max() > 1e-6  # text sees the audio through the query (small at init scale)


# --- losses ------------------------------------------------------------------------------------
def test_hard_negatives_exclude_positives():
    from sepkit_qaudio.losses import positive_pairs, sample_hard_negatives

    texts = ["dog", "rain", "dog", "violin", "piano"]
    positives = positive_pairs(texts)
    assert positives[0, 2] and positives[2, 0] and not positives[0, 1]
    generator = torch.Generator().manual_seed(0)
    sim = torch.randn(5, 5, generator=generator)
    sim[0, 2] = sim[2, 0] = 50.0  # the most similar candidate is a positive: still never drawn
    drawn = set()
    for _ in range(200):
        index, valid = sample_hard_negatives(sim, positives, generator)
        assert valid.all()
        assert not positives[torch.arange(5), index].any()
        drawn |= set(index.tolist())
    assert drawn == set(range(5))
    index, valid = sample_hard_negatives(torch.zeros(2, 2), positive_pairs(["a", "a"]))
    assert not valid.any()


def test_itc_loss_is_blip2_cross_entropy_with_distinct_texts():
    from sepkit_qaudio.losses import itc_loss, positive_pairs

    sim = torch.randn(4, 4, generator=torch.Generator().manual_seed(1))
    ours = itc_loss(sim, positive_pairs(["a", "b", "c", "d"]), 0.1).mean()
    target = torch.arange(4)
    blip2 = F.cross_entropy(sim, target, label_smoothing=0.1) + F.cross_entropy(sim.T, target, label_smoothing=0.1)
    assert torch.allclose(ours, blip2 / 2, atol=1e-6)


def write_recipe(tmp_path, **system):
    recipe = {
        "name": "qaudio-test",
        "model": {"audio_encoder": {"name": "qaudio", **TINY}},
        "train": {"system": {"name": "qaudio", **system}, "steps": 1, "batch_size": 4},
        "data": {"sample_rate": 16000},
    }
    path = tmp_path / "qaudio.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def build_system(tmp_path, **system):
    from sepkit.recipe import load_recipe
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system as build

    recipe = load_recipe(str(write_recipe(tmp_path, **system)))
    torch.manual_seed(0)
    return build(recipe, load_train_config(recipe))


def batch(rows: int = 4, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(16000) / 16000
    target = torch.stack([0.3 * torch.sin(2 * torch.pi * (200 + 300 * i) * t) for i in range(rows)])
    mixture = target + 0.05 * torch.randn(rows, 16000, generator=generator)
    descriptions = ["dog barking", "violin", "heavy rain", "piano", "dog barking", "guitar"][:rows]
    return {"mixture": mixture, "target": target, "lengths": torch.full((rows,), 16000),
            "description": descriptions, "task": torch.tensor([0, 0, 1, 0, 0, 1][:rows]),
            "id": [str(i) for i in range(rows)]}  # fmt: skip


def test_losses_are_finite_and_decrease(tmp_path):
    system = build_system(tmp_path, pairs="all")
    assert not any(p.requires_grad for p in system.qaudio.audio_encoder.parameters())
    assert not any(p.requires_grad for p in system.qaudio.text_encoder.parameters())
    data = batch()
    with torch.no_grad():
        system.eval()
        before = system.validation_step(data)
    assert set(before) == {"loss", "itc", "itm", "itg", "r1"}
    assert all(v.shape == (4,) and torch.isfinite(v).all() for v in before.values())
    system.train()
    optimizer = torch.optim.AdamW(system.parameters_for("main"), lr=3e-3)
    losses = []
    for step in range(12):
        out = system.training_step(data, step)
        assert all(torch.isfinite(v) for v in out.values())
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["loss"].detach()))
    assert sum(losses[-3:]) < 0.8 * sum(losses[:3]), losses
    with torch.no_grad():
        system.eval()
        after = system.validation_step(data)
    assert float(after["loss"].mean()) < float(before["loss"].mean())
    assert float(after["itg"].mean()) < float(before["itg"].mean())


def test_pairs_extract_rows_only_and_remove_rows_as_described_source():
    from sepkit_qaudio.system import QAudioPretrainingSystem

    data = batch()
    wave, lengths, texts = QAudioPretrainingSystem.pairs(data, use_all=False)
    assert texts == ["dog barking", "violin", "piano"] and torch.equal(wave, data["target"][[0, 1, 3]])
    wave, _, texts = QAudioPretrainingSystem.pairs(data, use_all=True)
    assert texts == data["description"]
    assert torch.equal(wave[2], data["mixture"][2] - data["target"][2])


def test_itg_targets_are_caption_pieces_then_eos(tmp_path):
    system = build_system(tmp_path)
    tokenizer, _ = system.qaudio.vocabulary()
    ids, labels, mask = system.caption_ids(["dog barking", "violin"], torch.device("cpu"))
    dog = tokenizer("dog barking", add_special_tokens=False)["input_ids"]
    assert ids[0, : len(dog)].tolist() == dog and ids[0, len(dog)] == tokenizer.eos_token_id
    assert mask.sum(1).tolist() == [len(dog) + 1, 2] and (labels[~mask] == -100).all()


# --- parts and checkpoints -------------------------------------------------------------------------
def test_parts_hold_only_their_side():
    from sepkit_qaudio.qformer import qformer_parameter_count

    audio, text = build("audio"), build("text")
    assert not hasattr(audio, "text_encoder") and not hasattr(audio.qformer, "text_proj")
    assert not hasattr(text, "audio_encoder") and not hasattr(text.qformer, "query_tokens")
    assert not hasattr(audio.qformer.layers[0], "text_ffn") and not hasattr(text.qformer.layers[0], "cross_attention")
    sizes = {"hidden": 32, "num_layers": 2, "ffn_dim": 64, "audio_dim": 32, "text_dim": 32, "itc_dim": 16,
             "max_text_tokens": 64}  # fmt: skip
    both = build("both")
    for part, module in (("audio", audio), ("text", text), ("both", both)):
        assert sum(p.numel() for p in module.qformer.parameters()) == qformer_parameter_count(part, **sizes)
    shared = {k for k in audio.qformer.state_dict()} & {k for k in text.qformer.state_dict()}
    assert shared == {k for k in both.qformer.state_dict() if k.startswith("embed_norm") or ".self_attention." in k}
    with pytest.raises(SepkitError, match="part: text has no audio side"):
        text.encode_audio(*waves())
    with pytest.raises(SepkitError, match="part: audio has no text side"):
        audio.embed_text(["a dog"])
    with pytest.raises(SepkitError, match="part must be one of"):
        build("neither")


def test_system_checkpoint_loads_into_each_part(tmp_path):
    system = build_system(tmp_path)
    with torch.no_grad():
        for p in system.qaudio.qformer.parameters():
            p.add_(0.01 * torch.randn_like(p))
    state = system.checkpoint_state()
    assert any(k.startswith("heads.") for k in state) and all(k.startswith(("qformer.", "heads.")) for k in state)
    path = tmp_path / "best.ckpt"
    save_checkpoint(path, {}, state, {})
    trained = system.qaudio.qformer.state_dict()
    for part in ("audio", "text", "both"):
        model = build(part, seed=1, checkpoint=str(path))
        for key, value in model.qformer.state_dict().items():
            assert torch.equal(value, trained[key]), (part, key)
    full = build("both", seed=0, checkpoint=str(path))  # seed 0: the same random frozen encoders as the system's
    system.eval()
    wave, lengths = waves()
    with torch.no_grad():
        assert torch.allclose(full.embed_text(TEXTS), system.qaudio.embed_text(TEXTS), atol=1e-6)
        assert torch.allclose(full.embed_audio(wave, lengths), system.qaudio.embed_audio(wave, lengths), atol=1e-6)


def test_bad_checkpoint_keys_are_named(tmp_path):
    system = build_system(tmp_path)
    state = dict(system.checkpoint_state())
    state["qformer.bogus.weight"] = torch.zeros(1)
    state["separator.x"] = torch.zeros(1)
    del state["qformer.layers.1.text_ffn.fc1.weight"]
    path = tmp_path / "bad.ckpt"
    save_checkpoint(path, {}, state, {})
    with pytest.raises(SepkitError) as caught:
        build("both", checkpoint=str(path))
    message = str(caught.value)
    assert "qformer.bogus.weight" in message and "separator.x" in message
    assert "missing keys: qformer.layers.1.text_ffn.fc1.weight" in message
    # a part: audio model does not need the text FFN, so only the unknown keys are reported
    with pytest.raises(SepkitError, match="unexpected keys") as caught:
        build("audio", checkpoint=str(path))
    assert "missing" not in str(caught.value)
    with pytest.raises(SepkitError, match="not found"):
        build("both", checkpoint=str(tmp_path / "nope.ckpt"))
    with pytest.raises(SepkitError, match="mis-shaped"):
        build("both", checkpoint=str(_other_size(tmp_path, system)))


def _other_size(tmp_path, system):
    state = dict(system.checkpoint_state())
    state["qformer.audio_proj.weight"] = torch.zeros(8, 32)
    path = tmp_path / "shape.ckpt"
    save_checkpoint(path, {}, state, {})
    return path


def test_system_needs_a_qaudio_model_with_both_parts(tmp_path):
    from sepkit.recipe import load_recipe
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system as build

    path = write_recipe(tmp_path)
    recipe = load_recipe(str(path), ["model.audio_encoder.part=audio"])
    with pytest.raises(SepkitError, match="part: both"):
        build(recipe, load_train_config(recipe))
    recipe = load_recipe(str(path), ["model.audio_encoder={name: stft}"])
    with pytest.raises(SepkitError, match="name: qaudio"):
        build(recipe, load_train_config(recipe))


@pytest.mark.slow
def test_full_size_qformer_parameter_count():
    """The paper's Q-Former (2 layers, 768, 12 heads, FFN 3072, ITC 256) over 768-d AudioMAE and FLAN-T5-base."""
    from sepkit_qaudio.qformer import QFormer, qformer_parameter_count

    counts = {}
    for part in ("audio", "text", "both"):
        model = QFormer(part=part)
        counts[part] = sum(p.numel() for p in model.parameters())
        assert counts[part] == qformer_parameter_count(part)
    print(f"\nfull-size Q-Former parameters: {counts}")
    assert counts == {"audio": 19_104_256, "text": 15_949_312, "both": 30_324_224}


@pytest.mark.slow
def test_tiny_recipe_trains_and_its_checkpoint_evaluates(tmp_path, capsys):
    """``sepkit train tiny/train_qaudio`` end to end on sepkit-mini, then ``sepkit evaluate`` on its best.ckpt."""
    import json
    from pathlib import Path

    from sepkit.cli import main
    from sepkit.recipe import load_recipe
    from sepkit.train.engine import Trainer

    repo = Path(__file__).resolve().parents[2]
    if not (repo / "data" / "mini" / "train.jsonl").is_file():
        pytest.skip("sepkit-mini is not built (make mini-data)")
    recipe = load_recipe(str(repo / "recipes" / "tiny" / "train_qaudio.yaml"))
    Trainer(recipe, out_dir=tmp_path / "run", device="cpu", progress=False).fit()
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [x for x in lines if x["split"] == "val"]
    assert val and all({"loss", "itc", "itm", "itg", "r1"} <= set(x) for x in val)
    best = tmp_path / "run" / "checkpoints" / "best.ckpt"
    code = main(["evaluate", str(repo / "recipes" / "tiny" / "train_qaudio.yaml"), "--manifest",
                 str(repo / "data" / "mini" / "test.jsonl"), "--ckpt", str(best), "--limit", "12", "--json",
                 "--device", "cpu", "--no-progress"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_clips"] == 12 and 0.0 <= result["t2a_r1"] <= 1.0
