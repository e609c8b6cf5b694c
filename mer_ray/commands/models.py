"""`mer-ray models`: the bundled models, what they were trained on and how right they are."""
from __future__ import annotations

import argparse

NAME = "models"
HELP = "list the bundled models: training data, protocol, accuracy on data they never saw"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the full records as JSON")


def format_model(entry: dict) -> str:
    """A few lines about one bundled model (from bundle.json and card.json)."""
    info, card = entry["bundle"], entry.get("card", {})
    what = info.get("backbone") if info["kind"] == "visual" else (
        f"{info['recipe']} recipe, {info['classifier']}")
    flag = (f"--{info['kind']} default" if entry["name"] in ("visual", "audio")
            else "chosen by score itself")
    lines = [f"{entry['name']}  ({info['kind']}: {what}; {flag})"]
    for key in ("summary", "data", "protocol", "held_out", "use", "input", "limits"):
        if card.get(key):
            lines.append(f"  {key.replace('_', ' ')}: {card[key]}")
    lines.append(f"  model id: {info['model_id']}   card: {entry['path']}/MODEL_CARD.md")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    import json

    from mer_ray.models.bundled import list_bundled

    entries = list_bundled()
    if args.json:
        print(json.dumps(entries, indent=2))
    elif not entries:
        print("no bundled models in this install")
    else:
        print("\n\n".join(format_model(e) for e in entries))
    return 0
