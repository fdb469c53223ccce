"""The reference: what a typical tutorial writes for this job. Kept only to be measured against.

Read both objects, base64 them whole, POST them with requests, decode the answer, write it. No
validation, no cropping, no compose, no retries; clients made at import, the secret read per event.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any
from urllib.parse import unquote_plus

import boto3
import requests

s3 = boto3.client("s3")
secrets = boto3.client("secretsmanager")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        mask_key = unquote_plus(record["s3"]["object"]["key"])
        image_key = os.environ.get("NAIVE_IMAGE_KEY", mask_key)
        image = s3.get_object(Bucket=bucket, Key=image_key)["Body"].read()
        mask = s3.get_object(Bucket=bucket, Key=mask_key)["Body"].read()
        secret = json.loads(
            secrets.get_secret_value(SecretId=os.environ["API_KEY_SECRET_ID"])["SecretString"]
        )
        response = requests.post(
            os.environ["CLEANUP_API_URL"],
            json={
                "image_file": base64.b64encode(image).decode(),
                "mask_file": base64.b64encode(mask).decode(),
                "extra": {"response_image_type": "png"},
            },
            headers={"Authorization": f"Bearer {secret['api_key']}"},
            timeout=120,
        )
        response.raise_for_status()
        result = base64.b64decode(response.json()["image_file"])
        stem = image_key.rsplit(".", 1)[0]
        s3.put_object(
            Bucket=os.environ["RESULTS_BUCKET"], Key=f"{stem}.png", Body=result, ContentType="image/png"
        )
    return {"statusCode": 200}
