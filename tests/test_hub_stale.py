"""A conversion in the cache of a file that was not the published one (an older checkpoint of
the user's, say) never stands in for the published weights: only a name that starts with the
published sha256 prefix is the published file's conversion."""
import os

import pytest

from test_hub import MODULES, PUBLISHED, checkpoint, places  # noqa: F401 (fixtures)
from face_alignment import hub
from face_alignment.files import sha256_of
from face_alignment.weights import load_weights
from weight_files import link

pytestmark = pytest.mark.usefixtures("one_hourglass_2dfan4")


def test_a_stale_conversion_of_an_unpublished_file_does_not_win(places, checkpoint):
    cache, theirs = places
    cache.mkdir()
    stale = cache / "2DFAN4-0123456789abcdef.h5"  # this machine's home held two such files
    stale.write_bytes(b"stale")
    link(checkpoint, theirs / PUBLISHED)
    found = hub.weights_path("2DFAN4")
    assert found == str(cache / f"2DFAN4-{sha256_of(str(checkpoint))[:16]}.h5")  # converted from $TORCH_HOME
    assert load_weights(found, kind="fan", num_modules=MODULES).arch.name == "2DFAN4"
    assert stale.read_bytes() == b"stale" and sorted(os.listdir(cache)) == sorted([stale.name, os.path.basename(found)])


def test_a_cut_short_conversion_in_the_cache_is_converted_again(places, checkpoint, caplog):
    """A converted file cut short in the cache (a full disk, an interrupted copy) is made
    again from the checkpoint, with a warning naming it, instead of failing every run."""
    cache, theirs = places
    link(checkpoint, theirs / PUBLISHED)
    found = hub.weights_path("2DFAN4")
    whole = open(found, "rb").read()
    with open(found, "wb") as f:
        f.write(whole[:len(whole) // 2])
    with caplog.at_level("WARNING", logger="face_alignment"):
        assert hub.weights_path("2DFAN4") == found
    assert open(found, "rb").read() == whole
    assert any(found in r.getMessage() for r in caplog.records)
    assert load_weights(found, kind="fan", num_modules=MODULES).arch.name == "2DFAN4"
