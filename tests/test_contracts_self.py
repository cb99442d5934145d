"""The separator contract's behavioural checks bite: deliberately broken separators fail them.

``MeanContextSeparator`` is a correct tiny separator (real frames [B, F, 6], query width 8): a per-frame mask
from the frame, the mean of the row's valid frames and a FiLM of the mean of the query's valid tokens. Each
broken variant changes one thing, and the test asserts which check (and which rows) it fails:

- ``QueryBlindSeparator`` never reads the query;
- ``FrameLeakSeparator`` averages over all frames, padding included (rows 0 and 1 are frame-padded);
- ``TokenLeakSeparator`` averages over all tokens, padding included (rows 1 and 2 are token-padded);
- ``ZeroFiLMSeparator`` is correct but starts with a zero FiLM layer, query-blind at initialisation: the
  contract's ``perturb_state`` makes the check see the query path.

The contract classes here are instantiated and their test methods called directly (named ``...Check`` so
pytest does not collect the contract's other tests, which need an installed distribution).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from sepkit.interfaces import AudioFeatures, Separator, TextEmbedding
from sepkit.registry import Registry
from sepkit.testing import SeparatorContract
from sepkit.testing.contracts import select_example


class MeanContextSeparator(Separator):
    """frames float [B, F, dim] + query tokens [B, N, query_dim] (mask [B, N]) -> frames * mask [B, F, dim]."""

    @dataclass
    class Config:
        dim: int = 6
        query_dim: int = 8

    consumes = produces = "tiny"
    tasks = ("extract",)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.input_dim = self.output_dim = config.dim
        self.query_dim = config.query_dim
        self.mix = nn.Linear(2 * config.dim, config.dim)
        self.film = nn.Linear(config.query_dim, 2 * config.dim)

    def context(self, mixture: AudioFeatures) -> Tensor:
        """[B, dim]: the mean of each row's valid frames."""
        valid = torch.arange(mixture.frames.shape[1])[None, :] < mixture.lengths[:, None]
        return (mixture.frames * valid[..., None]).sum(1) / mixture.lengths[:, None]

    def query_vector(self, query: TextEmbedding) -> Tensor:
        """[B, query_dim]: the mean of each query's valid tokens."""
        return (query.tokens * query.mask[..., None]).sum(1) / query.mask.sum(1, keepdim=True)

    def separate(self, mixture: AudioFeatures, query: TextEmbedding, tasks: Tensor) -> AudioFeatures:
        x = mixture.frames
        h = self.mix(torch.cat([x, self.context(mixture)[:, None].expand_as(x)], dim=-1))
        scale, shift = self.film(self.query_vector(query)).unsqueeze(1).chunk(2, dim=-1)
        mask = torch.sigmoid(h * (1 + scale) + shift)
        return AudioFeatures(x * mask, mixture.lengths.clone(), mixture.frame_rate)


class QueryBlindSeparator(MeanContextSeparator):
    def query_vector(self, query: TextEmbedding) -> Tensor:
        return query.pooled.new_zeros(query.pooled.shape[0], self.query_dim)  # the query is never read


class FrameLeakSeparator(MeanContextSeparator):
    def context(self, mixture: AudioFeatures) -> Tensor:
        return mixture.frames.mean(1)  # padded frames count in the mean


class TokenLeakSeparator(MeanContextSeparator):
    def query_vector(self, query: TextEmbedding) -> Tensor:
        return query.tokens.mean(1)  # padded tokens count in the mean


class ZeroFiLMSeparator(MeanContextSeparator):
    def __init__(self, config: MeanContextSeparator.Config) -> None:
        super().__init__(config)
        nn.init.zeros_(self.film.weight)  # query-independent until trained (or perturbed)
        nn.init.zeros_(self.film.bias)


SEPARATORS = {
    "mean-context": MeanContextSeparator,
    "query-blind": QueryBlindSeparator,
    "frame-leak": FrameLeakSeparator,
    "token-leak": TokenLeakSeparator,
    "zero-film": ZeroFiLMSeparator,
}


def tiny_registry() -> Registry:
    registry = Registry()
    for name, cls in SEPARATORS.items():
        registry.register("separator", name, f"{__name__}:{cls.__name__}", summary="contract self-test", example="")
    return registry


REGISTRY = tiny_registry()


def check(name: str, **attributes) -> SeparatorContract:
    """A SeparatorContract instance for the tiny separator ``name`` (class attributes overridden by ``attributes``)."""
    cls = type(
        "SeparatorCheck",
        (SeparatorContract,),
        {"__test__": False, "name": name, "registry_factory": staticmethod(lambda: REGISTRY), **attributes},
    )
    return cls()


QUERY_TEST = "test_different_queries_give_different_outputs"
PADDING_TEST = "test_batch_padding_does_not_change_output"


@pytest.mark.parametrize("name", ["mean-context", "zero-film"])
@pytest.mark.parametrize("test", [QUERY_TEST, PADDING_TEST])
def test_correct_separators_pass(name, test):
    getattr(check(name), test)()


def test_query_blind_separator_fails_the_query_check_in_every_row():
    with pytest.raises(AssertionError, match=r"rows \[0, 1, 2\] give \(almost\) the same output"):
        check("query-blind").test_different_queries_give_different_outputs()
    check("query-blind").test_batch_padding_does_not_change_output()  # its defect is the query, not padding


def test_frame_padding_leak_fails_in_the_frame_padded_rows():
    with pytest.raises(AssertionError, match="padding changes the output") as caught:
        check("frame-leak").test_batch_padding_does_not_change_output()
    message = str(caught.value)
    assert "row 0: relative difference" in message and "row 1: relative difference" in message
    assert "row 2:" not in message  # the longest row has no padded frames and all three queries are exact
    check("frame-leak").test_different_queries_give_different_outputs()


def test_token_padding_leak_fails_in_the_token_padded_rows():
    with pytest.raises(AssertionError, match="padding changes the output") as caught:
        check("token-leak").test_batch_padding_does_not_change_output()
    message = str(caught.value)
    assert "row 1: relative difference" in message and "row 2: relative difference" in message
    assert "row 0:" not in message  # row 0 has the longest query: no padded tokens


def test_zero_initialised_film_is_query_blind_without_the_perturbation():
    """The zero-film separator passes only because the check perturbs its state (see test_correct_...)."""
    contract = check("zero-film")
    separator = contract.build()
    mixture, query, tasks = contract.sample_inputs(separator)
    with torch.no_grad():
        first = separator.separate(mixture, query, tasks).frames
        second = separator.separate(mixture, contract.make_other_query(query), tasks).frames
    assert torch.equal(first, second)


def test_correct_separator_passes_at_a_much_tighter_tolerance():
    """A correct separator's alone-vs-batched difference is float32 round-off, far below the tolerance."""
    contract = check("mean-context", padding_tolerance=1e-6)
    contract.test_batch_padding_does_not_change_output()


def test_opting_out_skips_with_the_attribute_named():
    with pytest.raises(pytest.skip.Exception, match="query_sensitive = False"):
        check("query-blind", query_sensitive=False).test_different_queries_give_different_outputs()
    with pytest.raises(pytest.skip.Exception, match="padding_invariant = False"):
        check("frame-leak", padding_invariant=False).test_batch_padding_does_not_change_output()


def test_select_example_keeps_only_the_valid_frames_and_tokens():
    mixture = AudioFeatures(torch.arange(2 * 4 * 1.0).reshape(2, 4, 1), torch.tensor([3, 4]), 50.0)
    mask = torch.tensor([[True, False, True], [True, True, True]])  # a mask need not be a prefix
    query = TextEmbedding(torch.arange(2 * 3 * 1.0).reshape(2, 3, 1) * mask[..., None], mask, torch.ones(2, 1))
    features, text, tasks = select_example(mixture, query, torch.tensor([0, 1]), 0)
    assert features.frames.flatten().tolist() == [0.0, 1.0, 2.0] and features.lengths.tolist() == [3]
    assert text.tokens.flatten().tolist() == [0.0, 2.0] and text.mask.tolist() == [[True, True]]
    assert tasks.tolist() == [0]
