"""The one compiled part of switchboard (everything else is in pyproject.toml):
the AMI frame parser's fast path, switchboard/ami_listener/_fastframe.pyx, built with
Cython at install.  Optional: where no C compiler is found the install goes on
and the listener uses the pure-Python parser (same rows, slower;
docs/testing.md, "Benchmark")."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("switchboard.ami_listener._fastframe",
                             ["switchboard/ami_listener/_fastframe.pyx"], optional=True)])
