"""Write a zoo model's reference checkpoint (timm's layout and names) with seeded weights.

    python benchmarks/reference_file.py resnet18 resnet18_timm.pth

The names, shapes and dtypes come from ``tests/data/zoo/NAME.json``, recorded from timm itself,
and the values from :func:`archspec.testing.seeded_state_dict`, so the file is what
``torch.save(timm.create_model(NAME).state_dict())`` writes, with other numbers. It stands in for
a downloaded checkpoint where there is no network; ``archspec convert`` and ``fit --weights`` read
both alike.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from archspec.testing import seeded_state_dict

ZOO = Path(__file__).resolve().parent.parent / "tests" / "data" / "zoo"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="a model of tests/data/zoo, e.g. resnet18")
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    reference = json.loads((ZOO / f"{args.name}.json").read_text())
    weights = seeded_state_dict(reference["state_dict"], seed=reference["weights_seed"])
    torch.save(weights, args.output)
    print(f"wrote {len(weights)} tensors in the layout of {args.name} from {reference['reference']} to {args.output}")


if __name__ == "__main__":
    main()
