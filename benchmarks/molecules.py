"""Molecules per second: featurisation (SMILES -> graph) and training steps (batches of 64 molecules), fivefold
against chemprop 2 (D-MPNN) and torch_geometric (SchNet, DimeNet++ where it installs) in the same run.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python benchmarks/molecules.py [--threads 1] [--steps 20]

- Featurisation: Lipophilicity's 4,200 SMILES, RDKit parsing included, fivefold's ``smiles_to_graphs`` against
  chemprop's ``MoleculeDatapoint.from_smi`` + ``SimpleMoleculeMolGraphFeaturizer`` (its default "v2" features,
  which fivefold's version 1 features match column for column plus one ring column).
- D-MPNN step: forward, MSE loss, backward and an Adam step on a batch of 64 Lipophilicity molecules, chemprop's
  default sizes (hidden 300, depth 3, mean readout, FFN 300) on both sides; batch collation included (fivefold's
  ``Batch.from_graphs``, chemprop's ``collate_batch`` of its featurised datapoints).
- 3D step: the same on 64 QM9 molecules with their 5 Angstrom radius graph, SchNet (hidden 128, 128 filters, 6
  interactions, 50 Gaussians) against torch_geometric's ``SchNet`` with the same sizes and the same edges (its
  ``interaction_graph`` returns our edge list, so neither side pays for the neighbour search), timed alternately,
  twice each, keeping each side's faster median; fivefold's EGNN (7
  layers, 128) and tensor-product network (32 channels, l <= 2, 3 blocks) are timed beside them; DimeNet++ from
  torch_geometric if its triplet code runs without the optional compiled packages.

chemprop runs in ``benchmarks/.venv-chemprop`` (see ``experiments/moleculenet.py``), torch_geometric in the main venv
or ``benchmarks/.venv-peer``. Medians over ``--steps`` steps after a warm-up; one thread each. Writes
``benchmarks/results/molecules.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import ensure_peer, timed  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHEMPROP_PYTHON = ROOT / "benchmarks" / ".venv-chemprop" / "bin" / "python"

CHEMPROP_SCRIPT = r"""
import json, statistics, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
from chemprop import data, featurizers, models, nn
smiles, targets = json.load(open(sys.argv[1]))
featurizer = featurizers.SimpleMoleculeMolGraphFeaturizer()
start = time.perf_counter()
points = [data.MoleculeDatapoint.from_smi(s, [y]) for s, y in zip(smiles, targets)]
graphs = [featurizer(p.mol) for p in points]
featurise = time.perf_counter() - start
dataset = data.MoleculeDataset(points, featurizer)
dataset.cache = True
model = models.MPNN(nn.BondMessagePassing(), nn.MeanAggregation(), nn.RegressionFFN())
optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
steps = int(sys.argv[3])
rng = np.random.default_rng(0)
samples = []
for k in range(steps + 2):
    chosen = rng.choice(len(dataset), 64, replace=False)
    began = time.perf_counter()
    batch = data.collate_batch([dataset[i] for i in chosen])
    optimiser.zero_grad()
    prediction = model(batch.bmg)
    loss = torch.nn.functional.mse_loss(prediction, batch.Y)
    loss.backward()
    optimiser.step()
    if k >= 2:
        samples.append(time.perf_counter() - began)
print(json.dumps({"featurise_per_s": len(smiles) / featurise, "dmpnn_step_s": statistics.median(samples)}))
"""


def fivefold_2d(smiles: list[str], targets, steps: int) -> dict:
    import numpy as np
    import torch

    from fivefold.graphs import Batch
    from fivefold.molecules import DMPNN, smiles_to_graphs

    start = time.perf_counter()
    graphs, _ = smiles_to_graphs(smiles)
    featurise = time.perf_counter() - start
    y = torch.tensor(targets, dtype=torch.float32)[:, None]
    model = DMPNN(1)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)

    def step() -> None:
        chosen = rng.choice(len(graphs), 64, replace=False)
        batch = Batch.from_graphs([graphs[i] for i in chosen])
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch), y[chosen])
        loss.backward()
        optimiser.step()

    return {"featurise_per_s": len(smiles) / featurise, "dmpnn_step_s": timed(step, steps)}


def three_d(root: str | None, steps: int) -> dict:
    import numpy as np
    import torch

    from fivefold.data import load_qm9
    from fivefold.graphs import Batch
    from fivefold.molecules import EGNN, SchNet, TensorProductNet

    qm9 = load_qm9(root)
    rng = np.random.default_rng(0)
    batches = [Batch.from_graphs(qm9.graphs(rng.choice(len(qm9), 64, replace=False))) for _ in range(steps + 2)]
    targets = torch.randn(64, 1)
    out: dict[str, float] = {"atoms_per_batch": float(np.mean([b.num_nodes for b in batches])),
                             "edges_per_batch": float(np.mean([b.num_edges for b in batches]))}

    def timer(model, call) -> float:
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
        cursor = iter(range(10**9))

        def step() -> None:
            batch = batches[next(cursor) % len(batches)]
            optimiser.zero_grad()
            torch.nn.functional.l1_loss(call(model, batch), targets).backward()
            optimiser.step()

        return timed(step, steps)

    ours = SchNet(1, cutoff=5.0)
    out["fivefold_egnn_step_s"] = timer(EGNN(1), lambda m, b: m(b))
    out["fivefold_tensor_product_step_s"] = timer(TensorProductNet(1), lambda m, b: m(b))
    from torch_geometric.nn.models import SchNet as PygSchNet

    class GivenEdges(torch.nn.Module):
        """torch_geometric's SchNet asks this module for (edge_index, distances): it returns the batch's edges."""

        edge_index = None

        def forward(self, pos, _batch):
            return self.edge_index, (pos[self.edge_index[0]] - pos[self.edge_index[1]]).norm(dim=-1)

    pyg = PygSchNet(hidden_channels=128, num_filters=128, num_interactions=6, num_gaussians=50, cutoff=5.0,
                    interaction_graph=GivenEdges())

    def pyg_call(model, batch):
        model.interaction_graph.edge_index = batch.edge_index
        return model(batch.x[:, 0].long(), batch.pos, batch.batch)

    # the two SchNets alternate (ours, theirs, ours, theirs) and each keeps its faster median, so that a change in
    # load during the run does not favour one side
    rounds = [(timer(ours, lambda m, b: m(b)), timer(pyg, pyg_call)) for _ in range(2)]
    out["fivefold_schnet_step_s"] = min(r[0] for r in rounds)
    out["pyg_schnet_step_s"] = min(r[1] for r in rounds)
    try:
        from torch_geometric.nn.models import DimeNetPlusPlus

        dimenet = DimeNetPlusPlus(hidden_channels=128, out_channels=1, num_blocks=4, int_emb_size=64,
                                  basis_emb_size=8, out_emb_channels=256, num_spherical=7, num_radial=6, cutoff=5.0)
        out["pyg_dimenetpp_step_s"] = timer(dimenet, lambda m, b: m(b.x[:, 0].long(), b.pos, b.batch))
    except Exception as error:  # noqa: BLE001 - report why the optional peer could not run
        out["pyg_dimenetpp_error"] = f"{type(error).__name__}: {error}"[:300]
    return out


def main() -> None:
    ensure_peer()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "molecules.json")
    args = parser.parse_args()
    import torch

    from fivefold.data import load_moleculenet

    torch.set_num_threads(args.threads)
    table = load_moleculenet("lipophilicity", args.data_root)
    smiles, targets = table.smiles, table.targets[:, 0].tolist()
    results: dict = {"threads": args.threads, "steps": args.steps, "fivefold_2d": fivefold_2d(smiles, targets,
                                                                                               args.steps)}
    if CHEMPROP_PYTHON.exists():
        data_file = ROOT / "benchmarks" / "results" / ".lipo_smiles.json"
        data_file.write_text(json.dumps([smiles, targets]))
        env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
        done = subprocess.run([str(CHEMPROP_PYTHON), "-c", CHEMPROP_SCRIPT, str(data_file), str(args.threads),
                               str(args.steps)], capture_output=True, text=True, env=env)
        data_file.unlink()
        if done.returncode == 0:
            results["chemprop"] = json.loads(done.stdout.strip().splitlines()[-1])
        else:
            results["chemprop_error"] = done.stderr[-1000:]
    else:
        results["chemprop_error"] = f"{CHEMPROP_PYTHON} missing: run experiments/moleculenet.py once to build it"
    results["three_d"] = three_d(args.data_root, args.steps)
    args.out.write_text(json.dumps(results, indent=1))
    ours, theirs, td = results["fivefold_2d"], results.get("chemprop", {}), results["three_d"]
    rows = [("featurisation, molecules/s", ours["featurise_per_s"], theirs.get("featurise_per_s"), "chemprop"),
            ("D-MPNN training, molecules/s", 64 / ours["dmpnn_step_s"],
             64 / theirs["dmpnn_step_s"] if "dmpnn_step_s" in theirs else None, "chemprop"),
            ("SchNet training, molecules/s", 64 / td["fivefold_schnet_step_s"], 64 / td["pyg_schnet_step_s"],
             "torch_geometric"),
            ("EGNN training, molecules/s", 64 / td["fivefold_egnn_step_s"], None, "-"),
            ("tensor-product training, molecules/s", 64 / td["fivefold_tensor_product_step_s"], None, "-")]
    if "pyg_dimenetpp_step_s" in td:
        rows.append(("DimeNet++ training, molecules/s", None, 64 / td["pyg_dimenetpp_step_s"], "torch_geometric"))
    print(f"| measure ({args.threads} thread) | fivefold | peer | peer is | fivefold / peer |")
    print("|---|---|---|---|---|")
    for name, a, b, peer in rows:
        ratio = f"{a / b:.2f}x" if a and b else "-"
        print(f"| {name} | {a:,.0f} | {b:,.0f} | {peer} | {ratio} |" if b else
              f"| {name} | {a:,.0f} | - | {peer} | - |" if a else f"| {name} | - | {b:,.0f} | {peer} | - |")
    print(f"QM9 batches: {td['atoms_per_batch']:.0f} atoms, {td['edges_per_batch']:.0f} edges on average")
    if "pyg_dimenetpp_error" in td:
        print(f"DimeNet++ (torch_geometric) did not run: {td['pyg_dimenetpp_error']}")


if __name__ == "__main__":
    main()
