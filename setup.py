"""Which packages sepkit installs, found rather than listed: the core (sepkit.*), each built-in plugin under
plugins/ (named once, by its entry point in setup.cfg) and the recipes folder as the resources package
sepkit_recipes (bundled recipes and their shipped weights). Everything else is in setup.cfg."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["sepkit", "sepkit.*"]) + find_packages("plugins") + ["sepkit_recipes"],
    package_dir={"": "plugins", "sepkit": "sepkit", "sepkit_recipes": "recipes"},
)
