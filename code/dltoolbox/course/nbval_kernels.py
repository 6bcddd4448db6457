"""A pytest plugin: nbval runs each notebook with the CPU kernels you choose, by default not your own.

PyTorch and MKL choose vector kernels per processor, so training digits differ between machines. The
stored outputs come from one run; nbval compares them exactly only in cells whose output is the same
on every machine (the others are tagged ``nbval-ignore-output`` and protected by assertions). Running
the notebooks with other kernels forced on this machine checks both halves of that rule: the compared
cells really are processor-independent, and the asserted claims hold on other digits.

    pytest --nbval-cpu-kernels=default         # each notebook with ATen's scalar kernels (pytest.ini)
    pytest --nbval-cpu-kernels=native,default  # on this processor's own kernels too
    pytest --nbval-cpu-kernels=native          # plain nbval
    pytest --nbval-cpu-kernels=avx2            # AVX2 kernels in ATen and MKL

It also leaves out of every compared cell's stored outputs the "needs a running kernel" note that
``python -m dltoolbox.course.notebooks clean`` puts above stored controls for the static book: a fresh run never
prints it, and the rest of the cell (the widget's text, what it prints) is still compared.
"""
import os

import pytest

from .notebooks import KERNEL_SETTINGS, environment, is_kernel_note

MARK = "DLTOOLBOX_CPU_KERNELS"  # set in a forced kernel to the setting's name


def parse_kernels(value):
    """The kernel setting names in a comma-separated list; a clear error for an unknown one or none."""
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    unknown = [name for name in names if name not in KERNEL_SETTINGS]
    if unknown or not names:
        raise pytest.UsageError(f"--nbval-cpu-kernels: unknown or no setting ({value!r}); "
                                f"choose one or more of {', '.join(KERNEL_SETTINGS)}")
    return names


def pytest_addoption(parser):
    group = parser.getgroup("nbval")
    group.addoption("--nbval-cpu-kernels", action="store", default="native",
                    help="validate every notebook with these CPU kernel settings, comma-separated: "
                         + ", ".join(f"{k} ({' '.join(f'{a}={b}' for a, b in v.items()) or 'as PyTorch chooses'})"
                                     for k, v in KERNEL_SETTINGS.items()) + " (default: native)")


def pytest_configure(config):
    config._dltoolbox_cpu_kernels = parse_kernels(config.getoption("nbval_cpu_kernels"))
    for setting in config._dltoolbox_cpu_kernels:
        if KERNEL_SETTINGS[setting]:
            config.pluginmanager.register(KernelVariant(setting), name=f"dltoolbox-cpu-kernels-{setting}")


def pytest_itemcollected(item):
    """An nbval cell compares its fresh outputs with the stored ones less the book's "needs a kernel" note."""
    from nbval.plugin import IPyNbCell

    if isinstance(item, IPyNbCell):
        item.cell.outputs = [output for output in item.cell.outputs if not is_kernel_note(output)]


def pytest_collection_modifyitems(config, items):
    """Without `native` in the settings, drop nbval's own run of each notebook (it uses this CPU's kernels)."""
    if "native" in config._dltoolbox_cpu_kernels:
        return
    from nbval.plugin import IPyNbFile

    native = [item for item in items
              if isinstance(item.parent, IPyNbFile) and getattr(item.parent, "setting", None) is None]
    if native:
        config.hook.pytest_deselected(items=native)
        dropped = set(native)
        items[:] = [item for item in items if item not in dropped]


class KernelVariant:
    """Collects each notebook again, as `<path>[<setting>]`, to run in a kernel with that setting's environment."""

    def __init__(self, setting):
        self.setting = setting

    def pytest_collect_file(self, file_path, parent):
        config = parent.config
        if file_path.suffix != ".ipynb" or not (config.option.nbval or config.option.nbval_lax):
            return None
        from nbval.plugin import IPyNbFile

        class KernelNbFile(IPyNbFile):
            setting = self.setting

            def setup(self):
                with environment({**KERNEL_SETTINGS[self.setting], MARK: self.setting}):
                    super().setup()  # starts the kernel, which inherits this environment

        rel = os.path.relpath(file_path, config.rootpath).replace(os.sep, "/")
        return KernelNbFile.from_parent(parent, path=file_path, name=f"{file_path.name}[{self.setting}]",
                                        nodeid=f"{rel}[{self.setting}]")
