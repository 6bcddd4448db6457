import pytest
import torch

from dltoolbox import device, seeding


def test_env_var_selects_cpu(monkeypatch):
    monkeypatch.setenv(device.ENV_VAR, "cpu")
    assert device.get_device() == torch.device("cpu")


def test_auto_falls_back_to_cpu_without_accelerators(monkeypatch):
    monkeypatch.delenv(device.ENV_VAR, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "_mps_available", lambda: False)
    assert device.get_device() == torch.device("cpu")


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.setattr(device, "_mps_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.get_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.get_device("auto") == torch.device("cuda")


def test_unknown_device_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(device.ENV_VAR, "tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'.*DLTOOLBOX_DEVICE"):
        device.get_device()


def test_unavailable_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        device.get_device("cuda")


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
