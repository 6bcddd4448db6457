import pytest
import torch

from dltoolbox import device, seeding


@pytest.fixture
def machine(monkeypatch):
    """Pretend to be a machine with or without CUDA and Apple MPS (torch's own availability checks mocked)."""
    monkeypatch.delenv(device.ENV_VAR, raising=False)

    def pretend(cuda=False, mps=False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return pretend


def test_env_var_selects_cpu(monkeypatch, machine, capsys):
    machine(cuda=True, mps=True)
    monkeypatch.setenv(device.ENV_VAR, "cpu")
    assert device.get_device() == torch.device("cpu")
    assert capsys.readouterr().out == "", "an explicit cpu needs no note"


def test_auto_falls_back_to_cpu_without_accelerators(machine, capsys):
    machine(cuda=False, mps=False)
    assert device.get_device() == torch.device("cpu")
    assert capsys.readouterr().out == "", "Linux without a GPU (the stored outputs' machine) prints nothing"


def test_auto_picks_cuda_when_present_silently(machine, capsys):
    machine(cuda=True, mps=False)
    assert device.get_device("auto") == torch.device("cuda")
    assert capsys.readouterr().out == ""


def test_auto_never_picks_mps_and_says_why(machine, capsys):
    machine(cuda=False, mps=True)
    assert device.get_device() == torch.device("cpu")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(device.NOTE_PREFIX), out
    assert "MPS" in out and f"{device.ENV_VAR}=mps" in out and "small" in out
    assert device.choose_device("auto") == (torch.device("cpu"), device.MPS_NOT_CHOSEN)


def test_notebook_device_line_keeps_its_format(machine, capsys):
    """The notebooks print f"Device: {device}" after get_device(); nbval compares that cell (sanitized)."""
    machine(cuda=False, mps=True)
    print(f"Device: {device.get_device()}")
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "Device: cpu" and all(l.startswith(device.NOTE_PREFIX) for l in lines[:-1])
    assert len(lines) == 2


def test_mps_only_on_request_with_a_note(monkeypatch, machine, capsys):
    machine(cuda=False, mps=True)
    monkeypatch.setenv(device.ENV_VAR, "mps")
    assert device.get_device() == torch.device("mps")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(device.NOTE_PREFIX) and "validated" in out, out
    assert device.choose_device("MPS") == (torch.device("mps"), device.MPS_ON_REQUEST)


def test_cuda_wins_over_mps_under_auto(machine):
    machine(cuda=True, mps=True)
    assert device.choose_device() == (torch.device("cuda"), None)


def test_unknown_device_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(device.ENV_VAR, "tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'.*DLTOOLBOX_DEVICE"):
        device.get_device()


def test_unavailable_cuda_is_a_clear_error(machine):
    machine(cuda=False, mps=True)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        device.get_device("cuda")


def test_unavailable_mps_is_a_clear_error(machine):
    machine(cuda=True, mps=False)
    with pytest.raises(RuntimeError, match="Apple MPS is not available"):
        device.get_device("mps")


def test_seed_everything_reproduces_torch_draws():
    seeding.seed_everything(3)
    a = torch.randn(5)
    seeding.seed_everything(3)
    assert torch.equal(a, torch.randn(5))
    assert torch.get_num_threads() == seeding.DEFAULT_THREADS


@pytest.mark.parametrize("bad", [-1, 1.5, "7", True])
def test_seed_everything_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        seeding.seed_everything(bad)


def test_generator_is_independent_of_global_state():
    a = torch.rand(3, generator=seeding.generator(11))
    torch.manual_seed(0)
    torch.rand(10)
    assert torch.equal(a, torch.rand(3, generator=seeding.generator(11)))
