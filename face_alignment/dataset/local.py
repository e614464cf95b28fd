"""``--engine local``: the missing units one after another in this process, with one model."""
from typing import Dict, List

from .job import run_unit


def run_local(fa, units: List[Dict], out_dir: str, video_options: Dict, progress: bool = True) -> List[Dict]:
    """Run ``units`` with ``fa``; a progress bar counts items (photos and videos), their rate
    and the time left. Returns each unit's summary."""
    from tqdm import tqdm

    done = []
    with tqdm(total=sum(len(u["members"]) for u in units), unit="item", disable=not progress) as bar:
        for unit in units:
            summary = run_unit(fa, unit, out_dir, video_options)
            done.append(summary)
            bar.update(summary["items"])
    return done
