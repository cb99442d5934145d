"""``LLMSourceParser`` (``llm-parser``): OpenSep's knowledge parsing with a local instruction-tuned causal LM.

    caption -> prompts.build_prompt (few-shot) -> chat template if the tokenizer has one
            -> greedy decoding (max_new_tokens) -> prompts.parse_source_lines -> list[ParsedSource]

The model is any ``AutoModelForCausalLM`` directory in the Hugging Face layout (the paper uses
LLaMA-3-8B-Instruct), read with ``local_files_only=True``: ``from_pretrained`` downloads nothing. A hub name
(``hf://OWNER/REPO`` or ``OWNER/REPO``) is its snapshot in the Hugging Face cache (``sepkit.hf_local.local_dir``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from omegaconf import MISSING

from sepkit.config import non_negative, positive
from sepkit.errors import SepkitError
from sepkit.hf_local import local_dir
from sepkit.source_finding import ParsedSource, SourceParser

from .prompts import FEW_SHOT_EXAMPLES, build_prompt, parse_source_lines

EXAMPLE = "a downloaded instruction-tuned causal LM such as meta-llama/Meta-Llama-3-8B-Instruct"


class LLMSourceParser(SourceParser):
    """caption -> sources with detailed properties, by greedy few-shot prompting of a local causal LM."""

    @dataclass
    class Config:
        model_dir: str = MISSING  # local Hugging Face directory (config, weights, tokenizer) or hub name
        shots: int = non_negative(len(FEW_SHOT_EXAMPLES))
        max_new_tokens: int = positive(256)
        chat_template: bool = True  # wrap the prompt as a user turn when the tokenizer has a chat template
        dtype: Optional[str] = None  # "bfloat16" / "float16" to load a large model in half precision

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if not 0 <= config.shots <= len(FEW_SHOT_EXAMPLES):
            raise SepkitError(f"llm-parser: shots must be in 0..{len(FEW_SHOT_EXAMPLES)}, got {config.shots}")
        model_dir = local_dir(config.model_dir, "model_dir", "llm-parser", EXAMPLE)
        dtype = getattr(torch, config.dtype) if config.dtype else None
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True, dtype=dtype)
        except (OSError, ValueError) as exc:
            raise SepkitError(f"llm-parser: no usable causal LM in {model_dir} ({exc})") from None
        self.model.eval()
        self.model.requires_grad_(False)

    def prompt(self, caption: str) -> str:
        """The text the model continues."""
        text = build_prompt(caption, self.config.shots)
        if self.config.chat_template and getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
        return text

    def generate(self, prompt: str) -> str:
        """Greedy completion of ``prompt`` (only the new text)."""
        device = next(self.model.parameters()).device
        inputs = self.tokenizer(prompt, return_tensors="pt").to(device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.no_grad():
            out = self.model.generate(
                **inputs, do_sample=False, num_beams=1, max_new_tokens=self.config.max_new_tokens, pad_token_id=pad
            )
        return self.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    def parse(self, caption: str) -> list[ParsedSource]:
        if not caption or not caption.strip():
            return []
        return parse_source_lines(self.generate(self.prompt(caption)))
