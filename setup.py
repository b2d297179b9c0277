"""Build of the wageubn._C extension (all of csrc/ against the NumPy C API)."""
import glob
import os

import numpy
from setuptools import Extension, setup

# -ffp-contract=off: a product and a sum are never fused into one rounding (exact formulas).
compile_args = ["-std=c11", "-O3", "-Wall", "-Wextra", "-fopenmp", "-ffp-contract=off"]
link_args = ["-fopenmp"]
# WAGEUBN_SANITIZE=1 builds with AddressSanitizer and UBSan for the reliability suite.
if os.environ.get("WAGEUBN_SANITIZE"):
    sanitize = ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"]
    compile_args = [a for a in compile_args if a != "-O3"] + ["-O1", "-g"] + sanitize
    link_args += sanitize

setup(
    ext_modules=[
        Extension(
            "wageubn._C",
            sources=sorted(glob.glob("csrc/*.c")),
            include_dirs=["csrc", numpy.get_include()],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
    ]
)
