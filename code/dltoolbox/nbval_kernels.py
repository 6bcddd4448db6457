"""A pytest plugin: nbval validates every notebook once more on other CPU kernels.

PyTorch and MKL choose vector kernels per processor, so training digits differ between machines. The
stored outputs come from one run; nbval compares them exactly only in cells whose output is the same
on every machine (the others are tagged ``nbval-ignore-output`` and protected by assertions). Running
the notebooks again with other kernels forced on this machine checks both halves of that rule: the
compared cells really are processor-independent, and the asserted claims hold on other digits.

    pytest --nbval-cpu-kernels=default        # native run, then each notebook with ATen's scalar kernels
    pytest --nbval-cpu-kernels=default,avx2   # and with AVX2 kernels in ATen and MKL
    pytest --nbval-cpu-kernels=               # the native run only
"""
import contextlib
import os

import pytest

from .notebooks import KERNEL_SETTINGS

# Environment of each named kernel setting, applied to the notebook's kernel only.
CPU_KERNELS = {name: env for name, env in KERNEL_SETTINGS.items() if env}
MARK = "DLTOOLBOX_CPU_KERNELS"  # set in a variant's kernel to the setting's name


def parse_kernels(value):
    """The kernel setting names in a comma-separated list; a clear error for an unknown one."""
    names = [name.strip() for name in (value or "").split(",") if name.strip()]
    unknown = [name for name in names if name not in CPU_KERNELS]
    if unknown:
        raise pytest.UsageError(f"--nbval-cpu-kernels: unknown setting(s) {unknown}; "
                                f"choose from {sorted(CPU_KERNELS)}")
    return names


@contextlib.contextmanager
def environment(changes):
    """Set environment variables for the duration of the block, then put back what was there."""
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def pytest_addoption(parser):
    group = parser.getgroup("nbval")
    group.addoption("--nbval-cpu-kernels", action="store", default="",
                    help="also validate every notebook with these CPU kernel settings, comma-separated: "
                         + ", ".join(f"{k} ({' '.join(f'{a}={b}' for a, b in v.items())})"
                                     for k, v in CPU_KERNELS.items()))


def pytest_configure(config):
    for setting in parse_kernels(config.getoption("nbval_cpu_kernels")):
        config.pluginmanager.register(KernelVariant(setting), name=f"dltoolbox-cpu-kernels-{setting}")


class KernelVariant:
    """Collects each notebook a second time, as `<path>[<setting>]`, to run under one kernel setting."""

    def __init__(self, setting):
        self.setting = setting

    def pytest_collect_file(self, file_path, parent):
        config = parent.config
        if file_path.suffix != ".ipynb" or not (config.option.nbval or config.option.nbval_lax):
            return None
        from nbval.plugin import IPyNbFile

        setting = self.setting

        class KernelNbFile(IPyNbFile):
            def setup(self):
                with environment({**CPU_KERNELS[setting], MARK: setting}):
                    super().setup()  # starts the kernel, which inherits this environment

        rel = os.path.relpath(file_path, config.rootpath).replace(os.sep, "/")
        return KernelNbFile.from_parent(parent, path=file_path, name=f"{file_path.name}[{setting}]",
                                        nodeid=f"{rel}[{setting}]")
