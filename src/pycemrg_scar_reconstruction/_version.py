"""The package version, read once from the installed package's metadata (pyproject.toml is its one source)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pycemrg-scar-reconstruction")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
