"""Entry point for `ray job submit ... -- python jobs/score.py ARCHIVE --visual RUN --audio RUN
--out SCORES [...]`.

Takes the same arguments as `mer-ray score`; inside a submitted job Ray connects to the cluster
through $RAY_ADDRESS, which `ray job submit` sets. The archive, the model run directories and
--out must be reachable from every node (shared storage or a pyarrow URI: s3://, gs://, file://).
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo, for --working-dir .

from mer_ray.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["score", *sys.argv[1:]]))
