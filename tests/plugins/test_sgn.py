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
