"""Group-convolution speed: fivefold vs a plain torch conv of the same channel count vs escnn, in one run.

Usage:
    .venv/bin/python benchmarks/grids.py [--repeats 5] [--out benchmarks/results] [--no-escnn]

Cases (training mode, so fivefold expands its filter in every call; forward+backward with gradients into the input
and all parameters; median of ``--repeats`` timed calls after one warm-up):
- C4 and C8 group convolutions, 2D: batch 32, 16 -> 16 regular fields, 32x32, kernel 5 (C4: 64 -> 64 channels,
  C8: 128 -> 128 channels; C8 uses the steerable basis);
- O (24 cube rotations) group convolution, 3D: batch 4, 4 -> 4 regular fields (96 -> 96 channels), 16^3, kernel 3.
The plain conv is ``torch.nn.Conv2d/3d`` with the same tensor channel counts (the group conv's practical floor). The
forward time in eval mode (expanded filter cached) is reported as well.

escnn is a peer, never a dependency. Its package needs py3nj, which needs a Fortran compiler this machine lacks, and
py3nj only serves SO(3) Clebsch-Gordan coefficients that R2Conv/R3Conv on finite groups do not use; so the script
makes ``benchmarks/.venv-escnn`` with ``torch==2.13.0``, ``escnn --no-deps`` and escnn's other dependencies, and times
escnn's R2Conv / R3Conv there, in a child process of this run, on the same shapes (regular representations).
Prints a table and writes ``grids.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from _timing import forward_backward, timed

HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".venv-escnn"
CASES = {
    "C4": {"dim": 2, "group": "C4", "batch": 32, "fields": 16, "size": 32, "kernel": 5},
    "C8": {"dim": 2, "group": "C8", "batch": 32, "fields": 16, "size": 32, "kernel": 5},
    "O": {"dim": 3, "group": "O", "batch": 4, "fields": 4, "size": 16, "kernel": 3},
}
ORDERS = {"C4": 4, "C8": 8, "O": 24}






def bench_fivefold(repeats: int) -> dict:
    import torch

    from fivefold.grids import GroupConv2d, GroupConv3d
    from fivefold.groups import cube_rotations, cyclic, regular_field

    groups = {"C4": cyclic(4), "C8": cyclic(8), "O": cube_rotations()}
    results = {}
    for name, case in CASES.items():
        torch.manual_seed(0)
        group, fields, k = groups[case["group"]], case["fields"], case["kernel"]
        channels = fields * group.order
        shape = (case["batch"], channels) + (case["size"],) * case["dim"]
        x = torch.randn(shape, requires_grad=True)
        start = time.perf_counter()
        field_type = regular_field(group, fields)
        conv = (GroupConv2d if case["dim"] == 2 else GroupConv3d)(field_type, field_type, k)
        build = time.perf_counter() - start
        plain = (torch.nn.Conv2d if case["dim"] == 2 else torch.nn.Conv3d)(channels, channels, k, padding=k // 2)
        row = {"build_s": build, "fivefold_fwd_bwd_s": timed(forward_backward(conv, x), repeats),
               "plain_fwd_bwd_s": timed(forward_backward(plain, x), repeats)}
        conv.eval()
        plain.eval()
        with torch.no_grad():
            row["fivefold_eval_fwd_s"] = timed(lambda conv=conv, x=x: conv(x), repeats)
            row["plain_eval_fwd_s"] = timed(lambda plain=plain, x=x: plain(x), repeats)
        row["parameters"] = sum(p.numel() for p in conv.parameters())
        row["plain_parameters"] = sum(p.numel() for p in plain.parameters())
        results[name] = row
    return results


def bench_escnn(repeats: int) -> dict:
    """Runs inside the escnn venv."""
    import torch
    from escnn import gspaces
    from escnn import nn as enn

    results = {}
    for name, case in CASES.items():
        torch.manual_seed(0)
        start = time.perf_counter()
        if case["dim"] == 2:
            space = gspaces.rot2dOnR2(ORDERS[case["group"]])
        else:
            space = gspaces.octaOnR3()
        field = enn.FieldType(space, [space.regular_repr] * case["fields"])
        conv_class = enn.R2Conv if case["dim"] == 2 else enn.R3Conv
        conv = conv_class(field, field, case["kernel"], padding=case["kernel"] // 2)
        build = time.perf_counter() - start
        shape = (case["batch"], field.size) + (case["size"],) * case["dim"]
        tensor = torch.randn(shape, requires_grad=True)
        x = enn.GeometricTensor(tensor, field)

        def run(conv=conv, x=x, tensor=tensor):
            conv.zero_grad(set_to_none=True)
            tensor.grad = None
            conv(x).tensor.sum().backward()

        row = {"escnn_build_s": build, "escnn_fwd_bwd_s": timed(run, repeats),
               "escnn_parameters": sum(p.numel() for p in conv.parameters())}
        conv.eval()
        with torch.no_grad():
            row["escnn_eval_fwd_s"] = timed(lambda conv=conv, x=x: conv(x), repeats)
        results[name] = row
    return results


def ensure_escnn_venv() -> Path | None:
    python = PEER_VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {PEER_VENV} for escnn", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, "--no-deps", "escnn"], check=True)
        subprocess.run([*pip, "lie_learn", "pymanopt", "autograd", "sympy", "joblib", "scipy", "numpy<2"], check=True)
    except subprocess.CalledProcessError as error:
        print(f"escnn could not be installed ({error}); reporting fivefold and torch only", flush=True)
        return None
    return python


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--no-escnn", action="store_true", help="skip the escnn peer")
    parser.add_argument("--escnn-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.escnn_child:
        print(json.dumps(bench_escnn(args.repeats)))
        return

    import torch

    results = {"environment": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                               "machine": platform.processor() or platform.machine(), "repeats": args.repeats},
               "cases": CASES, "timings": bench_fivefold(args.repeats)}
    if not args.no_escnn:
        python = ensure_escnn_venv()
        if python is not None:
            child = subprocess.run([str(python), __file__, "--escnn-child", "--repeats", str(args.repeats)],
                                   capture_output=True, text=True)
            if child.returncode == 0:
                for name, row in json.loads(child.stdout.strip().splitlines()[-1]).items():
                    results["timings"][name].update(row)
                results["environment"]["escnn"] = subprocess.run(
                    [str(python), "-c", "import escnn; print(escnn.__version__)"], capture_output=True, text=True
                ).stdout.strip() or "unknown"
            else:
                print(f"escnn run failed:\n{child.stderr[-2000:]}", flush=True)

    header = (f"{'case':5s} {'channels':>9s} {'fivefold':>9s} {'plain':>8s} {'ratio':>6s} {'escnn':>8s} "
              f"{'ff/escnn':>8s} {'eval ff':>8s} {'eval plain':>10s} {'eval escnn':>10s}")
    print("forward+backward (train mode) and eval forward, seconds, median of", args.repeats)
    print(header)
    for name, row in results["timings"].items():
        row["ratio_to_plain"] = row["fivefold_fwd_bwd_s"] / row["plain_fwd_bwd_s"]
        escnn = row.get("escnn_fwd_bwd_s")
        if escnn:
            row["ratio_to_escnn"] = row["fivefold_fwd_bwd_s"] / escnn
        channels = CASES[name]["fields"] * ORDERS[name]
        print(f"{name:5s} {channels:>9d} {row['fivefold_fwd_bwd_s']:9.4f} {row['plain_fwd_bwd_s']:8.4f} "
              f"{row['ratio_to_plain']:6.2f} {escnn or float('nan'):8.4f} "
              f"{row.get('ratio_to_escnn', float('nan')):8.2f} "
              f"{row['fivefold_eval_fwd_s']:8.4f} {row['plain_eval_fwd_s']:10.4f} "
              f"{row.get('escnn_eval_fwd_s', float('nan')):10.4f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "grids.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {out / 'grids.json'}")


if __name__ == "__main__":
    main()
