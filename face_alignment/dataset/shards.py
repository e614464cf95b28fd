"""The shards of a dataset job's output as they stand, and what a new run does with them.

Each landmark shard says in its Parquet metadata (key ``face_alignment.dataset``) which unit
it is and what it holds: ``{"unit", "kind", "dims", "members": [[path, size, mtime_ns], ...],
"failed": [[path, kept_rows], ...], "rows"}``. The shards are the ledger: an input is done when
a sound shard holds it with the content it has now. So nothing else has to be kept in step with
them, and a shard that is not sound (cut short, garbage, another unit's copied over it, rows
missing, its errors shard gone) is found on resume, removed, and its inputs done again.

The rule for a re-run (:func:`plan`), per input a shard holds:

- listed, with the same size and modification time: done (kept as it is);
- listed, with other content: its rows are taken out of the shard and it is done again;
- failed before and unchanged: kept in ``_errors.parquet``; ``--retry-errors`` tries again;
- no longer listed: its rows are kept and counted in the summary; ``--prune`` takes them out
  (never those below a folder that could not be listed this time). One that failed with no rows
  has nothing in the output but its errors row, which is dropped.

Taking inputs out of a shard rewrites it (the landmark shard, then its errors shard: a stop in
between leaves an errors shard with rows that the landmark shard no longer lists, which are
ignored), or removes it when nothing is left.
"""
import json
import logging
import os
from dataclasses import dataclass, field
from typing import Dict, List, Set

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..files import TEMP_PREFIX, atomic_write
from ..landmark_table import LANDMARKS, SHARD_NAME, schema as landmark_schema, shard_name
from .units import FOLDER, shown

log = logging.getLogger("face_alignment")

ERRORS = "_errors"  # a name pyarrow skips: the folder read as a dataset is the landmark rows
SHARD_KEY = "face_alignment.dataset"
ERRORS_SCHEMA = pa.schema([
    pa.field("path", pa.string(), nullable=False),  # the input, as in the landmark table's video column
    pa.field("reason", pa.string(), nullable=False),  # one line
    pa.field("kept_rows", pa.int64(), nullable=False),  # rows written for it anyway (a video cut short)
])


def shard_path(out_dir: str, unit_id: str) -> str:
    return os.path.join(out_dir, LANDMARKS, shard_name(unit_id))


def errors_shard_path(out_dir: str, unit_id: str) -> str:
    return os.path.join(out_dir, ERRORS, shard_name(unit_id))


def metadata(record: Dict) -> Dict[str, str]:
    """The Parquet key-value metadata that says what a shard holds (ASCII JSON: a name that is
    not UTF-8 survives)."""
    return {SHARD_KEY: json.dumps(record, sort_keys=True)}


def ours(name: str) -> bool:
    """A file name a dataset job writes in ``landmarks/`` or ``errors/``: a shard, or the
    temporary file of one."""
    return bool(SHARD_NAME.fullmatch(name)) or name.startswith(TEMP_PREFIX)


def write_errors(path: str, unit_id: str, errors: List) -> None:
    """The errors shard of a unit: (path, reason, kept_rows) per failed input."""
    table = pa.table({"path": [shown(e[0]) for e in errors], "reason": [e[1] for e in errors],
                      "kept_rows": [e[2] for e in errors]}, schema=ERRORS_SCHEMA)
    with atomic_write(path) as tmp:
        pq.write_table(table.replace_schema_metadata({SHARD_KEY: json.dumps({"unit": unit_id})}), tmp)


@dataclass
class Shards:
    records: Dict[str, Dict] = field(default_factory=dict)  # unit id -> what its shard holds
    damaged: List[str] = field(default_factory=list)  # "path: what is wrong", each removed
    foreign: List[str] = field(default_factory=list)  # files no dataset job wrote, left in place


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _check(out_dir: str, unit_id: str, dims: int) -> Dict:
    """What the shard of ``unit_id`` holds; ValueError saying what is wrong with it."""
    path = shard_path(out_dir, unit_id)
    try:
        meta = pq.ParquetFile(path).metadata
        record = json.loads((meta.metadata or {})[SHARD_KEY.encode()])
        file_schema = pq.read_schema(path).remove_metadata()
    except KeyError:
        raise ValueError("no record of its unit in its metadata") from None
    except (pa.ArrowException, OSError, ValueError) as e:
        raise ValueError(f"not a readable Parquet file ({_first_line(e)})") from None
    if not isinstance(record, dict) or record.get("unit") != unit_id:
        raise ValueError(f"holds unit {record.get('unit') if isinstance(record, dict) else record!r}, "
                         f"not {unit_id} (a copy of another shard?)")
    if record.get("dims") != dims or not file_schema.equals(landmark_schema(dims)):
        raise ValueError(f"not a table of {dims}D landmarks")
    if meta.num_rows != record.get("rows"):
        raise ValueError(f"{meta.num_rows} rows; its record says {record.get('rows')}")
    if record["failed"]:
        errors = errors_shard_path(out_dir, unit_id)
        try:
            table = pq.read_table(errors)
            of = json.loads((table.schema.metadata or {})[SHARD_KEY.encode()])["unit"]
        except (pa.ArrowException, OSError, ValueError, KeyError, TypeError) as e:
            raise ValueError(f"its errors shard {errors} is missing or unreadable ({_first_line(e)})") from None
        if of != unit_id or not {shown(p) for p, _ in record["failed"]} <= set(table.column("path").to_pylist()):
            raise ValueError(f"its errors shard {errors} does not hold its failed inputs")
    return record


def _remove(path: str) -> None:
    if os.path.lexists(path):
        os.remove(path)


def read_shards(out_dir: str, dims: int) -> Shards:
    """Every landmark shard of ``out_dir`` checked: sound ones recorded, damaged ones (and
    their errors shards) removed and named, files of others named. Errors shards without a
    landmark shard (of a unit that did not finish) are removed."""
    shards = Shards()
    for name in sorted(os.listdir(os.path.join(out_dir, LANDMARKS))):
        path = os.path.join(out_dir, LANDMARKS, name)
        match = SHARD_NAME.fullmatch(name)
        if name.startswith(TEMP_PREFIX):
            continue
        if not match or not os.path.isfile(path):
            shards.foreign.append(path)
            continue
        try:
            shards.records[match.group(1)] = _check(out_dir, match.group(1), dims)
        except ValueError as problem:
            shards.damaged.append(f"{path}: {problem}")
            _remove(path)
            _remove(errors_shard_path(out_dir, match.group(1)))
    for name in sorted(os.listdir(os.path.join(out_dir, ERRORS))):
        path = os.path.join(out_dir, ERRORS, name)
        match = SHARD_NAME.fullmatch(name)
        if not match or not os.path.isfile(path):
            if not name.startswith(TEMP_PREFIX):
                shards.foreign.append(path)
        elif match.group(1) not in shards.records:
            _remove(path)
    return shards


@dataclass
class Plan:
    todo: List[Dict]  # the inputs to do: new, changed, retried
    drop: Dict[str, Set[str]]  # unit id -> the inputs to take out of its shard
    done: int = 0  # inputs done before, kept
    changed: int = 0  # inputs whose content changed since they were done
    failed: int = 0  # inputs that failed before, kept failed (not retried)
    retried: int = 0  # inputs that failed before, tried again (--retry-errors)
    unlisted: int = 0  # inputs no longer listed, whose rows are kept
    pruned: int = 0  # inputs no longer listed, taken out (--prune)


def _below(path: str, folders: List[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


def plan(inputs: List[Dict], records: Dict[str, Dict], prune: bool = False, retry_errors: bool = False) -> Plan:
    """What a run over ``inputs`` does with the shards of ``records`` (see the module's rule)."""
    listed = {i["path"]: i for i in inputs}
    unreadable = [i["path"] for i in inputs if i["kind"] == FOLDER]
    claimed: Dict[str, str] = {}
    result = Plan(todo=[], drop={})
    for unit_id in sorted(records):  # in id order: of two shards that hold an input, the first keeps it
        record = records[unit_id]
        failed = {path: kept for path, kept in record["failed"]}
        for path, size, mtime in record["members"]:
            item = listed.get(path)
            if item is None:
                if path in failed and failed[path] == 0:
                    drop = True
                elif prune and not _below(path, unreadable):
                    drop, result.pruned = True, result.pruned + 1
                else:
                    drop, result.unlisted = False, result.unlisted + 1
            elif (item["size"], item["mtime_ns"]) != (size, mtime):
                drop, result.changed = True, result.changed + 1
            elif path in claimed:
                drop = True
            elif path in failed and retry_errors:
                drop, result.retried = True, result.retried + 1
            else:
                drop = False
                claimed[path] = unit_id
                result.done += 1
                result.failed += path in failed
            if drop:
                result.drop.setdefault(unit_id, set()).add(path)
    result.todo = [i for i in inputs if i["path"] not in claimed]
    return result


def take_out(out_dir: str, record: Dict, paths: Set[str]) -> None:
    """Take the inputs ``paths`` out of the shard of ``record`` (in place: the record is
    updated): its rows and errors rows go; a shard left with no input is removed."""
    unit_id = record["unit"]
    landmarks, errors = shard_path(out_dir, unit_id), errors_shard_path(out_dir, unit_id)
    record["members"] = [m for m in record["members"] if m[0] not in paths]
    record["failed"] = [f for f in record["failed"] if f[0] not in paths]
    if not record["members"]:
        _remove(landmarks)
        _remove(errors)
        return
    table = pq.read_table(landmarks)
    table = table.filter(pc.invert(pc.is_in(table.column("video"), value_set=pa.array(
        sorted({shown(p) for p in paths}), pa.string())))).cast(landmark_schema(record["dims"]))
    record["rows"] = table.num_rows
    with atomic_write(landmarks) as tmp:
        pq.write_table(table.replace_schema_metadata(metadata(record)), tmp)
    if record["failed"]:
        kept = {shown(p) for p, _ in record["failed"]}
        old = pq.read_table(errors)
        table = old.filter(pc.is_in(old.column("path"), value_set=pa.array(sorted(kept), pa.string())))
        with atomic_write(errors) as tmp:
            pq.write_table(table.replace_schema_metadata(old.schema.metadata), tmp)
    else:
        _remove(errors)


def assemble_errors(out_dir: str, records: Dict[str, Dict]) -> pa.Table:
    """The errors rows of the inputs the shards of ``records`` list as failed, sorted by path."""
    tables = []
    for unit_id in sorted(records):
        failed = records[unit_id]["failed"]
        if failed:
            table = pq.read_table(errors_shard_path(out_dir, unit_id)).replace_schema_metadata(None)
            tables.append(table.filter(pc.is_in(table.column("path"), value_set=pa.array(
                sorted({shown(p) for p, _ in failed}), pa.string()))).cast(ERRORS_SCHEMA))
    table = pa.concat_tables(tables) if tables else ERRORS_SCHEMA.empty_table()
    return table.sort_by("path")
