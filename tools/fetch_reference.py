"""Unpack the behavioural reference for the parity tests.

Downloads wageubn==1.2.0 and tqt==1.0.2 (wheels, without dependencies) and unpacks
their packages as ``tests/reference/wageubn_ref`` and ``tests/reference/tqt_ref``, so
they import beside this project under other names.  They need ``torch==2.13.0``.
Usage: ``python tools/fetch_reference.py``
"""
import pathlib
import shutil
import subprocess
import sys
import tempfile
import zipfile

PACKAGES = {"wageubn": ("1.2.0", "wageubn_ref"), "tqt": ("1.0.2", "tqt_ref")}
DEST = pathlib.Path(__file__).resolve().parents[1] / "tests" / "reference"


def main() -> None:
    DEST.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, (version, alias) in PACKAGES.items():
            subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                            "--only-binary=:all:", "-d", tmp, f"{name}=={version}"], check=True)
            wheel = next(pathlib.Path(tmp).glob(f"{name}-{version}-*.whl"))
            target = DEST / alias
            shutil.rmtree(target, ignore_errors=True)
            with zipfile.ZipFile(wheel) as zf:
                for member in zf.namelist():
                    if member.startswith(f"{name}/") and not member.endswith("/"):
                        out = target / member[len(name) + 1:]
                        out.parent.mkdir(parents=True, exist_ok=True)
                        out.write_bytes(zf.read(member))
            print(f"unpacked {name}=={version} as {target}")


if __name__ == "__main__":
    main()
