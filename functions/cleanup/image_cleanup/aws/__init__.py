"""The AWS adapters behind ``ports``: S3 (``s3_storage``, and the paid answers kept in
``staged_answers``), Secrets Manager (``secrets``), EventBridge (``eventbridge``), SQS visibility
(``sqs_visibility``), and the state table's users: Powertools idempotency (``idempotency``), the
providers' request budgets (``rate_limiter``), their circuits (``circuit_table``) and the records
waiting out an outage (``waiting_room``)."""
