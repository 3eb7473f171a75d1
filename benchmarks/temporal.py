"""Temporal training and streaming-inference speed: fivefold's TGN vs torch_geometric's TGN, same sizes, one run.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python benchmarks/temporal.py [--epochs 5] [--seeds 0 1 2] \\
        [--stream wikipedia]

Both train the TGN of Rossi et al. 2020 with the same sizes (memory, time encoding and embedding 100 wide, 2
attention heads, 10 most recent neighbours, GRU memory with the last-message aggregator, batches of 200, Adam at
1e-4, one random negative per positive drawn from the same seeded generator) on the training events of the largest
stream here (JODIE Wikipedia, 157k events), alternating one epoch of each. Events carry a 1-wide zero feature in both
(torch_geometric's message store cannot hold 0-wide messages). After each epoch both score the validation events
(AP, random negatives) with their memory carried on, and at the end the test events: streaming inference (score a
batch, then feed it) without gradients. Reported: training events/s, streaming events/s, validation AP per epoch and
test AP. The whole comparison runs once per seed (model initialisation and negatives; the split is fixed): speeds
are medians over all epochs and seeds, accuracies the mean and standard deviation over seeds, since one run of
torch_geometric's example differs from the next by about 0.01 in test AP. Each library draws from its own torch
random state, saved and restored around its turns, so the alternation does not change either's dropout masks: each
trains as it would alone (until 2026-12-04 the two shared one state). torch_geometric comes from
``benchmarks/.venv-peer`` (see ``_timing.ensure_peer``).

The models are not identical, so accuracy is compared, not just speed: torch_geometric's example embeds each node
once per batch at its memory's last update (``TransformerConv`` over the last neighbours), fivefold embeds each
(node, time) query at its own time as the TGN paper does, and batches never split a timestamp. Both sample
neighbours only from earlier batches (``link_pass(..., in_batch_history=False)``, as torch_geometric's
``LastNeighborLoader`` is filled after each batch), where fivefold's default also reads the batch's own earlier
events.

Writes ``benchmarks/results/temporal.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from _timing import ensure_peer

HERE = Path(__file__).resolve().parent


def pyg_tgn(num_nodes: int, size: int):
    import torch
    from torch_geometric.nn import TGNMemory, TransformerConv
    from torch_geometric.nn.models.tgn import IdentityMessage, LastAggregator, LastNeighborLoader

    class Embedding(torch.nn.Module):  # the graph attention embedding of torch_geometric's examples/tgn.py
        def __init__(self, time_enc) -> None:
            super().__init__()
            self.time_enc = time_enc
            self.conv = TransformerConv(size, size // 2, heads=2, dropout=0.1, edge_dim=1 + time_enc.out_channels)

        def forward(self, x, last_update, edge_index, t, msg):
            rel_t = self.time_enc((last_update[edge_index[0]] - t).to(x.dtype))
            return self.conv(x, edge_index, torch.cat([rel_t, msg], dim=-1))

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.src, self.dst, self.out = (torch.nn.Linear(size, size), torch.nn.Linear(size, size),
                                            torch.nn.Linear(size, 1))

        def forward(self, z_src, z_dst):
            return self.out((self.src(z_src) + self.dst(z_dst)).relu()).squeeze(-1)

    memory = TGNMemory(num_nodes, 1, size, size, message_module=IdentityMessage(1, size, size),
                       aggregator_module=LastAggregator())
    embedding, decoder = Embedding(memory.time_enc), Decoder()
    return memory, embedding, decoder, LastNeighborLoader(num_nodes, size=10)


class PygRunner:
    """torch_geometric's TGN training / streaming loop (examples/tgn.py), on our batches and negatives."""

    def __init__(self, stream, seed: int) -> None:
        import torch
        torch.manual_seed(seed)
        self.stream = stream
        self.memory, self.embedding, self.decoder, self.neighbours = pyg_tgn(stream.num_nodes, 100)
        self.parameters = (list(self.memory.parameters()) + list(self.embedding.parameters())
                           + list(self.decoder.parameters()))
        self.optimiser = torch.optim.Adam(set(self.parameters), lr=1e-4)
        self.assoc = torch.empty(stream.num_nodes, dtype=torch.long)
        self.t = stream.t.long()
        self.msg = torch.zeros(len(stream), 1)

    def reset(self) -> None:
        self.memory.reset_state()
        self.neighbours.reset_state()

    def scores(self, src, dst, neg_dst):
        import torch
        n_id = torch.cat([src, dst, neg_dst]).unique()
        n_id, edge_index, e_id = self.neighbours(n_id)
        self.assoc[n_id] = torch.arange(n_id.size(0))
        z, last_update = self.memory(n_id)
        z = self.embedding(z, last_update, edge_index, self.t[e_id], self.msg[e_id])
        return (self.decoder(z[self.assoc[src]], z[self.assoc[dst]]),
                self.decoder(z[self.assoc[src]], z[self.assoc[neg_dst]]))

    def run(self, events, bounds, negatives, train: bool):
        import torch
        for module in (self.memory, self.embedding, self.decoder):
            module.train(train)
        positive, negative = [], []
        for start, stop in bounds:
            batch = events[start:stop]
            index = torch.from_numpy(batch)
            src, dst, t, msg = self.stream.src[index], self.stream.dst[index], self.t[index], self.msg[index]
            neg_dst = negatives.sample(batch)[1]
            with torch.set_grad_enabled(train):
                pos, neg = self.scores(src, dst, neg_dst)
                if train:
                    self.optimiser.zero_grad()
                    loss = (torch.nn.functional.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
                            + torch.nn.functional.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg)))
            self.memory.update_state(src, dst, t, msg)
            self.neighbours.insert(src, dst)
            if train:
                loss.backward()
                self.optimiser.step()
                self.memory.detach()
            positive.append(pos.detach())
            negative.append(neg.detach())
        return torch.cat(positive), torch.cat(negative)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stream", default="wikipedia")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                        help="repeat the comparison from these seeds (model initialisation and negatives)")
    parser.add_argument("--limit", type=int, default=None, help="use only this many training events (a quick try)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    ensure_peer()

    import numpy as np
    import torch
    import torch_geometric

    from fivefold.data import load_stream
    from fivefold.ops import average_precision
    from fivefold.temporal import TGN, EventStream
    from fivefold.temporal.evaluation import NegativeSampler, link_pass, time_batches

    torch.set_num_threads(torch.get_num_threads())
    loaded = load_stream(args.stream, args.data_root)
    stream = EventStream(loaded.src, loaded.dst, loaded.t, features=torch.zeros(len(loaded), 1),
                         num_nodes=loaded.num_nodes)
    split = stream.split(seed=0)
    train = split.train[:args.limit] if args.limit else split.train
    times = stream.t.numpy()

    def ap(pos, neg) -> float:
        return average_precision(torch.cat([pos, neg]), torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]))

    rows, streaming = [], []
    for seed in args.seeds:
        torch.manual_seed(seed)
        ours = TGN(stream.num_nodes, 1, memory_dim=100, time_dim=100, embedding_dim=100, neighbours=10, seed=seed)
        our_optimiser = torch.optim.Adam(ours.parameters(), lr=1e-4, fused=True)
        # each library keeps its own torch RNG stream (dropout, initialisation), saved and restored around its
        # turns, so alternating epochs leaves each one's random draws as they would be if it ran alone
        rng = {"fivefold": torch.get_rng_state()}
        theirs = PygRunner(stream, seed=seed)
        rng["pyg"] = torch.get_rng_state()
        for epoch in range(1, args.epochs + 1):
            for name in ("fivefold", "pyg"):
                torch.set_rng_state(rng[name])
                train_negatives = NegativeSampler(stream, "random", candidates=train, seed=1000 * seed + epoch)
                val_negatives = NegativeSampler(stream, "random", seed=1000 * seed + 1)
                began = time.perf_counter()
                if name == "fivefold":
                    ours.reset()
                    link_pass(ours, stream, train, optimiser=our_optimiser, negatives={"random": train_negatives},
                              in_batch_history=False)
                    trained = time.perf_counter() - began
                    scored = link_pass(ours, stream, split.val, negatives={"random": val_negatives},
                                       in_batch_history=False)
                    val_ap = ap(scored.positive, scored.negative["random"])
                else:
                    theirs.reset()
                    theirs.run(train, time_batches(times[train], 200), train_negatives, train=True)
                    trained = time.perf_counter() - began
                    val_ap = ap(*theirs.run(split.val, time_batches(times[split.val], 200), val_negatives, False))
                rng[name] = torch.get_rng_state()
                rows.append({"seed": seed, "epoch": epoch, "library": name, "train_seconds": trained,
                             "train_events_per_s": len(train) / trained, "val_ap": val_ap})
                print(f"seed {seed} epoch {epoch} {name:9s} train {len(train) / trained:8.0f} events/s, "
                      f"val AP {val_ap:.4f}", flush=True)
        for name in ("fivefold", "pyg"):
            torch.set_rng_state(rng[name])
            negatives = NegativeSampler(stream, "random", seed=1000 * seed + 2)
            began = time.perf_counter()
            with torch.no_grad():
                if name == "fivefold":
                    scored = link_pass(ours, stream, split.test, negatives={"random": negatives},
                                       in_batch_history=False)
                    pos, neg = scored.positive, scored.negative["random"]
                else:
                    pos, neg = theirs.run(split.test, time_batches(times[split.test], 200), negatives, False)
            seconds = time.perf_counter() - began
            streaming.append({"seed": seed, "library": name, "events_per_s": len(split.test) / seconds,
                              "test_ap": ap(pos, neg)})
    summary = {}
    for name in ("fivefold", "pyg"):
        mine = [row for row in rows if row["library"] == name]
        last = [row["val_ap"] for row in mine if row["epoch"] == args.epochs]
        tests = [row["test_ap"] for row in streaming if row["library"] == name]
        summary[name] = {
            "train_events_per_s_median": float(np.median([r["train_events_per_s"] for r in mine])),
            "val_ap_last": float(np.mean(last)), "val_ap_last_std": float(np.std(last)),
            "streaming_events_per_s": float(np.median([r["events_per_s"] for r in streaming if r["library"] == name])),
            "streaming_test_ap": float(np.mean(tests)), "streaming_test_ap_std": float(np.std(tests)),
            "test_ap_per_seed": tests}
    speedup = summary["fivefold"]["train_events_per_s_median"] / summary["pyg"]["train_events_per_s_median"]
    # this machine's speed drifts by tens of percent within minutes: the two sides' epochs alternate, so each
    # epoch's ratio compares them under about the same conditions
    pair_ratios = [ours["train_events_per_s"] / theirs["train_events_per_s"]
                   for ours, theirs in zip(rows[0::2], rows[1::2], strict=True)]
    stream_speedup = summary["fivefold"]["streaming_events_per_s"] / summary["pyg"]["streaming_events_per_s"]
    print(f"\n{len(args.seeds)} seed(s); AP: mean ± std over seeds")
    print(f"{'':10s} {'train ev/s':>11s} {'stream ev/s':>12s} {'val AP':>16s} {'test AP':>16s}")
    for name in ("fivefold", "pyg"):
        s = summary[name]
        print(f"{name:10s} {s['train_events_per_s_median']:11.0f} {s['streaming_events_per_s']:12.0f} "
              f"{s['val_ap_last']:8.4f} ± {s['val_ap_last_std']:.4f} "
              f"{s['streaming_test_ap']:8.4f} ± {s['streaming_test_ap_std']:.4f}")
    print(f"speed-up: training {speedup:.2f}x (ratio of medians; median of the per-epoch ratios "
          f"{float(np.median(pair_ratios)):.2f}x, each epoch {', '.join(f'{r:.2f}' for r in pair_ratios)}), "
          f"streaming inference {stream_speedup:.2f}x")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "temporal.json").write_text(json.dumps({
        "stream": args.stream, "train_events": len(train), "epochs": args.epochs, "seeds": args.seeds, "rows": rows,
        "streaming": streaming, "summary": summary,
        "train_speedup": speedup, "train_speedup_per_epoch": pair_ratios,
        "train_speedup_median_per_epoch": float(np.median(pair_ratios)), "streaming_speedup": stream_speedup,
        "torch": torch.__version__, "torch_geometric": torch_geometric.__version__, "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine()}, indent=1))


if __name__ == "__main__":
    main()
