"""Landmarks for whole datasets: ``python -m face_alignment.dataset --input PATH ... --output OUT_DIR``.

Inputs (folders, searched recursively; files; text files listing paths) become a sorted list
of absolute paths, cut into work units (:mod:`.units`): each video alone, photos in groups of
``--photos-per-unit`` in sorted order. A unit's id is a hash of its members, so the same
inputs give the same units and new inputs add units. Each unit is written (:mod:`.job`) as

    OUT_DIR/manifest.json               model sha256s, options that change rows, version, counts
    OUT_DIR/landmarks/part-<id>.parquet the landmark table (face_alignment.landmark_table's schema)
    OUT_DIR/errors/part-<id>.parquet    that unit's failed inputs, if any (path, reason, kept_rows)
    OUT_DIR/errors.parquet              every failed input, assembled at the end of each run

A unit is done when, and only when, its ``landmarks/part-<id>.parquet`` exists: written to a
temporary file and renamed, after its errors shard, in one step. A re-run does the units that
are missing, so a job killed at any moment and run again gives every row exactly once.

Engines: :mod:`.local` (this process) and :mod:`.ray_engine` (Ray Data actors), which call
the same :func:`.job.run_unit` and so write the same rows.
"""
