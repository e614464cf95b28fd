"""Run one page's code blocks in order, as a reader pastes them: ``bash`` blocks in bash (``-e``,
``-o pipefail``), ``python`` blocks each in a fresh namespace of this one process (a block sees
no other block's names, as when pasted on its own; one process per page saves an import of
nnabla per block). The working folder is the caller's. Stops at the first block that fails,
naming it by its file and line.

    .venv/bin/python tests/docs_runner.py blocks.json
"""
import json
import os
import subprocess
import sys
import time
import traceback


def run(blocks) -> int:
    start = os.getcwd()
    for block in blocks:
        where = f"{block['file']}:{block['line']}"
        print(f"--- {where} ({block['lang']}) at {time.perf_counter():.1f} s", flush=True)
        os.chdir(start)  # a block that changes folder changes it for itself only
        if block["lang"] == "bash":
            status = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block["code"]]).returncode
            if status:
                print(f"FAILED {where}: exit status {status}", flush=True)
                return 1
        else:
            try:
                exec(compile(block["code"], where, "exec"), {"__name__": "__main__"})
            except BaseException:  # SystemExit too: a block is not a program that may exit
                traceback.print_exc()
                print(f"FAILED {where}", flush=True)
                return 1
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sys.exit(run(json.load(f)))
