"""``KVCache``: the keys and values of every layer of a decoder-only transformer, for token-by-token generation.

One preallocated buffer pair per layer, ``keys`` / ``values`` float [B, heads, max_len, head_dim];
``length`` positions are filled. A forward pass over ``n`` new positions writes each layer's
keys and values at ``[length, length + n)`` (``update``) and attends over ``[0, length + n)``;
after the last layer the caller moves ``length`` on by ``n`` (``advance``). ``key_valid``
bool [B, max_len] marks the keys a query may see at all (padding of a short row's prefix is
False), kept beside the buffers so every later step reuses it.

Buffers are allocated on the first ``update`` with that tensor's dtype and device, so the
cache follows autocast (bfloat16 keys under a bfloat16 autocast).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from sepkit.errors import SepkitError


class KVCache:
    """Per-layer key/value buffers of ``max_len`` positions for a batch of ``batch`` rows."""

    def __init__(self, num_layers: int, batch: int, max_len: int, device: torch.device | str = "cpu") -> None:
        self.num_layers, self.batch, self.max_len = num_layers, batch, max_len
        self.keys: list[Optional[Tensor]] = [None] * num_layers
        self.values: list[Optional[Tensor]] = [None] * num_layers
        self.key_valid = torch.ones(batch, max_len, dtype=torch.bool, device=device)
        self.length = 0
        self.prefix: Optional[Tensor] = None  # the conditioning prefix, for models that read it at every step

    def set_key_valid(self, valid: Tensor) -> None:
        """valid: bool [B, n] for the next ``n`` positions (called before the pass that writes them)."""
        n = valid.shape[1]
        self._check_room(n)
        self.key_valid[:, self.length : self.length + n] = valid.to(self.key_valid.device)

    def update(self, layer: int, keys: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        """keys, values [B, heads, n, head_dim] of new positions -> all so far [B, heads, length + n, head_dim]."""
        n = keys.shape[2]
        self._check_room(n)
        if self.keys[layer] is None:
            shape = (keys.shape[0], keys.shape[1], self.max_len, keys.shape[3])
            self.keys[layer] = keys.new_zeros(shape)
            self.values[layer] = values.new_zeros(shape)
        end = self.length + n
        self.keys[layer][:, :, self.length : end] = keys
        self.values[layer][:, :, self.length : end] = values
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def visible(self, n: int) -> Tensor:
        """bool [B, length + n]: which keys the ``n`` positions of the current pass may attend to at all."""
        return self.key_valid[:, : self.length + n]

    def advance(self, n: int) -> None:
        """Mark ``n`` more positions as filled (after every layer has written them)."""
        self._check_room(n)
        self.length += n

    def _check_room(self, n: int) -> None:
        if self.length + n > self.max_len:
            raise SepkitError(
                f"KV cache of {self.max_len} positions is full ({self.length} used, {n} more asked); "
                "generate fewer steps or raise the decoder's max_seconds"
            )
