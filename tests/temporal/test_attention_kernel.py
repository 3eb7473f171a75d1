"""The fused attention kernel: equal to the same function written with torch ops, correct gradients for every
differentiable input (gradcheck, float64, dropout on), the same result for any thread count, bad input refused."""

from __future__ import annotations

import math

import numba
import pytest
import torch

from fivefold.errors import OpsError
from fivefold.temporal._attention_kernels import neighbour_attention


def inputs(seed: int = 0, Q: int = 7, k: int = 4, H: int = 2, dh: int = 3, U: int = 5, T: int = 6, E: int = 2,
           dropout: bool = True, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    mask = torch.rand(Q, k, generator=g) > 0.3
    mask[0] = False  # a query without earlier events
    keep = (torch.rand(Q, k, H, generator=g) > 0.2).to(dtype) / 0.8 if dropout else None
    return {"query": r(Q, H, dh), "keys": r(U, H, dh), "values": r(U, H, dh), "time_query": r(Q, H, T),
            "edge_query": r(Q, H, E), "dt": torch.rand(Q, k, generator=g, dtype=dtype) * 5,
            "frequency": r(T).abs(), "phase": r(T), "neighbours": torch.randint(0, U, (Q, k), generator=g),
            "mask": mask, "edge": r(Q, k, E), "keep": keep, "scale": 1 / math.sqrt(dh)}


def written_out(query, keys, values, time_query, edge_query, dt, frequency, phase, neighbours, mask, edge, keep,
                scale):
    """The kernel's function with plain torch ops, per neighbour."""
    phi = torch.cos(dt.unsqueeze(-1) * frequency + phase)  # [Q, k, T]
    key = keys[neighbours]  # [Q, k, H, dh]
    scores = ((key * query.unsqueeze(1)).sum(-1) + torch.einsum("qkt,qht->qkh", phi, time_query)
              + torch.einsum("qke,qhe->qkh", edge, edge_query)) * scale
    scores = scores.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    anyone = mask.any(1).view(-1, 1, 1)
    weights = torch.softmax(scores.masked_fill(~anyone, 0.0), dim=1) * anyone
    if keep is not None:
        weights = weights * keep
    return ((weights.unsqueeze(-1) * values[neighbours]).sum(1), torch.einsum("qkh,qkt->qht", weights, phi),
            torch.einsum("qkh,qke->qhe", weights, edge))


DIFFERENTIABLE = ("query", "keys", "values", "time_query", "edge_query", "dt", "frequency", "phase")


@pytest.mark.parametrize(("dropout", "E"), [(False, 0), (True, 2)])
def test_kernel_equals_the_written_out_function_and_has_correct_gradients(dropout, E):
    args = inputs(E=E, dropout=dropout)
    for name, expected in zip(("values", "phi", "edge"), written_out(**args), strict=True):
        got = dict(zip(("values", "phi", "edge"), neighbour_attention(**args), strict=True))[name]
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    leaves = {name: args[name].clone().requires_grad_() for name in DIFFERENTIABLE}

    def run(*tensors):
        return neighbour_attention(**{**args, **dict(zip(DIFFERENTIABLE, tensors, strict=True))})

    assert torch.autograd.gradcheck(run, tuple(leaves.values()))
    # and the gradients equal autograd's through the written-out function
    mine = torch.autograd.grad(sum((o * torch.randn_like(o, generator=torch.Generator().manual_seed(i))).sum()
                                   for i, o in enumerate(run(*leaves.values()))), tuple(leaves.values()))
    theirs = torch.autograd.grad(sum((o * torch.randn_like(o, generator=torch.Generator().manual_seed(i))).sum()
                                     for i, o in enumerate(written_out(**{**args, **leaves}))),
                                 tuple(leaves.values()))
    for name, a, b in zip(DIFFERENTIABLE, mine, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11, msg=lambda m, name=name: f"{name}: {m}")


def test_kernel_gives_the_same_bits_for_any_thread_count():
    args = inputs(Q=300, k=10, U=40, T=16, dtype=torch.float32)
    results = []
    before = numba.get_num_threads()
    try:
        for threads in sorted({1, before}):
            numba.set_num_threads(threads)
            leaves = {name: args[name].clone().requires_grad_() for name in DIFFERENTIABLE}
            out = neighbour_attention(**{**args, **leaves})
            sum(o.square().sum() for o in out).backward()
            results.append([*out, *(leaf.grad for leaf in leaves.values())])
    finally:
        numba.set_num_threads(before)
    for a, b in zip(results[0], results[-1], strict=True):
        assert torch.equal(a, b)


def test_kernel_refuses_bad_input():
    args = inputs()
    with pytest.raises(OpsError, match="neighbour rows"):
        neighbour_attention(**{**args, "neighbours": args["neighbours"].clone().fill_(5)})
    with pytest.raises(OpsError, match="time_query must have shape"):
        neighbour_attention(**{**args, "time_query": args["time_query"][:, :, :3]})
    with pytest.raises(OpsError, match="one dtype"):
        neighbour_attention(**{**args, "keys": args["keys"].float()})
    with pytest.raises(OpsError, match="keep must have shape"):
        neighbour_attention(**{**args, "keep": args["keep"][:, :2]})


def test_fused_float32_time_encoding_is_accurate():
    """float32 runs compute cos and sin in the kernel (polynomials after a float64 range reduction): outputs and
    gradients agree with the float64 path through torch's cos and sin, for arguments up to 1e7 radians (timestamps
    in seconds), to float32 precision; torch's float32 path, which rounds the argument to float32 first, is far
    worse there and is the reason for the float64 reduction."""
    args = inputs(Q=50, k=6, U=20, T=40, dtype=torch.float32)
    args["dt"] = (10.0 ** torch.empty(50, 6).uniform_(-3, 7, generator=torch.Generator().manual_seed(1))).float()
    args["frequency"] = 10.0 ** -torch.linspace(0, 9, 40)

    def run(dtype, fused):
        cast = {name: value.to(dtype) if torch.is_tensor(value) and value.is_floating_point() else value
                for name, value in args.items()}
        leaves = {name: cast[name].clone().requires_grad_() for name in DIFFERENTIABLE}
        out = neighbour_attention(**{**cast, **leaves}, fused_time=fused)
        sum((o * torch.linspace(-1, 1, o.numel(), dtype=dtype).view_as(o)).sum() for o in out).backward()
        return {"values": out[0], "phi": out[1], "edge": out[2], **{name: leaf.grad for name, leaf in leaves.items()}}

    truth, fused = run(torch.float64, False), run(torch.float32, True)
    eps = torch.finfo(torch.float32).eps
    for name, expected in truth.items():
        error = (fused[name].double() - expected).abs().max() / expected.abs().max().clamp(min=1e-30)
        assert error < 100 * eps, (name, float(error))
