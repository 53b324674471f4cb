"""``python -m devstack.native`` (``make native``): compile the pure modules with mypyc.

Each module of ``leadrelay_shared.native.COMPILED`` is compiled in a scratch directory from a
copy of its package (mypyc type-checks it against the shared library's sources), and its
extension modules are copied to ``build/native/<package>/`` with a stamp of the sources. A
failed build leaves the previous state alone; the source then stays in use.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from leadrelay_shared.native import COMPILED, ROOT, build_dir, fingerprint, stamp_path

MYPY_INI = """[mypy]
mypy_path = {shared}
plugins = pydantic.mypy
"""


def build(module: str) -> Path:
    package, _, name = module.rpartition(".")
    source = ROOT / COMPILED[module][0]
    with tempfile.TemporaryDirectory(prefix="leadrelay-native-") as scratch:
        work = Path(scratch)
        shutil.copytree(source.parent, work / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "migrations"))
        (work / package / "__init__.py").write_text("")  # the copy must not load a build
        (work / "mypy.ini").write_text(MYPY_INI.format(shared=ROOT / "shared"))
        done = subprocess.run([sys.executable, "-m", "mypyc", f"{package}/{name}.py"],
                              cwd=work, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"mypyc could not compile {module}:\n"
                               + (done.stdout + done.stderr)[-3000:])
        target = build_dir() / package
        target.mkdir(parents=True, exist_ok=True)
        built = sorted((work / package).glob(f"{name}*.so"))
        if not built:
            raise RuntimeError(f"mypyc wrote no extension module for {module}")
        for old in target.glob(f"{name}*.so"):
            old.unlink()
        for path in built:
            shutil.copy2(path, target / path.name)
    stamp_path(module).write_text(fingerprint(module) + "\n")
    return target


def main() -> int:
    for module in COMPILED:
        try:
            where = build(module)
        except (RuntimeError, OSError) as exc:
            print(f"native: {exc}\nnative: {module} stays interpreted", file=sys.stderr)
            return 1
        print(f"native: {module} compiled into {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
