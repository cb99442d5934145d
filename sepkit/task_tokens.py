"""Task tokens: "extract" / "remove" as pretrained vocabulary embeddings appended to a query.

HSM-TSS (sec. III-C/D) conditions both separation stages on the concatenation of the caption
tokens and a task token, the text encoder's own (pretrained, not contextual) embedding of the
task word. ``append_task_tokens`` builds that conditioning from a ``TextEmbedding`` of the
captions and ``TextEncoder.task_token_embeddings()``; the pipeline calls it for separators that
set ``task_tokens = True``, and training systems call it the same way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sepkit.instructions import TASKS
from sepkit.interfaces import TextEmbedding


def append_task_tokens(query: TextEmbedding, tasks: Tensor, table: dict[str, Tensor]) -> TextEmbedding:
    """[caption tokens | task tokens] per row.

    query: TextEmbedding(tokens [B, N, D], mask [B, N], pooled [B, D]);
    tasks: long [B], index into ``TASKS``; table: {task word: float [L_task, D]}.
    Returns tokens [B, N + max L, D]: each row's real caption tokens, then its task word's pieces,
    then padding (mask False, zeros). ``pooled`` is unchanged.
    """
    rows = query.tokens.shape[0]
    dtype, device = query.tokens.dtype, query.tokens.device
    pieces = [table[TASKS[int(t)]].to(device=device, dtype=dtype) for t in tasks.tolist()]
    counts = query.mask.sum(1).tolist()
    width = max(int(c) + p.shape[0] for c, p in zip(counts, pieces))
    width = max(width, query.tokens.shape[1])
    tokens = query.tokens.new_zeros(rows, width, query.tokens.shape[-1])
    mask = torch.zeros(rows, width, dtype=torch.bool, device=device)
    for b in range(rows):
        real = query.tokens[b][query.mask[b]]
        row = torch.cat([real, pieces[b]])
        tokens[b, : row.shape[0]] = row
        mask[b, : row.shape[0]] = True
    return TextEmbedding(tokens=tokens, mask=mask, pooled=query.pooled)


__all__ = ["append_task_tokens"]
