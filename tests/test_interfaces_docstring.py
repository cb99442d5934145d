"""The module docstring of ``sepkit.interfaces`` shows each role's methods with their real parameter names."""

import inspect
import re

import sepkit.interfaces as interfaces

CALL = re.compile(r"\b([A-Z]\w+)\.(\w+)\(([^()]*)\)")


def shown_calls() -> list[tuple[str, str, list[str]]]:
    block = interfaces.__doc__.split("::", 1)[1].split("\n\n", 2)[1]  # the indented table of calls
    calls = []
    for role, method, args in CALL.findall(block):
        names = [a.split(":")[0].split("=")[0].strip() for a in args.split(",") if a.strip()]
        calls.append((role, method, names))
    return calls


def test_every_abstract_method_of_every_role_is_shown():
    shown = {(role, method) for role, method, _ in shown_calls()}
    abstract = {
        (name, method)
        for name, cls in vars(interfaces).items()
        if inspect.isclass(cls) and cls.__module__ in ("sepkit.interfaces", "sepkit.instructions")
        for method in getattr(cls, "__abstractmethods__", ())
    }
    assert abstract and abstract <= shown, abstract - shown


def test_shown_arguments_are_the_signatures_parameters():
    for role, method, names in shown_calls():
        parameters = list(inspect.signature(getattr(getattr(interfaces, role), method)).parameters)[1:]  # no self
        assert names == parameters[: len(names)], (role, method, names, parameters)
        required = [p for p in parameters if inspect.signature(getattr(getattr(interfaces, role), method))
                    .parameters[p].default is inspect.Parameter.empty]  # fmt: skip
        assert set(required) <= set(names), (role, method, required)
