"""The AWS adapters behind ``ports``: S3 (``s3_storage``, and the paid answers kept in
``staged_answers``), Secrets Manager (``secrets``), EventBridge (``eventbridge``), Powertools
idempotency on DynamoDB (``idempotency``) and SQS visibility (``sqs_visibility``)."""
