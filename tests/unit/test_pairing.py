"""Pairing: what the arrival of one half decides, given what S3 lists next to it."""

from __future__ import annotations

from image_cleanup.naming import ParsedKey, Role, parse_key
from image_cleanup.pairing import Ambiguous, Gone, Pair, Waiting, resolve_pair
from image_cleanup.ports import ListedObject

BUCKET = "image-cleanup-input-123456789012-us-east-1"
SUFFIX = "_mask"
IMAGE = ListedObject("photos/cat.jpg", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 2048, "2026-12-07T09:21:07+00:00")
MASK = ListedObject("photos/cat_mask.png", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 512)


def arrival(key: str) -> ParsedKey:
    parsed = parse_key(key, SUFFIX)
    assert parsed is not None
    return parsed


def test_image_first_waits_for_its_mask() -> None:
    # Given only the image is listed
    # When the image's arrival is resolved
    resolution = resolve_pair(BUCKET, arrival(IMAGE.key), [IMAGE], SUFFIX)

    # Then it waits for the mask
    assert resolution == Waiting(arrival(IMAGE.key), Role.MASK)


def test_mask_first_waits_for_its_image() -> None:
    # Given only the mask is listed
    # When the mask's arrival is resolved
    resolution = resolve_pair(BUCKET, arrival(MASK.key), [MASK], SUFFIX)

    # Then it waits for the image
    assert resolution == Waiting(arrival(MASK.key), Role.IMAGE)


def test_both_present_make_a_pair_pinned_to_both_etags() -> None:
    # Given image and mask are both listed
    # When the mask's arrival is resolved
    resolution = resolve_pair(BUCKET, arrival(MASK.key), [IMAGE, MASK], SUFFIX)

    # Then it is the pair, with the listed objects and their ETags
    assert resolution == Pair(bucket=BUCKET, prefix="photos/", stem="cat", image=IMAGE, mask=MASK)
    assert resolution.identity() == {
        "bucket": BUCKET,
        "image": "photos/cat.jpg",
        "image_etag": IMAGE.etag,
        "image_modified": "2026-12-07T09:21:07+00:00",
        "mask": "photos/cat_mask.png",
        "mask_etag": MASK.etag,
    }


def test_either_arrival_resolves_to_the_same_pair() -> None:
    # Given image and mask are both listed (both arrivals raced)
    # When each arrival is resolved
    from_image = resolve_pair(BUCKET, arrival(IMAGE.key), [MASK, IMAGE], SUFFIX)
    from_mask = resolve_pair(BUCKET, arrival(MASK.key), [IMAGE, MASK], SUFFIX)

    # Then both see the same pair, so the idempotency identity is the same
    assert isinstance(from_image, Pair)
    assert isinstance(from_mask, Pair)
    assert from_image.identity() == from_mask.identity()


def test_mask_matching_two_images_is_ambiguous() -> None:
    # Given cat.jpg and cat.png both match one mask
    png = ListedObject("photos/cat.png", "cccccccccccccccccccccccccccccccc", 4096)

    # When the mask's arrival is resolved
    resolution = resolve_pair(BUCKET, arrival(MASK.key), [IMAGE, png, MASK], SUFFIX)

    # Then it is ambiguous and names both images
    assert resolution == Ambiguous(
        arrival(MASK.key), images=("photos/cat.jpg", "photos/cat.png"), masks=("photos/cat_mask.png",)
    )


def test_two_masks_for_one_image_are_ambiguous() -> None:
    # Given cat_mask.png and cat_mask.webp both match one image
    webp = ListedObject("photos/cat_mask.webp", "dddddddddddddddddddddddddddddddd", 300)

    # When the image's arrival is resolved
    resolution = resolve_pair(BUCKET, arrival(IMAGE.key), [IMAGE, MASK, webp], SUFFIX)

    # Then it is ambiguous and names both masks
    assert resolution == Ambiguous(
        arrival(IMAGE.key), images=("photos/cat.jpg",), masks=("photos/cat_mask.png", "photos/cat_mask.webp")
    )


def test_neighbours_sharing_the_listing_prefix_are_ignored() -> None:
    # Given objects that S3 lists under prefix "photos/cat" but belong to other stems or are not ours
    neighbours = [
        ListedObject("photos/catalog.png", "e" * 32, 10),
        ListedObject("photos/cat2_mask.png", "f" * 32, 10),
        ListedObject("photos/cat2.png", "1" * 32, 10),
        ListedObject("photos/cat.error.json", "2" * 32, 10),
        ListedObject("photos/cat/inner_mask.png", "3" * 32, 10),
    ]

    # When the image's arrival is resolved with only those neighbours
    alone = resolve_pair(BUCKET, arrival(IMAGE.key), [IMAGE, *neighbours], SUFFIX)
    # And with its real mask among them
    paired = resolve_pair(BUCKET, arrival(IMAGE.key), [*neighbours, IMAGE, MASK], SUFFIX)

    # Then the neighbours neither complete nor confuse the pair
    assert alone == Waiting(arrival(IMAGE.key), Role.MASK)
    assert paired == Pair(bucket=BUCKET, prefix="photos/", stem="cat", image=IMAGE, mask=MASK)


def test_same_stem_in_another_folder_is_not_a_partner() -> None:
    # Given a mask with the same stem in a different folder
    elsewhere = ListedObject("archive/cat_mask.png", "4" * 32, 10)

    # When the image's arrival is resolved
    resolution = resolve_pair(BUCKET, arrival(IMAGE.key), [IMAGE, elsewhere], SUFFIX)

    # Then it still waits for its own mask
    assert resolution == Waiting(arrival(IMAGE.key), Role.MASK)


def test_arrival_missing_from_listing_is_gone() -> None:
    # Given the arriving image was deleted before the listing (only its mask remains)
    # When its arrival is resolved
    resolution = resolve_pair(BUCKET, arrival(IMAGE.key), [MASK], SUFFIX)

    # Then there is nothing to do
    assert resolution == Gone(arrival(IMAGE.key))


def test_empty_listing_is_gone() -> None:
    # Given nothing is listed at all
    # When the mask's arrival is resolved
    resolution = resolve_pair(BUCKET, arrival(MASK.key), [], SUFFIX)

    # Then the arrival is gone
    assert isinstance(resolution, Gone)


def test_identity_changes_when_an_etag_changes() -> None:
    # Given a pair, and the same pair after the mask was re-uploaded with new content
    first = resolve_pair(BUCKET, arrival(MASK.key), [IMAGE, MASK], SUFFIX)
    new_mask = ListedObject(MASK.key, "9" * 32, MASK.size)
    second = resolve_pair(BUCKET, arrival(MASK.key), [IMAGE, new_mask], SUFFIX)

    # When their identities are compared
    assert isinstance(first, Pair)
    assert isinstance(second, Pair)

    # Then they differ only by the mask's ETag: new content is new work
    assert first.identity() != second.identity()
    assert {k for k in first.identity() if first.identity()[k] != second.identity()[k]} == {"mask_etag"}
