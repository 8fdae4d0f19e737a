"""Tiny models for the monitor tests: Gaussian weights (alpha well above 2) and Cauchy weights, the
constructed over-fit case (a heavy-tailed ESD: alpha about 1.4 in every layer)."""
import torch


def tiny_mlp(seed: int = 0, heavy_tailed: bool = False) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 10))
    if heavy_tailed:
        make_heavy_tailed(net, seed)
    return net


def make_heavy_tailed(net: torch.nn.Module, seed: int = 0) -> None:
    """Replaces every Linear weight by i.i.d. Cauchy entries (scaled small so training stays stable)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(0.01 * torch.distributions.StudentT(1.0).sample(module.weight.shape))


def batches(n: int, seed: int = 0, batch: int = 16):
    g = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(batch, 32, generator=g)
        yield x, (x[:, :10].argmax(dim=1))
