"""The backfill's grouping of a listing by the naming rule, and its summary line."""

from __future__ import annotations

from image_cleanup.ports import ListedObject
from ops.backfill import Counts, complete_pairs, group


def test_a_listing_is_grouped_into_pairs_and_the_rest_is_counted() -> None:
    # Given a listing with a pair, a lone image, an ambiguous stem and a key that is not an image
    keys = ["p/a.jpg", "p/a_mask.png", "p/b.jpg", "p/c.jpg", "p/c.png", "p/c_mask.png", "p/readme.txt"]
    counts = Counts()
    # When it is grouped with the default mask suffix
    stems = group((ListedObject(key, "e", 1) for key in keys), "_mask", counts)
    # Then each stem holds its images and masks, and the text file is ignored
    assert {stem: (len(pair.images), len(pair.masks)) for (_, stem), pair in stems.items()} == {
        "a": (1, 1),
        "b": (1, 0),
        "c": (2, 1),
    }
    assert (counts.listed, counts.ignored) == (7, 1)
    # And the function's pairing rule keeps one complete pair, one incomplete and one ambiguous stem
    pairs = complete_pairs("in", stems, "_mask", counts)
    assert [(pair.image.key, pair.mask.key) for pair in pairs] == [("p/a.jpg", "p/a_mask.png")]
    assert (counts.incomplete, counts.ambiguous) == (1, 1)


def test_the_summary_line_says_what_was_and_would_be_queued() -> None:
    # Given the counts of a run
    counts = Counts(listed=408, queued=200, done=1, incomplete=3, ambiguous=0, ignored=4)
    # When its line is printed, for a run and a dry run
    # Then it gives every count, and a dry run says what it would have queued
    assert counts.line(dry_run=False) == (
        "backfill: 408 objects listed; queued 200 pairs, skipped 1 as done, "
        "3 incomplete, 0 ambiguous, 4 ignored"
    )
    assert "would queue 200 pairs" in counts.line(dry_run=True)
