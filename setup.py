"""Only the package list lives here (the rest is pyproject.toml): every package under protoseg/
(each layer type is one), and the top-level grammars/ folder installed as protoseg.grammars."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["protoseg", "protoseg.*"]) + ["protoseg.grammars"],
      package_dir={"protoseg.grammars": "grammars"})
