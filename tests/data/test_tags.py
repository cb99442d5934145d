"""TagNormaliser: synonyms across corpora, groups, coarse labels, caption spotting, extension."""

from __future__ import annotations

import pytest

from sepkit.data.tags import GROUPS, INSTRUMENTS, SYNONYMS, TagNormaliser, clean_label
from sepkit.errors import SepkitError

MINI_CLASSES = [
    "accordion", "acoustic guitar", "cello", "clarinet", "flute", "saxophone", "trumpet", "tuba", "violin",
    "xylophone", "piano", "drum kit", "church organ", "harp", "bass", "man speaking", "woman speaking", "rain",
    "wind", "engine idling", "siren", "alarm beeping", "telephone ringing", "clock ticking", "knocking",
    "bird chirping", "running water", "trombone", "electric guitar", "harmonica", "marimba", "banjo", "oboe",
    "thunder", "crackling fire", "applause", "footsteps",
]  # fmt: skip


@pytest.fixture(scope="module")
def n() -> TagNormaliser:
    return TagNormaliser()


@pytest.mark.parametrize(
    "label, category",
    [
        ("rain", "rain"),
        ("raindrop", "rain"),
        ("Rain on surface", "rain"),
        ("Male speech, man speaking", "man speaking"),
        ("Male_speech_and_man_speaking", "man speaking"),  # FSD50K spelling
        ("Female speech, woman speaking", "woman speaking"),
        ("Violin, fiddle", "violin"),
        ("Violin_fiddle", "violin"),
        ("violins", "violin"),
        ("chirping_birds", "bird chirping"),  # ESC-50
        ("Bird vocalization, bird call, bird song", "bird chirping"),  # AudioSet
        ("clock_tick", "clock ticking"),
        ("door_wood_knock", "knocking"),
        ("Tick-tock", "clock ticking"),
        ("Keyboard (musical)", "piano"),
        ("acoustic_guitar", "acoustic guitar"),
        ("Water tap, faucet", "running water"),
        ("Idling", "engine idling"),
        ("Telephone bell ringing", "telephone ringing"),
        ("Beep, bleep", "alarm beeping"),
        ("  WIND!! ", "wind"),
    ],
)
def test_synonyms(n, label, category):
    assert n.normalise(label) == category


def test_every_mini_class_is_its_own_category(n):
    for name in MINI_CLASSES:
        assert name in SYNONYMS
        assert n.normalise(name) == name
    assert {"violin", "piano", "drum kit", "bass", "marimba", "oboe", "electric guitar"} <= INSTRUMENTS
    assert not {"rain", "man speaking", "siren"} & INSTRUMENTS


def test_unknown_labels_are_cleaned_first_comma_item(n):
    assert n.normalise("Accelerating, revving, vroom") == "accelerating"
    assert n.normalise("Frog") == "frog"
    assert n.normalise("Drum_and_bass") == "drum and bass"  # pieces name different categories: not split
    assert clean_label("Violin,_Fiddle") == "violin, fiddle"


def test_normalise_all_dedupes_and_drops_coarse_ancestors(n):
    fsd = ["Violin_fiddle", "Bowed_string_instrument", "String_instrument", "Musical_instrument", "Music"]
    assert n.normalise_all(fsd) == ["violin"]
    assert n.normalise_all(["Music"]) == ["music"]  # a clip with only a coarse label keeps it
    assert n.normalise_all(["rain", "Raindrop", "", "wind"]) == ["rain", "wind"]


def test_groups_make_speech_overlap_but_not_instruments(n):
    assert GROUPS["speech"] and "man speaking" in GROUPS["speech"]
    assert n.categories(["man speaking"]) == {"man speaking", "speech"}
    assert n.overlap(["man speaking"], ["woman speaking"])
    assert n.overlap(["speech"], ["Male speech, man speaking"])
    assert not n.overlap(["acoustic guitar"], ["electric guitar"])
    assert n.normalise_all(["Acoustic_guitar", "Guitar", "Plucked_string_instrument"]) == ["acoustic guitar"]
    assert not n.overlap(["violin"], ["cello"])
    assert not n.overlap(["violin", "rain"], ["cello", "wind"])
    assert n.overlap(["violin", "rain"], ["Rain on surface"])
    assert not n.overlap([], ["rain"])
    for a in MINI_CLASSES:
        for b in MINI_CLASSES:
            if a != b and {a, b} != {"man speaking", "woman speaking"}:
                assert not n.overlap([a], [b]), (a, b)


def test_is_instrument(n):
    assert n.is_instrument(["Violin_fiddle", "Music"])
    assert not n.is_instrument(["violin", "rain"])
    assert not n.is_instrument([])


def test_find_in_text_spots_categories_in_captions(n):
    assert n.find_in_text("A man talks while rain falls and birds chirp in the distance") == [
        "man speaking",
        "rain",
        "bird chirping",
    ]
    assert n.find_in_text("A woman speaks; a dog barks twice") == ["woman speaking", "dog barking"]
    assert n.find_in_text("Someone plays an acoustic guitar") == ["acoustic guitar"]
    assert n.find_in_text("silence") == []
    assert n.find_in_text("a guitar strums, then an acoustic guitar") == ["guitar", "acoustic guitar"]


def test_extend_flat_and_structured(n):
    custom = TagNormaliser().extend({"rain": ["mizzle"], "sitar": []})
    assert custom.normalise("Mizzle") == "rain" and custom.normalise("sitar") == "sitar"
    custom.extend({"groups": {"water": ["rain", "running water"]}, "instruments": ["sitar"], "coarse": ["noise"]})
    assert custom.overlap(["rain"], ["stream"])
    assert custom.is_instrument(["sitar"])
    assert custom.normalise_all(["noise", "rain"]) == ["rain"]
    assert n.normalise("mizzle") == "mizzle"  # other normalisers unchanged


def test_from_yaml(tmp_path):
    path = tmp_path / "syn.yaml"
    path.write_text("synonyms:\n  dog barking: [hound]\ngroups:\n  animals: [dog barking, bird chirping]\n")
    n = TagNormaliser.from_yaml(path)
    assert n.normalise("Hound") == "dog barking"
    assert n.overlap(["hound"], ["chirping_birds"])
    assert TagNormaliser.from_yaml(None).normalise("violin") == "violin"
    empty = TagNormaliser(builtin=False)
    assert empty.normalise("Violin, fiddle") == "violin"  # unknown: first item


def test_bad_tables_raise_clear_errors(tmp_path):
    with pytest.raises(SepkitError, match="not found|cannot read"):
        TagNormaliser.from_yaml(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("synonyms: [unclosed\n")
    with pytest.raises(SepkitError, match="not valid YAML"):
        TagNormaliser.from_yaml(tmp_path / "bad.yaml")
    with pytest.raises(SepkitError, match="unknown section"):
        TagNormaliser().extend({"synonyms": {}, "typo": {}})
    with pytest.raises(SepkitError, match="mapping"):
        TagNormaliser().extend(["rain"])
    with pytest.raises(SepkitError, match="list of names"):
        TagNormaliser().extend({"rain": 3})
