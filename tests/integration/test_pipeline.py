"""The handler against moto (real HTTP) and the cleanup emulator: pairing, results, reports, events."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from app import handle
from tests.event_builders import eventbridge_object_created, s3_notification, sqs_event, sqs_s3_event
from tests.integration.conftest import Env, mask_png, photo_jpeg, photo_png


def _pixels(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def test_image_then_mask_writes_one_result_with_provenance(env: Env, context) -> None:
    # Given an image that arrived first (its event finds no mask yet)
    image_etag = env.put("photos/cat.png", photo_png())
    service = env.service()
    first = handle(sqs_s3_event(env.names.input_bucket, [["photos/cat.png"]]), context, service)
    assert first == {"batchItemFailures": []}
    assert env.result_keys() == []
    # When the mask arrives and its event is handled
    mask_etag = env.put("photos/cat_mask.png", mask_png())
    second = handle(sqs_s3_event(env.names.input_bucket, [["photos/cat_mask.png"]]), context, service)
    # Then one cleaned PNG is written with the four provenance entries and the right content type
    assert second == {"batchItemFailures": []}
    assert env.result_keys() == ["photos/cat.png"]
    body, response = env.result("photos/cat.png")
    assert response["ContentType"] == "image/png"
    assert response["Metadata"] == {
        "source-image": "photos/cat.png",
        "source-mask": "photos/cat_mask.png",
        "source-image-etag": image_etag,
        "source-mask-etag": mask_etag,
        "provider": "novita",
    }
    assert _pixels(body).size == (96, 64)
    assert env.emulator.stats.billed == 1


def test_mask_then_image_also_pairs(env: Env, context) -> None:
    # Given the mask arrived first
    env.put("m/dog_mask.png", mask_png())
    service = env.service()
    handle(sqs_s3_event(env.names.input_bucket, [["m/dog_mask.png"]]), context, service)
    assert env.result_keys() == []
    # When the image arrives
    env.put("m/dog.jpg", photo_jpeg())
    handle(sqs_s3_event(env.names.input_bucket, [["m/dog.jpg"]]), context, service)
    # Then the result exists and was paid once
    assert env.result_keys() == ["m/dog.png"]
    assert env.emulator.stats.billed == 1


def test_pixels_outside_the_mask_are_the_originals_and_inside_are_cleaned(env: Env, context) -> None:
    # Given a pair whose mask covers the dark square
    env.put("p/a.png", photo_png())
    env.put("p/a_mask.png", mask_png())
    # When it is processed
    handle(sqs_s3_event(env.names.input_bucket, [["p/a_mask.png"]]), context, env.service())
    # Then every pixel outside the mask is bit-identical, and the dark square is gone
    result = _pixels(env.result("p/a.png")[0])
    original = _pixels(photo_png())
    mask = Image.open(io.BytesIO(mask_png())).convert("L")
    outside_changed = sum(
        1
        for x in range(96)
        for y in range(64)
        if mask.getpixel((x, y)) == 0 and result.getpixel((x, y)) != original.getpixel((x, y))
    )
    assert outside_changed == 0
    assert result.getpixel((48, 32)) != (0, 0, 0)


@pytest.mark.parametrize(
    "key",
    ["photos/my cat.png", "photos/c++ & co.png", "photos/café/naïve ü.png", "a/b/c/d/deep.png", "root.png"],
)
def test_encoded_keys_are_decoded_and_paired(env: Env, context, key: str) -> None:
    # Given an image and mask whose keys need URL-encoding in S3 events
    stem, _, _ = key.rpartition(".")
    env.put(key, photo_png())
    env.put(f"{stem}_mask.png", mask_png())
    # When the mask's event (keys encoded like S3 does) is handled
    response = handle(sqs_s3_event(env.names.input_bucket, [[f"{stem}_mask.png"]]), context, env.service())
    # Then the result is written under the decoded key
    assert response == {"batchItemFailures": []}
    assert env.result_keys() == [f"{stem}.png"]


def test_duplicate_delivery_pays_once_and_announces_once(env: Env, context) -> None:
    # Given a complete pair and the same events delivered twice, image and mask in one batch
    env.put("d/x.png", photo_png())
    env.put("d/x_mask.png", mask_png())
    service = env.service()
    event = sqs_s3_event(env.names.input_bucket, [["d/x.png"], ["d/x_mask.png"]])
    # When both deliveries are handled
    assert handle(event, context, service) == {"batchItemFailures": []}
    assert handle(event, context, service) == {"batchItemFailures": []}
    # Then the provider was called once and one "Cleanup Succeeded" event was sent
    assert env.emulator.stats.billed == 1
    events = env.events()
    assert [e["detail-type"] for e in events] == ["Cleanup Succeeded"]
    assert events[0]["detail"]["result"]["key"] == "d/x.png"


def test_reupload_with_new_content_is_new_work(env: Env, context) -> None:
    # Given a processed pair
    env.put("r/y.png", photo_png())
    env.put("r/y_mask.png", mask_png())
    service = env.service()
    handle(sqs_s3_event(env.names.input_bucket, [["r/y_mask.png"]]), context, service)
    # When the image is uploaded again with other content
    new_etag = env.put("r/y.png", photo_jpeg())
    handle(sqs_s3_event(env.names.input_bucket, [["r/y.png"]]), context, service)
    # Then it is cleaned again and the result records the new ETag
    assert env.emulator.stats.billed == 2
    assert env.result("r/y.png")[1]["Metadata"]["source-image-etag"] == new_etag


def test_api_400_writes_an_error_report_and_acknowledges(env: Env, context) -> None:
    # Given the provider refuses the request as bad input
    env.emulator.script({"status": 400, "reason": "INVALID_IMAGE_FORMAT"})
    env.put("e/z.png", photo_png())
    env.put("e/z_mask.png", mask_png())
    # When the pair is processed
    response = handle(sqs_s3_event(env.names.input_bucket, [["e/z_mask.png"]]), context, env.service())
    # Then the message is acknowledged, a report names the code, and a failed event is sent
    assert response == {"batchItemFailures": []}
    report = env.error_report("e/z.error.json")
    assert report["error"] == "API_REJECTED"
    assert "INVALID_IMAGE_FORMAT" in report["message"]
    assert report["image"] == "e/z.png"
    assert report["mask"] == "e/z_mask.png"
    assert [e["detail-type"] for e in env.events()] == ["Cleanup Failed"]
    assert len(env.emulator.stats.calls) == 1


def test_corrupt_image_is_reported_without_an_api_call(env: Env, context) -> None:
    # Given an "image" that is a truncated PNG
    env.put("c/bad.png", photo_png()[:200])
    env.put("c/bad_mask.png", mask_png())
    # When the pair is processed
    handle(sqs_s3_event(env.names.input_bucket, [["c/bad_mask.png"]]), context, env.service())
    # Then the report says CORRUPT_IMAGE and the provider was never called
    assert env.error_report("c/bad.error.json")["error"] == "CORRUPT_IMAGE"
    assert env.emulator.stats.requests == 0


def test_transient_5xx_is_retried_with_backoff_then_succeeds(env: Env, context) -> None:
    # Given the provider fails twice with 503 before answering
    env.emulator.script({"status": 503}, {"status": 503})
    env.put("t/a.png", photo_png())
    env.put("t/a_mask.png", mask_png())
    # When the pair is processed
    response = handle(sqs_s3_event(env.names.input_bucket, [["t/a_mask.png"]]), context, env.service())
    # Then it succeeded within the invocation after three attempts
    assert response == {"batchItemFailures": []}
    assert [call.status for call in env.emulator.stats.calls] == [503, 503, 200]
    assert env.result_keys() == ["t/a.png"]


def test_persistent_5xx_returns_the_record_to_the_queue(env: Env, context) -> None:
    # Given the provider fails on every attempt
    env.emulator.script(*[{"status": 503}] * 3)
    env.put("t/b.png", photo_png())
    env.put("t/b_mask.png", mask_png())
    event = sqs_s3_event(env.names.input_bucket, [["t/b_mask.png"]])
    # When the pair is processed
    response = handle(event, context, env.service())
    # Then the record is a batch item failure, nothing is written, and a later delivery succeeds
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert env.result_keys() == []
    assert handle(event, context, env.service()) == {"batchItemFailures": []}
    assert env.result_keys() == ["t/b.png"]


def test_429_honours_retry_after(env: Env, context) -> None:
    # Given the provider asks to wait one second
    env.emulator.script({"status": 429, "retry_after": 1})
    env.put("q/a.png", photo_png())
    env.put("q/a_mask.png", mask_png())
    # When the pair is processed
    response = handle(sqs_s3_event(env.names.input_bucket, [["q/a_mask.png"]]), context, env.service())
    # Then the client waited and retried once, and succeeded
    assert response == {"batchItemFailures": []}
    assert [call.status for call in env.emulator.stats.calls] == [429, 200]


def test_429_with_a_long_retry_after_goes_back_to_the_queue(env: Env, context) -> None:
    # Given the provider asks to wait longer than the invocation has left
    env.emulator.script({"status": 429, "retry_after": 3600})
    env.put("q/b.png", photo_png())
    env.put("q/b_mask.png", mask_png())
    event = sqs_s3_event(env.names.input_bucket, [["q/b_mask.png"]])
    # When the pair is processed
    response = handle(event, context, env.service())
    # Then the record is handed back to SQS after a single call
    assert response["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    assert len(env.emulator.stats.calls) == 1


def test_rotated_key_is_refetched_once_on_403(env: Env, context) -> None:
    # Given the function cached the old key and the key was rotated at the provider and in the secret
    env.put("k/a.png", photo_png())
    env.put("k/a_mask.png", mask_png())
    service = env.service()
    handle(sqs_s3_event(env.names.input_bucket, [["k/a_mask.png"]]), context, service)
    env.client("secretsmanager").put_secret_value(
        SecretId=env.names.api_key_secret, SecretString="rotated-key"
    )
    env.emulator.configure(api_key="rotated-key")
    env.put("k/b.png", photo_png())
    env.put("k/b_mask.png", mask_png())
    # When the next pair is processed
    response = handle(sqs_s3_event(env.names.input_bucket, [["k/b_mask.png"]]), context, service)
    # Then the 403 made the function refetch the secret (raw string form) and succeed on the retry
    assert response == {"batchItemFailures": []}
    assert [call.status for call in env.emulator.stats.calls] == [200, 403, 200]
    assert "k/b.png" in env.result_keys()


def test_key_still_refused_keeps_the_upload_for_redrive(env: Env, context) -> None:
    # Given the secret holds a key the provider refuses
    env.client("secretsmanager").put_secret_value(SecretId=env.names.api_key_secret, SecretString="wrong-key")
    env.put("k/c.png", photo_png())
    env.put("k/c_mask.png", mask_png())
    event = sqs_s3_event(env.names.input_bucket, [["k/c_mask.png"]])
    # When the pair is processed
    response = handle(event, context, env.service())
    # Then it is a batch item failure after exactly one refetch, and no error report writes the upload off
    assert response["batchItemFailures"] == [{"itemIdentifier": event["Records"][0]["messageId"]}]
    assert [call.status for call in env.emulator.stats.calls] == [403, 403]
    assert env.result_keys() == []


def test_missing_secret_is_transient(env: Env, context) -> None:
    # Given the secret does not exist
    env.client("secretsmanager").delete_secret(
        SecretId=env.names.api_key_secret, ForceDeleteWithoutRecovery=True
    )
    env.put("s/a.png", photo_png())
    env.put("s/a_mask.png", mask_png())
    event = sqs_s3_event(env.names.input_bucket, [["s/a_mask.png"]])
    # When the pair is processed
    response = handle(event, context, env.service())
    # Then the record goes back to the queue and the provider is never called
    assert len(response["batchItemFailures"]) == 1
    assert env.emulator.stats.requests == 0


def test_mask_matching_two_images_is_a_reported_error(env: Env, context) -> None:
    # Given cat.jpg and cat.png and one mask
    env.put("amb/cat.jpg", photo_jpeg())
    env.put("amb/cat.png", photo_png())
    env.put("amb/cat_mask.png", mask_png())
    # When the mask's event is handled
    response = handle(sqs_s3_event(env.names.input_bucket, [["amb/cat_mask.png"]]), context, env.service())
    # Then nothing is picked silently: an AMBIGUOUS_PAIR report lists the candidates
    assert response == {"batchItemFailures": []}
    report = env.error_report("amb/cat.error.json")
    assert report["error"] == "AMBIGUOUS_PAIR"
    assert report["candidates"]["images"] == ["amb/cat.jpg", "amb/cat.png"]
    assert env.emulator.stats.requests == 0


def _letter_cases(extension: str) -> list[str]:
    """Every spelling of an extension in upper and lower case letters (the naming rule takes them all)."""
    spellings = [""]
    for letter in extension:
        spellings = [done + case for done in spellings for case in (letter.lower(), letter.upper())]
    return spellings


def test_a_crowded_ambiguous_stem_is_reported_within_eventbridges_limit(env: Env, context) -> None:
    # Given 40 images and 40 masks sharing one stem of 330 CJK characters (990 bytes of UTF-8, 1,980
    # once JSON escapes them): every spelling of .png, .jpg, .jpeg and .webp
    stem = "crowd/" + "猫" * 330
    extensions = [case for name in ("png", "jpg", "jpeg", "webp") for case in _letter_cases(name)][:40]
    for extension in extensions:
        env.put(f"{stem}.{extension}", b"not read")
        env.put(f"{stem}_mask.{extension}", b"not read")
    # When one mask's event is handled
    response = handle(sqs_s3_event(env.names.input_bucket, [[f"{stem}_mask.png"]]), context, env.service())
    # Then the report and its event list 10 images and 10 masks (full keys) and count the other 60,
    # and the event reaches the bus (all 80 keys, twice, were 317 KB: over the 256 KB EventBridge takes)
    assert response == {"batchItemFailures": []}
    report = env.error_report(f"{stem}.error.json")
    assert report["error"] == "AMBIGUOUS_PAIR"
    assert (len(report["candidates"]["images"]), len(report["candidates"]["masks"])) == (10, 10)
    assert report["candidates_left_out"] == 60
    assert all(key.startswith(stem) for key in report["candidates"]["images"] + report["candidates"]["masks"])
    [event] = env.events()
    assert event["detail"]["candidates_left_out"] == 60
    assert "60 more not listed" in event["detail"]["message"]


def test_other_keys_are_ignored(env: Env, context) -> None:
    # Given a text file lands in the bucket
    env.put("docs/readme.txt", b"hello")
    # When its event is handled
    response = handle(sqs_s3_event(env.names.input_bucket, [["docs/readme.txt"]]), context, env.service())
    # Then it is acknowledged and nothing is written
    assert response == {"batchItemFailures": []}
    assert env.result_keys() == []


def test_direct_s3_and_eventbridge_events_are_processed(env: Env, context) -> None:
    # Given two pairs
    for stem in ("direct/a", "bridge/b"):
        env.put(f"{stem}.png", photo_png())
        env.put(f"{stem}_mask.png", mask_png())
    service = env.service()
    # When one arrives as a direct S3 notification and one as an EventBridge event
    direct = handle(s3_notification(env.names.input_bucket, ["direct/a_mask.png"]), context, service)
    bridged = handle(
        eventbridge_object_created(env.names.input_bucket, "bridge/b_mask.png"), context, service
    )
    # Then both are cleaned
    assert direct == {"outcomes": ["succeeded"]}
    assert bridged == {"outcomes": ["succeeded"]}
    assert env.result_keys() == ["bridge/b.png", "direct/a.png"]


def test_one_failing_record_does_not_fail_the_batch(env: Env, context) -> None:
    # Given a good pair and a record whose body is not an S3 event
    env.put("b/good.png", photo_png())
    env.put("b/good_mask.png", mask_png())
    good = s3_notification(env.names.input_bucket, ["b/good_mask.png"])
    event = sqs_event([good, "not json"])
    # When the batch is handled
    response = handle(event, context, env.service())
    # Then only the malformed record is reported failed (kept for the DLQ), the good one is done
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert env.result_keys() == ["b/good.png"]


@pytest.mark.parametrize(
    ("fmt", "ext", "content_type"), [("webp", "webp", "image/webp"), ("jpeg", "jpg", "image/jpeg")]
)
def test_output_format_setting(env: Env, context, fmt: str, ext: str, content_type: str) -> None:
    # Given OUTPUT_FORMAT and ENTERPRISE_PLAN are set
    env.put("f/a.png", photo_png())
    env.put("f/a_mask.png", mask_png())
    service = env.service(OUTPUT_FORMAT=fmt, ENTERPRISE_PLAN="true")
    # When the pair is processed
    handle(sqs_s3_event(env.names.input_bucket, [["f/a_mask.png"]]), context, service)
    # Then the request carried the enterprise plan and asked for a lossless answer (the upload is a PNG;
    # OUTPUT_FORMAT is the result's format, not the answer's), and the result has the format's key and type
    call = env.emulator.stats.calls[0]
    assert call.response_image_type == "png"
    assert call.enterprise_plan is True
    body, response = env.result(f"f/a.{ext}")
    assert response["ContentType"] == content_type
    assert Image.open(io.BytesIO(body)).format == fmt.upper()


def test_without_state_table_or_bus_the_pipeline_still_works(env: Env, context) -> None:
    # Given STATE_TABLE and EVENT_BUS_NAME are unset
    env.put("n/a.png", photo_png())
    env.put("n/a_mask.png", mask_png())
    service = env.service(STATE_TABLE="", EVENT_BUS_NAME="")
    # When the pair is processed
    handle(sqs_s3_event(env.names.input_bucket, [["n/a_mask.png"]]), context, service)
    # Then the result is written and no event was sent
    assert env.result_keys() == ["n/a.png"]
    assert env.events() == []


def test_success_event_carries_location_sizes_and_timing(env: Env, context) -> None:
    # Given a pair
    env.put("ev/a.png", photo_png())
    env.put("ev/a_mask.png", mask_png())
    # When it is processed
    handle(sqs_s3_event(env.names.input_bucket, [["ev/a_mask.png"]]), context, env.service())
    # Then the event says where the result is, its size and how long it took
    (event,) = env.events()
    detail = event["detail"]
    assert event["source"] == "image.cleanup"
    assert detail["result"] == {
        "bucket": env.names.results_bucket,
        "key": "ev/a.png",
        "content_type": "image/png",
    }
    assert detail["width"] == 96
    assert detail["height"] == 64
    assert detail["bytes_out"] > 0
    assert detail["total_ms"] > 0


def test_a_jpeg_upload_is_answered_in_jpeg_and_stored_in_output_format(env: Env, context) -> None:
    # Given a JPEG upload and the default OUTPUT_FORMAT (png)
    env.put("j/a.jpg", photo_jpeg())
    env.put("j/a_mask.png", mask_png())
    # When the pair is processed
    handle(sqs_s3_event(env.names.input_bucket, [["j/a_mask.png"]]), context, env.service())
    # Then the provider was asked for a JPEG answer (its pixels are used only inside the mask), and the
    # result is a PNG
    [call] = env.emulator.stats.calls
    assert call.response_image_type == "jpeg"
    body, response = env.result("j/a.png")
    assert response["ContentType"] == "image/png"
    assert Image.open(io.BytesIO(body)).format == "PNG"
