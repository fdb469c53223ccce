"""Failover through the handler, the state table and the emulator's three routes: a pair goes to the next
provider in the same invocation, is paid for once across failover and redelivery, the circuit opens
for every execution, and an outage of every provider is a wait, not a failure."""

from __future__ import annotations

import json
import threading
from typing import Any

from app import handle
from image_cleanup.aws.sqs_visibility import SqsDeferrer
from image_cleanup.waits import Deferrals
from local.aws_server import StrictMotoServer
from tests.event_builders import sqs_s3_event
from tests.integration.conftest import Env, mask_png, photo_jpeg, put_pair, run_pair

TWO = {"PROVIDERS": "novita,clipdrop"}


def novita_down(env: Env) -> None:
    env.emulator.provider("novita").set_random_faults(1.0, [503])


def test_a_novita_outage_is_cleaned_by_clipdrop_in_the_same_invocation(env: Env, context: Any) -> None:
    # Given Novita answering 503 to everything, and Clipdrop listed second
    novita_down(env)
    # When a pair is handled once
    run_pair(env, context, "fo/a.jpg", photo_jpeg(), "fo/a_mask.png", mask_png(), **TWO)
    # Then Clipdrop cleaned it (one paid call), after Novita's own three attempts
    clipdrop = env.emulator.provider("clipdrop").stats
    assert [call.status for call in env.emulator.provider("novita").stats.calls] == [503, 503, 503]
    assert (clipdrop.billed, env.emulator.provider("novita").stats.billed) == (1, 0)
    # And the result, its event and its log line say so
    _, response = env.result("fo/a.png")
    assert response["Metadata"]["provider"] == "clipdrop"
    (event,) = env.events()
    assert event["detail"]["api"]["provider"] == "clipdrop"
    assert event["detail"]["api"]["failed_over"] == [{"provider": "novita", "error": "API_UNAVAILABLE"}]


def test_the_region_sent_to_clipdrop_is_planned_for_clipdrop(env: Env, context: Any) -> None:
    # Given a JPEG upload, and Novita down
    novita_down(env)
    run_pair(env, context, "fo/b.jpg", photo_jpeg(), "fo/b_mask.png", mask_png(), **TWO)
    # Then Clipdrop got a JPEG (which it takes) and answered PNG (all it answers)
    (call,) = env.emulator.provider("clipdrop").stats.calls
    assert call.status == 200
    assert dict(call.options) == {"mode": "fast"}


def test_a_refusal_of_the_input_is_reported_not_failed_over(env: Env, context: Any) -> None:
    env.emulator.script({"status": 400, "reason": "INVALID_IMAGE_FORMAT"})
    run_pair(env, context, "fo/c.jpg", photo_jpeg(), "fo/c_mask.png", mask_png(), **TWO)
    assert env.result_keys() == ["fo/c.error.json"]
    assert env.emulator.provider("clipdrop").stats.requests == 0


def test_one_answer_is_paid_for_across_failover_and_redelivery(
    env: Env, aws: StrictMotoServer, context: Any
) -> None:
    # Given Novita down, Clipdrop answering, and the result's PUT refused once (a denied write)
    novita_down(env)
    put_pair(env, "once/a")
    aws.faults.fail("PUT", env.names.results_bucket, "once/a.png", status=403, code="AccessDenied", times=1)
    event = sqs_s3_event(env.names.input_bucket, [["once/a_mask.png"]])
    first = handle(event, context, env.service(**TWO))
    assert len(first["batchItemFailures"]) == 1
    # When Novita has recovered and the record is delivered again
    env.emulator.provider("novita").set_random_faults(0.0)
    second = handle(event, context, env.service(**TWO))
    # Then the answer Clipdrop was paid for is used: no provider is paid again
    assert second == {"batchItemFailures": []}
    assert env.emulator.provider("clipdrop").stats.billed == 1
    assert env.emulator.provider("novita").stats.billed == 0
    _, response = env.result("once/a.png")
    assert response["Metadata"]["provider"] == "clipdrop"


def test_concurrent_executions_open_novitas_circuit_and_stop_calling_it(env: Env, context: Any) -> None:
    # Given Novita down and 8 pairs handled by 4 concurrent executions (the shared state table)
    novita_down(env)
    for index in range(8):
        put_pair(env, f"cc/{index}")
    events = [sqs_s3_event(env.names.input_bucket, [[f"cc/{index}_mask.png"]]) for index in range(8)]
    services = [env.service(**TWO) for _ in range(4)]
    responses: list[dict[str, Any]] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        for event in events[worker::4]:
            response = handle(event, context, services[worker])
            with lock:
                responses.append(response)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    # Then every pair was cleaned by Clipdrop, once
    assert all(response == {"batchItemFailures": []} for response in responses)
    assert env.emulator.provider("clipdrop").stats.billed == 8
    # And Novita stopped being called once its circuit opened (3 failed pairs, and those already
    # admitted when it opened), far fewer than 8 pairs x 3 attempts
    novita_calls = env.emulator.provider("novita").stats.requests
    assert 9 <= novita_calls <= 3 * 7
    circuit = env.client("dynamodb").get_item(
        TableName=env.names.state_table, Key={"id": {"S": "circuit#novita"}}
    )["Item"]
    assert "opened_at" in circuit


def test_when_every_provider_is_down_the_record_waits_and_is_not_a_failure(
    env: Env, aws: StrictMotoServer, context: Any, capsys: Any
) -> None:
    # Given both providers down
    novita_down(env)
    env.emulator.provider("clipdrop").set_random_faults(1.0, [502])
    put_pair(env, "down/a")
    sqs = env.client("sqs")
    sqs.send_message(QueueUrl=env.created.queue_url, MessageBody=json.dumps({"Records": []}))
    (message,) = sqs.receive_message(QueueUrl=env.created.queue_url)["Messages"]
    event = sqs_s3_event(env.names.input_bucket, [["down/a_mask.png"]], queue_arn=env.created.queue_arn)
    event["Records"][0]["receiptHandle"] = message["ReceiptHandle"]
    # When the pair's record is handled
    response = handle(event, context, env.service(**TWO), Deferrals(SqsDeferrer(lambda: env.client("sqs"))))
    # Then the record goes back to wait the outage's first wait (60 s), counted as a wait, not a retry
    assert len(response["batchItemFailures"]) == 1
    assert aws.rules is not None
    seconds = aws.rules.visibility_set(message["ReceiptHandle"])
    assert seconds is not None
    assert 60 <= seconds <= 67
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    reasons = [blob.get("reason") for blob in blobs if "PairsDeferred" in blob and "reason" in blob]
    assert reasons == ["PROVIDERS_UNAVAILABLE"]
    assert not [blob for blob in blobs if "TransientFailures" in blob]
    assert env.result_keys() == []
