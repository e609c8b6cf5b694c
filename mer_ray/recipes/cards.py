"""Model cards for the bundled models: card.json (facts `mer-ray models` prints) and MODEL_CARD.md
(the same facts as prose plus tables), written from the run's own metrics so no figure is
typed twice. Also the framing picture: a score crop from a real video beside FER2013 faces."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mer_ray.config import EMOTIONS


def metrics_table(metrics: dict) -> str:
    """Per-class precision / recall / F1 as a Markdown table."""
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name in EMOTIONS:
        c = metrics["per_class"][name]
        lines.append(f"| {name} | {c['precision']:.3f} | {c['recall']:.3f} | {c['f1']:.3f} | "
                     f"{c.get('support', '')} |")
    return "\n".join(lines)


def write_card(run_dir: str | Path, card: dict, sections: list[tuple[str, str]]) -> None:
    """card.json from ``card`` and MODEL_CARD.md: a title, the card's facts, then ``sections``
    (heading, Markdown body)."""
    run_dir = Path(run_dir)
    (run_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    facts = "\n".join(f"- **{k.replace('_', ' ')}**: {v}" for k, v in card.items()
                      if k != "title")
    body = "\n\n".join(f"## {head}\n\n{text.strip()}" for head, text in sections)
    (run_dir / "MODEL_CARD.md").write_text(f"# {card['title']}\n\n{facts}\n\n{body}\n")


def save_framing_png(video: str, fer_dir: str, path: str | Path, zoom: float) -> str:
    """Left: the face crop score makes from ``video`` (Haar box, 200x200); middle: FER2013
    faces as they are; right: the same faces zoomed in by ``zoom`` (a Haar-box framing)."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mer_ray.data.image_folders import read_image_folder
    from mer_ray.media.faces import FaceDetector, crop_face
    from mer_ray.recipes.visual_fer import haar_framed

    cap = cv2.VideoCapture(video)
    crop = None
    for _ in range(60):
        ok, frame = cap.read()
        if not ok:
            break
        box = FaceDetector().detect(frame)
        if box is not None:
            crop = crop_face(frame, box)
    cap.release()
    faces = read_image_folder(fer_dir, limit_per_class=1).images
    fig, axes = plt.subplots(1, 3, figsize=(12, 5))
    panels = [(crop if crop is not None else np.zeros((200, 200, 3), np.uint8),
               "score's crop of a RAVDESS video\n(Haar box, 200x200)"),
              (_grid(faces[:4]), "FER2013 faces as stored (48x48)"),
              (_grid(haar_framed(faces[:4], zoom)), f"the same, zoomed in x{zoom}\n(Haar framing)")]
    for ax, (image, title) in zip(axes, panels):
        ax.imshow(image, cmap="gray")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.86, wspace=0.04)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)


def _grid(images: np.ndarray) -> np.ndarray:
    """Four images as a 2x2 grid."""
    rows = [np.concatenate(list(images[i:i + 2]), axis=1) for i in (0, 2)]
    return np.concatenate(rows, axis=0)


def audio_card(run_dir: str | Path, cv: dict, speaker_norm: bool, clips: int, speakers: int,
               seed: int) -> None:
    """card.json and MODEL_CARD.md of a bundled voice model, from its cross-validation."""
    from mer_ray.models.bundled import SPEAKER_NORM_MIN_CLIPS

    folds = ", ".join(f"{a:.3f}" for a in cv["fold_accuracy"])
    use = (f"score uses it instead of `audio` when every input has a known speaker (RAVDESS "
           f"actor id, or a manifest's speaker column) with at least {SPEAKER_NORM_MIN_CLIPS} "
           "clips; each speaker's features are z-scored with that speaker's own scored clips"
           if speaker_norm else "the default voice model: one clip at a time, no speaker "
           "statistics needed")
    card = {
        "title": "Bundled voice model: rich audio features + RBF SVM, RAVDESS speech"
                 + (" (speaker-normalised)" if speaker_norm else ""),
        "summary": "7-class vocal emotion from one clip's audio track",
        "data": f"RAVDESS speech, actors 01-20 ({clips} clips, calm dropped; Livingstone & "
                "Russo 2018)",
        "licence": "RAVDESS is CC BY-NC-SA 4.0: these weights are for non-commercial use, "
                   "share-alike, with attribution",
        "protocol": "5 folds by actor (each fold's actors never heard in training), SVM "
                    "hyper-parameters fixed a priori; the shipped model is then fitted on all "
                    f"{speakers} actors",
        "held_out": f"accuracy {cv['accuracy']:.3f}, macro F1 {cv['macro']['f1']:.3f} on "
                    f"unseen actors (chance {cv['chance_level']:.3f}; per fold {folds})",
        "input": "the rich recipe's 735 features of the clip's audio (mer_ray extracts them)",
        "use": use,
        "classes": ", ".join(EMOTIONS),
        "limits": "acted North American English, two fixed sentences, studio sound: expect "
                  "much less on spontaneous speech, other languages, noise or music; silence "
                  "and very short clips are not emotions; not for decisions about people",
        "seed": seed,
        "command": "python -m mer_ray.recipes.bundled --data ../shared/data --out "
                   "mer_ray/models/pretrained --only audio",
    }
    write_card(run_dir, card, [
        ("Held-out figures (5 folds by actor, pooled)",
         f"Accuracy **{cv['accuracy']:.3f}**, macro F1 {cv['macro']['f1']:.3f}, chance "
         f"{cv['chance_level']:.3f}; per fold {folds}.\n\n{metrics_table(cv)}\n\n"
         "The comparison of recipes and classifiers that chose this one is in BENCHMARKS.md "
         "(benchmarks/audio_accuracy.py)."),
        ("Model", "scikit-learn Pipeline: StandardScaler -> RBF SVC (C=10, gamma=scale) with "
                  "sigmoid probability calibration on leave-speakers-out folds; saved with skops "
                  "and loaded with an explicit list of trusted types (no pickle)."),
    ])
