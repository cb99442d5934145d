"""Plugin: OpenSep (arXiv 2409.19270) — caption a mixture, parse the caption into detailed sources, separate each.

Fills the core kinds ``captioner`` (audio -> caption) and ``source_parser`` (caption -> sources with
audio properties; interfaces in ``sepkit.source_finding``), and registers:

- separator ``opensep-unet``: U-Net with self- and cross-attention on the text tokens of one source;
- captioner ``hf-captioner`` (a local transformers captioner) and its offline stand-in ``tagger-captioner``
  (a tagger trained on sepkit-mini by the system ``tagger``);
- source_parser ``llm-parser`` (a local instruction-tuned LLM, few-shot) and its offline stand-in
  ``table-parser`` (a tag -> description table shipped with the recipe).
"""

from sepkit.hookspecs import hookimpl


@hookimpl
def sepkit_register(registry):
    registry.register(
        "separator",
        "opensep-unet",
        "sepkit_opensep.separator:OpenSepUNetSeparator",
        summary="OpenSep's U-Net separator: magnitude mask on complex STFT frames, self-attention + cross-attention "
        "on the text tokens of one source description at the lowest levels",
        example="input_dim: 33\nquery_dim: 16\nbase_channels: 4\nchannel_multipliers: [1, 2]\nheads: 2",
    )
    registry.register(
        "captioner",
        "hf-captioner",
        "sepkit_opensep.hf_captioner:HFCaptioner",
        summary="audio captioning with a local transformers speech-to-text model (model_dir; no download)",
    )
    registry.register(
        "captioner",
        "tagger-captioner",
        "sepkit_opensep.tagger_captioner:TaggerCaptioner",
        summary="OFFLINE STAND-IN captioner: 'a mixture of X and Y' from a sepkit-mini tagger's tags over a threshold",
        example="tags: [violin, rain, siren]\nchannels: [4, 8]",
    )
    registry.register(
        "source_parser",
        "llm-parser",
        "sepkit_opensep.llm_parser:LLMSourceParser",
        summary="OpenSep's few-shot LLM knowledge parsing: caption -> sources with audio properties (local causal LM)",
    )
    registry.register(
        "source_parser",
        "table-parser",
        "sepkit_opensep.table_parser:TableSourceParser",
        summary="OFFLINE STAND-IN source parser: each known tag in the caption -> its description from a YAML table",
    )
    registry.register(
        "system",
        "tagger",
        "sepkit_opensep.system:TaggerSystem",
        summary="trains the multi-label log-mel tagger of tagger-captioner on mixtures of tagged clips (BCE)",
    )
