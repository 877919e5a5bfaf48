"""Test-wide settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def single_torch_thread():
    """Run torch on one thread: the tiny test networks run faster that way on a
    shared 2-core machine, where two threads contend with other processes."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
