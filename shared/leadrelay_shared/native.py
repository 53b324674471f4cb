"""Compiled builds of pure modules (mypyc), used only while they match their source.

``make native`` (part of ``make setup``) compiles the modules in ``COMPILED`` with mypyc into
``build/native/<package>/`` and writes beside each a stamp: the SHA-256 of the sources the build
was made from (the module and the first-party modules whose types it compiled against). A
package calls ``use_native`` from its ``__init__``: when every stamp matches the sources as they
are now, the build directory goes first on the package's ``__path__`` and Python imports the
compiled module; otherwise (no build, a stale build after an edit, ``LEADRELAY_NATIVE=0``) the
source is imported as always. Both behave the same; ``tests/unit/test_native.py`` replays seeded
decisions through both and compares them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import MutableSequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository, in a development checkout
# compiled module → the sources its build depends on (relative to the repository)
COMPILED: dict[str, tuple[str, ...]] = {
    "scoring.domain": ("services/scoring/scoring/domain.py", "services/scoring/scoring/model.py",
                       "shared/leadrelay_shared/contracts.py"),
}


def build_dir() -> Path:
    return Path(os.environ.get("LEADRELAY_NATIVE_DIR") or ROOT / "build" / "native")


def fingerprint(module: str, root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for source in COMPILED[module]:
        digest.update(source.encode() + b"\0" + (root / source).read_bytes() + b"\0")
    return digest.hexdigest()


def stamp_path(module: str, where: Path | None = None) -> Path:
    package, _, name = module.rpartition(".")
    return (where or build_dir()) / package / f"{name}.sha256"


def use_native(package_path: MutableSequence[str], package: str, *, root: Path | None = None,
               where: Path | None = None) -> bool:
    """Put the package's compiled modules first on its ``__path__`` if all are current.

    The sources are read from the checkout the package was imported from (``root``, by
    default found from ``package_path``), so a build is used only for the very files that
    Python would otherwise import."""
    if os.environ.get("LEADRELAY_NATIVE", "1") == "0":
        return False
    modules = [m for m in COMPILED if m.rpartition(".")[0] == package]
    if not modules:
        return False
    if root is None:
        root = _checkout_of(Path(package_path[0]), modules[0])
        if root is None:
            return False
    try:
        current = all(stamp_path(m, where).read_text().strip() == fingerprint(m, root)
                      for m in modules)
    except OSError:  # no build, or sources not where a checkout keeps them
        return False
    if not current:
        return False
    package_path.insert(0, str((where or build_dir()) / package))
    return True


def _checkout_of(package_dir: Path, module: str) -> Path | None:
    """The repository holding ``package_dir``, if it is laid out as ``COMPILED`` says."""
    relative = Path(COMPILED[module][0]).parent  # e.g. services/scoring/scoring
    package_dir = package_dir.resolve()
    if package_dir.parts[-len(relative.parts):] != relative.parts:
        return None
    return package_dir.parents[len(relative.parts) - 1]


def is_compiled(module: object) -> bool:
    return str(getattr(module, "__file__", "")).endswith((".so", ".pyd"))
