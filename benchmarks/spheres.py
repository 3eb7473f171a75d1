"""Icosahedral convolution speed: fivefold's IcoConv against a planar conv2d with the same pixels and channels.

Usage:
    .venv/bin/python benchmarks/spheres.py [--repeats 5] [--resolutions 4 5 6] [--out benchmarks/results]

For each resolution r: ``IcoConv(regular_field(F), regular_field(F), r=r)`` on a chart tensor
``[B, 6F, 5, 2^r, 2^(r+1)]``
(training mode: the filter is expanded, the charts padded with gauge shifts, the 12 icosahedron vertices averaged,
then one conv2d), forward+backward with gradients into the input and the weights, against ``torch.nn.Conv2d(6F, 6F,
3, padding=1)`` on an image ``[B, 6F, 5 * 2^r, 2^(r+1)]`` (the same number of pixels). Median of ``--repeats`` calls
after a warm-up. Prints a table and writes ``spheres.json`` to ``--out``. Target: at most 1.5x the planar conv.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from _timing import forward_backward, timed

from fivefold.spheres import IcoConv, regular_field

HERE = Path(__file__).resolve().parent






def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--resolutions", nargs="+", type=int, default=[4, 5, 6])
    parser.add_argument("--fields", type=int, default=8, help="regular C6 fields in and out (6x tensor channels)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    torch.manual_seed(0)
    channels = 6 * args.fields
    rows = []
    for r in args.resolutions:
        n = 2**r
        conv = IcoConv(regular_field(args.fields), regular_field(args.fields), r=r)
        plain = torch.nn.Conv2d(channels, channels, 3, padding=1)
        charts = torch.randn(args.batch, channels, 5, n, 2 * n, requires_grad=True)
        image = torch.randn(args.batch, channels, 5 * n, 2 * n, requires_grad=True)
        row = {"r": r, "vertices": 10 * 4**r + 2, "batch": args.batch, "channels": channels,
               "ico_fwd_bwd_s": timed(forward_backward(conv, charts), args.repeats),
               "plain_fwd_bwd_s": timed(forward_backward(plain, image), args.repeats)}
        with torch.no_grad():
            row["ico_fwd_s"] = timed(lambda conv=conv, charts=charts: conv(charts), args.repeats)
            row["plain_fwd_s"] = timed(lambda plain=plain, image=image: plain(image), args.repeats)
        row["ratio_fwd_bwd"] = row["ico_fwd_bwd_s"] / row["plain_fwd_bwd_s"]
        row["ratio_fwd"] = row["ico_fwd_s"] / row["plain_fwd_s"]
        rows.append(row)
    print(f"IcoConv regular -> regular, {args.fields} fields ({channels} channels), batch {args.batch}; seconds, "
          f"median of {args.repeats}")
    print(f"{'r':>2} {'vertices':>9} {'ico fwd':>9} {'conv fwd':>9} {'x':>5} {'ico f+b':>9} {'conv f+b':>9} {'x':>5}")
    for row in rows:
        print(f"{row['r']:>2} {row['vertices']:>9} {row['ico_fwd_s']:9.4f} {row['plain_fwd_s']:9.4f} "
              f"{row['ratio_fwd']:5.2f} {row['ico_fwd_bwd_s']:9.4f} {row['plain_fwd_bwd_s']:9.4f} "
              f"{row['ratio_fwd_bwd']:5.2f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"environment": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                              "machine": platform.processor() or platform.machine(), "repeats": args.repeats},
              "rows": rows}
    (out / "spheres.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {out / 'spheres.json'}")


if __name__ == "__main__":
    main()
