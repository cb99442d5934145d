"""The sgn plugin (class tokens, one mask per class, text query -> nearest class name) and the
bss_sir / bss_sar metrics SGN is evaluated with."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import yaml
from sepkit_sgn import TINY_SGN

from sepkit.errors import SepkitError
from sepkit.interfaces import AudioFeatures, TextEmbedding
from sepkit.plugins import get_registry
from sepkit.recipe import load_recipe, resolve_components
from sepkit.testing import SystemContract

TINY = yaml.safe_load(TINY_SGN)  # 3 classes, class names embedded by a tiny random BERT (16-d)


def sgn(**options):
    return get_registry().build("separator", {"name": "sgn", **TINY, **options}).eval()


def frames(batch=2, count=40, bins=129, seed=0) -> AudioFeatures:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, count, bins, generator=g, dtype=torch.complex64)
    return AudioFeatures(x, torch.tensor([count, count - 13, count - 5][:batch]), 50.0)


def query(pooled: torch.Tensor) -> TextEmbedding:
    return TextEmbedding(pooled[:, None], torch.ones(pooled.shape[0], 1, dtype=torch.bool), pooled)


def test_query_picks_the_nearest_class_and_its_mask():
    sep = sgn()
    mix = frames(batch=3)
    names = sep.class_embeddings  # [3, 16], unit norm
    wanted = torch.tensor([2, 0, 1])
    q = query(3.0 * names[wanted] + 0.01)  # scaled: cosine, not dot product, decides
    assert torch.equal(sep.query_classes(q), wanted)
    with torch.no_grad():
        every = sep.separate_all(mix)  # [3, C, T, bins]
        one = sep.separate(mix, q, torch.zeros(3, dtype=torch.long)).frames
    assert every.shape == (3, 3, 40, 129)
    assert torch.allclose(one, every[torch.arange(3), wanted])


def test_every_class_gets_a_ratio_mask_in_one_pass():
    sep = sgn()
    mix = frames()
    with torch.no_grad():
        every = sep.separate_all(mix)
    ratio = every / mix.frames[:, None]
    assert ratio.imag.abs().max() < 1e-5
    assert (ratio.real > 0).all() and (ratio.real < 1).all()
    assert not torch.allclose(ratio[:, 0], ratio[:, 1])  # class tokens give different masks


def test_number_of_classes_is_a_config_value():
    sep = sgn(class_names=["violin", "cello", "flute", "tuba", "harp"])
    with torch.no_grad():
        assert sep.separate_all(frames()).shape[1] == 5


def test_class_name_embeddings_do_not_depend_on_the_torch_seed():
    torch.manual_seed(1)
    a = sgn().class_embeddings
    torch.manual_seed(2)
    assert torch.equal(a, sgn().class_embeddings)


def test_errors_name_the_problem():
    with pytest.raises(SepkitError, match="class_text_encoder"):
        sgn(class_text_encoder={})
    with pytest.raises(SepkitError, match="16-d"):
        sgn(query_dim=24)
    with pytest.raises(SepkitError, match="distinct"):
        sgn(class_names=["violin", "violin"])


def test_minilm_maps_captions_to_their_instrument():
    """The mini recipe's setting: sepkit-mini captions against its 21 instrument names with MiniLM."""
    recipe = load_recipe("recipes/mini/sgn.yaml")
    names = list(recipe.section("separator").class_names)
    from sepkit_sgn.classes import class_name_embeddings, nearest_class

    section = {"name": "minilm", "max_length": 32}
    table = class_name_embeddings(get_registry(), section, names, "{}", 384)
    encoder = get_registry().build("text_encoder", section).eval()
    captions = {"a cello playing a melody": "cello", "someone playing the trumpet": "trumpet",
                "xylophone music": "xylophone", "drum kit": "drum kit"}  # fmt: skip
    with torch.no_grad():
        picked = nearest_class(encoder.encode_text(list(captions)).pooled, table)
    assert [names[i] for i in picked] == list(captions.values())


def test_recipes_resolve():
    for name in ("recipes/sgn.yaml", "recipes/mini/sgn.yaml"):
        resolve_components(load_recipe(name), get_registry())
    assert len(load_recipe("recipes/mini/sgn.yaml").section("separator").class_names) == 21


# --- bss_sir / bss_sar ----------------------------------------------------------------------
def bss_eval_reference(refs: np.ndarray, est: np.ndarray, taps: int) -> tuple[float, float, float]:
    """mir_eval's bss_eval_sources decomposition of ``est`` as source 0, by direct least squares.

    refs [K, T], est [T]: s = ref 0; P_j / P_all = projections of est (zero-padded by taps - 1) on the
    delayed copies of ref 0 / of every reference; SDR, SIR, SAR as mir_eval's _bss_source_crit
    (s_filt = P_j est, e_interf = P_all est - P_j est, e_artif = est - P_all est).
    """

    def delayed(ref):
        return np.stack([np.concatenate([np.zeros(d), ref, np.zeros(taps - 1 - d)]) for d in range(taps)], 1)

    target = np.concatenate([est, np.zeros(taps - 1)])

    def project(basis):
        coef, *_ = np.linalg.lstsq(basis, target, rcond=None)
        return basis @ coef

    p_j = project(delayed(refs[0]))
    p_all = project(np.concatenate([delayed(r) for r in refs], 1))
    e_interf, e_artif = p_all - p_j, target - p_all

    def db(num, den):
        return 10 * np.log10(np.sum(num**2) / np.sum(den**2))

    return db(p_j, e_interf + e_artif), db(p_j, e_interf), db(p_all, e_artif)


def signals(seed=0, n=1200):
    g = torch.Generator().manual_seed(seed)
    ref = torch.randn(2, n, generator=g).cumsum(-1) * 0.01  # coloured, so the filter matters
    other = torch.randn(2, n, generator=g) * 0.1
    est = ref + 0.3 * other + 0.02 * torch.randn(2, n, generator=g)
    return est, ref, ref + other


@pytest.mark.parametrize("name,index", [("bss_sir", 1), ("bss_sar", 2)])
def test_bss_metrics_match_bss_eval(name, index):
    est, ref, mix = signals()
    taps = 16
    metric = get_registry().build("metric", {"name": name, "filter_length": taps})
    scores = metric.score(est, ref, 16000, mix)
    if importlib.util.find_spec("mir_eval") is not None:
        import mir_eval

        for row in range(2):
            refs = np.stack([ref[row], mix[row] - ref[row]]).astype(np.float64)
            ests = np.stack([est[row], mix[row] - est[row]]).astype(np.float64)
            expected = mir_eval.separation.bss_eval_sources(refs, ests, compute_permutation=False)[index][0]
            assert scores[row].item() == pytest.approx(expected, abs=0.05)
    for row in range(2):  # mir_eval is not a dependency: the same decomposition by direct least squares
        refs = np.stack([ref[row], mix[row] - ref[row]]).astype(np.float64)
        expected = bss_eval_reference(refs, est[row].double().numpy(), taps)[index]
        assert scores[row].item() == pytest.approx(expected, abs=0.05)


def test_bss_metrics_agree_with_fast_bss_eval_sources():
    import fast_bss_eval

    est, ref, mix = signals(seed=1)
    refs = torch.stack((ref, mix - ref), 1).double()
    ests = torch.stack((est, mix - est), 1).double()
    _, sir, sar = fast_bss_eval.bss_eval_sources(refs, ests, filter_length=512, compute_permutation=False)
    registry = get_registry()
    assert np.allclose(registry.build("metric", {"name": "bss_sir"}).score(est, ref, 16000, mix), sir[:, 0])
    assert np.allclose(registry.build("metric", {"name": "bss_sar"}).score(est, ref, 16000, mix), sar[:, 0])


def test_less_interference_raises_sir():
    est, ref, mix = signals(seed=2)
    metric = get_registry().build("metric", {"name": "bss_sir", "filter_length": 32})
    cleaner = ref + 0.5 * (est - ref)
    assert (metric.score(cleaner, ref, 16000, mix) > metric.score(est, ref, 16000, mix)).all()


def test_bss_metrics_need_the_mixture():
    est, ref, _ = signals()
    with pytest.raises(SepkitError, match="mixture"):
        get_registry().build("metric", {"name": "bss_sar"}).score(est, ref, 16000)


# --- the sgn training system: every source through its class token + the class-token loss ----------------
TINY_SYSTEM_RECIPE = """
name: tiny-sgn-sources
model:
  text_encoder: {name: bert, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32,
                 vocab_size: 300, freeze: true}
  audio_encoder: {name: stft, n_fft: 254, hop_length: 64, sample_rate: 8000}
  separator:
    name: sgn
    class_names: [violin, cello, flute]
    class_text_encoder: ${model.text_encoder}
    base_channels: 4
    channel_multipliers: [1, 2, 4]
    mask_channels: 4
    embed_dim: 16
    num_layers: 1
    num_heads: 2
    presence_head: true
  decoder: {name: istft, n_fft: 254, hop_length: 64, sample_rate: 8000}
train: {system: {name: sgn, class_weight: 0.5}, loss: l1, val_metric: si_sdri}
"""


def sgn_system(tmp_path, *overrides):
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system

    path = tmp_path / "tiny_sgn_sources.yaml"
    path.write_text(TINY_SYSTEM_RECIPE)
    recipe = load_recipe(str(path), list(overrides))
    torch.manual_seed(0)
    return build_system(recipe, load_train_config(recipe), get_registry())


def tone_example(labels, freqs, n=4000, name="mix"):
    """An example as the datasets give it with sources: true (tones of ``freqs`` Hz at 8 kHz)."""
    t = np.arange(n) / 8000
    sources = np.stack([0.3 * np.sin(2 * np.pi * f * t + k) for k, f in enumerate(freqs)]).astype(np.float32)
    return {"mixture": sources.sum(0), "target": sources[0], "description": labels[0], "task": 0, "length": n,
            "id": name, "sources": sources, "source_labels": list(labels)}  # fmt: skip


def tone_batch(short=3000):
    from sepkit.data.dataset import collate_mixtures

    two = tone_example(["violin", "Cello"], [220, 660], n=short, name="two")  # a padded source slot, shorter
    three = tone_example(["flute", "violin", "cello"], [1500, 330, 150], name="three")
    return collate_mixtures([two, three])


def test_system_losses_are_finite_with_two_and_three_sources_and_padded_slots(tmp_path):
    system = sgn_system(tmp_path)
    batch = tone_batch()
    assert batch["source_mask"].tolist() == [[True, True, False], [True, True, True]]
    out = system.training_step(batch, 0)
    assert set(out) == {"loss", "sources_loss", "class_loss"}
    assert all(torch.isfinite(v) for v in out.values())
    assert out["loss"].item() == pytest.approx(out["sources_loss"].item() + 0.5 * out["class_loss"].item(), rel=1e-5)
    out["loss"].backward()
    assert system.separator.presence.weight.grad.abs().sum() > 0  # the class loss reaches the head
    assert system.separator.mask_projection.weight.grad.abs().sum() > 0  # the source loss reaches the masks
    system.eval()
    with torch.no_grad():
        val = system.validation_step(batch)
    assert set(val) == set(system.validation_metrics)
    assert all(v.shape == (2,) and torch.isfinite(v).all() for v in val.values())


def test_classification_target_marks_the_classes_present(tmp_path):
    system = sgn_system(tmp_path)
    batch = tone_batch()
    rows, classes, targets, presence = system.source_targets(batch)
    # class order [violin, cello, flute]; labels are matched case-insensitively, padded slots are skipped
    assert presence.tolist() == [[1, 1, 0], [1, 1, 1]]
    assert list(zip(rows.tolist(), classes.tolist())) == [(0, 0), (0, 1), (1, 2), (1, 0), (1, 1)]
    assert torch.equal(targets[2], batch["sources"][1, 0])  # the flute of "three"
    # two sources of one class are one target, their sum
    from sepkit.data.dataset import collate_mixtures

    same = collate_mixtures([tone_example(["violin", "violin"], [220, 440])])
    rows, classes, targets, presence = system.source_targets(same)
    assert classes.tolist() == [0] and presence.tolist() == [[1, 0, 0]]
    assert torch.allclose(targets[0], same["sources"][0].sum(0))
    with pytest.raises(SepkitError, match="'tuba'.*class_names"):
        system.source_targets(collate_mixtures([tone_example(["violin", "tuba"], [220, 440])]))


def test_a_few_steps_lower_the_loss_on_a_fixed_batch(tmp_path):
    system = sgn_system(tmp_path)
    batch = tone_batch()
    optimizer = torch.optim.Adam([p for p in system.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = system.training_step(batch, 0)["loss"]
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses


def test_system_errors_name_the_fix(tmp_path):
    with pytest.raises(SepkitError, match="presence_head: true"):
        sgn_system(tmp_path, "model.separator.presence_head=false")
    system = sgn_system(tmp_path, "model.separator.presence_head=false", "train.system.class_weight=0")
    assert system.separator.presence is None
    assert torch.isfinite(system.training_step(tone_batch(), 0)["loss"])
    from sepkit.data.dataset import collate_mixtures
    from sepkit.train.config import DataConfig, SplitConfig

    data = DataConfig(train=SplitConfig(clips="clips.jsonl", protocol="music_zeroshot", length=4), sample_rate=8000)
    with pytest.raises(SepkitError, match="data.train.sources: true"):
        system.build_dataset("train", data, tmp_path, 0)
    plain = collate_mixtures([{k: v for k, v in tone_example(["violin"], [220]).items() if "source" not in k}])
    with pytest.raises(SepkitError, match="sources: true"):
        system.training_step(plain, 0)


def test_presence_head_is_off_by_default_so_old_checkpoints_load():
    """The shipped mini weights (no presence head) still load strictly into mini/sgn.yaml, and the system
    of mini/sgn_sources.yaml starts from them with --init-from (its head fresh)."""
    from sepkit.pipeline import build_pipeline
    from sepkit.train.config import load_train_config
    from sepkit.train.system import build_system

    assert sgn().presence is None and not any(k.startswith("presence") for k in sgn().state_dict())
    pipeline = build_pipeline(load_recipe("recipes/mini/sgn.yaml"), "recipes/mini/sgn.ckpt")
    recipe = load_recipe("recipes/mini/sgn_sources.yaml")
    system = build_system(recipe, load_train_config(recipe), get_registry())
    head = system.separator.presence.weight.detach().clone()
    system.init_from("recipes/mini/sgn.ckpt")
    assert torch.equal(system.separator.mask_bias, pipeline.separator.mask_bias)
    assert torch.equal(system.separator.presence.weight, head)


def test_sources_recipe_keeps_the_mini_widths():
    mini = load_recipe("recipes/mini/sgn.yaml")
    sources = load_recipe("recipes/mini/sgn_sources.yaml")
    for kind in ("audio_encoder", "separator", "decoder", "text_encoder"):
        a, b = dict(mini.section(kind)), dict(sources.section(kind))
        b.pop("presence_head", None)
        assert a == b, kind
    assert sources.config.train.system.name == "sgn" and sources.config.data.train.sources
    resolve_components(sources, get_registry())


def test_hsm_recipe_has_every_mini_class_and_the_sources_recipe_otherwise():
    from sepkit.data.mini.captions import CAPTIONS

    sources = load_recipe("recipes/mini/sgn_sources.yaml")
    hsm = load_recipe("recipes/mini/sgn_hsm.yaml")
    assert sorted(hsm.section("separator")["class_names"]) == sorted(CAPTIONS) and len(CAPTIONS) == 37
    for kind in ("audio_encoder", "separator", "decoder", "text_encoder"):
        a, b = dict(sources.section(kind)), dict(hsm.section(kind))
        a.pop("class_names", None), b.pop("class_names", None)
        assert a == b, kind
    assert hsm.config.data.train.protocol == "hsm_tss" and hsm.config.data.train.sources
    resolve_components(hsm, get_registry())


class TestSGNSystem(SystemContract):
    name = "sgn"  # registration, lazy import and a Config dataclass; the tests above exercise the steps


# --- the ablation: the same network conditioned on the query, no class tokens ---------------------------


def test_query_conditioning_has_no_class_tokens_and_follows_the_query():
    sep = sgn(conditioning="query")
    assert sep.tokens.class_tokens.numel() == 0 and sep.query_token is not None
    mix = frames()
    g = torch.Generator().manual_seed(3)
    a, b = (query(torch.randn(2, 16, generator=g)) for _ in range(2))
    with torch.no_grad():
        out_a = sep.separate(mix, a, torch.zeros(2, dtype=torch.long)).frames
        out_b = sep.separate(mix, b, torch.zeros(2, dtype=torch.long)).frames
    ratio = out_a / mix.frames
    assert ratio.imag.abs().max() < 1e-5 and (ratio.real > 0).all() and (ratio.real < 1).all()
    assert not torch.allclose(out_a, out_b)  # a different query, a different mask
    with pytest.raises(SepkitError, match="conditioning: query"):
        sep.separate_all(mix)


def test_query_conditioning_keeps_every_other_weight_of_the_class_token_network():
    tokens, by_query = sgn().state_dict(), sgn(conditioning="query").state_dict()
    assert set(by_query) - set(tokens) == {"query_token.weight", "query_token.bias"}
    assert {k: v.shape for k, v in tokens.items() if k != "tokens.class_tokens"} == {
        k: v.shape for k, v in by_query.items() if not k.startswith("query_token") and k != "tokens.class_tokens"
    }


def test_query_conditioning_errors_name_the_fix(tmp_path):
    with pytest.raises(SepkitError, match="conditioning must be one of class_tokens, query"):
        sgn(conditioning="tokens")
    with pytest.raises(SepkitError, match="presence_head: false"):
        sgn(conditioning="query", presence_head=True)
    with pytest.raises(SepkitError, match="train.system: separation"):
        sgn_system(tmp_path, "model.separator.conditioning=query", "model.separator.presence_head=false",
                   "train.system.class_weight=0")  # fmt: skip


def test_the_ablation_recipes_differ_only_in_the_conditioning():
    from omegaconf import OmegaConf

    tokens, by_query = (OmegaConf.to_container(load_recipe(f"recipes/mini/{n}.yaml").config, resolve=True)
                        for n in ("sgn", "sgn_query"))  # fmt: skip
    assert by_query["model"]["separator"].pop("conditioning") == "query"
    assert tokens["model"]["separator"].get("conditioning", "class_tokens") == "class_tokens"
    tokens["model"]["separator"].pop("conditioning", None)
    for key in ("name", "description", "checkpoint"):
        tokens.pop(key, None), by_query.pop(key, None)
    assert tokens == by_query
    resolve_components(load_recipe("recipes/mini/sgn_query.yaml"), get_registry())
