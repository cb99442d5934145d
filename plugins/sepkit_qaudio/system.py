"""The ``qaudio`` training system: Q-Audio pretraining with BLIP-2's ITC + ITM + ITG (HSM-TSS sec. III-B2).

The recipe names the model as a ``qaudio`` component with ``part: both`` under
``model.audio_encoder`` (or ``model.text_encoder``); its frozen encoders come from its
sub-sections, and only the Q-Former and the training heads (``heads.TrainingHeads``) learn::

    model:
      audio_encoder: {name: qaudio, audio_encoder: {name: audiomae, checkpoint: ...}, text_encoder: {name: flan-t5}}
    train:
      system: {name: qaudio, itc_weight: 1.0, itm_weight: 1.0, itg_weight: 1.0}

Pairs (audio, text): with ``pairs: extract`` (default) the batch's extract rows (task 0), each
``target`` with its ``description``; with ``pairs: all`` also the remove rows, whose described
source is ``mixture - target`` (a remove row's target is the mixture without the described
source). Validation always uses every row this way, so each example gets a value.

One step (all three on the same pairs; weights 1.0 each, as the paper):

- ITC: unimodal passes; sim = normalised ``audio_proj(G)`` . normalised ``text_proj([CLS])`` / temp,
  symmetric cross-entropy over the batch (label smoothing 0.1, BLIP-2); rows with the same
  description are all positives (``losses.positive_pairs``).
- ITM: for each text a negative audio and for each audio a negative text, drawn from the
  softmaxed ITC similarities with positives excluded (``losses.sample_hard_negatives``); the
  B positive and up to 2B negative pairs pass with the bidirectional mask; ``heads.itm`` on the
  query output; cross-entropy averaged over pairs.
- ITG: teacher-forced next-token prediction with the causal mask (text sees the query and the
  previous text tokens). *Departure from BLIP-2*: Q-Audio's text side reads a frozen, contextual
  encoder (FLAN-T5), whose states already see the whole caption, so they cannot be teacher-forced.
  ITG instead feeds the frozen encoder's non-contextual input-embedding rows
  (``model.get_input_embeddings()``, ids from its ``tokenizer``, caption pieces then EOS) through
  the Q-Former's ``vocab_input``, after a learnt [DEC] (``heads.dec_token``); position i predicts
  piece i over that vocabulary (``heads.LMHead``, tied to the frozen table), label smoothing 0.1.

Validation metrics (means over examples): ``loss`` (weighted sum), ``itc``, ``itm``, ``itg`` and
``r1`` (in-batch text-to-audio recall at 1: the text's most similar audio in its batch carries
the same description). Negatives in validation use a fixed seed (``validation_seed``).
Checkpoints hold ``qformer.*`` and ``heads.*`` (``weights.py``); the ``qaudio`` component's
``checkpoint:`` key reads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sepkit.config import fraction, non_negative, positive
from sepkit.errors import SepkitError
from sepkit.registry import Registry
from sepkit.train.config import TrainConfig
from sepkit.train.system import System

from .heads import TrainingHeads
from .losses import itc_loss, itg_loss, itm_loss, positive_pairs, sample_hard_negatives

PAIRS = ("extract", "all")
EXTRACT, REMOVE = 0, 1  # sepkit.interfaces.TASKS order


@dataclass
class QAudioSystemConfig:
    itc_weight: float = non_negative(1.0)
    itm_weight: float = non_negative(1.0)
    itg_weight: float = non_negative(1.0)  # 0: no generation loss (then the text encoder needs no tokenizer/vocabulary)
    label_smoothing: float = fraction(0.1)  # ITC and ITG, as BLIP-2
    temperature: float = positive(0.07)  # initial ITC temperature (learnt, clamped to [0.001, 0.5])
    pairs: str = "extract"  # extract: extract rows only | all: also remove rows (described source = mixture - target)
    validation_seed: int = 0  # hard-negative draws in validation


class QAudioPretrainingSystem(System):
    """Trains the Q-Former of a ``qaudio`` (part: both) component; see the module docstring."""

    Config = QAudioSystemConfig
    validation_metrics = ("loss", "itc", "itm", "itg", "r1")
    find_unused_parameters = True  # a zero weight leaves heads (and vocab_input) unused

    def __init__(self, config: QAudioSystemConfig, recipe: Any, train: TrainConfig, registry: Registry) -> None:
        super().__init__(config, recipe, train, registry)

        if config.pairs not in PAIRS:
            raise SepkitError(f"{recipe.source}: train.system.pairs must be one of {', '.join(PAIRS)}")
        if min(config.itc_weight, config.itm_weight, config.itg_weight) < 0:
            raise SepkitError(f"{recipe.source}: train.system loss weights must be >= 0")
        self._kind, section = self._find_section(recipe)
        try:
            self.qaudio = self.registry.build(self._kind, section, where=f"model.{self._kind}")
        except SepkitError as exc:
            raise SepkitError(f"{recipe.source}: {exc}") from None
        if self.qaudio.part != "both":
            raise SepkitError(
                f"{recipe.source}: train.system qaudio trains both sides of the Q-Former; set "
                f"model.{self._kind}.part: both (got {self.qaudio.part!r})"
            )
        text_dim = int(self.qaudio.text_encoder.embed_dim)
        vocab_size = 1
        if config.itg_weight > 0:
            vocab_size = int(self.qaudio.vocabulary()[1].shape[0])
        self.heads = TrainingHeads(self.qaudio.config.hidden, text_dim, vocab_size, config.temperature)
        self._section = section

    @staticmethod
    def _find_section(recipe: Any) -> tuple[str, Any]:
        for kind in ("audio_encoder", "text_encoder"):
            section = recipe.section(kind)
            if section is not None and section.get("name") == "qaudio":
                return kind, section
        raise SepkitError(
            f"{recipe.source}: train.system qaudio pretrains a Q-Audio model; set model.audio_encoder: "
            "{name: qaudio, audio_encoder: {...}, text_encoder: {...}}"
        )

    @property
    def sample_rate(self) -> int:
        return self.qaudio.sample_rate

    # --- pairs ----------------------------------------------------------------------------
    @staticmethod
    def pairs(batch: dict, use_all: bool) -> tuple[Tensor, Tensor, list[str]]:
        """(described sources float [P, T], lengths long [P], descriptions) of the batch's pairs."""
        task = batch["task"]
        target = batch["target"].float()
        source = torch.where((task == REMOVE)[:, None], batch["mixture"].float() - target, target)
        rows = torch.ones_like(task, dtype=torch.bool) if use_all else task == EXTRACT
        index = rows.nonzero().flatten()
        descriptions = [batch["description"][i] for i in index.tolist()]
        return source[index], batch["lengths"][index], descriptions

    # --- the three losses ---------------------------------------------------------------
    def losses(self, wave: Tensor, lengths: Tensor, texts: list[str], generator=None) -> dict[str, Tensor]:
        """Per-pair values float [P]: itc, itm, itg, r1, loss (weighted); wave [P, T] at ``sample_rate``."""
        c, qf, heads = self.config, self.qaudio.qformer, self.heads
        _, tokens, audio_mask = self.qaudio.audio_tokens(wave, lengths)
        states = self.qaudio.text_states(texts)
        rows = len(texts)
        arange = torch.arange(rows, device=tokens.device)
        positives = positive_pairs(texts, tokens.device)

        # ITC (unimodal): G and the [CLS] output
        query, _ = qf(audio=tokens, audio_mask=audio_mask, mode="unimodal")
        text_x, text_mask = qf.text_inputs(states.tokens, states.mask)
        _, text_out = qf(text=text_x, text_mask=text_mask, mode="unimodal")
        audio_feat = F.normalize(qf.audio_proj(query[:, 0]), dim=-1)
        text_feat = F.normalize(qf.text_proj(text_out[:, 0]), dim=-1)
        sim = audio_feat @ text_feat.T / heads.temp  # [audio, text]
        out = {"itc": itc_loss(sim, positives, c.label_smoothing)}
        best_audio = sim.detach().T.argmax(dim=1)
        out["r1"] = positives[best_audio, arange].float()

        # ITM (bidirectional): positives, a hard negative audio per text, a hard negative text per audio
        zero = torch.zeros(rows, device=tokens.device)
        if c.itm_weight > 0:
            neg_audio, text_has = sample_hard_negatives(sim.detach().T, positives.T, generator)
            neg_text, audio_has = sample_hard_negatives(sim.detach(), positives, generator)
            text_index = torch.cat([arange, arange[text_has], neg_text[audio_has]])
            audio_index = torch.cat([arange, neg_audio[text_has], arange[audio_has]])
            owner = torch.cat([arange, arange[text_has], arange[audio_has]])
            labels = (torch.arange(text_index.shape[0], device=tokens.device) < rows).long()
            matched, _ = qf(
                audio=tokens[audio_index], audio_mask=audio_mask[audio_index],
                text=text_x[text_index], text_mask=text_mask[text_index], mode="bidirectional",
            )  # fmt: skip
            per_pair = itm_loss(heads.itm(matched[:, 0]), labels)
            counts = torch.zeros(rows, device=tokens.device).index_add_(0, owner, torch.ones_like(per_pair))
            out["itm"] = zero.index_add(0, owner, per_pair) / counts
            itm_total = per_pair.mean()
        else:
            out["itm"], itm_total = zero, zero.sum()

        # ITG (causal): teacher forcing on the frozen vocabulary rows
        if c.itg_weight > 0:
            ids, labels, input_mask = self.caption_ids(texts, tokens.device)
            _, table = self.qaudio.vocabulary()
            x, mask = qf.vocab_inputs(table[ids[:, :-1]].detach(), input_mask[:, 1:], first=heads.dec_token)
            _, generated = qf(audio=tokens, audio_mask=audio_mask, text=x, text_mask=mask, mode="causal")
            out["itg"] = itg_loss(heads.lm(generated, table.detach()), labels, c.label_smoothing)
        else:
            out["itg"] = zero
        out["loss"] = c.itc_weight * out["itc"] + c.itm_weight * out["itm"] + c.itg_weight * out["itg"]
        out["_train"] = c.itc_weight * out["itc"].mean() + c.itm_weight * itm_total + c.itg_weight * out["itg"].mean()
        return out

    def caption_ids(self, texts: list[str], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
        """Vocabulary ids of each caption's pieces then EOS: (ids long [B, N] (0-padded), labels long [B, N]
        (-100 at padding), mask bool [B, N]). Position i of the ITG input ([DEC], ids[:, :-1]) predicts ids[:, i]."""
        tokenizer, _ = self.qaudio.vocabulary()
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        if eos is None:
            raise SepkitError("qaudio: the text encoder's tokenizer has neither an EOS nor a SEP token for ITG")
        limit = getattr(self.qaudio.text_encoder.config, "max_length", 64)
        rows = [
            list(tokenizer(t, add_special_tokens=False, truncation=True, max_length=max(1, limit - 1))["input_ids"])
            + [eos]
            for t in texts
        ]
        width = max(len(r) for r in rows)
        ids = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.bool)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r)
            mask[b, : len(r)] = True
        ids, mask = ids.to(device), mask.to(device)
        return ids, ids.masked_fill(~mask, -100), mask

    # --- steps ------------------------------------------------------------------------------
    def training_step(self, batch: dict, step: int, optimizer: str = "main") -> dict[str, Tensor]:
        with torch.no_grad():
            self.heads.temp.clamp_(0.001, 0.5)
        wave, lengths, texts = self.pairs(batch, self.config.pairs == "all")
        if not texts:  # no extract row in this batch: nothing to learn from, keep the graph
            return {"loss": self.heads.temp * 0.0}
        out = self.losses(wave, lengths, texts)
        return {
            "loss": out["_train"],
            "itc": out["itc"].mean().detach(),
            "itm": out["itm"].mean().detach(),
            "itg": out["itg"].mean().detach(),
        }

    def validation_step(self, batch: dict) -> dict[str, Tensor]:
        generator = torch.Generator(device=batch["target"].device).manual_seed(self.config.validation_seed)
        wave, lengths, texts = self.pairs(batch, use_all=True)
        out = self.losses(wave, lengths, texts, generator)
        return {k: out[k].detach() for k in self.validation_metrics}

    # --- checkpoints: qformer.* and heads.* --------------------------------------------------
    def _stored(self) -> nn.ModuleDict:
        return nn.ModuleDict({"qformer": self.qaudio.qformer, "heads": self.heads})

    def checkpoint_state(self) -> dict[str, Tensor]:
        return self._stored().state_dict()

    def load_checkpoint_state(self, state_dict: dict, where: str) -> None:
        from sepkit.checkpoint import load_state_dict_checked

        load_state_dict_checked(self._stored(), state_dict, where)

    def plugin_versions(self) -> dict[str, str]:
        entries = [self.registry.get(self._kind, "qaudio")]
        for kind in ("audio_encoder", "text_encoder"):
            entries.append(self.registry.get(kind, getattr(self.qaudio.config, kind)["name"]))
        return {e.provider: e.version for e in entries}
