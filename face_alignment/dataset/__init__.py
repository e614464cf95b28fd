"""Landmarks for whole datasets: ``python -m face_alignment.dataset --input PATH ... --output OUT_DIR``.

Inputs (folders, searched recursively; files; text files listing paths) become a sorted list
of absolute paths, one per real file, each with its size and modification time
(:mod:`.units`). The inputs that no sound shard holds with that content are cut into work
units: each video alone, photos in groups of ``--photos-per-unit``. Each unit is written
(:mod:`.job`) as

    OUT_DIR/.lock                       held (flock) by the job writing OUT_DIR: one job at a time
    OUT_DIR/_manifest.json              model sha256s, options that change rows, version, counts
    OUT_DIR/landmarks/part-<id>.parquet the landmark table (face_alignment.landmark_table's schema),
                                        its metadata saying which inputs (path, size, time) it holds
    OUT_DIR/_errors/part-<id>.parquet   that unit's failed inputs, if any (path, reason, kept_rows)
    OUT_DIR/_errors.parquet             every failed input of the output as it stands, at the end of each run

Every name but ``landmarks/`` starts with "_" or ".", which pyarrow skips: ``pandas.read_parquet(OUT_DIR)``
and ``ray.data.read_parquet(OUT_DIR)`` read exactly the landmark rows. An earlier version's
output (manifest.json, errors.parquet, errors/) is moved to these names when resumed.

A unit is done when, and only when, its ``landmarks/part-<id>.parquet`` exists: written to a
temporary file and renamed, after its errors shard, in one step. A re-run checks every shard,
does the inputs that are new, changed or in a damaged shard, and keeps (or, with ``--prune``,
removes) those no longer listed (:mod:`.shards`), so a job killed at any moment and run again
gives every input's rows exactly once.

Engines: :mod:`.local` (this process) and :mod:`.ray_engine` (Ray Data actors), which call
the same :func:`.job.run_unit` and so write the same rows.
"""
