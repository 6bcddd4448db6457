"""Where dltoolbox finds things: its own data (shipped inside the package) and the course checkout.

The package's data (the interview transcript, the corpora) is read through :mod:`importlib.resources`,
so it is found the same way in an editable install (``pip install -e ./code``) and in an installed
wheel. The chapters and the book exist only in a checkout of the course repository:
:func:`checkout_path` returns a path in it, or raises :class:`CheckoutNotFound` when dltoolbox runs
installed without one.
"""
from importlib import resources
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
ROOT = PACKAGE_DIR.parents[1]  # the repository root, when the package is the checkout's code/dltoolbox
IN_CHECKOUT = PACKAGE_DIR.parent.name == "code" and (ROOT / "_toc.yml").is_file()


class CheckoutNotFound(FileNotFoundError):
    """A path that only exists in a checkout of the course repository, asked for by an installed package."""


def data_file(name):
    """A file shipped in dltoolbox/data (an importlib.resources Traversable: a Path for installs on disk)."""
    return resources.files(__package__).joinpath("data").joinpath(name)


# A byte-for-byte copy of the course seed, seeds/000_236d15bae6bd2c15.txt, shipped inside the package
# so that an installed wheel has it too (tests/test_packaging.py checks that the two are identical).
TRANSCRIPT = data_file("transcript.txt")
TRANSCRIPT_SHA256 = "47cfecaebfdb6265a51bb4f64ca948be5afc8dba275d95c69417b38f06946f22"


def checkout_path(*parts):
    """ROOT / parts, a path in the course checkout; CheckoutNotFound when there is no checkout."""
    if not IN_CHECKOUT:
        where = "/".join(parts) or "the repository"
        raise CheckoutNotFound(
            f"{where}: dltoolbox is installed at {PACKAGE_DIR} without a checkout of the course repository, "
            f"so there is no {where}; work in a checkout (pip install -e ./code) or pass the paths explicitly"
        )
    return ROOT.joinpath(*parts)
