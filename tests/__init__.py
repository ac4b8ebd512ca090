"""StreamRec's tests, a package that mirrors ``src/streamrec`` (``tests/serve`` tests
``streamrec.serve``, ...). Run ``python -m pytest`` at the repository root; shared helpers
are imported by their package path (``from tests.serve._system import ...``) and shared
fixtures live in the ``conftest.py`` files."""
