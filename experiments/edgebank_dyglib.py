"""EdgeBank with each of its memory modes on the real streams, against DyGLib's EdgeBank figures: a parameter-free
check that our test protocol (splits, batches, random / historical / inductive negatives, AP) reads like DyGLib's.

Usage:
    FIVEFOLD_DATA=../shared/data .venv/bin/python experiments/edgebank_dyglib.py [--seeds 0 1 2]

DyGLib (Yu et al. 2023) prints one EdgeBank figure per data set and negative sampler, each with the memory mode
its configuration picks for that pair (``utils/load_configs.py``): unlimited, a time window over the latest 15 %
of the history (``"recent_fraction"`` here), a window of the mean repeat interval (``"repeat_interval"``), or the
pairs seen at least as often as the mean pair (``"repeat_threshold"``). It averages the AP of each test batch of
200 links. Here every mode is run with every sampler; the table marks DyGLib's pick, and gives AP over the whole test
period and the mean of the batches' APs (DyGLib's rule). The protocol is ``experiments/temporal_links.py``'s (TGN's
70/15/15 split, new nodes hidden by the seed, batches of 200 never splitting a timestamp, negatives seeded); the
memory holds the training and validation events and the test batches before the scored one, as DyGLib's does.
EdgeBank has no parameters and its scores are 0 or 1, so seeds change only which nodes are hidden and which
negatives are drawn. A run takes seconds; the whole script about two minutes here.

Writes ``edgebank_dyglib.json`` and ``edgebank_dyglib.md`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from temporal_links import DYGLIB

from fivefold.data import load_stream
from fivefold.temporal import EdgeBank
from fivefold.train.temporal import fit_link_model, test_link_model

STREAMS = ("wikipedia", "enron", "collegemsg")
MEMORIES = ("unlimited", "recent_fraction", "repeat_interval", "repeat_threshold")
KINDS = ("random", "historical", "inductive")
# DyGLib's pick per negative sampler and data set (its configuration; DyGLib's "uci" is CollegeMsg)
DYGLIB_MEMORY = {
    "random": {"wikipedia": "unlimited", "collegemsg": "unlimited", "enron": "recent_fraction"},
    "historical": {"wikipedia": "repeat_threshold", "collegemsg": "recent_fraction", "enron": "repeat_interval"},
    "inductive": {"wikipedia": "repeat_threshold", "collegemsg": "repeat_interval", "enron": "repeat_threshold"},
}
DYGLIB_KEY = {"random": "transductive_random_ap", "historical": "transductive_historical_ap",
              "inductive": "transductive_inductive_ap"}


def run(stream_name: str, memory: str, seed: int, data_root: str | None) -> dict:
    stream = load_stream(stream_name, data_root)
    split = stream.split(seed=seed)
    model = EdgeBank(stream.num_nodes, memory=memory, fraction=0.15)
    began = time.perf_counter()
    fitted = fit_link_model(model, stream, split, epochs=1, seed=seed)
    test = test_link_model(model, stream, split, fitted, ranking_count=0)
    return {"stream": stream_name, "memory": memory, "seed": seed, "seconds": time.perf_counter() - began,
            **{f"{kind}_ap": test[f"transductive_{kind}_ap"] for kind in KINDS},
            **{f"{kind}_ap_per_batch": test[f"transductive_{kind}_ap_per_batch"] for kind in KINDS}}


def table(rows: list[dict]) -> str:
    def cell(chosen: list[dict], key: str) -> str:
        values = 100 * np.array([r[key] for r in chosen])
        return f"{values.mean():.2f} ± {values.std():.2f}"

    seeds = sorted({r["seed"] for r in rows})
    lines = [f"EdgeBank test AP, mean ± std over seeds {seeds}: over the whole test period / mean of the batches' "
             f"APs (DyGLib's rule). **Bold**: DyGLib's memory mode for that stream and sampler, beside its figure.",
             "", "| stream | negatives | DyGLib (its mode) | " + " | ".join(MEMORIES) + " |",
             "|---|---|---|" + "---|" * len(MEMORIES)]
    for stream in STREAMS:
        for kind in KINDS:
            picked = DYGLIB_MEMORY[kind][stream]
            cells = []
            for memory in MEMORIES:
                chosen = [r for r in rows if r["stream"] == stream and r["memory"] == memory]
                if not chosen:
                    cells.append("-")
                    continue
                text = f"{cell(chosen, f'{kind}_ap')} / {cell(chosen, f'{kind}_ap_per_batch')}"
                cells.append(f"**{text}**" if memory == picked else text)
            theirs = DYGLIB[DYGLIB_KEY[kind]][stream]["edgebank"]
            lines.append(f"| {stream} | {kind} | {theirs} ({picked}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", nargs="*", default=list(STREAMS), choices=STREAMS)
    parser.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="experiments/results/edgebank_dyglib")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for stream in args.streams:
        for memory in MEMORIES:
            for seed in args.seeds:
                rows.append(run(stream, memory, seed, args.data_root))
                r = rows[-1]
                print(f"{stream} {memory} seed {seed}: AP random {100 * r['random_ap']:.2f}, historical "
                      f"{100 * r['historical_ap']:.2f}, inductive {100 * r['inductive_ap']:.2f} "
                      f"({r['seconds']:.1f} s)", flush=True)
    (out / "edgebank_dyglib.json").write_text(json.dumps(rows, indent=1))
    (out / "edgebank_dyglib.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
