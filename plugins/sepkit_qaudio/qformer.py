"""The Q-Former of Q-Audio (HSM-TSS sec. III-B2), after BLIP-2's Q-Former (Li et al. 2023), written anew.

One learnable query token and a text branch share each layer's self-attention; an attention
mask decides who sees whom (``attention_mask``). Per layer (BERT post-norm: LayerNorm(x + f(x)))::

    x = [query | text]                                 [B, 1 + N, hidden]
    x = SelfAttention(x, mask)                         shared by both branches
    query = CrossAttention(query, audio tokens)        query positions only; kv width = audio_dim
    query = QueryFFN(query);  text = TextFFN(text)     separate feed-forward networks (BLIP-2)

Inputs (``forward``): the frozen audio encoder's tokens [B, S, audio_dim] (AudioMAE patch
tokens, through a trainable LayerNorm as BLIP-2's ``ln_vision``) with a padding mask [B, S], and
text-branch inputs [B, N, hidden] made by ``text_inputs`` (a frozen text encoder's contextual
token states -> ``text_input`` Linear) or ``vocab_inputs`` (rows of its vocabulary embedding table
-> ``vocab_input`` Linear, for audio-grounded generation and task tokens), each with a leading
first token (``cls_token``, or the caller's [DEC]) and learnt absolute positions. The query and
the text pass through the shared embedding LayerNorm (BLIP-2's ``BertEmbeddings.LayerNorm``).

Masks (``MODES``): ``unimodal`` (ITC, encoding): the query sees only itself, text sees only
text; ``bidirectional`` (ITM): all see all; ``causal`` (ITG): the query sees only itself, text
token i sees the query and text tokens 0..i. Padding text tokens are never attended to.

``part`` builds only what one role needs: ``audio`` (query, audio LayerNorm, cross-attention,
query FFNs, ``audio_proj``), ``text`` (first token, input projections, positions, text FFNs,
``text_proj``), ``both``. Both parts hold the shared self-attention and the embedding LayerNorm.
ITC projections: ``audio_proj``, ``text_proj`` Linear(hidden, itc_dim=256).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PARTS = ("audio", "text", "both")
MODES = ("unimodal", "bidirectional", "causal")
NUM_QUERIES = 1  # the paper's single learnable query
LAYER_NORM_EPS = 1e-12  # BERT's


def attention_mask(mode: str, num_queries: int, text_mask: Tensor) -> Tensor:
    """bool [B, Q + N, Q + N]: True where position i (row) may attend to position j (column).

    Positions 0..Q-1 are the queries, Q.. the text tokens; ``text_mask`` bool [B, N] marks real
    text tokens. See the module docstring for the three modes.
    """
    if mode not in MODES:
        raise ValueError(f"attention mode {mode!r}; expected one of {', '.join(MODES)}")
    batch, num_text = text_mask.shape
    length = num_queries + num_text
    device = text_mask.device
    position = torch.arange(length, device=device)
    is_query = position < num_queries
    if mode == "bidirectional":
        allowed = torch.ones(length, length, dtype=torch.bool, device=device)
    elif mode == "unimodal":
        allowed = is_query[:, None] == is_query[None, :]
    else:  # causal: queries see queries; text sees queries and earlier (or same) text
        earlier = position[None, :] <= position[:, None]
        allowed = torch.where(is_query[:, None], is_query[None, :], is_query[None, :] | earlier)
    keys = torch.cat([torch.ones(batch, num_queries, dtype=torch.bool, device=device), text_mask.bool()], dim=1)
    return allowed[None] & keys[:, None, :]


class Attention(nn.Module):
    """Multi-head attention with BERT's output block: LayerNorm(x + dropout(dense(attention))).

    x [B, L, hidden] attends to context [B, S, context_dim] (self-attention: context = x) under
    mask bool [B, L or 1, S] (True = attend). Returns [B, L, hidden].
    """

    def __init__(self, hidden: int, num_heads: int, context_dim: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(context_dim, hidden)
        self.value = nn.Linear(context_dim, hidden)
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.dropout = dropout

    def _heads(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, -1).transpose(1, 2)

    def forward(self, x: Tensor, context: Tensor, mask: Optional[Tensor]) -> Tensor:
        q, k, v = self._heads(self.query(x)), self._heads(self.key(context)), self._heads(self.value(context))
        drop = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=None if mask is None else mask[:, None], dropout_p=drop)
        out = out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        return self.norm(x + F.dropout(self.dense(out), drop, self.training))


class FeedForward(nn.Module):
    """BERT's feed-forward block: LayerNorm(x + dropout(fc2(gelu(fc1(x))))), [..., hidden] -> [..., hidden]."""

    def __init__(self, hidden: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, hidden)
        self.norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + F.dropout(self.fc2(F.gelu(self.fc1(x))), self.dropout, self.training))


class QFormerLayer(nn.Module):
    """Shared self-attention; cross-attention and FFN for the query; FFN for the text. [B, Q + N, hidden]."""

    def __init__(self, hidden: int, num_heads: int, ffn_dim: int, audio_dim: int, dropout: float, part: str) -> None:
        super().__init__()
        self.self_attention = Attention(hidden, num_heads, hidden, dropout)
        if part in ("audio", "both"):
            self.cross_attention = Attention(hidden, num_heads, audio_dim, dropout)
            self.query_ffn = FeedForward(hidden, ffn_dim, dropout)
        if part in ("text", "both"):
            self.text_ffn = FeedForward(hidden, ffn_dim, dropout)

    def forward(
        self, x: Tensor, num_queries: int, mask: Tensor, audio: Optional[Tensor], audio_mask: Optional[Tensor]
    ) -> Tensor:
        x = self.self_attention(x, x, mask)
        query, text = x[:, :num_queries], x[:, num_queries:]
        if num_queries:
            query = self.query_ffn(self.cross_attention(query, audio, audio_mask))
        if text.shape[1]:
            text = self.text_ffn(text)
        return torch.cat([query, text], dim=1)


class QFormer(nn.Module):
    """Q-Audio's Q-Former (see the module docstring). Default sizes are the paper's: 2 layers, 768, 12 heads."""

    def __init__(
        self,
        part: str = "both",
        hidden: int = 768,
        num_layers: int = 2,
        num_heads: int = 12,
        ffn_dim: int = 3072,
        audio_dim: int = 768,
        text_dim: int = 768,
        itc_dim: int = 256,
        max_text_tokens: int = 512,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if part not in PARTS:
            raise ValueError(f"part {part!r}; expected one of {', '.join(PARTS)}")
        if hidden % num_heads:
            raise ValueError(f"hidden {hidden} is not divisible by num_heads {num_heads}")
        self.part, self.hidden, self.num_queries = part, hidden, NUM_QUERIES
        self.has_audio, self.has_text = part in ("audio", "both"), part in ("text", "both")
        self.embed_norm = nn.LayerNorm(hidden, eps=LAYER_NORM_EPS)
        self.embed_dropout = nn.Dropout(dropout)
        if self.has_audio:
            self.query_tokens = nn.Parameter(torch.empty(1, NUM_QUERIES, hidden).normal_(0.0, 0.02))
            self.audio_norm = nn.LayerNorm(audio_dim)
            self.audio_proj = nn.Linear(hidden, itc_dim)
        if self.has_text:
            self.cls_token = nn.Parameter(torch.empty(1, 1, hidden).normal_(0.0, 0.02))
            self.text_input = nn.Linear(text_dim, hidden)
            self.vocab_input = nn.Linear(text_dim, hidden)
            self.position = nn.Embedding(max_text_tokens, hidden)
            self.text_proj = nn.Linear(hidden, itc_dim)
        self.layers = nn.ModuleList(
            QFormerLayer(hidden, num_heads, ffn_dim, audio_dim, dropout, part) for _ in range(num_layers)
        )
        self.apply(_init_bert)

    # --- text-branch inputs ------------------------------------------------------------------
    def _with_first(self, rows: Tensor, mask: Tensor, first: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """rows [B, N, hidden] -> ([first | rows] + positions [B, 1 + N, hidden], mask [B, 1 + N])."""
        batch, length = rows.shape[0], rows.shape[1] + 1
        if length > self.position.num_embeddings:
            raise ValueError(
                f"{length} text positions (with the first token) but max_text_tokens is {self.position.num_embeddings}"
            )
        first = (self.cls_token if first is None else first).expand(batch, 1, -1).to(rows.dtype)
        x = torch.cat([first, rows], dim=1) + self.position.weight[:length].to(rows.dtype)
        mask = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=mask.device), mask.bool()], dim=1)
        return x, mask

    def text_inputs(self, states: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Frozen contextual token states [B, N, text_dim] -> text-branch input [B, 1 + N, hidden] ([CLS] first)."""
        return self._with_first(self.text_input(states), mask, None)

    def vocab_inputs(self, rows: Tensor, mask: Tensor, first: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Vocabulary rows [B, N, text_dim] -> [B, 1 + N, hidden]; ``first`` [1, 1, hidden] (default [CLS])."""
        return self._with_first(self.vocab_input(rows), mask, first)

    # --- the transformer -------------------------------------------------------------------
    def forward(
        self,
        audio: Optional[Tensor] = None,
        audio_mask: Optional[Tensor] = None,
        text: Optional[Tensor] = None,
        text_mask: Optional[Tensor] = None,
        mode: str = "unimodal",
    ) -> tuple[Tensor, Tensor]:
        """audio [B, S, audio_dim] (None: no query), audio_mask bool [B, S] (None: all valid);
        text [B, N, hidden] from ``text_inputs``/``vocab_inputs`` (None: no text), text_mask bool [B, N].

        Returns (query outputs [B, 1, hidden] or [B, 0, hidden], text outputs [B, N, hidden] or [B, 0, hidden]).
        """
        if audio is None and text is None:
            raise ValueError("the Q-Former needs audio tokens, text inputs or both")
        if audio is not None and not self.has_audio:
            raise ValueError("this Q-Former was built with part 'text': it has no query or cross-attention")
        if text is not None and not self.has_text:
            raise ValueError("this Q-Former was built with part 'audio': it has no text branch")
        pieces, num_queries = [], 0
        batch = (audio if audio is not None else text).shape[0]
        reference = text if text is not None else audio
        if audio is not None:
            audio = self.audio_norm(audio)
            pieces.append(self.query_tokens.expand(batch, -1, -1).to(audio.dtype))
            num_queries = self.num_queries
        if text is not None:
            pieces.append(text)
            if text_mask is None:
                text_mask = torch.ones(text.shape[:2], dtype=torch.bool, device=text.device)
        else:
            text_mask = torch.zeros(batch, 0, dtype=torch.bool, device=reference.device)
        x = self.embed_dropout(self.embed_norm(torch.cat(pieces, dim=1)))
        mask = attention_mask(mode, num_queries, text_mask)
        cross_mask = None if audio_mask is None else audio_mask.bool()[:, None, :]
        for layer in self.layers:
            x = layer(x, num_queries, mask, audio, cross_mask)
        return x[:, :num_queries], x[:, num_queries:]


def _init_bert(module: nn.Module) -> None:
    """BERT's initialisation: normal(0, 0.02) weights, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.data.normal_(0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
    elif isinstance(module, nn.LayerNorm):
        module.weight.data.fill_(1.0)
        module.bias.data.zero_()


def qformer_parameter_count(
    part: str = "both",
    hidden: int = 768,
    num_layers: int = 2,
    ffn_dim: int = 3072,
    audio_dim: int = 768,
    text_dim: int = 768,
    itc_dim: int = 256,
    max_text_tokens: int = 512,
) -> int:
    """Parameters of ``QFormer(part, ...)``, by formula (h = hidden, f = ffn_dim, a = audio_dim, t = text_dim).

    Per layer: self-attention 4h^2 + 6h (q, k, v, dense + LayerNorm); cross-attention
    2h^2 + 2ah + 6h; each FFN 2hf + f + 3h. Audio part: query h, audio LayerNorm 2a,
    audio_proj (h + 1) * itc. Text part: [CLS] h, two input projections 2 (t + 1) h, positions
    max_text_tokens * h, text_proj (h + 1) * itc. Shared: embedding LayerNorm 2h.
    """
    h, f, a, t = hidden, ffn_dim, audio_dim, text_dim
    self_attention = 4 * h * h + 6 * h
    cross_attention = 2 * h * h + 2 * a * h + 6 * h
    ffn = 2 * h * f + f + 3 * h
    total = 2 * h + num_layers * self_attention
    if part in ("audio", "both"):
        total += NUM_QUERIES * h + 2 * a + (h + 1) * itc_dim + num_layers * (cross_attention + ffn)
    if part in ("text", "both"):
        total += h + 2 * (t + 1) * h + max_text_tokens * h + (h + 1) * itc_dim + num_layers * ffn
    return total
