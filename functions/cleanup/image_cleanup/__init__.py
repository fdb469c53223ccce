"""The image cleanup function: a pair's use case, its stages, and the adapters behind its ports.

pipeline.py       the use case, one method per stage: pair → claim → load → region → call →
                  merge → encode → write → announce
ports.py          every Protocol the use case depends on, the null objects, the types crossing them
outcome.py        what a pair tells the world: summaries, error reports, events, provenance
naming.py, pairing.py   the naming rule and the pure pairing decision
imaging/          load, hd_strategy (the region sent, the answer brought back), merge, encode, limits
provider/         client (the attempts), transport (one POST), retry_policy, rate_limiter
aws/              s3_storage, staged_answers, secrets, eventbridge, idempotency, sqs_visibility
event_sources.py  the event shapes a record can take, read into object references
settings.py, errors.py, deadline.py, observability.py (with every metric's name), wiring.py
"""
