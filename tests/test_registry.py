import types
from dataclasses import dataclass

import pytest

from sepkit.errors import SepkitError
from sepkit.registry import Registry, split_section


class Widget:
    @dataclass
    class Config:
        size: int = 3
        label: str = "w"

    def __init__(self, config):
        self.config = config


sys_module = types.ModuleType("sepkit_test_widgets")
sys_module.Widget = Widget


@pytest.fixture
def registry(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "sepkit_test_widgets", sys_module)
    r = Registry()
    r.set_provider("dist-a", "1.0")
    r.register("separator", "widget", "sepkit_test_widgets:Widget", summary="a widget")
    return r


def test_entry_records_provider_and_is_lazy(registry):
    entry = registry.get("separator", "widget")
    assert entry.as_dict() == {
        "kind": "separator",
        "name": "widget",
        "target": "sepkit_test_widgets:Widget",
        "provider": "dist-a",
        "version": "1.0",
        "summary": "a widget",
    }


def test_build_fills_config(registry):
    w = registry.build("separator", {"name": "widget", "size": 5}, where="model.separator")
    assert w.config == Widget.Config(size=5, label="w")


def test_build_defaults_do_not_override_recipe(registry):
    w = registry.build("separator", {"name": "widget", "size": 5}, size=9, label="from-pipeline", unknown=1)
    assert w.config == Widget.Config(size=5, label="from-pipeline")


def test_unknown_key_names_full_path_and_allowed(registry):
    with pytest.raises(SepkitError, match=r"model\.separator\.sise.*allowed keys: size, label"):
        registry.build("separator", {"name": "widget", "sise": 5}, where="model.separator")


def test_wrong_type_names_key(registry):
    with pytest.raises(SepkitError, match=r"model\.separator\.size"):
        registry.build("separator", {"name": "widget", "size": "big"}, where="model.separator")


def test_duplicate_names_both_providers(registry):
    registry.set_provider("dist-b", "2.0")
    with pytest.raises(SepkitError, match=r"dist-a.*dist-b"):
        registry.register("separator", "widget", "other:Widget")


def test_unknown_name_lists_installed(registry):
    with pytest.raises(SepkitError, match=r"unknown separator 'gadget'; installed: widget"):
        registry.get("separator", "gadget")


def test_unknown_kind(registry):
    with pytest.raises(SepkitError, match="unknown component kind"):
        registry.entries("spaceship")
    with pytest.raises(SepkitError, match="unknown kind"):
        registry.register("spaceship", "x", "a:B")
    registry.add_kind("spaceship")
    registry.register("spaceship", "x", "a:B")
    assert [e.name for e in registry.entries("spaceship")] == ["x"]


def test_bad_target_and_import_errors(registry):
    with pytest.raises(SepkitError, match="module:Class"):
        registry.register("codec", "bad", "no_colon")
    registry.register("codec", "ghost", "sepkit_no_such_module:Thing")
    with pytest.raises(SepkitError, match="dist-a.*could not be imported"):
        registry.load_class("codec", "ghost")


def test_split_section():
    assert split_section({"name": "x", "freeze": True, "in_checkpoint": False, "a": 1}, "m") == ("x", {"a": 1})
    assert split_section("x", "m") == ("x", {})
    with pytest.raises(SepkitError, match="'name'"):
        split_section({"a": 1}, "model.decoder")
