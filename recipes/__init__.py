"""The bundled recipes and the mini weights they ship with, installed as the resources package ``sepkit_recipes``.

No code: ``setup.cfg`` maps this folder to ``sepkit_recipes`` and ships its ``*.yaml``, ``*.yml``
and ``*.ckpt`` files as package data; ``sepkit.recipe.recipes_dir()`` finds it through
``importlib.resources``, here in a checkout (``pip install -e .``) and in ``site-packages`` when
installed from a wheel.
"""
