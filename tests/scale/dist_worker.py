"""A torchrun worker for tests/scale/test_distributed.py (not a test module itself).

    torchrun --nproc_per_node=K tests/scale/dist_worker.py PARTITIONS SEEDS.npy CALL OUT_DIR IO_THREADS

Each rank samples its share of the seeds at sampler call CALL, runs a GraphSAGE and a GCN (float64, keyed dropout,
training mode) over the blocks, backpropagates through DistributedDataParallel with the whole-batch loss scaling of
``fivefold.train.distributed``, runs distributed layer-wise inference, and saves its results to OUT_DIR/rank-R.pt.
"""

import gc
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel

from fivefold.graphs import GCN, GraphSAGE
from fivefold.scale import open_partitions
from fivefold.scale.distributed import (
    DistributedNeighborSampler,
    Exchange,
    KeyedDropoutModel,
    distributed_layerwise_inference,
)


def main() -> None:
    partitions_path, seeds_file, call, out_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    io_threads = int(sys.argv[5])
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    exchange = Exchange()
    parts = open_partitions(partitions_path)
    part = parts.part(rank)
    seeds = np.load(seeds_file)
    mine = seeds[np.asarray(parts.book_part[seeds]) == rank]
    labels = torch.from_numpy(np.array(part.labels, dtype=np.int64))
    result = {"seeds": torch.from_numpy(mine), "global_ids": torch.from_numpy(np.array(part.global_ids))}
    for name, make in (("sage", GraphSAGE), ("gcn", GCN)):
        torch.manual_seed(0)
        model = KeyedDropoutModel(make(part.features.shape[1], 7, hidden=16, dropout=0.5)).double()
        ddp = DistributedDataParallel(model)
        sampler = DistributedNeighborSampler(parts, exchange, [4, 3], seed=11, degrees=name == "gcn",
                                             io_threads=io_threads)
        input_nodes, blocks = sampler.sample(mine, call=call)
        x, blocks = sampler.fetch_inputs(input_nodes, blocks)
        logits = ddp(x.double(), blocks, 1234)
        y = labels[torch.from_numpy(np.asarray(parts.book_local[mine], dtype=np.int64))]
        loss = F.cross_entropy(logits, y, reduction="sum") * world / len(seeds)
        loss.backward()
        result[f"{name}_logits"] = logits.detach()
        result[f"{name}_grads"] = {k: p.grad.clone() for k, p in model.named_parameters()}
        result[f"{name}_inference"] = distributed_layerwise_inference(model, sampler, chunk_size=500)
        result[f"{name}_bytes"] = exchange.bytes_sent
    torch.save(result, f"{out_dir}/rank-{rank}.pt")
    del ddp, sampler
    gc.collect()  # DistributedDataParallel sits in reference cycles: freed before the group, as the trainer does
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
