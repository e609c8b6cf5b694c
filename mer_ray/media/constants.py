"""The media layer's numbers from the thesis (re-exported by mer_ray.config with the others)."""
from __future__ import annotations

SKIP_NO = 10                 # one keyframe every 10 frames (thesis Alg. 3.4)
FACE_SIZE = 200              # face crops are FACE_SIZE x FACE_SIZE x 3 RGB uint8
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # RGB -> grey in the face models (ITU-R BT.601, as OpenCV)
DETECT_WIDTH = 320           # Haar runs on a grey frame downscaled to this width (benchmarks/preprocess.py
                             # checks it finds the same faces as full-frame detection)
REDETECT_EVERY = 6           # full-frame face search every 6th keyframe; in between, near the last face
SAMPLE_RATE = 22_050         # librosa's default rate, used by the thesis features
N_THESIS_FEATURES = 162      # ZCR 1 + chroma 12 + MFCC 20 + RMS 1 + mel 128
AUDIO_AUG_COPIES = 2         # augmented copies per clip: training data triples (Alg. 3.2)
